//! Text → Kokoro phoneme string, through espeak-ng and misaki's espeak post-processing.
//!
//! What Kokoro-82M was trained on is misaki's output (`docs/phonemizer.md` §1). For es/fr/hi/it/
//! pt-br that is misaki's `EspeakG2P`; for English it is misaki's lexicon, whose phoneme set an
//! espeak-only phonemizer reaches best through misaki's `EspeakFallback` (the E2M table). This
//! module reproduces both exactly as `fixtures/phonemes/README.md` specifies them (espeak-ng 1.51,
//! misaki 0.9.4, phonemizer-fork 3.3.2):
//!
//! 1. split the text at punctuation marks, keeping each run of marks with its whitespace
//!    ([`split_marks`]);
//! 2. phonemize each piece with espeak-ng, tie `^`, clause by clause ([`clean_chunk`]);
//! 3. put the marks back ([`restore_marks`]);
//! 4. map espeak's IPA to misaki's symbols ([`misaki_g2p`] or [`english_fallback`]).
//!
//! There is no text normalisation here: digits, currency and abbreviations go to espeak as typed.
//! Steps 1–4 are pure and take the espeak call as a closure ([`phonemize_with`]), so the fixture
//! tests can also replay recorded espeak output.

use std::borrow::Cow;

use tts_espeak_ng::worker::Supervisor;
use tts_espeak_ng::{EspeakConfig, EspeakError, PhonemeMode, Phonemizer as Espeak};

use super::sanitize::sanitize_for_espeak;

/// The espeak mode misaki ends up with: IPA, tie `^` inside multi-letter phonemes (`0x5E82`).
pub const ESPEAK_MODE: PhonemeMode = PhonemeMode::ipa_with_tie('^');

/// The 21 punctuation marks phonemizer preserves (`;:,.!?¡¿—…"«»“”(){}[]`).
pub const MARKS: [char; 21] = [
    ';', ':', ',', '.', '!', '?', '¡', '¿', '—', '…', '"', '«', '»', '“', '”', '(', ')', '{', '}', '[', ']',
];

/// Kokoro's languages, selected by the first letter of a voice name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// `a`: American English.
    AmericanEnglish,
    /// `b`: British English.
    BritishEnglish,
    /// `e`: Spanish.
    Spanish,
    /// `f`: French.
    French,
    /// `h`: Hindi.
    Hindi,
    /// `i`: Italian.
    Italian,
    /// `j`: Japanese. Kokoro was trained on misaki's pyopenjtalk-based G2P, not espeak.
    Japanese,
    /// `p`: Brazilian Portuguese.
    BrazilianPortuguese,
    /// `z`: Mandarin. Kokoro was trained on misaki's own G2P, not espeak.
    Mandarin,
}

impl Language {
    /// Every language, in voice-letter order.
    pub const ALL: [Language; 9] = [
        Language::AmericanEnglish,
        Language::BritishEnglish,
        Language::Spanish,
        Language::French,
        Language::Hindi,
        Language::Italian,
        Language::Japanese,
        Language::BrazilianPortuguese,
        Language::Mandarin,
    ];

    /// The language of a Kokoro voice (`af_heart` → American English, `jf_alpha` → Japanese).
    /// Unknown or missing first letters give American English, as TTS.cpp and kokoro do.
    pub fn from_voice_name(voice: &str) -> Language {
        voice
            .chars()
            .next()
            .and_then(Language::from_letter)
            .unwrap_or(Language::AmericanEnglish)
    }

