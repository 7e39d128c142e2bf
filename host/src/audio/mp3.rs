//! `mp3`: MPEG audio layer III, mono, constant bit rate, encoded with LAME 3.100 through
//! `mp3lame-encoder` (LGPL; `mp3lame-sys` builds the bundled LAME sources with autotools and
//! links them statically).
//!
//! An MP3 stream is a plain sequence of self-contained frames, so there is no header: LAME
//! returns whole frames as soon as it has them (the first bytes come after 800 input samples at
//! 24 kHz: one frame plus its lookahead), and `finish` flushes the rest with
//! `lame_encode_flush`, which pads the last frame with silence so that every input sample is in
//! the output.
//!
//! * No Xing/LAME info tag. LAME would reserve an empty first frame for it and fill it in by
//!   seeking back at the end, which a stream cannot do. Without the tag, players cannot trim
//!   the encoder delay or the padding: decoded audio starts 1105 samples late (LAME's 576 plus
//!   the decoder's 529, at the output rate) and ends with up to two frames of extra silence.
//!   Inaudible for speech, and what every streamed MP3 does.
//! * Level: at these bit rates LAME scales its input by 0.95 (-0.45 dB) on purpose, to avoid
//!   clipping (the `scale` column of its presets; ffmpeg's libmp3lame output shows the same).
//! * Rates: MP3 has nine (MPEG-1: 32000, 44100, 48000; MPEG-2: 16000, 22050, 24000;
//!   MPEG-2.5: 8000, 11025, 12000). Input at one of these is encoded at that rate; any other
//!   rate is resampled by LAME's own resampler to the lowest MP3 rate above it, or to 48000 Hz
//!   above 48 kHz ([`output_rate`]).
//! * Bit rate: 32 kb/s for MPEG-2.5 rates, 64 kb/s for MPEG-2 rates (the 24 kHz case) and
//!   96 kb/s for MPEG-1 rates ([`bitrate`]); LAME quality 5, its default.
//! * Input: the clamped floats go to `lame_encode_buffer_ieee_float`, without a detour
//!   through 16-bit.

use mp3lame_encoder::{
    max_required_buffer_size, Bitrate, Builder, Encoder, FlushGap, Mode, MonoPcm, Quality,
};

use super::{sanitize, EncodeError, Lifecycle, StreamEncoder};

/// The sample rates MP3 (MPEG-1, 2 and 2.5 layer III) can store, ascending.
const MP3_RATES: [u32; 9] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// Input samples handed to LAME per call, which bounds the output buffer.
const CALL_SAMPLES: usize = 1 << 14;

/// The rate the MP3 stream is encoded at for input at `input_rate`: the input rate if MP3 can
/// store it, else the lowest MP3 rate above it, else 48000.
pub(super) fn output_rate(input_rate: u32) -> u32 {
    MP3_RATES.into_iter().find(|&r| r >= input_rate).unwrap_or(48_000)
}

/// The constant bit rate used at an output rate (see the module docs).
fn bitrate(output_rate: u32) -> Bitrate {
    match output_rate {
        0..=12_000 => Bitrate::Kbps32,
        12_001..=24_000 => Bitrate::Kbps64,
        _ => Bitrate::Kbps96,
    }
}

/// Turns a LAME error into [`EncodeError::Codec`].
fn codec_error(context: &str, err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Codec(format!("mp3 (LAME): {context}: {err}"))
}

/// The `mp3` encoder.
pub(super) struct Mp3Encoder {
    lame: Encoder,
    /// Scratch for the clamped input of one LAME call.
    input: Vec<f32>,
    lifecycle: Lifecycle,
}

impl std::fmt::Debug for Mp3Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Encoder")
            .field("input_rate", &self.lame.sample_rate())
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

