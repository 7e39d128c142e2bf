//! What the `sine` backend produces, restated from its documented rules (60 ms per character,
//! 40 ms per space, 200 ms per sentence stop, 100 ms per comma, a 0.3-peak tone whose pitch is
//! `base · 2^((code point mod 24) / 12)`), so tests can check decoded audio against it.

/// The sine backend's voices and base frequencies.
pub const VOICES: [(&str, f32); 4] = [
    ("sine_alto", 330.0),
    ("sine_bass", 110.0),
    ("sine_kana", 440.0),
    ("sine_sol", 220.0),
];

/// Peak amplitude of the tone.
pub const AMPLITUDE: f64 = 0.3;

/// Samples the backend renders for `text` at `speed` and `rate` (per-character rounding, as the
/// backend does).
pub fn expected_samples(text: &str, speed: f32, rate: u32) -> usize {
    text.chars()
        .map(|c| {
            let seconds: f32 = match c {
                c if c.is_whitespace() => 0.04,
                '.' | '!' | '?' | ';' | ':' | '。' => 0.2,
                ',' | '、' => 0.1,
                _ => 0.06,
            };
            ((seconds / speed) * rate as f32).round() as usize
        })
        .sum()
}

/// The pitch of character `c` for `voice`.
pub fn tone_hz(voice: &str, c: char) -> f64 {
    let base = VOICES
        .iter()
        .find(|v| v.0 == voice)
        .map_or(0.0, |v| f64::from(v.1));
    base * ((u32::from(c) % 24) as f64 / 12.0).exp2()
}

/// Words as the backend splits them (one pushed chunk each).
pub fn word_count(text: &str) -> usize {
    text.split_inclusive(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .count()
}
