//! The phonemizer against `fixtures/phonemes/visible.jsonl` (misaki 0.9.4 over espeak-ng 1.51):
//! every row, every field, exact.
//!
//! Fixture path: `$TTS_PHONEME_FIXTURES`, else `../shared/fixtures/phonemes/visible.jsonl` beside
//! the repository root. Without it the tests skip with a message, except in CI (`CI` set).
//! Run with `--nocapture` to see the summary table.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{model_path, phoneme_fixture_path as fixture_path};
use tts_backend_kokoro::text::phonemize::{
    phonemize_with, KokoroPhonemizer, Language, Mapping, PhonemizeError, Phonemized,
};
use tts_backend_kokoro::text::vocab::Vocab;
use tts_backend_kokoro::KokoroModelFile;

/// One fixture row, the fields this test compares.
struct Row {
    id: String,
    lang: String,
    text: String,
    espeak_voice: String,
    g2p: Expected,
    fallback: Option<Expected>,
}

/// The expected output of one post-processing path.
#[derive(Debug, PartialEq)]
struct Expected {
    /// `(chunk text, clauses)`; only recorded for the G2P path.
    chunks: Option<Vec<(String, Vec<String>)>>,
    espeak_ipa: Option<String>,
    phonemes: Option<String>,
    token_ids: Option<Vec<u32>>,
    dropped: Option<Vec<char>>,
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn ids_field(v: &Value, key: &str) -> Option<Vec<u32>> {
    v.get(key)?.as_array().map(|a| {
        a.iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .expect("token ids are u32")
            })
            .collect()
    })
}

fn dropped_field(v: &Value, key: &str) -> Option<Vec<char>> {
    v.get(key)?.as_array().map(|a| {
        a.iter()
            .flat_map(|x| x.as_str().expect("dropped entries are strings").chars())
            .collect()
    })
}

fn load_rows() -> Option<Vec<Row>> {
    let path = fixture_path()?;
    let text = std::fs::read_to_string(&path).expect("read fixture file");
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("fixture row is JSON");
            let chunks = v["espeak_chunks"]
                .as_array()
                .expect("espeak_chunks array")
                .iter()
                .map(|c| {
                    let clauses = c["clauses"]
                        .as_array()
                        .expect("clauses array")
                        .iter()
                        .map(|s| s.as_str().expect("clause string").to_owned())
                        .collect();
                    (str_field(c, "text").expect("chunk text"), clauses)
                })
                .collect();
            let lang = str_field(&v, "lang").expect("lang");
            let fallback = lang.starts_with("en").then(|| Expected {
                chunks: None,
                espeak_ipa: str_field(&v, "fallback_espeak_ipa"),
                phonemes: str_field(&v, "fallback_phonemes"),
                token_ids: ids_field(&v, "fallback_token_ids"),
                dropped: dropped_field(&v, "fallback_dropped"),
            });
            Row {
                id: str_field(&v, "id").expect("id"),
                text: str_field(&v, "text").expect("text"),
                espeak_voice: str_field(&v, "espeak_voice").expect("espeak_voice"),
                g2p: Expected {
                    chunks: Some(chunks),
                    espeak_ipa: str_field(&v, "espeak_ipa"),
                    phonemes: str_field(&v, "phonemes"),
                    token_ids: ids_field(&v, "token_ids"),
                    dropped: dropped_field(&v, "dropped"),
                },
                fallback,
                lang,
            }
        })
        .collect();
    Some(rows)
}