impl Mp3Encoder {
    /// A new encoder for mono input at `sample_rate` Hz (checked by the caller).
    pub(super) fn new(sample_rate: u32) -> Result<Self, EncodeError> {
        let out_rate = output_rate(sample_rate);
        let mut builder =
            Builder::new().ok_or_else(|| EncodeError::Codec("mp3 (LAME): out of memory".into()))?;
        builder
            .set_num_channels(1)
            .map_err(|e| codec_error("channels", e))?;
        builder
            .set_sample_rate(sample_rate)
            .map_err(|e| codec_error("input sample rate", e))?;
        builder
            .set_output_sample_rate(std::num::NonZeroU32::new(out_rate))
            .map_err(|e| codec_error("output sample rate", e))?;
        builder
            .set_brate(bitrate(out_rate))
            .map_err(|e| codec_error("bit rate", e))?;
        builder.set_mode(Mode::Mono).map_err(|e| codec_error("mode", e))?;
        builder
            .set_quality(Quality::Good)
            .map_err(|e| codec_error("quality", e))?;
        builder
            .set_to_write_vbr_tag(false)
            .map_err(|e| codec_error("info tag", e))?;
        let lame = builder.build().map_err(|e| codec_error("initialisation", e))?;
        Ok(Self {
            lame,
            input: Vec::new(),
            lifecycle: Lifecycle::default(),
        })
    }
}

