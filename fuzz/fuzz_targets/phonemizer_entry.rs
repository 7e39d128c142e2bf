#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tts_backend_kokoro::fuzzing::phonemizer_entry(data));
