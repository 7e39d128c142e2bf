//! Fuzz entry points for `fuzz/` (cargo-fuzz); not part of the API.
//!
//! Each `pub fn` takes the fuzzer's bytes, runs pure code of this crate (no model, no espeak-ng)
//! and asserts its invariants with `assert!`: a failed assertion is a finding, like a panic.
//! `fuzz/fuzz_targets/*.rs` only call these, and the tests below replay every committed corpus
//! file through the same function, so `cargo test` checks the corpus without cargo-fuzz. See
//! `docs/fuzzing.md`.

use std::cell::Cell;
use std::convert::Infallible;

use crate::text::chunk::{Boundary, ChunkOptions, Chunker};
use crate::text::normalize::{normalize_english_with, DateOrder, NormalizeOptions};
use crate::text::phonemize::{is_py_space, phonemize_with, Mapping, MARKS};
use crate::voice::{Sign, VoiceBlend, Weighting};

/// Target `voice_expression`: [`VoiceBlend::parse`] and [`VoiceBlend::coefficients`] on any
/// string.
///
/// Invariants of an accepted expression: at least one term; the first is added; names are
/// non-empty and free of whitespace and `+ - ( )`; weights finite and > 0; the canonical form
/// (`Display`) parses back to the same blend. Normalised coefficients are finite, each at most 1
/// in size and signed like their terms, and their sizes add up to 1 whenever the written weights'
/// sum is finite; raw coefficients are the written weights, rounded to f32, signed. A refused
/// expression has a non-empty message.
pub fn voice_expression(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let blend = match VoiceBlend::parse(&text) {
        Ok(blend) => blend,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let terms = blend.terms();
    assert!(!terms.is_empty(), "empty blend from {text:?}");
    assert_eq!(terms[0].sign, Sign::Plus, "first term subtracted in {text:?}");
    for t in terms {
        assert!(
            !t.voice.is_empty()
                && !t
                    .voice
                    .contains(|c: char| c.is_whitespace() || "+-()".contains(c)),
            "voice name {:?} from {text:?}",
            t.voice
        );
        assert!(
            t.weight.is_finite() && t.weight > 0.0,
            "weight {} from {text:?}",
            t.weight
        );
    }
    assert_eq!(blend.first_voice(), terms[0].voice);
    let canonical = blend.to_string();
    assert_eq!(
        VoiceBlend::parse(&canonical).as_ref(),
        Ok(&blend),
        "{canonical:?} from {text:?}"
    );

    let signed = |c: f32, sign: Sign| match sign {
        Sign::Plus => c >= 0.0,
        Sign::Minus => c <= 0.0,
    };
    let normalized = blend.coefficients(Weighting::Normalized);
    assert_eq!(normalized.len(), terms.len());
    for (c, t) in normalized.iter().zip(terms) {
        assert!(
            c.is_finite() && c.abs() <= 1.0,
            "normalised coefficient {c} from {text:?}"
        );
        assert!(
            signed(*c, t.sign),
            "coefficient {c} has the wrong sign in {text:?}"
        );
    }
    let total: f64 = terms.iter().map(|t| t.weight).sum();
    if total.is_finite() {
        let size: f64 = normalized.iter().map(|&c| f64::from(c.abs())).sum();
        // Each coefficient is rounded to f32 once: the sizes' sum is 1 within 2^-24.
        assert!(
            (size - 1.0).abs() <= 1e-6,
            "coefficient sizes add up to {size} in {text:?}"
        );
    }
    let raw = blend.coefficients(Weighting::Raw);
    for (c, t) in raw.iter().zip(terms) {
        let want = match t.sign {
            Sign::Plus => t.weight as f32,
            Sign::Minus => -(t.weight as f32),
        };
        assert_eq!(
            c.to_bits(),
            want.to_bits(),
            "raw coefficient {c} for weight {} in {text:?}",
            t.weight
        );
    }
}

/// Whether `c` is a combining mark the chunker never cuts before (a copy of the chunker's own
/// table: a hard split keeps a base letter and its marks together).
fn is_combining(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Bit length of `n` (0 for 0).
fn bit_length(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize
}

/// Target `normalize_chunk`: [`normalize_english_with`] then [`Chunker`] with a character
/// counter. The first two bytes choose the options: byte 0 bits 0–5 are `max_tokens − 1`
/// (1..=64), bit 6 the date order, bit 7 `read_url_scheme`; byte 1 bits 0–6 `first_chunk_tokens`
/// (mod 80, 0 = off), bit 7 switches normalisation off. The rest is the text (lossy UTF-8).
///
/// Invariants: the normaliser is deterministic, leaves no ASCII digit and grows the text at most
/// 24-fold (+32); the chunks are non-empty, trimmed, in order, non-overlapping and separated only
/// by whitespace, so together they hold every word of the normalised text; each is within its
/// budget (the first chunk's, then `max_tokens`) unless it is one letter with more combining marks
/// than the budget (a hard split, or the end of the text); only the last ends at [`Boundary::End`]; the counter runs O(log n) times per
/// chunk.
pub fn normalize_chunk(data: &[u8]) {
    let [b0, b1, rest @ ..] = data else {
        return;
    };
    let max_tokens = 1 + usize::from(b0 & 0x3f);
    let first_chunk_tokens = usize::from(b1 & 0x7f) % 80;
    let options = NormalizeOptions {
        enabled: b1 & 0x80 == 0,
        read_url_scheme: b0 & 0x80 != 0,
        date_order: if b0 & 0x40 == 0 {
            DateOrder::MonthFirst
        } else {
            DateOrder::DayFirst
        },
    };
    let input = String::from_utf8_lossy(rest);
    let text = normalize_english_with(&input, &options);
    assert_eq!(
        text,
        normalize_english_with(&input, &options),
        "not deterministic: {input:?}"
    );
    if options.enabled {
        assert!(
            !text.contains(|c: char| c.is_ascii_digit()),
            "digits survive: {input:?} -> {text:?}"
        );
        let (n_in, n_out) = (input.chars().count(), text.chars().count());
        assert!(
            n_out <= 24 * n_in + 32,
            "{n_in} chars grew to {n_out}: {input:?} -> {text:?}"
        );
    } else {
        assert_eq!(text, input, "normalisation off changed the text");
    }

    let calls = Cell::new(0usize);
    let counter = |s: &str| {
        calls.set(calls.get() + 1);
        s.chars().count()
    };
    let chunk_options = ChunkOptions {
        max_tokens,
        first_chunk_tokens,
    };
    let letters = text.chars().filter(|c| !c.is_whitespace()).count();
    let chunks: Vec<_> = Chunker::new(&text, counter, chunk_options)
        .take(letters + 1)
        .collect();
    assert!(chunks.len() <= letters, "{} chunks of {text:?}", chunks.len());
    let mut at = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let budget = match (i, first_chunk_tokens) {
            (0, 0) => max_tokens,
            (0, first) => first.min(max_tokens),
            _ => max_tokens,
        };
        assert!(!chunk.text.is_empty(), "empty chunk {i} of {text:?}");
        assert_eq!(chunk.text, chunk.text.trim(), "untrimmed chunk {i} of {text:?}");
        assert_eq!(
            text.get(chunk.range.clone()),
            Some(chunk.text),
            "chunk {i} range of {text:?}"
        );
        assert!(
            chunk.range.start >= at,
            "chunk {i} overlaps or goes back in {text:?}"
        );
        assert!(
            text[at..chunk.range.start].trim().is_empty(),
            "text dropped before chunk {i} of {text:?}"
        );
        assert_eq!(chunk.tokens, chunk.text.chars().count(), "chunk {i} miscounted");
        let one_letter = chunk.text.chars().skip(1).all(is_combining);
        assert!(
            chunk.tokens <= budget
                || (one_letter && matches!(chunk.boundary, Boundary::Hard | Boundary::End)),
            "chunk {i} has {} tokens, budget {budget}: {:?} of {text:?}",
            chunk.tokens,
            chunk.text
        );
        let last = i + 1 == chunks.len();
        assert_eq!(
            chunk.boundary == Boundary::End,
            last,
            "chunk {i} of {} ends {:?}",
            chunks.len(),
            chunk.boundary
        );
        at = chunk.range.end;
    }
    assert!(
        text[at..].trim().is_empty(),
        "text dropped at the end of {text:?}"
    );
    // Four boundary levels and the hard split, each a gallop and a bisection, plus the count of
    // the chunk itself; one more pass finds nothing after the last chunk.
    let per_chunk = 5 * (2 * bit_length(text.len()) + 3) + 1;
    let most = per_chunk * chunks.len().max(1);
    assert!(
        calls.get() <= most,
        "{} counter calls for {} chunks of {} bytes",
        calls.get(),
        chunks.len(),
        text.len()
    );
}

/// What reaches espeak-ng ([`sanitize_for_espeak`], applied to every piece right before the
/// call): no control characters, bounded words, apostrophes, punctuation runs and combining
/// stacks; every letter and digit kept; sanitizing twice changes nothing.
fn check_sanitizer(text: &str) {
    use crate::text::sanitize::{
        is_control, sanitize_for_espeak, MAX_APOSTROPHES, MAX_COMBINING, MAX_SAME_RUN, MAX_WORD_CHARS,
    };
    use unicode_normalization::char::is_combining_mark;
    let out = sanitize_for_espeak(text);
    assert!(
        !out.chars().any(is_control),
        "a control character survived in {out:?}"
    );
    // Apostrophes beyond the bound become spaces and marks beyond the stack bound are dropped;
    // U+02BC and some combining marks (U+0369) count as alphabetic to Rust.
    let apostrophe = |c: char| matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{b4}');
    let alnum = |s: &str| -> String {
        s.chars()
            .filter(|&c| c.is_alphanumeric() && !apostrophe(c) && !is_combining_mark(c))
            .collect()
    };
    assert_eq!(alnum(&out), alnum(text), "letters lost from {text:?}");
    assert_eq!(sanitize_for_espeak(&out), out, "not idempotent on {text:?}");
    for word in out.split_whitespace() {
        let bases = word.chars().filter(|&c| !is_combining_mark(c)).count();
        assert!(bases <= MAX_WORD_CHARS, "word of {bases} characters in {text:?}");
        let apostrophes = word.chars().filter(|&c| apostrophe(c)).count();
        assert!(
            apostrophes <= MAX_APOSTROPHES,
            "{apostrophes} apostrophes in {word:?}"
        );
        let (mut marks, mut run, mut last) = (0usize, 0usize, None);
        for c in word.chars() {
            if is_combining_mark(c) {
                marks += 1;
                assert!(marks <= MAX_COMBINING, "combining stack in {word:?}");
                continue;
            }
            marks = 0;
            run = if last == Some(c) && !c.is_alphanumeric() {
                run + 1
            } else {
                1
            };
            assert!(
                c.is_alphanumeric() || run <= MAX_SAME_RUN,
                "run of {c:?} in {word:?}"
            );
            last = Some(c);
        }
    }
}

/// Target `phonemizer_entry`: [`phonemize_with`] for each mapping (misaki `EspeakG2P`, the
/// US and GB English fallbacks), with a fake espeak that returns its chunk lowercased.
///
/// Invariants: espeak sees only non-empty chunks without punctuation marks, and together they hold
/// every other non-space character of the text; the result records exactly those calls; IPA is
/// absent only for empty text; the phoneme string holds none of the symbols its mapping removes
/// (`^` always; `-`, `«`, `»` for misaki; `o ɾ ʔ` for the fallbacks, `ː` for US English) and is
/// at most about four times as long as the text.
pub fn phonemizer_entry(data: &[u8]) {
    let text = &*String::from_utf8_lossy(data);
    check_sanitizer(text);
    let kept = |s: &str| -> String {
        s.chars()
            .filter(|&c| !MARKS.contains(&c) && !is_py_space(c))
            .collect()
    };
    let want = kept(text);
    let n = text.chars().count();
    for mapping in [
        Mapping::Misaki,
        Mapping::EnglishFallback { british: false },
        Mapping::EnglishFallback { british: true },
    ] {
        let mut seen: Vec<String> = Vec::new();
        let Ok(out) = phonemize_with(text, mapping, |chunk| {
            seen.push(chunk.to_owned());
            Ok::<_, Infallible>(vec![chunk.to_lowercase()])
        });
        for chunk in &seen {
            assert!(!chunk.is_empty(), "empty chunk sent to espeak for {text:?}");
            assert!(
                !chunk.contains(MARKS),
                "marks sent to espeak: {chunk:?} of {text:?}"
            );
        }
        assert_eq!(
            seen.concat()
                .chars()
                .filter(|&c| !is_py_space(c))
                .collect::<String>(),
            want,
            "{mapping:?}: text lost in {text:?}"
        );
        assert_eq!(out.chunks.len(), seen.len());
        for (recorded, chunk) in out.chunks.iter().zip(&seen) {
            assert_eq!(&recorded.text, chunk);
            let lower = chunk.to_lowercase();
            let want_clauses: &[String] = if lower.is_empty() {
                &[]
            } else {
                std::slice::from_ref(&lower)
            };
            assert_eq!(recorded.clauses, want_clauses);
        }
        assert_eq!(
            out.espeak_ipa.is_none(),
            text.is_empty(),
            "{mapping:?}: IPA presence for {text:?}"
        );
        let forbidden: &[char] = match mapping {
            Mapping::Misaki => &['^', '-', '«', '»'],
            Mapping::EnglishFallback { british: false } => &['^', 'o', 'ɾ', 'ʔ', 'ː'],
            Mapping::EnglishFallback { british: true } => &['^', 'o', 'ɾ', 'ʔ'],
        };
        assert!(
            !out.phonemes.contains(forbidden),
            "{mapping:?}: {:?} from {text:?}",
            out.phonemes
        );
        let m = out.phonemes.chars().count();
        assert!(
            m <= 4 * n + 8,
            "{mapping:?}: {n} chars became {m} phonemes: {text:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// Every file of `fuzz/<dir>/<target>/`, sorted.
    fn corpus(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz")
            .join(dir)
            .join(target);
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    }

    fn replay(target: &str, run: fn(&[u8]), at_least: usize) {
        let files = corpus("corpus", target);
        assert!(
            files.len() >= at_least,
            "only {} corpus files for {target}",
            files.len()
        );
        for (path, bytes) in &files {
            assert!(
                std::panic::catch_unwind(|| run(bytes)).is_ok(),
                "{} fails",
                path.display()
            );
        }
    }

    #[test]
    fn replays_the_voice_expression_corpus() {
        replay("voice_expression", voice_expression, 20);
    }

    #[test]
    fn replays_the_normalize_chunk_corpus() {
        replay("normalize_chunk", normalize_chunk, 20);
    }

    #[test]
    fn replays_the_phonemizer_entry_corpus() {
        replay("phonemizer_entry", phonemizer_entry, 20);
    }

    /// Runs `f` and says how long it took.
    fn timed(f: impl FnOnce()) -> Duration {
        let start = Instant::now();
        f();
        start.elapsed()
    }

    #[test]
    fn blend_bombs_are_linear() {
        // 100 000 terms, 100 000 nested parentheses, 100 000 unclosed ones: each is one linear
        // pass (the limit is generous for a shared, unoptimised CI machine; quadratic work on
        // these sizes takes minutes).
        let terms = vec!["af_heart(1.5)"; 100_000].join("+");
        let nested = format!("a{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let unclosed = "a(".repeat(100_000);
        for input in [&terms, &nested, &unclosed] {
            let took = timed(|| voice_expression(input.as_bytes()));
            assert!(
                took < Duration::from_secs(5),
                "{} bytes took {took:?}",
                input.len()
            );
        }
        // A parser that bounds the number of terms refuses the first; one that does not must
        // weigh them equally.
        if let Ok(blend) = VoiceBlend::parse(&terms) {
            assert_eq!(blend.terms().len(), 100_000);
            let c = blend.coefficients(Weighting::Normalized);
            assert!(c.iter().all(|&c| (c - 1e-5).abs() < 1e-9), "{:?}", &c[..3]);
        }
        assert!(VoiceBlend::parse(&nested).is_err());
        assert!(VoiceBlend::parse(&unclosed).is_err());
    }

    #[test]
    fn long_texts_chunk_and_phonemize_in_bounded_time() {
        // 8 KiB (twice the fuzzer's -max_len) of the shapes that are slowest: marks, brackets,
        // one long word, a digit run (read digit by digit: 40 000 characters), dotted numbers.
        // Without sentence boundaries the chunker re-counts the rest of the text per chunk and
        // level (quadratic in length / budget), which is why this is not 64 KiB.
        let shapes = [
            "a,".repeat(4_096),
            "(".repeat(8_192),
            "x".repeat(8_192),
            "9".repeat(8_192),
            "1.2.3 ".repeat(1_365),
        ];
        for text in &shapes {
            let mut data = vec![0x3f, 0x10];
            data.extend_from_slice(text.as_bytes());
            let took = timed(|| normalize_chunk(&data));
            assert!(
                took < Duration::from_secs(20),
                "normalize_chunk on {} bytes took {took:?}",
                text.len()
            );
            let took = timed(|| phonemizer_entry(text.as_bytes()));
            assert!(
                took < Duration::from_secs(20),
                "phonemizer_entry on {} bytes took {took:?}",
                text.len()
            );
        }
    }

    #[test]
    fn the_harnesses_check_what_they_claim() {
        voice_expression(b"af_heart(2)+jf_alpha(1)-jm_kumo(.5)");
        normalize_chunk(b"\x05\x03It costs $5.50 on 3/15/2024. Then\n\nmore words, and more words.");
        phonemizer_entry("Hello, (world)! «Ça» va? 123 İstanbul".as_bytes());
        let blend = VoiceBlend::parse("a(3)-b(1)").unwrap();
        assert_eq!(blend.coefficients(Weighting::Normalized), vec![0.75, -0.25]);
        assert_eq!(blend.coefficients(Weighting::Raw), vec![3.0, -1.0]);
    }
}