    /// The language of a Kokoro lang code letter (`a`, `b`, `e`, `f`, `h`, `i`, `j`, `p`, `z`).
    pub fn from_letter(letter: char) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.letter() == letter)
    }

    /// Parses a Kokoro letter (`a`), a language code (`en-us`, `fr-fr`, `pt-br`, `es`, …) or the
    /// espeak voice identifier of a language (`gmw/en-US`), case-insensitively.
    pub fn parse(code: &str) -> Option<Language> {
        let lower = code.trim().to_ascii_lowercase();
        let mut chars = lower.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Language::from_letter(c);
        }
        let by_name = match lower.as_str() {
            "en-us" | "en_us" | "en" | "american" => Some(Language::AmericanEnglish),
            "en-gb" | "en_gb" | "british" => Some(Language::BritishEnglish),
            "es" | "spanish" => Some(Language::Spanish),
            "fr" | "fr-fr" | "fr_fr" | "french" => Some(Language::French),
            "hi" | "hindi" => Some(Language::Hindi),
            "it" | "italian" => Some(Language::Italian),
            "ja" | "jp" | "japanese" => Some(Language::Japanese),
            "pt" | "pt-br" | "pt_br" | "portuguese" => Some(Language::BrazilianPortuguese),
            "zh" | "cmn" | "mandarin" => Some(Language::Mandarin),
            _ => None,
        };
        by_name.or_else(|| {
            Language::ALL
                .into_iter()
                .find(|l| l.espeak_voice().eq_ignore_ascii_case(&lower))
        })
    }

    /// Kokoro's one-letter lang code, also the first letter of the language's voices.
    pub fn letter(self) -> char {
        match self {
            Language::AmericanEnglish => 'a',
            Language::BritishEnglish => 'b',
            Language::Spanish => 'e',
            Language::French => 'f',
            Language::Hindi => 'h',
            Language::Italian => 'i',
            Language::Japanese => 'j',
            Language::BrazilianPortuguese => 'p',
            Language::Mandarin => 'z',
        }
    }

    /// The language code the fixtures and misaki use (`en-us`, `fr-fr`, …).
    pub fn code(self) -> &'static str {
        match self {
            Language::AmericanEnglish => "en-us",
            Language::BritishEnglish => "en-gb",
            Language::Spanish => "es",
            Language::French => "fr-fr",
            Language::Hindi => "hi",
            Language::Italian => "it",
            Language::Japanese => "ja",
            Language::BrazilianPortuguese => "pt-br",
            Language::Mandarin => "cmn",
        }
    }

    /// The voice identifier for `espeak_SetVoiceByName`: the first voice espeak 1.51 lists for
    /// the language, what phonemizer selects. (espeak 1.51 rejects misaki's `en-gb` and `fr-fr`.)
    pub fn espeak_voice(self) -> &'static str {
        match self {
            Language::AmericanEnglish => "gmw/en-US",
            Language::BritishEnglish => "gmw/en",
            Language::Spanish => "roa/es",
            Language::French => "roa/fr",
            Language::Hindi => "inc/hi",
            Language::Italian => "roa/it",
            Language::Japanese => "jpx/ja",
            Language::BrazilianPortuguese => "roa/pt-BR",
            Language::Mandarin => "sit/cmn",
        }
    }

    /// The post-processing closest to what Kokoro was trained on: the E2M fallback table for
    /// English, `EspeakG2P`'s table for everything else.
    pub fn default_mapping(self) -> Mapping {
        match self {
            Language::AmericanEnglish => Mapping::EnglishFallback { british: false },
            Language::BritishEnglish => Mapping::EnglishFallback { british: true },
            _ => Mapping::Misaki,
        }
    }

    /// Whether Kokoro's reference pipeline phonemizes this language with espeak at all. For
    /// Japanese and Mandarin it does not, so espeak output is only an approximation.
    pub fn reference_uses_espeak(self) -> bool {
        !matches!(self, Language::Japanese | Language::Mandarin)
    }
}

/// Which misaki post-processing turns espeak's IPA into Kokoro phonemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// misaki `EspeakG2P` (es/fr/hi/it/pt-br; the fixtures' `phonemes` field): brackets protected
    /// as `«»`, language flags removed, ties mapped to single letters, nothing else touched.
    Misaki,
    /// misaki `EspeakFallback` (English; the fixtures' `fallback_phonemes` field): language flags
    /// kept, then the E2M table and the US or GB rules.
    EnglishFallback {
        /// `en-gb` rules instead of `en-us`.
        british: bool,
    },
}

/// Errors of [`KokoroPhonemizer::phonemize`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhonemizeError {
    /// espeak-ng failed (initialisation, voice, or a call).
    #[error(transparent)]
    Espeak(#[from] EspeakError),
}

/// One piece of text sent to espeak and what espeak returned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakChunk {
    /// The text between punctuation marks, as sent to espeak.
    pub text: String,
    /// The non-empty results of successive `espeak_TextToPhonemes` calls (one per clause).
    pub clauses: Vec<String>,
}

