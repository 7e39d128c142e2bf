//! Hostile requests against the real `tts-host` with the real Kokoro plugin: each attack that
//! once took the whole server down (an espeak voice name overflowing a buffer, a path opened as a
//! voice, text that crashes espeak-ng 1.51), and the espeak worker dying under the server. After
//! each, the same process must still be up and speaking.
//!
//! Needs `cargo build --workspace` and `models/kokoro-82m-f32.gguf` (see `kokoro.rs`).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tts_e2e::kokoro::{self, RATE};
use tts_e2e::{audio, Server};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

fn speak(server: &Server, body: &Value) -> tts_e2e::Response {
    server.speech(body)
}

/// A short English request still works, and the process is the same one.
fn assert_still_speaks(server: &Server, pid: u32) {
    assert_eq!(server.pid(), pid);
    let r = speak(
        server,
        &json!({"input": "Still here.", "voice": "jf_alpha", "language": "en-us", "response_format": "pcm"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete, "the body was cut");
    let pcm = audio::decode_pcm(&r.body, RATE).expect("pcm decodes");
    assert!(
        pcm.samples.len() > RATE as usize / 2,
        "{} samples",
        pcm.samples.len()
    );
    assert!(pcm.rms() > 0.01, "rms {}", pcm.rms());
}

/// The espeak-ng worker processes that are children of `pid`.
fn worker_pids(pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &pid.to_string(), "-f", "tts-espeak-worker"])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn language_fields_outside_the_closed_set_are_400s_that_reveal_nothing() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let pid = server.pid();
    let overflow = format!("en+{}", "a".repeat(56));
    let mut messages = Vec::new();
    for (field, value) in [
        ("language", overflow.as_str()),
        ("language", "../../../../../../../../etc/passwd"),
        ("language", "../../../../../../../../etc/no-such-file"),
        ("lang_code", "/etc/shadow"),
        ("language", "gmw/en-US+klatt"),
        ("language", "mb/mb-en1"),
        ("lang_code", "variants/m1"),
    ] {
        let r = speak(&server, &json!({"input": "hello", field: value}));
        let e = r.assert_error(400, Some("language"));
        assert_eq!(e["code"], "unsupported_language", "{value}: {e:?}");
        let m = e["message"].as_str().unwrap_or_default().to_owned();
        assert!(m.contains("gmw/en-US"), "the accepted values are listed: {m}");
        messages.push(m);
    }
    // An existing file and a missing one give the same answer (nothing to probe).
    assert_eq!(
        messages[1].replace("passwd", "X"),
        messages[2].replace("no-such-file", "X")
    );
    let log = server.stderr();
    assert!(!log.contains("root:"), "espeak read /etc/passwd:\n{log}");
    assert!(!log.contains("Bad voice attribute"), "{log}");
    assert_still_speaks(&server, pid);
}

#[test]
fn text_that_crashes_espeak_is_bounded_and_spoken() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let pid = server.pid();
    // espeak-ng 1.51 dies on this text as typed (the attack, 1500 × "s'"). Bounded, it
    // is minutes of "s" sounds: the answer must start as audio; the client then leaves.
    let mut stream = server.open_speech(
        &json!({"input": "s'".repeat(1500), "language": "en-us", "normalize": false, "response_format": "pcm"}),
    );
    assert_eq!(stream.status, 200);
    let first = stream.next_piece().expect("audio arrives").expect("not empty");
    assert!(!first.is_empty());
    drop(stream);
    assert!(server
        .wait_health(Duration::from_secs(10), |h| h["busy"] == 0)
        .is_some());
    let bodies = [
        // Control characters, espeak's command introducer, an ANSI escape, NUL.
        json!({"input": "Hello\u{0}\u{1}there\u{1b}[2J\u{7f}\u{85} world.", "language": "en-us", "response_format": "pcm"}),
        // A very long word, repeated punctuation, a combining-mark stack.
        json!({"input": format!("{} {} a{}b.", "supercalifragilistic".repeat(4), "!?".repeat(100), "\u{301}".repeat(300)), "language": "en-us", "response_format": "pcm"}),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let r = speak(&server, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let log = server.stderr();
        let tail: String = log.lines().rev().take(8).collect::<Vec<_>>().join("\n");
        assert!(
            r.complete,
            "body {i} was cut ({} bytes); log:\n{tail}",
            r.body.len()
        );
        let pcm = audio::decode_pcm(&r.body, RATE).expect("pcm decodes");
        assert!(!pcm.samples.is_empty());
    }
    assert_still_speaks(&server, pid);
}

#[test]
fn a_dead_espeak_worker_is_replaced_and_the_server_keeps_speaking() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).args(["-np", "2"]).start();
    let pid = server.pid();
    let workers = worker_pids(pid);
    assert_eq!(workers.len(), 2, "one espeak worker per instance: {workers:?}");
    for w in &workers {
        let killed = std::process::Command::new("kill")
            .args(["-9", &w.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
    }
    std::thread::sleep(Duration::from_millis(200));
    // Each instance notices its dead worker before its next call and starts a new one.
    for _ in 0..2 {
        assert_still_speaks(&server, pid);
    }
    let now = worker_pids(pid);
    assert!(
        !now.is_empty() && now.iter().all(|p| !workers.contains(p)),
        "{workers:?} → {now:?}"
    );
    assert!(server.log_count("espeak-ng worker ended while idle") >= 1);
}

#[test]
fn a_cancelled_request_stops_computing_inside_a_chunk() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    // One long chunk (first_chunk_tokens applies only to the first; this text is one sentence
    // of ~60 words, several seconds of compute on two cores).
    let text = "The old lighthouse keeper walked slowly along the rocky shore, watching the grey \
                waves roll in from the distant horizon while the gulls circled high above him and \
                the wind carried the smell of salt and rain across the empty beach towards the \
                small village where the lights were just beginning to glow in the windows";
    let mut stream = server.open_speech(
        &json!({"input": text, "voice": "jf_alpha", "language": "en-us", "response_format": "pcm"}),
    );
    assert_eq!(stream.status, 200);
    // The first chunk is short; once it arrives the second (long) one is computing.
    let first = stream.next_piece().expect("first audio").expect("not empty");
    assert!(!first.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.health()["busy"], 1, "the long chunk is computing");
    let left = Instant::now();
    drop(stream);
    let idle = server.wait_health(Duration::from_secs(5), |h| h["busy"] == 0);
    let took = left.elapsed();
    assert!(idle.is_some(), "still busy 5 s after the client left");
    // Within a node of the generator (tens of ms) plus the host's polling; generous for CI.
    assert!(took < Duration::from_millis(1500), "took {took:?} to stop");
    eprintln!("stopped {took:?} after the client left");
    assert_still_speaks(&server, server.pid());
}

#[test]
fn an_espeak_voice_id_outside_the_closed_set_stops_start_up_with_exit_2() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    for id in [
        "../../../../etc/passwd",
        "en+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let exit = kokoro::launch(&model)
            .args(["--espeak-voice-id".to_string(), id.to_string()])
            .expect_exit(Duration::from_secs(60));
        assert_eq!(exit.status.code(), Some(2), "{id}: {}", exit.stderr);
        assert!(exit.stderr.contains("--espeak-voice-id"), "{}", exit.stderr);
        assert!(exit.stderr.contains("unsupported language"), "{}", exit.stderr);
        assert!(!exit.stderr.contains("root:"), "{}", exit.stderr);
    }
}
