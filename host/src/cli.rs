//! The command line. It keeps every flag of TTS.cpp's `tts-server` with the same long and short
//! names; multi-letter short flags (`-np 2`, `-mp file`) are rewritten to their long forms before
//! clap sees them, since clap only knows one-letter shorts.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use serde_json::Value;
use tts_backend_api::{BackendConfig, SamplingParams};

use crate::audio::AudioFormat;
use crate::auth::{ApiKeys, Secret};
use crate::config::{default_threads_per_instance, hardware_threads, Config, TlsFiles};

/// Short flags as TTS.cpp spells them, and their long names.
const SHORT_FLAGS: &[(&str, &str)] = &[
    ("-t", "--temperature"),
    ("-r", "--repetition-penalty"),
    ("-tp", "--top-p"),
    ("-tk", "--topk"),
    ("-nt", "--n-threads"),
    ("-p", "--port"),
    ("-ht", "--n-http-threads"),
    ("-to", "--timeout"),
    ("-np", "--n-parallelism"),
    ("-m", "--use-metal"),
    ("-mp", "--model-path"),
    ("-sfc", "--ssl-file-cert"),
    ("-sfk", "--ssl-file-key"),
    ("-h", "--host"),
    ("-v", "--voice"),
    ("-eid", "--espeak-voice-id"),
];

/// Rewrites TTS.cpp-style short flags (`-np 2`, `-np=2`) into long ones; everything after `--`
/// is left alone.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with('-') && !f.starts_with("--") => {
                (f.to_string(), Some(v.to_string()))
            }
            _ => (arg.clone(), None),
        };
        match SHORT_FLAGS.iter().find(|(short, _)| *short == flag) {
            Some((_, long)) => match value {
                Some(v) => out.push(format!("{long}={v}")),
                None => out.push((*long).to_string()),
            },
            None => out.push(arg),
        }
    }
    out
}

