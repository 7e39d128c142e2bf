//! Splitting long text into chunks that fit Kokoro's 510-token window.
//!
//! Kokoro reads at most 512 positions, BOS and EOS included, and the voice pack has 510 rows, so
//! one forward pass takes at most **510 phoneme tokens** (`docs/kokoro-model.md` §2, §7). A
//! "token" is one phoneme character that maps to a vocabulary id; the two boundary tokens are not
//! counted here. Peers crashed or truncated when a chunk passed the window (Kokoro-FastAPI #95,
//! TTS.cpp #32) or dereferenced an empty vector on an over-long clause; here no input can do
//! either.
//!
//! # Policy
//!
//! The text is cut only at whitespace or right after punctuation, and each chunk is the longest
//! prefix of the remaining text that ends at the best kind of boundary available and whose token
//! count, measured by the caller's [`TokenCounter`] on the exact chunk text, is at most the
//! budget. The waterfall, as in the reference `KPipeline` (`!.?…`, then `:;`, then `,—`):
//!
//! 1. **Paragraphs** (a blank line, i.e. two or more line breaks) are hard cuts: no chunk spans
//!    one. (The reference cuts at every `\n`; a single line break here is only a clause-level
//!    candidate, so hard-wrapped text is not chopped at every line.)
//! 2. **Sentences**: after a run of `. ! ? …` (and `。！？`), plus closing quotes or brackets,
//!    before whitespace or the end.
//! 3. **Strong clauses**: after `;` or `:` before whitespace.
//! 4. **Weak clauses**: after `,` before whitespace; after `—` or `–` (whitespace or not); after a
//!    spaced hyphen ` - `; at a single line break.
//! 5. **Words**: at any whitespace.
//! 6. **Hard split**: a single word longer than the budget is cut between characters (never
//!    before a combining mark) rather than dropped.
//!
//! A level is used only when no boundary of a stronger level fits: the splitter first takes as
//! many whole sentences as fit; if not even the first sentence fits, as many strong clauses of
//! that sentence as fit; and so on down.
//!
//! **First chunk.** The first chunk is at most one sentence and at most
//! [`ChunkOptions::first_chunk_tokens`] tokens (100 by default, about 2 s of CPU time at the
//! measured 22 ms per phoneme) so that audio starts quickly: the first sentence if it fits that
//! budget, else as many of its clauses as fit, else as many words, else characters. Later chunks
//! use the full [`ChunkOptions::max_tokens`].
//!
//! **Guarantees** (tested over generated inputs): every chunk's count is at most its budget;
//! chunks are non-empty, in order, non-overlapping, trimmed, and everything between them is
//! whitespace, so concatenating them gives the input back modulo whitespace at the seams. The one
//! way to exceed the budget is a single character whose own count exceeds it (impossible for
//! the real counter at 510, where one character yields a few phonemes at most): it is emitted
//! alone, marked [`Boundary::Hard`], rather than dropped.
//!
//! **Streaming.** [`Chunker`] is an iterator: boundary positions are found up front in one
//! linear pass (no counting, microseconds per kilobyte), and the token counter runs only when
//! the next chunk is requested, a few times per chunk (galloping then binary search over the
//! candidate boundaries). The backend can synthesize chunk 1 while chunk 2 is still unknown.
//!
//! **Joins.** Audio is joined later; each [`Chunk`] says at what kind of [`Boundary`] it ended
//! so the joiner can pick the pause (see [`Boundary::suggested_pause_ms`]), and carries its byte
//! range in the input for captions.

use std::ops::Range;

/// Kokoro's window in phoneme tokens, without BOS/EOS.
pub const MAX_TOKENS: usize = 510;

/// Default budget of the first chunk, for a quick first audio.
pub const FIRST_CHUNK_TOKENS: usize = 100;

