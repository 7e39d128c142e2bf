//! `flac`: native FLAC, mono, 16-bit, lossless, encoded with `flacenc` one block at a time.
//!
//! # How it streams
//!
//! `flacenc`'s main entry point, `encode_with_fixed_block_size`, wants the whole signal up
//! front and builds a `Stream` in memory. It also exports the per-frame encoder it uses
//! internally, `encode_fixed_size_frame`, and that is what this module drives: samples are
//! buffered until a block of [`BLOCK_SIZE`] is full, the block is encoded and its bytes are
//! returned at once. `finish` encodes the remaining samples as one shorter last block (FLAC
//! allows the last block to be shorter than the others).
//!
//! The stream starts with `fLaC` and a `STREAMINFO` block (the only metadata block) that is
//! written by hand, for two reasons: the fields a streamed file cannot know yet must be
//! written as "unknown" (total samples 0, MD5 all zero, minimum and maximum frame size 0, all
//! of which the format defines as "unknown"), and `flacenc`'s `StreamInfo` refuses rates above
//! 96 kHz although FLAC itself stores up to 1048575 Hz. For the same reason every frame header
//! is rebuilt with the real rate (`FrameHeader::new`), while the subframes come from
//! `flacenc` unchanged. Frames are numbered (fixed block size), so a decoder can start at
//! any frame. The `STREAMINFO` fields are the ones the reference `flac` 1.4 tool writes when
//! it encodes to a pipe, and a test checks the bytes against `flacenc`'s own writer.
//!
//! Known reader limitation: libsndfile 1.2 (Python `soundfile`) cannot read a FLAC stream of
//! unknown length (its seek fails), ours or one `flac` wrote to a pipe; ffmpeg, sox, `flac -d`
//! and symphonia read it.
//!
//! Block size 4096 is libFLAC's default and within the FLAC subset for every rate up to
//! 192 kHz. A block leaves as soon as it is full (171 ms at 24 kHz).

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, ChannelAssignment, Frame, FrameHeader, FrameOffset, StreamInfo};
use flacenc::error::{Verified, Verify};
use flacenc::source::{Fill, FrameBuf};

use super::{to_i16, EncodeError, Lifecycle, StreamEncoder};

/// Samples per FLAC block (all but the last block of a stream have exactly this size).
pub(super) const BLOCK_SIZE: usize = 4096;

/// Bits per sample of the output.
const BITS_PER_SAMPLE: usize = 16;

/// Length of `fLaC` plus the `STREAMINFO` block with its 4-byte block header.
pub(super) const HEADER_LEN: usize = 4 + 4 + 34;

/// Highest rate `flacenc::component::StreamInfo` accepts. The `StreamInfo` handed to the frame
/// encoder only supplies the channel count and sample size (the rate in every frame header is
/// written by this module), so its rate is clamped to this value.
const FLACENC_MAX_RATE: u32 = 96_000;

/// `fLaC` and a `STREAMINFO` block (marked as the last metadata block) for a mono 16-bit
/// stream of unknown length at `sample_rate` (RFC 9639, section 8.2).
fn header(sample_rate: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(b"fLaC");
    // Metadata block header: last-block flag, type 0 (STREAMINFO), length 34.
    h[4] = 0x80;
    h[5..8].copy_from_slice(&34u32.to_be_bytes()[1..]);
    let block = (BLOCK_SIZE as u16).to_be_bytes();
    h[8..10].copy_from_slice(&block); // minimum block size
    h[10..12].copy_from_slice(&block); // maximum block size

    // h[12..18]: minimum and maximum frame size, 24 bits each: 0 = unknown.
    // Then 20 bits sample rate, 3 bits channels - 1, 5 bits bits-per-sample - 1 and
    // 36 bits total samples (0 = unknown), packed big-endian into 64 bits.
    let channels_minus_one = 0u64;
    let packed =
        (u64::from(sample_rate) << 44) | (channels_minus_one << 41) | (((BITS_PER_SAMPLE - 1) as u64) << 36);
    h[18..26].copy_from_slice(&packed.to_be_bytes());
    // h[26..42]: MD5 of the decoded samples, all zero = not computed.
    h
}

