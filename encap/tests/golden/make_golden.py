#!/usr/bin/python3
"""Builds weft's golden frames with scapy, an implementation independent of ours.

Writes golden.json: a list of fixtures, each with the frame bytes in hex and the
field values scapy put there (or the inputs weft must turn into exactly these
bytes). Regenerate with `make fixtures`; the output is committed, so tests never
need scapy.

Addresses follow the lab plan (RFC 2544): underlay 198.18.0.0/24, pods
198.19.0.0/16.
"""
import json
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw, raw
from scapy.layers.inet import IPOption_NOP, IPOption_RR
from scapy.layers.vxlan import VXLAN

OUR_MAC = "02:00:c6:12:00:01"
PEER_MAC = "02:00:c6:12:00:02"
OUR_IP = "198.18.0.1"
PEER_IP = "198.18.0.2"
OUR_VTEP = "0a:58:00:00:00:01"
PEER_VTEP = "0a:58:00:00:00:02"
POD_MAC = "02:00:00:00:01:02"
GW_MAC = "02:00:00:00:01:01"
POD_IP = "198.19.1.2"
REMOTE_POD_IP = "198.19.2.2"
GW_IP = "198.19.1.1"


def hexb(pkt):
    return raw(pkt).hex()


def pod_icmp():
    return (Ether(src=POD_MAC, dst=GW_MAC) /
            IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=64, id=0x1234, flags="DF") /
            ICMP(type=8, id=7, seq=1) / Raw(bytes(range(56))))


def pod_tcp():
    return (Ether(src=POD_MAC, dst=GW_MAC) /
            IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=64, id=0x2222, flags="DF") /
            TCP(sport=40000, dport=5201, flags="PA", seq=1, ack=1) / Raw(b"weft golden payload"))


def vxlan_case(name, inner, vni, dport, sport, ident, udp_checksum):
    rewritten = inner.copy()
    rewritten[Ether].src = OUR_VTEP
    rewritten[Ether].dst = PEER_VTEP
    udp = UDP(sport=sport, dport=dport)
    if not udp_checksum:
        udp.chksum = 0
    outer = (Ether(src=OUR_MAC, dst=PEER_MAC) /
             IP(src=OUR_IP, dst=PEER_IP, ttl=64, id=ident, flags=0, tos=0) /
             udp / VXLAN(flags=0x08, vni=vni) / rewritten)
    return {
        "name": name, "kind": "vxlan",
        "inner": hexb(inner), "frame": hexb(outer),
        "vni": vni, "dst_port": dport, "src_port": sport, "ident": ident,
        "udp_checksum": udp_checksum,
        "outer_src_mac": OUR_MAC, "outer_dst_mac": PEER_MAC, "src_ip": OUR_IP, "dst_ip": PEER_IP,
        "inner_src_mac": OUR_VTEP, "inner_dst_mac": PEER_VTEP,
    }


