//! The conformance test kit (feature `testkit`): the checks every backend should pass, run
//! in-process from the backend's own tests, and by the host's tests over a loaded plugin.
//!
//! ```ignore
//! #[test]
//! fn conforms() {
//!     let backend = MyBackend::new(BackendConfig::default()).unwrap();
//!     tts_backend_api::testkit::Conformance::new().run(&backend).assert_ok();
//! }
//! ```

use std::time::{Duration, Instant};

use crate::{AudioSink, Backend, ErrorKind, Flow, SynthesisRequest, VecSink};

/// What to run; the defaults suit a speech engine for English text.
#[derive(Debug, Clone)]
pub struct Conformance {
    /// A short text the backend must speak.
    pub text: String,
    /// A longer text, used to compare speeds.
    pub long_text: String,
    /// The voice to use; `None` takes the first voice the backend lists.
    pub voice: Option<String>,
    /// Whether `speed` must change the length of the audio (true for speech engines).
    pub check_speed: bool,
    /// How long a cancelled request may keep running after it was told to stop.
    pub cancel_grace: Duration,
}

impl Default for Conformance {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome: each check's name and, if it failed, why.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `(check, Ok(()) | Err(reason))` in the order run.
    pub checks: Vec<(&'static str, Result<(), String>)>,
}

impl Report {
    /// The failed checks.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect()
    }

    /// Panics with every failure listed, for use in `#[test]`s.
    #[track_caller]
    pub fn assert_ok(&self) {
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "backend conformance failed ({} of {} checks):\n  {}",
            failures.len(),
            self.checks.len(),
            failures.join("\n  ")
        );
    }
}

/// A sink that records timing and can stop after N chunks.
struct Recorder {
    chunks: Vec<Vec<f32>>,
    stop_after: Option<usize>,
    pushes_after_stop: usize,
}

impl AudioSink for Recorder {
    fn push(&mut self, samples: &[f32]) -> Flow {
        if matches!(self.stop_after, Some(n) if self.chunks.len() >= n) {
            self.pushes_after_stop += 1;
            return Flow::Stop;
        }
        self.chunks.push(samples.to_vec());
        match self.stop_after {
            Some(n) if self.chunks.len() >= n => Flow::Stop,
            _ => Flow::Continue,
        }
    }

    fn is_cancelled(&self) -> bool {
        matches!(self.stop_after, Some(n) if self.chunks.len() >= n)
    }
}

impl Conformance {
    /// The default checks.
    pub fn new() -> Self {
        Self {
            text: "Hello world.".into(),
            long_text: "The quick brown fox jumps over the lazy dog. It was a bright cold day in April."
                .into(),
            voice: None,
            check_speed: true,
            cancel_grace: Duration::from_secs(10),
        }
    }

    /// Runs every check against `backend`.
    pub fn run(&self, backend: &dyn Backend) -> Report {
        let mut report = Report::default();
        let info = backend.info();
        let voices = backend.voices();

        report.checks.push(("info", {
            if info.name.trim().is_empty() {
                Err("info().name is empty".into())
            } else if info.version.trim().is_empty() {
                Err("info().version is empty".into())
            } else if !(8_000..=192_000).contains(&info.sample_rate) {
                Err(format!(
                    "sample_rate {} is outside 8000..=192000",
                    info.sample_rate
                ))
            } else if info.languages.is_empty() {
                Err("info().languages is empty".into())
            } else {
                Ok(())
            }
        }));

        report.checks.push(("voices", {
            let mut ids = std::collections::HashSet::new();
            if voices.is_empty() {
                Err("voices() is empty".into())
            } else if let Some(v) = voices
                .iter()
                .find(|v| v.id.trim().is_empty() || v.name.trim().is_empty())
            {
                Err(format!("a voice has an empty id or name: {v:?}"))
            } else if let Some(v) = voices.iter().find(|v| !ids.insert(v.id.clone())) {
                Err(format!("voice id '{}' is listed twice", v.id))
            } else {
                Ok(())
            }
        }));

        let Some(voice) = self
            .voice
            .clone()
            .or_else(|| voices.first().map(|v| v.id.clone()))
        else {
            return report;
        };

        let mut short = VecSink::new();
        let request = SynthesisRequest::new(&self.text, &voice);
        let result = backend.synthesize(&request, &mut short);
        report.checks.push(("speaks", {
            let samples = short.samples();
            if let Err(e) = result {
                Err(format!("synthesize({:?}, {voice}) failed: {e}", self.text))
            } else if short.chunks.is_empty() || samples.is_empty() {
                Err("synthesize pushed no audio".into())
            } else if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
                Err(format!("sample {i} is not finite"))
            } else if samples.iter().any(|s| s.abs() > 4.0) {
                Err("samples far outside [-1, 1]".into())
            } else if rms(&samples) < 1e-4 {
                Err(format!("the audio is silent (RMS {:.2e})", rms(&samples)))
            } else {
                Ok(())
            }
        }));

