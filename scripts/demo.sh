#!/usr/bin/env bash
# weft demo: a 3-node lab in network namespaces (no link to the host network) — etcd, one
# kernel-flannel node (flannel.1 VXLAN, the Linux data path) and two weft nodes — then pods
# ping and move TCP data across nodes both ways, a weft node and pods reach each other through
# the host link weft made, `weft status` of a weft node, teardown.
# Run as root (namespaces, XDP, AF_XDP). `make demo` builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP, AF_XDP): sudo make demo" >&2; exit 1; }

weft=$PWD/target/release/weft
lab=$PWD/target/release/weft-lab
prefix=wdemo$$
pids=()
teardown() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$lab" down --prefix "$prefix" >/dev/null 2>&1 || true
}
trap teardown EXIT

step() { printf '\n== %s\n' "$*"; }

step "lab $prefix: etcd, n1 = kernel flannel (vxlan), n2 and n3 = weft (vxlan), one pod each"
"$lab" up --prefix "$prefix" --nodes 1 --weft-nodes 2 --weft-cmd "$weft run --config {config}" | tail -n 6

pod() { echo "$prefix-n$1p1"; }
ip_of() { echo "198.19.$1.2"; }
# Give each weft node a moment to resolve its underlay neighbours through the kernel.
sleep 2

step "ping across nodes (pod -> pod)"
for pair in "2 3" "3 2" "2 1" "1 3"; do
  set -- $pair
  printf 'n%s pod -> n%s pod (%s): ' "$1" "$2" "$(ip_of "$2")"
  ip netns exec "$(pod "$1")" ping -c 3 -i 0.2 -W 1 "$(ip_of "$2")" | grep -o '[0-9]* received.*loss'
done

step "TCP across nodes (weft-lab tcp-send: 100 MB echoed and checked)"
for n in 1 3; do
  ip netns exec "$(pod $n)" "$lab" tcp-echo --listen "$(ip_of $n):7000" >/dev/null 2>&1 &
  pids+=($!)
done
sleep 0.5
printf 'weft n2 -> weft n3:   '; ip netns exec "$(pod 2)" "$lab" tcp-send --to "$(ip_of 3):7000" --bytes 100000000
printf 'weft n2 -> kernel n1: '; ip netns exec "$(pod 2)" "$lab" tcp-send --to "$(ip_of 1):7000" --bytes 100000000
printf 'kernel n1 -> weft n3: '; ip netns exec "$(pod 1)" "$lab" tcp-send --to "$(ip_of 3):7000" --bytes 100000000

step "node <-> pod on weft node n2, through the host link weft made (weft0: route, masquerade)"
ip netns exec "$prefix-n2" ip -4 -br addr show dev weft0
ip netns exec "$prefix-n2" ip -4 route show dev weft0
for n in 2 3 1; do
  printf 'node n2 -> n%s pod (%s): ' "$n" "$(ip_of "$n")"
  ip netns exec "$prefix-n2" ping -c 3 -i 0.2 -W 1 "$(ip_of "$n")" | grep -o '[0-9]* received.*loss'
done
for n in 2 3 1; do
  printf 'n2 pod -> node n%s (198.18.0.%s): ' "$n" "$n"
  ip netns exec "$(pod 2)" ping -c 3 -i 0.2 -W 1 "198.18.0.$n" | grep -o '[0-9]* received.*loss'
done

step "weft status on n2"
ip netns exec "$prefix-n2" "$weft" status --socket "/run/weft-lab/$prefix/n2.weft.sock"

step "tearing down"