/// The `flac` encoder: buffers up to one block, emits each block as soon as it is full.
pub(super) struct FlacEncoder {
    sample_rate: u32,
    config: Verified<flacenc::config::Encoder>,
    /// Tells `encode_fixed_size_frame` the channel count and sample size; its rate is clamped
    /// to [`FLACENC_MAX_RATE`] and never written out (see the module docs).
    frame_info: StreamInfo,
    framebuf: FrameBuf,
    /// Samples of the block being filled, already converted to 16-bit.
    pending: Vec<i32>,
    /// Number of the next frame (frames are numbered from 0).
    frame_number: u32,
    lifecycle: Lifecycle,
}

impl std::fmt::Debug for FlacEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlacEncoder")
            .field("sample_rate", &self.sample_rate)
            .field("pending", &self.pending.len())
            .field("frame_number", &self.frame_number)
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

/// Turns a `flacenc` error (any `Display`) into [`EncodeError::Codec`].
fn codec_error(context: &str, err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Codec(format!("flac: {context}: {err}"))
}

impl FlacEncoder {
    /// A new encoder for mono input at `sample_rate` Hz (checked by the caller).
    pub(super) fn new(sample_rate: u32) -> Result<Self, EncodeError> {
        let mut config = flacenc::config::Encoder::default();
        config.block_size = BLOCK_SIZE;
        let config = config
            .into_verified()
            .map_err(|(_, e)| codec_error("configuration", e))?;
        let frame_info = StreamInfo::new(sample_rate.min(FLACENC_MAX_RATE) as usize, 1, BITS_PER_SAMPLE)
            .map_err(|e| codec_error("stream info", e))?;
        let framebuf = FrameBuf::with_size(1, BLOCK_SIZE).map_err(|e| codec_error("frame buffer", e))?;
        Ok(Self {
            sample_rate,
            config,
            frame_info,
            framebuf,
            pending: Vec::with_capacity(BLOCK_SIZE),
            frame_number: 0,
            lifecycle: Lifecycle::default(),
        })
    }

    /// Encodes `pending` (1..=BLOCK_SIZE samples) as the next frame and appends its bytes.
    fn encode_block(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let len = self.pending.len();
        self.framebuf
            .fill_interleaved(&self.pending)
            .map_err(|e| codec_error("filling a block", e))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            self.frame_number as usize,
            &self.frame_info,
        )
        .map_err(|e| codec_error("encoding a block", e))?;
        // Rebuild the header with the real sample rate (see the module docs).
        let (_, subframes) = frame.into_parts();
        let header = FrameHeader::new(
            len,
            ChannelAssignment::Independent(1),
            BITS_PER_SAMPLE,
            self.sample_rate as usize,
            FrameOffset::Frame(self.frame_number),
        )
        .map_err(|e| codec_error("frame header", e))?;
        let frame =
            Frame::new(header, subframes.into_iter()).map_err(|e| codec_error("assembling a frame", e))?;
        let mut sink = ByteSink::with_capacity(frame.count_bits());
        frame
            .write(&mut sink)
            .map_err(|e| codec_error("writing a frame", e))?;
        out.extend_from_slice(sink.as_slice());
        self.pending.clear();
        self.frame_number += 1;
        Ok(())
    }
}

