//! The `/v1/audio/speech` request as OpenAI's clients send it, validated field by field so that
//! every problem names its `param`.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tts_backend_api::{quote, BackendError, SamplingParams, SynthesisRequest, VoiceInfo};

use super::error::ApiError;
use crate::audio::AudioFormat;

/// OpenAI's built-in voice names. A request naming one of them gets the server's default voice
/// unless the backend has a voice with that very id, so that clients which only offer these names
/// work unchanged.
pub const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin",
    "cedar",
];

/// Model ids every server answers to, besides the backend's own name.
pub const MODEL_ALIASES: [&str; 3] = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// Fields this server reads; every other top-level key goes to the backend in `extra`.
const KNOWN_FIELDS: [&str; 14] = [
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

/// How the audio is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// The encoded audio as the body (chunked).
    Audio,
    /// Server-sent events with base64 audio deltas.
    Sse,
}

/// A validated speech request.
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    /// What goes to the backend.
    pub synthesis: SynthesisRequest,
    /// Output format.
    pub format: AudioFormat,
    /// Body or SSE.
    pub stream: StreamFormat,
    /// Characters of input (for usage counts).
    pub input_chars: usize,
}

/// What validation needs to know about the server.
#[derive(Debug)]
pub struct Limits<'a> {
    /// `--max-input-chars`.
    pub max_input_chars: usize,
    /// `--default-response-format`.
    pub default_format: AudioFormat,
    /// The backend's voices.
    pub voices: &'a [VoiceInfo],
    /// `--voice`, else the first voice.
    pub default_voice: &'a str,
    /// Model ids accepted in `model`.
    pub models: &'a [String],
    /// `--temperature` and friends.
    pub sampling: SamplingParams,
    /// `--espeak-voice-id`.
    pub language: Option<&'a str>,
}

/// Longest `language` / `lang_code` the host passes on.
pub const MAX_LANGUAGE_CHARS: usize = 64;

/// A JSON value parsed with duplicate object keys refused (at any depth), so the server and any
/// proxy or log reader in front of it cannot disagree about which value counted.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key {}", quote(&key))));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a request body: JSON (UTF-8, nesting at most serde_json's 128 levels), no duplicate
/// keys, nothing after the value.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut de).map_err(ApiError::malformed_json)?;
    de.end().map_err(ApiError::malformed_json)?;
    Ok(value)
}

/// The host's check of `language` / `lang_code`: at most [`MAX_LANGUAGE_CHARS`] characters of
/// `[A-Za-z0-9_+/.-]`. Whether the backend knows the language is the backend's check.
fn check_language(field: &'static str, value: &str) -> Result<(), ApiError> {
    let ok = value.chars().count() <= MAX_LANGUAGE_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '/' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            Some(field),
            "unsupported_language",
            format!(
                "'{field}' must be at most {MAX_LANGUAGE_CHARS} characters of letters, digits and _+/.-, got {}",
                quote(value)
            ),
        ))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn number(obj: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Some).ok_or_else(|| {
            ApiError::invalid(
                Some(key),
                "invalid_type",
                format!("'{key}' must be a finite number"),
            )
        }),
        Some(other) => Err(ApiError::invalid(
            Some(key),
            "invalid_type",
            format!("'{key}' must be a number, got {}", type_name(other)),
        )),
    }
}

fn string<'v>(obj: &'v Map<String, Value>, key: &'static str) -> Result<Option<&'v str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::invalid(
            Some(key),
            "invalid_type",
            format!("'{key}' must be a string, got {}", type_name(other)),
        )),
    }
}

/// Whether `voice` is a blend expression rather than a plain id (`a(2)+b(1)`, `a-b`).
pub fn is_voice_expression(voice: &str) -> bool {
    voice.contains(['+', '(', ')', '*'])
        || (voice.contains('-') && voice.split('-').all(|p| !p.trim().is_empty()))
}

fn resolve_voice(value: Option<&Value>, limits: &Limits<'_>) -> Result<String, ApiError> {
    let raw = match value {
        None | Some(Value::Null) => return Ok(limits.default_voice.to_string()),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Object(o)) => match o.get("id") {
            Some(Value::String(s)) => s.trim().to_string(),
            _ => {
                return Err(ApiError::invalid(
                    Some("voice"),
                    "invalid_type",
                    "'voice' as an object must have a string 'id'",
                ))
            }
        },
        Some(other) => {
            return Err(ApiError::invalid(
                Some("voice"),
                "invalid_type",
                format!(
                    "'voice' must be a string or an object with an 'id', got {}",
                    type_name(other)
                ),
            ))
        }
    };
    if raw.is_empty() {
        return Ok(limits.default_voice.to_string());
    }
    if limits.voices.iter().any(|v| v.id == raw) {
        return Ok(raw);
    }
    if OPENAI_VOICES.contains(&raw.to_ascii_lowercase().as_str()) {
        return Ok(limits.default_voice.to_string());
    }
    if is_voice_expression(&raw) {
        // Blends are the backend's grammar; it validates them before producing audio.
        return Ok(raw);
    }
    let e = BackendError::unknown_voice(&raw, limits.voices.iter().map(|v| v.id.as_str()));
    Err(ApiError::invalid(Some("voice"), "voice_not_found", e.message))
}

