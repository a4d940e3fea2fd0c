//! A tiny TCP echo server and a client that checks the echo, run in pod namespaces with
//! `ip netns exec <pod> weft-lab tcp-echo|tcp-send` (no netcat needed).
//!
//! The client either sends a fixed number of bytes as fast as the path goes, or keeps a
//! stream running for a while at a paced rate ([`Amount`]); either way every echoed byte is
//! checked against what was sent, and the longest time without echo progress is reported so
//! that a stall the connection recovers from (a route withdrawn and restored) is visible.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Serves forever: every connection gets its bytes echoed back, one thread each; prints
/// `connection from <addr>:<port>` for each.
pub fn echo_server(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("listening on {listen}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        // The source address as the server sees it (after any NAT on the way), for tests.
        if let Ok(peer) = stream.peer_addr() {
            println!("connection from {peer}");
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

/// Tries every target at once: connects within `timeout`, sends one byte and reads its echo
/// back. One answer per target, in order: whether the connection carried data both ways
/// (network policy probes: a refused connection is a SYN dropped, so a timeout).
pub fn probe(targets: &[SocketAddr], timeout: Duration) -> Vec<bool> {
    let one = move |to: SocketAddr| -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&to, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(&[0x5a])?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        if b[0] != 0x5a {
            return Err(std::io::Error::other("echoed the wrong byte"));
        }
        Ok(())
    };
    let threads: Vec<_> = targets.iter().map(|&t| std::thread::spawn(move || one(t).is_ok())).collect();
    threads.into_iter().map(|t| t.join().unwrap_or(false)).collect()
}

/// How much the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Exactly this many bytes, as fast as the connection takes them.
    Bytes(usize),
    /// Keep sending for this long, at most `mbit` Mbit/s (`None`: unpaced).
    For {
        /// How long to send.
        duration: Duration,
        /// Pacing, in Mbit/s.
        mbit: Option<u32>,
    },
}

/// What a transfer did.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Bytes sent and received back identical.
    pub bytes: usize,
    /// Time from connect to the last echoed byte.
    pub elapsed: Duration,
    /// The longest time between two reads that brought echoed bytes (counted from the
    /// connect): a path that stops forwarding for a while shows up here even when TCP
    /// recovers afterwards.
    pub longest_stall: Duration,
}

/// How long a read may wait for echoed bytes before the stream counts as broken.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CHUNK: usize = 8192;

/// The byte at offset `i` of the test stream (not periodic in any small window, so a
/// dropped or duplicated segment cannot go unnoticed).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Connects to `to` (retrying for up to `connect_timeout` while the server starts), sends
/// `bytes` bytes and checks that exactly the same bytes come back.
pub fn send_and_check(to: SocketAddr, bytes: usize, connect_timeout: Duration) -> std::io::Result<Transfer> {
    transfer(to, Amount::Bytes(bytes), connect_timeout)
}

fn connect(to: SocketAddr, connect_timeout: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + connect_timeout;
    loop {
        match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Writes the test stream to `writer` as `amount` says, then shuts the write side down;
/// returns how many bytes were written.
fn send(mut writer: TcpStream, amount: Amount, start: Instant) -> std::io::Result<usize> {
    let mut chunk = [0u8; CHUNK];
    let mut sent = 0;
    loop {
        let n = match amount {
            Amount::Bytes(bytes) => CHUNK.min(bytes - sent),
            Amount::For { duration, .. } if start.elapsed() >= duration => 0,
            Amount::For { .. } => CHUNK,
        };
        if n == 0 {
            break;
        }
        if let Amount::For { mbit: Some(mbit), .. } = amount {
            // Pace: never more than `mbit` Mbit/s averaged since the start.
            let due = Duration::from_secs_f64((sent + n) as f64 * 8.0 / (f64::from(mbit.max(1)) * 1e6));
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        for (j, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(sent + j);
        }
        writer.write_all(&chunk[..n])?;
        sent += n;
    }
    writer.shutdown(std::net::Shutdown::Write)?;
    Ok(sent)
}

/// Connects to `to` (retrying for up to `connect_timeout` while the server starts), sends
/// what `amount` says and checks that exactly the same bytes come back, each within
/// [`READ_TIMEOUT`] of the previous ones.
pub fn transfer(to: SocketAddr, amount: Amount, connect_timeout: Duration) -> std::io::Result<Transfer> {
    let mut stream = connect(to, connect_timeout)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let start = Instant::now();
    let writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || send(writer, amount, start));
    let mut buf = vec![0u8; 16384];
    let (mut got, mut last, mut longest_stall) = (0, start, Duration::ZERO);
    loop {
        let n = stream.read(&mut buf).map_err(|e| {
            std::io::Error::new(e.kind(), format!("after {got} echoed bytes, {:?} in: {e}", start.elapsed()))
        })?;
        if n == 0 {
            break;
        }
        if let Some(j) = (0..n).find(|&j| buf[j] != pattern(got + j)) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("echoed byte {} differs", got + j),
            ));
        }
        got += n;
        let now = Instant::now();
        longest_stall = longest_stall.max(now - last);
        last = now;
    }
    let sent = sender.join().map_err(|_| std::io::Error::other("sender thread panicked"))??;
    if got != sent {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("sent {sent} bytes, {got} came back"),
        ));
    }
    Ok(Transfer { bytes: sent, elapsed: start.elapsed(), longest_stall })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut out = stream.try_clone().unwrap();
                std::thread::spawn(move || std::io::copy(&mut stream, &mut out));
            }
        });
        addr
    }

    #[test]
    fn a_timed_stream_runs_for_its_duration_at_its_pace_and_comes_back_whole() {
        let to = loopback_echo();
        let amount = Amount::For { duration: Duration::from_millis(600), mbit: Some(8) };
        let t = transfer(to, amount, Duration::from_secs(2)).unwrap();
        assert!(t.elapsed >= Duration::from_millis(600), "{t:?}");
        // 8 Mbit/s for 0.6 s is 600 kB; pacing never runs ahead of the rate.
        assert!(t.bytes <= 600_000 + CHUNK && t.bytes >= 100_000, "{t:?}");
        assert!(t.longest_stall < t.elapsed, "{t:?}");
    }

    #[test]
    fn a_fixed_amount_comes_back_byte_for_byte() {
        let t = send_and_check(loopback_echo(), 1_000_003, Duration::from_secs(2)).unwrap();
        assert_eq!(t.bytes, 1_000_003);
    }

    #[test]
    fn a_server_that_echoes_something_else_is_caught() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&vec![0xa5; n]).is_err() {
                    break;
                }
            }
        });
        let err = send_and_check(addr, 100_000, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    }
}
