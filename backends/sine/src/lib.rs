//! `sine`: a deterministic tone backend for tts-host.
//!
//! Every character becomes a short tone whose pitch depends on the character and the voice;
//! spaces become short pauses and sentence punctuation longer ones. Audio is pushed one word at a
//! time, so streaming, cancellation and parallelism can be tested without model weights.
//!
//! Backend options (`tts-host --backend-option key=value`):
//!
//! * `delay_ms` (default 0): sleep this long before each word, as if computing; cancellation is
//!   checked while sleeping. Lets tests hold an instance busy.
//! * `sample_rate` (default 24000).

#![deny(unsafe_code)]

use std::f32::consts::TAU;
use std::time::{Duration, Instant};

use tts_backend_api::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, Flow, Gender, SynthesisRequest, VoiceInfo,
};

/// Seconds of tone per character at speed 1.0.
const CHAR_SECONDS: f32 = 0.06;
/// Seconds of silence for a space, and for sentence punctuation.
const SPACE_SECONDS: f32 = 0.04;
const STOP_SECONDS: f32 = 0.2;
/// Peak amplitude.
const AMPLITUDE: f32 = 0.3;

/// The voices: id, display name, language, gender, base frequency in Hz.
const VOICES: [(&str, &str, &str, Gender, f32); 4] = [
    ("sine_alto", "Alto", "en-US", Gender::Female, 330.0),
    ("sine_bass", "Bass", "en-GB", Gender::Male, 110.0),
    ("sine_kana", "Kana", "ja", Gender::Female, 440.0),
    ("sine_sol", "Sol", "es", Gender::Neutral, 220.0),
];

/// The tone backend.
#[derive(Debug, Clone)]
pub struct SineBackend {
    sample_rate: u32,
    delay: Duration,
}

impl SineBackend {
    /// Builds the backend from its configuration.
    pub fn new(config: BackendConfig) -> Result<Self, BackendError> {
        let delay_ms = parse_option(&config, "delay_ms", 0)?;
        let sample_rate = parse_option(&config, "sample_rate", 24_000)?;
        if !(8_000..=192_000).contains(&sample_rate) {
            return Err(BackendError::invalid_config(format!(
                "--backend-option sample_rate={sample_rate} is outside 8000..=192000"
            )));
        }
        tracing::info!(
            sample_rate,
            delay_ms,
            instance = config.instance,
            "sine backend ready"
        );
        Ok(Self {
            sample_rate: u32::try_from(sample_rate)
                .map_err(|_| BackendError::invalid_config("sample_rate too large"))?,
            delay: Duration::from_millis(delay_ms),
        })
    }

    fn base_frequency(voice: &str) -> Option<f32> {
        VOICES.iter().find(|v| v.0 == voice).map(|v| v.4)
    }

    /// The samples for one word (or one run of spaces/punctuation).
    fn render(&self, word: &str, base: f32, speed: f32, out: &mut Vec<f32>) {
        let rate = self.sample_rate as f32;
        for c in word.chars() {
            let (seconds, freq) = match c {
                c if c.is_whitespace() => (SPACE_SECONDS, None),
                '.' | '!' | '?' | ';' | ':' | '。' => (STOP_SECONDS, None),
                ',' | '、' => (STOP_SECONDS / 2.0, None),
                c => {
                    let step = (u32::from(c) % 24) as f32;
                    (CHAR_SECONDS, Some(base * (step / 12.0).exp2()))
                }
            };
            let n = ((seconds / speed) * rate).round() as usize;
            match freq {
                None => out.extend(std::iter::repeat_n(0.0, n)),
                Some(f) => {
                    // 5 ms raised-cosine ramps at both ends, so joins never click.
                    let ramp = ((0.005 * rate) as usize).clamp(1, n.max(2) / 2);
                    out.extend((0..n).map(|i| {
                        let edge = i.min(n - 1 - i);
                        let gain = if edge < ramp {
                            0.5 - 0.5 * (std::f32::consts::PI * edge as f32 / ramp as f32).cos()
                        } else {
                            1.0
                        };
                        AMPLITUDE * gain * (TAU * f * i as f32 / rate).sin()
                    }));
                }
            }
        }
    }

