//! Voice selection: plain voice names and Kokoro-FastAPI's blend expressions, turned into the
//! style row (`ref_s`) the graph takes for each chunk.
//!
//! # Grammar
//!
//! What Kokoro-FastAPI accepts in `voice` (remsky/Kokoro-FastAPI, `api/src/routers/
//! openai_compatible.py` `process_and_validate_voices` and `api/src/services/tts_service.py`
//! `get_voices_path`), restated:
//!
//! ```text
//! expression = term { ("+" | "-") term }
//! term       = name [ "(" weight ")" ]       weight: a positive number, default 1
//! ```
//!
//! * Whitespace anywhere is ignored (Kokoro-FastAPI deletes spaces before parsing); `a + b(2)`
//!   is `a+b(2)`.
//! * `+` adds a voice, `-` subtracts it: `a-b` is the term `a` plus the term `b` with a negative
//!   sign. The first term is always positive (a leading sign is an error, as is an empty term:
//!   `a+`, `+a`, `a++b`).
//! * A weight is any finite number greater than 0 (`2`, `0.5`, `.5`, `1e-1`); zero, negative,
//!   infinite and non-numeric weights are refused with a message naming the term.
//! * A string that is exactly a voice name is that voice, even if it contains `-` (no Kokoro
//!   voice does, but a converted file might).
//!
//! # Weights: normalised by their sum, as Kokoro-FastAPI does
//!
//! With [`Weighting::Normalized`] (the default, Kokoro-FastAPI's `voice_weight_normalization =
//! True`) every weight is divided by the **sum of all weights as written** and then given its
//! term's sign. Because written weights are positive, that sum is the sum of the absolute values
//! of the signed coefficients, so the coefficients' absolute values always add up to 1:
//!
//! | expression | coefficients |
//! |---|---|
//! | `jf_alpha` or `jf_alpha(3)` | `1` |
//! | `jf_alpha(2)+jm_kumo(1)` | `2/3`, `1/3` |
//! | `jf_alpha-jm_kumo` | `1/2`, `−1/2` |
//! | `jf_alpha(3)-jm_kumo(1)` | `3/4`, `−1/4` |
//!
//! (Kokoro-FastAPI: `total_weight += voice_weight` for every term regardless of its operator,
//! then `weight / total_weight`, then `+=` or `-=`.) The alternative, dividing by the signed sum,
//! would turn `a-b` into a division by zero and `a(2)-b(1)` into `2a − b`, an extrapolation far
//! outside the trained styles; the reference's rule never leaves the convex hull's scale.
//! [`Weighting::Raw`] (Kokoro-FastAPI's `voice_weight_normalization = False`) uses the written
//! weights as they are: `a(0.3)+b(0.7)`, `a+b-c`.
//!
//! # Arithmetic
//!
//! Kokoro-FastAPI scales whole voice packs and adds them in term order, in float32; the row for a
//! chunk is then picked from the blended pack. Blending is element-wise, so picking first and
//! blending the one row gives the same numbers: each coefficient is computed in f64 and rounded
//! to f32 (as PyTorch rounds a Python float scalar for an f32 tensor), the first term is `c₀·x₀`
//! and each further term is added (`+ cᵢ·xᵢ`, with a negative `cᵢ` for `-`) in f32. A single
//! voice with coefficient 1 is therefore its stored row bit for bit.
//!
//! The row is chosen per chunk from the chunk's own phoneme count
//! ([`crate::runner::style_row`], `docs/kokoro-model.md` §4.2): [`StylePack::ref_s`].

use std::borrow::Cow;
use std::fmt;

use tts_backend_api::quote;

use crate::model_file::{KokoroModelFile, VoiceView};
use crate::runner::style_row;

/// The most voices one blend may name (blends of a few voices are what people use; the bound
/// keeps a request from making the server mix thousands of style tables).
pub const MAX_BLEND_TERMS: usize = 16;

/// The smallest and largest weight a term may have.
pub const MIN_WEIGHT: f64 = 1e-6;
/// See [`MIN_WEIGHT`].
pub const MAX_WEIGHT: f64 = 1e6;

