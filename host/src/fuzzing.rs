//! Fuzz entry points for `fuzz/` (cargo-fuzz); not part of the API.
//!
//! Each `pub fn` takes the fuzzer's bytes, runs the code under test and asserts its invariants
//! with `assert!`: a failed assertion is a finding, like a panic. `fuzz/fuzz_targets/*.rs` only
//! call these, and the tests below replay every committed corpus file through the same function,
//! so `cargo test` checks the corpus without cargo-fuzz. See `docs/fuzzing.md`.

use serde_json::{Map, Value};
use tts_backend_api::{SamplingParams, VoiceInfo};

use crate::audio::AudioFormat;
use crate::http::error::ApiError;
use crate::http::openai::{is_voice_expression, parse_speech, Limits, StreamFormat, OPENAI_VOICES};

/// `--max-input-chars` of the fuzzed server: small, so the fuzzer reaches the limit.
pub const MAX_INPUT_CHARS: usize = 64;

/// The fuzzed backend's voices. `nova` is one of OpenAI's names that the backend also has (it
/// must stay itself); `af-heart` contains a `-` but is a voice, not a subtraction.
pub const VOICES: [&str; 4] = ["af_heart", "jf_alpha", "nova", "af-heart"];

/// The fuzzed server's default voice (`--voice`).
pub const DEFAULT_VOICE: &str = "jf_alpha";

/// The fuzzed server's model ids.
pub const MODELS: [&str; 4] = ["kokoro", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// The fields `parse_speech` reads; every error names one of them, except a non-object body.
const FIELDS: [&str; 14] = [
    "model",
    "input",
    "voice",
    "response_format",
    "speed",
    "instructions",
    "stream_format",
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "normalize",
    "language",
    "lang_code",
];

/// Target `speech_request`: bytes → JSON → [`parse_speech`] with fixed [`Limits`].
///
/// Invariants: a body that is not JSON is a 400 `invalid_json`; an accepted request has a
/// non-blank `input` of at most [`MAX_INPUT_CHARS`] characters (counted as `input_chars`), a
/// speed in 0.25..=4, a voice that is a backend voice, the default or a blend expression, a
/// supported format, sampling values in their documented ranges, and exactly the unknown fields
/// in `extra`; a refused one is a 400 `invalid_request_error` with a code and the `param` at
/// fault (none only for a body that is not an object), and its envelope says the same.
pub fn speech_request(data: &[u8]) {
    let value: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            let err = ApiError::malformed_json(&e);
            assert_eq!(err.status.as_u16(), 400);
            assert_eq!(err.code, Some("invalid_json"));
            return;
        }
    };
    let voices: Vec<VoiceInfo> = VOICES.iter().map(|&v| VoiceInfo::new(v)).collect();
    let models: Vec<String> = MODELS.iter().map(|&m| m.to_owned()).collect();
    let limits = Limits {
        max_input_chars: MAX_INPUT_CHARS,
        default_format: AudioFormat::Wav,
        voices: &voices,
        default_voice: DEFAULT_VOICE,
        models: &models,
        sampling: SamplingParams::default(),
        language: None,
    };
    match parse_speech(&value, &limits) {
        Ok(request) => {
            let Value::Object(obj) = &value else {
                panic!("accepted a body that is not an object: {value}");
            };
            check_accepted(obj, &request);
        }
        Err(err) => check_refused(&value, &err),
    }
}

