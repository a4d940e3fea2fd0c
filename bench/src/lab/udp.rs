//! A UDP echo server and a probe that waits for the echo, run in pod namespaces with
//! `ip netns exec <pod> weft-lab udp-echo|udp-probe` (network policy probes over UDP).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Serves forever: every datagram is sent back to where it came from.
pub fn echo_server(listen: SocketAddr) -> std::io::Result<()> {
    let sock = UdpSocket::bind(listen)?;
    println!("listening on {listen}");
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        // A send error (the peer's port unreachable) is the peer's problem, not the server's.
        let _ = sock.send_to(&buf[..n], from);
    }
}

/// How often a probe repeats its datagram while no echo came (a first datagram may be lost
/// while a path learns a MAC; a policy drop loses them all).
const RESEND: Duration = Duration::from_millis(300);

/// Tries every target at once: sends a datagram carrying a per-target token and waits up to
/// `timeout` for that token to come back, resending every 300 ms. One answer per target, in
/// order: whether an echo arrived. Target `i` is probed from source port `first_port + i`
/// (`None`: a port the kernel picks), so that a caller probing the same targets again can make
/// sure no probe reuses an earlier one's 5-tuple, which a connection table may still hold.
pub fn probe(targets: &[SocketAddr], timeout: Duration, first_port: Option<u16>) -> Vec<bool> {
    let one = move |i: usize, to: SocketAddr| -> std::io::Result<bool> {
        let port = first_port.map_or(0, |p| p.wrapping_add(i as u16));
        let sock = UdpSocket::bind(("0.0.0.0", port))?;
        sock.connect(to)?;
        let token = format!("weft-probe {i} {to}");
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            // An ICMP error from an earlier datagram surfaces as a send or receive error:
            // the port is closed, which is no echo, so keep trying until the deadline.
            let _ = sock.send(token.as_bytes());
            sock.set_read_timeout(Some(left.min(RESEND)))?;
            let wait_until = Instant::now() + left.min(RESEND);
            while Instant::now() < wait_until {
                match sock.recv(&mut buf) {
                    Ok(n) if &buf[..n] == token.as_bytes() => return Ok(true),
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        Ok(false)
    };
    let threads: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, &t)| std::thread::spawn(move || one(i, t).unwrap_or(false)))
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(false)).collect()
}
