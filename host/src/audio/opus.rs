//! `opus`: Ogg Opus (RFC 7845), mono, 20 ms packets, encoded with `opus-rs` (a pure-Rust port
//! of libopus 1.6) and muxed with the `ogg` crate.
//!
//! # Stream layout
//!
//! * Page 0 (beginning of stream): `OpusHead`, 1 channel, the pre-skip, the input rate (only
//!   informational: Opus always decodes at 48 kHz or a rate the player picks).
//! * Page 1: `OpusTags` with the vendor string and no comments.
//! * Audio pages: one 20 ms packet per frame. Every push that completed at least one packet
//!   ends a page, so the audio leaves at once (a page also ends after [`PAGE_PACKETS`]
//!   packets). Pushing tiny pieces therefore costs one page header (27 bytes and up) per push;
//!   push what the backend produced.
//! * Each page's granule position is the 48 kHz sample count at the end of its last packet,
//!   counted from the start of the stream, pre-skip included. `finish` pads the last frame
//!   with silence and encodes extra silence until the encoder's lookahead has flushed every
//!   input sample, then ends the stream (`EOS` page) with the granule position
//!   `pre-skip + input length` (at 48 kHz), which tells decoders to drop the padding (RFC 7845
//!   §4.5 end trimming). Decoded output therefore has exactly the input's length.
//! * Pre-skip is the encoder's lookahead, 6.5 ms = 312 samples at 48 kHz (2.5 ms CELT overlap
//!   plus 4 ms delay compensation, as in libopus; the tests measure it on decoded output).
//!
//! The serial number is random per stream, so that concatenated responses form a valid
//! chained Ogg file.
//!
//! # Rates and bit rate
//!
//! Opus encodes at 8, 12, 16, 24 or 48 kHz. The encoder runs at 24 kHz for input up to 24 kHz
//! (24 kHz, the usual TTS rate, is native) and at 48 kHz above; other input rates are resampled
//! first ([`super::resample`]). 8, 12 and 16 kHz are not used even for input at those rates:
//! there `opus-rs` only offers SILK, whose output was far less faithful (3 dB at 8 kHz and
//! 12 dB at 16 kHz SNR at 32 kb/s, decoded with `opusdec`, against 26 dB for CELT at 24 kHz),
//! and upsampling first costs little. The bit rate is [`BITRATE`] (variable), with the `Audio`
//! application, which at this rate makes `opus-rs` use CELT only (the tests check every
//! packet's TOC byte).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus_rs::Application;

use super::resample::StreamResampler;
use super::{sanitize, EncodeError, Lifecycle, StreamEncoder};

/// Target bit rate in bits per second (VBR).
pub(super) const BITRATE: i32 = 32_000;

/// Frame length: 20 ms, the usual Opus frame.
const FRAME_MS: u32 = 20;

/// Granule positions and pre-skip count samples at 48 kHz, whatever the encoder's rate.
const GRANULE_RATE: u32 = 48_000;

/// Encoder lookahead in 48 kHz samples: 2.5 ms (CELT overlap) + 4 ms (delay compensation).
pub(super) const PRE_SKIP: u16 = 312;

/// At most this many packets (1 s) go on one page.
const PAGE_PACKETS: usize = 50;

/// Largest Opus packet for one frame, per RFC 6716 (1275 bytes) with room to spare.
const MAX_PACKET: usize = 4000;

/// Vendor string in `OpusTags`.
const VENDOR: &str = "tts-host (opus-rs)";

/// The rate the Opus encoder runs at for input at `input_rate`: 24 kHz up to 24 kHz, else
/// 48 kHz (see the module docs for why not 8, 12 or 16 kHz).
pub(super) fn encoder_rate(input_rate: u32) -> u32 {
    if input_rate <= 24_000 {
        24_000
    } else {
        48_000
    }
}

/// The 19-byte `OpusHead` packet (RFC 7845 §5.1) for a mono stream.
fn opus_head(input_rate: u32) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0: mono or stereo, no mapping table
    head
}