def main(out_dir):
    fixtures = []

    udp = (Ether(src=POD_MAC, dst=GW_MAC) /
           IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=17, id=99) /
           UDP(sport=1234, dport=5678) / Raw(b"weft"))
    fixtures.append({"name": "ipv4_udp", "kind": "parse", "frame": hexb(udp),
                     "src": POD_IP, "dst": REMOTE_POD_IP, "ttl": 17, "protocol": 17,
                     "src_port": 1234, "dst_port": 5678, "udp_len": 12, "header_len": 20,
                     "vlan": None})

    opts = (Ether(src=POD_MAC, dst=GW_MAC) /
            IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=5, options=[IPOption_RR(routers=["198.18.0.9"]), IPOption_NOP()]) /
            UDP(sport=53, dport=53) / Raw(b"opt"))
    fixtures.append({"name": "ipv4_options_udp", "kind": "parse", "frame": hexb(opts),
                     "src": POD_IP, "dst": REMOTE_POD_IP, "ttl": 5, "protocol": 17,
                     "src_port": 53, "dst_port": 53, "udp_len": 11,
                     "header_len": IP(raw(opts[IP])).ihl * 4, "vlan": None})

    tagged = (Ether(src=POD_MAC, dst=GW_MAC) / Dot1Q(vlan=100, prio=3) /
              IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=9) / UDP(sport=7, dport=9) / Raw(b"vlan"))
    fixtures.append({"name": "vlan_ipv4_udp", "kind": "parse", "frame": hexb(tagged),
                     "src": POD_IP, "dst": REMOTE_POD_IP, "ttl": 9, "protocol": 17,
                     "src_port": 7, "dst_port": 9, "udp_len": 12, "header_len": 20, "vlan": 100})

    req = Ether(src=POD_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=POD_MAC, psrc=POD_IP, pdst=GW_IP)
    rep = Ether(src=GW_MAC, dst=POD_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW_IP, hwdst=POD_MAC, pdst=POD_IP)
    fixtures.append({"name": "arp_request_and_reply", "kind": "arp", "frame": hexb(req),
                     "reply": hexb(rep), "our_mac": GW_MAC})

    fixtures.append(vxlan_case("vxlan_flannel", pod_icmp(), 1, 8472, 51234, 0x0101, False))
    fixtures.append(vxlan_case("vxlan_flannel_tcp_checksummed", pod_tcp(), 1, 8472, 40001, 0x0202, True))
    fixtures.append(vxlan_case("vxlan_calico", pod_icmp(), 4096, 4789, 60000, 0x0303, True))

    inner = pod_tcp()
    ipip = (Ether(src=OUR_MAC, dst=PEER_MAC) /
            IP(src=OUR_IP, dst=PEER_IP, ttl=64, id=0x0404, flags="DF", proto=4) / inner[IP])
    fixtures.append({"name": "ipip", "kind": "ipip", "inner": hexb(inner), "frame": hexb(ipip),
                     "ident": 0x0404, "outer_src_mac": OUR_MAC, "outer_dst_mac": PEER_MAC,
                     "src_ip": OUR_IP, "dst_ip": PEER_IP})

    orig = (Ether(src=POD_MAC, dst=GW_MAC) /
            IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=1, id=0x0505, flags="DF") /
            UDP(sport=33434, dport=33435) / Raw(bytes(range(32))))
    orig_ip = raw(orig[IP])
    te = IP(src=GW_IP, dst=POD_IP, ttl=64, id=0, tos=0xc0) / ICMP(type=11, code=0) / Raw(orig_ip[:28])
    fixtures.append({"name": "icmp_time_exceeded", "kind": "icmp", "original": hexb(orig),
                     "icmp": hexb(te), "from": GW_IP, "ttl": 64, "mtu": None})
    big = (Ether(src=POD_MAC, dst=GW_MAC) /
           IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=64, id=0x0606, flags="DF") /
           TCP(sport=40000, dport=5201) / Raw(bytes(1460)))
    fn = IP(src=GW_IP, dst=POD_IP, ttl=64, id=0, tos=0xc0) / ICMP(type=3, code=4, nexthopmtu=1450) / Raw(raw(big[IP])[:28])
    fixtures.append({"name": "icmp_fragmentation_needed", "kind": "icmp", "original": hexb(big),
                     "icmp": hexb(fn), "from": GW_IP, "ttl": 64, "mtu": 1450})

    before = IP(src=POD_IP, dst=REMOTE_POD_IP, ttl=64, id=0x0707, proto=6) / Raw(bytes(20))
    after = before.copy()
    after.ttl = 63
    after.chksum = None
    fixtures.append({"name": "ttl_decrement", "kind": "ttl", "before": hexb(before), "after": hexb(after)})

    with open(f"{out_dir}/golden.json", "w") as f:
        json.dump({"generator": "scapy " + __import__("scapy").VERSION, "fixtures": fixtures}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
