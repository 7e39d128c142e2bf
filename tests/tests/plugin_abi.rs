//! The loader in-process: several plugins in one process, the conformance kit over dlopen, panics
//! caught at the boundary, and errors crossing with their kinds.

use tts_backend_api::load::{LoadError, Plugin};
use tts_backend_api::testkit::Conformance;
use tts_backend_api::{Backend, BackendConfig, ErrorKind, SynthesisRequest, VecSink};
use tts_e2e::plugin;

fn config(options: &[(&str, &str)]) -> BackendConfig {
    let mut c = BackendConfig::default();
    for (k, v) in options {
        c.options.insert((*k).into(), (*v).into());
    }
    c
}

#[test]
fn the_sine_plugin_conforms_over_dlopen() {
    let plugin = Plugin::load(&plugin("sine")).unwrap();
    let backend = plugin.instantiate(&BackendConfig::default()).unwrap();
    assert_eq!(backend.info().name, "sine");
    Conformance::new().run(&backend).assert_ok();
}

#[test]
fn two_plugins_live_in_one_process() {
    let sine = Plugin::load(&plugin("sine")).unwrap();
    let faulty = Plugin::load(&plugin("faulty")).unwrap();
    let a = sine.instantiate(&BackendConfig::default()).unwrap();
    let b = faulty.instantiate(&BackendConfig::default()).unwrap();
    // Each path gives its own library (abi_stable's load_from_file would return the first).
    assert_eq!(a.info().name, "sine");
    assert_eq!(b.info().name, "faulty");
    let mut sink = VecSink::new();
    a.synthesize(&SynthesisRequest::new("ab", "sine_alto"), &mut sink)
        .unwrap();
    assert_eq!(sink.samples().len(), 2 * 1440);
    let mut sink = VecSink::new();
    b.synthesize(&SynthesisRequest::new("ab", "faulty"), &mut sink)
        .unwrap();
    assert_eq!(sink.samples().len(), 2 * 1200);
    // The same plugin loaded again is the same library, and instances are independent.
    let again = Plugin::load(&plugin("sine")).unwrap();
    let c = again.instantiate(&config(&[("sample_rate", "16000")])).unwrap();
    assert_eq!(c.info().sample_rate, 16_000);
    assert_eq!(a.info().sample_rate, 24_000);
}

#[test]
fn panics_and_errors_cross_as_kinds_and_the_instance_survives() {
    let faulty = Plugin::load(&plugin("faulty")).unwrap();
    let backend = faulty.instantiate(&BackendConfig::default()).unwrap();
    for (fault, kind) in [("panic", ErrorKind::Panicked), ("error", ErrorKind::Internal)] {
        let mut req = SynthesisRequest::new("abc", "faulty");
        req.extra.insert("fault".into(), fault.into());
        let e = backend.synthesize(&req, &mut VecSink::new()).unwrap_err();
        assert_eq!(e.kind, kind, "{fault}: {e}");
    }
    let e = backend
        .synthesize(&SynthesisRequest::new("abc", "nobody"), &mut VecSink::new())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnknownVoice);
    assert_eq!(e.message, "unknown voice 'nobody'; available voices: faulty");
    let mut sink = VecSink::new();
    backend
        .synthesize(&SynthesisRequest::new("abc", "faulty"), &mut sink)
        .unwrap();
    assert_eq!(sink.chunks.len(), 3, "the instance still works after a panic");
}

#[test]
fn constructor_failures_are_errors_not_aborts() {
    let faulty = Plugin::load(&plugin("faulty")).unwrap();
    let e = faulty
        .instantiate(&config(&[("mode", "panic-on-load")]))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Panicked);
    assert!(
        e.message.contains("panicking in the constructor"),
        "{}",
        e.message
    );
    let e = faulty
        .instantiate(&config(&[("mode", "error-on-load")]))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidConfig);
}

#[test]
fn a_plugin_for_another_abi_is_refused_before_it_runs() {
    let e = Plugin::load(&plugin("faulty_abi")).unwrap_err();
    match &e {
        LoadError::AbiMismatch { summary, .. } => {
            assert_eq!(
                summary,
                "Error:incompatible plugin ABI (tts-backend-api) version\n  Expected: 0.1.0 (any 0.1.x)\n  Found: 0.999.0"
            );
        }
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
}
