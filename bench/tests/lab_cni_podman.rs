//! A real container runtime drives `weft-cni`: podman (Debian's, CNI network backend, runc)
//! starts busybox containers on two weft nodes of a vxlan lab beside a kernel-flannel node,
//! with configs/cni/10-weft.conflist installed as a runtime would (only its paths point at
//! the lab's). Containers reach each other on one node, across weft nodes and the kernel
//! node's pod by ICMP and TCP (busybox nc), and `podman rm -f` leaves no veth, route,
//! address allocation or weft pod. Every podman runs inside its node's namespace (`nsenter
//! --net`), with a private root, runroot, tmpdir and CNI config dir in a temp dir, so the
//! host's podman state is never touched.

mod lab_common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lab_common::cni::*;
use lab_common::*;
use weft_bench::lab::{Backend, Lab, NodeKind, cmd};

/// The image the test builds: a busybox-static rootfs.
const IMAGE: &str = "localhost/weft-busybox";
/// TCP port of the echo servers.
const PORT: u16 = 7000;

/// A podman for one weft node: its own state and CNI config under `dir`, run in the node's
/// namespace. Dropping it removes every container it started.
struct Podman {
    node_ns: String,
    dir: PathBuf,
}

impl Podman {
    fn new(lab: &Lab, i: usize, root: &Path, rootfs_tar: &Path) -> Podman {
        let dir = root.join(format!("n{i}"));
        let (cni_dir, bin) = (dir.join("cni.d"), dir.join("bin"));
        for d in [&cni_dir, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(WEFT_CNI, bin.join("weft-cni")).unwrap();
        // The example conflist as shipped, its paths pointed at this node's weft and dirs.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cni/10-weft.conflist");
        let mut list: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
        let plugin = &mut list["plugins"][0];
        plugin["socket"] = serde_json::json!(weft_socket(lab, i));
        plugin["subnetFile"] = serde_json::json!(lab.node(i).subnet_file);
        plugin["dataDir"] = serde_json::json!(dir.join("weft-cni"));
        plugin["ipam"]["dataDir"] = serde_json::json!(dir.join("host-local"));
        std::fs::write(cni_dir.join("10-weft.conflist"), list.to_string()).unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n[network]\ncni_plugin_dirs = [\"{}\", \"{CNI_PLUGINS}\"]\n\
                 [engine]\nevents_logger = \"file\"\n",
                bin.display()
            ),
        )
        .unwrap();
        let p = Podman { node_ns: lab.node(i).ns.clone(), dir };
        p.ok(&["import", &rootfs_tar.display().to_string(), IMAGE]);
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        let d = |s: &str| self.dir.join(s).display().to_string();
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.node_ns))
            .args(["podman", "--root", &d("root"), "--runroot", &d("runroot"), "--tmpdir", &d("tmp")])
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs"])
            .args(["--network-backend", "cni", "--cni-config-dir", &d("cni.d"), "--events-backend", "file"])
            .args(args)
            .env("CONTAINERS_CONF", d("containers.conf"))
            .output()
            .expect("run podman")
    }

    /// Runs podman, failing the test with its output when it fails; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {} in {}: {}{}",
            args.join(" "),
            self.node_ns,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts container `name` on the weft network; returns its address.
    fn start(&self, name: &str) -> Ipv4Addr {
        self.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "weft",
            "--cap-add",
            "NET_RAW",
            IMAGE,
            "sleep",
            "600",
        ]);
        let ip = self.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.weft.IPAddress}}", name]);
        ip.trim().parse().unwrap_or_else(|_| panic!("container {name} has no weft address: {ip:?}"))
    }

    fn host_local(&self) -> PathBuf {
        self.dir.join("host-local")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "-a", "-t", "0"]);
    }
}

