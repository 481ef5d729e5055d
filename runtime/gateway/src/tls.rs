//! TLS on the gateway's port (rustls with ring): `wss://` and `https://` beside nothing else.
//!
//! With `[server.tls]` set, every connection must start with a TLS ClientHello; a client that
//! speaks plain HTTP gets one `400` in plain HTTP saying to use `https://`/`wss://`, then the
//! connection closes. The certificate and key are read at start and again on every
//! `config.reload`; a reload whose files cannot be used leaves the running ones in place and
//! says why.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "cannot read server.tls.cert_file {path}: {reason}; give a PEM file with the certificate chain, leaf first"
    )]
    Cert { path: PathBuf, reason: String },
    #[error(
        "cannot read server.tls.key_file {path}: {reason}; give a PEM file with the private key (PKCS#8, PKCS#1 or SEC1)"
    )]
    Key { path: PathBuf, reason: String },
    #[error(
        "server.tls: the certificate and key cannot be used together ({0}); check that key_file is the certificate's key"
    )]
    Config(String),
}

/// The current TLS acceptor (none without `[server.tls]`), swapped on `config.reload`.
#[derive(Default)]
pub struct Tls {
    acceptor: RwLock<Option<TlsAcceptor>>,
}

impl Tls {
    /// Loads the files of `config` (none: plain connections).
    pub fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            acceptor: RwLock::new(load(config)?),
        })
    }

    /// Puts an acceptor from [`load`] in place (for connections accepted from now on).
    pub fn set(&self, next: Option<TlsAcceptor>) {
        match self.acceptor.write() {
            Ok(mut a) => *a = next,
            Err(p) => *p.into_inner() = next,
        }
    }

    /// The acceptor for a new connection, when TLS is on.
    pub fn current(&self) -> Option<TlsAcceptor> {
        self.acceptor
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn enabled(&self) -> bool {
        self.current().is_some()
    }
}

/// Reads the files of `config` into an acceptor (none without `[server.tls]`).
pub fn load(config: &TlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: key_file.clone(),
        reason: pem_reason(&e),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Cert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(error("no CERTIFICATE block in it".into()));
    }
    Ok(certs)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no matching PEM block in it".into(),
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The first byte of a TLS handshake record: a connection to a TLS port must start with it.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to plain HTTP on a TLS port (then the connection closes).
pub fn plain_http_refusal() -> Vec<u8> {
    let body = serde_json::json!({ "error": { "code": -2, "message":
        "this port speaks TLS (server.tls is set): use https:// or wss://" } })
    .to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Most bytes of a plain HTTP request read (and dropped) before answering it on a TLS port.
const MAX_PLAIN_PROBE_BYTES: usize = 16 * 1024;

/// Starts TLS on a new connection within `timeout`. A connection that does not start with a
/// TLS handshake gets [`plain_http_refusal`]; `Err` says why the connection is not usable.
pub async fn accept(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
    timeout: std::time::Duration,
) -> Result<Transport, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Err(_) => return Err("no TLS handshake within server.handshake_timeout_ms".into()),
        Ok(Err(e)) => return Err(format!("reading the first byte failed: {e}")),
        Ok(Ok(0)) => return Err("closed before sending anything".into()),
        Ok(Ok(_)) => {}
    }
    if first[0] != HANDSHAKE_RECORD {
        // Read what the client sent (its request head) so closing does not reset the
        // connection before it reads the answer.
        let mut sink = vec![0u8; MAX_PLAIN_PROBE_BYTES];
        let _ = tokio::time::timeout_at(deadline, stream.read(&mut sink)).await;
        let _ = tokio::time::timeout_at(deadline, async {
            stream.write_all(&plain_http_refusal()).await?;
            stream.shutdown().await
        })
        .await;
        return Err("plain HTTP on the TLS port (answered 400)".into());
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Err(_) => Err("TLS handshake not finished within server.handshake_timeout_ms".into()),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Ok(Ok(tls)) => Ok(Transport::Tls(Box::new(tls))),
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP stream under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
