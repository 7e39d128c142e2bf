//! `KokoroBackend` on the real model, everything that happens before the graph runs:
//! construction from the host's configuration, shared weights, voices, and every refusal a
//! request can meet before its first audio (unknown voice, malformed blend, speed, empty text,
//! unknown espeak voice). Synthesis itself is tested in `synthesis.rs`.
//!
//! Model path: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` (`scripts/fetch-model`);
//! skipped with a message when absent, except in CI.

mod support;

use std::sync::Arc;

use support::model_path;
use tts_backend_api::{Backend, BackendConfig, ErrorKind, Gender, SynthesisRequest, VecSink};
use tts_backend_kokoro::KokoroBackend;

const VOICES: [&str; 5] = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"];

fn config(path: &std::path::Path) -> BackendConfig {
    BackendConfig {
        model_path: Some(path.to_path_buf()),
        n_threads: 2,
        ..BackendConfig::default()
    }
}

fn backend() -> Option<KokoroBackend> {
    let path = model_path()?;
    Some(KokoroBackend::new(config(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn info_and_voices_describe_the_file() {
    let Some(b) = backend() else { return };
    let info = b.info();
    assert_eq!(info.name, "kokoro");
    assert_eq!(info.sample_rate, 24_000);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    for lang in ["en-US", "en-GB", "ja", "fr-FR"] {
        assert!(
            info.languages.iter().any(|l| l == lang),
            "{lang}: {:?}",
            info.languages
        );
    }
    assert!(info.description.contains("5 voices"), "{}", info.description);

    let voices = b.voices();
    let ids: Vec<&str> = voices.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, VOICES);
    for v in &voices {
        assert_eq!(v.language.as_deref(), Some("ja"), "{v:?}");
    }
    assert_eq!(voices[0].name, "Alpha");
    assert_eq!(voices[0].gender, Some(Gender::Female));
    assert_eq!(voices[4].name, "Kumo");
    assert_eq!(voices[4].gender, Some(Gender::Male));
    assert_eq!(b.default_voice(), "jf_alpha");
}

#[test]
fn instances_share_one_copy_of_the_weights() {
    let Some(path) = model_path() else { return };
    let a = KokoroBackend::new(config(&path)).unwrap();
    let b = KokoroBackend::new(BackendConfig {
        instance: 1,
        ..config(&path)
    })
    .unwrap();
    assert!(Arc::ptr_eq(a.weights(), b.weights()), "two copies of the weights");
    // Instances built on other threads at the same time (as the host does) share them too.
    let others: Vec<KokoroBackend> = std::thread::scope(|s| {
        let handles: Vec<_> = (2..4)
            .map(|i| {
                let path = &path;
                s.spawn(move || {
                    KokoroBackend::new(BackendConfig {
                        instance: i,
                        ..config(path)
                    })
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &others {
        assert!(Arc::ptr_eq(a.weights(), o.weights()));
    }
    // The same file under another spelling of its path is the same model.
    let dotted = path.parent().unwrap().join(".").join(path.file_name().unwrap());
    let c = KokoroBackend::new(config(&dotted)).unwrap();
    assert!(Arc::ptr_eq(a.weights(), c.weights()));
    assert_eq!(c.model_path(), a.model_path());
}

#[test]
fn configuration_errors_are_clear() {
    let Some(path) = model_path() else { return };
    let refuse = |c: BackendConfig, needles: &[&str]| {
        let e = KokoroBackend::new(c).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig, "{e}");
        for n in needles {
            assert!(e.message.contains(n), "{n:?} missing from {:?}", e.message);
        }
    };
    refuse(
        BackendConfig {
            voice: Some("nobody".into()),
            ..config(&path)
        },
        &["--voice nobody", "jf_alpha", "jm_kumo"],
    );
    refuse(
        BackendConfig {
            espeak_voice_id: Some("no-such-espeak-voice".into()),
            ..config(&path)
        },
        &["--espeak-voice-id", "unsupported language 'no-such-espeak-voice'"],
    );
    refuse(
        BackendConfig {
            espeak_voice_id: Some("../../../etc/passwd".into()),
            ..config(&path)
        },
        &["--espeak-voice-id", "unsupported language"],
    );
    let mut c = config(&path);
    c.options
        .insert("espeak_worker".into(), "/nonexistent/tts-espeak-worker".into());
    refuse(c, &["/nonexistent/tts-espeak-worker"]);
    let mut c = config(&path);
    c.options.insert("phonemizer_timeout_ms".into(), "0".into());
    refuse(
        c,
        &["phonemizer_timeout_ms=0: expected a whole number of milliseconds in 1..=600000"],
    );
    let mut c = config(&path);
    c.options.insert("colour".into(), "blue".into());
    refuse(c, &["colour", "espeak_data"]);
    let mut c = config(&path);
    c.options
        .insert("espeak_data".into(), "/nonexistent/espeak".into());
    refuse(c, &["/nonexistent/espeak"]);
    refuse(
        BackendConfig {
            n_threads: 0,
            ..config(&path)
        },
        &["--n-threads 0"],
    );
    // A file that is not a model names the file.
    let not_model = std::env::temp_dir().join(format!("kokoro-not-a-model-{}.gguf", std::process::id()));
    std::fs::write(&not_model, b"GGUF but not really").unwrap();
    refuse(
        config(&not_model),
        &[not_model.file_name().unwrap().to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&not_model);

    // A blend as the default voice, and a language override espeak knows, are fine.
    let b = KokoroBackend::new(BackendConfig {
        voice: Some("jf_alpha(2) + jm_kumo".into()),
        espeak_voice_id: Some("gmw/en-US".into()),
        ..config(&path)
    })
    .unwrap();
    assert_eq!(b.default_voice(), "jf_alpha(2) + jm_kumo");
}

#[test]
fn bad_requests_are_refused_before_any_audio() {
    let Some(b) = backend() else { return };
    let refuse = |request: SynthesisRequest, kind: ErrorKind, needles: &[&str]| {
        let mut sink = VecSink::new();
        let e = b.synthesize(&request, &mut sink).unwrap_err();
        assert_eq!(e.kind, kind, "{request:?}: {e}");
        assert!(sink.chunks.is_empty(), "{request:?}: audio before the error");
        for n in needles {
            assert!(e.message.contains(n), "{n:?} missing from {:?}", e.message);
        }
    };
    let all: Vec<&str> = VOICES.to_vec();
    let mut listed = vec!["unknown voice 'nobody'"];
    listed.extend(&all);
    refuse(
        SynthesisRequest::new("Hello.", "nobody"),
        ErrorKind::UnknownVoice,
        &listed,
    );
    assert_eq!(
        b.synthesize(&SynthesisRequest::new("Hello.", "nobody"), &mut VecSink::new())
            .unwrap_err()
            .message,
        format!("unknown voice 'nobody'; available voices: {}", all.join(", "))
    );
    refuse(
        SynthesisRequest::new("Hello.", "jf_alpha(2)+nobody(1)"),
        ErrorKind::UnknownVoice,
        &["unknown voice 'nobody'", "jf_alpha"],
    );
    refuse(
        SynthesisRequest::new("Hello.", "jf_alpha+"),
        ErrorKind::UnknownVoice,
        &[
            "invalid voice expression 'jf_alpha+'",
            "available voices: jf_alpha",
        ],
    );
    refuse(
        SynthesisRequest::new("Hello.", "jf_alpha(0)+jm_kumo"),
        ErrorKind::UnknownVoice,
        &["weight '0'", "greater than 0"],
    );
    for speed in [0.2, 4.5, f32::NAN] {
        refuse(
            SynthesisRequest::new("Hello.", "jf_alpha").with_speed(speed),
            ErrorKind::InvalidInput,
            &["speed"],
        );
    }
    for text in ["", "   \n\t", "...", " ,;: !? "] {
        refuse(
            SynthesisRequest::new(text, "jf_alpha"),
            ErrorKind::InvalidInput,
            &["nothing to speak"],
        );
    }
    // Nothing to speak in English either, after normalisation.
    let mut english = SynthesisRequest::new("— … —", "jf_alpha");
    english.language = Some("en-us".into());
    refuse(english, ErrorKind::InvalidInput, &["nothing to speak"]);
    // Languages outside the closed set, from the request: never handed to espeak-ng. The
    // message is the same whether or not a file of that name exists (no probing).
    for language in [
        "zzz/no-such-voice",
        "en+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "../../../../../../../../etc/passwd",
        "../../../../../../../../etc/no-such-file",
        "/etc/passwd",
        "gmw/en-US+f3",
        "mb/mb-en1",
        "en-us\u{0}",
    ] {
        let mut request = SynthesisRequest::new("Hello.", "jf_alpha");
        request.language = Some(language.into());
        refuse(
            request,
            ErrorKind::UnsupportedLanguage,
            &["unsupported language", "gmw/en-US", "espeak-ng voice ids"],
        );
    }
    let message = |language: &str| {
        let mut request = SynthesisRequest::new("Hello.", "jf_alpha");
        request.language = Some(language.into());
        b.synthesize(&request, &mut VecSink::new()).unwrap_err().message
    };
    assert_eq!(
        message("../../../../etc/passwd").replace("passwd", "X"),
        message("../../../../etc/nothere").replace("nothere", "X")
    );
}

#[test]
fn control_characters_and_pathological_runs_are_spoken_not_fatal() {
    let Some(b) = backend() else { return };
    // NUL, escape sequences and espeak's command introducer become spaces: the words remain.
    let mut request = SynthesisRequest::new("Hello\0world\u{1}\u{1b}[31m.", "jf_alpha");
    request.language = Some("a".into());
    let mut sink = VecSink::new();
    b.synthesize(&request, &mut sink).unwrap();
    let spoken: usize = sink.chunks.iter().map(Vec::len).sum();
    assert!(spoken > 12_000, "{spoken} samples for two words");
    // The pattern that crashes espeak-ng 1.51 (tests/espeak_worker.rs has it at full length):
    // bounded, it is read.
    let mut request = SynthesisRequest::new("s'".repeat(60), "jf_alpha");
    request.language = Some("en-us".into());
    request.normalize = false;
    let mut sink = VecSink::new();
    b.synthesize(&request, &mut sink).unwrap();
    assert!(!sink.chunks.is_empty());
}

#[test]
fn every_request_language_form_is_accepted() {
    let Some(b) = backend() else { return };
    // A Kokoro letter, a code, an espeak id, a code only espeak lists: all reach real phonemes
    // (checked here up to the first chunk: the refusals above happen before it).
    for language in ["a", "EN-US", "gmw/en-US", "en_gb", "de", "gmw/de"] {
        let mut request = SynthesisRequest::new("Ja.", "jf_alpha");
        request.language = Some(language.into());
        let mut sink = VecSink::new();
        b.synthesize(&request, &mut sink)
            .unwrap_or_else(|e| panic!("{language}: {e}"));
        assert!(!sink.chunks.is_empty(), "{language}");
    }
}

#[test]
fn an_empty_voice_uses_the_default_voice() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(BackendConfig {
        voice: Some("jm_kumo".into()),
        ..config(&path)
    })
    .unwrap();
    assert_eq!(b.default_voice(), "jm_kumo");
    // The empty voice resolves (no unknown-voice error); "..." then has nothing to say.
    let e = b
        .synthesize(&SynthesisRequest::new("...", "  "), &mut VecSink::new())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
}
