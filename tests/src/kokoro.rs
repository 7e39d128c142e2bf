//! The Kokoro plugin and model for end-to-end tests, and measures that tell speech from noise,
//! silence or a tone without a reference recording.

use std::path::{Path, PathBuf};

use crate::Launch;

/// Output rate of Kokoro-82M.
pub const RATE: u32 = 24_000;

/// `libkokoro_cpu.so` in the build directory (`cargo build --workspace` makes it).
pub fn plugin() -> PathBuf {
    crate::built("libkokoro_cpu.so")
}

/// The converted model: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` in the
/// repository (what `scripts/fetch-model` writes). When it is missing, tests fail in CI (`CI`
/// set) and are skipped with a message elsewhere, like the kokoro crate's own model tests.
pub fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("TTS_KOKORO_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("models/kokoro-82m-f32.gguf"));
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "Kokoro model not found at {}: run `scripts/fetch-model` in the repository root (or set \
         TTS_KOKORO_MODEL)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// The host with the Kokoro plugin on `model`.
pub fn launch(model: &Path) -> Launch {
    Launch::with_plugin(plugin()).args(["--model-path".to_string(), model.display().to_string()])
}

/// Per-frame measures of a signal, 20 ms frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Root mean square of the whole signal.
    pub rms: f64,
    /// Largest absolute sample.
    pub peak: f64,
    /// Fraction of frames that are voiced: loud (RMS above a quarter of the signal's and above
    /// 0.005) with few zero crossings (below 0.15 per sample, i.e. energy mostly under ~1.8 kHz
    /// at 24 kHz: vowels, nasals, voiced consonants; fricatives and noise cross far more often).
    pub voiced: f64,
    /// Fraction of frames that are near silence (RMS below 0.005).
    pub silent: f64,
}

/// Measures `samples` at `rate` (see [`Profile`]).
pub fn profile(samples: &[f32], rate: u32) -> Profile {
    let rms = crate::audio::rms(samples);
    let peak = samples.iter().fold(0.0f64, |m, &s| m.max(f64::from(s.abs())));
    let frame = (rate / 50) as usize;
    let (mut frames, mut voiced, mut silent) = (0usize, 0usize, 0usize);
    for f in samples.chunks_exact(frame) {
        frames += 1;
        let r = crate::audio::rms(f);
        if r < 0.005 {
            silent += 1;
            continue;
        }
        let crossings = f.windows(2).filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0)).count();
        if r > 0.25 * rms && (crossings as f64) < 0.15 * frame as f64 {
            voiced += 1;
        }
    }
    let n = frames.max(1) as f64;
    Profile {
        rms,
        peak,
        voiced: voiced as f64 / n,
        silent: silent as f64 / n,
    }
}

/// What is wrong with `samples` as speech of `words` words at `speed`, if anything: seconds per
/// word within 0.15–0.8 (scaled by 1/speed), RMS within 0.01–0.5, 20–95 % voiced frames, not
/// silent throughout, no sample beyond ±1.5.
pub fn speech_problems(samples: &[f32], rate: u32, words: usize, speed: f64) -> Vec<String> {
    let mut problems = Vec::new();
    let seconds = samples.len() as f64 / f64::from(rate);
    let per_word = seconds * speed / words.max(1) as f64;
    if !(0.15..=0.8).contains(&per_word) {
        problems.push(format!(
            "{seconds:.2} s for {words} words at speed {speed} ({per_word:.2} s per word at speed 1, want 0.15–0.8)"
        ));
    }
    let p = profile(samples, rate);
    if !(0.01..=0.5).contains(&p.rms) {
        problems.push(format!("RMS {:.4}, want 0.01–0.5", p.rms));
    }
    if p.peak > 1.5 {
        problems.push(format!("peak {:.2}", p.peak));
    }
    if !(0.2..=0.95).contains(&p.voiced) {
        problems.push(format!("{:.0} % voiced frames, want 20–95 %", p.voiced * 100.0));
    }
    if p.silent > 0.8 {
        problems.push(format!("{:.0} % silent frames", p.silent * 100.0));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        let n = (seconds * RATE as f32) as usize;
        (0..n)
            .map(|i| amplitude * (std::f32::consts::TAU * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    #[test]
    fn profile_tells_tones_noise_and_silence_apart() {
        let p = profile(&tone(200.0, 1.0, 0.3), RATE);
        assert!((p.rms - 0.3 / 2f64.sqrt()).abs() < 1e-3, "{p:?}");
        assert_eq!((p.voiced, p.silent), (1.0, 0.0));
        let p = profile(&vec![0.0; RATE as usize], RATE);
        assert_eq!((p.voiced, p.silent), (0.0, 1.0));
        // A 6 kHz tone crosses zero 0.5 times per sample: loud but not voiced.
        let p = profile(&tone(6000.0, 1.0, 0.3), RATE);
        assert_eq!(p.voiced, 0.0);
    }

    #[test]
    fn speech_problems_flag_what_is_not_speech() {
        // Half a 150 Hz tone, half silence: plausible as "speech" by these measures.
        let mut s = tone(150.0, 1.0, 0.2);
        s.extend(vec![0.0; RATE as usize]);
        assert!(speech_problems(&s, RATE, 5, 1.0).is_empty());
        // Too long for one word; silence; a constant tone.
        assert!(!speech_problems(&s, RATE, 1, 1.0).is_empty());
        assert!(!speech_problems(&vec![0.0; RATE as usize], RATE, 3, 1.0).is_empty());
        assert!(!speech_problems(&tone(150.0, 2.0, 0.2), RATE, 5, 1.0).is_empty());
    }
}