/// Validates a parsed JSON body.
pub fn parse_speech(body: &Value, limits: &Limits<'_>) -> Result<SpeechRequest, ApiError> {
    let Value::Object(obj) = body else {
        return Err(ApiError::invalid(
            None,
            "invalid_type",
            format!("the request body must be a JSON object, got {}", type_name(body)),
        ));
    };

    if let Some(model) = string(obj, "model")? {
        let known = limits.models.iter().any(|m| m == model) || model.starts_with("gpt-4o-mini-tts");
        if !known {
            return Err(ApiError::invalid(
                Some("model"),
                "model_not_found",
                format!(
                    "unknown model {}; this server offers: {}",
                    quote(model),
                    limits.models.join(", ")
                ),
            ));
        }
    }

    let input = match obj.get("input") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                Some("input"),
                "missing_required_parameter",
                "'input' is required",
            ))
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("input"),
                "invalid_type",
                format!("'input' must be a string, got {}", type_name(other)),
            ))
        }
    };
    if input.trim().is_empty() {
        return Err(ApiError::invalid(
            Some("input"),
            "empty_input",
            "'input' must not be empty",
        ));
    }
    let input_chars = input.chars().count();
    if input_chars > limits.max_input_chars {
        return Err(ApiError::invalid(
            Some("input"),
            "string_too_long",
            format!(
                "'input' has {input_chars} characters; this server accepts at most {}",
                limits.max_input_chars
            ),
        ));
    }

    let voice = resolve_voice(obj.get("voice"), limits)?;

    let format = match string(obj, "response_format")? {
        None => limits.default_format,
        Some(s) => {
            let f: AudioFormat = s.parse().map_err(|_| {
                ApiError::invalid(
                    Some("response_format"),
                    "invalid_value",
                    format!(
                        "unknown response_format {}; use one of wav, mp3, opus, flac, aiff, pcm",
                        quote(s)
                    ),
                )
            })?;
            if !f.is_supported() {
                return Err(ApiError::invalid(
                    Some("response_format"),
                    "unsupported_value",
                    format!("response_format '{}' is not supported by this build; use one of wav, mp3, opus, flac, aiff, pcm", f.name()),
                ));
            }
            f
        }
    };

    let speed = number(obj, "speed")?.unwrap_or(1.0);
    if !(0.25..=4.0).contains(&speed) {
        return Err(ApiError::invalid(
            Some("speed"),
            "invalid_value",
            format!("'speed' must be between 0.25 and 4.0, got {speed}"),
        ));
    }

    let stream = match string(obj, "stream_format")? {
        None | Some("audio") => StreamFormat::Audio,
        Some("sse") => StreamFormat::Sse,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("stream_format"),
                "invalid_value",
                format!("'stream_format' must be 'audio' or 'sse', got {}", quote(other)),
            ))
        }
    };

    // Accepted for compatibility; no backend here takes a style prompt.
    let _ = string(obj, "instructions")?;

    let mut sampling = limits.sampling;
    if let Some(t) = number(obj, "temperature")? {
        // Bounded so that the f32 a backend gets is finite.
        if !(0.0..=1e6).contains(&t) {
            return Err(ApiError::invalid(
                Some("temperature"),
                "invalid_value",
                "'temperature' must be between 0 and 1000000",
            ));
        }
        sampling.temperature = t as f32;
    }
    if let Some(k) = number(obj, "top_k")? {
        if k < 0.0 || k.fract() != 0.0 || k > f64::from(u32::MAX) {
            return Err(ApiError::invalid(
                Some("top_k"),
                "invalid_value",
                "'top_k' must be a whole number >= 0",
            ));
        }
        sampling.top_k = k as u32;
    }
    if let Some(p) = number(obj, "top_p")? {
        if !(0.0..=1.0).contains(&p) {
            return Err(ApiError::invalid(
                Some("top_p"),
                "invalid_value",
                "'top_p' must be between 0 and 1",
            ));
        }
        sampling.top_p = p as f32;
    }
    if let Some(r) = number(obj, "repetition_penalty")? {
        // Bounded so that the f32 a backend gets is finite and not zero.
        if !(1e-6..=1e6).contains(&r) {
            return Err(ApiError::invalid(
                Some("repetition_penalty"),
                "invalid_value",
                "'repetition_penalty' must be between 0.000001 and 1000000",
            ));
        }
        sampling.repetition_penalty = r as f32;
    }

    let normalize = match obj.get("normalize") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("normalize"),
                "invalid_type",
                format!("'normalize' must be a boolean, got {}", type_name(other)),
            ))
        }
    };
    let given = |field: &'static str| -> Result<Option<&str>, ApiError> {
        match string(obj, field)?.map(str::trim).filter(|l| !l.is_empty()) {
            Some(l) => check_language(field, l).map(|()| Some(l)),
            None => Ok(None),
        }
    };
    let language = match (given("language")?, given("lang_code")?) {
        (Some(l), _) | (None, Some(l)) => Some(l.to_string()),
        (None, None) => limits.language.map(str::to_string),
    };

    let extra: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(SpeechRequest {
        synthesis: SynthesisRequest {
            text: input.clone(),
            voice,
            speed: speed as f32,
            language,
            normalize,
            sampling,
            extra,
        },
        format,
        stream,
        input_chars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits<'a>(voices: &'a [VoiceInfo], models: &'a [String]) -> Limits<'a> {
        Limits {
            max_input_chars: 20,
            default_format: AudioFormat::Wav,
            voices,
            default_voice: "a",
            models,
            sampling: SamplingParams::default(),
            language: None,
        }
    }

    fn check(body: Value) -> Result<SpeechRequest, ApiError> {
        let voices = [VoiceInfo::new("a"), VoiceInfo::new("b")];
        let models = vec!["sine".to_string(), "tts-1".to_string()];
        parse_speech(&body, &limits(&voices, &models))
    }

    fn param_of(body: Value) -> (Option<&'static str>, &'static str) {
        let e = check(body).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        (e.param, e.code.unwrap_or(""))
    }

    #[test]
    fn minimal_request_takes_defaults() {
        let r = check(json!({"input": "hi"})).unwrap();
        assert_eq!(r.synthesis.voice, "a");
        assert_eq!(r.synthesis.speed, 1.0);
        assert_eq!(r.format, AudioFormat::Wav);
        assert_eq!(r.stream, StreamFormat::Audio);
        assert!(r.synthesis.normalize);
        assert!(r.synthesis.extra.is_empty());
    }

    #[test]
    fn full_request() {
        let r = check(json!({
            "model": "tts-1", "input": "hi", "voice": {"id": "b"}, "response_format": "MP3",
            "speed": 2, "instructions": "calm", "stream_format": "sse", "temperature": 0.5,
            "top_k": 3, "top_p": 0.5, "repetition_penalty": 1.2, "lang_code": "en-us",
            "normalize": false, "fault": "panic"
        }))
        .unwrap();
        assert_eq!(r.synthesis.voice, "b");
        assert_eq!(r.format, AudioFormat::Mp3);
        assert_eq!(r.synthesis.speed, 2.0);
        assert_eq!(r.stream, StreamFormat::Sse);
        assert_eq!(r.synthesis.sampling.top_k, 3);
        assert_eq!(r.synthesis.language.as_deref(), Some("en-us"));
        assert!(!r.synthesis.normalize);
        assert_eq!(r.synthesis.extra["fault"], "panic");
    }

    #[test]
    fn each_bad_field_names_its_param() {
        assert_eq!(param_of(json!({})), (Some("input"), "missing_required_parameter"));
        assert_eq!(param_of(json!({"input": ""})), (Some("input"), "empty_input"));
        assert_eq!(param_of(json!({"input": "   "})), (Some("input"), "empty_input"));
        assert_eq!(param_of(json!({"input": 5})), (Some("input"), "invalid_type"));
        assert_eq!(
            param_of(json!({"input": "x".repeat(21)})),
            (Some("input"), "string_too_long")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "voice": "zz"})),
            (Some("voice"), "voice_not_found")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "voice": 3})),
            (Some("voice"), "invalid_type")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "speed": 5})),
            (Some("speed"), "invalid_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "speed": 0.1})),
            (Some("speed"), "invalid_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "speed": "fast"})),
            (Some("speed"), "invalid_type")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "response_format": "ogg"})),
            (Some("response_format"), "invalid_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "response_format": "aac"})),
            (Some("response_format"), "unsupported_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "stream_format": "ws"})),
            (Some("stream_format"), "invalid_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "model": "whisper-1"})),
            (Some("model"), "model_not_found")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "top_p": 2})),
            (Some("top_p"), "invalid_value")
        );
        // Values that would become 0 or infinity as f32.
        assert_eq!(
            param_of(json!({"input": "hi", "repetition_penalty": 1e-50})),
            (Some("repetition_penalty"), "invalid_value")
        );
        assert_eq!(
            param_of(json!({"input": "hi", "temperature": 1e39})),
            (Some("temperature"), "invalid_value")
        );
        assert_eq!(param_of(json!([1, 2])), (None, "invalid_type"));
    }

    #[test]
    fn unknown_voice_lists_the_voices() {
        let e = check(json!({"input": "hi", "voice": "zz"})).unwrap_err();
        assert_eq!(e.message, "unknown voice 'zz'; available voices: a, b");
    }

    #[test]
    fn language_fields_are_prechecked() {
        let ok = check(json!({"input": "hi", "language": "en-us"})).unwrap();
        assert_eq!(ok.synthesis.language.as_deref(), Some("en-us"));
        for field in ["language", "lang_code"] {
            for bad in [
                "en us",
                "en\nus",
                "x".repeat(65).as_str(),
                "ja;rm",
                "é",
                "\u{1b}[31m",
            ] {
                let e = check(json!({"input": "hi", field: bad})).unwrap_err();
                assert_eq!(e.status.as_u16(), 400);
                assert_eq!(e.param, Some(field), "{bad:?}");
                assert_eq!(e.code, Some("unsupported_language"), "{bad:?}");
                assert!(!e.message.chars().any(char::is_control), "{}", e.message);
            }
        }
        assert!(check(json!({"input": "hi", "lang_code": "x".repeat(64)})).is_ok());
        assert!(check(json!({"input": "hi", "lang_code": "zh/cmn+a_b.c"})).is_ok());
    }

    #[test]
    fn client_strings_in_messages_are_quoted() {
        for (body, param) in [
            (json!({"input": "hi", "model": "m\n\u{1b}[2J"}), "model"),
            (
                json!({"input": "hi", "response_format": "w\r\nav"}),
                "response_format",
            ),
            (
                json!({"input": "hi", "stream_format": "s\u{7}se"}),
                "stream_format",
            ),
            (json!({"input": "hi", "voice": "v\noice"}), "voice"),
        ] {
            let e = check(body).unwrap_err();
            assert_eq!(e.param, Some(param));
            assert!(!e.message.chars().any(char::is_control), "{}", e.message);
        }
        let e = check(json!({"input": "hi", "model": "y".repeat(10_000)})).unwrap_err();
        assert!(e.message.len() < 500, "{}", e.message.len());
    }

    #[test]
    fn strict_json() {
        assert_eq!(
            parse_json(br#"{"a": [1, 2.5, "x", null, true]}"#).unwrap(),
            json!({"a": [1, 2.5, "x", null, true]})
        );
        for bad in [
            &br#"{"input": "a", "input": "b"}"#[..],
            br#"{"x": {"k": 1, "k": 2}}"#,
            b"{\"input\": \"\xff\xfe\"}",
            br#"{"input": "a"} trailing"#,
            b"",
        ] {
            let e = parse_json(bad).unwrap_err();
            assert_eq!(e.code, Some("invalid_json"), "{:?}", String::from_utf8_lossy(bad));
        }
        let e = parse_json(br#"{"input": "a", "input": "b"}"#).unwrap_err();
        assert!(e.message.contains("duplicate key 'input'"), "{}", e.message);
        // Deep nesting is refused by the parser's depth limit, not by a stack overflow.
        let deep = "[".repeat(100_000);
        let e = parse_json(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("recursion limit"), "{}", e.message);
    }

    #[test]
    fn openai_names_and_blends() {
        assert_eq!(
            check(json!({"input": "hi", "voice": "alloy"}))
                .unwrap()
                .synthesis
                .voice,
            "a"
        );
        assert_eq!(
            check(json!({"input": "hi", "voice": "a(2)+b(1)"}))
                .unwrap()
                .synthesis
                .voice,
            "a(2)+b(1)"
        );
        assert_eq!(
            check(json!({"input": "hi", "voice": "a-b"}))
                .unwrap()
                .synthesis
                .voice,
            "a-b"
        );
        assert!(!is_voice_expression("af_heart"));
    }

    #[test]
    fn input_length_counts_characters_not_bytes() {
        assert!(check(json!({"input": "é".repeat(20)})).is_ok());
    }
}
