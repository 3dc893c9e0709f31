//! Connections and rates: what a client may hold and how often it may fail.
//!
//! Both front ends (HTTP and Flight SQL) accept their TCP connections through one
//! [`Net`], which enforces:
//!
//! * a **global connection cap** and a **per-address cap** (a connection over either is
//!   closed at once, before any TLS handshake, and counted in `/metrics`);
//! * a **header timeout**: a connection must deliver a complete request head within
//!   `header_timeout` of its first byte (or of connecting, for its first request), so a
//!   client that dribbles its headers (or sends nothing) is closed; over HTTP the body
//!   of a request must then arrive within the same time;
//! * an **idle timeout**: a connection with no request in progress and no byte moving
//!   either way for `idle_timeout` is closed (a request in progress, such as a long
//!   query, keeps its connection whatever the time);
//! * a **per-address limit on failed authentications** (401 and 403 answers over HTTP,
//!   `Unauthenticated` and `PermissionDenied` over Flight SQL, counted together): after
//!   `auth_failures` within `auth_window`, every request from that address is answered
//!   429 with `Retry-After` (gRPC `ResourceExhausted` with a `retry-after` header) until
//!   the oldest failure leaves the window. Throttled requests are not audited (that is
//!   their point) but are counted in `/metrics`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The limits of [`Net`] (from `dhub serve` flags).
#[derive(Debug, Clone)]
pub struct NetLimits {
    /// Open connections at once, all clients (both listeners together).
    pub max_connections: usize,
    /// Open connections at once from one client address.
    pub max_connections_per_address: usize,
    /// Time to deliver a request's headers (and an HTTP request's body).
    pub header_timeout: Duration,
    /// A connection with no request in progress and no traffic is closed after this.
    pub idle_timeout: Duration,
    /// Failed authentications one address may make within `auth_window`.
    pub auth_failures: usize,
    /// The window of `auth_failures`.
    pub auth_window: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 128,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            auth_failures: 20,
            auth_window: Duration::from_secs(60),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Connections closed at once because a cap was reached.
    pub refused: AtomicU64,
    /// Connections closed by the header or idle timeout.
    pub timed_out: AtomicU64,
    /// Requests answered 429 because their address failed authentication too often.
    pub throttled: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_addr: HashMap<IpAddr, usize>,
}

/// The connection caps and the failed-authentication limiter shared by every listener.
#[derive(Debug)]
pub struct Net {
    limits: NetLimits,
    open: Mutex<Open>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Counters for `/metrics`.
    pub counters: NetCounters,
    last_warning: Mutex<Option<Instant>>,
}

/// Addresses the failure limiter remembers at most (older ones are forgotten first).
const MAX_TRACKED_ADDRESSES: usize = 100_000;

impl Net {
    /// A new set of caps and limiters.
    pub fn new(limits: NetLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(Open::default()),
            failures: Mutex::new(HashMap::new()),
            counters: NetCounters::default(),
            last_warning: Mutex::new(None),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &NetLimits {
        &self.limits
    }

    /// Logs `what` at most once every 10 seconds (a flood must not flood the log).
    fn warn_now(&self, what: &str) {
        let mut last = lock(&self.last_warning);
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!("{what}");
        }
    }

