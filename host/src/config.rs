//! The server's configuration, built from the command line (see `cli.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tts_backend_api::BackendConfig;

use crate::audio::AudioFormat;
use crate::auth::ApiKeys;

/// Everything `run` needs. Built by the CLI, or by tests directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// The backend plugin to load.
    pub backend: PathBuf,
    /// What each backend instance is constructed with (`instance` is set per instance).
    pub backend_config: BackendConfig,
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Threads of the async HTTP runtime.
    pub n_http_threads: usize,
    /// Backend instances, each on its own worker thread.
    pub n_parallelism: usize,
    /// Requests that may wait for a free instance; more get 429.
    pub queue_size: usize,
    /// Bound on queue wait plus synthesis of one request.
    pub timeout: Duration,
    /// Longest accepted `input`, in characters.
    pub max_input_chars: usize,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// `response_format` when the request has none.
    pub default_format: AudioFormat,
    /// TLS certificate chain and private key (PEM), if HTTPS is wanted.
    pub tls: Option<TlsFiles>,
    /// Accepted API keys; empty means no authentication. `Debug` shows only their number.
    pub api_keys: ApiKeys,
    /// Time a client has to send a complete request head (and, before its first request, to
    /// start one).
    pub header_read_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time a client has to send the whole speech request body (then 408).
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections beyond this are refused at once (503), never queued.
    pub max_connections: usize,
    /// `Host` names served besides loopback ones when bound to a loopback address; `*` = any.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed cross-origin access (CORS); empty = CORS off; `*` = any origin.
    pub cors_origins: Vec<String>,
    /// How far past its deadline a job may run before its instance is written off.
    pub stall_grace: Duration,
    /// Written-off instances that are replaced; past this the server is degraded.
    pub max_written_off: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl Config {
    /// A configuration with the CLI's defaults for `backend`, listening on `addr`.
    pub fn new(backend: PathBuf, addr: SocketAddr) -> Self {
        Self {
            backend,
            backend_config: BackendConfig {
                n_threads: hardware_threads(),
                ..BackendConfig::default()
            },
            addr,
            n_http_threads: hardware_threads().saturating_sub(1).max(1),
            n_parallelism: 1,
            queue_size: 16,
            timeout: Duration::from_secs(300),
            max_input_chars: 4096,
            max_body_bytes: 1 << 20,
            default_format: AudioFormat::Wav,
            tls: None,
            api_keys: ApiKeys::default(),
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            stall_grace: Duration::from_secs(10),
            max_written_off: 4,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The machine's hardware concurrency (1 if unknown).
pub fn hardware_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Default compute threads per backend instance: the hardware threads divided among the
/// `n_parallelism` instances (at least 1), so that busy instances never oversubscribe the
/// cores (a spinning ggml barrier with more threads than cores wastes whole time slices).
pub fn default_threads_per_instance(hardware: usize, n_parallelism: usize) -> usize {
    (hardware / n_parallelism.max(1)).max(1)
}
