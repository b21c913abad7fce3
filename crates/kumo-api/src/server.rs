//! The connection layer: hyper's HTTP/1.1 server under bounds that no client can outlast.
//!
//! - **Headers and idle keep-alive**: hyper's `header_read_timeout`, which runs from the
//!   moment a connection waits for a request's first byte until its headers are complete, on
//!   the first request and every later one. A client that sends nothing, or half its headers,
//!   is disconnected when it passes.
//! - **Bodies**: tower-http's stall timeout and deadline (see [`crate::body`]).
//! - **Connections**: at most `max_connections` at once. When a new one arrives at the cap,
//!   the connection idle the longest (no request in progress: connected and silent, between
//!   requests, or still sending headers) is closed through hyper's own graceful shutdown to
//!   make room; when every connection is busy with a request, the new one is answered 503
//!   `RequestLimitExceeded` and closed. An idle flood therefore never locks out a real client,
//!   and the descriptors in use stay below the process's limit, which [`raise_nofile`] lifts to
//!   its hard maximum at start.
//! - **Every answer is EC2's envelope**: the few error responses hyper writes itself (400 for
//!   a request that is not HTTP, 414, 431) are replaced on their way to the socket by the
//!   envelope for the same status ([`XmlErrors`]).

use crate::wire;
use axum::http::StatusCode;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

/// How the server treats connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a connection may wait for (or spend sending) a request's headers, idle
    /// keep-alive included.
    pub idle_timeout: Duration,
    /// The most connections served at once.
    pub max_connections: usize,
}

/// Descriptors kept back from connections for the store, volumes and guests.
fn reserve(limit: u64) -> u64 {
    (limit / 10).max(512)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

impl Config {
    /// The default cap for a process allowed `nofile` descriptors.
    pub fn default_max_connections(nofile: u64) -> usize {
        nofile.saturating_sub(reserve(nofile)).clamp(64, 65_536) as usize
    }
}

/// The live connections, and which of them are idle, oldest first.
#[derive(Default)]
struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// A counter that orders the moments connections became idle.
    tick: u64,
    conns: HashMap<u64, Conn>,
    /// Idle connections by the tick they became idle at.
    idle: BTreeMap<u64, u64>,
}

struct Conn {
    /// The tick of the connection in `idle`, when it is idle.
    idle_at: Option<u64>,
    /// Requests in progress.
    busy: u32,
    close: Arc<Notify>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// A new connection, idle until its first request.
    fn add(&self) -> (u64, Arc<Notify>) {
        let mut g = self.lock();
        let id = g.next;
        g.next += 1;
        let tick = g.tick;
        g.tick += 1;
        let close = Arc::new(Notify::new());
        g.idle.insert(tick, id);
        g.conns.insert(
            id,
            Conn {
                idle_at: Some(tick),
                busy: 0,
                close: close.clone(),
            },
        );
        (id, close)
    }

    fn remove(&self, id: u64) {
        let mut g = self.lock();
        if let Some(c) = g.conns.remove(&id) {
            if let Some(t) = c.idle_at {
                g.idle.remove(&t);
            }
        }
    }

    fn begin(&self, id: u64) {
        let mut g = self.lock();
        let Some(c) = g.conns.get_mut(&id) else {
            return;
        };
        c.busy += 1;
        if let Some(t) = c.idle_at.take() {
            g.idle.remove(&t);
        }
    }

    fn end(&self, id: u64) {
        let mut g = self.lock();
        let tick = g.tick;
        let Some(c) = g.conns.get_mut(&id) else {
            return;
        };
        c.busy = c.busy.saturating_sub(1);
        if c.busy == 0 && c.idle_at.is_none() {
            c.idle_at = Some(tick);
            g.idle.insert(tick, id);
            g.tick += 1;
        }
    }

    /// Asks the connection idle the longest to close; false when none is idle.
    fn evict_idle(&self) -> bool {
        let mut g = self.lock();
        let Some((_, id)) = g.idle.pop_first() else {
            return false;
        };
        if let Some(c) = g.conns.get_mut(&id) {
            c.idle_at = None;
            c.close.notify_one();
        }
        true
    }

    fn close_all(&self) {
        for c in self.lock().conns.values() {
            c.close.notify_one();
        }
    }
}

/// Marks a connection busy while a request is served.
struct Busy {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.registry.end(self.id);
    }
}

/// Listens on `addr` with a backlog of 4,096 (the kernel caps it at `somaxconn`): a burst
/// of connections waits in the kernel instead of being dropped to the client's one-second SYN
/// retry, as tokio's default backlog of 1,024 lets happen.
pub fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// EMFILE or ENFILE: the process or the system is out of descriptors.
fn is_descriptor_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Serves `app` on `listener` until `shutdown` completes, then closes idle connections and
/// waits up to ten seconds for requests in progress.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: Config,
    timing: crate::BodyTiming,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let registry = Arc::new(Registry::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .keep_alive(true)
        // One buffer per write, so that hyper's own error answers can be recognised whole.
        .writev(false)
        // Headers up to these bounds reach the router, which answers within EC2's envelope.
        .max_headers(200)
        .max_buf_size(256 * 1024);
    let http = Arc::new(http);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        // Finished connections' tasks.
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                if is_descriptor_exhaustion(&e) {
                    tracing::warn!(error = %e, "out of file descriptors; closing an idle connection");
                    registry.evict_idle();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        if registry.len() >= config.max_connections && !registry.evict_idle() {
            tasks.spawn(refuse(stream));
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, close) = registry.add();
        tasks.spawn(connection(
            stream,
            Slot {
                id,
                close,
                registry: registry.clone(),
            },
            http.clone(),
            app.clone(),
            timing,
        ));
    }
    registry.close_all();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after ten seconds; closing them");
    }
    Ok(())
}

