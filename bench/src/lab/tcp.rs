//! A tiny TCP echo server and a client that checks the echo, run in pod namespaces with
//! `ip netns exec <pod> weft-lab tcp-echo|tcp-send` (no netcat needed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Serves forever: every connection gets its bytes echoed back, one thread each.
pub fn echo_server(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("listening on {listen}");
    for stream in listener.incoming() {
        let mut stream = stream?;
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

/// What a transfer did.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Bytes sent and received back identical.
    pub bytes: usize,
    /// Time from connect to the last echoed byte.
    pub elapsed: Duration,
}

/// The byte at offset `i` of the test stream (not periodic in any small window, so a
/// dropped or duplicated segment cannot go unnoticed).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Connects to `to` (retrying for up to `connect_timeout` while the server starts), sends
/// `bytes` bytes and checks that exactly the same bytes come back.
pub fn send_and_check(to: SocketAddr, bytes: usize, connect_timeout: Duration) -> std::io::Result<Transfer> {
    let deadline = Instant::now() + connect_timeout;
    let mut stream = loop {
        match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let start = Instant::now();
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut chunk = vec![0u8; 8192];
        let mut sent = 0;
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            for (j, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(sent + j);
            }
            writer.write_all(&chunk[..n])?;
            sent += n;
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut buf = vec![0u8; 16384];
    let mut got = 0;
    loop {
        let n = stream.read(&mut buf)?;
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
    }
    sender.join().map_err(|_| std::io::Error::other("sender thread panicked"))??;
    if got != bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("sent {bytes} bytes, {got} came back"),
        ));
    }
    Ok(Transfer { bytes, elapsed: start.elapsed() })
}
