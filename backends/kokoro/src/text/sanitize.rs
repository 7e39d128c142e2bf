//! What text may reach espeak-ng: control characters removed and pathological runs bounded.
//!
//! espeak-ng 1.51 is a C library with fixed-size buffers in its text path: long words, long runs
//! of punctuation or apostrophes and deep stacks of combining marks are where its known overflows
//! live (CVE-2023-49990…49994: `SetUpPhonemeTable`, `RemoveEnding`, `ReadClause`,
//! `TranslateWord`). [`sanitize_for_espeak`] runs on every piece of text right before it goes to
//! espeak (also inside the isolated worker, which is the second line of defence):
//!
//! * control characters — C0 (U+0000–U+001F, including NUL and espeak's embedded-command
//!   introducer U+0001), DEL and C1 (U+0080–U+009F) — become a space;
//! * a run of one punctuation or symbol character longer than [`MAX_SAME_RUN`] is cut to that
//!   length (`!!!!!!` → `!!!`), and a run of mixed punctuation and symbols longer than
//!   [`MAX_SYMBOL_RUN`] is cut there: repeated punctuation is not speech;
//! * a word (a run without whitespace) with more than [`MAX_APOSTROPHES`] apostrophes keeps the
//!   first ones and has the others replaced by a space, so `s's's's…` becomes `s's's's s s…`:
//!   every letter stays;
//! * a word longer than [`MAX_WORD_CHARS`] characters is cut into pieces of that length with a
//!   space between them (no letter is dropped);
//! * a base character keeps at most [`MAX_COMBINING`] combining marks; further marks are dropped
//!   (they cannot be pronounced and only exist to overflow buffers).
//!
//! Everything else is passed on unchanged, so ordinary text (every phoneme fixture) is untouched.

use std::borrow::Cow;

use unicode_normalization::char::is_combining_mark;

/// Longest run of one repeated punctuation or symbol character.
pub const MAX_SAME_RUN: usize = 3;
/// Longest run of punctuation and symbol characters of any mix.
pub const MAX_SYMBOL_RUN: usize = 8;
/// Apostrophes one word may keep.
pub const MAX_APOSTROPHES: usize = 3;
/// Longest word, in characters, before it is cut with spaces.
pub const MAX_WORD_CHARS: usize = 64;
/// Combining marks one base character may carry.
pub const MAX_COMBINING: usize = 4;

/// C0, DEL and C1 controls.
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{b4}')
}

/// Punctuation and symbols: neither a letter, a digit, a combining mark nor whitespace.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !is_combining_mark(c) && !is_apostrophe(c)
}

/// Bounds `text` for espeak-ng (see the module docs). Borrowed when nothing had to change.
pub fn sanitize_for_espeak(text: &str) -> Cow<'_, str> {
    let out = bounded(text);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_chars = 0usize;
    let mut apostrophes = 0usize;
    let mut combining = 0usize;
    let mut symbol_run = 0usize;
    let mut same_run = 0usize;
    let mut last: Option<char> = None;
    for c in text.chars() {
        let c = if is_control(c) { ' ' } else { c };
        if c.is_whitespace() {
            word_chars = 0;
            apostrophes = 0;
            combining = 0;
            symbol_run = 0;
            same_run = 0;
            last = Some(c);
            out.push(c);
            continue;
        }
        if is_combining_mark(c) {
            combining += 1;
            if combining > MAX_COMBINING {
                continue;
            }
            out.push(c);
            continue;
        }
        if is_symbol(c) {
            same_run = if last == Some(c) { same_run + 1 } else { 1 };
            symbol_run += 1;
            if same_run > MAX_SAME_RUN || symbol_run > MAX_SYMBOL_RUN {
                // Dropped: marks after it still count against the last kept character.
                continue;
            }
        } else {
            symbol_run = 0;
            same_run = 0;
        }
        combining = 0;
        last = Some(c);
        if is_apostrophe(c) {
            apostrophes += 1;
            if apostrophes > MAX_APOSTROPHES {
                out.push(' ');
                word_chars = 0;
                apostrophes = 0;
                continue;
            }
        }
        if word_chars == MAX_WORD_CHARS {
            out.push(' ');
            word_chars = 0;
            apostrophes = usize::from(is_apostrophe(c));
        }
        word_chars += 1;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(s: &str) -> String {
        s.chars().filter(|c| c.is_alphanumeric()).collect()
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "Hello there, world! It's 3 o'clock.",
            "¿Qué tal? «Très bien», merci…",
            "नमस्ते दुनिया",
            "こんにちは、世界。",
            "rock 'n' roll -- well...",
            "Tiếng Việt có dấu",
        ] {
            assert!(matches!(sanitize_for_espeak(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn controls_become_spaces() {
        assert_eq!(
            sanitize_for_espeak("a\u{0}b\u{1}c\u{1b}[31md\u{7f}e\u{85}f\tg\nh"),
            "a b c [31md e f g h"
        );
    }

    #[test]
    fn apostrophe_runs_keep_every_letter() {
        let text = "s'".repeat(1500);
        let out = sanitize_for_espeak(&text);
        assert_eq!(letters(&out), letters(&text));
        for word in out.split_whitespace() {
            assert!(
                word.chars().filter(|&c| is_apostrophe(c)).count() <= MAX_APOSTROPHES,
                "{word}"
            );
            assert!(word.chars().count() <= MAX_WORD_CHARS, "{word}");
        }
    }

    #[test]
    fn long_words_are_cut_not_dropped() {
        let text = "x".repeat(1000);
        let out = sanitize_for_espeak(&text);
        assert_eq!(letters(&out), text);
        assert!(out.split(' ').all(|w| w.chars().count() <= MAX_WORD_CHARS));
        assert_eq!(out.split(' ').count(), 1000usize.div_ceil(MAX_WORD_CHARS));
    }

    #[test]
    fn punctuation_runs_are_bounded() {
        assert_eq!(sanitize_for_espeak("wow!!!!!!!!"), "wow!!!");
        assert_eq!(sanitize_for_espeak("so......."), "so...");
        assert_eq!(sanitize_for_espeak("what?!?!?!?!?!?!?!"), "what?!?!?!?!");
        assert_eq!(sanitize_for_espeak(&"-".repeat(5000)), "---");
        assert_eq!(sanitize_for_espeak("a!!!!! b!!!!!"), "a!!! b!!!");
    }

    #[test]
    fn combining_stacks_are_bounded() {
        let zalgo = format!("a{}b", "\u{301}".repeat(500));
        let out = sanitize_for_espeak(&zalgo);
        assert_eq!(out, format!("a{}b", "\u{301}".repeat(MAX_COMBINING)));
    }

    #[test]
    fn sanitizing_is_idempotent() {
        for text in [
            "s'".repeat(300),
            "x".repeat(200),
            format!("{}{}", "!?".repeat(40), "\u{300}".repeat(40)),
            "a\u{0}''''''''b".to_owned(),
            // Found by fuzzing: a dropped mark must not reset the combining count.
            "!!!\u{301}\u{301}\u{301}\u{301}!\u{301}".to_owned(),
        ] {
            let once = sanitize_for_espeak(&text).into_owned();
            assert_eq!(sanitize_for_espeak(&once), once.as_str());
        }
    }
}
