//! `faulty`: a backend that misbehaves on purpose, so the host's defences can be tested.
//!
//! The fault is chosen by `--backend-option mode=…` for every request, or per request by the
//! extension field `"fault": "…"` in the request body (which wins). Without a fault it speaks a
//! plain 440 Hz tone, 50 ms per character, one chunk per character.
//!
//! | mode | what it does |
//! |---|---|
//! | `none` | behaves |
//! | `panic` | panics before any audio |
//! | `panic-after-audio` | pushes one chunk, then panics |
//! | `error` | returns an internal error before any audio |
//! | `error-after-audio` | pushes one chunk, then returns an internal error |
//! | `hang` | never produces audio, sleeping until cancelled |
//! | `stall` | ignores cancellation and sleeps `stall_ms` (default 2000), then returns |
//! | `wedge` | ignores cancellation and never returns (the thread sleeps forever) |
//! | `flood` | pushes one-second chunks as fast as it can until told to stop (`flood_seconds` caps it, default 600) |
//! | `bad-samples` | pushes NaN, infinities and values far outside [-1, 1] |
//! | `panic-on-load` | panics in its constructor |
//! | `error-on-load` | fails its constructor with a configuration error |
//!
//! `load_delay_ms` (default 0) makes the constructor take that long, so the host's "loading"
//! state can be observed.
//!
//! A plugin built for another ABI lives in the separate crate `tts-backend-faulty-abi`, since
//! the ABI is fixed when a library is compiled.

#![deny(unsafe_code)]

use std::time::{Duration, Instant};

use tts_backend_api::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, Flow, SynthesisRequest, VoiceInfo,
};

const RATE: u32 = 24_000;

/// The faults this backend can commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Behaves.
    None,
    /// Panics before any audio.
    Panic,
    /// Pushes one chunk, then panics.
    PanicAfterAudio,
    /// Returns an internal error.
    Error,
    /// Pushes one chunk, then errors.
    ErrorAfterAudio,
    /// Sleeps until cancelled.
    Hang,
    /// Ignores cancellation for a while.
    Stall,
    /// Ignores cancellation and never returns.
    Wedge,
    /// Pushes audio as fast as possible.
    Flood,
    /// Pushes non-finite and out-of-range samples.
    BadSamples,
}

impl Mode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Mode::None,
            "panic" => Mode::Panic,
            "panic-after-audio" => Mode::PanicAfterAudio,
            "error" => Mode::Error,
            "error-after-audio" => Mode::ErrorAfterAudio,
            "hang" => Mode::Hang,
            "stall" => Mode::Stall,
            "wedge" => Mode::Wedge,
            "flood" => Mode::Flood,
            "bad-samples" => Mode::BadSamples,
            _ => return None,
        })
    }
}

/// The misbehaving backend.
#[derive(Debug, Clone)]
pub struct FaultyBackend {
    mode: Mode,
    stall: Duration,
    flood_seconds: u64,
}

impl FaultyBackend {
    /// Builds the backend; `mode=panic-on-load` and `mode=error-on-load` fail here.
    pub fn new(config: BackendConfig) -> Result<Self, BackendError> {
        let mode_text = config.option("mode").unwrap_or_else(|| "none".into());
        match mode_text.as_str() {
            "panic-on-load" => panic!("faulty backend: panicking in the constructor as configured"),
            "error-on-load" => {
                return Err(BackendError::invalid_config(
                    "faulty backend: failing to load as configured (mode=error-on-load)",
                ))
            }
            _ => {}
        }
        let mode = Mode::parse(&mode_text).ok_or_else(|| {
            BackendError::invalid_config(format!("--backend-option mode={mode_text} is not a known fault"))
        })?;
        let number = |key: &str, default: u64| -> Result<u64, BackendError> {
            config.option(key).map_or(Ok(default), |v| {
                v.parse().map_err(|_| {
                    BackendError::invalid_config(format!("--backend-option {key}={v} is not a whole number"))
                })
            })
        };
        std::thread::sleep(Duration::from_millis(number("load_delay_ms", 0)?));
        tracing::warn!(?mode, "faulty backend loaded; it misbehaves on purpose");
        Ok(Self {
            mode,
            stall: Duration::from_millis(number("stall_ms", 2000)?),
            flood_seconds: number("flood_seconds", 600)?,
        })
    }

    fn tone(n: usize, offset: usize) -> Vec<f32> {
        (offset..offset + n)
            .map(|i| 0.25 * (std::f32::consts::TAU * 440.0 * i as f32 / RATE as f32).sin())
            .collect()
    }
}

