//! `aiff`: FORM/AIFF with a `COMM` chunk (mono, 16-bit, 80-bit extended sample rate) and an
//! `SSND` chunk (offset 0, block size 0) of big-endian samples, at the input rate.
//!
//! # The streaming header
//!
//! AIFF has three length fields that are unknown when the header goes out: the `FORM` chunk
//! size, `numSampleFrames` in `COMM` and the `SSND` chunk size. Unlike WAV there is no
//! recognised sentinel, and IFF chunk sizes are *signed* 32-bit, so `0xFFFFFFFF` reads as -1.
//! The header therefore describes the largest file the sizes can express, consistently:
//! [`MAX_FRAMES`] frames, `SSND` size `8 + 2 * MAX_FRAMES`, `FORM` size `46 + 2 * MAX_FRAMES`
//! (`0x7FFFFFFE`, the largest even positive value). The body simply ends early. Checked on a
//! streamed file (every one read every sample, bit-exact):
//!
//! * ffmpeg 5.1: reads to end of file, from a file or a pipe (ffprobe reports the header's
//!   12.4 hours as the duration);
//! * libsndfile 1.2 (Python `soundfile`): clamps to the file, right frame count;
//! * sox 14.4: reads every sample without a warning;
//! * Python's `aifc`: `getnframes()` is the header's count; `readframes()` returns what is
//!   there;
//! * symphonia 0.6: reads to the end from an unseekable source (an HTTP body). Given a
//!   seekable file it first tries to skip over `SSND` to look for later chunks and fails with
//!   an unexpected EOF, as it does for any truncated AIFF.
//!
//! `0xFFFFFFFF` in all three fields, and zeros in all three, were rejected by ffmpeg ("invalid
//! data") and zeros also by Python's `aifc`, so neither is used.
//!
//! The header is written by hand (54 bytes): the `aifc` crate writes AIFF but needs a seekable
//! writer to fix the sizes up at the end, so it cannot stream.

use super::pcm::extend_i16_be;
use super::{EncodeError, Lifecycle, StreamEncoder};

/// Length of the header: `FORM` + `AIFF`, the 18-byte `COMM` chunk, the `SSND` chunk header.
pub(super) const HEADER_LEN: usize = 54;

/// The frame count the streaming header announces: the largest for which the `FORM` size,
/// `46 + 2 * MAX_FRAMES`, stays a positive signed 32-bit value (about 12 h at 24 kHz).
pub(super) const MAX_FRAMES: u32 = (0x7FFF_FFFE - 46) / 2;

/// `rate` as the 80-bit IEEE 754 extended-precision number AIFF uses (sign and 15-bit exponent
/// with bias 16383, then a 64-bit mantissa with an explicit integer bit). Exact for every `u32`.
fn extended_rate(rate: u32) -> [u8; 10] {
    let mut out = [0u8; 10];
    if rate == 0 {
        return out;
    }
    let exponent = 31 - rate.leading_zeros(); // index of the top bit, 0..=31
    let biased = 16_383 + exponent as u16;
    let mantissa = u64::from(rate) << (63 - exponent);
    out[..2].copy_from_slice(&biased.to_be_bytes());
    out[2..].copy_from_slice(&mantissa.to_be_bytes());
    out
}

/// The 54-byte header of a streamed 16-bit mono AIFF at `sample_rate`.
fn header(sample_rate: u32) -> [u8; HEADER_LEN] {
    let data_len = 2 * MAX_FRAMES;
    let mut h = [0u8; HEADER_LEN];
    let fields: [&[u8]; 13] = [
        b"FORM",
        &(46 + data_len).to_be_bytes(), // "AIFF" + COMM (8 + 18) + SSND (8 + 8 + data)
        b"AIFF",
        b"COMM",
        &18u32.to_be_bytes(),
        &1u16.to_be_bytes(), // channels
        &MAX_FRAMES.to_be_bytes(),
        &16u16.to_be_bytes(), // bits per sample
        &extended_rate(sample_rate),
        b"SSND",
        &(8 + data_len).to_be_bytes(),
        &0u32.to_be_bytes(), // offset
        &0u32.to_be_bytes(), // block size
    ];
    let mut at = 0;
    for field in fields {
        h[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    debug_assert_eq!(at, HEADER_LEN);
    h
}

/// The `aiff` encoder: the header on the first call, then big-endian samples.
#[derive(Debug)]
pub(super) struct AiffEncoder {
    sample_rate: u32,
    lifecycle: Lifecycle,
}

impl AiffEncoder {
    /// A new encoder for mono input at `sample_rate` Hz (checked by the caller).
    pub(super) fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            lifecycle: Lifecycle::default(),
        }
    }
}

