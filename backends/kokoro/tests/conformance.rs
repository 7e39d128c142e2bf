//! The backend conformance kit (`tts_backend_api::testkit`) against `KokoroBackend` on the real
//! model: info, voices, speech, repeatability, refusals before audio, cancellation, speed and
//! concurrent calls. In a test binary of its own so that no other test competes for the CPU
//! while it times cancellation.
//!
//! Model path: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` (`scripts/fetch-model`);
//! skipped with a message when absent, except in CI.

mod support;

use std::time::Duration;

use support::model_path;
use tts_backend_api::testkit::Conformance;
use tts_backend_api::BackendConfig;
use tts_backend_kokoro::KokoroBackend;

#[test]
fn kokoro_passes_the_backend_conformance_kit() {
    let Some(path) = model_path() else { return };
    // The kit speaks English text; the file's voices are Japanese, so the operator's language
    // override makes every request English (as `--espeak-voice-id en-us` would).
    let backend = KokoroBackend::new(BackendConfig {
        model_path: Some(path),
        n_threads: std::thread::available_parallelism().map_or(2, usize::from),
        espeak_voice_id: Some("en-us".into()),
        ..BackendConfig::default()
    })
    .unwrap();
    let mut kit = Conformance::new();
    // The kit times the whole cancelled call, which includes synthesizing the first chunk (one
    // sentence): seconds on a small CPU in a dev build. Stopping itself is immediate: the
    // backend returns as soon as the sink answers Flow::Stop.
    kit.cancel_grace = Duration::from_secs(60);
    kit.run(&backend).assert_ok();
}