/// Counts the tokens Kokoro would see for a piece of text, **without** the two boundary tokens.
///
/// The real implementation phonemizes and counts the characters that map to vocabulary ids.
/// Any `Fn(&str) -> usize` is a counter, which keeps tests free of espeak. The count of a
/// concatenation need not equal the sum of the parts: the splitter only ever trusts the count
/// of the exact chunk text.
pub trait TokenCounter {
    /// Token count of `text`.
    fn count_tokens(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize> TokenCounter for F {
    fn count_tokens(&self, text: &str) -> usize {
        self(text)
    }
}

/// Limits of the splitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens in any chunk; 0 is treated as 1. Default [`MAX_TOKENS`].
    pub max_tokens: usize,
    /// Most tokens in the first chunk, capped at `max_tokens`; 0 disables the short first chunk
    /// (the first chunk is then split like any other). Default [`FIRST_CHUNK_TOKENS`].
    pub first_chunk_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_tokens: MAX_TOKENS,
            first_chunk_tokens: FIRST_CHUNK_TOKENS,
        }
    }
}

/// Where a chunk ends, strongest first; tells the audio joiner what pause belongs after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// The end of the input: nothing follows.
    End,
    /// A blank line follows.
    Paragraph,
    /// The chunk ends with sentence punctuation.
    Sentence,
    /// The chunk ends at `; : , — –`, a spaced hyphen or a single line break.
    Clause,
    /// The chunk ends between two words of one clause.
    Word,
    /// The chunk ends inside a word (a word longer than the budget).
    Hard,
}

impl Boundary {
    /// A starting point for the silence to insert after a chunk, in milliseconds.
    ///
    /// Not tuned by listening yet. Kokoro renders the punctuation it sees (a chunk keeps its
    /// final `.` or `,`), and the reference inserts no gap at all, so these only add what the
    /// cut itself removes: nothing inside a clause, where a short crossfade is the right join.
    pub fn suggested_pause_ms(self) -> u32 {
        match self {
            Boundary::End | Boundary::Word | Boundary::Hard => 0,
            Boundary::Clause => 50,
            Boundary::Sentence => 100,
            Boundary::Paragraph => 300,
        }
    }
}

/// One piece of the input, ready for the phonemizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The chunk text, without leading or trailing whitespace.
    pub text: &'a str,
    /// Byte range of `text` in the input.
    pub range: Range<usize>,
    /// Token count of `text` as the counter measured it.
    pub tokens: usize,
    /// What ends this chunk.
    pub boundary: Boundary,
}

/// Splits all of `text` at once; see [`Chunker`] for the lazy form.
pub fn split_into_chunks<'a, C: TokenCounter>(
    text: &'a str,
    counter: C,
    options: ChunkOptions,
) -> Vec<Chunk<'a>> {
    Chunker::new(text, counter, options).collect()
}

/// Boundary strength, strongest first. Paragraph breaks and the end of text appear in every
/// level's list.
const SENTENCE: usize = 0;
const STRONG_CLAUSE: usize = 1;
const WEAK_CLAUSE: usize = 2;
const WORD: usize = 3;
const LEVELS: usize = 4;

/// Lazy splitter: an iterator of [`Chunk`]s, counting tokens only as chunks are requested.
#[derive(Debug)]
pub struct Chunker<'a, C> {
    text: &'a str,
    counter: C,
    options: ChunkOptions,
    /// Byte offsets where a chunk may end, per level; each list holds the boundaries of its own
    /// and all stronger levels, sorted.
    cuts: [Vec<usize>; LEVELS],
    /// Start offsets of paragraph breaks (runs of whitespace with two or more `\n`), sorted,
    /// ending with `text.len()`.
    paragraph_ends: Vec<usize>,
    /// Where the next chunk starts (may point at whitespace).
    pos: usize,
    first: bool,
}

impl<'a, C: TokenCounter> Chunker<'a, C> {
    /// Prepares to split `text`; finds all boundary positions now and counts nothing yet.
    pub fn new(text: &'a str, counter: C, options: ChunkOptions) -> Self {
        let (cuts, paragraph_ends) = find_boundaries(text);
        Self {
            text,
            counter,
            options,
            cuts,
            paragraph_ends,
            pos: 0,
            first: true,
        }
    }

    fn fits(&self, start: usize, end: usize, budget: usize) -> bool {
        self.counter.count_tokens(self.text[start..end].trim_end()) <= budget
    }

    /// Candidate ends in `(start, limit]` at `level`.
    fn candidates(&self, level: usize, start: usize, limit: usize) -> &[usize] {
        let list = &self.cuts[level];
        let from = list.partition_point(|&c| c <= start);
        let to = list.partition_point(|&c| c <= limit);
        &list[from..to.max(from)]
    }