/// What our code produced for one path, in the fixture's shape. The fixture has `null`
/// `fallback_phonemes` (but empty ids) for empty text, where misaki's fallback is never called.
fn actual(p: &Phonemized, vocab: &Vocab, with_chunks: bool, null_if_empty: bool) -> Expected {
    let absent = null_if_empty && p.espeak_ipa.is_none();
    let enc = vocab.encode(&p.phonemes);
    Expected {
        chunks: with_chunks.then(|| {
            p.chunks
                .iter()
                .map(|c| (c.text.clone(), c.clauses.clone()))
                .collect()
        }),
        espeak_ipa: p.espeak_ipa.clone(),
        phonemes: (!absent).then(|| p.phonemes.clone()),
        token_ids: Some(enc.ids),
        dropped: Some(enc.dropped),
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    chunks: usize,
    ipa: usize,
    phonemes: usize,
    ids: usize,
}

impl Tally {
    fn add(&mut self, want: &Expected, got: &Expected) {
        self.cases += 1;
        self.chunks += usize::from(want.chunks == got.chunks);
        self.ipa += usize::from(want.espeak_ipa == got.espeak_ipa);
        self.phonemes += usize::from(want.phonemes == got.phonemes);
        self.ids += usize::from(want.token_ids == got.token_ids && want.dropped == got.dropped);
    }
}

fn print_table(title: &str, tallies: &BTreeMap<String, Tally>, with_chunks: bool) {
    println!("\n{title}");
    println!(
        "{:<8} {:>6} {:>8} {:>8} {:>9} {:>10}",
        "lang", "cases", "chunks", "ipa", "phonemes", "token_ids"
    );
    let mut total = Tally::default();
    for (lang, t) in tallies {
        let chunks = if with_chunks {
            t.chunks.to_string()
        } else {
            "-".into()
        };
        println!(
            "{lang:<8} {:>6} {chunks:>8} {:>8} {:>9} {:>10}",
            t.cases, t.ipa, t.phonemes, t.ids
        );
        total.cases += t.cases;
        total.chunks += t.chunks;
        total.ipa += t.ipa;
        total.phonemes += t.phonemes;
        total.ids += t.ids;
    }
    let chunks = if with_chunks {
        total.chunks.to_string()
    } else {
        "-".into()
    };
    println!(
        "{:<8} {:>6} {chunks:>8} {:>8} {:>9} {:>10}",
        "total", total.cases, total.ipa, total.phonemes, total.ids
    );
}

/// Every row through the real espeak-ng: the same code path the backend and `tts-kokoro
/// phonemize` use. `phonemes` (EspeakG2P) for all rows, `fallback_phonemes` (E2M) for English.
#[test]
fn every_visible_row_matches_exactly() {
    let Some(rows) = load_rows() else { return };
    assert_eq!(rows.len(), 320, "visible.jsonl has 320 rows");
    let vocab = Vocab::kokoro_v1();
    let mut g2p: BTreeMap<String, Tally> = BTreeMap::new();
    let mut fallback: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for row in &rows {
        let lang = Language::parse(&row.lang).expect("fixture language is known");
        assert_eq!(lang.code(), row.lang, "{}", row.id);
        assert_eq!(lang.espeak_voice(), row.espeak_voice, "{}: espeak voice", row.id);

        let p = KokoroPhonemizer::new(lang)
            .with_mapping(Mapping::Misaki)
            .phonemize(&row.text)
            .unwrap_or_else(|e| panic!("{}: {e}", row.id));
        let got = actual(&p, &vocab, true, false);
        g2p.entry(row.lang.clone()).or_default().add(&row.g2p, &got);
        if got != row.g2p {
            failures.push(format!(
                "{} phonemes\n  text: {:?}\n  want: {:?}\n  got:  {:?}",
                row.id, row.text, row.g2p, got
            ));
        }

        if let Some(want) = &row.fallback {
            let p = KokoroPhonemizer::new(lang)
                .phonemize(&row.text)
                .unwrap_or_else(|e| panic!("{}: {e}", row.id));
            let got = actual(&p, &vocab, false, true);
            fallback.entry(row.lang.clone()).or_default().add(want, &got);
            if &got != want {
                failures.push(format!(
                    "{} fallback_phonemes\n  text: {:?}\n  want: {:?}\n  got:  {:?}",
                    row.id, row.text, want, got
                ));
            }
        }
    }
    print_table(
        "phonemes (misaki EspeakG2P), exact matches per language:",
        &g2p,
        true,
    );
    print_table(
        "fallback_phonemes (misaki EspeakFallback / E2M, English), exact matches:",
        &fallback,
        false,
    );
    for f in failures.iter().take(20) {
        println!("\nMISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} comparisons differ (first ones printed above)",
        failures.len(),
        rows.len() + fallback.values().map(|t| t.cases).sum::<usize>()
    );
}

/// The post-processing alone, replaying the espeak output recorded in the fixture (no espeak
/// call): separates mapping bugs from espeak differences.
#[test]
fn post_processing_reproduces_rows_from_recorded_espeak_output() {
    let Some(rows) = load_rows() else { return };
    let vocab = Vocab::kokoro_v1();
    for row in &rows {
        let recorded = row.g2p.chunks.clone().expect("G2P rows record chunks");
        let mut replay = recorded.into_iter();
        let p = phonemize_with(&row.text, Mapping::Misaki, |chunk| {
            let (text, clauses) = replay.next().expect("one recorded chunk per chunk");
            assert_eq!(text, chunk, "{}: chunk text", row.id);
            Ok::<_, PhonemizeError>(clauses)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", row.id));
        assert!(replay.next().is_none(), "{}: unused recorded chunks", row.id);
        assert_eq!(actual(&p, &vocab, true, false), row.g2p, "{}", row.id);
    }
}

/// The fixture's token ids agree with the built-in table character by character, and the
/// built-in table equals the GGUF's `tokenizer.ggml.tokens` when the model is present.
#[test]
fn built_in_vocab_matches_fixture_and_gguf() {
    let vocab = Vocab::kokoro_v1();
    if let Some(rows) = load_rows() {
        for row in &rows {
            let mut paths = vec![&row.g2p];
            paths.extend(row.fallback.as_ref());
            for want in paths {
                let (Some(ph), Some(ids)) = (&want.phonemes, &want.token_ids) else {
                    continue;
                };
                let known: Vec<u32> = ph.chars().filter_map(|c| vocab.id(c)).collect();
                assert_eq!(&known, ids, "{}", row.id);
            }
        }
    }
    let Some(path) = model_path() else { return };
    let model = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(model.vocab(), vocab.to_tokens().as_slice());
    assert_eq!(Vocab::from_tokens(model.vocab()), Ok(vocab));
}

/// Edge cases outside the fixtures, checked against phonemizer-fork 3.3.2 (`EspeakBackend(lang,
/// preserve_punctuation=True, with_stress=True, tie='^')` over Debian's espeak-ng 1.51): an inner
/// piece espeak reads as nothing, marks ending in `\n`/`\t`, every mark type, NBSP and U+001F
/// (whitespace to Python, not to Rust), and language flags.
#[test]
fn punctuation_restore_matches_phonemizer_on_edge_cases() {
    let english: [(&str, &str); 9] = [
        ("Hello, –, world.", "həlˈo^ʊ,, wˈɜːld. "),
        ("Hello, 👾, world!", "həlˈo^ʊ, ˈe^ɪli^ən mˈɔnstɚ, wˈɜːld! "),
        ("end.\n", "ˈɛnd.\n "),
        ("x ?\t", "ˈɛks ?\t "),
        (
            "«Oui», dit-il; (non) [sic] {x}!",
            "«wˈiː», dˈɪtˈɪl; (nˈɑːn) [sˈɪk] {ˈɛks}! ",
        ),
        ("...and then?", "...ænd ðˈɛn? "),
        (" , ", " , "),
        ("a\u{a0},\u{a0}b", "ˈe^ɪ\u{a0},\u{a0}bˈiː "),
        ("one\u{1f}two, three", "wˈʌn tˈuː, θɹˈiː "),
    ];
    for (text, want) in english {
        let p = KokoroPhonemizer::new(Language::AmericanEnglish)
            .phonemize(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(p.espeak_ipa.as_deref(), Some(want), "{text:?}");
    }
    // French with flags removed (what EspeakG2P asks for); "Hello" is read as French, "world"
    // keeps its English phonemes without the `(en)`/`(fr)` flags.
    let p = KokoroPhonemizer::new(Language::French)
        .phonemize("Hello, world")
        .expect("phonemize");
    assert_eq!(p.espeak_ipa.as_deref(), Some("ɛlˈo, wˈɜːld "));
    assert_eq!(p.phonemes, "ɛlˈo, wˈɜːld");
}
