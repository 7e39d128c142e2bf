//! The end-to-end harness: finds the built `tts-host` binary and plugins, starts the server on
//! `127.0.0.1:0`, and talks HTTP/1.1 to it with a small client that can stream, stop mid-body and
//! send anything (wrong content types, malformed bodies), over plain TCP or TLS.
//!
//! The binary and plugins are not built by `cargo test` (it does not build other crates' cdylibs
//! and binaries): run `cargo build --workspace` first, as `.ci/run` does.

#![deny(unsafe_code)]

pub mod audio;
pub mod http;
pub mod kokoro;
pub mod sine;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use http::{Response, Streaming};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// `target/debug` (or `$CARGO_TARGET_DIR/debug`), where `cargo build --workspace` puts the
/// binary and the plugins.
pub fn profile_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

fn built(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first (cargo test does not build other \
         crates' binaries and plugins)",
        path.display()
    );
    path
}

/// The `tts-host` binary.
pub fn host_binary() -> PathBuf {
    built("tts-host")
}

/// A plugin by crate suffix: `sine`, `faulty`, `faulty_abi`.
pub fn plugin(name: &str) -> PathBuf {
    built(&format!("libtts_backend_{name}.so"))
}

/// A scratch directory unique to this test process and `tag`.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tts-e2e-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cannot create a scratch directory");
    dir
}

/// Removes ANSI colour sequences from a log line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Launch {
    plugin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    tls_root: Option<Vec<u8>>,
}

/// How the process ended when it was expected not to start.
#[derive(Debug)]
pub struct Exit {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Launch {
    /// The sine plugin.
    pub fn sine() -> Self {
        Self::with_plugin(plugin("sine"))
    }

    /// The faulty plugin.
    pub fn faulty() -> Self {
        Self::with_plugin(plugin("faulty"))
    }

    /// Any plugin file (or a path that is not one).
    pub fn with_plugin(path: PathBuf) -> Self {
        Self {
            plugin: path,
            args: Vec::new(),
            envs: Vec::new(),
            tls_root: None,
        }
    }

    /// Sets an environment variable for the server (after the harness's own, so it wins).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds `--backend-option key=value`.
    pub fn option(self, key: &str, value: &str) -> Self {
        self.args(["--backend-option".to_string(), format!("{key}={value}")])
    }

    /// Serves HTTPS with these PEM files; `root_der` is the certificate clients trust.
    pub fn tls(mut self, cert: &Path, key: &Path, root_der: Vec<u8>) -> Self {
        self.args.extend([
            "--ssl-file-cert".to_string(),
            cert.display().to_string(),
            "--ssl-file-key".to_string(),
            key.display().to_string(),
        ]);
        self.tls_root = Some(root_der);
        self
    }

    fn spawn(&self) -> (Child, Logs, std::sync::mpsc::Receiver<SocketAddr>) {
        let mut child = Command::new(host_binary())
            .arg("--backend")
            .arg(&self.plugin)
            .args(["-p", "0", "--host", "127.0.0.1"])
            .args(&self.args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("TTS_API_KEY")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start tts-host");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        let raw_sink = Arc::clone(&raw);
        std::thread::spawn(move || {
            let mut sent = false;
            let mut reader = BufReader::new(stderr);
            loop {
                let mut bytes = Vec::new();
                match reader.read_until(b'\n', &mut bytes) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                raw_sink.lock().expect("raw log lock").extend_from_slice(&bytes);
                let text = String::from_utf8_lossy(&bytes);
                let line = strip_ansi(text.trim_end_matches(['\n', '\r']));
                if !sent {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        (child, (log, raw), rx)
    }

    /// Starts the server and waits until `/health` answers 200.
    pub fn start(&self) -> Server {
        let (mut child, log, rx) = self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "tts-host exited ({status}) before listening; stderr:\n{}",
                    log.0.lock().expect("log lock")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "tts-host did not log 'listening on' within 30 s; stderr:\n{}",
                    log.0.lock().expect("log lock")
                );
            }
        };
        let tls = self.tls_root.as_ref().map(|der| http::tls_config(der.clone()));
        let mut server = Server {
            child,
            addr,
            log: log.0,
            raw_log: log.1,
            tls,
            loading_seen: None,
        };
        loop {
            match server.try_get("/health", &[]) {
                Ok(r) if r.status == 200 => break,
                Ok(r) if r.status == 503 => {
                    server.loading_seen.get_or_insert(r);
                }
                _ => {}
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "tts-host exited ({status}) while starting; stderr:\n{}",
                    server.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "/health did not answer 200 within 30 s; stderr:\n{}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Runs a server that is expected to fail at start-up; kills it and panics if it is still
    /// running after `timeout`.
    pub fn expect_exit(&self, timeout: Duration) -> Exit {
        let (mut child, log, _rx) = self.spawn();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("cannot wait for tts-host") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tts-host was expected to exit but still runs after {timeout:?}; stderr:\n{}",
                    log.0.lock().expect("log lock")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread finishes at EOF; give it a moment to store the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let stderr = log.0.lock().expect("log lock").clone();
        Exit { status, stderr }
    }
}

/// The server's stderr: lines without colour codes, and the raw bytes.
type Logs = (Arc<Mutex<String>>, Arc<Mutex<Vec<u8>>>);

/// Parses `listening on http://127.0.0.1:PORT` (or https) from a log line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse().ok()
}

/// A running `tts-host`; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    raw_log: Arc<Mutex<Vec<u8>>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The first 503 `/health` answer seen while starting, if the backends were slow enough.
    pub loading_seen: Option<Response>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far (colour codes removed).
    pub fn stderr(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Everything the server wrote to stderr so far, byte for byte.
    pub fn raw_stderr(&self) -> Vec<u8> {
        self.raw_log.lock().expect("raw log lock").clone()
    }

    /// A plain TCP connection to the server, with a 10 s read timeout.
    pub fn connect(&self) -> std::net::TcpStream {
        let tcp = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.addr));
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        tcp.set_nodelay(true).expect("set nodelay");
        tcp
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (through `kill`, so the harness needs no unsafe code).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Opens a request and reads the status line and headers; the body is left to read.
    pub fn open(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Streaming {
        http::open(self.addr, self.tls.clone(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}; server stderr:\n{}", self.stderr()))
    }

    /// A whole request.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.open(method, path, headers, body).finish()
    }

    fn try_get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        http::open(self.addr, self.tls.clone(), "GET", path, headers, b"").map(Streaming::finish)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// `POST /v1/audio/speech` with a JSON body.
    pub fn speech(&self, body: &serde_json::Value) -> Response {
        self.request(
            "POST",
            "/v1/audio/speech",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Opens `POST /v1/audio/speech` without reading the body.
    pub fn open_speech(&self, body: &serde_json::Value) -> Streaming {
        self.open(
            "POST",
            "/v1/audio/speech",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// `GET /health` as JSON (asserting 200).
    pub fn health(&self) -> serde_json::Value {
        let r = self.get("/health");
        assert_eq!(r.status, 200, "/health: {}", r.text());
        r.json()
    }

    /// Polls `/health` until `check` holds; returns how long that took, or `None` on timeout.
    pub fn wait_health(
        &self,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check(&self.health()) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// How many lines of the log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }
}
