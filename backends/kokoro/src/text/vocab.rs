//! Kokoro's phoneme vocabulary: one token per character, unknown characters dropped.
//!
//! At run time the table comes from the GGUF (`tokenizer.ggml.tokens`, a dense list where index i
//! holds the symbol with id i or `""`), through [`Vocab::from_tokens`]. [`Vocab::kokoro_v1`] is the
//! same table as a constant (`docs/kokoro-gguf.md` §7) for tools and tests without the model file;
//! `tests/phonemes.rs` checks it against the GGUF when the model is present.

use std::collections::HashMap;

/// Number of ids in Kokoro v1.0's vocabulary (`tokenizer.ggml.tokens` has this many entries).
pub const KOKORO_V1_SIZE: usize = 178;

/// The padding / BOS / EOS id that frames every input: `[0, ids…, 0]`.
pub const PAD_ID: u32 = 0;

/// Kokoro v1.0's 114 symbols with their ids (`config.json` `vocab`, identical to the GGUF's
/// `tokenizer.ggml.tokens`). Ids not listed are unused.
const KOKORO_V1: [(u32, char); 114] = [
    (1, ';'),
    (2, ':'),
    (3, ','),
    (4, '.'),
    (5, '!'),
    (6, '?'),
    (9, '—'),
    (10, '…'),
    (11, '"'),
    (12, '('),
    (13, ')'),
    (14, '“'),
    (15, '”'),
    (16, ' '),
    (17, '\u{303}'),
    (18, 'ʣ'),
    (19, 'ʥ'),
    (20, 'ʦ'),
    (21, 'ʨ'),
    (22, 'ᵝ'),
    (23, 'ꭧ'),
    (24, 'A'),
    (25, 'I'),
    (31, 'O'),
    (33, 'Q'),
    (35, 'S'),
    (36, 'T'),
    (39, 'W'),
    (41, 'Y'),
    (42, 'ᵊ'),
    (43, 'a'),
    (44, 'b'),
    (45, 'c'),
    (46, 'd'),
    (47, 'e'),
    (48, 'f'),
    (50, 'h'),
    (51, 'i'),
    (52, 'j'),
    (53, 'k'),
    (54, 'l'),
    (55, 'm'),
    (56, 'n'),
    (57, 'o'),
    (58, 'p'),
    (59, 'q'),
    (60, 'r'),
    (61, 's'),
    (62, 't'),
    (63, 'u'),
    (64, 'v'),
    (65, 'w'),
    (66, 'x'),
    (67, 'y'),
    (68, 'z'),
    (69, 'ɑ'),
    (70, 'ɐ'),
    (71, 'ɒ'),
    (72, 'æ'),
    (75, 'β'),
    (76, 'ɔ'),
    (77, 'ɕ'),
    (78, 'ç'),
    (80, 'ɖ'),
    (81, 'ð'),
    (82, 'ʤ'),
    (83, 'ə'),
    (85, 'ɚ'),
    (86, 'ɛ'),
    (87, 'ɜ'),
    (90, 'ɟ'),
    (92, 'ɡ'),
    (99, 'ɥ'),
    (101, 'ɨ'),
    (102, 'ɪ'),
    (103, 'ʝ'),
    (110, 'ɯ'),
    (111, 'ɰ'),
    (112, 'ŋ'),
    (113, 'ɳ'),
    (114, 'ɲ'),
    (115, 'ɴ'),
    (116, 'ø'),
    (118, 'ɸ'),
    (119, 'θ'),
    (120, 'œ'),
    (123, 'ɹ'),
    (125, 'ɾ'),
    (126, 'ɻ'),
    (128, 'ʁ'),
    (129, 'ɽ'),
    (130, 'ʂ'),
    (131, 'ʃ'),
    (132, 'ʈ'),
    (133, 'ʧ'),
    (135, 'ʊ'),
    (136, 'ʋ'),
    (138, 'ʌ'),
    (139, 'ɣ'),
    (140, 'ɤ'),
    (142, 'χ'),
    (143, 'ʎ'),
    (147, 'ʒ'),
    (148, 'ʔ'),
    (156, 'ˈ'),
    (157, 'ˌ'),
    (158, 'ː'),
    (162, 'ʰ'),
    (164, 'ʲ'),
    (169, '↓'),
    (171, '→'),
    (172, '↗'),
    (173, '↘'),
    (177, 'ᵻ'),
];

/// Why a token list is not a usable Kokoro vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    /// A non-empty token that is not exactly one Unicode scalar value.
    #[error("token {id} is {token:?}: Kokoro tokens are single characters")]
    NotOneChar { id: usize, token: String },
    /// Two ids for one character.
    #[error("character {symbol:?} has ids {first} and {second}")]
    Duplicate { symbol: char, first: u32, second: u32 },
    /// Id 0 must be empty: it is the pad/BOS/EOS token.
    #[error("token 0 is {token:?}, expected the empty pad token")]
    PadNotEmpty { token: String },
    /// More ids than fit a `u32`.
    #[error("{len} tokens do not fit u32 ids")]
    TooLarge { len: usize },
}

