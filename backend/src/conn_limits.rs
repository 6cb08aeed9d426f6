//! What one listener lets clients hold: connections in all and per source address,
//! handshakes at once, and how long a connection may sit without moving a byte.
//!
//! Every cap is on something an unauthenticated client controls, so none of them trusts the
//! client to be quick or to go away.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The caps of one listener (`apiary-backend serve --device-*` for the device API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections; at the cap the listener stops accepting until one closes.
    pub max_connections: usize,
    /// Open connections from one source address; more are closed at once.
    pub max_per_address: usize,
    /// TLS handshakes in progress.
    pub max_handshakes: usize,
    /// Time to wait for a handshake slot and complete the handshake.
    pub handshake_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed (stalled reads,
    /// idle keep-alive, a reader that stopped reading).
    pub idle_timeout: Duration,
    /// Lifetime of a connection without a client certificate (enrolment and its polls
    /// need seconds; a device's downloads use its certificate).
    pub unauthenticated_lifetime: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_per_address: 256,
            max_handshakes: 256,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            unauthenticated_lifetime: Duration::from_secs(60),
        }
    }
}

/// Shared counters behind [`ConnLimits`].
pub struct Gate {
    pub limits: ConnLimits,
    connections: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one connection's place; dropping it frees the place.
pub struct Admission {
    _connection: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self
            .per_address
            .lock()
            .expect("address counts not poisoned");
        if let Some(n) = counts.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes.max(1))),
            per_address: Arc::default(),
            limits,
        })
    }

    /// Waits for a free connection place (called before `accept`, so a full server leaves
    /// new connections in the kernel's backlog instead of taking them on).
    pub async fn connection_slot(&self) -> OwnedSemaphorePermit {
        self.connections
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed")
    }

    /// Admits a connection from `address`, or `None` when that address holds its cap.
    pub fn admit(&self, slot: OwnedSemaphorePermit, address: IpAddr) -> Option<Admission> {
        let mut counts = self
            .per_address
            .lock()
            .expect("address counts not poisoned");
        let n = counts.entry(address).or_insert(0);
        if *n >= self.limits.max_per_address {
            return None;
        }
        *n += 1;
        Some(Admission {
            _connection: slot,
            address,
            per_address: self.per_address.clone(),
        })
    }

    /// A handshake slot; hold it until the handshake is over.
    pub async fn handshake_slot(&self) -> OwnedSemaphorePermit {
        self.handshakes
            .clone()
            .acquire_owned()
            .await
            .expect("the handshake semaphore is never closed")
    }
}

/// A stream that fails with `TimedOut` once no byte has moved for `idle`.
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    pub fn new(inner: S, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// After the inner stream returned `Pending`: an error if the deadline has passed, else
    /// `Pending` with the deadline's waker registered too.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no data moved for {} s", self.idle.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.stalled(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.stalled(cx),
        }
    }

    // rustls hands over a flight as one chunk per record; without these each record
    // would be its own send(2), and every send on a busy loopback wakes the peer.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.moved();
                Poll::Ready(result)
            }
            Poll::Pending => this.stalled(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.stalled(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn an_address_at_its_cap_is_refused_and_freed_places_are_reused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let gate = Gate::new(ConnLimits {
                max_connections: 10,
                max_per_address: 2,
                ..ConnLimits::default()
            });
            let a: IpAddr = "127.0.0.2".parse().expect("address");
            let b: IpAddr = "127.0.0.3".parse().expect("address");
            let first = gate.admit(gate.connection_slot().await, a).expect("first");
            let second = gate.admit(gate.connection_slot().await, a).expect("second");
            assert!(gate.admit(gate.connection_slot().await, a).is_none());
            assert!(gate.admit(gate.connection_slot().await, b).is_some());
            drop(first);
            assert!(gate.admit(gate.connection_slot().await, a).is_some());
            // Refused and dropped admissions gave their connection places back.
            assert_eq!(gate.connections.available_permits(), 9);
            drop(second);
            assert_eq!(gate.connections.available_permits(), 10);
            assert!(gate.per_address.lock().expect("lock").is_empty());
        });
    }

    #[test]
    fn a_stream_that_stops_moving_times_out_and_one_that_moves_does_not() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, server) = tokio::io::duplex(64);
            let mut server = IdleTimeout::new(server, Duration::from_secs(60));
            let mut client = client;
            let mut buf = [0u8; 8];
            // Bytes every 50 s keep the stream alive across 200 s.
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                client.write_all(b"x").await.expect("write");
                assert_eq!(server.read(&mut buf).await.expect("read"), 1);
            }
            let err = server.read(&mut buf).await.expect_err("idle for 60 s");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }
}