    /// Sleeps for the configured delay, waking early when the request is cancelled.
    fn think(&self, sink: &dyn AudioSink) -> Flow {
        let until = Instant::now() + self.delay;
        while Instant::now() < until {
            if sink.is_cancelled() {
                return Flow::Stop;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(5)));
        }
        Flow::Continue
    }
}

fn parse_option(config: &BackendConfig, key: &str, default: u64) -> Result<u64, BackendError> {
    match config.option(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            BackendError::invalid_config(format!("--backend-option {key}={v} is not a whole number"))
        }),
    }
}

/// Splits text into words, each keeping its trailing spaces and punctuation.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(char::is_whitespace)
        .filter(|w| !w.is_empty())
}

impl Backend for SineBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "sine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sample_rate: self.sample_rate,
            languages: VOICES.iter().map(|v| v.2.to_string()).collect(),
            description: "deterministic test tones, one per character".into(),
        }
    }

    fn voices(&self) -> Vec<VoiceInfo> {
        VOICES
            .iter()
            .map(|(id, name, lang, gender, _)| {
                VoiceInfo::new(*id)
                    .with_name(*name)
                    .with_language(*lang)
                    .with_gender(*gender)
            })
            .collect()
    }

    fn synthesize(&self, request: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError> {
        let Some(base) = Self::base_frequency(&request.voice) else {
            return Err(BackendError::unknown_voice(
                &request.voice,
                VOICES.iter().map(|v| v.0),
            ));
        };
        if request.text.trim().is_empty() {
            return Err(BackendError::invalid_input("the text has nothing to speak"));
        }
        if !(request.speed.is_finite() && request.speed > 0.0) {
            return Err(BackendError::invalid_input(format!(
                "speed {} must be positive",
                request.speed
            )));
        }
        let mut buf = Vec::new();
        for word in words(&request.text) {
            if self.think(sink) == Flow::Stop {
                return Ok(());
            }
            buf.clear();
            self.render(word, base, request.speed, &mut buf);
            if !buf.is_empty() && sink.push(&buf) == Flow::Stop {
                return Ok(());
            }
        }
        Ok(())
    }
}

tts_backend_api::export_backend!(SineBackend::new);

#[cfg(test)]
mod tests {
    use super::*;
    use tts_backend_api::VecSink;

    fn backend() -> SineBackend {
        SineBackend::new(BackendConfig::default()).unwrap()
    }

    #[test]
    fn conforms() {
        tts_backend_api::testkit::Conformance::new()
            .run(&backend())
            .assert_ok();
    }

    #[test]
    fn length_follows_characters_and_speed() {
        let b = backend();
        let mut sink = VecSink::new();
        b.synthesize(&SynthesisRequest::new("ab c.", "sine_alto"), &mut sink)
            .unwrap();
        // a, b, c: 3 × 60 ms; one space: 40 ms; '.': 200 ms → 0.42 s at 24 kHz.
        assert_eq!(sink.samples().len(), 3 * 1440 + 960 + 4800);
        assert_eq!(sink.chunks.len(), 2, "one chunk per word");

        let mut fast = VecSink::new();
        b.synthesize(
            &SynthesisRequest::new("ab c.", "sine_alto").with_speed(2.0),
            &mut fast,
        )
        .unwrap();
        assert_eq!(fast.samples().len(), (3 * 1440 + 960 + 4800) / 2);
    }

    #[test]
    fn deterministic_and_voice_dependent() {
        let b = backend();
        let run = |voice: &str| {
            let mut sink = VecSink::new();
            b.synthesize(&SynthesisRequest::new("hello", voice), &mut sink)
                .unwrap();
            sink.samples()
        };
        assert_eq!(run("sine_alto"), run("sine_alto"));
        assert_ne!(run("sine_alto"), run("sine_bass"));
        let s = run("sine_alto");
        assert!(s.iter().all(|x| x.abs() <= AMPLITUDE + 1e-6));
        assert_eq!(s[0], 0.0, "ramps start at zero");
    }

    #[test]
    fn bad_options_are_config_errors() {
        let mut config = BackendConfig::default();
        config.options.insert("delay_ms".into(), "soon".into());
        let e = SineBackend::new(config).unwrap_err();
        assert_eq!(e.kind, tts_backend_api::ErrorKind::InvalidConfig);
        assert!(e.message.contains("delay_ms=soon"), "{}", e.message);
    }
}