/// The result of phonemizing one text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Phonemized {
    /// What went to espeak, piece by piece.
    pub chunks: Vec<EspeakChunk>,
    /// espeak's IPA with the marks restored, before the misaki mapping (the fixtures'
    /// `espeak_ipa` / `fallback_espeak_ipa`). `None` for empty text, where phonemizer returns
    /// nothing.
    pub espeak_ipa: Option<String>,
    /// The Kokoro phoneme string (one token per character; characters outside the vocabulary
    /// are dropped at tokenization).
    pub phonemes: String,
}

/// Phonemizes text for one language through the process's espeak-ng.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KokoroPhonemizer {
    espeak_voice: String,
    mapping: Mapping,
    espeak: EspeakConfig,
}

impl KokoroPhonemizer {
    /// The phonemizer for `language`: its espeak voice and default mapping.
    pub fn new(language: Language) -> KokoroPhonemizer {
        KokoroPhonemizer {
            espeak_voice: language.espeak_voice().to_owned(),
            mapping: language.default_mapping(),
            espeak: EspeakConfig::default(),
        }
    }

    /// A phonemizer for any espeak voice identifier (`gmw/de`) with the given mapping.
    pub fn from_espeak_voice(voice: impl Into<String>, mapping: Mapping) -> KokoroPhonemizer {
        KokoroPhonemizer {
            espeak_voice: voice.into(),
            mapping,
            espeak: EspeakConfig::default(),
        }
    }

    /// Uses this espeak voice identifier instead of the language's (`--espeak-voice-id`).
    #[must_use]
    pub fn with_espeak_voice(mut self, voice: impl Into<String>) -> KokoroPhonemizer {
        self.espeak_voice = voice.into();
        self
    }

    /// Uses this post-processing instead of the language's default.
    #[must_use]
    pub fn with_mapping(mut self, mapping: Mapping) -> KokoroPhonemizer {
        self.mapping = mapping;
        self
    }

    /// Initialises espeak-ng with this configuration if it is not yet initialised.
    #[must_use]
    pub fn with_espeak_config(mut self, config: EspeakConfig) -> KokoroPhonemizer {
        self.espeak = config;
        self
    }

    /// The espeak voice identifier in use.
    pub fn espeak_voice(&self) -> &str {
        &self.espeak_voice
    }

    /// The post-processing in use.
    pub fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// Phonemizes `text`. Holds the process-wide espeak lock for the whole text (voice selection
    /// and every chunk), so concurrent callers with other voices cannot interleave.
    ///
    /// # Errors
    ///
    /// [`PhonemizeError::Espeak`] if espeak cannot be initialised, does not know the voice, or
    /// rejects the text (a NUL character).
    pub fn phonemize(&self, text: &str) -> Result<Phonemized, PhonemizeError> {
        let mut espeak = Espeak::lock(&self.espeak)?;
        espeak.set_voice(&self.espeak_voice)?;
        self.phonemize_via(text, |piece| espeak.text_to_phonemes(piece, ESPEAK_MODE))
    }

    /// Phonemizes `text` through a supervised espeak-ng worker process instead of this
    /// process's espeak-ng ([`tts_espeak_ng::worker`]): a crash or hang inside espeak costs this
    /// call, not the caller's process.
    ///
    /// # Errors
    ///
    /// As [`KokoroPhonemizer::phonemize`], plus the worker's crash, time-out and start errors.
    pub fn phonemize_in(&self, worker: &mut Supervisor, text: &str) -> Result<Phonemized, PhonemizeError> {
        let voice = self.espeak_voice.as_str();
        self.phonemize_via(text, |piece| worker.phonemize(voice, piece, ESPEAK_MODE))
    }

    /// The pipeline over any espeak call; every piece is bounded by [`sanitize_for_espeak`]
    /// right before it goes to espeak.
    fn phonemize_via<F>(&self, text: &str, mut espeak: F) -> Result<Phonemized, PhonemizeError>
    where
        F: FnMut(&str) -> Result<Vec<String>, EspeakError>,
    {
        let phonemized = phonemize_with(text, self.mapping, |piece| espeak(&sanitize_for_espeak(piece)))?;
        Ok(phonemized)
    }
}

