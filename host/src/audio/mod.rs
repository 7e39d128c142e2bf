//! Streaming audio encoders for `/v1/audio/speech`.
//!
//! One [`StreamEncoder`] is made per response with [`new_encoder`]. The host pushes mono `f32`
//! samples as the backend produces them and sends whatever bytes each call returns straight to
//! the client; [`StreamEncoder::finish`] flushes the encoder at the end. The concatenation of
//! every returned chunk is one complete, valid file: the header goes out with the first chunk,
//! codec state is carried across pushes (no seams, no pops), and nothing is lost at the tail.
//!
//! | Format | Bytes | Implementation (file) |
//! |---|---|---|
//! | `wav`  | RIFF/WAVE, 16-bit PCM, both sizes `0xFFFFFFFF` (the "unknown length" that ffmpeg writes to a pipe) | header by hand (`wav.rs`) |
//! | `aiff` | FORM/AIFF, 16-bit big-endian, COMM + SSND, sizes of the largest legal file | header by hand (`aiff.rs`) |
//! | `pcm`  | raw signed 16-bit little-endian, no header, at the input rate | `pcm.rs` |
//! | `flac` | native FLAC, 16-bit, 4096-sample blocks, STREAMINFO with unknown length and MD5 | `flacenc`, STREAMINFO by hand (`flac.rs`) |
//! | `mp3`  | MPEG audio layer III, CBR, no Xing/LAME tag | LAME 3.100 via `mp3lame-encoder` (`mp3.rs`) |
//! | `opus` | Ogg Opus (RFC 7845), 20 ms packets, 32 kb/s VBR, pre-skip and end trimming | `opus-rs` + `ogg` (`opus.rs`), `rubato` (`resample.rs`) |
//! | `aac`  | not built ([`AudioFormat::is_supported`] is `false`) | — |
//!
//! Input samples are mono `f32`, nominally in `[-1, 1]`. Every encoder first replaces NaN by 0
//! and clamps to `[-1, 1]`. The integer formats (wav, aiff, pcm, flac) then convert with
//! `round(x * 32767)` (round half away from zero), so `1.0` is `32767`, `-1.0` is `-32767` and
//! `0.0` is exactly `0`; the scale is symmetric and `-32768` is never produced. mp3 and opus
//! take the clamped floats directly.
//!
//! Sample rates from 8000 to 192000 Hz are accepted by every format. wav, aiff, pcm and flac
//! store the input rate unchanged (pcm has no header: the client must know the rate; OpenAI
//! clients assume 24000 Hz). mp3 keeps the nine MP3 rates and has LAME resample anything else
//! to the next MP3 rate up (48 kHz at most). opus encodes at 24 kHz for input up to 24 kHz and
//! at 48 kHz above, resampling with `rubato` where the input rate differs.

mod aiff;
mod flac;
mod mp3;
mod opus;
mod pcm;
mod resample;
mod wav;

use std::fmt;
use std::str::FromStr;

/// Lowest input sample rate [`new_encoder`] accepts, in Hz.
const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest input sample rate [`new_encoder`] accepts, in Hz.
const MAX_SAMPLE_RATE: u32 = 192_000;

/// Output formats of /v1/audio/speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// RIFF/WAVE, 16-bit signed PCM, mono (`audio/wav`).
    Wav,
    /// AIFF, 16-bit signed big-endian PCM, mono (`audio/aiff`).
    Aiff,
    /// Raw signed 16-bit little-endian mono samples with no header (`audio/pcm`).
    Pcm,
    /// Native FLAC, 16-bit, lossless (`audio/flac`).
    Flac,
    /// MPEG-1/2/2.5 audio layer III (`audio/mpeg`).
    Mp3,
    /// Opus in an Ogg container, RFC 7845 (`audio/opus`).
    Opus,
    /// AAC in ADTS (`audio/aac`). Recognised, but no encoder is built (see
    /// [`AudioFormat::is_supported`]).
    Aac,
}

impl AudioFormat {
    /// Every format, in the order of the enum.
    pub const ALL: [AudioFormat; 7] = [
        AudioFormat::Wav,
        AudioFormat::Aiff,
        AudioFormat::Pcm,
        AudioFormat::Flac,
        AudioFormat::Mp3,
        AudioFormat::Opus,
        AudioFormat::Aac,
    ];