    /// The end of the next chunk starting at `start` (a non-whitespace position), and its kind.
    fn next_end(&self, start: usize, budget: usize) -> (usize, Boundary) {
        let paragraph_end = self.paragraph_ends[self
            .paragraph_ends
            .partition_point(|&p| p <= start)
            .min(self.paragraph_ends.len() - 1)];
        let mut limit = paragraph_end;
        for level in 0..LEVELS {
            let mut candidates = self.candidates(level, start, limit);
            if candidates.is_empty() {
                continue;
            }
            if self.first && level == SENTENCE {
                candidates = &candidates[..1];
            }
            let taken = largest_fitting(candidates.len(), |k| self.fits(start, candidates[k - 1], budget));
            if taken > 0 {
                let end = candidates[taken - 1];
                let kind = if end == self.text.len() && self.text[end..].trim().is_empty() {
                    Boundary::End
                } else if end == paragraph_end {
                    Boundary::Paragraph
                } else {
                    match level {
                        SENTENCE => Boundary::Sentence,
                        STRONG_CLAUSE | WEAK_CLAUSE => self.clause_or_sentence(end),
                        _ => Boundary::Word,
                    }
                };
                return (end, kind);
            }
            // Not even the first unit of this level fits: look inside it.
            limit = candidates[0];
        }
        (self.hard_end(start, limit, budget), Boundary::Hard)
    }

    /// A clause-level cut that happens to sit at a sentence end (only the first chunk does
    /// this) is reported as a sentence.
    fn clause_or_sentence(&self, end: usize) -> Boundary {
        if self.cuts[SENTENCE].binary_search(&end).is_ok() {
            Boundary::Sentence
        } else {
            Boundary::Clause
        }
    }

    /// The longest character prefix of `start..limit` that fits, at least one character.
    fn hard_end(&self, start: usize, limit: usize, budget: usize) -> usize {
        let ends: Vec<usize> = self.text[start..limit]
            .char_indices()
            .map(|(i, c)| start + i + c.len_utf8())
            .filter(|&e| !self.text[e..].starts_with(is_combining))
            .collect();
        let taken = largest_fitting(ends.len(), |k| self.fits(start, ends[k - 1], budget));
        match (taken, ends.first()) {
            (0, Some(&one)) => one,
            (0, None) => limit,
            (k, _) => ends[k - 1],
        }
    }
}

impl<'a, C: TokenCounter> Iterator for Chunker<'a, C> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let rest = &self.text[self.pos..];
        let start = self.pos + (rest.len() - rest.trim_start().len());
        if start >= self.text.len() {
            self.pos = self.text.len();
            return None;
        }
        let max = self.options.max_tokens.max(1);
        let budget = match (self.first, self.options.first_chunk_tokens) {
            (true, 0) => max,
            (true, first) => first.min(max),
            (false, _) => max,
        };
        let (end, mut boundary) = self.next_end(start, budget);
        let text = self.text[start..end].trim_end();
        self.pos = end;
        self.first = false;
        if boundary != Boundary::End && self.text[end..].trim().is_empty() {
            boundary = Boundary::End;
        }
        Some(Chunk {
            text,
            range: start..start + text.len(),
            tokens: self.counter.count_tokens(text),
            boundary,
        })
    }
}