fn check_accepted(obj: &Map<String, Value>, r: &crate::http::openai::SpeechRequest) {
    let s = &r.synthesis;
    assert_eq!(
        obj.get("input"),
        Some(&Value::String(s.text.clone())),
        "input changed"
    );
    assert_eq!(r.input_chars, s.text.chars().count(), "input_chars miscounted");
    assert!(
        r.input_chars <= MAX_INPUT_CHARS,
        "input of {} chars accepted",
        r.input_chars
    );
    assert!(!s.text.trim().is_empty(), "blank input accepted");

    assert!(
        s.speed.is_finite() && (0.25..=4.0).contains(&s.speed),
        "speed {}",
        s.speed
    );
    if obj.get("speed").is_none_or(Value::is_null) {
        assert_eq!(s.speed, 1.0, "default speed");
    }

    assert!(!s.voice.is_empty(), "empty voice");
    assert!(
        VOICES.contains(&s.voice.as_str()) || s.voice == DEFAULT_VOICE || is_voice_expression(&s.voice),
        "voice {:?} is neither a backend voice, the default nor an expression",
        s.voice
    );
    assert!(
        !OPENAI_VOICES.contains(&s.voice.to_ascii_lowercase().as_str()) || VOICES.contains(&s.voice.as_str()),
        "OpenAI voice name {:?} reached the backend",
        s.voice
    );
    assert_eq!(s.voice, s.voice.trim(), "voice not trimmed");

    assert!(r.format.is_supported(), "unsupported format {:?}", r.format);
    match obj.get("stream_format") {
        Some(Value::String(f)) if f == "sse" => assert_eq!(r.stream, StreamFormat::Sse),
        _ => assert_eq!(r.stream, StreamFormat::Audio),
    }
    assert_eq!(s.normalize, obj.get("normalize") != Some(&Value::Bool(false)));
    if let Some(l) = &s.language {
        assert!(!l.is_empty() && l.trim() == l, "language {l:?}");
    }

    let p = s.sampling;
    assert!(
        p.temperature.is_finite() && p.temperature >= 0.0,
        "temperature {}",
        p.temperature
    );
    assert!((0.0..=1.0).contains(&p.top_p), "top_p {}", p.top_p);
    assert!(
        p.repetition_penalty.is_finite() && p.repetition_penalty > 0.0,
        "repetition_penalty {}",
        p.repetition_penalty
    );

    let unknown: Vec<&String> = obj.keys().filter(|k| !FIELDS.contains(&k.as_str())).collect();
    assert_eq!(s.extra.len(), unknown.len(), "extra fields");
    for key in unknown {
        assert_eq!(s.extra.get(key), obj.get(key), "extra field {key:?}");
    }
}

fn check_refused(value: &Value, err: &ApiError) {
    assert_eq!(err.status.as_u16(), 400, "{err:?}");
    assert_eq!(err.kind, "invalid_request_error", "{err:?}");
    assert!(err.code.is_some_and(|c| !c.is_empty()), "no code: {err:?}");
    assert!(!err.message.is_empty(), "no message: {err:?}");
    assert_eq!(err.retry_after, None, "{err:?}");
    match (value, err.param) {
        (Value::Object(_), Some(param)) => assert!(FIELDS.contains(&param), "param {param:?}"),
        (Value::Object(_), None) => panic!("an object body refused without a param: {err:?}"),
        (_, param) => assert_eq!(param, None, "a non-object body blamed on a field"),
    }
    let body = err.body();
    let envelope = &body["error"];
    assert_eq!(envelope["message"], Value::String(err.message.clone()));
    assert_eq!(envelope["type"], Value::String(err.kind.to_owned()));
    assert_eq!(
        envelope["param"],
        err.param.map_or(Value::Null, |p| Value::String(p.into()))
    );
    assert_eq!(
        envelope["code"],
        err.code.map_or(Value::Null, |c| Value::String(c.into()))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Every file of `fuzz/<dir>/<target>/`, sorted.
    fn corpus(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz")
            .join(dir)
            .join(target);
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn replays_the_speech_request_corpus() {
        let files = corpus("corpus", "speech_request");
        assert!(files.len() >= 20, "only {} corpus files", files.len());
        let mut accepted = 0;
        for (path, bytes) in &files {
            let result = std::panic::catch_unwind(|| speech_request(bytes));
            assert!(result.is_ok(), "{} fails", path.display());
            accepted += usize::from(
                serde_json::from_slice::<Value>(bytes)
                    .is_ok_and(|v| v.get("input").is_some_and(Value::is_string)),
            );
        }
        // The corpus must keep reaching past JSON parsing, not only into the error paths.
        assert!(
            accepted >= 5,
            "only {accepted} corpus files reach parse_speech with an input"
        );
    }

    #[test]
    fn the_harness_accepts_a_valid_request_and_refuses_bad_ones() {
        // These are the invariants' own tests: if parse_speech changed its contract, they fail
        // here before a fuzz run does.
        speech_request(br#"{"model":"tts-1","input":"Hello.","voice":"nova","speed":4}"#);
        speech_request(br#"{"input":"Hello.","voice":"af_heart(2)+jf_alpha(1)","stream_format":"sse"}"#);
        speech_request(br#"{"input":"x","speed":4.0001}"#);
        speech_request(br#"[1,2]"#);
        speech_request(b"{\"input\":");
        let long = format!(r#"{{"input":"{}"}}"#, "a".repeat(MAX_INPUT_CHARS + 1));
        speech_request(long.as_bytes());
    }

    #[test]
    #[should_panic(expected = "a non-object body blamed on a field")]
    fn the_harness_catches_a_wrong_param() {
        let e = ApiError::invalid(Some("input"), "invalid_type", "x");
        check_refused(&Value::Null, &e);
    }
}
