//! `pcm`: raw signed 16-bit little-endian mono samples, no header.
//!
//! This is what OpenAI's `response_format: "pcm"` returns (at 24 kHz). The samples stay at the
//! input rate: the stream carries no rate, so the client has to know it. Every push returns two
//! bytes per sample, so the body length is always even.

use super::{to_i16, EncodeError, Lifecycle, StreamEncoder};

/// Appends `samples` as 16-bit little-endian (see [`to_i16`] for the conversion).
pub(super) fn extend_i16_le(out: &mut Vec<u8>, samples: &[f32]) {
    out.reserve(samples.len() * 2);
    for &x in samples {
        out.extend_from_slice(&to_i16(x).to_le_bytes());
    }
}

/// Appends `samples` as 16-bit big-endian (see [`to_i16`] for the conversion).
pub(super) fn extend_i16_be(out: &mut Vec<u8>, samples: &[f32]) {
    out.reserve(samples.len() * 2);
    for &x in samples {
        out.extend_from_slice(&to_i16(x).to_be_bytes());
    }
}

/// The `pcm` encoder: stateless apart from its lifecycle.
#[derive(Debug, Default)]
pub(super) struct PcmEncoder {
    lifecycle: Lifecycle,
}

impl PcmEncoder {
    /// A new encoder. The rate is not needed: nothing in the stream records it.
    pub(super) fn new() -> Self {
        Self::default()
    }
}

impl StreamEncoder for PcmEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        self.lifecycle.begin_push()?;
        let mut out = Vec::new();
        extend_i16_le(&mut out, samples);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.lifecycle.begin_finish();
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{encode_chunks, test_signal, PUSH_SIZES};
    use super::super::{new_encoder, to_i16, AudioFormat};

    /// Reads the body back by hand: there is no container to hand to a decoder.
    fn parse(bytes: &[u8]) -> Vec<i16> {
        assert_eq!(bytes.len() % 2, 0);
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn round_trip_is_exact_for_every_push_size() {
        let mut signal = test_signal(24_000);
        signal.extend([1.5, -2.0, f32::NAN, f32::INFINITY, 0.25]);
        let expected: Vec<i16> = signal.iter().map(|&x| to_i16(x)).collect();
        for chunk in PUSH_SIZES {
            let mut enc = new_encoder(AudioFormat::Pcm, 24_000).unwrap();
            let chunks = encode_chunks(enc.as_mut(), &signal, chunk);
            // Bytes come out with every push: two per sample, nothing held back.
            let pushed = chunk.min(signal.len());
            assert_eq!(chunks[0].len(), 2 * pushed);
            assert!(chunks.last().unwrap().is_empty());
            assert_eq!(parse(&chunks.concat()), expected, "push size {chunk}");
        }
    }

    #[test]
    fn empty_input_gives_empty_body() {
        for chunk in [0, 1] {
            let mut enc = new_encoder(AudioFormat::Pcm, 24_000).unwrap();
            assert!(encode_chunks(enc.as_mut(), &[], chunk).concat().is_empty());
        }
    }
}
