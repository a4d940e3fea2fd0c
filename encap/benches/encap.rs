//! Criterion micro-benchmarks of the encap crate at the data path's batch size (64):
//! the parse chain, VXLAN and IPIP encap/decap, and TTL decrement.
//! Ids are namespaced `encap::<what>::size=<frame bytes>`; throughput is in frames.
//! Frames sit in 256-byte chunks at 128 bytes of headroom.
//! Inputs are prepared outside the timed loop; IPIP encap/decap, which destroy their
//! input, get fresh copies per batch through `iter_batched_ref` (the copies' cache
//! misses then count against them: read those two as upper bounds).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weft_encap::parse::{ParseOptions, parse_frame};
use weft_encap::wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use weft_encap::wire::udp::{UdpPacket, UdpRepr};
use weft_encap::{
    IpipDecapConfig, IpipParams, IpipTemplate, MacAddr, Span, UdpChecksumPolicy, Vni, VxlanDecapConfig,
    VxlanParams, VxlanTemplate,
};

const BATCH: usize = 64;
const HEADROOM: usize = 128;
/// Chunk size: small enough that the fresh copies the destructive benches take per
/// batch stay in L1, so the copy does not evict what is measured.
const CHUNK: usize = 256;
const FRAME: usize = 64;

const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// 64 UDP frames of FRAME bytes from distinct flows, each in its own 2 KiB chunk
/// at HEADROOM, as an AF_XDP UMEM would hold them.
fn udp_batch() -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|i| {
            let mut c = vec![0u8; CHUNK];
            let f = &mut c[HEADROOM..HEADROOM + FRAME];
            f[..12].copy_from_slice(&[2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2]);
            f[12] = 0x08;
            let payload = (FRAME - 14 - 20 - 8) as u16;
            Ipv4Repr {
                src: Ipv4Addr::new(198, 19, 1, 2),
                dst: Ipv4Addr::new(198, 19, 2, i as u8),
                protocol: IpProtocol::UDP,
                payload_len: 8 + payload,
                ttl: 64,
                tos: 0,
                ident: i as u16,
                dont_frag: true,
            }
            .emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
            let mut udp = UdpPacket::new_unchecked(&mut f[34..]);
            UdpRepr { src_port: 10_000 + i as u16, dst_port: 5201, payload_len: payload }.emit(&mut udp);
            udp.fill_checksum(Ipv4Addr::new(198, 19, 1, 2), Ipv4Addr::new(198, 19, 2, i as u8));
            c
        })
        .collect()
}

fn span() -> Span {
    Span::new(HEADROOM, FRAME)
}

fn vxlan_params() -> VxlanParams {
    VxlanParams::flannel(
        MacAddr([2, 0, 0, 0, 0, 1]),
        MacAddr([2, 0, 0, 0, 0, 2]),
        OUR_IP,
        PEER_IP,
        MacAddr([0x0a, 0x58, 0, 0, 0, 1]),
        MacAddr([0x0a, 0x58, 0, 0, 0, 2]),
    )
}

fn ipip_params() -> IpipParams {
    IpipParams {
        outer_src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        outer_dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        src_ip: OUR_IP,
        dst_ip: PEER_IP,
        ttl: 64,
        tos: 0,
        dont_frag: true,
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("encap");
    g.throughput(Throughput::Elements(BATCH as u64));

    let frames = udp_batch();
    let opts = ParseOptions::default();
    g.bench_function(format!("parse_chain::size={FRAME}"), |b| {
        b.iter(|| {
            for f in &frames {
                black_box(parse_frame(black_box(&f[HEADROOM..HEADROOM + FRAME]), &opts).ok());
            }
        })
    });

    let vx = VxlanTemplate::new(vxlan_params());
    let mut bufs = udp_batch();
    let mut ident = 0u16;
    // Re-encapsulating the same chunk is valid: the inner frame is left intact and the
    // outer headers are rewritten from the template each time.
    g.bench_function(format!("vxlan4::encap::size={FRAME}"), |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                ident = ident.wrapping_add(1);
                black_box(vx.encap(buf, span(), ident).ok());
            }
        })
    });

    let vx_csum = VxlanTemplate::new(VxlanParams { udp_checksum: true, ..vxlan_params() });
    g.bench_function(format!("vxlan4::encap_udp_checksum::size={FRAME}"), |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                black_box(vx_csum.encap(buf, span(), 1).ok());
            }
        })
    });

    let mut encapped = udp_batch();
    let out = encapped.iter_mut().map(|b| vx.encap(b, span(), 1).unwrap()).last().unwrap();
    let dcfg = VxlanDecapConfig {
        local_ip: PEER_IP,
        port: 8472,
        vni: Vni::FLANNEL,
        udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
    };
    g.bench_function(format!("vxlan4::decap::size={FRAME}"), |b| {
        b.iter(|| {
            for buf in &encapped {
                black_box(dcfg.decap(black_box(buf), out).ok());
            }
        })
    });

    let ipip = IpipTemplate::new(ipip_params());
    let fresh = udp_batch();
    g.bench_function(format!("ipip::encap::size={FRAME}"), |b| {
        b.iter_batched_ref(
            || fresh.clone(),
            |bufs| {
                for buf in bufs.iter_mut() {
                    black_box(ipip.encap(buf, span(), 1).ok());
                }
            },
            BatchSize::SmallInput,
        )
    });

    let mut ipip_frames = udp_batch();
    let ipip_out = ipip_frames.iter_mut().map(|b| ipip.encap(b, span(), 1).unwrap()).last().unwrap();
    let icfg = IpipDecapConfig { local_ip: PEER_IP };
    g.bench_function(format!("ipip::decap::size={}", ipip_out.len), |b| {
        b.iter_batched_ref(
            || ipip_frames.clone(),
            |bufs| {
                for buf in bufs.iter_mut() {
                    black_box(icfg.decap(buf, ipip_out).ok());
                }
            },
            BatchSize::SmallInput,
        )
    });

    // TTL decrement runs on the same 64 packets over and over; a packet whose TTL
    // reaches 1 is reset to 255 (checksum recomputed) — once per 254 decrements, so
    // the reset is amortised into the figure rather than hidden in a setup copy.
    let mut ttl_frames = udp_batch();
    for f in ttl_frames.iter_mut() {
        let mut ip = Ipv4Packet::new_unchecked(&mut f[HEADROOM + 14..HEADROOM + FRAME]);
        ip.set_ttl(255);
        ip.fill_checksum();
    }
    g.bench_function(format!("ipv4::ttl_decrement::size={FRAME}"), |b| {
        b.iter(|| {
            for buf in ttl_frames.iter_mut() {
                let mut ip = Ipv4Packet::new_unchecked(&mut buf[HEADROOM + 14..HEADROOM + FRAME]);
                if black_box(ip.decrement_ttl()).is_none() {
                    ip.set_ttl(255);
                    ip.fill_checksum();
                }
            }
        })
    });
    g.finish();
}

criterion_group!(encap, benches);
criterion_main!(encap);
