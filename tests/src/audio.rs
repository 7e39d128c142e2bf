//! Decoders for every response format, so tests check audio, not just bytes: WAV, AIFF and raw
//! PCM by hand (tolerant of the unknown sizes a streamed header carries), FLAC and MP3 with
//! symphonia, Ogg Opus with `opus-pure`.

use std::io::Cursor;

/// Decoded audio: the first channel as floats in [-1, 1].
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels in the stream.
    pub channels: u16,
    /// The first channel.
    pub samples: Vec<f32>,
}

impl Decoded {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }

    /// Root mean square of `samples[from..to]`.
    pub fn rms(&self) -> f64 {
        rms(&self.samples)
    }
}

/// Root mean square.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// A frequency estimate from rising zero crossings (good for one steady tone).
pub fn zero_crossing_hz(samples: &[f32], sample_rate: u32) -> f64 {
    // Hysteresis: a crossing counts only from below -T to above +T, so the low-level noise a
    // lossy codec leaves in the silences does not count as pitch.
    const T: f32 = 0.02;
    let mut armed = false;
    let mut rising = 0usize;
    for &x in samples {
        if x < -T {
            armed = true;
        } else if x > T && armed {
            armed = false;
            rising += 1;
        }
    }
    rising as f64 * f64::from(sample_rate) / samples.len() as f64
}

/// Decodes `bytes` of the named `response_format`; `pcm` is 16-bit little-endian at `pcm_rate`.
pub fn decode(format: &str, bytes: &[u8], pcm_rate: u32) -> Result<Decoded, String> {
    match format {
        "pcm" => decode_pcm(bytes, pcm_rate),
        "wav" => decode_wav(bytes),
        "aiff" => decode_aiff(bytes),
        "flac" | "mp3" => decode_symphonia(bytes, format),
        "opus" => decode_ogg_opus(bytes),
        other => Err(format!("no decoder for {other}")),
    }
}

/// Raw signed 16-bit little-endian mono.
pub fn decode_pcm(bytes: &[u8], sample_rate: u32) -> Result<Decoded, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(format!("pcm has an odd byte count ({})", bytes.len()));
    }
    Ok(Decoded {
        sample_rate,
        channels: 1,
        samples: bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect(),
    })
}

fn u16_le(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated header".to_string())
}

fn u32_le(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated header".to_string())
}

fn u16_be(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated header".to_string())
}

fn u32_be(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated header".to_string())
}

/// Interleaved integer samples of `bits` bits (16 or 24 or 32), first channel kept.
fn ints(data: &[u8], bits: u16, channels: u16, big_endian: bool) -> Result<Vec<f32>, String> {
    let width = usize::from(bits / 8);
    if !(matches!(bits, 8 | 16 | 24 | 32)) || channels == 0 {
        return Err(format!(
            "unsupported sample layout: {bits} bits, {channels} channels"
        ));
    }
    let frame = width * usize::from(channels);
    if !data.len().is_multiple_of(frame) {
        return Err(format!(
            "{} data bytes are not whole {frame}-byte frames",
            data.len()
        ));
    }
    Ok(data
        .chunks_exact(frame)
        .map(|f| {
            let s = &f[..width];
            let mut v: i64 = 0;
            for i in 0..width {
                let byte = if big_endian { s[i] } else { s[width - 1 - i] };
                v = (v << 8) | i64::from(byte);
            }
            if bits == 8 && !big_endian {
                // WAV 8-bit is unsigned.
                return (v as f32 - 128.0) / 128.0;
            }
            let shift = 64 - u32::from(bits);
            let v = (v << shift) >> shift;
            v as f32 / (1_i64 << (bits - 1)) as f32
        })
        .collect())
}

/// RIFF/WAVE with PCM (format 1) or float (3); the data size may be unknown (0 or 0xFFFFFFFF).
pub fn decode_wav(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not RIFF/WAVE".into());
    }
    let mut at = 12;
    let mut fmt = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_le(bytes, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            let tag = u16_le(bytes, body)?;
            let channels = u16_le(bytes, body + 2)?;
            let rate = u32_le(bytes, body + 4)?;
            let bits = u16_le(bytes, body + 14)?;
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or("data before fmt")?;
            let end = if size == 0 || size == u32::MAX as usize || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let data = &bytes[body..end];
            let samples = match (tag, bits) {
                (1 | 0xFFFE, _) => ints(data, bits, channels, false)?,
                (3, 32) => data
                    .chunks_exact(4 * usize::from(channels))
                    .map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]]))
                    .collect(),
                _ => return Err(format!("unsupported WAV format tag {tag} with {bits} bits")),
            };
            return Ok(Decoded {
                sample_rate: rate,
                channels,
                samples,
            });
        }
        at = body + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// The 80-bit IEEE extended float of AIFF's COMM chunk.
