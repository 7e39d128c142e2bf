//! The supervised espeak-ng worker (`tts-espeak-worker`, `tts_espeak_ng::worker`) with the real
//! library: it phonemizes like the in-process wrapper, and a crash, a kill or a hang inside it
//! costs one call while the next call gets a fresh worker.

use std::time::Duration;

use tts_espeak_ng::worker::{Supervisor, WorkerSpec};
use tts_espeak_ng::{EspeakConfig, EspeakError, PhonemeMode, Phonemizer};

const WORKER: &str = env!("CARGO_BIN_EXE_tts-espeak-worker");
const MODE: PhonemeMode = PhonemeMode::ipa_with_tie('^');

fn start() -> Supervisor {
    Supervisor::start(WorkerSpec::new(WORKER, EspeakConfig::default())).expect("the worker starts")
}

#[test]
fn the_worker_phonemizes_like_the_library() {
    let mut worker = start();
    assert!(worker.info().version.starts_with("1.51"), "{:?}", worker.info());
    let ids: Vec<&str> = worker.voices().iter().map(|v| v.identifier.as_str()).collect();
    for id in ["gmw/en-US", "gmw/en", "jpx/ja", "roa/fr"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let text = "Hello there, world";
    let remote = worker.phonemize("gmw/en-US", text, MODE).unwrap();
    let mut local = Phonemizer::lock(&EspeakConfig::default()).unwrap();
    assert_eq!(remote, local.phonemize("gmw/en-US", text, MODE).unwrap());
    assert_eq!(local.list_voices(), worker.voices());
    drop(local);
    // espeak's own refusals come back as themselves.
    let e = worker.phonemize("no/such-voice", "x", MODE).unwrap_err();
    assert!(matches!(e, EspeakError::SetVoice { code: 2, .. }), "{e}");
    assert!(matches!(
        worker.phonemize("gmw/en-US", "a\0b", MODE),
        Err(EspeakError::InteriorNul { .. })
    ));
    assert_eq!(worker.restarts(), 0);
}

#[test]
fn a_worker_killed_while_idle_is_replaced_without_failing_a_call() {
    let mut worker = start();
    let pid = worker.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(100));
    let out = worker.phonemize("gmw/en-US", "hello", MODE).unwrap();
    assert_eq!(out, ["həlˈo^ʊ"]);
    assert_eq!(worker.restarts(), 1);
    assert_ne!(worker.pid(), Some(pid));
}

#[test]
fn a_crash_inside_espeak_costs_one_call() {
    let mut worker = start();
    // espeak-ng 1.51 dies on this text unbounded (the Kokoro backend bounds it before espeak).
    let text = "s'".repeat(1500);
    match worker.phonemize("gmw/en-US", &text, MODE) {
        Err(EspeakError::WorkerCrashed { detail }) => {
            assert!(detail.contains("signal"), "{detail}");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(worker.phonemize("gmw/en-US", "hello", MODE).unwrap(), ["həlˈo^ʊ"]);
    assert_eq!(worker.restarts(), 1);
}

#[test]
fn a_call_over_its_time_limit_kills_the_worker() {
    let spec = WorkerSpec::new(WORKER, EspeakConfig::default()).with_timeout(Duration::from_millis(1));
    let mut worker = Supervisor::start(spec).unwrap();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(2000);
    let e = worker.phonemize("gmw/en-US", &text, MODE).unwrap_err();
    assert!(matches!(e, EspeakError::WorkerTimeout { millis: 1 }), "{e}");
    assert!(worker.pid().is_none());
}