        let mut again = VecSink::new();
        report.checks.push(("repeatable length", {
            match backend.synthesize(&request, &mut again) {
                Ok(()) if again.samples().len() == short.samples().len() => Ok(()),
                Ok(()) => Err(format!(
                    "the same request gave {} and then {} samples",
                    short.samples().len(),
                    again.samples().len()
                )),
                Err(e) => Err(format!("second call failed: {e}")),
            }
        }));

        report.checks.push(("unknown voice", {
            let mut sink = VecSink::new();
            let bad = SynthesisRequest::new(&self.text, "no-such-voice-3f9a");
            match backend.synthesize(&bad, &mut sink) {
                Err(e) if e.kind == ErrorKind::UnknownVoice && sink.chunks.is_empty() => Ok(()),
                Err(e) if e.kind == ErrorKind::UnknownVoice => {
                    Err("audio was pushed before the error".into())
                }
                Err(e) => Err(format!("expected an unknown_voice error, got {e}")),
                Ok(()) => Err("an unknown voice was accepted".into()),
            }
        }));

        report.checks.push(("empty text", {
            let mut sink = VecSink::new();
            match backend.synthesize(&SynthesisRequest::new("", &voice), &mut sink) {
                Err(e) if e.kind == ErrorKind::InvalidInput && sink.chunks.is_empty() => Ok(()),
                Err(e) => Err(format!("expected an invalid_input error without audio, got {e}")),
                Ok(()) => Err("empty text was accepted".into()),
            }
        }));

        report.checks.push(("cancellation", {
            let mut sink = Recorder {
                chunks: Vec::new(),
                stop_after: Some(1),
                pushes_after_stop: 0,
            };
            let long = SynthesisRequest::new(self.long_text.repeat(4), &voice);
            let start = Instant::now();
            let result = backend.synthesize(&long, &mut sink);
            let took = start.elapsed();
            if let Err(e) = result {
                Err(format!("a cancelled request must return Ok, got {e}"))
            } else if sink.pushes_after_stop > 1 {
                Err(format!(
                    "{} chunks were pushed after Flow::Stop",
                    sink.pushes_after_stop
                ))
            } else if took > self.cancel_grace {
                Err(format!("took {took:?} to stop"))
            } else {
                Ok(())
            }
        }));

        if self.check_speed {
            report.checks.push(("speed", {
                let len = |speed: f32| -> Result<usize, String> {
                    let mut sink = VecSink::new();
                    backend
                        .synthesize(
                            &SynthesisRequest::new(&self.long_text, &voice).with_speed(speed),
                            &mut sink,
                        )
                        .map_err(|e| format!("speed {speed}: {e}"))?;
                    Ok(sink.samples().len())
                };
                match (len(0.5), len(2.0)) {
                    (Ok(slow), Ok(fast)) if fast < slow => Ok(()),
                    (Ok(slow), Ok(fast)) => {
                        Err(format!("speed 2.0 gave {fast} samples, speed 0.5 gave {slow}"))
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }));
        }

        report.checks.push(("concurrent calls", {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            let mut sink = VecSink::new();
                            backend
                                .synthesize(&request, &mut sink)
                                .map(|()| sink.samples().len())
                        })
                    })
                    .collect();
                let mut out = Ok(());
                for h in handles {
                    match h.join() {
                        Ok(Ok(n)) if n == short.samples().len() => {}
                        Ok(Ok(n)) => out = Err(format!("concurrent call gave {n} samples")),
                        Ok(Err(e)) => out = Err(format!("concurrent call failed: {e}")),
                        Err(_) => out = Err("a concurrent call panicked".into()),
                    }
                }
                out
            })
        }));

        report
    }
}

fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}
