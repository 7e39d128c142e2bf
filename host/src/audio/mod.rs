//! TEMPORARY stand-in (pcm only) until the encoders land; replaced by host/src/audio from the helper.
#![allow(missing_docs)]
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    Wav,
    Aiff,
    Pcm,
    Flac,
    Mp3,
    Opus,
    Aac,
}
#[derive(Debug, thiserror::Error)]
#[error("unknown format")]
pub struct UnknownFormat;
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}
impl AudioFormat {
    pub const ALL: [AudioFormat; 7] = [
        Self::Wav,
        Self::Aiff,
        Self::Pcm,
        Self::Flac,
        Self::Mp3,
        Self::Opus,
        Self::Aac,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Aiff => "aiff",
            Self::Pcm => "pcm",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Opus => "opus",
            Self::Aac => "aac",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            _ => "audio/wav",
        }
    }
    pub fn is_supported(self) -> bool {
        self != Self::Aac
    }
}
impl FromStr for AudioFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        let s = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s || (s == "wave" && *f == Self::Wav))
            .ok_or(UnknownFormat)
    }
}
pub trait StreamEncoder: Send {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError>;
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError>;
}
struct Pcm;
impl StreamEncoder for Pcm {
    fn push(&mut self, s: &[f32]) -> Result<Vec<u8>, EncodeError> {
        Ok(s.iter()
            .flat_map(|x| ((x.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
            .collect())
    }
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        Ok(Vec::new())
    }
}
pub fn new_encoder(format: AudioFormat, _rate: u32) -> Result<Box<dyn StreamEncoder>, EncodeError> {
    let _ = format;
    Ok(Box::new(Pcm))
}
