//! The closed set of languages a request may ask for, and the espeak-ng voice each one selects.
//!
//! Nothing a client sends is handed to espeak-ng as a voice name: espeak treats such a name as a
//! path under its data directory (`../../etc/passwd` is opened and parsed) and copies variant
//! suffixes (`en+…`) into fixed-size buffers. A request's `language` (or `lang_code`, or the
//! operator's `--espeak-voice-id`) is looked up here instead, and only an identifier that
//! espeak-ng itself listed at start-up (`espeak_ListVoices`) is ever passed on. Accepted, case-
//! insensitively:
//!
//! * a Kokoro lang code letter: `a b e f h i j p z`;
//! * a language code or name Kokoro knows: `en-us`, `en-gb`, `es`, `fr-fr`, `hi`, `it`, `ja`,
//!   `pt-br`, `cmn` and the aliases of [`Language::parse`];
//! * an espeak-ng voice identifier from the list (`gmw/de`, `roa/es-419`), MBROLA voices excepted;
//! * a language code one of those voices lists (`de`, `es-419`, `zh-yue`; `_` counts as `-`):
//!   the first voice that lists it.
//!
//! Anything else is refused with the accepted values.

use std::collections::BTreeMap;

use tts_espeak_ng::VoiceEntry;

use super::phonemize::Language;

/// Longest language string looked up (longer ones are refused without a lookup).
pub const MAX_LANGUAGE_LEN: usize = 64;

/// What a language string resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLanguage {
    /// The espeak-ng voice identifier to select, taken from espeak's own list.
    pub espeak_voice: String,
    /// The Kokoro language, when the string named one (its post-processing and normalisation
    /// apply); `None` for other espeak voices (the voice's language's post-processing applies).
    pub language: Option<Language>,
}

/// The accepted language strings; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct EspeakLanguages {
    /// Lower-cased identifier → identifier as espeak lists it.
    identifiers: BTreeMap<String, String>,
    /// Lower-cased language code (`_` as `-`) → the first identifier listing it.
    codes: BTreeMap<String, String>,
}

fn key(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('_', "-")
}

impl EspeakLanguages {
    /// The table for espeak-ng's voice list.
    pub fn new(voices: &[VoiceEntry]) -> Self {
        let mut table = Self::default();
        for v in voices
            .iter()
            .filter(|v| !v.is_mbrola() && is_plain_identifier(&v.identifier))
        {
            table
                .identifiers
                .entry(v.identifier.to_ascii_lowercase())
                .or_insert_with(|| v.identifier.clone());
            for l in &v.languages {
                table.codes.entry(key(l)).or_insert_with(|| v.identifier.clone());
            }
        }
        table
    }

    /// Number of espeak-ng voices accepted.
    pub fn len(&self) -> usize {
        self.identifiers.len()
    }

    /// Whether espeak-ng listed no usable voice.
    pub fn is_empty(&self) -> bool {
        self.identifiers.is_empty()
    }

    /// The identifier espeak listed for `id`, compared case-insensitively.
    fn identifier(&self, id: &str) -> Option<&str> {
        self.identifiers.get(&id.to_ascii_lowercase()).map(String::as_str)
    }

    /// Looks `requested` up (see the module docs).
    ///
    /// # Errors
    ///
    /// A message for the client that quotes the string (bounded) and lists what is accepted.
    pub fn resolve(&self, requested: &str) -> Result<ResolvedLanguage, String> {
        let trimmed = requested.trim();
        if trimmed.is_empty() || trimmed.chars().count() > MAX_LANGUAGE_LEN {
            return Err(self.refusal(requested));
        }
        if let Some(language) = Language::parse(trimmed) {
            return match self.identifier(language.espeak_voice()) {
                Some(id) => Ok(ResolvedLanguage {
                    espeak_voice: id.to_owned(),
                    language: Some(language),
                }),
                None => Err(format!(
                    "language {} ({}) needs the espeak-ng voice {}, which this server's espeak-ng \
                     data does not have",
                    tts_backend_api::quote(trimmed),
                    language.code(),
                    language.espeak_voice()
                )),
            };
        }
        if let Some(id) = self.identifier(trimmed) {
            return Ok(ResolvedLanguage {
                espeak_voice: id.to_owned(),
                language: None,
            });
        }
        if let Some(id) = self.codes.get(&key(trimmed)) {
            return Ok(ResolvedLanguage {
                espeak_voice: id.clone(),
                language: None,
            });
        }
        Err(self.refusal(requested))
    }