    /// The name used in `response_format` (and as the file extension): `"wav"`, `"aiff"`,
    /// `"pcm"`, `"flac"`, `"mp3"`, `"opus"` or `"aac"`.
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Aiff => "aiff",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
        }
    }

    /// The `Content-Type` of a response in this format (the mapping OpenAI and the peer servers
    /// use): `audio/wav`, `audio/aiff`, `audio/pcm`, `audio/flac`, `audio/mpeg`, `audio/opus`
    /// (an Ogg Opus stream) or `audio/aac` (ADTS).
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Aiff => "audio/aiff",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Opus => "audio/opus",
            AudioFormat::Aac => "audio/aac",
        }
    }

    /// Whether [`new_encoder`] can make an encoder for this format. `false` only for
    /// [`AudioFormat::Aac`]: the only usable AAC encoder (`fdk-aac`) is non-free and takes over
    /// two minutes to build, so none is built and there is no cargo feature for it yet.
    pub fn is_supported(self) -> bool {
        !matches!(self, AudioFormat::Aac)
    }
}

impl fmt::Display for AudioFormat {
    /// Writes [`AudioFormat::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an [`AudioFormat`] from a string it does not name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audio format {0:?}: expected one of wav, aiff, pcm, flac, mp3, opus, aac")]
pub struct UnknownFormat(pub String);

impl FromStr for AudioFormat {
    type Err = UnknownFormat;

    /// Parses a format name, ignoring ASCII case. `"wave"` is accepted as
    /// [`AudioFormat::Wav`] (TTS.cpp's server accepts it); `"aac"` parses even though it is not
    /// supported, so that the caller can answer "not supported" rather than "unknown".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        if lower == "wave" {
            return Ok(AudioFormat::Wav);
        }
        AudioFormat::ALL
            .into_iter()
            .find(|format| format.name() == lower)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// One encoder per response. Samples are mono f32 at `sample_rate`, nominally in [-1, 1] (clamp; NaN -> 0).
///
/// Call [`push`](StreamEncoder::push) any number of times with any number of samples (the
/// output does not depend on how the input is split), then [`finish`](StreamEncoder::finish)
/// once. Send every returned chunk, in order, even when it is empty-handed for a while: codecs
/// with fixed frame sizes return nothing until a frame is full.
///
/// After `finish`, `push` fails with [`EncodeError::Finished`] and a second `finish` returns no
/// bytes. An encoder that failed once should be dropped; its output is incomplete.
pub trait StreamEncoder: Send {
    /// Encode more samples; returns the bytes that are ready to send now (may be empty).
    ///
    /// The first call (push or finish) also returns the header, if the format has one.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Finished`] after `finish`, [`EncodeError::Codec`] if the codec library
    /// fails.
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError>;

    /// Flush everything still buffered; after this the concatenation of all returned bytes is a complete, valid file/stream.
    ///
    /// Without any push before it, this returns a valid file with no samples.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Codec`] if the codec library fails.
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError>;
}

/// Makes the encoder for one response in `format`, for mono input at `sample_rate` Hz.
///
/// # Errors
///
/// [`EncodeError::Unsupported`] for [`AudioFormat::Aac`], [`EncodeError::SampleRate`] for a rate
/// outside 8000..=192000 Hz, [`EncodeError::Codec`] if the codec library refuses to start.
pub fn new_encoder(format: AudioFormat, sample_rate: u32) -> Result<Box<dyn StreamEncoder>, EncodeError> {
    if !format.is_supported() {
        return Err(EncodeError::Unsupported(format));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(EncodeError::SampleRate(sample_rate));
    }
    Ok(match format {
        AudioFormat::Wav => Box::new(wav::WavEncoder::new(sample_rate)),
        AudioFormat::Aiff => Box::new(aiff::AiffEncoder::new(sample_rate)),
        AudioFormat::Pcm => Box::new(pcm::PcmEncoder::new()),
        AudioFormat::Flac => Box::new(flac::FlacEncoder::new(sample_rate)?),
        AudioFormat::Mp3 => Box::new(mp3::Mp3Encoder::new(sample_rate)?),
        AudioFormat::Opus => Box::new(opus::OpusEncoder::new(sample_rate)?),
        AudioFormat::Aac => return Err(EncodeError::Unsupported(format)),
    })
}

/// Why an encoder could not be made or could not encode.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The format is recognised but no encoder for it is built (AAC).
    #[error("audio format {0} is not supported by this server")]
    Unsupported(AudioFormat),
    /// The input sample rate is outside what the encoders accept.
    #[error("sample rate {0} Hz is not supported (expected 8000 to 192000 Hz)")]
    SampleRate(u32),
    /// `push` was called after `finish`.
    #[error("the encoder was already finished")]
    Finished,
    /// The codec library reported an error (the message says which and why).
    #[error("audio codec error: {0}")]
    Codec(String),
}