/// The largest `k` in `1..=n` with `fits(k)`, or 0 if `fits(1)` is false. Assumes `fits` is
/// mostly monotone (longer text, more tokens); whatever it returns was checked to fit.
/// Galloping then bisection: about 2·log2(k) calls.
fn largest_fitting(n: usize, mut fits: impl FnMut(usize) -> bool) -> usize {
    if n == 0 || !fits(1) {
        return 0;
    }
    let (mut good, mut step) = (1, 1);
    let mut bad = loop {
        let probe = good + step;
        if probe > n {
            break n + 1;
        }
        if fits(probe) {
            good = probe;
            step *= 2;
        } else {
            break probe;
        }
    };
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if fits(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

fn is_sentence_mark(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»')
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// One linear pass over `text`: the cut positions per level and the paragraph ends.
fn find_boundaries(text: &str) -> ([Vec<usize>; LEVELS], Vec<usize>) {
    let mut at_level: Vec<(usize, usize)> = Vec::new();
    let mut paragraph_ends = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |k: usize| chars.get(k).map_or(text.len(), |&(b, _)| b);
    let is_space_at = |k: usize| chars.get(k).is_none_or(|&(_, c)| c.is_whitespace());
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k].1;
        if c.is_whitespace() {
            // A whitespace run: a word boundary at its start; a paragraph end if it holds two
            // line breaks, a weak clause if one.
            let run_start = k;
            let mut newlines = 0;
            while k < chars.len() && chars[k].1.is_whitespace() {
                newlines += usize::from(chars[k].1 == '\n');
                k += 1;
            }
            let cut = byte_at(run_start);
            if run_start > 0 {
                match newlines {
                    0 => at_level.push((cut, WORD)),
                    1 => at_level.push((cut, WEAK_CLAUSE)),
                    _ => paragraph_ends.push(cut),
                }
            }
            continue;
        }
        let mut end = k + 1;
        let level = if is_sentence_mark(c) {
            while end < chars.len() && is_sentence_mark(chars[end].1) {
                end += 1;
            }
            Some(SENTENCE)
        } else if matches!(c, ';' | ':') {
            Some(STRONG_CLAUSE)
        } else if c == ',' {
            Some(WEAK_CLAUSE)
        } else {
            None
        };
        if let Some(level) = level {
            while end < chars.len() && is_closer(chars[end].1) {
                end += 1;
            }
            if is_space_at(end) && end < chars.len() {
                at_level.push((byte_at(end), level));
            }
            k = end;
            continue;
        }
        let spaced_hyphen = c == '-' && k > 0 && is_space_at(k - 1) && is_space_at(k + 1);
        if matches!(c, '—' | '–') || spaced_hyphen {
            at_level.push((byte_at(k + 1), WEAK_CLAUSE));
        }
        k += 1;
    }
    paragraph_ends.push(text.len());
    let mut cuts: [Vec<usize>; LEVELS] = Default::default();
    for (level, list) in cuts.iter_mut().enumerate() {
        list.extend(at_level.iter().filter(|&&(_, l)| l <= level).map(|&(b, _)| b));
        list.extend(paragraph_ends.iter().copied());
        list.sort_unstable();
        list.dedup();
    }
    (cuts, paragraph_ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn chars(text: &str) -> usize {
        text.chars().count()
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn options(max_tokens: usize, first_chunk_tokens: usize) -> ChunkOptions {
        ChunkOptions {
            max_tokens,
            first_chunk_tokens,
        }
    }

    fn texts<'a>(chunks: &[Chunk<'a>]) -> Vec<&'a str> {
        chunks.iter().map(|c| c.text).collect()
    }

    #[test]
    fn empty_and_blank_input_give_no_chunks() {
        assert!(split_into_chunks("", chars, ChunkOptions::default()).is_empty());
        assert!(split_into_chunks(" \n\t ", chars, ChunkOptions::default()).is_empty());
    }

    #[test]
    fn short_text_is_one_chunk() {
        let chunks = split_into_chunks("  Hello, world.  ", chars, ChunkOptions::default());
        assert_eq!(texts(&chunks), ["Hello, world."]);
        assert_eq!(chunks[0].range, 2..15);
        assert_eq!(chunks[0].tokens, 13);
        assert_eq!(chunks[0].boundary, Boundary::End);
    }

    #[test]
    fn whole_sentences_are_packed_up_to_the_limit() {
        let text = "One two three. Four five six. Seven eight. Nine ten eleven twelve.";
        let chunks = split_into_chunks(text, words, options(5, 0));
        assert_eq!(
            texts(&chunks),
            [
                "One two three.",
                "Four five six. Seven eight.",
                "Nine ten eleven twelve."
            ]
        );
        assert_eq!(chunks[0].boundary, Boundary::Sentence);
        assert_eq!(chunks[1].boundary, Boundary::Sentence);
        assert_eq!(chunks[2].boundary, Boundary::End);
    }

    #[test]
    fn first_chunk_is_one_sentence_within_its_own_budget() {
        let text = "Hi there. This is the second sentence. And a third one.";
        let chunks = split_into_chunks(text, words, options(100, 10));
        assert_eq!(
            texts(&chunks),
            ["Hi there.", "This is the second sentence. And a third one."]
        );
        // A first sentence over the first budget falls back to its clauses.
        let text = "Well, after a long day at work, I went home. Then I slept.";
        let chunks = split_into_chunks(text, words, options(100, 4));
        assert_eq!(
            texts(&chunks),
            ["Well,", "after a long day at work, I went home. Then I slept."]
        );
        assert_eq!(chunks[0].boundary, Boundary::Clause);
    }

    #[test]
    fn strong_clauses_before_weak_ones() {
        let text = "alpha beta, gamma delta; epsilon zeta, eta theta iota kappa.";
        let chunks = split_into_chunks(text, words, options(6, 0));
        assert_eq!(
            texts(&chunks),
            ["alpha beta, gamma delta;", "epsilon zeta, eta theta iota kappa."]
        );
        assert_eq!(chunks[0].boundary, Boundary::Clause);
    }

    #[test]
    fn clauses_then_words_then_characters() {
        let text = "aaa bbb ccc, ddd eee — fff ggg hhh iii";
        let chunks = split_into_chunks(text, words, options(3, 0));
        assert_eq!(
            texts(&chunks),
            ["aaa bbb ccc,", "ddd eee —", "fff ggg hhh", "iii"]
        );
        assert_eq!(chunks[2].boundary, Boundary::Word);

        let chunks = split_into_chunks("abcdefghij klm", chars, options(4, 0));
        assert_eq!(texts(&chunks), ["abcd", "efgh", "ij", "klm"]);
        assert_eq!(chunks[0].boundary, Boundary::Hard);
    }

    #[test]
    fn hard_split_never_separates_a_combining_mark() {
        let text = "e\u{301}e\u{301}e\u{301}";
        let chunks = split_into_chunks(text, |t: &str| t.len(), options(4, 0));
        assert_eq!(texts(&chunks), ["e\u{301}", "e\u{301}", "e\u{301}"]);
    }

    #[test]
    fn blank_lines_are_hard_cuts_and_single_line_breaks_are_clauses() {
        let text = "Title\n\nFirst line\nsecond line. End.";
        let chunks = split_into_chunks(text, chars, options(100, 0));
        assert_eq!(texts(&chunks), ["Title", "First line\nsecond line. End."]);
        assert_eq!(chunks[0].boundary, Boundary::Paragraph);
        let chunks = split_into_chunks("First line\nsecond line", chars, options(15, 0));
        assert_eq!(texts(&chunks), ["First line", "second line"]);
        assert_eq!(chunks[0].boundary, Boundary::Clause);
    }

    #[test]
    fn numbers_and_abbreviation_dots_are_not_sentence_ends() {
        let text = "It is 3.5 metres, i.e.long. Next.";
        let (cuts, _) = find_boundaries(text);
        let sentence_ends: Vec<&str> = cuts[SENTENCE].iter().map(|&c| &text[..c]).collect();
        assert_eq!(sentence_ends, ["It is 3.5 metres, i.e.long.", text]);
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        let text = "He said \"Stop!\" Then he left.";
        let chunks = split_into_chunks(text, words, options(3, 0));
        assert_eq!(texts(&chunks), ["He said \"Stop!\"", "Then he left."]);
    }

    #[test]
    fn default_limits_hold_on_a_long_text() {
        let sentence = "The old lighthouse stood on a rocky point, far from town; nobody came. ";
        let text = sentence.repeat(200);
        let chunks = split_into_chunks(&text, chars, ChunkOptions::default());
        assert!(chunks[0].tokens <= FIRST_CHUNK_TOKENS);
        assert_eq!(chunks[0].text, sentence.trim());
        for chunk in &chunks {
            assert!(chunk.tokens <= MAX_TOKENS);
            assert!(chunk.text.ends_with('.'), "{:?}", chunk.text);
        }
        assert!(chunks[1].tokens > MAX_TOKENS - sentence.len());
    }

    #[test]
    fn chunks_are_produced_lazily() {
        let calls = Cell::new(0usize);
        let counter = |text: &str| {
            calls.set(calls.get() + 1);
            text.len()
        };
        let text = "A short sentence here. ".repeat(10_000);
        let mut chunker = Chunker::new(&text, &counter, ChunkOptions::default());
        let first = chunker.next().expect("a first chunk");
        assert_eq!(first.text, "A short sentence here.");
        assert!(
            calls.get() <= 3,
            "{} counter calls for the first chunk",
            calls.get()
        );
        let second = chunker.next().expect("a second chunk");
        assert!(second.tokens <= MAX_TOKENS);
        assert!(calls.get() <= 30, "{} counter calls for two chunks", calls.get());
    }

    #[test]
    fn largest_fitting_finds_the_edge() {
        for n in 0..40 {
            for edge in 0..=n {
                let mut calls = 0;
                let got = largest_fitting(n, |k| {
                    calls += 1;
                    k <= edge
                });
                assert_eq!(got, edge, "n {n} edge {edge}");
                assert!(calls <= 2 * (usize::BITS - n.leading_zeros()) as usize + 2);
            }
        }
    }

    #[test]
    fn suggested_pauses_grow_with_the_boundary() {
        assert!(Boundary::Paragraph.suggested_pause_ms() > Boundary::Sentence.suggested_pause_ms());
        assert!(Boundary::Sentence.suggested_pause_ms() > Boundary::Clause.suggested_pause_ms());
        assert_eq!(Boundary::Hard.suggested_pause_ms(), 0);
    }

    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize
        }
    }

    const PIECES: &[&str] = &[
        "a",
        "word",
        "sentence",
        "é",
        "naïve",
        "日本語",
        "x\u{301}",
        "supercalifragilistic",
        "3.5",
        "e.g.",
        ".",
        ",",
        ";",
        ":",
        "!",
        "?",
        "…",
        "—",
        "–",
        "-",
        "\"",
        "”",
        ")",
    ];
    const GAPS: &[&str] = &[" ", " ", " ", " ", "", "\n", "\n\n", "  ", "\t", " \n \n "];

    fn random_text(rng: &mut Lcg) -> String {
        let mut text = String::new();
        for _ in 0..rng.next() % 80 {
            text.push_str(PIECES[rng.next() % PIECES.len()]);
            text.push_str(GAPS[rng.next() % GAPS.len()]);
        }
        text
    }

    /// Non-additive counter: characters, plus one per punctuation run, minus nothing for
    /// spaces; roughly what a phonemizer does to lengths.
    fn lumpy(text: &str) -> usize {
        let marks = text.chars().filter(|c| c.is_ascii_punctuation()).count();
        text.chars().filter(|c| !c.is_whitespace()).count() * 2 + marks + 1
    }

    /// Property: over many generated texts, limits and counters, no chunk exceeds its budget
    /// (except a lone character that alone exceeds it), and the chunks give the input back.
    #[test]
    fn never_exceeds_never_drops_over_generated_inputs() {
        let counters: [&dyn Fn(&str) -> usize; 3] = [&chars, &words, &lumpy];
        let mut rng = Lcg(7);
        for case in 0..3_000 {
            let text = random_text(&mut rng);
            let max = 1 + rng.next() % 60;
            let first = rng.next() % 30;
            let counter = counters[case % counters.len()];
            let chunks = split_into_chunks(&text, counter, options(max, first));
            let mut pos = 0;
            for (k, chunk) in chunks.iter().enumerate() {
                let budget = if k == 0 && first > 0 { first.min(max) } else { max };
                assert!(!chunk.text.is_empty());
                assert_eq!(chunk.text, chunk.text.trim());
                assert_eq!(&text[chunk.range.clone()], chunk.text);
                assert_eq!(chunk.tokens, counter(chunk.text));
                let lone_char = chunk.text.chars().filter(|c| !is_combining(*c)).count() == 1;
                assert!(
                    chunk.tokens <= budget || lone_char,
                    "case {case}: {chunk:?} over budget {budget} in {text:?}"
                );
                assert!(
                    text[pos..chunk.range.start].trim().is_empty(),
                    "case {case}: text dropped before {chunk:?} in {text:?}"
                );
                pos = chunk.range.end;
            }
            assert!(
                text[pos..].trim().is_empty(),
                "case {case}: tail dropped in {text:?}"
            );
            if let Some(last) = chunks.last() {
                assert_eq!(last.boundary, Boundary::End);
            }
            let joined: String = chunks.iter().flat_map(|c| c.text.split_whitespace()).collect();
            let original: String = text.split_whitespace().collect();
            assert_eq!(joined, original);
        }
    }
}
