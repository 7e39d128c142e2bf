//! HTTPS with rustls, from PEM files given on the command line.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file has no usable PEM item.
    #[error("{0}")]
    Content(String),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// Builds the acceptor, checking that the certificate chain and key exist, parse and match.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let open = |what: &'static str, path: &std::path::Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|source| TlsError::Read {
                what,
                path: path.display().to_string(),
                source,
            })
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open("certificate", &files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError::Content(format!(
                "{} is not a PEM certificate chain: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError::Content(format!(
            "{} contains no PEM certificate (expected '-----BEGIN CERTIFICATE-----')",
            files.cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut open("private key", &files.key)?)
        .map_err(|e| TlsError::Content(format!("{} is not a PEM private key: {e}", files.key.display())))?
        .ok_or_else(|| TlsError::Content(format!("{} contains no PEM private key", files.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
