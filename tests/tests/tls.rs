//! HTTPS with `--ssl-file-cert/--ssl-file-key`: a self-signed certificate made here serves the API,
//! and unusable files stop start-up with a clear message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tts_e2e::{scratch_dir, sine, Launch};

struct Pair {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn self_signed(tag: &str) -> Pair {
    let dir = scratch_dir(tag);
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("rcgen makes a certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("write the key");
    Pair {
        cert,
        key,
        der: made.cert.der().to_vec(),
    }
}

#[test]
fn https_serves_the_api() {
    let pair = self_signed("tls-ok");
    let server = Launch::sine()
        .tls(&pair.cert, &pair.key, pair.der.clone())
        .start();
    assert!(
        server.stderr().contains("listening on https://"),
        "{}",
        server.stderr()
    );
    assert_eq!(server.health()["status"], "ok");
    let r = server.speech(&json!({"input": "secure", "response_format": "pcm"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.complete, "{:?}", r.error);
    assert_eq!(r.body.len(), 2 * sine::expected_samples("secure", 1.0, 24_000));
    server
        .speech(&json!({"input": ""}))
        .assert_error(400, Some("input"));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = tts_e2e::http::open(server.addr, None, "GET", "/health", &[], b"");
    assert!(
        plain.as_ref().map_or(true, |s| s.status != 200),
        "plain HTTP was answered 200 on the HTTPS port"
    );
}

fn expect_tls_failure(cert: &Path, key: &Path, needle: &str) {
    let exit = Launch::sine()
        .tls(cert, key, Vec::new())
        .expect_exit(Duration::from_secs(20));
    assert_eq!(exit.status.code(), Some(1), "stderr:\n{}", exit.stderr);
    let line = exit
        .stderr
        .lines()
        .find(|l| l.starts_with("tts-host: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", exit.stderr));
    assert!(line.contains(needle), "want {needle:?} in: {line}");
}

#[test]
fn unusable_tls_files_stop_start_up() {
    let pair = self_signed("tls-bad");
    let other = self_signed("tls-other");
    let dir = scratch_dir("tls-bad");
    let missing = dir.join("no-such-key.pem");
    expect_tls_failure(&pair.cert, &missing, "no-such-key.pem");

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    expect_tls_failure(&pair.cert, &garbage, "garbage.pem");

    expect_tls_failure(&garbage, &pair.key, "garbage.pem");

    // Both files are fine on their own but do not belong together.
    expect_tls_failure(&pair.cert, &other.key, "cannot be used together");
}