/// The sign of a blend term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// `+` (and the first term).
    Plus,
    /// `-`: the voice is subtracted.
    Minus,
}

/// One `name(weight)` of an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendTerm {
    /// The voice name.
    pub voice: String,
    /// The weight as written (1 when omitted); always finite and greater than 0.
    pub weight: f64,
    /// Added or subtracted.
    pub sign: Sign,
}

/// How written weights become coefficients; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weighting {
    /// Divide every weight by the sum of all weights (Kokoro-FastAPI's default).
    #[default]
    Normalized,
    /// Use the weights as written.
    Raw,
}

/// Why a voice expression could not be parsed. Positions are character offsets in the
/// expression with whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlendError {
    /// Nothing but whitespace.
    #[error("the voice expression is empty")]
    Empty,
    /// More than [`MAX_BLEND_TERMS`] terms.
    #[error("a blend may have at most {MAX_BLEND_TERMS} voices")]
    TooManyTerms,
    /// An operator with no voice on one side (`+a`, `a+`, `a+-b`).
    #[error("a '{op}' at position {position} has no voice on one side (write name(weight) terms joined by + or -)")]
    EmptyTerm {
        /// The operator.
        op: char,
        /// Where it is.
        position: usize,
    },
    /// `(` without a name before it.
    #[error("a weight at position {position} has no voice name before it")]
    MissingName {
        /// Where the `(` is.
        position: usize,
    },
    /// `(` without its `)`.
    #[error("the '(' of voice {} is never closed", quote(voice))]
    Unclosed {
        /// The voice whose weight is open.
        voice: String,
    },
    /// A `)` with no `(`, or text after a term's `)`.
    #[error("unexpected {} at position {position} (a term is name or name(weight))", quote(&found.to_string()))]
    Unexpected {
        /// What was found.
        found: char,
        /// Where.
        position: usize,
    },
    /// The text in parentheses is not a number.
    #[error("the weight {} of voice {} is not a number", quote(text), quote(voice))]
    BadWeight {
        /// The voice.
        voice: String,
        /// The text between the parentheses.
        text: String,
    },
    /// A weight that is zero, negative or not finite.
    #[error(
        "the weight {} of voice {} must be a finite number greater than 0",
        quote(text),
        quote(voice)
    )]
    WeightOutOfRange {
        /// The voice.
        voice: String,
        /// The weight as written.
        text: String,
    },
}

/// A parsed voice expression: one or more signed, weighted voices.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceBlend {
    terms: Vec<BlendTerm>,
}

impl VoiceBlend {
    /// One voice with weight 1.
    pub fn single(voice: impl Into<String>) -> Self {
        Self {
            terms: vec![BlendTerm {
                voice: voice.into(),
                weight: 1.0,
                sign: Sign::Plus,
            }],
        }
    }

    /// Parses an expression (see the module docs for the grammar).
    ///
    /// # Errors
    ///
    /// A [`BlendError`] saying what is wrong and where.
    pub fn parse(expression: &str) -> Result<Self, BlendError> {
        let chars: Vec<char> = expression.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.is_empty() {
            return Err(BlendError::Empty);
        }
        let mut terms = Vec::new();
        let mut sign = Sign::Plus;
        let mut i = 0;
        loop {
            // A term: a name, then an optional (weight).
            let name_start = i;
            while i < chars.len() && !matches!(chars[i], '+' | '-' | '(' | ')') {
                i += 1;
            }
            let voice: String = chars[name_start..i].iter().collect();
            let weight = match chars.get(i) {
                Some('(') if voice.is_empty() => return Err(BlendError::MissingName { position: i }),
                Some('(') => {
                    let open = i;
                    let close = chars[open..]
                        .iter()
                        .position(|&c| c == ')')
                        .map(|p| open + p)
                        .ok_or_else(|| BlendError::Unclosed { voice: voice.clone() })?;
                    let text: String = chars[open + 1..close].iter().collect();
                    i = close + 1;
                    parse_weight(&voice, &text)?
                }
                Some(&c @ ')') => {
                    return Err(BlendError::Unexpected {
                        found: c,
                        position: i,
                    })
                }
                Some(&op) if voice.is_empty() => return Err(BlendError::EmptyTerm { op, position: i }),
                _ => 1.0,
            };
            if terms.len() == MAX_BLEND_TERMS {
                return Err(BlendError::TooManyTerms);
            }
            terms.push(BlendTerm { voice, weight, sign });
            // Then the end, or an operator followed by another term.
            match chars.get(i) {
                None => break,
                Some('+') => sign = Sign::Plus,
                Some('-') => sign = Sign::Minus,
                Some(&found) => return Err(BlendError::Unexpected { found, position: i }),
            }
            let op = chars[i];
            i += 1;
            if i == chars.len() || matches!(chars[i], '+' | '-') {
                return Err(BlendError::EmptyTerm { op, position: i - 1 });
            }
        }
        Ok(Self { terms })
    }

