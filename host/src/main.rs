//! The `tts-host` binary.

#![deny(unsafe_code)]

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use tts_host::cli::Args;

fn main() -> ExitCode {
    let args = Args::from_env();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tts-host: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.n_http_threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tts-host: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let server = tts_host::bind(config).await?;
        server.serve(tts_host::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(details = ?e, "start-up failed");
            eprintln!("tts-host: {e}");
            // A configuration the backend refuses (an unknown --espeak-voice-id, a bad
            // --backend-option) is a usage error, like a bad flag: exit 2.
            match e {
                tts_host::StartError::Backend(b) if b.kind == tts_backend_api::ErrorKind::InvalidConfig => {
                    ExitCode::from(2)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}
