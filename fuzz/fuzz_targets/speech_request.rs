#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tts_host::fuzzing::speech_request(data));
