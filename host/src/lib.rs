//! tts-host: an OpenAI-compatible text-to-speech server whose engines are plugins.
//!
//! [`run`] loads the backend plugin, starts `--n-parallelism` instances on worker threads, and
//! serves the HTTP API (plain or TLS) until SIGINT/SIGTERM.

#![deny(unsafe_code)]

pub mod audio;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conn;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod pool;
pub mod sanitize;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tts_backend_api::load::Plugin;

pub use config::Config;
use pool::{BackendFactory, Pool, PoolOptions};

/// How long [`Server::serve`] waits for the worker threads after the connections are closed.
pub const POOL_JOIN_BOUND: Duration = Duration::from_secs(5);

/// Why the server could not start (printed before exiting non-zero).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin could not be loaded.
    #[error(transparent)]
    Load(#[from] tts_backend_api::load::LoadError),
    /// A backend instance failed to start.
    #[error("the backend failed to start: {0}")]
    Backend(tts_backend_api::BackendError),
    /// TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A server that is listening; its backends may still be loading.
pub struct Server {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<http::AppState>,
    ready: tokio::sync::oneshot::Receiver<Result<(), tts_backend_api::BackendError>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Loads the plugin named in the configuration (checking its ABI), then binds.
pub async fn bind(config: Config) -> Result<Server, StartError> {
    let plugin = Plugin::load(&config.backend).inspect_err(|e| {
        tracing::debug!(details = %e.details(), "plugin load failed");
    })?;
    tracing::info!(
        plugin = %plugin.path().display(),
        abi = Plugin::host_abi_version(),
        "backend plugin loaded"
    );
    bind_with(config, Arc::new(plugin)).await
}

/// Binds with any backend factory (tests use in-process backends).
pub async fn bind_with(config: Config, factory: Arc<dyn BackendFactory>) -> Result<Server, StartError> {
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    let options = PoolOptions {
        stall_grace: config.stall_grace,
        max_written_off: config.max_written_off,
        ..PoolOptions::new(config.n_parallelism, config.queue_size)
    };
    let (pool, ready) = Pool::start(factory, &config.backend_config, options);
    let state = http::AppState::new(pool, Arc::new(config));
    Ok(Server {
        addr,
        listener,
        acceptor,
        state,
        ready,
    })
}

impl Server {
    /// Serves until `shutdown` resolves, or until a backend instance fails to start (an error).
    ///
    /// On `shutdown`: stop accepting, let in-flight requests finish for up to
    /// `--shutdown-grace`, close the connections still open (their jobs are cancelled), stop the
    /// pool and wait up to [`POOL_JOIN_BOUND`] for its worker threads (written-off threads are not
    /// waited for).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let Server {
            addr,
            listener,
            acceptor,
            state,
            ready,
        } = self;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        tracing::info!("listening on {scheme}://{addr} (backends loading)");
        if !http::filters::host_guard_active(&state.config) {
            tracing::warn!("the Host check is off (not bound to loopback, or --allowed-host '*'): DNS rebinding is not guarded against");
        }
        let config = Arc::clone(&state.config);
        let routes = http::routes(Arc::clone(&state));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let lingering = Arc::new(Semaphore::new(64));
        let refused: &'static [u8] = Box::leak(
            http::error::ApiError::too_many_connections()
                .to_raw_http1()
                .into_boxed_slice(),
        );
        let mut conns = JoinSet::new();
        let mut refusals: u64 = 0;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut ready = std::pin::pin!(ready);
        let mut waiting_for_ready = true;
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!(open = conns.len(), "shutting down: no new connections, finishing open requests");
                    break;
                }
                r = &mut ready, if waiting_for_ready => {
                    waiting_for_ready = false;
                    match r {
                        Ok(Ok(())) => tracing::info!("ready: {} backend instance(s) up", state.pool.instances()),
                        Ok(Err(e)) => return Err(StartError::Backend(e)),
                        Err(_) => return Err(StartError::Backend(tts_backend_api::BackendError::internal("start-up was interrupted"))),
                    }
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        refusals += 1;
                        // Logged once per 100, so a flood of connections cannot flood the log.
                        if refusals % 100 == 1 {
                            tracing::warn!(%peer, max = config.max_connections, refused_so_far = refusals, "connection refused: --max-connections reached");
                        }
                        conn::refuse(tcp, acceptor.is_none().then_some(refused), &lingering);
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let service = warp::service(routes.clone());
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    let config = Arc::clone(&config);
                    conns.spawn(async move {
                        let _slot = slot;
                        let activity = conn::Activity::new();
                        let io = conn::Watched::new(tcp, &activity);
                        let dog = conn::watchdog(Arc::clone(&activity), config.header_read_timeout, config.idle_timeout);
                        let mut builder = ConnBuilder::new(TokioExecutor::new());
                        builder
                            .http1()
                            .timer(TokioTimer::new())
                            .header_read_timeout(config.header_read_timeout);
                        let service = conn::Tracked::new(service, &activity);
                        let result = match acceptor {
                            None => {
                                let served = watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned());
                                tokio::select! {
                                    r = served => r,
                                    why = dog => {
                                        tracing::debug!(%peer, ?why, "connection closed by the server");
                                        return;
                                    }
                                }
                            }
                            Some(acceptor) => {
                                let tls = match tokio::time::timeout(config.tls_handshake_timeout, acceptor.accept(io)).await {
                                    Ok(Ok(tls)) => tls,
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                        return;
                                    }
                                };
                                let served = watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned());
                                tokio::select! {
                                    r = served => r,
                                    why = dog => {
                                        tracing::debug!(%peer, ?why, "connection closed by the server");
                                        return;
                                    }
                                }
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %sanitize::log_text(&e.to_string()), "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(listener);
        let grace = config.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!(
                open = conns.len(),
                "requests still running after the shutdown grace ({} s); closing them",
                grace.as_secs_f64()
            );
        }
        conns.abort_all();
        while conns.join_next().await.is_some() {}
        let pool = Arc::clone(&state.pool);
        let report = tokio::task::spawn_blocking(move || pool.shutdown(POOL_JOIN_BOUND))
            .await
            .ok();
        match report {
            Some(r) if r.abandoned == 0 => tracing::info!(
                joined = r.joined,
                written_off = r.written_off,
                "backend instances stopped"
            ),
            Some(r) => tracing::warn!(
                joined = r.joined,
                abandoned = r.abandoned,
                written_off = r.written_off,
                "some backend instances did not stop in time; exiting anyway"
            ),
            None => tracing::warn!("stopping the backend instances failed"),
        }
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