    /// The connection counters in Prometheus text.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let open = lock(&self.open).total;
        let mut s = String::new();
        for (name, help, v) in [
            (
                "dhub_connections_open",
                "Open client connections (both listeners).",
                open as u64,
            ),
            (
                "dhub_connections_refused_total",
                "Connections closed at once at a connection cap.",
                self.counters.refused.load(Ordering::Relaxed),
            ),
            (
                "dhub_connections_timed_out_total",
                "Connections closed by the header or idle timeout.",
                self.counters.timed_out.load(Ordering::Relaxed),
            ),
            (
                "dhub_auth_throttled_total",
                "Requests answered 429 after repeated failed authentications from their address.",
                self.counters.throttled.load(Ordering::Relaxed),
            ),
        ] {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} {kind}");
            let _ = writeln!(s, "{name} {v}");
        }
        s
    }

    /// A permit for a new connection from `ip`, or `None` over a cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut o = lock(&self.open);
        let mine = o.by_addr.get(&ip).copied().unwrap_or(0);
        if o.total >= self.limits.max_connections || mine >= self.limits.max_connections_per_address
        {
            let global = o.total >= self.limits.max_connections;
            drop(o);
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            self.warn_now(if global {
                "connection refused: the server's connection cap (--max-connections) is reached"
            } else {
                "connection refused: one address reached its connection cap (--max-connections-per-address)"
            });
            return None;
        }
        o.total += 1;
        *o.by_addr.entry(ip).or_default() += 1;
        Some(Permit {
            net: self.clone(),
            ip,
        })
    }

    /// `Some(seconds)` to wait when `ip` has failed authentication too often.
    pub fn throttled(&self, ip: IpAddr) -> Option<u64> {
        let mut f = lock(&self.failures);
        let q = f.get_mut(&ip)?;
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limits.auth_window)
        {
            q.pop_front();
        }
        if q.is_empty() {
            f.remove(&ip);
            return None;
        }
        if q.len() < self.limits.auth_failures.max(1) {
            return None;
        }
        let oldest = q.front().copied().unwrap_or(now);
        let wait = (oldest + self.limits.auth_window).saturating_duration_since(now);
        drop(f);
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        self.warn_now("a client address is throttled after repeated failed authentications");
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1))
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut f = lock(&self.failures);
        let now = Instant::now();
        if f.len() >= MAX_TRACKED_ADDRESSES && !f.contains_key(&ip) {
            let window = self.limits.auth_window;
            f.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            if f.len() >= MAX_TRACKED_ADDRESSES {
                // still full: forget the address whose last failure is oldest
                if let Some(k) = f
                    .iter()
                    .min_by_key(|(_, q)| q.back().copied())
                    .map(|(k, _)| *k)
                {
                    f.remove(&k);
                }
            }
        }
        let q = f.entry(ip).or_default();
        q.push_back(now);
        // only the newest `auth_failures` matter
        while q.len() > self.limits.auth_failures.max(1) {
            q.pop_front();
        }
    }
}

/// One admitted connection's place under the caps, given back when it closes.
#[derive(Debug)]
struct Permit {
    net: Arc<Net>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut o = lock(&self.net.open);
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_addr.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                o.by_addr.remove(&self.ip);
            }
        }
    }
}

#[derive(Debug)]
struct Times {
    /// Requests in progress (head received, answer not yet begun).
    active: usize,
    last_io: Instant,
    /// When the head now awaited began (its first byte, or the connection's start).
    head_start: Option<Instant>,
}

/// The timing state of one connection, shared by its stream and its requests.
#[derive(Debug)]
pub struct ConnState {
    times: Mutex<Times>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl ConnState {
    fn new(limits: &NetLimits) -> Self {
        let now = Instant::now();
        Self {
            times: Mutex::new(Times {
                active: 0,
                last_io: now,
                head_start: Some(now),
            }),
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    /// When the connection is to be closed, if nothing happens before (`None` while a
    /// request is in progress).
    fn deadline(&self) -> Option<Instant> {
        let t = lock(&self.times);
        if t.active > 0 {
            return None;
        }
        let idle = t.last_io + self.idle_timeout;
        Some(match t.head_start {
            Some(h) => idle.min(h + self.header_timeout),
            None => idle,
        })
    }

    fn read(&self) {
        let mut t = lock(&self.times);
        let now = Instant::now();
        t.last_io = now;
        if t.active == 0 && t.head_start.is_none() {
            t.head_start = Some(now);
        }
    }

    fn wrote(&self) {
        let mut t = lock(&self.times);
        t.last_io = Instant::now();
        if t.active == 0 {
            // the server is answering: the connection is in use, not waiting for a head
            t.head_start = None;
        }
    }

    /// Marks a request (its head complete) as in progress until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Active {
        let mut t = lock(&self.times);
        t.active += 1;
        t.head_start = None;
        Active(self.clone())
    }
}

/// A request in progress on a connection (see [`ConnState::begin`]).
#[derive(Debug)]
pub struct Active(Arc<ConnState>);

impl Drop for Active {
    fn drop(&mut self) {
        let mut t = lock(&self.0.times);
        t.active = t.active.saturating_sub(1);
        t.last_io = Instant::now();
    }
}

/// The live connections of one listener by client address, so that a request finds
/// its connection's [`ConnState`].
#[derive(Debug, Default)]
pub struct Registry(Mutex<HashMap<SocketAddr, Arc<ConnState>>>);

impl Registry {
    /// The connection from `peer`, if it is open.
    pub fn get(&self, peer: &SocketAddr) -> Option<Arc<ConnState>> {
        lock(&self.0).get(peer).cloned()
    }
}

/// An accepted connection under the caps and timeouts.
pub struct Guarded {
    inner: TcpStream,
    state: Arc<ConnState>,
    timer: Pin<Box<Sleep>>,
    peer: SocketAddr,
    registry: Arc<Registry>,
    net: Arc<Net>,
    _permit: Permit,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let mut m = lock(&self.registry.0);
        if m.get(&self.peer)
            .is_some_and(|s| Arc::ptr_eq(s, &self.state))
        {
            m.remove(&self.peer);
        }
    }
}

impl Guarded {
    /// Admits `stream` from `peer` under `net`'s caps, or `None` (the stream is dropped,
    /// which closes it).
    pub fn admit(
        net: &Arc<Net>,
        registry: &Arc<Registry>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<Self> {
        let permit = net.admit(peer.ip())?;
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(&net.limits));
        lock(&registry.0).insert(peer, state.clone());
        let deadline = Instant::now() + net.limits.header_timeout;
        Some(Self {
            inner: stream,
            state,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            peer,
            registry: registry.clone(),
            net: net.clone(),
            _permit: permit,
        })
    }

