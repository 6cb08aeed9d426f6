//! A loopback TCP relay that cuts one transfer halfway, as a flaky uplink would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

/// Forwards connections to a target. The first connection that carries more than
/// `cut_after` bytes toward the client is cut right there, once; all others pass untouched.
pub struct CutRelay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    connections: Arc<AtomicU32>,
}

impl CutRelay {
    /// Starts relaying `127.0.0.1:port` to `target` (`host:port`).
    pub fn start(target: &str, cut_after: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU32::new(0));
        let (target, cut2, conns2) = (target.to_string(), cut.clone(), connections.clone());
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                conns2.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let cut = cut2.clone();
                thread::spawn(move || relay(client, server, cut_after, cut));
            }
        });
        Self {
            port,
            cut,
            connections,
        }
    }

    /// True once the relay has cut a transfer.
    pub fn has_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }
}

fn relay(client: TcpStream, server: TcpStream, cut_after: u64, cut: Arc<AtomicBool>) {
    let (mut client_r, mut server_w) = (
        client.try_clone().expect("clone socket"),
        server.try_clone().expect("clone socket"),
    );
    let upstream = thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let mut sent = 0u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let may_cut = !cut.load(Ordering::SeqCst);
        if may_cut && sent + n as u64 > cut_after {
            let keep = (cut_after - sent) as usize;
            let _ = client_w.write_all(&buf[..keep]);
            cut.store(true, Ordering::SeqCst);
            let _ = client_w.shutdown(Shutdown::Both);
            let _ = server_r.shutdown(Shutdown::Both);
            break;
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = upstream.join();
}