/// Answers a connection beyond the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let reply = wire::raw_error(StatusCode::SERVICE_UNAVAILABLE);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&reply).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A connection's place in the registry.
struct Slot {
    id: u64,
    close: Arc<Notify>,
    registry: Arc<Registry>,
}

async fn connection(
    stream: TcpStream,
    slot: Slot,
    http: Arc<hyper::server::conn::http1::Builder>,
    app: Router,
    timing: crate::BodyTiming,
) {
    let Slot {
        id,
        close,
        registry,
    } = slot;
    let reg = registry.clone();
    // Whether the connection came through a VPC endpoint (the endpoints connect from their
    // own loopback address).
    let via_endpoint = stream
        .peer_addr()
        .is_ok_and(|a| a.ip() == std::net::IpAddr::V4(kumo_control::ENDPOINT_SOURCE));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        reg.begin(id);
        let busy = Busy {
            registry: reg.clone(),
            id,
        };
        let app = app.clone();
        async move {
            let (mut parts, incoming) = req.into_parts();
            if via_endpoint {
                parts.extensions.insert(crate::api::ViaEndpoint);
            }
            let r = match crate::body::bound(&parts.headers, incoming, &timing) {
                Ok(body) => app.oneshot(hyper::Request::from_parts(parts, body)).await,
                Err(s) => Ok(wire::http_error(s, wire::code_for(s), wire::message_for(s))),
            };
            drop(busy);
            r
        }
    });
    // With upgrades: Session Manager's data channel is a WebSocket on this connection.
    let conn = http
        .serve_connection(TokioIo::new(XmlErrors::new(stream)), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = close.notified(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    registry.remove(id);
}

/// A socket that replaces the error responses hyper writes on its own (for a request it could
/// not parse) with EC2's envelope for the same status. hyper's are recognisable: a 4xx or 5xx
/// head with no content type and an empty body; every response of Kumo's has a content type.
pub struct XmlErrors<T> {
    inner: T,
    /// A replacement being written: its bytes, how many are out, and the length of what it
    /// replaces (reported to hyper once it is all out).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> XmlErrors<T> {
    pub fn new(inner: T) -> Self {
        XmlErrors {
            inner,
            pending: None,
        }
    }
}

/// The status of `buf` when it is one of hyper's own error responses.
fn hyper_error_status(buf: &[u8]) -> Option<StatusCode> {
    // Most writes are Kumo's successes: tell them apart by their first bytes.
    if buf.len() < 13 || !buf.starts_with(b"HTTP/1.") || !matches!(buf[9], b'4' | b'5') {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if head_end + 4 != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let rest = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()?;
    let lower = head.to_ascii_lowercase();
    let bare = !lower.contains("\r\ncontent-type:") && lower.contains("\r\ncontent-length: 0");
    (status.as_u16() >= 400 && bare).then_some(status)
}

impl<T: AsyncRead + Unpin> AsyncRead for XmlErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for XmlErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            if let Some(status) = hyper_error_status(buf) {
                tracing::debug!(
                    status = status.as_u16(),
                    "a request hyper refused gets EC2's envelope"
                );
                this.pending = Some((wire::raw_error(status), 0, buf.len()));
            }
        }
        if let Some((bytes, out, replaces)) = &mut this.pending {
            while *out < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*out..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *out += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let n = *replaces;
            this.pending = None;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_hyper_errors_only() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n";
        assert_eq!(
            hyper_error_status(hyper_431),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/xml;charset=UTF-8\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_status(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_status(ok), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nab";
        assert_eq!(hyper_error_status(with_body), None);
    }

    #[test]
    fn eviction_takes_the_longest_idle() {
        let r = Registry::default();
        let (a, na) = r.add();
        let (b, _nb) = r.add();
        let (c, _nc) = r.add();
        r.begin(a);
        r.end(a); // a is idle again, now the most recent
        r.begin(b); // b is busy
        assert!(r.evict_idle()); // c: idle since it connected
        assert!(r.evict_idle()); // then a
        assert!(!r.evict_idle(), "b is busy and cannot be evicted");
        // a's task was told to close.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut n = Box::pin(na.notified());
        assert!(n.as_mut().poll(&mut cx).is_ready());
        r.remove(c);
        r.remove(a);
        assert_eq!(r.len(), 1);
        r.end(b);
        assert!(r.evict_idle());
    }

    #[test]
    fn connection_cap_leaves_descriptors() {
        assert_eq!(Config::default_max_connections(20_000), 18_000);
        assert_eq!(Config::default_max_connections(1024), 512);
        assert_eq!(Config::default_max_connections(1 << 20), 65_536);
    }
}