    fn refusal(&self, requested: &str) -> String {
        let ids: Vec<&str> = self.identifiers.values().map(String::as_str).collect();
        format!(
            "unsupported language {}: use a Kokoro lang code (a, b, e, f, h, i, j, p, z), a language \
             code (en-us, en-gb, es, fr-fr, hi, it, ja, pt-br, cmn, or one espeak-ng lists), or one of \
             the {} espeak-ng voice ids: {}",
            tts_backend_api::quote(requested),
            ids.len(),
            ids.join(", ")
        )
    }
}

/// An identifier espeak could list and still be dangerous to pass back: variants (`+`),
/// absolute or parent paths, odd characters. espeak's own files never look like that.
fn is_plain_identifier(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LANGUAGE_LEN
        && !id.starts_with('/')
        && !id
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(id: &str, languages: &[&str]) -> VoiceEntry {
        VoiceEntry {
            identifier: id.into(),
            name: id.into(),
            languages: languages.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn table() -> EspeakLanguages {
        EspeakLanguages::new(&[
            voice("gmw/en-US", &["en-us", "en"]),
            voice("gmw/en", &["en-gb", "en"]),
            voice("gmw/de", &["de"]),
            voice("jpx/ja", &["ja"]),
            voice("roa/es-419", &["es-419", "es-mx"]),
            voice("mb/mb-de1", &["de"]),
            voice("../evil", &["xx"]),
        ])
    }

    #[test]
    fn kokoro_codes_resolve_to_listed_identifiers() {
        let t = table();
        let r = t.resolve("a").unwrap();
        assert_eq!(r.espeak_voice, "gmw/en-US");
        assert_eq!(r.language, Some(Language::AmericanEnglish));
        assert_eq!(t.resolve("EN-GB").unwrap().espeak_voice, "gmw/en");
        assert_eq!(t.resolve("ja").unwrap().language, Some(Language::Japanese));
        // Kokoro knows French, but this espeak data has no French voice.
        let e = t.resolve("fr-fr").unwrap_err();
        assert!(e.contains("roa/fr"), "{e}");
    }

    #[test]
    fn espeak_ids_and_codes_resolve_to_the_listed_spelling() {
        let t = table();
        assert_eq!(
            t.resolve("GMW/DE").unwrap(),
            ResolvedLanguage {
                espeak_voice: "gmw/de".into(),
                language: None
            }
        );
        assert_eq!(t.resolve("de").unwrap().espeak_voice, "gmw/de");
        assert_eq!(t.resolve("es_MX").unwrap().espeak_voice, "roa/es-419");
    }

    #[test]
    fn everything_else_is_refused() {
        let t = table();
        for bad in [
            "en+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "../../../../../../../../etc/passwd",
            "/etc/passwd",
            "mb/mb-de1",
            "../evil",
            "xx",
            "gmw/de+f3",
            "",
            "   ",
            &"a".repeat(65),
            "en-us\n",
        ] {
            if bad == "en-us\n" {
                // Surrounding whitespace is trimmed; a newline is whitespace.
                assert!(t.resolve(bad).is_ok());
                continue;
            }
            let e = t.resolve(bad).unwrap_err();
            assert!(e.starts_with("unsupported language"), "{bad}: {e}");
            let listed = e.rsplit("voice ids: ").next().unwrap_or_default();
            assert!(
                listed.contains("gmw/de") && !listed.contains("mb-de1") && !listed.contains("evil"),
                "{e}"
            );
        }
        assert_eq!(t.len(), 5);
    }
}