    /// `Ready(error)` once the connection has been idle (or waiting for a head) too
    /// long; otherwise arms the timer for the current deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.state.deadline() else {
            return Poll::Pending;
        };
        if Instant::now() < deadline {
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.net.counters.timed_out.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %self.peer, "closing a connection: header or idle timeout");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connection was idle or too slow to send a request",
        ))
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.state.read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.state.wrote();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.state.wrote();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Guarded {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.inner.local_addr().ok(),
            remote_addr: Some(self.peer),
        }
    }
}

/// The HTTP front end's acceptor (axum-server): admits each connection under the caps
/// (before any TLS handshake) and wraps it in the timeouts.
#[derive(Debug, Clone)]
pub struct GuardAcceptor {
    /// Caps and limiters.
    pub net: Arc<Net>,
    /// The HTTP listener's connections.
    pub registry: Arc<Registry>,
}

impl<S> axum_server::accept::Accept<TcpStream, S> for GuardAcceptor {
    type Stream = Guarded;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Guarded, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream
            .peer_addr()
            .ok()
            .and_then(|peer| Guarded::admit(&self.net, &self.registry, stream, peer));
        std::future::ready(match admitted {
            Some(g) => Ok((g, service)),
            None => Err(io::Error::other("connection cap reached")),
        })
    }
}

/// The Flight SQL front end's incoming connections (tonic): accepted from `listener`,
/// admitted under the caps and wrapped in the timeouts. Accept errors (such as running
/// out of file descriptors) pause the loop briefly instead of ending it.
pub fn incoming(
    listener: TcpListener,
    net: Arc<Net>,
    registry: Arc<Registry>,
) -> impl futures::Stream<Item = Result<Guarded, io::Error>> + Send + 'static {
    futures::stream::unfold(
        (listener, net, registry),
        |(listener, net, registry)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        if let Some(g) = Guarded::admit(&net, &registry, stream, peer) {
                            return Some((Ok(g), (listener, net, registry)));
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "Flight SQL accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        },
    )
}

/// The connection limits after the process's open-file limit: connections beyond half
/// of it would starve the server of descriptors for its store, workers and audit log.
pub(crate) fn fit_to_file_limit(mut net: NetLimits) -> NetLimits {
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let fit = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(16);
        if net.max_connections > fit {
            tracing::warn!(
                max_connections = net.max_connections,
                open_file_limit = soft,
                "the connection cap is lowered to {fit}, half the open-file limit; raise the limit (ulimit -n) to allow more"
            );
            eprintln!(
                "dhub serve: the connection cap is lowered to {fit}, half the open-file limit ({soft}); raise `ulimit -n` to allow more"
            );
            net.max_connections = fit;
        }
    }
    net.max_connections_per_address = net.max_connections_per_address.min(net.max_connections);
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_throttle_an_address_until_the_window_passes() {
        let net = Net::new(NetLimits {
            auth_failures: 3,
            auth_window: Duration::from_millis(300),
            ..NetLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([10, 0, 0, 1]));
        let b: IpAddr = IpAddr::from([10, 0, 0, 2]);
        for _ in 0..2 {
            net.failed(a);
        }
        assert_eq!(net.throttled(a), None);
        net.failed(a);
        assert_eq!(net.throttled(a), Some(1));
        assert_eq!(net.throttled(b), None);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(net.throttled(a), None);
    }

    #[test]
    fn caps_count_per_address_and_in_total() {
        let net = Net::new(NetLimits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..NetLimits::default()
        });
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let p1 = net.admit(a);
        let p2 = net.admit(a);
        assert!(p1.is_some() && p2.is_some());
        assert!(net.admit(a).is_none(), "per-address cap");
        let p3 = net.admit(b);
        assert!(p3.is_some());
        assert!(net.admit(b).is_none(), "global cap");
        drop(p1);
        assert!(
            net.admit(a).is_some(),
            "a closed connection frees its place"
        );
        drop((p2, p3));
    }
}