impl StreamEncoder for AiffEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        if self.lifecycle.begin_push()? {
            out.extend_from_slice(&header(self.sample_rate));
        }
        extend_i16_be(&mut out, samples);
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
    fn extended_rates() {
        // 24000 = 0x5DC0 = 1.0111011100000b * 2^14 -> exponent 16383 + 14 = 0x400D.
        assert_eq!(extended_rate(24_000), [0x40, 0x0D, 0xBB, 0x80, 0, 0, 0, 0, 0, 0]);
        // 44100 is the classic example from the AIFF spec: 400E AC44 0000 0000 0000.
        assert_eq!(extended_rate(44_100), [0x40, 0x0E, 0xAC, 0x44, 0, 0, 0, 0, 0, 0]);
        assert_eq!(extended_rate(1), [0x3F, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        // Decode back for a spread of rates.
        for rate in [8_000u32, 11_025, 22_050, 48_000, 96_000, 192_000, u32::MAX] {
            let e = extended_rate(rate);
            let exponent = i32::from(u16::from_be_bytes([e[0], e[1]])) - 16_383;
            let mantissa = u64::from_be_bytes([e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9]]);
            assert_eq!(mantissa >> (63 - exponent), u64::from(rate));
        }
    }

    #[test]
    fn header_layout() {
        let h = header(24_000);
        assert_eq!(&h[0..4], b"FORM");
        let form = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        assert_eq!(form, 0x7FFF_FFFE);
        assert_eq!(&h[8..16], b"AIFFCOMM");
        assert_eq!(u32::from_be_bytes([h[16], h[17], h[18], h[19]]), 18);
        assert_eq!(u16::from_be_bytes([h[20], h[21]]), 1);
        let frames = u32::from_be_bytes([h[22], h[23], h[24], h[25]]);
        assert_eq!(frames, MAX_FRAMES);
        assert_eq!(u16::from_be_bytes([h[26], h[27]]), 16);
        assert_eq!(&h[28..38], &extended_rate(24_000));
        assert_eq!(&h[38..42], b"SSND");
        let ssnd = u32::from_be_bytes([h[42], h[43], h[44], h[45]]);
        assert_eq!(ssnd, 8 + 2 * frames);
        // The sizes describe one consistent file of MAX_FRAMES frames.
        assert_eq!(form as usize, HEADER_LEN - 8 + 2 * frames as usize);
        assert_eq!(&h[46..54], &[0; 8]);
    }

    #[test]
    fn round_trip_is_exact_for_every_push_size_and_rate() {
        for rate in [8_000, 22_050, 24_000, 44_100, 192_000] {
            let mut signal = test_signal(rate);
            signal.extend([1.5, -2.0, f32::NAN, 0.25]);
            let expected: Vec<i16> = signal.iter().map(|&x| to_i16(x)).collect();
            let mut reference = None;
            for chunk in PUSH_SIZES {
                let mut enc = new_encoder(AudioFormat::Aiff, rate).unwrap();
                let chunks = encode_chunks(enc.as_mut(), &signal, chunk);
                assert_eq!(chunks[0].len(), HEADER_LEN + 2 * chunk.min(signal.len()));
                let bytes = chunks.concat();
                assert_eq!(bytes.len(), HEADER_LEN + 2 * signal.len());
                assert_eq!(reference.get_or_insert_with(|| bytes.clone()), &bytes);
                let decoded = decode_symphonia(bytes, "aiff");
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
            let mut enc = new_encoder(AudioFormat::Aiff, 24_000).unwrap();
            let bytes = encode_chunks(enc.as_mut(), &[], chunk).concat();
            assert_eq!(bytes, header(24_000));
            let decoded = decode_symphonia(bytes, "aiff");
            assert!(decoded.samples.is_empty());
        }
    }
}