/// tts-host: an OpenAI-compatible speech server whose engines are plugins.
#[derive(Debug, Parser)]
#[command(
    name = "tts-host",
    version,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Sampling temperature passed to backends that sample (TTS.cpp `-t`).
    #[arg(long, env = "TTS_TEMPERATURE", default_value_t = 1.0)]
    pub temperature: f32,

    /// Repetition penalty for backends that sample (TTS.cpp `-r`).
    #[arg(long, env = "TTS_REPETITION_PENALTY", default_value_t = 1.0)]
    pub repetition_penalty: f32,

    /// Nucleus-sampling threshold for backends that sample (TTS.cpp `-tp`).
    #[arg(long, env = "TTS_TOP_P", default_value_t = 1.0)]
    pub top_p: f32,

    /// Top-k filter for backends that sample (TTS.cpp `-tk`).
    #[arg(long, env = "TTS_TOPK", default_value_t = 50)]
    pub topk: u32,

    /// Compute threads per backend instance (TTS.cpp `-nt`); default: the hardware threads
    /// divided among the `--n-parallelism` instances (at least 1).
    #[arg(long, env = "TTS_N_THREADS")]
    pub n_threads: Option<usize>,

    /// Port to listen on (TTS.cpp `-p`).
    #[arg(long, env = "TTS_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Threads serving HTTP (TTS.cpp `-ht`); default: hardware concurrency − 1.
    #[arg(long, env = "TTS_N_HTTP_THREADS")]
    pub n_http_threads: Option<usize>,

    /// Seconds a request may take, queue wait plus synthesis (TTS.cpp `-to`); then 504.
    #[arg(long, env = "TTS_TIMEOUT", default_value_t = 300)]
    pub timeout: u64,

    /// Backend instances, each synthesizing one request at a time (TTS.cpp `-np`).
    #[arg(long, env = "TTS_N_PARALLELISM", default_value_t = 1)]
    pub n_parallelism: usize,

    /// Run the backend on Apple's GPU where it supports Metal (TTS.cpp `-m`).
    #[arg(long, env = "TTS_USE_METAL", action = ArgAction::SetTrue)]
    pub use_metal: bool,

    /// The model file (or directory) the backend loads (TTS.cpp `-mp`).
    #[arg(long, env = "TTS_MODEL_PATH")]
    pub model_path: Option<PathBuf>,

    /// PEM certificate chain; with --ssl-file-key the server speaks HTTPS (TTS.cpp `-sfc`).
    #[arg(long, env = "TTS_SSL_FILE_CERT", requires = "ssl_file_key")]
    pub ssl_file_cert: Option<PathBuf>,

    /// PEM private key for --ssl-file-cert (TTS.cpp `-sfk`).
    #[arg(long, env = "TTS_SSL_FILE_KEY", requires = "ssl_file_cert")]
    pub ssl_file_key: Option<PathBuf>,

    /// Address to listen on (TTS.cpp `-h`; `--help` is help).
    #[arg(long, env = "TTS_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Default voice for requests that name none (TTS.cpp `-v`).
    #[arg(long, env = "TTS_VOICE")]
    pub voice: Option<String>,

    /// espeak-ng voice that overrides the one implied by the voice (TTS.cpp `-eid`).
    #[arg(long, env = "TTS_ESPEAK_VOICE_ID")]
    pub espeak_voice_id: Option<String>,

    /// The backend plugin (`libtts_backend_*.so`); default: the Kokoro plugin beside this binary.
    #[arg(long, env = "TTS_BACKEND")]
    pub backend: Option<PathBuf>,

    /// A backend-specific option, `KEY=VALUE`; repeat for more.
    #[arg(long = "backend-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub backend_options: Vec<(String, String)>,

    /// Requests that may wait for a free backend instance; beyond that the server answers 429.
    #[arg(long, env = "TTS_QUEUE_SIZE", default_value_t = 16)]
    pub queue_size: usize,

    /// Longest accepted `input`, in characters (OpenAI's limit is 4096).
    #[arg(long, env = "TTS_MAX_INPUT_CHARS", default_value_t = 4096)]
    pub max_input_chars: usize,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TTS_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// `response_format` for requests that give none: wav (as TTS.cpp) or mp3 (as OpenAI), or any
    /// other supported format.
    #[arg(long, env = "TTS_DEFAULT_RESPONSE_FORMAT", default_value = "wav", value_parser = parse_format)]
    pub default_response_format: AudioFormat,

    /// Require `Authorization: Bearer KEY` on the API routes; repeat for several keys. Keys are
    /// trimmed; `Debug` output never shows them.
    #[arg(
        long = "api-key",
        env = "TTS_API_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<Secret>,

    /// A file of accepted API keys, one per line (`#` comments and blank lines ignored); adds to
    /// --api-key. An unreadable or empty file stops start-up.
    #[arg(long, env = "TTS_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Seconds a client has to send a complete request head; the connection is then closed.
    #[arg(long, env = "TTS_HEADER_READ_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub header_read_timeout: Duration,

    /// Seconds a client has to complete the TLS handshake.
    #[arg(long, env = "TTS_TLS_HANDSHAKE_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub tls_handshake_timeout: Duration,

    /// Seconds a client has to send the whole request body (then 408).
    #[arg(long, env = "TTS_BODY_READ_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub body_read_timeout: Duration,

    /// Seconds a connection may sit with no request in flight and no traffic before it is closed.
    #[arg(long, env = "TTS_IDLE_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,

    /// Open connections at most; more are answered 503 and closed at once, never queued.
    #[arg(long, env = "TTS_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,

    /// Besides loopback names, a `Host` this server answers when bound to a loopback address
    /// (DNS-rebinding guard); repeatable, comma-separated in the environment; `*` allows any.
    #[arg(long = "allowed-host", env = "TTS_ALLOWED_HOST", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// An origin (`https://app.example:8443`) allowed cross-origin access; repeatable,
    /// comma-separated in the environment; `*` allows any. CORS is off without it.
    #[arg(long = "cors-origin", env = "TTS_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Seconds a job may run past its deadline before its backend instance is written off and
    /// replaced.
    #[arg(long, env = "TTS_STALL_GRACE", default_value = "10", value_parser = parse_seconds)]
    pub stall_grace: Duration,

    /// Written-off instances that are replaced; past this no replacement, and /health answers
    /// 503 degraded. Default: 4 × --n-parallelism.
    #[arg(long, env = "TTS_MAX_WRITTEN_OFF")]
    pub max_written_off: Option<usize>,

    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "TTS_SHUTDOWN_GRACE", default_value = "30", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Print the version.
    #[arg(long, action = ArgAction::Version)]
    pub version: Option<bool>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Seconds, a whole or decimal number above zero and at most a day.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(n > 0.0 && n <= 86_400.0) {
        return Err(format!("{s} s is out of range (above 0, at most 86400)"));
    }
    Ok(Duration::from_secs_f64(n))
}

