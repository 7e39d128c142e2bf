//! The server's configuration, built from the command line (see `cli.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tts_backend_api::BackendConfig;

use crate::audio::AudioFormat;

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
    /// Accepted API keys; empty means no authentication.
    pub api_keys: Vec<String>,
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
            api_keys: Vec::new(),
        }
    }
}

/// The machine's hardware concurrency (1 if unknown).
pub fn hardware_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