    /// The terms in order.
    pub fn terms(&self) -> &[BlendTerm] {
        &self.terms
    }

    /// The first voice: it decides the language, as the first letter of the expression does in
    /// Kokoro-FastAPI.
    pub fn first_voice(&self) -> &str {
        // `parse` and `single` never build an empty blend.
        self.terms.first().map_or("", |t| t.voice.as_str())
    }

    /// Each term's signed coefficient, in term order (see the module docs).
    pub fn coefficients(&self, weighting: Weighting) -> Vec<f32> {
        let total: f64 = match weighting {
            Weighting::Normalized => self.terms.iter().map(|t| t.weight).sum(),
            Weighting::Raw => 1.0,
        };
        self.terms
            .iter()
            .map(|t| {
                let c = t.weight / total;
                (match t.sign {
                    Sign::Plus => c,
                    Sign::Minus => -c,
                }) as f32
            })
            .collect()
    }
}

impl fmt::Display for VoiceBlend {
    /// The canonical form: `a(2)+b(1)`, weights in Rust's shortest round-trip notation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            match (i, t.sign) {
                (0, _) => {}
                (_, Sign::Plus) => f.write_str("+")?,
                (_, Sign::Minus) => f.write_str("-")?,
            }
            write!(f, "{}({})", t.voice, t.weight)?;
        }
        Ok(())
    }
}

fn parse_weight(voice: &str, text: &str) -> Result<f64, BlendError> {
    let w: f64 = text.parse().map_err(|_| BlendError::BadWeight {
        voice: voice.to_owned(),
        text: text.to_owned(),
    })?;
    // Bounded so that sums of weights (at most MAX_BLEND_TERMS of them) and their f32
    // coefficients stay finite and meaningful.
    if !(w.is_finite() && (MIN_WEIGHT..=MAX_WEIGHT).contains(&w)) {
        return Err(BlendError::WeightOutOfRange {
            voice: voice.to_owned(),
            text: text.to_owned(),
        });
    }
    Ok(w)
}

/// One voice's style rows, `n_rows × row_len` floats, row-major (borrowed from the model file
/// when possible).
#[derive(Debug, Clone)]
pub struct VoiceData<'a> {
    values: Cow<'a, [f32]>,
    row_len: usize,
}

impl<'a> VoiceData<'a> {
    /// Rows of `row_len` floats; `None` when `row_len` is 0 or does not divide `values.len()`,
    /// or there are no rows.
    pub fn new(values: impl Into<Cow<'a, [f32]>>, row_len: usize) -> Option<Self> {
        let values = values.into();
        (row_len > 0 && !values.is_empty() && values.len().is_multiple_of(row_len))
            .then_some(Self { values, row_len })
    }

    /// A voice pack of the model file: borrowed in place when the mapping is 4-byte aligned
    /// (always, for a file `tts-gguf` mapped), decoded into a copy otherwise.
    pub fn from_view(view: VoiceView<'a>) -> Option<Self> {
        let values: Cow<'a, [f32]> = match view.as_f32() {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(
                view.bytes()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        };
        Self::new(values, view.row_len())
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.row_len
    }

    /// Floats per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Row `r` (`r < rows()`).
    fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.row_len..(r + 1) * self.row_len]
    }
}

