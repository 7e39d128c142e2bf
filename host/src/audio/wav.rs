//! `wav`: RIFF/WAVE, 16-bit signed PCM (format tag 1, not float), mono, at the input rate.
//!
//! # The streaming header
//!
//! The header goes out with the first push, before the length is known, and a streamed body
//! cannot be patched afterwards. Both sizes, the `RIFF` chunk size and the `data` chunk size,
//! are therefore written as `0xFFFFFFFF`, the "unknown length" sentinel. That is exactly what
//! ffmpeg's WAV muxer writes when it cannot seek back (`ffmpeg ... -f wav -`), and what
//! Kokoro-FastAPI streams, so readers already cope with it. Checked on a streamed file (every
//! one read every sample, bit-exact):
//!
//! * ffmpeg 5.1 (so Chromium's and mpv's demuxer): reads to end of file, from a file or a
//!   pipe; ffprobe gets the duration right from the file size;
//! * libsndfile 1.2 (Python `soundfile`): clamps the size to the file, right frame count;
//! * sox 14.4: warns "Premature EOF on .wav input file";
//! * Python's `wave`: `getnframes()` says 2147483647, but `readframes()` returns what is there,
//!   so reading until it returns `b""` works;
//! * symphonia 0.6: treats `0xFFFFFFFF` as "streaming", then ends with an unexpected-EOF error.
//!
//! The alternative, zero sizes (what a seeking writer such as `hound` leaves until it
//! finishes), is worse: sox then reads no samples and Python's `wave` refuses the file.
//! "Consistent" large sizes (RIFF = data + 36) read the same as the sentinel in those tools,
//! but ffmpeg and symphonia only special-case the exact `0xFFFFFFFF`.
//!
//! The header is written by hand (44 bytes): `hound` needs a seekable writer and writes the
//! sizes only when it finishes, so it cannot stream a header.

use super::pcm::extend_i16_le;
use super::{EncodeError, Lifecycle, StreamEncoder};

/// Length of the header: `RIFF` + `fmt ` (16-byte PCM body) + `data` chunk header.
pub(super) const HEADER_LEN: usize = 44;

/// The "size unknown" value written into both chunk sizes.
const UNKNOWN_SIZE: u32 = 0xFFFF_FFFF;

/// The canonical 44-byte header of a streamed 16-bit mono WAV at `sample_rate`.
fn header(sample_rate: u32) -> [u8; HEADER_LEN] {
    const CHANNELS: u16 = 1;
    const BITS: u16 = 16;
    const BLOCK_ALIGN: u16 = CHANNELS * BITS / 8;
    let mut h = [0u8; HEADER_LEN];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &UNKNOWN_SIZE.to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(), // fmt chunk size: plain PCMWAVEFORMAT
        &1u16.to_le_bytes(),  // WAVE_FORMAT_PCM
        &CHANNELS.to_le_bytes(),
        &sample_rate.to_le_bytes(),
        &(sample_rate * u32::from(BLOCK_ALIGN)).to_le_bytes(), // byte rate
        &BLOCK_ALIGN.to_le_bytes(),
        &BITS.to_le_bytes(),
        b"data",
        &UNKNOWN_SIZE.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        h[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    debug_assert_eq!(at, HEADER_LEN);
    h
}

/// The `wav` encoder: the header on the first call, then little-endian samples.
#[derive(Debug)]
pub(super) struct WavEncoder {
    sample_rate: u32,
    lifecycle: Lifecycle,
}

impl WavEncoder {
    /// A new encoder for mono input at `sample_rate` Hz (checked by the caller).
    pub(super) fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            lifecycle: Lifecycle::default(),
        }
    }
}

impl StreamEncoder for WavEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        if self.lifecycle.begin_push()? {
            out.extend_from_slice(&header(self.sample_rate));
        }
        extend_i16_le(&mut out, samples);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        Ok(match self.lifecycle.begin_finish() {
            Some(true) => header(self.sample_rate).to_vec(),
            Some(false) | None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{
        decode_symphonia, encode_chunks, f32_to_i16_exact, test_signal, PUSH_SIZES,
    };
    use super::super::{new_encoder, to_i16, AudioFormat};
    use super::*;

    #[test]
    fn header_layout() {
        let h = header(24_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(&h[4..8], &[0xFF; 4]);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([h[16], h[17], h[18], h[19]]), 16);
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), 1); // PCM, not float
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 1); // mono
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 24_000);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 48_000);
        assert_eq!(u16::from_le_bytes([h[32], h[33]]), 2);
        assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(&h[40..44], &[0xFF; 4]);
    }

    #[test]
    fn round_trip_is_exact_for_every_push_size_and_rate() {
        for rate in [8_000, 22_050, 24_000, 44_100, 192_000] {
            let mut signal = test_signal(rate);
            signal.extend([1.5, -2.0, f32::NAN, 0.25]);
            let expected: Vec<i16> = signal.iter().map(|&x| to_i16(x)).collect();
            let mut reference = None;
            for chunk in PUSH_SIZES {
                let mut enc = new_encoder(AudioFormat::Wav, rate).unwrap();
                let chunks = encode_chunks(enc.as_mut(), &signal, chunk);
                // The header goes out with the first push, together with its samples.
                assert_eq!(chunks[0].len(), HEADER_LEN + 2 * chunk.min(signal.len()));
                let bytes = chunks.concat();
                assert_eq!(bytes.len(), HEADER_LEN + 2 * signal.len());
                // Splitting the input differently never changes the bytes.
                assert_eq!(reference.get_or_insert_with(|| bytes.clone()), &bytes);
                let decoded = decode_symphonia(bytes, "wav");
                assert_eq!((decoded.rate, decoded.channels), (rate, 1));
                let got: Vec<i16> = decoded.samples.iter().map(|&x| f32_to_i16_exact(x)).collect();
                assert_eq!(got.len(), expected.len(), "rate {rate}, push size {chunk}");
                assert!(got == expected, "rate {rate}, push size {chunk}: samples differ");
            }
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_file() {
        for chunk in [0, 1] {
            let mut enc = new_encoder(AudioFormat::Wav, 24_000).unwrap();
            let bytes = encode_chunks(enc.as_mut(), &[], chunk).concat();
            assert_eq!(bytes, header(24_000));
            let decoded = decode_symphonia(bytes, "wav");
            assert!(decoded.samples.is_empty());
        }
    }
}
