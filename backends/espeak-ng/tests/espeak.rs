//! espeak-ng 1.51 through the process lock: voices, clauses, return codes, concurrency.
//!
//! All tests in this file share one process, hence one espeak initialisation (library default
//! data path).

use std::thread;

use tts_espeak_ng::{EspeakConfig, EspeakError, PhonemeMode, Phonemizer};

const TIE: PhonemeMode = PhonemeMode::ipa_with_tie('^');

fn lock() -> Phonemizer {
    Phonemizer::lock(&EspeakConfig::default()).expect("espeak-ng 1.51 with its default data")
}

#[test]
fn reports_version_1_51_and_data_path() {
    let p = lock();
    assert!(p.info().version.starts_with("1.51"), "{:?}", p.info());
    assert!(p.info().data_path.ends_with("espeak-ng-data"), "{:?}", p.info());
    assert_eq!(p.info().sample_rate, 22050);
}

#[test]
fn hello_world_in_each_mode() {
    let mut p = lock();
    assert_eq!(
        p.phonemize("gmw/en-US", "Hello world", TIE).expect("phonemize"),
        ["həlˈo^ʊ wˈɜːld"]
    );
    assert_eq!(
        p.phonemize("gmw/en-US", "Hello world", PhonemeMode::IPA)
            .expect("phonemize"),
        ["həlˈoʊ wˈɜːld"]
    );
    assert_eq!(
        p.phonemize("gmw/en-US", "Hello", PhonemeMode::ipa_with_separator('_'))
            .expect("phonemize"),
        ["h_ə_l_ˈoʊ"]
    );
}

#[test]
fn one_string_per_clause() {
    let mut p = lock();
    let clauses = p
        .phonemize("gmw/en-US", "Hello, this is a test. It works", PhonemeMode::IPA)
        .expect("phonemize");
    assert_eq!(clauses, ["həlˈoʊ", "ðɪs ɪz ɐ tˈɛst", "ɪt wˈɜːks"]);
}

#[test]
fn unknown_voice_is_an_error_and_deselects() {
    let mut p = lock();
    p.set_voice("gmw/en-US").expect("known voice");
    assert_eq!(
        p.set_voice("en-gb"),
        Err(EspeakError::SetVoice {
            name: "en-gb".into(),
            code: 2
        })
    );
    assert_eq!(p.voice(), None);
    assert_eq!(p.text_to_phonemes("x", TIE), Err(EspeakError::NoVoice));
    p.set_voice("gmw/en").expect("the British English identifier");
    assert_eq!(p.voice(), Some("gmw/en"));
}

#[test]
fn nul_in_text_is_an_error() {
    let mut p = lock();
    assert_eq!(
        p.phonemize("gmw/en-US", "a\0b", TIE),
        Err(EspeakError::InteriorNul {
            what: "text",
            position: 1
        })
    );
}

#[test]
fn empty_text_gives_no_phonemes() {
    let mut p = lock();
    let clauses = p.phonemize("gmw/en-US", "", TIE).expect("phonemize");
    assert!(clauses.iter().all(String::is_empty), "{clauses:?}");
}

#[test]
fn another_data_path_after_initialisation_is_refused() {
    drop(lock());
    let other = std::env::temp_dir().join("tts-espeak-ng-other-data");
    std::fs::create_dir_all(other.join("espeak-ng-data")).expect("temp dir");
    std::fs::write(other.join("espeak-ng-data/phontab"), b"").expect("marker");
    match Phonemizer::lock(&EspeakConfig::default().with_data_path(&other)) {
        Err(EspeakError::DataPathMismatch { .. }) => {}
        other => panic!("expected DataPathMismatch, got {other:?}"),
    }
}

/// Without the lock, two threads get thousands of wrong results (docs/phonemizer.md §3); with it,
/// every result equals the single-threaded one.
#[test]
fn concurrent_jobs_with_different_voices_match_serial_results() {
    let jobs: [(&str, &str); 4] = [
        ("gmw/en-US", "The quick brown fox jumps over the lazy dog"),
        ("roa/fr", "Le renard brun saute par dessus le chien paresseux"),
        ("roa/es", "El veloz zorro marrón salta sobre el perro perezoso"),
        ("gmw/en", "She sells sea shells by the sea shore"),
    ];
    let expected: Vec<Vec<String>> = jobs
        .iter()
        .map(|(v, t)| lock().phonemize(v, t, TIE).expect("phonemize"))
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let expected = expected.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let j = (i + k) % jobs.len();
                    let (voice, text) = jobs[j];
                    let got = lock().phonemize(voice, text, TIE).expect("phonemize");
                    assert_eq!(got, expected[j], "thread {k} job {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread");
    }
}
