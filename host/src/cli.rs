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
use crate::config::{hardware_threads, Config, TlsFiles};

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

    /// Compute threads per backend instance (TTS.cpp `-nt`); default: hardware concurrency.
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

    /// Require `Authorization: Bearer KEY` on the API routes; repeat for several keys.
    #[arg(
        long = "api-key",
        env = "TTS_API_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

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
                n_threads: self.n_threads.unwrap_or_else(hardware_threads),
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
            api_keys: self.api_keys.into_iter().filter(|k| !k.is_empty()).collect(),
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
    }
}
