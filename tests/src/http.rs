//! A deliberately small HTTP/1.1 client: one connection per request (`Connection: close`), any
//! method, headers and body bytes, a body read chunk by chunk, and a way to tell a complete
//! chunked body from one the server cut off.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

/// A connection: plain TCP or TLS.
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// A client configuration trusting exactly `root_der`.
pub fn tls_config(root_der: Vec<u8>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root_der))
        .expect("the test certificate is a valid root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Whether the body ended properly (terminating chunk, full length, or clean close).
    pub complete: bool,
    /// Whether the body was sent with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Body pieces as they arrived (chunk boundaries for chunked bodies).
    pub pieces: usize,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
    /// The read error that ended an incomplete body.
    pub error: Option<String>,
}

impl Response {
    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// Asserts an OpenAI error envelope with exactly `message`, `type`, `param`, `code`, the
    /// given status and `param`; returns the inner `error` object.
    pub fn assert_error(
        &self,
        status: u16,
        param: Option<&str>,
    ) -> serde_json::Map<String, serde_json::Value> {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "error content type"
        );
        let body = self.json();
        let outer = body.as_object().expect("envelope is an object");
        assert_eq!(outer.keys().collect::<Vec<_>>(), ["error"], "envelope: {body}");
        let error = outer["error"].as_object().expect("error is an object").clone();
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"], "envelope: {body}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message: {body}"
        );
        assert!(
            error["type"].as_str().is_some_and(|t| !t.is_empty()),
            "type: {body}"
        );
        assert!(
            error["code"].is_null() || error["code"].is_string(),
            "code: {body}"
        );
        match param {
            Some(p) => assert_eq!(error["param"], p, "param: {body}"),
            None => assert!(error["param"].is_null(), "param: {body}"),
        }
        error
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

/// A response whose body has not been read yet. Dropping it closes the connection.
pub struct Streaming {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    reader: BufReader<Box<dyn Conn>>,
    framing: Framing,
    done: bool,
    started: Instant,
    pieces: usize,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed {what}"))
}

impl Streaming {
    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// When the request was sent.
    pub fn started(&self) -> Instant {
        self.started
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(eof("inside a chunked body"));
        }
        Ok(line.trim_end().to_string())
    }

    /// The next piece of the body, `None` at its proper end, an error when it was cut off.
    pub fn next_piece(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let piece = match self.framing {
            Framing::Chunked => {
                let line = self.read_line()?;
                let hex = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(hex, 16).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}"))
                })?;
                if size == 0 {
                    while !self.read_line()?.is_empty() {}
                    self.done = true;
                    return Ok(None);
                }
                let mut data = vec![0; size];
                self.reader.read_exact(&mut data)?;
                let mut crlf = [0; 2];
                self.reader.read_exact(&mut crlf)?;
                data
            }
            Framing::Length(0) => {
                self.done = true;
                return Ok(None);
            }
            Framing::Length(left) => {
                let mut data = vec![0; left.min(1 << 16)];
                let n = self.reader.read(&mut data)?;
                if n == 0 {
                    return Err(eof(&format!("with {left} bytes of the body missing")));
                }
                data.truncate(n);
                self.framing = Framing::Length(left - n);
                data
            }
            Framing::UntilClose => {
                let mut data = vec![0; 1 << 16];
                let n = self.reader.read(&mut data)?;
                if n == 0 {
                    self.done = true;
                    return Ok(None);
                }
                data.truncate(n);
                data
            }
        };
        self.pieces += 1;
        Ok(Some(piece))
    }

    /// Reads the rest of the body.
    pub fn finish(mut self) -> Response {
        let mut body = Vec::new();
        let mut error = None;
        loop {
            match self.next_piece() {
                Ok(Some(piece)) => body.extend_from_slice(&piece),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        Response {
            status: self.status,
            headers: self.headers,
            body,
            complete: error.is_none(),
            chunked: matches!(self.framing, Framing::Chunked),
            pieces: self.pieces,
            elapsed: self.started.elapsed(),
            error,
        }
    }
}

/// Connects, sends one request and reads the response head.
pub fn open(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Streaming> {
    let started = Instant::now();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    tcp.set_nodelay(true)?;
    let mut conn: Box<dyn Conn> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
            let client = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(client, tcp))
        }
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    if !has("content-length") && !has("transfer-encoding") && (!body.is_empty() || method == "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    // The server may answer (413) before reading a large body and close; its answer still counts.
    let _ = conn.write_all(body).and_then(|()| conn.flush());

    let mut reader = BufReader::new(conn);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(eof("before the status line"));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(eof("inside the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let framing = if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else if let Some(n) = header(&headers, "content-length").and_then(|v| v.parse().ok()) {
        Framing::Length(n)
    } else if status == 204 || status == 304 || method == "HEAD" {
        Framing::Length(0)
    } else {
        Framing::UntilClose
    };
    Ok(Streaming {
        status,
        headers,
        reader,
        framing,
        done: false,
        started,
        pieces: 0,
    })
}
