//! Building the HTTP client.
//!
//! reqwest (hyper underneath) with its default features off: HTTP/1.1 only (SSE needs nothing
//! more) and TLS by rustls with the `ring` crypto provider, so no cmake/nasm toolchain is needed
//! (reqwest's default rustls setup pulls aws-lc-rs). We build the rustls config ourselves and hand
//! it over, instead of installing a process-wide default provider, so nothing global changes and
//! no path can hit reqwest's "no crypto provider" panic. Certificates are checked against the
//! system trust store (rustls-platform-verifier) plus an optional PEM file of extra CAs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::Verifier;

use crate::config::Timeouts;
use crate::error::ProviderError;

/// What the client depends on.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub base_url: Url,
    pub timeouts: Timeouts,
    pub ca_file: Option<PathBuf>,
}

/// Parses and checks a base URL; the result has no trailing slash in its path, so endpoints
/// can be appended with `format!("{base}/...")`.
pub(crate) fn normalize_base_url(raw: &str) -> Result<Url, ProviderError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|error| {
        ProviderError::config(format!(
            "base_url {raw:?} is not a URL ({error}); write it like http://127.0.0.1:11434/v1"
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ProviderError::config(format!(
            "base_url {raw:?} must start with http:// or https://"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ProviderError::config(format!(
            "base_url {raw:?} must not have a query or fragment; give only the API root"
        )));
    }
    Ok(url)
}

/// The base URL as a string without a trailing slash.
pub(crate) fn base_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn load_extra_roots(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, ProviderError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            ProviderError::config(format!(
                "could not read CA certificates from ca_file {}: {error}; give a PEM file",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ProviderError::config(format!(
            "ca_file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn tls_config(settings: &HttpSettings) -> Result<ClientConfig, ProviderError> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let extra_roots = match &settings.ca_file {
        Some(path) => load_extra_roots(path)?,
        None => Vec::new(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| ProviderError::config(format!("TLS setup failed: {error}")))?;
    let verifier = if extra_roots.is_empty() {
        Verifier::new(provider.clone())
    } else {
        Verifier::new_with_extra_roots(extra_roots, provider.clone())
    };
    let mut config = match verifier {
        Ok(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
        Err(error) if settings.base_url.scheme() == "https" => {
            return Err(ProviderError::config(format!(
                "no trusted CA certificates for {}: {error}; install the system CA bundle \
                 (ca-certificates) or set ca_file",
                settings.base_url
            )));
        }
        Err(error) => {
            // Plain-http endpoint on a machine without a CA bundle: TLS is never used, but the
            // client still needs a config. An empty trust store refuses every certificate.
            tracing::debug!(%error, "no system CA certificates; https would fail verification");
            let verifier = WebPkiServerVerifier::builder_with_provider(
                Arc::new(rustls::RootCertStore::empty()),
                provider,
            )
            .build();
            match verifier {
                Ok(verifier) => builder.with_webpki_verifier(verifier).with_no_client_auth(),
                Err(_) => {
                    return Err(ProviderError::config(format!(
                        "TLS setup failed: {error}; install the system CA bundle (ca-certificates)"
                    )));
                }
            }
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the client for one provider (one connection pool per provider).
pub(crate) fn build_client(settings: &HttpSettings) -> Result<reqwest::Client, ProviderError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(settings)?)
        .http1_only()
        .connect_timeout(settings.timeouts.connect())
        .tcp_nodelay(true)
        .user_agent(concat!("flynn-models/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&settings.base_url) {
        // A proxy cannot reach our loopback; HTTP_PROXY must not break a local Ollama.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|error| ProviderError::config(format!("could not build the HTTP client: {error}")))
}

/// A client for HTTP calls that are not model calls (chat platform APIs, Web Push services,
/// JWKS documents): the same TLS as the providers (rustls with `ring`, the OS trust store),
/// HTTP/1.1, a connect timeout, no proxy (the gateway's callers name hosts it reaches
/// directly; a proxy from the environment must not break a loopback test server), and no
/// redirects (a URL the operator configured, or one taken from a validated token, must not send
/// the gateway on to another host; a 3xx is returned to the caller).
pub fn web_client(
    user_agent: &str,
    connect_timeout: std::time::Duration,
) -> Result<reqwest::Client, ProviderError> {
    web_client_builder(user_agent, connect_timeout)?
        .build()
        .map_err(|error| ProviderError::config(format!("could not build the HTTP client: {error}")))
}

/// The builder of [`web_client`], for a caller that needs more (Web Push: a resolver that
/// refuses private addresses).
pub fn web_client_builder(
    user_agent: &str,
    connect_timeout: std::time::Duration,
) -> Result<reqwest::ClientBuilder, ProviderError> {
    // Plain http as the "base": without a CA bundle the client still builds, and an https call
    // then fails verification with a clear error instead of the gateway failing to start.
    let settings = HttpSettings {
        base_url: Url::parse("http://127.0.0.1/")
            .map_err(|error| ProviderError::config(format!("internal URL: {error}")))?,
        timeouts: Timeouts::default(),
        ca_file: None,
    };
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&settings)?)
        .http1_only()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        let url = normalize_base_url("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(base_string(&url), "http://127.0.0.1:11434/v1");
        let root = normalize_base_url("https://api.anthropic.com").unwrap();
        assert_eq!(base_string(&root), "https://api.anthropic.com");
        assert!(normalize_base_url("ftp://x").is_err());
        assert!(normalize_base_url("not a url").is_err());
        assert!(normalize_base_url("http://x/v1?a=b").is_err());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:1/v1",
            "http://localhost:1",
            "http://[::1]:1",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        assert!(!is_loopback(
            &Url::parse("https://api.openai.com/v1").unwrap()
        ));
    }

    #[test]
    fn client_builds_for_https_with_system_roots() {
        let settings = HttpSettings {
            base_url: normalize_base_url("https://api.openai.com/v1").unwrap(),
            timeouts: Timeouts::default(),
            ca_file: None,
        };
        build_client(&settings).unwrap();
    }

    #[test]
    fn unreadable_ca_file_is_a_config_error() {
        let settings = HttpSettings {
            base_url: normalize_base_url("https://example.invalid").unwrap(),
            timeouts: Timeouts::default(),
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let error = build_client(&settings).unwrap_err();
        assert!(error.to_string().contains("ca_file"), "{error}");
    }
}
