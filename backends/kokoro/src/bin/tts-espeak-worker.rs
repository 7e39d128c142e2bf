//! `tts-espeak-worker`: espeak-ng in its own process, so that a crash or a hang inside the C
//! library costs one phonemization, never the server. The Kokoro backend starts one per instance
//! and talks to it over stdin/stdout (`tts_espeak_ng::worker`); it is not meant to be run by hand.

fn main() {
    std::process::exit(tts_espeak_ng::worker::serve_stdio());
}
