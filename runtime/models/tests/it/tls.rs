//! TLS: the rustls (ring) client handshakes with a real TLS server and verifies its certificate,
//! trusting a private CA given as `ca_file` and refusing the server without it.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::support::{MockServer, Script, Stream, drain, fixture, text_of};
use flynn_models::{
    CancellationToken, ChatMessage, ChatRequest, ProviderConfig, ProviderError, ProviderKind,
    build_provider,
};

struct Pki {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Flynn test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server_cert = params.signed_by(&server_key, &ca).unwrap();

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![server_cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    )
    .unwrap();
    Pki {
        ca_pem: ca.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

async fn tls_server(acceptor: TlsAcceptor, scripts: Vec<Script>) -> MockServer {
    let wrap = Arc::new(move |tcp: tokio::net::TcpStream| {
        let acceptor = acceptor.clone();
        Box::pin(async move {
            acceptor
                .accept(tcp)
                .await
                .ok()
                .map(|tls| Box::new(tls) as Box<dyn Stream>)
        })
            as std::pin::Pin<Box<dyn std::future::Future<Output = Option<Box<dyn Stream>>> + Send>>
    });
    MockServer::start_with("/v1", scripts, "https", "127.0.0.1", wrap).await
}

fn config(base_url: &str, ca_file: Option<std::path::PathBuf>) -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: Some(base_url.to_owned()),
        model: Some("m".into()),
        ca_file,
        ..ProviderConfig::default()
    }
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("Hello")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn https_with_a_private_ca_streams() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let mut server = tls_server(
        pki.acceptor,
        vec![Script::sse_per_event(&fixture("openai/text.sse"))],
    )
    .await;
    assert!(server.base_url.starts_with("https://"));
    let provider = build_provider(&config(&server.base_url, Some(ca_file))).unwrap();
    let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_eq!(text_of(&events), "Hello! How can I help you today?");
    assert_eq!(server.request().await.path, "/v1/chat/completions");
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_is_refused() {
    let pki = pki();
    let server = tls_server(
        pki.acceptor,
        vec![Script::sse_per_event(&fixture("openai/text.sse"))],
    )
    .await;
    let provider = build_provider(&config(&server.base_url, None)).unwrap();
    let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::Transport { .. }), "{error}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "the message names the certificate problem: {error}"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("empty.pem");
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let error = build_provider(&config("https://127.0.0.1:1/v1", Some(ca_file))).unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error}");
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}
