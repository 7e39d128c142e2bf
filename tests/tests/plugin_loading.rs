//! Start-up failures of the real binary: each way loading a plugin can fail ends the process with
//! exit code 1 (2 when the backend refuses its configuration, like a bad flag) and a short, clear
//! message on stderr (no crash, no abort, no wall of text).

use std::time::Duration;

use tts_e2e::{plugin, scratch_dir, Exit, Launch};

fn assert_clean_failure(exit: &Exit, what: &str) {
    assert_clean_exit(exit, what, 1);
}

fn assert_clean_exit(exit: &Exit, what: &str, code: i32) {
    assert_eq!(
        exit.status.code(),
        Some(code),
        "{what}: want exit code {code} (not a crash or abort signal), got {}; stderr:\n{}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.stderr.lines().any(|l| l.starts_with("tts-host: ")),
        "{what}: no 'tts-host: …' error line; stderr:\n{}",
        exit.stderr
    );
}

fn error_line(exit: &Exit) -> String {
    let start = exit.stderr.find("tts-host: ").expect("an error line");
    exit.stderr[start..].to_string()
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn an_abi_mismatch_is_refused_with_a_short_summary() {
    let exit = Launch::with_plugin(plugin("faulty_abi")).expect_exit(WAIT);
    assert_clean_failure(&exit, "ABI mismatch");
    let message = error_line(&exit);
    assert!(message.contains("libtts_backend_faulty_abi.so"), "{message}");
    assert!(message.contains("different plugin ABI"), "{message}");
    assert!(
        exit.stderr.lines().count() < 20,
        "the ABI report should be a summary, got {} lines:\n{}",
        exit.stderr.lines().count(),
        exit.stderr
    );
    assert!(message.contains("Error:"), "{message}");
    // The summary names what the host expected and what it found.
    let expected = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("Expected:"))
        .map(str::trim)
        .unwrap_or_default();
    let found = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("Found:"))
        .map(str::trim)
        .unwrap_or_default();
    assert!(
        !expected.is_empty() && !found.is_empty(),
        "the summary lacks the Expected/Found values:\n{message}"
    );
    assert!(
        !exit.stderr.contains("the faulty-abi plugin was initialised"),
        "the plugin's code ran"
    );
}

#[test]
fn a_missing_plugin_is_named() {
    let path = scratch_dir("missing").join("libtts_backend_nowhere.so");
    let exit = Launch::with_plugin(path).expect_exit(WAIT);
    assert_clean_failure(&exit, "missing plugin");
    let message = error_line(&exit);
    assert!(message.contains("libtts_backend_nowhere.so"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused() {
    let dir = scratch_dir("not-a-plugin");
    let text = dir.join("libtts_backend_text.so");
    std::fs::write(&text, "not an ELF file\n").unwrap();
    let exit = Launch::with_plugin(text).expect_exit(WAIT);
    assert_clean_failure(&exit, "text file");
    let message = error_line(&exit);
    assert!(message.contains("libtts_backend_text.so"), "{message}");
    assert!(message.contains("cannot open backend plugin"), "{message}");

    // A real shared library that exports no backend module: libc is on every Linux machine,
    // and so is the test binary's own shared dependency set; use whichever libc path exists.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists());
    if let Some(libc) = libc {
        let exit = Launch::with_plugin(libc).expect_exit(WAIT);
        assert_clean_failure(&exit, "libc");
        let message = error_line(&exit);
        assert!(message.contains("is not a tts-host backend plugin"), "{message}");
    }
}

#[test]
fn a_constructor_error_stops_start_up() {
    let exit = Launch::faulty().option("mode", "error-on-load").expect_exit(WAIT);
    assert_clean_exit(&exit, "error-on-load", 2);
    let message = error_line(&exit);
    assert!(message.contains("the backend failed to start"), "{message}");
    assert!(message.contains("mode=error-on-load"), "{message}");
}

#[test]
fn a_constructor_panic_stops_start_up_without_aborting() {
    let exit = Launch::faulty().option("mode", "panic-on-load").expect_exit(WAIT);
    assert_clean_failure(&exit, "panic-on-load");
    let message = error_line(&exit);
    assert!(message.contains("the backend failed to start"), "{message}");
    assert!(message.contains("panicking in the constructor"), "{message}");
}

#[test]
fn an_unknown_mode_is_a_configuration_error() {
    let exit = Launch::faulty().option("mode", "explode").expect_exit(WAIT);
    assert_clean_exit(&exit, "unknown mode", 2);
    assert!(
        error_line(&exit).contains("mode=explode is not a known fault"),
        "{}",
        exit.stderr
    );
}