fn extended_to_f64(b: &[u8]) -> f64 {
    let exponent = i32::from(u16::from_be_bytes([b[0], b[1]]) & 0x7FFF);
    let sign = if b[0] & 0x80 != 0 { -1.0 } else { 1.0 };
    let mantissa = u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]);
    if exponent == 0 && mantissa == 0 {
        return 0.0;
    }
    sign * mantissa as f64 * 2f64.powi(exponent - 16383 - 63)
}

/// FORM/AIFF (or AIFC with `NONE`/`twos`); SSND's size may be unknown in a streamed file.
pub fn decode_aiff(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.get(0..4) != Some(b"FORM") || !matches!(bytes.get(8..12), Some(b"AIFF" | b"AIFC")) {
        return Err("not FORM/AIFF".into());
    }
    let mut at = 12;
    let mut comm = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_be(bytes, at + 4)? as usize;
        let body = at + 8;
        if id == b"COMM" {
            let channels = u16_be(bytes, body)?;
            let frames = u32_be(bytes, body + 2)?;
            let bits = u16_be(bytes, body + 6)?;
            let rate = extended_to_f64(bytes.get(body + 8..body + 18).ok_or("truncated COMM")?);
            comm = Some((channels, frames, bits, rate));
        } else if id == b"SSND" {
            let (channels, frames, bits, rate) = comm.ok_or("SSND before COMM")?;
            let offset = u32_be(bytes, body)? as usize;
            let start = body + 8 + offset;
            let end = if size < 8 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let mut samples = ints(
                bytes.get(start..end).ok_or("bad SSND offset")?,
                bits,
                channels,
                true,
            )?;
            if frames != 0 && frames != u32::MAX && (frames as usize) < samples.len() {
                samples.truncate(frames as usize);
            }
            return Ok(Decoded {
                sample_rate: rate.round() as u32,
                channels,
                samples,
            });
        }
        at = body + size + (size & 1);
    }
    Err("no SSND chunk".into())
}

/// FLAC or MP3 (or anything symphonia knows) from memory.
pub fn decode_symphonia(bytes: &[u8], extension: &str) -> Result<Decoded, String> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(extension);
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| format!("probe: {e}"))?;
    let track = format.default_track(TrackType::Audio).ok_or("no audio track")?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("no audio codec parameters")?
        .clone();
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| format!("decoder: {e}"))?;
    let mut rate = params.sample_rate;
    let mut channels = params.channels.as_ref().map(|c| c.count() as u16);
    let mut samples = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(format!("demux: {e}")),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = decoder.decode(&packet).map_err(|e| format!("decode: {e}"))?;
        let spec = buf.spec();
        rate = Some(spec.rate());
        let n = spec.channels().count().max(1);
        channels = Some(n as u16);
        scratch.resize(buf.samples_interleaved(), 0.0);
        buf.copy_to_slice_interleaved(&mut scratch);
        samples.extend(scratch.iter().step_by(n));
    }
    Ok(Decoded {
        sample_rate: rate.ok_or("unknown sample rate")?,
        channels: channels.unwrap_or(1),
        samples,
    })
}

/// Ogg Opus: OpusHead and OpusTags are checked, then the stream is decoded at 48 kHz with
/// `opus-pure`, trimming pre-skip and the end to the final granule position as RFC 7845 says.
pub fn decode_ogg_opus(bytes: &[u8]) -> Result<Decoded, String> {
    use opus_pure::{OggOpusReader, Trim, MAX_PACKET_SAMPLES};
    let mut check = ogg::PacketReader::new(Cursor::new(bytes.to_vec()));
    let mut ended = false;
    while let Some(p) = check.read_packet().map_err(|e| format!("ogg: {e}"))? {
        ended |= p.last_in_stream();
    }
    if !ended {
        return Err("the Ogg stream has no end-of-stream page".into());
    }
    let mut reader =
        OggOpusReader::new(Cursor::new(bytes.to_vec())).map_err(|e| format!("ogg opus: {e:?}"))?;
    let head = reader.head().clone();
    let channels = head.channel_count;
    let mut decoder = head.decoder(48_000).map_err(|e| format!("opus decoder: {e:?}"))?;
    let mut trim =
        Trim::new(&head, 48_000, usize::from(channels.max(1))).map_err(|e| format!("opus trim: {e:?}"))?;
    let n = usize::from(channels.max(1));
    let mut block = vec![0f32; MAX_PACKET_SAMPLES * n];
    let mut samples = Vec::new();
    for packet in reader.packets() {
        let packet = packet.map_err(|e| format!("ogg: {e:?}"))?;
        let frames = decoder
            .decode(&packet.data, MAX_PACKET_SAMPLES, &mut block)
            .map_err(|e| format!("opus packet: {e:?}"))?;
        samples.extend(trim.keep(&packet, &block[..frames * n]).iter().step_by(n));
    }
    Ok(Decoded {
        sample_rate: 48_000,
        channels: u16::from(channels),
        samples,
    })
}
