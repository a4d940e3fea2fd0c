// SPDX-License-Identifier: MIT OR Apache-2.0
//
// weft's XDP programs (SPEC §2). Compiled by engine/build.rs with
// `clang -O2 -g -target bpf`; loaded and attached by src/port/xdp_filter.rs.
//
// weft_filter  (uplink): redirect to the AF_XDP socket of the receiving queue
//              only what the engine owns:
//                (a) UDP to our PublicIP and our VXLAN port,
//                (b) IP protocol 4 (IPIP) to our PublicIP,
//                (c) IPv4 to our pod subnet (never our PublicIP itself);
//              everything else (ARP, SSH, etcd, ICMP to the node, VLAN-tagged
//              frames, IPv6) is XDP_PASS: the node stays reachable.
// weft_pod     (pod ports): loaded once per node and attached to every pod-side
//              veth; every frame to the AF_XDP socket of the pod whose veth
//              received it (weft_pod_slots: ifindex -> slot, weft_pod_xsks:
//              slot -> socket); XDP_PASS while the pod has no socket yet.
// weft_all     (benchmarks, tests): every frame to the AF_XDP socket of its queue.
// weft_drop    (benchmarks): XDP_DROP everything, the baseline of bench/README.md.
//
// Parameters are read-only globals (.rodata) written by the loader before the
// program is loaded: no recompilation per node. All multi-byte values are in
// network byte order, exactly as they appear in the packet.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// One AF_XDP socket per RX queue, indexed by ctx->rx_queue_index.
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} weft_xsks SEC(".maps");

// Pod ports: the slot of each pod veth (by ifindex) and the socket of each slot.
// The loader sizes both to the node's pod slots.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} weft_pod_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} weft_pod_xsks SEC(".maps");

volatile const __u32 weft_public_ip = 0;  // our PublicIP, network order
volatile const __u16 weft_vxlan_port = 0; // VXLAN UDP port, network order; 0 = no VXLAN
volatile const __u32 weft_pod_net = 0;    // pod subnet address, network order
volatile const __u32 weft_pod_mask = 0;   // pod subnet mask, network order; 0 = no pod subnet

#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

static __always_inline int to_engine(struct xdp_md *ctx)
{
	// XDP_PASS when no socket is bound to this queue: the kernel keeps the frame.
	return bpf_redirect_map(&weft_xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int weft_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	// VLAN-tagged (0x8100, 0x88a8), ARP, IPv6 and anything else: the kernel's.
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_PASS;

	__u32 daddr = ip->daddr;
	if (daddr == weft_public_ip) {
		if (ip->protocol == IPPROTO_IPIP)
			return to_engine(ctx);
		if (ip->protocol != IPPROTO_UDP || weft_vxlan_port == 0)
			return XDP_PASS;
		// Fragments carry no (or a partial) UDP header: the kernel reassembles.
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFMASK))
			return XDP_PASS;
		struct udphdr *udp = (void *)ip + ip->ihl * 4;
		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		if (udp->dest == weft_vxlan_port)
			return to_engine(ctx);
		return XDP_PASS;
	}
	if (weft_pod_mask != 0 && (daddr & weft_pod_mask) == weft_pod_net)
		return to_engine(ctx);
	return XDP_PASS;
}

SEC("xdp")
int weft_pod(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *slot = bpf_map_lookup_elem(&weft_pod_slots, &ifindex);

	if (!slot)
		return XDP_PASS;
	// XDP_PASS when the slot has no socket: the kernel keeps the frame.
	return bpf_redirect_map(&weft_pod_xsks, *slot, XDP_PASS);
}

SEC("xdp")
int weft_all(struct xdp_md *ctx)
{
	return to_engine(ctx);
}

SEC("xdp")
int weft_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
