//! A data directory espeak cannot load: `espeak_Initialize` must return an error (not exit the
//! process, not crash), and the failure must stick. Own test binary, hence own process: espeak
//! can be initialised only once.

use tts_espeak_ng::{EspeakConfig, EspeakError, Phonemizer};

#[test]
fn broken_data_directory_fails_once_and_for_all() {
    let dir = std::env::temp_dir().join(format!("tts-espeak-ng-broken-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("espeak-ng-data")).expect("temp dir");
    // Passes our existence check, but espeak cannot load the rest of its data.
    std::fs::write(dir.join("espeak-ng-data/phontab"), b"").expect("marker");
    let config = EspeakConfig::default().with_data_path(&dir);
    let first = Phonemizer::lock(&config);
    assert!(matches!(first, Err(EspeakError::InitFailed { .. })), "{first:?}");
    // Later callers get the same error, even with the default data path: espeak is not called
    // again after a failed initialisation.
    let second = Phonemizer::lock(&EspeakConfig::default());
    assert_eq!(second.err(), first.err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_data_directory_is_refused_before_espeak_sees_it() {
    let config = EspeakConfig::default().with_data_path("/nonexistent/espeak-data-dir");
    assert_eq!(
        Phonemizer::lock(&config).err(),
        Some(EspeakError::DataPathInvalid {
            path: "/nonexistent/espeak-data-dir".into()
        })
    );
}
