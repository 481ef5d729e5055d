//! TLS on the gateway's port (certificates made by rcgen): HTTPS and WSS work with a client
//! that trusts the certificate, a client that trusts another certificate refuses the
//! connection, plain HTTP to the TLS port gets a clear 400, and `config.reload` re-reads the
//! files (a renewed certificate serves new connections).

use crate::support;

use crate::support::raw_http;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use raw_http::{RAW_TIMEOUT, http_get, parse_response_bytes};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use support::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for localhost: (certificate PEM, key PEM, certificate DER).
fn certificate() -> (String, String, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("rcgen makes a certificate");
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().clone(),
    )
}

fn write_pair(dir: &Path, name: &str, cert: &str, key: &str) -> (String, String) {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert).expect("write cert");
    std::fs::write(&key_path, key).expect("write key");
    (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    )
}

fn tls_toml(cert: &str, key: &str) -> String {
    format!("\n[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n")
}

/// A client that trusts only `trusted`.
async fn connect(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).expect("root added");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(
        RAW_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake within the timeout")
}

async fn https_get(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    path: &str,
) -> (u16, Value) {
    let mut tls = connect(addr, trusted).await.expect("tls connects");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(RAW_TIMEOUT, tls.read_to_end(&mut bytes))
        .await
        .expect("response within the timeout");
    let reply = parse_response_bytes(&bytes);
    (reply.status, reply.json())
}

/// One request over `wss://` and its reply.
async fn wss_call(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    method: &str,
    params: Value,
) -> Value {
    let tls = connect(addr, trusted).await.expect("tls connects");
    let url = format!("wss://localhost:{}/", addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("websocket over tls");
    let frame = json!({ "id": 1, "method": method, "params": params });
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
    loop {
        let message = tokio::time::timeout(RAW_TIMEOUT, ws.next())
            .await
            .expect("reply within the timeout")
            .expect("connection open")
            .expect("frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("json frame");
            if value["id"] == json!(1) && value.get("event").is_none() {
                return value;
            }
        }
    }
}

#[tokio::test]
async fn https_and_wss_on_the_same_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, der) = certificate();
    let (cert_path, key_path) = write_pair(dir.path(), "a", &cert, &key);
    let gw = TestGateway::start_in(dir, &tls_toml(&cert_path, &key_path)).await;

    let (status, body) = https_get(gw.addr, &der, "/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");

    let reply = wss_call(gw.addr, &der, "system.info", json!({})).await;
    assert!(reply.get("result").is_some(), "{reply}");
}

#[tokio::test]
async fn a_client_trusting_another_certificate_refuses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, _) = certificate();
    let (_, _, other) = certificate();
    let (cert_path, key_path) = write_pair(dir.path(), "a", &cert, &key);
    let gw = TestGateway::start_in(dir, &tls_toml(&cert_path, &key_path)).await;
    let refused = connect(gw.addr, &other).await;
    let error = refused.expect_err("the client must refuse an unknown certificate");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, _) = certificate();
    let (cert_path, key_path) = write_pair(dir.path(), "a", &cert, &key);
    let gw = TestGateway::start_in(dir, &tls_toml(&cert_path, &key_path)).await;
    let reply = http_get(gw.addr, "/health", &[]).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("https://") && message.contains("wss://"),
        "{message}"
    );
}

#[tokio::test]
async fn config_reload_reads_renewed_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_a, key_a, der_a) = certificate();
    let (cert_path, key_path) = write_pair(dir.path(), "live", &cert_a, &key_a);
    let gw = TestGateway::start_in(dir, &tls_toml(&cert_path, &key_path)).await;
    assert_eq!(https_get(gw.addr, &der_a, "/health").await.0, 200);

    // Renewal: new files at the same paths, then config.reload.
    let (cert_b, key_b, der_b) = certificate();
    std::fs::write(&cert_path, &cert_b).expect("write cert");
    std::fs::write(&key_path, &key_b).expect("write key");
    let reply = wss_call(gw.addr, &der_a, "config.reload", json!({})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    assert_eq!(https_get(gw.addr, &der_b, "/health").await.0, 200);
    assert!(
        connect(gw.addr, &der_a).await.is_err(),
        "the old certificate is gone"
    );

    // Files that do not fit together: the reload says so, the running certificate stays.
    std::fs::write(&key_path, &key_a).expect("write mismatched key");
    let reply = wss_call(gw.addr, &der_b, "config.reload", json!({})).await;
    let message = reply["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("server.tls"), "{reply}");
    assert_eq!(https_get(gw.addr, &der_b, "/health").await.0, 200);
}

#[tokio::test]
async fn unusable_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flynn.toml");
    let missing = dir.path().join("missing.pem").display().to_string();
    let data = dir.path().join("data").display().to_string();
    std::fs::write(
        &path,
        format!(
            "[storage]\ndata_dir = {data:?}\n[server]\nport = 0\n{}",
            tls_toml(&missing, &missing)
        ),
    )
    .expect("write config");
    let config = flynn_gateway::Config::load(&path).expect("valid config");
    let error = match flynn_gateway::start(config, Some(path)).await {
        Ok(_) => panic!("the gateway must not start without its certificate"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("server.tls.cert_file") && error.contains("missing.pem"),
        "{error}"
    );
}
