//! Unauthenticated clients against the device API, from the test itself on loopback: a
//! connection flood and stalled bodies from other loopback addresses (127.0.0.2, .3) must
//! not keep real devices (127.0.0.1) from enrolling and checking in, and each is held only
//! within its caps.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::Duration;

use apiary_tests::{Agent, Backend};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

const PER_ADDRESS: usize = 8;

/// A TCP connection to `target` from the loopback address `source`.
fn connect_from(source: Ipv4Addr, target: SocketAddr) -> TcpStream {
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(target) = target else {
        panic!("the device API listens on IPv4 loopback")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(source, 0);
        let rc = libc::bind(fd, (&raw const local).cast(), len);
        assert_eq!(rc, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*target.ip(), target.port());
        let rc = libc::connect(fd, (&raw const remote).cast(), len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

/// True once the server has closed `stream` (EOF or reset), waiting as long as it takes.
fn closed_by_server(stream: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                );
            }
        }
    }
}

/// Still open: a non-blocking read finds nothing to read rather than an EOF.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 1];
    let open = matches!(stream.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).expect("blocking");
    open
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection without a client certificate (as an enrolling device, or anyone).
fn tls_from(backend: &Backend, source: Ipv4Addr) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(backend.data_dir().join("ca.crt")).expect("ca.crt");
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = connect_from(source, device_addr(backend));
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("read timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}

fn device_addr(backend: &Backend) -> SocketAddr {
    backend
        .device_url
        .trim_start_matches("https://")
        .parse()
        .expect("host:port")
}

/// The status line and body of the answer to `head` (a request without its body).
fn answer(tls: &mut Tls, head: &str) -> (u16, String) {
    tls.write_all(head.as_bytes()).expect("request sent");
    tls.flush().expect("request flushed");
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if let Some(end) = find(&text, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&text[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if text.len() >= end + 4 + length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    (status, text)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A backend holding `PER_ADDRESS` connections per address, closing idle ones after
/// `idle_seconds`.
fn backend_with_caps(idle_seconds: u32) -> Backend {
    let mut backend = Backend::start();
    backend.extra_args = vec![
        "--device-max-per-address".into(),
        PER_ADDRESS.to_string(),
        "--device-idle-timeout".into(),
        idle_seconds.to_string(),
    ];
    backend.restart();
    backend
}

#[test]
fn a_connection_flood_from_one_address_is_capped_and_devices_are_still_served() {
    // Idle timeout well past the handshake timeout (10 s), so the held connections stay
    // open while the test looks at them.
    let backend = backend_with_caps(60);
    let flooder = Ipv4Addr::new(127, 0, 0, 2);
    // Bounded: five times what the address may hold, none of them saying a word.
    let mut flood: Vec<TcpStream> = (0..PER_ADDRESS * 5)
        .map(|_| connect_from(flooder, device_addr(&backend)))
        .collect();
    let extra = flood.split_off(PER_ADDRESS);
    for mut stream in extra {
        assert!(
            closed_by_server(&mut stream),
            "a connection over the cap is closed"
        );
    }
    // The first ones are held (until the handshake timeout), the rest were closed at once.
    let held = flood.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        held, PER_ADDRESS,
        "the address keeps its {PER_ADDRESS} places"
    );

    // Meanwhile a real device enrols and checks in.
    let agent = Agent::new("beside-the-flood");
    let id = backend.enroll(&agent, "/lab");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(backend.device(&id)["last_checkin"].is_number());

    // Silent connections do not outlive the handshake timeout.
    for mut stream in flood {
        assert!(closed_by_server(&mut stream));
    }
}

#[test]
fn stalled_and_oversized_bodies_are_cut_off_and_devices_are_still_served() {
    let backend = backend_with_caps(3);
    let slow = Ipv4Addr::new(127, 0, 0, 3);
    let head = |path: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
        )
    };
    // Enrolment bodies that start and stall, as many as the address may hold.
    let mut stalled: Vec<Tls> = (0..PER_ADDRESS)
        .map(|_| {
            let mut tls = tls_from(&backend, slow);
            tls.write_all(head("/v1/bootstrap", 100_000).as_bytes())
                .expect("head");
            tls.write_all(b"{\"payload\": \"").expect("a first byte");
            tls.flush().expect("flush");
            tls
        })
        .collect();
    let agent = Agent::new("beside-the-stall");
    let id = backend.enroll(&agent, "/lab");
    assert_eq!(agent.run_once().0, 0);
    assert!(backend.device(&id)["last_checkin"].is_number());
    // The idle timeout (3 s here) closes every stalled body.
    for tls in &mut stalled {
        assert!(closed_by_server(tls), "a stalled body is cut off");
    }

    // A declared body over the route's limit is refused before it is sent.
    let mut tls = tls_from(&backend, slow);
    let (status, text) = answer(&mut tls, &head("/v1/bootstrap", 10 * 1024 * 1024));
    assert_eq!(status, 413, "{text}");
    // A check-in without a device certificate is refused before its body is read.
    let mut tls = tls_from(&backend, slow);
    let (status, text) = answer(&mut tls, &head("/v1/checkin", 1024 * 1024));
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("a device certificate is required"), "{text}");

    // And the device goes on checking in.
    assert_eq!(agent.run_once().0, 0);
}