/// A phoneme string turned into ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// One id per character of the input that is in the vocabulary, without the framing pads.
    pub ids: Vec<u32>,
    /// The characters that are not in the vocabulary, in order of occurrence.
    pub dropped: Vec<char>,
}

/// Character → id map of Kokoro's phoneme vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    ids: HashMap<char, u32>,
    size: usize,
}

impl Vocab {
    /// The built-in Kokoro v1.0 table (178 ids, 114 symbols).
    pub fn kokoro_v1() -> Vocab {
        Vocab {
            ids: KOKORO_V1.iter().map(|&(id, c)| (c, id)).collect(),
            size: KOKORO_V1_SIZE,
        }
    }

    /// Builds the vocabulary from a dense token list (the GGUF's `tokenizer.ggml.tokens`, see
    /// [`crate::KokoroModelFile::vocab`]): index = id, `""` = unused id.
    ///
    /// # Errors
    ///
    /// [`VocabError`] if id 0 is not empty, a token is longer than one character, a character
    /// appears twice, or the list is longer than `u32` ids allow.
    pub fn from_tokens<S: AsRef<str>>(tokens: &[S]) -> Result<Vocab, VocabError> {
        if tokens.len() > u32::MAX as usize {
            return Err(VocabError::TooLarge { len: tokens.len() });
        }
        let mut ids = HashMap::new();
        for (id, token) in tokens.iter().enumerate() {
            let token = token.as_ref();
            if id == 0 {
                if !token.is_empty() {
                    return Err(VocabError::PadNotEmpty {
                        token: token.to_owned(),
                    });
                }
                continue;
            }
            let mut chars = token.chars();
            let symbol = match (chars.next(), chars.next()) {
                (None, _) => continue,
                (Some(c), None) => c,
                (Some(_), Some(_)) => {
                    return Err(VocabError::NotOneChar {
                        id,
                        token: token.to_owned(),
                    })
                }
            };
            // Checked above: every index fits u32.
            let id = id as u32;
            if let Some(first) = ids.insert(symbol, id) {
                return Err(VocabError::Duplicate {
                    symbol,
                    first,
                    second: id,
                });
            }
        }
        Ok(Vocab {
            ids,
            size: tokens.len(),
        })
    }

    /// The id of `symbol`, if it is a token.
    pub fn id(&self, symbol: char) -> Option<u32> {
        self.ids.get(&symbol).copied()
    }

    /// Number of ids, used or not (178 for Kokoro v1.0).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of symbols (114 for Kokoro v1.0).
    pub fn symbols(&self) -> usize {
        self.ids.len()
    }

    /// The dense token list this vocabulary corresponds to (the GGUF layout).
    pub fn to_tokens(&self) -> Vec<String> {
        let mut tokens = vec![String::new(); self.size];
        for (&c, &id) in &self.ids {
            if let Some(slot) = tokens.get_mut(id as usize) {
                *slot = c.to_string();
            }
        }
        tokens
    }

    /// One id per character of `phonemes`; characters outside the vocabulary are dropped (never
    /// padded), as the reference tokenizer does.
    pub fn encode(&self, phonemes: &str) -> Encoded {
        let mut out = Encoded::default();
        for c in phonemes.chars() {
            match self.id(c) {
                Some(id) => out.ids.push(id),
                None => out.dropped.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_has_the_documented_shape() {
        let v = Vocab::kokoro_v1();
        assert_eq!((v.size(), v.symbols()), (178, 114));
        assert_eq!(v.id(' '), Some(16));
        assert_eq!(v.id('ɡ'), Some(92));
        assert_eq!(v.id('g'), None);
        assert_eq!(v.id('\u{303}'), Some(17));
        assert_eq!(v.id('ᵻ'), Some(177));
        // Round trip through the dense GGUF layout.
        assert_eq!(Vocab::from_tokens(&v.to_tokens()), Ok(v));
    }

    #[test]
    fn encode_drops_unknown_characters() {
        let e = Vocab::kokoro_v1().encode("ʔn̩ {x}");
        assert_eq!(e.ids, [148, 56, 16, 66]);
        assert_eq!(e.dropped, ['\u{329}', '{', '}']);
    }

    #[test]
    fn malformed_token_lists_are_rejected() {
        assert!(matches!(
            Vocab::from_tokens(&["", "ab"]),
            Err(VocabError::NotOneChar { id: 1, .. })
        ));
        assert!(matches!(
            Vocab::from_tokens(&["", "a", "a"]),
            Err(VocabError::Duplicate { symbol: 'a', .. })
        ));
        assert!(matches!(
            Vocab::from_tokens(&["x"]),
            Err(VocabError::PadNotEmpty { .. })
        ));
    }
}