impl StreamEncoder for Mp3Encoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        self.lifecycle.begin_push()?;
        let mut out = Vec::new();
        for part in samples.chunks(CALL_SAMPLES) {
            self.input.clear();
            self.input.extend(part.iter().map(|&x| sanitize(x)));
            out.reserve(max_required_buffer_size(part.len()));
            self.lame
                .encode_to_vec(MonoPcm(self.input.as_slice()), &mut out)
                .map_err(|e| codec_error("encoding", e))?;
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        if self.lifecycle.begin_finish().is_none() {
            return Ok(Vec::new());
        }
        // The crate documents 7200 bytes as enough for the final flush.
        let mut out: Vec<u8> = Vec::with_capacity(max_required_buffer_size(0));
        self.lame
            .flush_to_vec::<FlushGap>(&mut out)
            .map_err(|e| codec_error("flushing", e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{
        decode_symphonia, encode_chunks, find_delay, snr_db, test_signal, PUSH_SIZES,
    };
    use super::super::{new_encoder, AudioFormat};
    use super::*;

    /// Minimum SNR over the whole signal after aligning for the codec delay.
    const MIN_SNR_DB: f64 = 15.0;

    #[test]
    fn output_rates() {
        for rate in MP3_RATES {
            assert_eq!(output_rate(rate), rate);
        }
        assert_eq!(output_rate(8_001), 11_025);
        assert_eq!(output_rate(22_001), 22_050);
        assert_eq!(output_rate(30_000), 32_000);
        assert_eq!(output_rate(48_001), 48_000);
        assert_eq!(output_rate(96_000), 48_000);
        assert_eq!(output_rate(192_000), 48_000);
    }

    /// The least-squares gain from `reference` to `decoded` (shifted by `delay`).
    fn fitted_gain(reference: &[f32], decoded: &[f32], delay: usize) -> f64 {
        let (mut rd, mut rr) = (0.0f64, 0.0f64);
        for (r, d) in reference.iter().zip(&decoded[delay..]) {
            rd += f64::from(*r) * f64::from(*d);
            rr += f64::from(*r) * f64::from(*r);
        }
        rd / rr
    }

    /// Encodes the test signal at an MP3 rate in pieces of `chunk`, decodes it with symphonia
    /// and checks rate, delay, length, SNR and the tail. Returns (bytes, delay, SNR, tail SNR).
    fn check(rate: u32, chunk: usize) -> (Vec<u8>, usize, f64, f64) {
        assert_eq!(output_rate(rate), rate, "compares at the input rate");
        let signal = test_signal(rate);
        let mut enc = new_encoder(AudioFormat::Mp3, rate).unwrap();
        let chunks = encode_chunks(enc.as_mut(), &signal, chunk);
        assert!(!chunks.last().unwrap().is_empty(), "finish flushes frames");
        if chunk == 1 {
            let first = chunks.iter().position(|c| !c.is_empty()).unwrap();
            eprintln!("mp3 {rate} Hz: first bytes after {} samples", first + 1);
            assert!(first < 2 * 1152 + 1105, "first bytes after {first} samples");
        }
        let bytes = chunks.concat();
        let decoded = decode_symphonia(bytes.clone(), "mp3");
        assert_eq!((decoded.rate, decoded.channels), (rate, 1));
        let frame = if rate >= 32_000 { 1152 } else { 576 };
        let delay = find_delay(&signal, &decoded.samples, rate, 4 * frame);
        // LAME's delay (576) plus the decoder's (529); nothing trims it without an info tag.
        assert_eq!(delay, 1105, "{rate} Hz");
        // Same duration within a frame, and the whole input is there after the delay.
        let (len, needed) = (decoded.samples.len(), signal.len() + delay);
        assert!(len >= needed, "lost tail: {len} < {needed}");
        assert!(len < needed + 2 * frame, "too long: {len}");
        let snr = snr_db(&signal, &decoded.samples, delay, 0..signal.len());
        let last_100_ms = signal.len() - rate as usize / 10..signal.len();
        let tail = snr_db(&signal, &decoded.samples, delay, last_100_ms);
        assert!(snr >= MIN_SNR_DB, "{rate} Hz, push {chunk}: SNR {snr:.1} dB");
        assert!(tail >= MIN_SNR_DB, "{rate} Hz, push {chunk}: tail {tail:.1} dB");
        // LAME scales its input by 0.95 at these bit rates, on purpose (the "scale" column of
        // its ABR/CBR presets, against clipping), which alone caps the plain SNR at 26 dB.
        // Undoing that gain shows the actual coding error.
        let gain = fitted_gain(&signal, &decoded.samples, delay);
        assert!((0.945..0.955).contains(&gain), "gain {gain}");
        let unscaled: Vec<f32> = decoded
            .samples
            .iter()
            .map(|&x| (f64::from(x) / gain) as f32)
            .collect();
        let fitted = snr_db(&signal, &unscaled, delay, 0..signal.len());
        eprintln!("mp3 {rate} Hz, push {chunk}: gain {gain:.4}, SNR without it {fitted:.1} dB");
        assert!(fitted >= 30.0, "{rate} Hz: SNR after the gain {fitted:.1} dB");
        (bytes, delay, snr, tail)
    }

    #[test]
    fn round_trip_every_push_size() {
        let mut reference = None;
        for chunk in PUSH_SIZES {
            let (bytes, delay, snr, tail) = check(24_000, chunk);
            eprintln!("mp3 24000 Hz push {chunk}: delay {delay}, SNR {snr:.1} dB, tail {tail:.1} dB");
            // LAME's output does not depend on how the input was split.
            assert_eq!(reference.get_or_insert_with(|| bytes.clone()), &bytes);
        }
    }

    #[test]
    fn round_trip_mp3_rates() {
        for rate in [8_000, 16_000, 22_050, 44_100, 48_000] {
            let (_, delay, snr, tail) = check(rate, 4096);
            eprintln!("mp3 {rate} Hz: delay {delay}, SNR {snr:.1} dB, tail {tail:.1} dB");
        }
    }

    #[test]
    fn other_rates_are_resampled() {
        for (rate, out_rate) in [
            (8_001, 11_025),
            (22_001, 22_050),
            (30_000, 32_000),
            (96_000, 48_000),
            (192_000, 48_000),
        ] {
            let signal = test_signal(rate);
            let mut enc = new_encoder(AudioFormat::Mp3, rate).unwrap();
            let bytes = encode_chunks(enc.as_mut(), &signal, 4096).concat();
            let decoded = decode_symphonia(bytes, "mp3");
            assert_eq!(decoded.rate, out_rate);
            // Duration is kept: input seconds plus at most the delay and two frames.
            let seconds = decoded.samples.len() as f64 / f64::from(out_rate);
            let input_seconds = signal.len() as f64 / f64::from(rate);
            assert!(seconds >= input_seconds + 0.02, "{rate}: {seconds} s");
            assert!(seconds <= input_seconds + 0.15, "{rate}: {seconds} s");
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_stream() {
        for chunk in [0, 1] {
            let mut enc = new_encoder(AudioFormat::Mp3, 24_000).unwrap();
            let bytes = encode_chunks(enc.as_mut(), &[], chunk).concat();
            eprintln!("mp3 empty: {} bytes", bytes.len());
            if !bytes.is_empty() {
                let decoded = decode_symphonia(bytes, "mp3");
                assert!(decoded.samples.len() <= 2 * 1152);
            }
        }
    }
}
