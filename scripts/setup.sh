#!/usr/bin/env bash
# Installs what weft needs on a Debian 12 machine. Idempotent and fast when
# everything is present: it asks dpkg first and only calls apt-get for what is missing.
#
#   scripts/setup.sh            packages for build, test and demo
#   scripts/setup.sh fixtures   plus what regenerates the golden frames (scapy)
#   scripts/setup.sh fuzz       plus cargo-fuzz
#   scripts/setup.sh bench      plus perf (make bench profiles core paths that miss their goal)
set -euo pipefail

packages=(
  build-essential pkg-config m4 clang llvm libelf-dev zlib1g-dev libbpf-dev  # XDP program, libxdp via xsk-rs
  protobuf-compiler                                                          # etcd-client
  etcd-server etcd-client                                                    # real etcd for tests and the lab
  iproute2 iputils-ping tcpdump ethtool procps nftables                      # the netns lab; nft for weft's masquerade rules
  sockperf iperf3                                                            # real tools between lab pods (weft-bench tools)
  containernetworking-plugins podman runc busybox-static util-linux         # CNI plugin tests (host-local, podman e2e, nsenter)
  bird2                                                                      # BGP peers in the lab (lab_bgp_bird)
  wireguard-go wireguard-tools                                               # flannel wireguard peers in the lab (wireguard-go over TUN)
)
for extra in "$@"; do
  case "$extra" in
    fixtures) packages+=(python3-scapy) ;;
    fuzz) ;;
    bench) packages+=(linux-perf) ;;
    *) echo "setup.sh: unknown extra '$extra' (known: fixtures, fuzz, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

for extra in "$@"; do
  if [ "$extra" = fuzz ] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup.sh: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
  fi
done
exit 0
