//! Hostile clients and stuck backends against the real binary (sine and faulty plugins): slow or
//! half-sent requests, too many connections, hostile JSON and strings, browser-origin attacks,
//! API keys, backends that ignore their deadline, clients that leave, SIGTERM. After each attack
//! the same process must still be up and serve a normal request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tts_e2e::{scratch_dir, sine, Launch, Server};

const RATE: u32 = 24_000;

/// The same process is up and answers a normal request correctly.
fn assert_still_serves(server: &mut Server) {
    assert!(
        server.is_running(),
        "the server died; stderr:\n{}",
        server.stderr()
    );
    let r = server.speech(&json!({"input": "ok", "response_format": "pcm"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete);
    assert_eq!(r.body.len(), 2 * sine::expected_samples("ok", 1.0, RATE));
}

/// Reads until EOF, an error or `limit`; returns what was read and when it ended.
fn read_all(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration, bool) {
    let start = Instant::now();
    tcp.set_read_timeout(Some(limit)).expect("set a read timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (out, start.elapsed(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (out, start.elapsed(), false)
            }
            Err(_) => return (out, start.elapsed(), true),
        }
    }
}

fn status_of(raw: &[u8]) -> Option<u16> {
    std::str::from_utf8(raw.get(..12)?)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

fn body_json(raw: &[u8]) -> Value {
    let text = String::from_utf8_lossy(raw);
    let (_, body) = text.split_once("\r\n\r\n").expect("a response head");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn half_sent_heads_and_silent_connections_are_closed_by_the_header_timeout() {
    let mut server = Launch::sine().args(["--header-read-timeout", "1"]).start();
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut tcp = server.connect();
            if i % 5 != 0 {
                // Every fifth connection sends nothing at all.
                tcp.write_all(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
                    .unwrap();
            }
            tcp
        })
        .collect();
    // Meanwhile a normal client is served.
    assert_still_serves(&mut server);
    let started = Instant::now();
    let mut closed = 0;
    for tcp in &mut conns {
        let (_, _, eof) = read_all(tcp, Duration::from_secs(4));
        if eof {
            closed += 1;
        }
    }
    let took = started.elapsed();
    assert_eq!(closed, 50, "connections left open after the header timeout");
    assert!(took < Duration::from_secs(4), "closing took {took:?}");
    assert_still_serves(&mut server);
}

#[test]
fn a_slow_body_gets_408() {
    let mut server = Launch::sine().args(["--body-read-timeout", "1"]).start();
    let mut tcp = server.connect();
    tcp.write_all(
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"input\": ",
    )
    .unwrap();
    let (raw, took, _) = read_all(&mut tcp, Duration::from_secs(5));
    assert_eq!(status_of(&raw), Some(408), "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body_json(&raw)["error"]["code"], "request_timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_still_serves(&mut server);
}

#[test]
fn connections_over_the_limit_are_refused_at_once() {
    let mut server = Launch::sine().args(["--max-connections", "4"]).start();
    // Four connections that hold their slots (a request head in progress).
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut tcp = server.connect();
            tcp.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
            tcp
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let mut extra = server.connect();
        let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let (raw, took, eof) = read_all(&mut extra, Duration::from_secs(3));
        assert!(eof, "the refused connection was kept open");
        assert!(took < Duration::from_secs(2), "refusing took {took:?}");
        // Refused, never served: a 503 envelope, then the close.
        assert_eq!(status_of(&raw), Some(503), "{}", String::from_utf8_lossy(&raw));
        assert_eq!(body_json(&raw)["error"]["code"], "too_many_connections");
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = server.get("/health");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released: {}", r.status);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_still_serves(&mut server);
}

#[test]
fn huge_and_malformed_json_is_refused() {
    let mut server = Launch::sine().args(["--max-body-bytes", "200000"]).start();
    let ct = [("content-type", "application/json")];
    let post = |body: &[u8]| server.request("POST", "/v1/audio/speech", &ct, body);
    let deep = "[".repeat(100_000);
    let e = post(deep.as_bytes()).assert_error(400, None);
    assert_eq!(e["code"], "invalid_json");
    let e = post(br#"{"input": "hi", "input": "there"}"#).assert_error(400, None);
    assert!(
        e["message"].as_str().unwrap().contains("duplicate key 'input'"),
        "{e:?}"
    );
    let e = post(b"{\"input\": \"\xff\xfe\xfd\"}").assert_error(400, None);
    assert_eq!(e["code"], "invalid_json");
    let e = post(&vec![b' '; 200_001]).assert_error(413, None);
    assert_eq!(e["code"], "request_too_large");
    // Chunked, no Content-Length: the limit holds while reading.
    let mut tcp = server.connect();
    tcp.write_all(
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let chunk = vec![b' '; 65_536];
    for _ in 0..4 {
        let _ = tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = tcp.write_all(&chunk);
        let _ = tcp.write_all(b"\r\n");
    }
    let (raw, _, _) = read_all(&mut tcp, Duration::from_secs(5));
    assert_eq!(status_of(&raw), Some(413), "{}", String::from_utf8_lossy(&raw));
    assert_still_serves(&mut server);
}

#[test]
fn control_characters_in_fields_are_never_logged_raw() {
    let mut server = Launch::sine().args(["--espeak-voice-id", "en"]).start();
    let evil = "x\n2099-01-01T00:00:00Z ERROR forged log line\r\u{1b}[31mred\u{1b}[0m\u{7}\u{85}";
    let fields = [
        "model",
        "voice",
        "response_format",
        "stream_format",
        "language",
        "lang_code",
        "instructions",
        "input",
        "extension",
    ];
    for field in fields {
        let mut body = json!({"input": "hi", "response_format": "pcm"});
        body[field] = json!(evil);
        let r = server.speech(&body);
        // Whatever the answer, nothing raw comes back in an error message either.
        if r.status != 200 {
            let e = r.assert_error(r.status, r.json()["error"]["param"].as_str());
            let m = e["message"].as_str().unwrap();
            assert!(!m.chars().any(char::is_control), "{field}: {m:?}");
        }
    }
    let mut body = json!({"input": "hi", "response_format": "pcm"});
    body["voice"] = json!({"id": evil});
    server.speech(&body);
    // A path with encoded control characters.
    server.get("/v1/%0a%1b%5b31m/forged%0d%0aline");
    // Let the log lines arrive.
    std::thread::sleep(Duration::from_millis(300));
    let raw = server.raw_stderr();
    assert!(!raw.contains(&0x1b), "a raw ESC reached the log");
    assert!(!raw.contains(&0x07), "a raw BEL reached the log");
    assert!(!raw.contains(&b'\r'), "a raw CR reached the log");
    let text = String::from_utf8_lossy(&raw);
    for line in text.lines() {
        assert!(!line.starts_with("2099-01-01"), "a forged line: {line:?}");
        assert!(!line.contains('\u{85}'), "a raw NEL: {line:?}");
    }
    assert!(
        text.contains("forged log line"),
        "the escaped field should be logged: {text}"
    );
    assert_still_serves(&mut server);
}

#[test]
fn missing_or_wrong_content_type_is_415() {
    let mut server = Launch::sine().start();
    let body = json!({"input": "hi", "response_format": "pcm"}).to_string();
    let e = server
        .request("POST", "/v1/audio/speech", &[], body.as_bytes())
        .assert_error(415, None);
    assert_eq!(e["code"], "unsupported_media_type");
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        server
            .request(
                "POST",
                "/v1/audio/speech",
                &[("content-type", ct)],
                body.as_bytes(),
            )
            .assert_error(415, None);
    }
    let r = server.request(
        "POST",
        "/v1/audio/speech",
        &[("content-type", "application/vnd.openai+json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_still_serves(&mut server);
}

/// A raw request with exactly these headers (the harness's client always sends its own Host).
fn raw_request(server: &Server, head: &str) -> Vec<u8> {
    let mut tcp = server.connect();
    tcp.write_all(head.as_bytes()).expect("send the request");
    read_all(&mut tcp, Duration::from_secs(5)).0
}

#[test]
fn host_header_rebinding_is_refused() {
    let mut server = Launch::sine().args(["--allowed-host", "tts.example"]).start();
    for (host, status) in [
        ("evil.example", 403),
        ("evil.example:8080", 403),
        ("localhost.evil.example", 403),
        ("localhost:1234", 200),
        ("127.0.0.1", 200),
        ("[::1]:80", 200),
        ("tts.example:8080", 200),
    ] {
        let raw = raw_request(
            &server,
            &format!("GET /v1/models HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(
            status_of(&raw),
            Some(status),
            "{host}: {}",
            String::from_utf8_lossy(&raw)
        );
        if status == 403 {
            assert_eq!(body_json(&raw)["error"]["code"], "host_not_allowed");
        }
    }
    // HTTP/1.0 without a Host header is served (documented).
    let raw = raw_request(&server, "GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&raw), Some(200), "{}", String::from_utf8_lossy(&raw));
    assert_still_serves(&mut server);
}

#[test]
fn cors_off_by_default_and_on_for_listed_origins() {
    let preflight = "OPTIONS /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\n\
                     Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\
                     Connection: close\r\n\r\n";
    let mut off = Launch::sine().start();
    let raw = raw_request(&off, preflight);
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert_eq!(status_of(&raw), Some(405), "{text}");
    assert!(!text.contains("access-control-allow-origin"), "{text}");
    assert_still_serves(&mut off);
    drop(off);

    let mut on = Launch::sine()
        .args(["--cors-origin", "https://app.example"])
        .start();
    let raw = raw_request(&on, preflight);
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert_eq!(status_of(&raw), Some(204), "{text}");
    assert!(
        text.contains("access-control-allow-origin: https://app.example"),
        "{text}"
    );
    assert!(text.contains("vary: origin"), "{text}");
    let raw = raw_request(&on, &preflight.replace("app.example", "evil.example"));
    assert_eq!(status_of(&raw), Some(403));
    let r = on.request(
        "POST",
        "/v1/audio/speech",
        &[
            ("content-type", "application/json"),
            ("origin", "https://app.example"),
        ],
        json!({"input": "hi", "response_format": "pcm"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = on.request("GET", "/health", &[("origin", "https://evil.example")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The test page is same-origin and keeps working.
    assert_eq!(on.get("/").status, 200);
    assert_still_serves(&mut on);
}

#[test]
fn api_keys_case_trim_file_env_and_www_authenticate() {
    let dir = scratch_dir("keys");
    let file = dir.join("keys.txt");
    std::fs::write(&file, "# team keys\n\n  from-file  \n#disabled\n").unwrap();
    let mut server = Launch::sine()
        .args([
            "--api-key",
            "  padded  ",
            "--api-keys-file",
            &file.display().to_string(),
        ])
        .start();
    let body = json!({"input": "hi", "response_format": "pcm"}).to_string();
    let post = |auth: Option<&str>| {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        server.request("POST", "/v1/audio/speech", &headers, body.as_bytes())
    };
    for ok in [
        "Bearer padded",
        "bearer padded",
        "BEARER   padded  ",
        "Bearer from-file",
    ] {
        assert_eq!(post(Some(ok)).status, 200, "{ok}");
    }
    for bad in [
        None,
        Some("Bearer disabled"),
        Some("Bearer #disabled"),
        Some("Basic padded"),
        Some("padded"),
    ] {
        let r = post(bad);
        r.assert_error(401, None);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{bad:?}");
    }
    assert!(!server.stderr().contains("padded"), "a key reached the log");
    assert_still_serves_with_key(&mut server, "Bearer padded");
    drop(server);

    // Comma list in the environment, trimmed.
    let server = Launch::sine().env("TTS_API_KEY", " one , two ").start();
    let ok = server.request("GET", "/v1/models", &[("authorization", "Bearer two")], b"");
    assert_eq!(ok.status, 200);
    server
        .request("GET", "/v1/models", &[("authorization", "Bearer three")], b"")
        .assert_error(401, None);
    drop(server);

    // An empty keys file stops start-up with exit code 2.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let exit = Launch::sine()
        .args(["--api-keys-file", &empty.display().to_string()])
        .expect_exit(Duration::from_secs(20));
    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(exit.stderr.contains("no key"), "{}", exit.stderr);
    let exit = Launch::sine()
        .args(["--api-keys-file", &dir.join("missing.txt").display().to_string()])
        .expect_exit(Duration::from_secs(20));
    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
}

fn assert_still_serves_with_key(server: &mut Server, auth: &str) {
    assert!(server.is_running());
    let r = server.request(
        "POST",
        "/v1/audio/speech",
        &[("content-type", "application/json"), ("authorization", auth)],
        json!({"input": "ok", "response_format": "pcm"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn faulty_speak(server: &Server, fault: Option<&str>) -> tts_e2e::Response {
    let mut body = json!({"input": "abcd", "voice": "faulty", "response_format": "pcm"});
    if let Some(f) = fault {
        body["fault"] = json!(f);
    }
    server.speech(&body)
}

#[test]
fn a_stalled_backend_is_written_off_and_replaced() {
    let mut server = Launch::faulty()
        .args(["--timeout", "1", "--stall-grace", "1"])
        .option("stall_ms", "4000")
        .start();
    let r = faulty_speak(&server, Some("stall"));
    r.assert_error(504, None);
    let took = server
        .wait_health(Duration::from_secs(4), |h| {
            h["written_off"] == 1 && h["instances"] == 1
        })
        .unwrap_or_else(|| panic!("not written off and replaced; stderr:\n{}", server.stderr()));
    assert!(took < Duration::from_secs(3), "{took:?}");
    let h = server.health();
    assert_eq!(h["status"], "ok");
    let states: Vec<&str> = h["instance_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["written_off", "idle"], "{h}");
    assert_eq!(server.log_count("written off"), 1, "{}", server.stderr());
    assert!(
        server.stderr().contains("ERROR"),
        "the write-off is logged at error level"
    );
    // The replacement serves at once.
    let r = faulty_speak(&server, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), 2 * 4 * 1200);
    // The stuck thread returns after 4 s: it drops its backend and ends, taking no job.
    assert!(
        server
            .wait_health(Duration::from_secs(6), |h| h["instance_states"][0]["state"]
                == "retired")
            .is_some(),
        "{}",
        server.stderr()
    );
    assert_eq!(server.health()["instance_states"][0]["jobs"], 1);
    assert!(server.is_running());
    assert_eq!(faulty_speak(&server, None).status, 200);
}

#[test]
fn past_max_written_off_health_is_503_and_sigterm_still_exits_0() {
    let mut server = Launch::faulty()
        .args(["--timeout", "1", "--stall-grace", "0.5", "--max-written-off", "0"])
        .start();
    faulty_speak(&server, Some("wedge")).assert_error(504, None);
    let deadline = Instant::now() + Duration::from_secs(4);
    let degraded = loop {
        let r = server.get("/health");
        if r.status == 503 {
            break r;
        }
        assert!(Instant::now() < deadline, "never degraded: {}", r.text());
        std::thread::sleep(Duration::from_millis(50));
    };
    let h = degraded.json();
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["written_off"], 1);
    assert_eq!(h["instances"], 0);
    assert!(degraded.header("retry-after").is_some());
    // No instance: the speech route says so at once instead of queueing into a timeout.
    let e = faulty_speak(&server, None).assert_error(503, None);
    assert_eq!(e["code"], "backend_unavailable");
    assert!(server.is_running());
    let started = Instant::now();
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_leaving_while_queued_is_never_run() {
    let mut server = Launch::sine()
        .args(["-np", "1"])
        .option("delay_ms", "300")
        .start();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| server.speech(&json!({"input": "a b c d", "response_format": "pcm"})));
        assert!(server
            .wait_health(Duration::from_secs(5), |h| h["busy"] == 1)
            .is_some());
        let mut queued = server.connect();
        let body = json!({"input": "never spoken", "response_format": "pcm"}).to_string();
        queued
            .write_all(
                format!(
                    "POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
        assert!(
            server
                .wait_health(Duration::from_secs(5), |h| h["queued_or_running"] == 2)
                .is_some(),
            "the second request was never queued"
        );
        drop(queued);
        let r = first.join().unwrap();
        assert_eq!(r.status, 200);
    });
    assert!(server
        .wait_health(Duration::from_secs(5), |h| h["busy"] == 0
            && h["queued_or_running"] == 0)
        .is_some());
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr();
    assert_eq!(
        server.log_count("request cancelled while queued; not run"),
        1,
        "{log}"
    );
    assert_eq!(server.log_count("request done"), 1, "{log}");
    assert_eq!(
        server.health()["instance_states"][0]["jobs"],
        1,
        "the cancelled job ran"
    );
    assert_still_serves(&mut server);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_exits_0() {
    let mut server = Launch::sine().option("delay_ms", "300").start();
    let text = "one two three four";
    let mut s = server.open_speech(&json!({"input": text, "response_format": "pcm"}));
    assert_eq!(s.status, 200);
    let first = s.next_piece().unwrap().expect("a first chunk");
    server.terminate();
    // New connections are no longer accepted once the listener is closed.
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect_timeout(&server.addr, Duration::from_secs(1))
        .map(|mut t| {
            let _ = t.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            read_all(&mut t, Duration::from_secs(2)).0
        })
        .unwrap_or_default();
    assert!(status_of(&refused) != Some(200), "served after SIGTERM");
    let rest = s.finish();
    assert!(rest.complete, "the in-flight request was cut: {:?}", rest.error);
    assert_eq!(
        first.len() + rest.body.len(),
        2 * sine::expected_samples(text, 1.0, RATE)
    );
    let status = server.wait_exit(Duration::from_secs(10)).expect("exited");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        server.stderr().contains("backend instances stopped"),
        "{}",
        server.stderr()
    );
}