/// The whole pipeline with `espeak` standing in for `espeak_TextToPhonemes`: it gets one chunk
/// and returns its clauses (empty ones are skipped here).
///
/// # Errors
///
/// Whatever `espeak` returns.
pub fn phonemize_with<E, F>(text: &str, mapping: Mapping, mut espeak: F) -> Result<Phonemized, E>
where
    F: FnMut(&str) -> Result<Vec<String>, E>,
{
    // EspeakG2P protects brackets from espeak's language flags: «» become curly quotes, () «».
    let input: Cow<'_, str> = match mapping {
        Mapping::Misaki => Cow::Owned(
            text.replace('«', "“")
                .replace('»', "”")
                .replace('(', "«")
                .replace(')', "»"),
        ),
        Mapping::EnglishFallback { .. } => Cow::Borrowed(text),
    };
    let remove_flags = mapping == Mapping::Misaki;
    let (espeak_ipa, chunks) = match split_marks(&input) {
        Split::Empty => (None, Vec::new()),
        Split::OnlyMarks => (Some(input.into_owned()), Vec::new()),
        Split::Parts { chunks, marks } => {
            let mut recorded = Vec::with_capacity(chunks.len());
            let mut outputs = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                let clauses: Vec<String> = espeak(chunk)?.into_iter().filter(|c| !c.is_empty()).collect();
                outputs.push(clean_chunk(&clauses, remove_flags));
                recorded.push(EspeakChunk {
                    text: chunk.to_owned(),
                    clauses,
                });
            }
            (Some(restore_marks(outputs, &marks)), recorded)
        }
    };
    let phonemes = match (&espeak_ipa, mapping) {
        (None, _) => String::new(),
        (Some(ipa), Mapping::Misaki) => misaki_g2p(ipa),
        (Some(ipa), Mapping::EnglishFallback { british }) => english_fallback(ipa, british),
    };
    Ok(Phonemized {
        chunks,
        espeak_ipa,
        phonemes,
    })
}

/// Python's `str.isspace()` (and `\s` in `re`): Unicode White_Space plus U+001C–U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn is_mark(c: char) -> bool {
    MARKS.contains(&c)
}

/// Where a run of marks sits in the text (phonemizer's `_MarkIndex.position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkPosition {
    /// Starts the text: prefixed to the first chunk.
    Begin,
    /// Between two chunks.
    Inner,
    /// Ends the text: appended, followed by a space.
    End,
}

/// A maximal run of marks with its surrounding whitespace, verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark<'a> {
    /// The matched text, e.g. `", "` or `" ?!\n"`.
    pub text: &'a str,
    /// Where it sits.
    pub position: MarkPosition,
}

/// A text cut at its punctuation marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split<'a> {
    /// Empty text: nothing to phonemize, no output.
    Empty,
    /// The text is one run of marks (and whitespace): it is its own output.
    OnlyMarks,
    /// The pieces for espeak and the marks between them.
    Parts {
        /// The non-empty pieces between marks, in order.
        chunks: Vec<&'a str>,
        /// The mark runs, in order.
        marks: Vec<Mark<'a>>,
    },
}

/// Finds every maximal match of `(\s*[MARKS]+\s*)+` and cuts the text there (phonemizer's
/// `Punctuation.preserve`).
pub fn split_marks(text: &str) -> Split<'_> {
    if text.is_empty() {
        return Split::Empty;
    }
    let spans = mark_spans(text);
    if let [(0, end)] = spans.as_slice() {
        if *end == text.len() {
            return Split::OnlyMarks;
        }
    }
    let mut chunks = Vec::new();
    let mut marks = Vec::new();
    let mut at = 0;
    let last = spans.len().saturating_sub(1);
    for (i, &(start, end)) in spans.iter().enumerate() {
        let position = if i == 0 && start == 0 {
            MarkPosition::Begin
        } else if i == last && end == text.len() {
            MarkPosition::End
        } else {
            MarkPosition::Inner
        };
        if start > at {
            chunks.push(&text[at..start]);
        }
        marks.push(Mark {
            text: &text[start..end],
            position,
        });
        at = end;
    }
    if at < text.len() {
        chunks.push(&text[at..]);
    }
    Split::Parts { chunks, marks }
}