impl Backend for FaultyBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "faulty".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sample_rate: RATE,
            languages: vec!["en".into()],
            description: "misbehaves on purpose, for tests".into(),
        }
    }

    fn voices(&self) -> Vec<VoiceInfo> {
        vec![VoiceInfo::new("faulty").with_name("Faulty").with_language("en")]
    }

    fn synthesize(&self, request: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError> {
        let mode = match request.extra.get("fault").and_then(|v| v.as_str()) {
            Some(s) => {
                Mode::parse(s).ok_or_else(|| BackendError::invalid_input(format!("unknown fault '{s}'")))?
            }
            None => self.mode,
        };
        if request.voice != "faulty" {
            return Err(BackendError::unknown_voice(&request.voice, ["faulty"]));
        }
        if request.text.trim().is_empty() {
            return Err(BackendError::invalid_input("the text has nothing to speak"));
        }
        let chunk = (RATE as f32 * 0.05 / request.speed) as usize;
        match mode {
            Mode::None => {
                for (i, _) in request.text.chars().enumerate() {
                    if sink.push(&Self::tone(chunk, i * chunk)) == Flow::Stop {
                        break;
                    }
                }
                Ok(())
            }
            Mode::Panic => panic!("faulty backend: panicking as asked"),
            Mode::PanicAfterAudio => {
                sink.push(&Self::tone(chunk, 0));
                panic!("faulty backend: panicking after the first chunk as asked")
            }
            Mode::Error => Err(BackendError::internal("faulty backend: failing as asked")),
            Mode::ErrorAfterAudio => {
                sink.push(&Self::tone(chunk, 0));
                Err(BackendError::internal(
                    "faulty backend: failing after the first chunk as asked",
                ))
            }
            Mode::Hang => {
                while !sink.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            }
            Mode::Stall => {
                let until = Instant::now() + self.stall;
                while Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            }
            Mode::Wedge => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Mode::Flood => {
                let second = Self::tone(RATE as usize, 0);
                for _ in 0..self.flood_seconds {
                    if sink.push(&second) == Flow::Stop {
                        break;
                    }
                }
                Ok(())
            }
            Mode::BadSamples => {
                let mut bad = Self::tone(chunk, 0);
                for (i, s) in bad.iter_mut().enumerate().step_by(7) {
                    *s = match i % 4 {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        2 => f32::NEG_INFINITY,
                        _ => 1.0e6,
                    };
                }
                sink.push(&bad);
                Ok(())
            }
        }
    }
}

tts_backend_api::export_backend!(FaultyBackend::new);

#[cfg(test)]
mod tests {
    use super::*;
    use tts_backend_api::{ErrorKind, VecSink};

    fn with_mode(mode: &str) -> Result<FaultyBackend, BackendError> {
        let mut config = BackendConfig::default();
        config.options.insert("mode".into(), mode.into());
        FaultyBackend::new(config)
    }

    #[test]
    fn behaves_without_a_fault() {
        let b = with_mode("none").unwrap();
        let mut sink = VecSink::new();
        b.synthesize(&SynthesisRequest::new("abc", "faulty"), &mut sink)
            .unwrap();
        assert_eq!(sink.chunks.len(), 3);
        assert_eq!(sink.samples().len(), 3 * 1200);
    }

    #[test]
    fn request_field_overrides_the_mode() {
        let b = with_mode("none").unwrap();
        let mut req = SynthesisRequest::new("abc", "faulty");
        req.extra.insert("fault".into(), "error".into());
        let e = b.synthesize(&req, &mut VecSink::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
    }

    #[test]
    fn load_faults_and_unknown_modes() {
        assert_eq!(
            with_mode("error-on-load").unwrap_err().kind,
            ErrorKind::InvalidConfig
        );
        let e = with_mode("explode").unwrap_err();
        assert_eq!(e.message, "--backend-option mode=explode is not a known fault");
        assert!(std::panic::catch_unwind(|| with_mode("panic-on-load")).is_err());
        assert_eq!(with_mode("wedge").unwrap().mode, Mode::Wedge);
        assert_eq!(Mode::parse("stall"), Some(Mode::Stall));
    }

    #[test]
    fn flood_stops_when_told() {
        let b = with_mode("flood").unwrap();
        let mut sink = VecSink {
            stop_after: Some(3),
            ..VecSink::new()
        };
        b.synthesize(&SynthesisRequest::new("x", "faulty"), &mut sink)
            .unwrap();
        assert_eq!(sink.chunks.len(), 3);
    }
}