impl StreamEncoder for FlacEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        if self.lifecycle.begin_push()? {
            out.extend_from_slice(&header(self.sample_rate));
        }
        let mut rest = samples;
        while !rest.is_empty() {
            let take = rest.len().min(BLOCK_SIZE - self.pending.len());
            let (now, later) = rest.split_at(take);
            self.pending.extend(now.iter().map(|&x| i32::from(to_i16(x))));
            rest = later;
            if self.pending.len() == BLOCK_SIZE {
                self.encode_block(&mut out)?;
            }
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match self.lifecycle.begin_finish() {
            None => return Ok(out),
            Some(true) => out.extend_from_slice(&header(self.sample_rate)),
            Some(false) => {}
        }
        if !self.pending.is_empty() {
            self.encode_block(&mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{
        decode_symphonia, encode_chunks, f32_to_i16_exact, test_signal, PUSH_SIZES,
    };
    use super::super::{new_encoder, to_i16, AudioFormat};
    use super::*;

    fn encode(samples: &[f32], rate: u32, chunk: usize) -> Vec<Vec<u8>> {
        let mut enc = new_encoder(AudioFormat::Flac, rate).unwrap();
        encode_chunks(enc.as_mut(), samples, chunk)
    }

    fn assert_lossless(bytes: Vec<u8>, signal: &[f32], rate: u32, what: &str) {
        let decoded = decode_symphonia(bytes, "flac");
        assert_eq!((decoded.rate, decoded.channels), (rate, 1), "{what}");
        let got: Vec<i16> = decoded.samples.iter().map(|&x| f32_to_i16_exact(x)).collect();
        let expected: Vec<i16> = signal.iter().map(|&x| to_i16(x)).collect();
        assert_eq!(got.len(), expected.len(), "{what}: length");
        assert!(got == expected, "{what}: samples differ");
    }

    #[test]
    fn streaminfo_matches_flacenc() {
        // For rates flacenc accepts, the hand-written header must equal what flacenc itself
        // writes for a stream with the same "unknown" fields.
        for rate in [8_000, 24_000, 44_100, 96_000] {
            let mut info = StreamInfo::new(rate, 1, 16).unwrap();
            info.set_block_sizes(BLOCK_SIZE, BLOCK_SIZE).unwrap();
            info.set_frame_sizes(0, 0).unwrap();
            let stream = flacenc::component::Stream::with_stream_info(info);
            let mut sink = ByteSink::new();
            stream.write(&mut sink).unwrap();
            assert_eq!(sink.as_slice(), &header(rate as u32)[..], "rate {rate}");
        }
    }

    #[test]
    fn round_trip_is_exact_for_every_push_size_and_rate() {
        for rate in [8_000, 22_050, 24_000, 44_100, 192_000] {
            let mut signal = test_signal(rate);
            signal.extend([1.5, -2.0, f32::NAN, 0.25]);
            let mut reference = None;
            for chunk in PUSH_SIZES {
                let chunks = encode(&signal, rate, chunk);
                // STREAMINFO goes out with the first push; a block as soon as it is full.
                let first = &chunks[0];
                assert!(first.starts_with(b"fLaC"));
                assert_eq!(first.len() == HEADER_LEN, chunk < BLOCK_SIZE, "push {chunk}");
                if chunk < BLOCK_SIZE {
                    let first_frame = chunks.iter().position(|c| !c.is_empty() && c[0] == 0xFF);
                    assert_eq!(first_frame, Some(BLOCK_SIZE.div_ceil(chunk) - 1), "push {chunk}");
                }
                let bytes = chunks.concat();
                assert_eq!(reference.get_or_insert_with(|| bytes.clone()), &bytes);
                assert_lossless(bytes, &signal, rate, &format!("{rate} Hz, push {chunk}"));
            }
        }
    }

    #[test]
    fn odd_lengths_around_the_block_size() {
        let long = test_signal(24_000);
        for len in [
            1,
            2,
            31,
            32,
            33,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 5,
        ] {
            let signal = &long[long.len() - len..];
            let bytes = encode(signal, 24_000, 1000).concat();
            assert_lossless(bytes, signal, 24_000, &format!("length {len}"));
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_file() {
        // A FLAC file may hold no frames at all (libFLAC writes the same for empty input, and
        // `flac -t` accepts it). symphonia cannot open such a file (its reader looks for a
        // first frame), so check the bytes: exactly the STREAMINFO header.
        for chunk in [0, 1] {
            let bytes = encode(&[], 24_000, chunk).concat();
            assert_eq!(bytes, header(24_000));
        }
        let h = header(24_000);
        assert_eq!(&h[..5], b"fLaC\x80"); // last (and only) metadata block, STREAMINFO
        assert_eq!(&h[5..8], &[0, 0, 34]);
        let packed = u64::from_be_bytes([h[18], h[19], h[20], h[21], h[22], h[23], h[24], h[25]]);
        assert_eq!(packed >> 44, 24_000); // sample rate
        assert_eq!((packed >> 41) & 7, 0); // one channel
        assert_eq!((packed >> 36) & 31, 15); // 16 bits
        assert_eq!(packed & ((1 << 36) - 1), 0); // total samples unknown
        assert_eq!(&h[12..18], &[0; 6]); // frame sizes unknown
        assert_eq!(&h[26..], &[0; 16]); // no MD5
    }

    #[test]
    fn silence_and_full_scale_compress_and_round_trip() {
        let mut signal = vec![0.0f32; 10_000];
        signal.extend(std::iter::repeat_n(1.0, 5_000));
        signal.extend(std::iter::repeat_n(-1.0, 5_000));
        let bytes = encode(&signal, 24_000, 4096).concat();
        assert!(bytes.len() < 4_000, "should compress well: {} bytes", bytes.len());
        assert_lossless(bytes, &signal, 24_000, "constant blocks");
    }
}