/// A `Host` name for --allowed-host: `*`, or a host name or address, without a port.
fn check_host(h: &str) -> Result<String, CliError> {
    let h = h.trim().to_ascii_lowercase();
    let ok = h == "*"
        || (!h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')));
    if ok {
        Ok(h)
    } else {
        Err(CliError::Invalid(format!(
            "--allowed-host {} is not a host name (give a name or address, e.g. tts.example, or *)",
            tts_backend_api::quote(&h)
        )))
    }
}

/// An origin for --cors-origin: `*`, or `scheme://host[:port]` with no path.
fn check_origin(o: &str) -> Result<String, CliError> {
    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
    let valid = o == "*"
        || o.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    if valid {
        Ok(o)
    } else {
        Err(CliError::Invalid(format!(
            "--cors-origin {} is not an origin (scheme://host[:port], e.g. https://app.example, or *)",
            tts_backend_api::quote(&o)
        )))
    }
}

fn parse_format(s: &str) -> Result<AudioFormat, String> {
    let format: AudioFormat = s.parse().map_err(|_| format!("unknown format '{s}'"))?;
    if format.is_supported() {
        Ok(format)
    } else {
        Err(format!("{} is not supported by this build", format.name()))
    }
}

/// Why the command line cannot become a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl Args {
    /// Parses `std::env::args()` after rewriting short flags.
    pub fn from_env() -> Self {
        Self::parse_from(normalize_args(std::env::args()))
    }

    /// Checks the values and builds the [`Config`].
    pub fn into_config(self) -> Result<Config, CliError> {
        let invalid = |m: String| Err(CliError::Invalid(m));
        if self.n_parallelism == 0 {
            return invalid("--n-parallelism must be at least 1".into());
        }
        if self.timeout == 0 {
            return invalid("--timeout must be at least 1 second".into());
        }
        if self.max_input_chars == 0 {
            return invalid("--max-input-chars must be at least 1".into());
        }
        if matches!(self.n_threads, Some(0)) || matches!(self.n_http_threads, Some(0)) {
            return invalid("--n-threads and --n-http-threads must be at least 1".into());
        }
        if self.max_connections == 0 {
            return invalid("--max-connections must be at least 1".into());
        }
        let mut api_keys = ApiKeys::new(self.api_keys.iter().map(Secret::expose));
        if let Some(file) = &self.api_keys_file {
            api_keys.extend(ApiKeys::from_file(file).map_err(CliError::Invalid)?);
        }
        let allowed_hosts = self
            .allowed_hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| check_host(h))
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins = self
            .cors_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| check_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let addr = resolve(&self.host, self.port)?;
        let backend = match self.backend {
            Some(path) => path,
            None => default_backend()?,
        };
        let options = self
            .backend_options
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let tls = match (self.ssl_file_cert, self.ssl_file_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        Ok(Config {
            backend,
            backend_config: BackendConfig {
                model_path: self.model_path,
                n_threads: self
                    .n_threads
                    .unwrap_or_else(|| default_threads_per_instance(hardware_threads(), self.n_parallelism)),
                use_metal: self.use_metal,
                voice: self.voice,
                espeak_voice_id: self.espeak_voice_id,
                sampling: SamplingParams {
                    temperature: self.temperature,
                    top_k: self.topk,
                    top_p: self.top_p,
                    repetition_penalty: self.repetition_penalty,
                },
                instance: 0,
                options,
            },
            addr,
            n_http_threads: self
                .n_http_threads
                .unwrap_or_else(|| hardware_threads().saturating_sub(1).max(1)),
            n_parallelism: self.n_parallelism,
            queue_size: self.queue_size,
            timeout: Duration::from_secs(self.timeout),
            max_input_chars: self.max_input_chars,
            max_body_bytes: self.max_body_bytes,
            default_format: self.default_response_format,
            tls,
            api_keys,
            header_read_timeout: self.header_read_timeout,
            tls_handshake_timeout: self.tls_handshake_timeout,
            body_read_timeout: self.body_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            allowed_hosts,
            cors_origins,
            stall_grace: self.stall_grace,
            max_written_off: self.max_written_off.unwrap_or(4 * self.n_parallelism),
            shutdown_grace: self.shutdown_grace,
        })
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, CliError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "--host {host} is not an address this machine can resolve"
            ))
        })
}

