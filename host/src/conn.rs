//! One client connection: limits on how long it may take to say something, and on how many
//! there may be.
//!
//! * `--header-read-timeout`: hyper's HTTP/1 `header_read_timeout` (with a [`TokioTimer`]) closes
//!   a connection whose request head is not complete in time. Hyper starts that timer whenever it
//!   begins reading a head, which includes waiting for the next request on a kept-alive
//!   connection, so an idle HTTP/1.1 connection is closed after this time too. Before hyper knows
//!   the protocol (the auto builder first reads the HTTP/2 preface) and for HTTP/2, the
//!   [`watchdog`] closes a connection whose first request has not started within the same time.
//! * `--idle-timeout`: the [`watchdog`] closes a connection with no request in flight (a request
//!   is in flight from its head until its response body is finished or dropped) and no bytes in
//!   either direction for this long.
//! * `--tls-handshake-timeout`: a bound on `TlsAcceptor::accept`.
//! * `--max-connections`: see [`refuse`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the watchdog needs to know about one connection.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written, or the end of a response.
    last: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
}

impl Activity {
    /// A connection opened now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Requests started on this connection.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request started within the header-read timeout.
    NoRequest,
    /// No request in flight and no traffic for the idle timeout.
    Idle,
}

/// Resolves when the connection should be closed.
pub async fn watchdog(activity: Arc<Activity>, header_timeout: Duration, idle_timeout: Duration) -> Closed {
    let header_ms = u64::try_from(header_timeout.as_millis()).unwrap_or(u64::MAX);
    let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX);
    loop {
        let now = activity.now_ms();
        let mut wait = idle_ms;
        if activity.in_flight.load(Ordering::Acquire) == 0 {
            if activity.requests() == 0 {
                if now >= header_ms {
                    return Closed::NoRequest;
                }
                wait = wait.min(header_ms - now);
            }
            let quiet = now.saturating_sub(activity.last.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                return Closed::Idle;
            }
            wait = wait.min(idle_ms - quiet);
        }
        tokio::time::sleep(Duration::from_millis(wait.max(5))).await;
    }
}

/// The connection's IO, noting every byte read or written.
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    /// Wraps `io`.
    pub fn new(io: T, activity: &Arc<Activity>) -> Self {
        Self {
            io,
            activity: Arc::clone(activity),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: http_body::Body + Unpin> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The per-connection hyper service: the warp service, with requests counted in flight.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps a tower service for one connection.
    pub fn new(inner: S, activity: &Arc<Activity>) -> Self {
        Self {
            inner,
            activity: Arc::clone(activity),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<warp::http::Request<Incoming>> for Tracked<S>
where
    S: tower_service::Service<
            warp::http::Request<Incoming>,
            Response = warp::http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Unpin + Send + 'static,
{
    type Response = warp::http::Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, req: warp::http::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::begin(&self.activity);
        // warp's service is always ready (its `poll_ready` returns `Ready` at once).
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let res = inner.call(req).await?;
            Ok(res.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// Refuses a connection over `--max-connections`: writes `raw` (a complete `503` with
/// `Connection: close`; nothing for TLS, which cannot be answered before a handshake), stops
/// writing, and reads away what the client sends for up to a second so that closing does not
/// reset the connection before the client has read the answer. `lingering` bounds how many
/// refused connections may linger at once; past it they are closed at once.
pub fn refuse(tcp: TcpStream, raw: Option<&'static [u8]>, lingering: &Arc<tokio::sync::Semaphore>) {
    if let Some(raw) = raw {
        let _ = tcp.try_write(raw);
    }
    let Ok(permit) = Arc::clone(lingering).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut tcp = tcp;
        let drain = async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tcp.shutdown().await;
            let mut buf = [0u8; 1024];
            while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_request_in_time_closes() {
        let a = Activity::new();
        let closed = watchdog(
            Arc::clone(&a),
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(closed, Closed::NoRequest);
        assert!(a.opened.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_request_in_flight_keeps_the_connection_and_idle_closes_it_after() {
        let a = Activity::new();
        let guard = InFlight::begin(&a);
        let dog = tokio::spawn(watchdog(
            Arc::clone(&a),
            Duration::from_millis(50),
            Duration::from_millis(100),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!dog.is_finished(), "closed with a request in flight");
        let released = Instant::now();
        drop(guard);
        let closed = dog.await.unwrap();
        assert_eq!(closed, Closed::Idle);
        let after = released.elapsed();
        assert!(
            after >= Duration::from_millis(95) && after < Duration::from_millis(400),
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn traffic_postpones_idle() {
        let a = Activity::new();
        drop(InFlight::begin(&a));
        let dog = tokio::spawn(watchdog(
            Arc::clone(&a),
            Duration::from_secs(5),
            Duration::from_millis(100),
        ));
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            a.touch();
        }
        assert!(!dog.is_finished(), "closed despite traffic");
        assert_eq!(dog.await.unwrap(), Closed::Idle);
    }
}
