//! tts-host: an OpenAI-compatible text-to-speech server whose engines are plugins.
//!
//! [`run`] loads the backend plugin, starts `--n-parallelism` instances on worker threads, and
//! serves the HTTP API (plain or TLS) until SIGINT/SIGTERM.

#![deny(unsafe_code)]

pub mod audio;
pub mod cli;
pub mod config;
pub mod http;
pub mod pool;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tts_backend_api::load::Plugin;

pub use config::Config;
use pool::{BackendFactory, Pool};

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
    let (pool, ready) = Pool::start(
        factory,
        &config.backend_config,
        config.n_parallelism,
        config.queue_size,
    );
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
        let routes = http::routes(Arc::clone(&state));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut ready = std::pin::pin!(ready);
        let mut waiting_for_ready = true;
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutting down: no new connections, finishing open ones");
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
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let service = TowerToHyperService::new(warp::service(routes.clone()));
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let builder = ConnBuilder::new(TokioExecutor::new());
                        let result = match acceptor {
                            None => watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned()).await,
                            Some(acceptor) => match acceptor.accept(tcp).await {
                                Ok(tls) => watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned()).await,
                                Err(e) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                            },
                        };
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after 10 s; closing them");
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