/// Byte ranges of the maximal matches of `(\s*[MARKS]+\s*)+`, leftmost first.
fn mark_spans(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // One or more `\s*[MARKS]+\s*` groups starting at i.
        let mut j = i;
        loop {
            let mut k = j;
            while k < chars.len() && is_py_space(chars[k].1) {
                k += 1;
            }
            if k < chars.len() && is_mark(chars[k].1) {
                while k < chars.len() && is_mark(chars[k].1) {
                    k += 1;
                }
                while k < chars.len() && is_py_space(chars[k].1) {
                    k += 1;
                }
                j = k;
            } else {
                break;
            }
        }
        if j > i {
            spans.push((byte_at(i), byte_at(j)));
            i = j;
        } else {
            i += 1;
        }
    }
    spans
}

/// One chunk's espeak clauses → phonemizer's per-line output (`EspeakBackend._postprocess_line`):
/// clauses joined with a space, stripped, newlines to spaces, `"  "` → `" "` once, `_` runs
/// collapsed, language flags `(en)` removed if asked; an empty result stays empty, otherwise every
/// word is followed by one space.
pub fn clean_chunk(clauses: &[String], remove_flags: bool) -> String {
    let joined = clauses.join(" ");
    let mut line = py_strip(&joined).replace('\n', " ").replace("  ", " ");
    line = collapse_underscores(&line).replace("_ ", " ");
    if remove_flags {
        line = remove_language_flags(&line);
    }
    if line.is_empty() {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 1);
    for word in line.split(' ') {
        out.push_str(py_strip(word));
        out.push(' ');
    }
    out
}

fn collapse_underscores(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_underscore = false;
    for c in s.chars() {
        if c == '_' && prev_underscore {
            continue;
        }
        prev_underscore = c == '_';
        out.push(c);
    }
    out
}

