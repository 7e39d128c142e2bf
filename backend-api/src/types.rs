//! Owned Rust types a backend reads and returns. They cross the plugin boundary as JSON, so new
//! fields can be appended (with `#[serde(default)]`) without breaking the ABI.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a backend says about itself. Read by the host once, right after construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// Short engine name, e.g. `"kokoro"`. Also used as a model id by the host.
    pub name: String,
    /// The backend's own version (not the ABI version).
    pub version: String,
    /// Sample rate of every chunk handed to the [`AudioSink`](crate::AudioSink), in Hz.
    pub sample_rate: u32,
    /// Languages the backend speaks, as BCP 47 tags (`"en-US"`, `"ja"`, …).
    pub languages: Vec<String>,
    /// One line for humans (shown by `/v1/models`).
    #[serde(default)]
    pub description: String,
}

/// Gender of a voice, where the backend knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    /// A female voice.
    Female,
    /// A male voice.
    Male,
    /// Neither, or both.
    Neutral,
}

/// One voice a backend offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceInfo {
    /// The id clients send as `voice` (e.g. `"jf_alpha"`).
    pub id: String,
    /// A display name.
    pub name: String,
    /// The voice's language as a BCP 47 tag, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The voice's gender, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
}

impl VoiceInfo {
    /// A voice with just an id; the name is the id.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            language: None,
            gender: None,
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the language.
    #[must_use]
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets the gender.
    #[must_use]
    pub fn with_gender(mut self, gender: Gender) -> Self {
        self.gender = Some(gender);
        self
    }
}

/// Sampling knobs for engines that sample (TTS.cpp's `--temperature`, `--topk`, …). Deterministic
/// engines such as Kokoro ignore them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature; 1.0 leaves logits unchanged.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables the filter.
    pub top_k: u32,
    /// Nucleus sampling threshold; 1.0 disables the filter.
    pub top_p: f32,
    /// Penalty for repeated tokens; 1.0 disables it.
    pub repetition_penalty: f32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
        }
    }
}

/// One synthesis request, already validated by the host (non-empty text within the host's
/// length limit, speed within 0.25..=4.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesisRequest {
    /// The text to speak.
    pub text: String,
    /// A voice id from [`Backend::voices`](crate::Backend::voices), or a blend expression the
    /// backend understands (e.g. `"jf_alpha(2)+jm_kumo(1)"`).
    pub voice: String,
    /// Speaking rate; 1.0 is normal, 2.0 twice as fast.
    #[serde(default = "default_speed")]
    pub speed: f32,
    /// A language or phonemizer-voice override (e.g. an espeak-ng voice id), if the client or the
    /// operator gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whether the backend should normalise the text (numbers, dates, …) before speaking it.
    #[serde(default = "default_true")]
    pub normalize: bool,
    /// Sampling knobs, for engines that sample.
    #[serde(default)]
    pub sampling: SamplingParams,
    /// Further options from the request, for extensions not named above. Backends ignore keys
    /// they do not know.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

fn default_speed() -> f32 {
    1.0
}

fn default_true() -> bool {
    true
}

impl SynthesisRequest {
    /// A request with default speed, normalisation on, default sampling and no overrides.
    pub fn new(text: impl Into<String>, voice: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            voice: voice.into(),
            speed: 1.0,
            language: None,
            normalize: true,
            sampling: SamplingParams::default(),
            extra: Map::new(),
        }
    }

    /// Sets the speed.
    #[must_use]
    pub fn with_speed(mut self, speed: f32) -> Self {
        self.speed = speed;
        self
    }
}

/// What the host hands a backend at construction: the operator's command-line values plus
/// free-form backend options (`--backend-option key=value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendConfig {
    /// `--model-path`: the model file or directory, if the operator gave one.
    pub model_path: Option<PathBuf>,
    /// `--n-threads`: compute threads for this instance.
    pub n_threads: usize,
    /// `--use-metal`: run on Apple's GPU where the backend supports it.
    pub use_metal: bool,
    /// `--voice`: the operator's default voice, if any.
    pub voice: Option<String>,
    /// `--espeak-voice-id`: a phonemizer voice that overrides the one implied by the voice.
    pub espeak_voice_id: Option<String>,
    /// `--temperature`, `--topk`, `--top-p`, `--repetition-penalty`: the default sampling knobs.
    pub sampling: SamplingParams,
    /// Index of this instance among the host's `--n-parallelism` instances (0-based).
    pub instance: usize,
    /// Backend-specific options (`--backend-option key=value`), values as given.
    pub options: Map<String, Value>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            model_path: None,
            n_threads: 1,
            use_metal: false,
            voice: None,
            espeak_voice_id: None,
            sampling: SamplingParams::default(),
            instance: 0,
            options: Map::new(),
        }
    }
}

impl BackendConfig {
    /// A backend option as a string, if present (numbers and booleans are rendered as text).
    pub fn option(&self, key: &str) -> Option<String> {
        match self.options.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}