/// Why a blend cannot be turned into a [`StylePack`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A voice of the blend does not exist.
    #[error("unknown voice {}", quote(.0))]
    UnknownVoice(String),
    /// Two voices of the blend have different shapes.
    #[error("voice '{voice}' has {rows} rows of {row_len}, unlike the blend's first voice ({want_rows} of {want_row_len})")]
    ShapeMismatch {
        /// The odd voice.
        voice: String,
        /// Its rows.
        rows: usize,
        /// Its row length.
        row_len: usize,
        /// The first voice's rows.
        want_rows: usize,
        /// The first voice's row length.
        want_row_len: usize,
    },
}

/// A resolved voice or blend: each voice's rows with its coefficient. Gives the `ref_s` row for
/// any phoneme count.
#[derive(Debug, Clone)]
pub struct StylePack<'a> {
    parts: Vec<(VoiceData<'a>, f32)>,
}

impl<'a> StylePack<'a> {
    /// Looks up every voice of `blend` with `lookup` and pairs it with its coefficient.
    ///
    /// # Errors
    ///
    /// [`ResolveError::UnknownVoice`] for the first voice `lookup` does not know;
    /// [`ResolveError::ShapeMismatch`] if the voices' shapes differ.
    pub fn resolve(
        blend: &VoiceBlend,
        weighting: Weighting,
        mut lookup: impl FnMut(&str) -> Option<VoiceData<'a>>,
    ) -> Result<Self, ResolveError> {
        let coefficients = blend.coefficients(weighting);
        let mut parts: Vec<(VoiceData<'a>, f32)> = Vec::with_capacity(coefficients.len());
        for (term, c) in blend.terms().iter().zip(coefficients) {
            let data = lookup(&term.voice).ok_or_else(|| ResolveError::UnknownVoice(term.voice.clone()))?;
            if let Some((first, _)) = parts.first() {
                if (data.rows(), data.row_len()) != (first.rows(), first.row_len()) {
                    return Err(ResolveError::ShapeMismatch {
                        voice: term.voice.clone(),
                        rows: data.rows(),
                        row_len: data.row_len(),
                        want_rows: first.rows(),
                        want_row_len: first.row_len(),
                    });
                }
            }
            parts.push((data, c));
        }
        Ok(Self { parts })
    }

    /// Number of style rows (510 for Kokoro-82M).
    pub fn rows(&self) -> usize {
        self.parts.first().map_or(0, |(d, _)| d.rows())
    }

    /// Floats per row (256 for Kokoro-82M).
    pub fn row_len(&self) -> usize {
        self.parts.first().map_or(0, |(d, _)| d.row_len())
    }

    /// The style row for a chunk of `n_phonemes` tokens (without the two pads): row
    /// [`style_row`]`(n_phonemes, rows)` of every voice, scaled by its coefficient and summed in
    /// term order in f32 (see the module docs).
    pub fn ref_s(&self, n_phonemes: usize) -> Vec<f32> {
        let r = style_row(n_phonemes, self.rows());
        let mut parts = self.parts.iter();
        let Some((first, c0)) = parts.next() else {
            return Vec::new();
        };
        let mut out: Vec<f32> = first.row(r).iter().map(|&x| c0 * x).collect();
        for (data, c) in parts {
            for (o, &x) in out.iter_mut().zip(data.row(r)) {
                *o += c * x;
            }
        }
        out
    }
}

/// Why a `voice` value cannot be used with a model file: the message lists the available voices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// The expression names a voice the file does not have.
    Unknown {
        /// The missing voice.
        voice: String,
        /// Every voice of the file.
        available: Vec<String>,
    },
    /// The expression does not parse.
    Syntax {
        /// The expression as given.
        expression: String,
        /// What is wrong.
        error: BlendError,
        /// Every voice of the file.
        available: Vec<String>,
    },
    /// The file's voices cannot be blended (a corrupt file; the model checks make this a bug).
    Internal(String),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { voice, available } => {
                write!(
                    f,
                    "unknown voice {}; available voices: {}",
                    quote(voice),
                    available.join(", ")
                )
            }
            Self::Syntax {
                expression,
                error,
                available,
            } => write!(
                f,
                "invalid voice expression {}: {error}; write a voice name or a blend such as \
                 'a(2)+b(1)' or 'a-b'; available voices: {}",
                quote(expression),
                available.join(", ")
            ),
            Self::Internal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for SelectError {}

/// Resolves a request's `voice` against a model file: a voice name, or a blend expression.
///
/// # Errors
///
/// [`SelectError::Unknown`] or [`SelectError::Syntax`] (their messages list the file's voices).
pub fn select<'m>(
    model: &'m KokoroModelFile,
    expression: &str,
    weighting: Weighting,
) -> Result<(VoiceBlend, StylePack<'m>), SelectError> {
    let available = || model.voice_names().map(str::to_owned).collect::<Vec<_>>();
    let trimmed = expression.trim();
    let blend = if model.voice(trimmed).is_some() {
        VoiceBlend::single(trimmed)
    } else {
        VoiceBlend::parse(trimmed).map_err(|error| SelectError::Syntax {
            expression: trimmed.to_owned(),
            error,
            available: available(),
        })?
    };
    let pack = StylePack::resolve(&blend, weighting, |name| {
        model.voice(name).and_then(VoiceData::from_view)
    })
    .map_err(|e| match e {
        ResolveError::UnknownVoice(voice) => SelectError::Unknown {
            voice,
            available: available(),
        },
        other => SelectError::Internal(other.to_string()),
    })?;
    Ok((blend, pack))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(voice: &str, weight: f64, sign: Sign) -> BlendTerm {
        BlendTerm {
            voice: voice.into(),
            weight,
            sign,
        }
    }

    #[test]
    fn parses_names_weights_and_signs() {
        assert_eq!(
            VoiceBlend::parse("jf_alpha").unwrap().terms(),
            [term("jf_alpha", 1.0, Sign::Plus)]
        );
        assert_eq!(
            VoiceBlend::parse("jf_alpha(2)+jm_kumo(1)").unwrap().terms(),
            [
                term("jf_alpha", 2.0, Sign::Plus),
                term("jm_kumo", 1.0, Sign::Plus)
            ]
        );
        assert_eq!(
            VoiceBlend::parse("a-b").unwrap().terms(),
            [term("a", 1.0, Sign::Plus), term("b", 1.0, Sign::Minus)]
        );
        assert_eq!(
            VoiceBlend::parse(" a ( 0.5 ) +\tb\n- c(.25) ").unwrap().terms(),
            [
                term("a", 0.5, Sign::Plus),
                term("b", 1.0, Sign::Plus),
                term("c", 0.25, Sign::Minus)
            ]
        );
        assert_eq!(
            VoiceBlend::parse("a(1e-1)").unwrap().terms(),
            [term("a", 0.1, Sign::Plus)]
        );
    }

    #[test]
    fn blend_bombs_are_refused() {
        let sixteen = vec!["a"; MAX_BLEND_TERMS].join("+");
        assert_eq!(
            VoiceBlend::parse(&sixteen).unwrap().terms().len(),
            MAX_BLEND_TERMS
        );
        let bomb = vec!["a(1)"; 100_000].join("+");
        assert_eq!(VoiceBlend::parse(&bomb), Err(BlendError::TooManyTerms));
        // Names in messages are bounded and escaped.
        let e = VoiceBlend::parse(&format!("\u{1b}{}(", "x".repeat(1000))).unwrap_err();
        let m = e.to_string();
        assert!(
            m.len() < 300 && m.contains("\\u{1b}") && !m.contains('\u{1b}'),
            "{m}"
        );
    }

    #[test]
    fn refuses_malformed_expressions() {
        use BlendError as E;
        assert_eq!(VoiceBlend::parse("  "), Err(E::Empty));
        assert_eq!(
            VoiceBlend::parse("+a"),
            Err(E::EmptyTerm { op: '+', position: 0 })
        );
        assert_eq!(
            VoiceBlend::parse("a+"),
            Err(E::EmptyTerm { op: '+', position: 1 })
        );
        assert_eq!(
            VoiceBlend::parse("a+-b"),
            Err(E::EmptyTerm { op: '+', position: 1 })
        );
        assert_eq!(
            VoiceBlend::parse("a--b"),
            Err(E::EmptyTerm { op: '-', position: 1 })
        );
        assert_eq!(VoiceBlend::parse("(2)+a"), Err(E::MissingName { position: 0 }));
        assert_eq!(VoiceBlend::parse("a(2"), Err(E::Unclosed { voice: "a".into() }));
        assert_eq!(
            VoiceBlend::parse("a)"),
            Err(E::Unexpected {
                found: ')',
                position: 1
            })
        );
        assert_eq!(
            VoiceBlend::parse("a(2)b"),
            Err(E::Unexpected {
                found: 'b',
                position: 4
            })
        );
        assert_eq!(
            VoiceBlend::parse("a(2)(3)"),
            Err(E::Unexpected {
                found: '(',
                position: 4
            })
        );
        assert_eq!(
            VoiceBlend::parse("a(two)"),
            Err(E::BadWeight {
                voice: "a".into(),
                text: "two".into()
            })
        );
        assert_eq!(
            VoiceBlend::parse("a()"),
            Err(E::BadWeight {
                voice: "a".into(),
                text: String::new()
            })
        );
        for w in ["0", "-1", "inf", "NaN"] {
            assert_eq!(
                VoiceBlend::parse(&format!("a({w})+b")),
                Err(E::WeightOutOfRange {
                    voice: "a".into(),
                    text: w.into()
                }),
                "{w}"
            );
        }
        // Messages say what to fix.
        let m = VoiceBlend::parse("a+").unwrap_err().to_string();
        assert!(m.contains("'+'") && m.contains("no voice"), "{m}");
    }

    #[test]
    fn coefficients_follow_kokoro_fastapi() {
        let c = |e: &str, w| VoiceBlend::parse(e).unwrap().coefficients(w);
        assert_eq!(c("a", Weighting::Normalized), [1.0]);
        assert_eq!(c("a(3)", Weighting::Normalized), [1.0]);
        assert_eq!(c("a(3)", Weighting::Raw), [3.0]);
        assert_eq!(
            c("a(2)+b(1)", Weighting::Normalized),
            [(2.0f64 / 3.0) as f32, (1.0f64 / 3.0) as f32]
        );
        assert_eq!(c("a-b", Weighting::Normalized), [0.5, -0.5]);
        assert_eq!(c("a(3)-b(1)", Weighting::Normalized), [0.75, -0.25]);
        assert_eq!(c("a(3)-b(1)", Weighting::Raw), [3.0, -1.0]);
        assert_eq!(c("a+b+c-d", Weighting::Normalized), [0.25, 0.25, 0.25, -0.25]);
    }

    #[test]
    fn display_is_canonical() {
        let b = VoiceBlend::parse(" a (2) + b - c(0.5)").unwrap();
        assert_eq!(b.to_string(), "a(2)+b(1)-c(0.5)");
        assert_eq!(VoiceBlend::parse(&b.to_string()).unwrap(), b);
        assert_eq!(b.first_voice(), "a");
    }

    /// Three rows of two floats per voice: row r of voice v is [v0 + r, v1 − r].
    fn voices() -> Vec<(&'static str, Vec<f32>)> {
        vec![
            ("a", vec![1.0, 2.0, 2.0, 1.0, 3.0, 0.0]),
            ("b", vec![4.0, -8.0, 5.0, -9.0, 6.0, -10.0]),
            ("c", vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        ]
    }

    fn pack<'a>(data: &'a [(&'static str, Vec<f32>)], expr: &str, w: Weighting) -> StylePack<'a> {
        StylePack::resolve(&VoiceBlend::parse(expr).unwrap(), w, |name| {
            data.iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| VoiceData::new(v.as_slice(), 2))
        })
        .unwrap()
    }

    #[test]
    fn ref_s_picks_the_row_by_phoneme_count() {
        let data = voices();
        let p = pack(&data, "a", Weighting::Normalized);
        assert_eq!((p.rows(), p.row_len()), (3, 2));
        // row = n − 1, clamped to the last row; 0 phonemes use row 0.
        assert_eq!(p.ref_s(0), [1.0, 2.0]);
        assert_eq!(p.ref_s(1), [1.0, 2.0]);
        assert_eq!(p.ref_s(2), [2.0, 1.0]);
        assert_eq!(p.ref_s(3), [3.0, 0.0]);
        assert_eq!(p.ref_s(400), [3.0, 0.0]);
    }

    #[test]
    fn ref_s_blends_exactly() {
        let data = voices();
        // (2a + b)/3 at 2 phonemes (row 1): a = [2, 1], b = [5, −9].
        let p = pack(&data, "a(2)+b(1)", Weighting::Normalized);
        let (c0, c1) = ((2.0f64 / 3.0) as f32, (1.0f64 / 3.0) as f32);
        assert_eq!(p.ref_s(2), [c0 * 2.0 + c1 * 5.0, c0 * 1.0 + c1 * -9.0]);
        assert_eq!(p.ref_s(2), [3.0, -2.333_333_3]);
        // a − b, normalised: (a − b)/2 at row 0: ([1, 2] − [4, −8]) / 2.
        let p = pack(&data, "a-b", Weighting::Normalized);
        assert_eq!(p.ref_s(1), [-1.5, 5.0]);
        // Raw weights: 2a − b at row 2: [6, 0] − [6, −10].
        let p = pack(&data, "a(2)-b", Weighting::Raw);
        assert_eq!(p.ref_s(3), [0.0, 10.0]);
        // Three voices, summed in order in f32: row 0, (a + b + c)/3.
        let p = pack(&data, "a+b+c", Weighting::Normalized);
        let t = (1.0f64 / 3.0) as f32;
        assert_eq!(
            p.ref_s(1),
            [t * 1.0 + t * 4.0 + t * 0.1, t * 2.0 + t * -8.0 + t * 0.2]
        );
    }

    #[test]
    fn a_single_voice_is_its_stored_row_bit_for_bit() {
        let data = [("a", vec![0.1f32, -0.0, 1e-30, f32::MIN_POSITIVE])];
        let p = StylePack::resolve(&VoiceBlend::single("a"), Weighting::Normalized, |_| {
            VoiceData::new(data[0].1.as_slice(), 4)
        })
        .unwrap();
        let got: Vec<u32> = p.ref_s(1).iter().map(|x| x.to_bits()).collect();
        let want: Vec<u32> = data[0].1.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_and_mismatched_voices_are_refused() {
        let data = voices();
        let lookup = |name: &str| {
            data.iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| VoiceData::new(v.as_slice(), 2))
        };
        let e = StylePack::resolve(&VoiceBlend::parse("a+zz").unwrap(), Weighting::Normalized, lookup)
            .unwrap_err();
        assert_eq!(e, ResolveError::UnknownVoice("zz".into()));

        let odd = [1.0f32; 4];
        let e = StylePack::resolve(
            &VoiceBlend::parse("a+odd").unwrap(),
            Weighting::Normalized,
            |name| match name {
                "odd" => VoiceData::new(odd.as_slice(), 4),
                other => lookup(other),
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ResolveError::ShapeMismatch {
                    rows: 1,
                    row_len: 4,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn voice_data_checks_its_shape() {
        assert!(VoiceData::new(vec![1.0f32; 6], 4).is_none());
        assert!(VoiceData::new(vec![1.0f32; 6], 0).is_none());
        assert!(VoiceData::new(Vec::<f32>::new(), 2).is_none());
        assert_eq!(VoiceData::new(vec![1.0f32; 6], 3).map(|d| d.rows()), Some(2));
    }

    #[test]
    fn select_errors_list_the_voices() {
        let e = SelectError::Unknown {
            voice: "x".into(),
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "unknown voice 'x'; available voices: a, b");
        let e = SelectError::Syntax {
            expression: "a+".into(),
            error: BlendError::EmptyTerm { op: '+', position: 1 },
            available: vec!["a".into()],
        };
        let m = e.to_string();
        assert!(m.starts_with("invalid voice expression 'a+': "), "{m}");
        assert!(m.ends_with("available voices: a"), "{m}");
    }
}