/// Replaces NaN by 0 and clamps to `[-1, 1]` (infinities clamp to the nearest end).
fn sanitize(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

/// Converts one sample to 16-bit: [`sanitize`], then `round(x * 32767)`, half away from zero.
fn to_i16(x: f32) -> i16 {
    // The product lies in [-32767, 32767] after sanitize, so the cast cannot saturate.
    (sanitize(x) * 32767.0).round() as i16
}

/// Tracks the two lifecycle facts every encoder needs: has the header gone out, and has
/// `finish` been called.
#[derive(Debug, Default)]
struct Lifecycle {
    started: bool,
    finished: bool,
}

impl Lifecycle {
    /// Checks that the encoder is still open and returns whether this is the first call (the
    /// one that must write the header). Marks the encoder started.
    fn begin_push(&mut self) -> Result<bool, EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        Ok(!std::mem::replace(&mut self.started, true))
    }

    /// Like [`Lifecycle::begin_push`] for `finish`: returns `None` if the encoder was already
    /// finished (the caller returns no bytes), else whether the header is still to be written.
    /// Marks the encoder finished.
    fn begin_finish(&mut self) -> Option<bool> {
        if std::mem::replace(&mut self.finished, true) {
            return None;
        }
        Some(!std::mem::replace(&mut self.started, true))
    }
}

/// Helpers shared by the tests of every format: the test signal, chunked encoding, an
/// independent decoder (symphonia) and delay-aligned SNR.
#[cfg(test)]
pub(crate) mod testutil {
    use std::io::Cursor;

    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::{MediaSourceStream, ReadOnlySource};
    use symphonia::core::meta::MetadataOptions;

    use super::StreamEncoder;

    /// Push sizes every test runs: one sample at a time, an odd small size, a typical block,
    /// and everything in one call.
    pub(crate) const PUSH_SIZES: [usize; 4] = [1, 7, 4096, usize::MAX];

    /// About 1.5 s at `rate`: 0.6 s of 440 Hz at 0.5, 0.2 s of silence, 0.7 s of a linear
    /// chirp at 0.4 from 100 Hz to 4 kHz (or to 0.35 times the rate, below 11.4 kHz, to stay
    /// in a lossy codec's passband), plus 37 samples so that no frame size divides it.
    /// It ends at full level, so a lost tail shows.
    pub(crate) fn test_signal(rate: u32) -> Vec<f32> {
        let rate_f = f64::from(rate);
        let n = (1.5 * rate_f).round() as usize + 37;
        let (tone_end, silence_end) = ((0.6 * rate_f) as usize, (0.8 * rate_f) as usize);
        let chirp_len = (n - silence_end) as f64 / rate_f;
        (0..n)
            .map(|i| {
                let t = i as f64 / rate_f;
                let x = if i < tone_end {
                    0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                } else if i < silence_end {
                    0.0
                } else {
                    let tc = t - silence_end as f64 / rate_f;
                    let (f0, f1) = (100.0, (0.35 * rate_f).min(4000.0));
                    let phase = f0 * tc + (f1 - f0) * tc * tc / (2.0 * chirp_len);
                    0.4 * (2.0 * std::f64::consts::PI * phase).sin()
                };
                x as f32
            })
            .collect()
    }

