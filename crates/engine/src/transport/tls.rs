//! Mutual TLS to tcp://HOST:PORT: trust only the CA the host entry names,
//! present the client certificate, verify the engine's certificate against
//! the host's name or IP address (an IP is checked against IP SANs).

use std::sync::Arc;

use bollard::{BollardRequest, ClientVersion};
use drover_spec::TlsFiles;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{bracket, builder, connection, Connection, Raw, CONNECT_TIMEOUT};

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no {what}")]
    Empty { path: String, what: &'static str },
    #[error("TLS setup: {0}")]
    Config(String),
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let shown = path.display().to_string();
    let list: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    if list.is_empty() {
        return Err(TlsSetupError::Empty {
            path: shown,
            what: "PEM certificate",
        });
    }
    Ok(list)
}

/// An engine on tcp://HOST:PORT with mutual TLS, over pooled connections.
pub fn tls(
    host: &str,
    port: u16,
    files: &TlsFiles,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Result<Connection, bollard::errors::Error>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&files.ca)? {
        roots.add(ca).map_err(|e| {
            TlsSetupError::Config(format!("CA certificate {}: {e}", files.ca.display()))
        })?;
    }
    let chain = certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsSetupError::Read {
        path: files.key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            TlsSetupError::Config(format!(
                "client certificate {} with key {}: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client = Arc::new(builder().build(connector));
    let raw: Raw = Arc::new(move |request: BollardRequest| {
        let client = Arc::clone(&client);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // bollard builds http:// URIs from the client address; the connector speaks https.
            let uri = parts.uri.to_string();
            if let Some(rest) = uri.strip_prefix("http://") {
                parts.uri = format!("https://{rest}").parse::<hyper::Uri>()?;
            }
            Ok(client
                .request(BollardRequest::from_parts(parts, body))
                .await?)
        })
    });
    Ok(connection(
        raw,
        format!("http://{}:{port}", bracket(host)),
        timeout_secs,
        version,
    ))
}