/// The Kokoro plugin beside the running binary.
fn default_backend() -> Result<PathBuf, CliError> {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    // The Kokoro plugin is built as libkokoro_cpu.so (libkokoro_metal.dylib with Metal).
    for name in [
        "libkokoro_cpu.so",
        "libkokoro_metal.dylib",
        "libtts_backend_kokoro.so",
        "libtts_backend_kokoro.dylib",
    ] {
        let candidate = dir.join(name);
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    let found: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    (n.starts_with("libtts_backend_") || n.starts_with("libkokoro_"))
                        && (n.ends_with(".so") || n.ends_with(".dylib"))
                })
                .collect()
        })
        .unwrap_or_default();
    let hint = if found.is_empty() {
        String::new()
    } else {
        format!(" (plugins beside the binary: {})", found.join(", "))
    };
    Err(CliError::Invalid(format!(
        "no backend given and no Kokoro plugin found in {}; pass --backend path/to/libtts_backend_<name>.so{hint}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        std::iter::once("tts-host".to_string())
            .chain(line.split_whitespace().map(String::from))
            .collect()
    }

    #[test]
    fn multi_letter_short_flags_become_long() {
        let a = normalize_args(args("-np 2 -mp m.gguf -h 0.0.0.0 -p=9000 -tk 5 -- -np"));
        assert_eq!(
            a[1..],
            [
                "--n-parallelism",
                "2",
                "--model-path",
                "m.gguf",
                "--host",
                "0.0.0.0",
                "--port=9000",
                "--topk",
                "5",
                "--",
                "-np"
            ]
        );
    }

    #[test]
    fn seed_defaults() {
        let a = Args::parse_from(normalize_args(args("--backend x.so")));
        assert_eq!(a.temperature, 1.0);
        assert_eq!(a.repetition_penalty, 1.0);
        assert_eq!(a.top_p, 1.0);
        assert_eq!(a.topk, 50);
        assert_eq!(a.port, 8080);
        assert_eq!(a.timeout, 300);
        assert_eq!(a.n_parallelism, 1);
        assert!(!a.use_metal);
        assert_eq!(a.host, "127.0.0.1");
        let c = a.into_config().unwrap();
        assert_eq!(c.backend_config.n_threads, hardware_threads());
        let c = Args::parse_from(normalize_args(args("--backend x.so -np 2")))
            .into_config()
            .unwrap();
        assert_eq!(c.backend_config.n_threads, (hardware_threads() / 2).max(1));
        assert_eq!(default_threads_per_instance(16, 4), 4);
        assert_eq!(default_threads_per_instance(2, 4), 1);
        assert_eq!(default_threads_per_instance(3, 2), 1);
        assert_eq!(default_threads_per_instance(8, 1), 8);
        assert_eq!(c.n_http_threads, hardware_threads().saturating_sub(1).max(1));
        assert_eq!(c.default_format, AudioFormat::Wav);
    }

    #[test]
    fn every_seed_flag_parses() {
        let line = "-t 0.5 -r 1.1 -tp 0.9 -tk 10 -nt 3 -p 1234 -ht 2 -to 60 -np 2 -m -mp model.gguf \
                    -sfc c.pem -sfk k.pem -h 127.0.0.2 -v jf_alpha -eid ja --backend b.so \
                    --backend-option mode=panic --backend-option delay_ms=5";
        let c = Args::parse_from(normalize_args(args(line)))
            .into_config()
            .unwrap();
        let b = &c.backend_config;
        assert_eq!(
            b.sampling,
            SamplingParams {
                temperature: 0.5,
                top_k: 10,
                top_p: 0.9,
                repetition_penalty: 1.1
            }
        );
        assert_eq!(b.n_threads, 3);
        assert_eq!(c.addr, "127.0.0.2:1234".parse().unwrap());
        assert_eq!(c.n_http_threads, 2);
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.n_parallelism, 2);
        assert!(b.use_metal);
        assert_eq!(b.model_path.as_deref(), Some(std::path::Path::new("model.gguf")));
        assert!(c.tls.is_some());
        assert_eq!(b.voice.as_deref(), Some("jf_alpha"));
        assert_eq!(b.espeak_voice_id.as_deref(), Some("ja"));
        assert_eq!(b.option("mode").as_deref(), Some("panic"));
        assert_eq!(b.option("delay_ms").as_deref(), Some("5"));
    }

    #[test]
    fn bad_values_are_refused() {
        let e = Args::parse_from(normalize_args(args("--backend b.so -np 0")))
            .into_config()
            .unwrap_err();
        assert_eq!(e.to_string(), "--n-parallelism must be at least 1");
        assert!(Args::try_parse_from(normalize_args(args("--backend b.so -sfc only.pem"))).is_err());
        assert!(Args::try_parse_from(normalize_args(args("--backend-option novalue"))).is_err());
        assert!(Args::try_parse_from(normalize_args(args("--default-response-format aac"))).is_err());
        for bad in [
            "--header-read-timeout 0",
            "--idle-timeout -1",
            "--body-read-timeout soon",
            "--stall-grace 100000",
        ] {
            assert!(
                Args::try_parse_from(normalize_args(args(&format!("--backend b.so {bad}")))).is_err(),
                "{bad}"
            );
        }
        for (bad, message) in [
            ("--max-connections 0", "--max-connections must be at least 1"),
            (
                "--cors-origin ftp://x",
                "--cors-origin 'ftp://x' is not an origin",
            ),
            (
                "--cors-origin https://x/path",
                "--cors-origin 'https://x/path' is not an origin",
            ),
            ("--allowed-host a/b", "--allowed-host 'a/b' is not a host name"),
        ] {
            let e = Args::parse_from(normalize_args(args(&format!("--backend b.so {bad}"))))
                .into_config()
                .unwrap_err();
            assert!(e.to_string().starts_with(message), "{bad}: {e}");
        }
    }

    #[test]
    fn hostile_input_defaults_and_flags() {
        let c = Args::parse_from(normalize_args(args("--backend b.so -np 2")))
            .into_config()
            .unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(30));
        assert_eq!(c.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.body_read_timeout, Duration::from_secs(30));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, 256);
        assert_eq!(c.stall_grace, Duration::from_secs(10));
        assert_eq!(c.max_written_off, 8);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert!(c.allowed_hosts.is_empty() && c.cors_origins.is_empty() && c.api_keys.is_empty());
        let line = "--backend b.so --header-read-timeout 1.5 --idle-timeout 2 --max-connections 3 \
                    --allowed-host TTS.example --allowed-host * --cors-origin https://App.example/ \
                    --stall-grace 0.5 --max-written-off 0 --shutdown-grace 1 --api-key  k1 ";
        let c = Args::parse_from(normalize_args(args(line)))
            .into_config()
            .unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(c.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.allowed_hosts, ["tts.example", "*"]);
        assert_eq!(c.cors_origins, ["https://app.example"]);
        assert_eq!(c.stall_grace, Duration::from_millis(500));
        assert_eq!(c.max_written_off, 0);
        assert!(c.api_keys.accepts(Some("Bearer k1")));
    }

    #[test]
    fn keys_never_show_in_debug_and_an_empty_keys_file_is_refused() {
        let a = Args::parse_from(normalize_args(args("--backend b.so --api-key hunter2")));
        assert!(!format!("{a:?}").contains("hunter2"));
        let c = a.into_config().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let dir = std::env::temp_dir().join(format!("tts-host-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty-keys");
        std::fs::write(&file, "# nothing\n").unwrap();
        let e = Args::parse_from(normalize_args(args(&format!(
            "--backend b.so --api-keys-file {}",
            file.display()
        ))))
        .into_config()
        .unwrap_err();
        assert!(e.to_string().contains("no key"), "{e}");
    }
}