    /// Pushes `samples` in pieces of `chunk` (at least one push, even for empty input unless
    /// `chunk` is 0, which pushes nothing), then finishes. Returns every chunk of output.
    pub(crate) fn encode_chunks(enc: &mut dyn StreamEncoder, samples: &[f32], chunk: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if chunk > 0 {
            if samples.is_empty() {
                out.push(enc.push(&[]).unwrap());
            }
            for part in samples.chunks(chunk) {
                out.push(enc.push(part).unwrap());
            }
        }
        out.push(enc.finish().unwrap());
        out
    }

    /// What an independent decoder made of a file.
    #[derive(Debug)]
    pub(crate) struct Decoded {
        /// Sample rate from the container.
        pub(crate) rate: u32,
        /// Channel count from the decoded buffers.
        pub(crate) channels: usize,
        /// The decoded samples, interleaved (mono here), as f32.
        pub(crate) samples: Vec<f32>,
    }

    /// Decodes a whole file with symphonia, reading it as a client reads an HTTP body: through
    /// an unseekable source. Panics on any error except an unexpected end of file after the last
    /// packet, which is how symphonia ends a stream whose header announced no length (the
    /// callers compare sample counts, so a truncated file still fails).
    pub(crate) fn decode_symphonia(bytes: Vec<u8>, extension: &str) -> Decoded {
        let source = ReadOnlySource::new(Cursor::new(bytes));
        let mss = MediaSourceStream::new(Box::new(source), Default::default());
        let mut hint = Hint::new();
        hint.with_extension(extension);
        let mut format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .expect("symphonia recognises the file");
        let track = format.default_track(TrackType::Audio).expect("audio track");
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .expect("audio codec parameters")
            .clone();
        let track_id = track.id;
        let mut decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .expect("symphonia can decode the codec");
        let mut samples = Vec::new();
        let mut channels = 0;
        loop {
            let packet = match format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("packet read failed: {e}"),
            };
            if packet.track_id != track_id {
                continue;
            }
            let buf = decoder.decode(&packet).expect("packet decodes");
            channels = buf.spec().channels().count();
            let start = samples.len();
            samples.resize(start + buf.samples_interleaved(), 0.0f32);
            buf.copy_to_slice_interleaved(&mut samples[start..]);
        }
        Decoded {
            rate: params.sample_rate.expect("sample rate"),
            channels,
            samples,
        }
    }

    /// `round(x * 32768)`: the 16-bit value a decoder's f32 output came from.
    pub(crate) fn f32_to_i16_exact(x: f32) -> i16 {
        (x * 32768.0).round() as i16
    }

    /// The lag (in samples, `0..=max_lag`) at which `decoded` best matches `reference`,
    /// by cross-correlation over the aperiodic middle of the test signal (end of the tone,
    /// the silence and the start of the chirp, 0.5 s to 1.0 s).
    pub(crate) fn find_delay(reference: &[f32], decoded: &[f32], rate: u32, max_lag: usize) -> usize {
        let rate = rate as usize;
        let window = &reference[rate / 2..rate];
        let mut best = (f64::MIN, 0);
        for lag in 0..=max_lag {
            let Some(seg) = decoded.get(rate / 2 + lag..rate + lag) else {
                break;
            };
            let corr: f64 = window
                .iter()
                .zip(seg)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            if corr > best.0 {
                best = (corr, lag);
            }
        }
        best.1
    }

    /// SNR in dB of `decoded` against `reference` over `range` of the reference, with `decoded`
    /// shifted by `delay`. Samples missing from `decoded` count as zeros, so a lost tail lowers
    /// the SNR.
    pub(crate) fn snr_db(
        reference: &[f32],
        decoded: &[f32],
        delay: usize,
        range: std::ops::Range<usize>,
    ) -> f64 {
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for i in range {
            let r = f64::from(reference[i]);
            let d = decoded.get(i + delay).copied().map_or(0.0, f64::from);
            signal += r * r;
            noise += (r - d) * (r - d);
        }
        10.0 * (signal / noise.max(1e-20)).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_content_types() {
        let expected = [
            ("wav", "audio/wav"),
            ("aiff", "audio/aiff"),
            ("pcm", "audio/pcm"),
            ("flac", "audio/flac"),
            ("mp3", "audio/mpeg"),
            ("opus", "audio/opus"),
            ("aac", "audio/aac"),
        ];
        for (format, (name, content_type)) in AudioFormat::ALL.into_iter().zip(expected) {
            assert_eq!(format.name(), name);
            assert_eq!(format.to_string(), name);
            assert_eq!(format.content_type(), content_type);
            assert_eq!(name.parse::<AudioFormat>(), Ok(format));
            assert_eq!(name.to_uppercase().parse::<AudioFormat>(), Ok(format));
        }
    }

    #[test]
    fn parse_aliases_and_errors() {
        assert_eq!("wave".parse::<AudioFormat>(), Ok(AudioFormat::Wav));
        assert_eq!("WAVE".parse::<AudioFormat>(), Ok(AudioFormat::Wav));
        assert_eq!("Mp3".parse::<AudioFormat>(), Ok(AudioFormat::Mp3));
        for bad in ["", "mpeg", "ogg", " wav", "wav ", "pcm16"] {
            let err = bad.parse::<AudioFormat>().unwrap_err();
            assert_eq!(err, UnknownFormat(bad.to_owned()));
            assert!(err.to_string().contains("expected one of"), "{err}");
        }
    }

    #[test]
    fn supported_formats() {
        for format in AudioFormat::ALL {
            assert_eq!(format.is_supported(), format != AudioFormat::Aac);
            let made = new_encoder(format, 24_000);
            assert_eq!(made.is_ok(), format.is_supported(), "{format}");
        }
        let err = new_encoder(AudioFormat::Aac, 24_000).err().unwrap();
        assert!(matches!(err, EncodeError::Unsupported(AudioFormat::Aac)));
        assert_eq!(
            err.to_string(),
            "audio format aac is not supported by this server"
        );
    }

    #[test]
    fn sample_rate_range() {
        for format in AudioFormat::ALL.into_iter().filter(|f| f.is_supported()) {
            for bad in [0, 7_999, 192_001, u32::MAX] {
                let err = new_encoder(format, bad).err().unwrap();
                assert!(matches!(err, EncodeError::SampleRate(r) if r == bad), "{err}");
            }
            for good in [
                8_000, 11_025, 16_000, 22_050, 24_000, 44_100, 48_000, 96_000, 192_000,
            ] {
                assert!(new_encoder(format, good).is_ok(), "{format} at {good} Hz");
            }
        }
    }

    #[test]
    fn lifecycle_for_every_format() {
        for format in AudioFormat::ALL.into_iter().filter(|f| f.is_supported()) {
            let mut enc = new_encoder(format, 24_000).unwrap();
            enc.push(&[0.1; 100]).unwrap();
            let tail = enc.finish().unwrap();
            // pcm, wav and aiff have nothing buffered; the others must flush something.
            let buffers = matches!(format, AudioFormat::Flac | AudioFormat::Mp3 | AudioFormat::Opus);
            assert_eq!(!tail.is_empty(), buffers, "{format}");
            assert!(enc.finish().unwrap().is_empty(), "{format}: second finish");
            let err = enc.push(&[0.0]).unwrap_err();
            assert!(matches!(err, EncodeError::Finished), "{format}");
        }
    }

    #[test]
    fn float_to_int16() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(-0.0), 0);
        assert_eq!(to_i16(1.0), 32767);
        assert_eq!(to_i16(-1.0), -32767);
        assert_eq!(to_i16(2.5), 32767);
        assert_eq!(to_i16(-7.0), -32767);
        assert_eq!(to_i16(f32::INFINITY), 32767);
        assert_eq!(to_i16(f32::NEG_INFINITY), -32767);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(0.5 / 32767.0), 1); // half rounds away from zero
        assert_eq!(to_i16(-0.5 / 32767.0), -1);
        assert_eq!(to_i16(0.49 / 32767.0), 0);
        assert_eq!(to_i16(1000.4 / 32767.0), 1000);
        assert_eq!(to_i16(-1000.6 / 32767.0), -1001);
    }
}