/// A tar of a busybox-static rootfs, made in `dir`.
fn busybox_rootfs(dir: &Path, busybox: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for d in ["etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "ping", "nc", "sleep", "cat", "echo", "ip"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    cmd::run("tar", &["-C", &root.display().to_string(), "-cf", &tar.display().to_string(), "."]).unwrap();
    tar
}

/// What the test needs beyond root: podman, runc, nsenter, busybox-static, host-local.
fn tools(test: &str) -> Option<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(PathBuf::from).find(|p| p.is_file());
    let missing: Vec<&str> = [("podman", "podman"), ("runc", "runc"), ("nsenter", "util-linux")]
        .into_iter()
        .filter(|(bin, _)| !Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(|(_, pkg)| pkg)
        .chain(busybox.is_none().then_some("busybox-static"))
        .collect();
    if !missing.is_empty() {
        weft_testnet::skip(
            test,
            &format!("missing Debian packages {missing:?} (scripts/setup.sh installs them)"),
        );
        return None;
    }
    busybox
}

/// `podman exec` pings: `(podman, container, target, what)`; returns what failed.
fn pings(list: &[(&Podman, &str, Ipv4Addr, &str)]) -> Vec<String> {
    list.iter()
        .filter_map(|(p, c, to, what)| {
            let out = p.run(&["exec", c, "ping", "-c", "3", "-w", "8", &to.to_string()]);
            (!out.status.success()).then(|| format!("{what}: {}", String::from_utf8_lossy(&out.stdout)))
        })
        .collect()
}

/// TCP through busybox nc: an echo server (`nc -l -e cat`) in `server`, a line sent from
/// `client`, which must come back.
fn nc_echo(
    server: (&Podman, &str),
    server_ip: Ipv4Addr,
    client: (&Podman, &str),
    what: &str,
) -> Option<String> {
    server.0.ok(&["exec", "-d", server.1, "nc", "-l", "-p", &PORT.to_string(), "-e", "/bin/cat"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let line = format!("weft tcp {what}");
    let script = format!("echo '{line}' | nc -w 3 {server_ip} {PORT}");
    let out = client.0.run(&["exec", client.1, "sh", "-c", &script]);
    let got = String::from_utf8_lossy(&out.stdout);
    (!got.contains(&line))
        .then(|| format!("TCP {what}: got {got:?} {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn podman_containers_on_weft_nodes_reach_each_other_and_a_kernel_pod_and_rm_leaves_nothing() {
    let test = "podman_containers_on_weft_nodes_reach_each_other_and_a_kernel_pod_and_rm_leaves_nothing";
    if !have_root(test) || !have_host_local(test) {
        return;
    }
    let Some(busybox) = tools(test) else { return };
    let mut lab = e2e_lab(Backend::Vxlan, &[NodeKind::Kernel, NodeKind::Weft, NodeKind::Weft], 1);
    // The lab wired a pod at .2 on each weft node itself: detach them from weft, so the node
    // subnets are the runtime's (host-local over the whole FLANNEL_SUBNET, from .2).
    for i in [2, 3] {
        weft_cni::weft_api::pod_del(&weft_socket(&lab, i), &lab.pod(i, 1).host_iface).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = busybox_rootfs(dir.path(), &busybox);
    let (p2, p3) = (Podman::new(&lab, 2, dir.path(), &tar), Podman::new(&lab, 3, dir.path(), &tar));

    let (a1, a2, b1) = (p2.start("a1"), p2.start("a2"), p3.start("b1"));
    for (ip, i) in [(a1, 2), (a2, 2), (b1, 3)] {
        assert!(lab.node(i).subnet.contains(&ip), "{ip} is not in n{i}'s subnet {}", lab.node(i).subnet);
    }
    let kpod = lab.pod(1, 1).clone();
    let mut failed = pings(&[
        (&p2, "a1", a2, "a1 -> a2 (same weft node)"),
        (&p2, "a2", a1, "a2 -> a1 (same weft node)"),
        (&p2, "a1", b1, "a1 -> b1 (other weft node)"),
        (&p3, "b1", a1, "b1 -> a1 (other weft node)"),
        (&p2, "a1", kpod.ip, "a1 -> kernel node's pod"),
        (&p3, "b1", kpod.ip, "b1 -> kernel node's pod"),
    ]);
    if !ping(&kpod.ns, a2, 3) {
        failed.push("kernel node's pod -> a2".into());
    }
    failed.extend(nc_echo((&p2, "a2"), a2, (&p2, "a1"), "a1 -> a2"));
    failed.extend(nc_echo((&p2, "a1"), a1, (&p3, "b1"), "b1 -> a1"));
    // The kernel pod's echo server is the lab's; the client is busybox nc in a1.
    let listen = format!("{}:{PORT}", kpod.ip);
    echo_server(&mut lab, &kpod.ns, &listen);
    let out =
        p2.run(&["exec", "a1", "sh", "-c", &format!("echo weft-to-kernel | nc -w 3 {} {PORT}", kpod.ip)]);
    if !String::from_utf8_lossy(&out.stdout).contains("weft-to-kernel") {
        failed.push(format!("TCP a1 -> kernel pod: {}", String::from_utf8_lossy(&out.stderr)));
    }
    assert!(failed.is_empty(), "{failed:#?}\n{}", lab.log_tails(3000));

    // `podman rm -f` runs DEL: nothing of the containers is left on either node.
    p2.ok(&["rm", "-f", "-t", "0", "a1", "a2"]);
    p3.ok(&["rm", "-f", "-t", "0", "b1"]);
    for (p, i) in [(&p2, 2), (&p3, 3)] {
        let ns = &lab.node(i).ns;
        assert!(host_ends(ns).is_empty(), "n{i} keeps veths {:?}", host_ends(ns));
        let routes = cmd::ip_in(ns, &["route", "show"]).unwrap();
        assert!(!routes.contains(weft_cni::HOST_PREFIX), "n{i} keeps routes: {routes}");
        assert!(
            allocations(&p.host_local()).is_empty(),
            "n{i} keeps allocations {:?}",
            allocations(&p.host_local())
        );
        let pods = weft_pods(&lab, i);
        assert!(
            pods.iter().all(|(f, _)| !f.starts_with(weft_cni::HOST_PREFIX)),
            "n{i}'s weft keeps {pods:?}"
        );
    }
}
