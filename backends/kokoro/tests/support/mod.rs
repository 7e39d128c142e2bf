//! Shared helpers of the integration tests.

#![allow(dead_code)] // each test binary uses its own subset

pub mod golden;
pub mod npz;

use std::path::PathBuf;

/// `$var` if set, else `default` relative to this crate's manifest directory.
fn path_from(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default))
}

/// `path` if it exists; otherwise a failure in CI (`CI` set) and a skip message elsewhere.
fn required(path: PathBuf, what: &str, hint: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{what} not found at {}: {hint}", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The converted model: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` in the repository.
pub fn model_path() -> Option<PathBuf> {
    required(
        path_from("TTS_KOKORO_MODEL", "../../models/kokoro-82m-f32.gguf"),
        "Kokoro model",
        "run `scripts/fetch-model` in the repository root (or set TTS_KOKORO_MODEL)",
    )
}

/// The phonemizer fixture: `$TTS_PHONEME_FIXTURES`, else `../shared/fixtures/phonemes/visible.jsonl`
/// beside the repository.
pub fn phoneme_fixture_path() -> Option<PathBuf> {
    required(
        path_from(
            "TTS_PHONEME_FIXTURES",
            "../../../shared/fixtures/phonemes/visible.jsonl",
        ),
        "phoneme fixtures",
        "set TTS_PHONEME_FIXTURES",
    )
}