/// Deletes every match of the lazy regex `\(.+?\)` (espeak's language-switch flags such as
/// `(^e^n)`), scanning left to right like `re.sub`.
pub fn remove_language_flags(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '(' {
            // `.+?` needs at least one character (`.` excludes only `\n`) before the `)`.
            let close = (i + 2..chars.len())
                .take_while(|&j| chars[j - 1] != '\n')
                .find(|&j| chars[j] == ')');
            if let Some(j) = close {
                i = j + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Puts the marks back between the chunk outputs (phonemizer's `Punctuation.restore` for one
/// line): before each mark one trailing space is removed from the current output; a begin mark is
/// prefixed to it, an inner mark joins it to the next output, an end mark is appended with a space
/// unless it already ends in one. Outputs left over get a trailing space if they lack one; marks
/// left over (no output left) are appended as they are.
pub fn restore_marks(outputs: Vec<String>, marks: &[Mark<'_>]) -> String {
    let mut text: std::collections::VecDeque<String> = outputs.into();
    let mut marks = marks.iter();
    let mut done = String::new();
    loop {
        let Some(mut current) = text.pop_front() else {
            done.extend(marks.map(|m| m.text));
            return done;
        };
        let Some(mark) = marks.next() else {
            for mut line in std::iter::once(current).chain(text) {
                if !line.ends_with(' ') {
                    line.push(' ');
                }
                done.push_str(&line);
            }
            return done;
        };
        if current.ends_with(' ') {
            current.pop();
        }
        match mark.position {
            MarkPosition::Begin => text.push_front(format!("{}{current}", mark.text)),
            MarkPosition::Inner => {
                let next = text.pop_front().unwrap_or_default();
                text.push_front(format!("{current}{}{next}", mark.text));
            }
            MarkPosition::End => {
                done.push_str(&current);
                done.push_str(mark.text);
                if !mark.text.ends_with(' ') {
                    done.push(' ');
                }
            }
        }
    }
}

/// misaki `EspeakG2P`'s tie table, in misaki's order (sorted by key).
const G2P_TIES: [(&str, &str); 11] = [
    ("a^ɪ", "I"),
    ("a^ʊ", "W"),
    ("d^z", "ʣ"),
    ("d^ʒ", "ʤ"),
    ("e^ɪ", "A"),
    ("o^ʊ", "O"),
    ("s^s", "S"),
    ("t^s", "ʦ"),
    ("t^ʃ", "ʧ"),
    ("ɔ^ɪ", "Y"),
    ("ə^ʊ", "Q"),
];

/// misaki `EspeakG2P`'s mapping of restored espeak IPA: strip, ties to single letters, drop the
/// remaining `^` and every `-`, `«»` back to `()`. Unknown symbols pass through.
pub fn misaki_g2p(espeak_ipa: &str) -> String {
    let mut ps = py_strip(espeak_ipa).to_owned();
    for (from, to) in G2P_TIES {
        ps = ps.replace(from, to);
    }
    ps.replace(['^', '-'], "").replace('«', "(").replace('»', ")")
}

/// misaki `EspeakFallback`'s E2M table, longest key first (stable for equal lengths).
const E2M: [(&str, &str); 20] = [
    ("ʔˌn\u{329}", "ʔn"),
    ("ʔn\u{329}", "ʔn"),
    ("a^ɪ", "I"),
    ("a^ʊ", "W"),
    ("d^ʒ", "ʤ"),
    ("e^ɪ", "A"),
    ("t^ʃ", "ʧ"),
    ("ɔ^ɪ", "Y"),
    ("ə^l", "ᵊl"),
    ("ʲo", "jo"),
    ("ʲə", "jə"),
    ("e", "A"),
    ("ʲ", ""),
    ("ɚ", "əɹ"),
    ("r", "ɹ"),
    ("x", "k"),
    ("ç", "k"),
    ("ɐ", "ə"),
    ("ɬ", "l"),
    ("\u{303}", ""),
];

/// misaki `EspeakFallback` (Kokoro v1.0, espeak < 1.52) on restored espeak IPA: strip, E2M,
/// syllabic consonants to `ᵊX`, the US or GB rules, `o`→`ɔ`, flap `ɾ`→`T`, `ʔ`→`t`, drop `^`.
pub fn english_fallback(espeak_ipa: &str, british: bool) -> String {
    let mut ps = py_strip(espeak_ipa).to_owned();
    for (from, to) in E2M {
        ps = ps.replace(from, to);
    }
    ps = syllabic_to_schwa(&ps);
    if british {
        // `e` → `A` already ran, so `e^ə` never matches: misaki gives `hˈAə` for "hair".
        ps = ps.replace("e^ə", "ɛː").replace("iə", "ɪə").replace("ə^ʊ", "Q");
    } else {
        ps = ps
            .replace("o^ʊ", "O")
            .replace("ɜːɹ", "ɜɹ")
            .replace("ɜː", "ɜɹ")
            .replace("ɪə", "iə")
            .replace('ː', "");
    }
    ps.replace('o', "ɔ")
        .replace('ɾ', "T")
        .replace('ʔ', "t")
        .replace('^', "")
}

/// `re.sub(r'(\S)\u0329', r'ᵊ\1', s)`, then every remaining U+0329 deleted.
fn syllabic_to_schwa(s: &str) -> String {
    const SYLLABIC: char = '\u{329}';
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !is_py_space(c) && chars.get(i + 1) == Some(&SYLLABIC) {
            out.push('ᵊ');
            out.push(c);
            i += 2;
            continue;
        }
        if c != SYLLABIC {
            out.push(c);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(split: &Split<'a>) -> (Vec<&'a str>, Vec<(&'a str, MarkPosition)>) {
        match split {
            Split::Parts { chunks, marks } => (
                chunks.clone(),
                marks.iter().map(|m| (m.text, m.position)).collect(),
            ),
            other => panic!("expected parts, got {other:?}"),
        }
    }

    #[test]
    fn split_keeps_whitespace_around_marks() {
        use MarkPosition::*;
        let s = split_marks("Hello ,  world  !");
        assert_eq!(
            parts(&s),
            (vec!["Hello", "world"], vec![(" ,  ", Inner), ("  !", End)])
        );
        let s = split_marks("«Hi», she said… ok");
        assert_eq!(
            parts(&s),
            (
                vec!["Hi", "she said", "ok"],
                vec![("«", Begin), ("», ", Inner), ("… ", Inner)]
            )
        );
        assert_eq!(split_marks("?!"), Split::OnlyMarks);
        assert_eq!(split_marks(" … "), Split::OnlyMarks);
        assert_eq!(split_marks(""), Split::Empty);
        assert_eq!(parts(&split_marks("   ")), (vec!["   "], vec![]));
        // `-`, `'` and `/` are not marks.
        assert_eq!(parts(&split_marks("a-b/c's")), (vec!["a-b/c's"], vec![]));
    }

    #[test]
    fn chunk_cleanup_and_flags() {
        let c = |v: &[&str], flags| clean_chunk(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), flags);
        assert_eq!(c(&["həlˈo^ʊ", "wˈɜːld"], true), "həlˈo^ʊ wˈɜːld ");
        assert_eq!(c(&["lə (^e^n)fˈʊtbɔːl(^f^r)"], true), "lə fˈʊtbɔːl ");
        assert_eq!(c(&["lə (^e^n)fˈʊtbɔːl(^f^r)"], false), "lə (^e^n)fˈʊtbɔːl(^f^r) ");
        assert_eq!(c(&[], true), "");
        assert_eq!(c(&["(^e^n)"], true), "");
        assert_eq!(remove_language_flags("a()b) (x"), "a (x");
    }

    #[test]
    fn restore_matches_phonemizer() {
        use MarkPosition::*;
        let m = |text, position| Mark { text, position };
        assert_eq!(
            restore_marks(
                vec!["həlˈo^ʊ ".into(), "wˈɜːld ".into()],
                &[m(" ,  ", Inner), m("  !", End)]
            ),
            "həlˈo^ʊ ,  wˈɜːld  ! "
        );
        assert_eq!(
            restore_marks(vec!["ˈo^ʊ ".into()], &[m("«", Begin), m("»", End)]),
            "«ˈo^ʊ» "
        );
        assert_eq!(restore_marks(vec!["a ".into()], &[]), "a ");
        // Whitespace-only text: espeak reads nothing, the leftover output gets its space.
        assert_eq!(restore_marks(vec![String::new()], &[]), " ");
        // An inner chunk espeak reads as nothing (e.g. "–") leaves the marks side by side.
        assert_eq!(
            restore_marks(
                vec!["a ".into(), String::new(), "b ".into()],
                &[m(", ", Inner), m(", ", Inner)]
            ),
            "a,, b "
        );
    }

    #[test]
    fn mappings() {
        assert_eq!(
            misaki_g2p("ðə kwˈɪk bɹˈa^ʊn d^ʒˈʌmps ˌo^ʊvɚ. "),
            "ðə kwˈɪk bɹˈWn ʤˈʌmps ˌOvɚ."
        );
        assert_eq!(misaki_g2p("lə- «a^ɪ^ə»"), "lə (Iə)");
        assert_eq!(
            english_fallback("ðə kwˈɪk bɹˈa^ʊn fˈɑːks ˌo^ʊvɚ dˈɑːɡ. ", false),
            "ðə kwˈɪk bɹˈWn fˈɑks ˌOvəɹ dˈɑɡ."
        );
        assert_eq!(english_fallback("hˈe^ə", true), "hˈAə");
        assert_eq!(english_fallback("bˈʌʔn\u{329}", false), "bˈʌtn");
        assert_eq!(english_fallback("lˈɪʔl\u{329}", false), "lˈɪtᵊl");
    }

    #[test]
    fn voice_letters_pick_espeak_voices() {
        let v = |name| Language::from_voice_name(name).espeak_voice();
        assert_eq!(v("af_heart"), "gmw/en-US");
        assert_eq!(v("bf_emma"), "gmw/en");
        assert_eq!(v("ef_dora"), "roa/es");
        assert_eq!(v("ff_siwis"), "roa/fr");
        assert_eq!(v("hf_alpha"), "inc/hi");
        assert_eq!(v("if_sara"), "roa/it");
        assert_eq!(v("jf_alpha"), "jpx/ja");
        assert_eq!(v("pf_dora"), "roa/pt-BR");
        assert_eq!(v("zf_xiaobei"), "sit/cmn");
        assert_eq!(v("xx_unknown"), "gmw/en-US");
        assert_eq!(v(""), "gmw/en-US");
        assert_eq!(Language::parse("gmw/en-US"), Some(Language::AmericanEnglish));
        assert_eq!(Language::parse("pt-BR"), Some(Language::BrazilianPortuguese));
        assert_eq!(Language::parse("b"), Some(Language::BritishEnglish));
        assert_eq!(Language::parse("de"), None);
    }
}