/// The `OpusTags` packet (RFC 7845 §5.2): vendor string, no user comments.
fn opus_tags() -> Vec<u8> {
    let mut tags = Vec::with_capacity(16 + VENDOR.len());
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    tags.extend_from_slice(VENDOR.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

/// A random Ogg serial number (from the standard library's per-instance random hash keys).
fn random_serial() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(0x4F70_7573); // "Opus"
    hasher.finish() as u32
}

/// Turns an `opus-rs` or Ogg error into [`EncodeError::Codec`].
fn codec_error(context: &str, err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Codec(format!("opus: {context}: {err}"))
}

/// The `opus` encoder.
pub(super) struct OpusEncoder {
    encoder: opus_rs::OpusEncoder,
    /// Converts the input to `rate` when the input rate differs from it.
    resampler: Option<StreamResampler>,
    input_rate: u32,
    /// The encoder's rate.
    rate: u32,
    /// Samples per frame at `rate`.
    frame: usize,
    /// Samples at `rate` not yet encoded (less than one frame between calls).
    pending: Vec<f32>,
    /// Samples at `rate` received so far (after resampling).
    received: u64,
    /// Frames encoded so far.
    frames_encoded: u64,
    /// Packets encoded in the current call, not yet handed to the Ogg writer.
    packets: Vec<Vec<u8>>,
    /// Packets written to the page that is not yet ended.
    page_packets: usize,
    ogg: PacketWriter<'static, Vec<u8>>,
    serial: u32,
    lifecycle: Lifecycle,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("input_rate", &self.input_rate)
            .field("rate", &self.rate)
            .field("serial", &self.serial)
            .field("frames_encoded", &self.frames_encoded)
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A new encoder for mono input at `sample_rate` Hz (checked by the caller).
    pub(super) fn new(sample_rate: u32) -> Result<Self, EncodeError> {
        Self::with_serial(sample_rate, random_serial())
    }

    /// Like [`OpusEncoder::new`] with a given Ogg serial number.
    fn with_serial(sample_rate: u32, serial: u32) -> Result<Self, EncodeError> {
        let rate = encoder_rate(sample_rate);
        let rate_i32 = i32::try_from(rate).map_err(|e| codec_error("rate", e))?;
        let mut encoder = opus_rs::OpusEncoder::new(rate_i32, 1, Application::Audio)
            .map_err(|e| codec_error("initialisation", e))?;
        encoder.bitrate_bps = BITRATE;
        let resampler = if rate == sample_rate {
            None
        } else {
            Some(StreamResampler::new(sample_rate, rate)?)
        };
        Ok(Self {
            encoder,
            resampler,
            input_rate: sample_rate,
            rate,
            frame: (rate * FRAME_MS / 1000) as usize,
            pending: Vec::new(),
            received: 0,
            frames_encoded: 0,
            packets: Vec::new(),
            page_packets: 0,
            ogg: PacketWriter::new(Vec::new()),
            serial,
            lifecycle: Lifecycle::default(),
        })
    }

    /// 48 kHz samples per `rate` sample (Opus rates divide 48000).
    fn granule_factor(&self) -> u64 {
        u64::from(GRANULE_RATE / self.rate)
    }

    /// Writes the two header pages.
    fn write_headers(&mut self) -> Result<(), EncodeError> {
        let head = opus_head(self.input_rate);
        self.ogg
            .write_packet(head, self.serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(|e| codec_error("writing OpusHead", e))?;
        self.ogg
            .write_packet(opus_tags(), self.serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(|e| codec_error("writing OpusTags", e))
    }

    /// Takes samples at the encoder's rate and encodes every full frame into `packets`.
    fn take(&mut self, samples: &[f32]) -> Result<(), EncodeError> {
        self.received += samples.len() as u64;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = rest.len().min(self.frame - self.pending.len());
            let (now, later) = rest.split_at(take);
            self.pending.extend_from_slice(now);
            rest = later;
            if self.pending.len() == self.frame {
                self.encode_frame()?;
            }
        }
        Ok(())
    }

    /// Encodes `pending` (exactly one frame) into a packet.
    fn encode_frame(&mut self) -> Result<(), EncodeError> {
        let mut packet = vec![0u8; MAX_PACKET];
        let len = self
            .encoder
            .encode(&self.pending, self.frame, &mut packet)
            .map_err(|e| codec_error("encoding", e))?;
        packet.truncate(len);
        self.packets.push(packet);
        self.pending.clear();
        self.frames_encoded += 1;
        Ok(())
    }

    /// Hands the packets encoded in this call to the Ogg writer, ending the page after the
    /// last one (and the stream, with granule position `final_granule`, if given), and returns
    /// the bytes of every completed page.
    fn write_packets(&mut self, final_granule: Option<u64>) -> Result<Vec<u8>, EncodeError> {
        let count = self.packets.len();
        let first_frame = self.frames_encoded - count as u64;
        let frame_granules = self.frame as u64 * self.granule_factor();
        for (i, packet) in std::mem::take(&mut self.packets).into_iter().enumerate() {
            let last = i + 1 == count;
            let mut granule = (first_frame + i as u64 + 1) * frame_granules;
            self.page_packets += 1;
            let end = match final_granule {
                Some(end) if last => {
                    granule = end;
                    PacketWriteEndInfo::EndStream
                }
                _ if last || self.page_packets == PAGE_PACKETS => PacketWriteEndInfo::EndPage,
                _ => PacketWriteEndInfo::NormalPacket,
            };
            if end != PacketWriteEndInfo::NormalPacket {
                self.page_packets = 0;
            }
            self.ogg
                .write_packet(packet, self.serial, end, granule)
                .map_err(|e| codec_error("writing a page", e))?;
        }
        Ok(std::mem::take(self.ogg.inner_mut()))
    }
}

impl StreamEncoder for OpusEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        if self.lifecycle.begin_push()? {
            self.write_headers()?;
        }
        let clamped: Vec<f32> = samples.iter().map(|&x| sanitize(x)).collect();
        if let Some(resampler) = self.resampler.as_mut() {
            let mut converted = Vec::new();
            resampler.process(&clamped, &mut converted)?;
            self.take(&converted)?;
        } else {
            self.take(&clamped)?;
        }
        self.write_packets(None)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        match self.lifecycle.begin_finish() {
            None => return Ok(Vec::new()),
            Some(true) => self.write_headers()?,
            Some(false) => {}
        }
        if let Some(mut resampler) = self.resampler.take() {
            let mut converted = Vec::new();
            resampler.finish(&mut converted)?;
            self.take(&converted)?;
        }
        // Encode silence until the lookahead has pushed the last input sample out: the encoded
        // length must reach pre-skip + input (at least one frame, even for empty input).
        let factor = self.granule_factor();
        let end = u64::from(PRE_SKIP) + self.received * factor;
        let frame_granules = self.frame as u64 * factor;
        while self.frames_encoded * frame_granules < end {
            let silence = vec![0.0; self.frame - self.pending.len()];
            self.pending.extend_from_slice(&silence);
            self.encode_frame()?;
        }
        self.write_packets(Some(end))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use ogg::reading::PacketReader;
    use opus_pure::{OggOpusReader, Trim, MAX_PACKET_SAMPLES};

    use super::super::testutil::{encode_chunks, find_delay, snr_db, test_signal, PUSH_SIZES};
    use super::super::{new_encoder, AudioFormat, StreamEncoder};
    use super::*;

    /// Minimum SNR over the whole signal and over its last 100 ms, after alignment.
    const MIN_SNR_DB: f64 = 15.0;

    /// What the test demuxer found in a stream.
    struct Demuxed {
        head: Vec<u8>,
        tags: Vec<u8>,
        /// Audio packets with the granule position of the page they end on (if they end one).
        packets: Vec<(Vec<u8>, Option<u64>)>,
        last_granule: u64,
        serial: u32,
    }

    /// Reads an Ogg Opus stream with the `ogg` crate's reader and checks the page-level rules
    /// of RFC 7845: headers alone on their pages, EOS only at the end, granules increasing.
    fn demux(bytes: &[u8]) -> Demuxed {
        let mut reader = PacketReader::new(Cursor::new(bytes.to_vec()));
        let mut all = Vec::new();
        while let Some(p) = reader.read_packet().expect("valid Ogg") {
            all.push(p);
        }
        assert!(all.len() >= 3, "OpusHead, OpusTags and at least one audio packet");
        let serial = all[0].stream_serial();
        assert!(all.iter().all(|p| p.stream_serial() == serial));
        assert!(all[0].first_in_stream() && all[0].last_in_page());
        assert!(all[1].last_in_page() && !all[1].last_in_stream());
        assert_eq!(all[0].absgp_page(), 0);
        assert_eq!(all[1].absgp_page(), 0);
        let last = all.last().unwrap();
        assert!(last.last_in_stream() && last.last_in_page());
        let mut granule = 0;
        let mut packets = Vec::new();
        for (i, p) in all.iter().enumerate().skip(2) {
            assert_eq!(p.last_in_stream(), i + 1 == all.len());
            let page_granule = p.last_in_page().then(|| p.absgp_page());
            if let Some(g) = page_granule {
                assert!(g > granule, "granule positions must increase");
                granule = g;
            }
            packets.push((p.data.clone(), page_granule));
        }
        Demuxed {
            head: all[0].data.clone(),
            tags: all[1].data.clone(),
            packets,
            last_granule: last.absgp_page(),
            serial,
        }
    }

    /// Decodes with `opus-pure`'s Ogg Opus reader and decoder at `rate`, trimming pre-skip
    /// and the end as a conforming player does (its `Trim` reads both from the stream). The
    /// page-level checks of [`demux`] run first.
    fn decode(bytes: &[u8], rate: u32) -> Vec<f32> {
        let d = demux(bytes);
        assert_eq!(&d.head[..8], b"OpusHead");
        assert_eq!(d.head.len(), 19);
        assert_eq!((d.head[8], d.head[9]), (1, 1), "version 1, mono");
        assert_eq!(&d.tags[..8], b"OpusTags");
        let mut reader = OggOpusReader::new(Cursor::new(bytes.to_vec())).unwrap();
        let head = reader.head().clone();
        assert_eq!(head.pre_skip, PRE_SKIP);
        let rate = i32::try_from(rate).unwrap();
        let mut decoder = head.decoder(rate).unwrap();
        let mut trim = Trim::new(&head, rate, 1).unwrap();
        let mut block = vec![0f32; MAX_PACKET_SAMPLES];
        let mut out = Vec::new();
        for packet in reader.packets() {
            let packet = packet.unwrap();
            let n = decoder
                .decode(&packet.data, MAX_PACKET_SAMPLES, &mut block)
                .unwrap();
            out.extend_from_slice(trim.keep(&packet, &block[..n]));
        }
        out
    }

    fn encode(signal: &[f32], rate: u32, chunk: usize) -> Vec<Vec<u8>> {
        let mut enc = new_encoder(AudioFormat::Opus, rate).unwrap();
        encode_chunks(enc.as_mut(), signal, chunk)
    }

    /// Encodes at 24 kHz or 48 kHz (native), decodes at the same rate and measures.
    fn check_native(rate: u32, chunk: usize) -> (Vec<u8>, f64, f64) {
        let signal = test_signal(rate);
        let chunks = encode(&signal, rate, chunk);
        // The header pages go out with the first push, before any audio.
        assert!(chunks[0].starts_with(b"OggS"));
        assert!(chunks[0].windows(8).any(|w| w == b"OpusTags"));
        let bytes = chunks.concat();
        let decoded = decode(&bytes, rate);
        // Pre-skip and end trimming give back exactly the input's length.
        assert_eq!(decoded.len(), signal.len(), "{rate} Hz, push {chunk}");
        // Pre-skip removed the whole encoder delay: the best alignment is at lag 0.
        let delay = find_delay(&signal, &decoded, rate, rate as usize / 100);
        assert_eq!(delay, 0, "{rate} Hz: pre-skip does not match the encoder delay");
        let snr = snr_db(&signal, &decoded, 0, 0..signal.len());
        let tail = snr_db(
            &signal,
            &decoded,
            0,
            signal.len() - rate as usize / 10..signal.len(),
        );
        assert!(snr >= MIN_SNR_DB, "{rate} Hz, push {chunk}: SNR {snr:.1} dB");
        assert!(
            tail >= MIN_SNR_DB,
            "{rate} Hz, push {chunk}: tail SNR {tail:.1} dB"
        );
        (bytes, snr, tail)
    }

    #[test]
    fn round_trip_every_push_size() {
        let mut reference: Option<Vec<Vec<u8>>> = None;
        for chunk in PUSH_SIZES {
            let (bytes, snr, tail) = check_native(24_000, chunk);
            eprintln!(
                "opus 24000 Hz push {chunk}: SNR {snr:.1} dB, tail {tail:.1} dB, {} bytes",
                bytes.len()
            );
            // Pages differ with the push size, the packets must not.
            let packets: Vec<Vec<u8>> = demux(&bytes).packets.into_iter().map(|p| p.0).collect();
            assert_eq!(reference.get_or_insert_with(|| packets.clone()), &packets);
        }
    }

    #[test]
    fn packets_are_celt_20ms() {
        for rate in [24_000, 48_000] {
            let bytes = encode(&test_signal(rate), rate, 4096).concat();
            for (packet, _) in demux(&bytes).packets {
                let config = packet[0] >> 3;
                // TOC configurations 16..=31 are CELT-only; the low two bits of each group of
                // four give the frame size, 3 = 20 ms; code 0 = one frame per packet.
                assert!(config >= 16, "{rate} Hz: TOC config {config} is not CELT");
                assert_eq!(config & 3, 3, "20 ms frames");
                assert_eq!(packet[0] & 3, 0, "one frame per packet");
                assert_eq!(packet[0] & 4, 0, "mono");
            }
        }
    }

    #[test]
    fn round_trip_48k() {
        let (_, snr, tail) = check_native(48_000, 4096);
        eprintln!("opus 48000 Hz: SNR {snr:.1} dB, tail {tail:.1} dB");
    }

    #[test]
    fn other_rates_are_resampled() {
        for (rate, enc_rate) in [
            (8_000, 24_000),
            (16_000, 24_000),
            (22_050, 24_000),
            (44_100, 48_000),
            (96_000, 48_000),
            (192_000, 48_000),
        ] {
            assert_eq!(encoder_rate(rate), enc_rate);
            let signal = test_signal(rate);
            let bytes = encode(&signal, rate, 4096).concat();
            let d = demux(&bytes);
            assert_eq!(
                u32::from_le_bytes([d.head[12], d.head[13], d.head[14], d.head[15]]),
                rate
            );
            let decoded = decode(&bytes, enc_rate);
            // The reference: the same resampling the encoder applies (tested on its own in
            // resample.rs), so this measures the Opus round trip and the alignment.
            let mut reference = Vec::new();
            let mut r = StreamResampler::new(rate, enc_rate).unwrap();
            r.process(&signal, &mut reference).unwrap();
            r.finish(&mut reference).unwrap();
            assert_eq!(decoded.len(), reference.len(), "{rate} Hz");
            let expected = (signal.len() as f64 * f64::from(enc_rate) / f64::from(rate)).round();
            assert_eq!(decoded.len(), expected as usize);
            let snr = snr_db(&reference, &decoded, 0, 0..reference.len());
            eprintln!("opus {rate} Hz via {enc_rate} Hz: SNR {snr:.1} dB");
            assert!(snr >= MIN_SNR_DB, "{rate} Hz: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn granules_and_pages() {
        let signal = test_signal(24_000);
        let bytes = encode(&signal, 24_000, 2400).concat(); // 100 ms pushes
        let d = demux(&bytes);
        assert_eq!(d.last_granule, u64::from(PRE_SKIP) + 2 * signal.len() as u64);
        // 5 packets per push, so every fifth packet ends a page, at 960 granules a packet.
        for (i, (_, granule)) in d.packets.iter().enumerate() {
            if i + 1 < d.packets.len() {
                assert_eq!(
                    *granule,
                    ((i + 1) % 5 == 0).then_some(960 * (i as u64 + 1)),
                    "packet {i}"
                );
            }
        }
        // One big push: pages still end every PAGE_PACKETS packets.
        let long = [signal.as_slice(); 3].concat();
        let d = demux(&encode(&long, 24_000, usize::MAX).concat());
        let ends: Vec<usize> = d
            .packets
            .iter()
            .enumerate()
            .filter(|p| p.1 .1.is_some())
            .map(|p| p.0 + 1)
            .collect();
        assert!(ends.windows(2).all(|w| w[1] - w[0] <= PAGE_PACKETS), "{ends:?}");
    }

    #[test]
    fn empty_input_is_a_valid_empty_stream() {
        for chunk in [0, 1] {
            let bytes = encode(&[], 24_000, chunk).concat();
            let d = demux(&bytes);
            assert_eq!(d.packets.len(), 1, "one packet of silence carries the lookahead");
            assert_eq!(d.last_granule, u64::from(PRE_SKIP));
            assert!(decode(&bytes, 24_000).is_empty());
        }
    }

    #[test]
    fn headers_and_serials() {
        assert_eq!(
            opus_head(24_000),
            [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 1, 0x38, 0x01, 0xC0, 0x5D, 0, 0, 0, 0, 0]
        );
        let tags = opus_tags();
        assert_eq!(&tags[..8], b"OpusTags");
        assert_eq!(
            u32::from_le_bytes([tags[8], tags[9], tags[10], tags[11]]) as usize,
            VENDOR.len()
        );
        assert_eq!(&tags[tags.len() - 4..], &[0; 4]);
        // Two streams get different serials, so that concatenated responses chain.
        let a = demux(&encode(&[0.0; 480], 24_000, 480).concat()).serial;
        let b = demux(&encode(&[0.0; 480], 24_000, 480).concat()).serial;
        assert_ne!(a, b);
        // A fixed serial gives identical bytes for identical input.
        let run = || {
            let mut enc = OpusEncoder::with_serial(24_000, 7).unwrap();
            encode_chunks(&mut enc as &mut dyn StreamEncoder, &[0.25; 1000], 100).concat()
        };
        assert_eq!(run(), run());
    }
}
