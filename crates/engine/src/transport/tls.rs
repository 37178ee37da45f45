//! Mutual TLS to tcp://HOST:PORT with rustls: trust only the CA the host
//! entry names (not the system's roots: an engine's certificate comes from
//! the operator's own CA), present the client certificate, and verify the
//! engine's certificate against the host as written: a name against DNS
//! SANs (and sent as SNI), an IP address against IP SANs (no SNI, which
//! carries names only).
//!
//! bollard builds `http://` URIs from the client's address; requests are
//! rewritten to `https://` so the connector, which speaks TLS only, takes
//! them. A failed handshake is said in an operator's words (which side
//! refused which certificate, and which key of the host entry to look at),
//! not as rustls's error enum.

use std::error::Error as StdError;
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

/// Whether the host entry's certificate files make a TLS client: what
/// connecting would refuse, found without connecting (`drover validate`).
pub fn check_tls_files(files: &TlsFiles) -> Result<(), TlsSetupError> {
    client_config(files).map(|_| ())
}

/// The client side of mutual TLS: the CA to trust, the certificate and key to present.
fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, TlsSetupError> {
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
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the key is not the certificate's (tls.key must be the private key of tls.cert)"
                        .to_string()
                }
                other => other.to_string(),
            };
            TlsSetupError::Config(format!(
                "client certificate {} with key {}: {why}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    Ok(config)
}

/// An engine on tcp://HOST:PORT with mutual TLS, over pooled connections.
pub fn tls(
    host: &str,
    port: u16,
    files: &TlsFiles,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Result<Connection, bollard::errors::Error>, TlsSetupError> {
    let config = client_config(files)?;
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
    let name: Arc<str> = Arc::from(host);
    let raw: Raw = Arc::new(move |request: BollardRequest| {
        let client = Arc::clone(&client);
        let name = Arc::clone(&name);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let uri = parts.uri.to_string();
            if let Some(rest) = uri.strip_prefix("http://") {
                parts.uri = format!("https://{rest}").parse::<hyper::Uri>()?;
            }
            client
                .request(BollardRequest::from_parts(parts, body))
                .await
                .map_err(|e| match find_tls_error(&e) {
                    Some(tls) => bollard::errors::Error::IOError {
                        err: std::io::Error::other(explain(tls, &name)),
                    },
                    None => e.into(),
                })
        })
    });
    Ok(connection(
        raw,
        format!("http://{}:{port}", bracket(host)),
        timeout_secs,
        version,
    ))
}

/// The rustls error somewhere in `err`'s chain. tokio-rustls and
/// hyper-rustls wrap it in `io::Error`s, whose `source()` skips the error
/// they wrap, so each one is opened by hand.
fn find_tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = find_tls_error(inner) {
                return Some(tls);
            }
        }
        next = current.source();
    }
    None
}

/// What failed in the handshake with the engine at `host`, and where to look.
fn explain(err: &rustls::Error, host: &str) -> String {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    const CLIENT: &str = "the engine refused drover's client certificate (tls.cert)";
    const SERVER: &str = "the engine's certificate";
    let what = match err {
        Error::AlertReceived(Alert::CertificateExpired) => format!("{CLIENT}: it has expired"),
        Error::AlertReceived(Alert::CertificateRevoked) => {
            format!("{CLIENT}: it has been revoked")
        }
        Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::UnsupportedCertificate
            | Alert::AccessDenied
            | Alert::CertificateRequired
            | Alert::NoCertificate,
        ) => format!(
            "{CLIENT}: it is not signed by a CA the engine trusts (its --tlscacert), or not meant for client authentication"
        ),
        Error::AlertReceived(
            Alert::HandshakeFailure | Alert::ProtocolVersion | Alert::InsufficientSecurity,
        ) => "the engine and drover share no TLS version or cipher suite".to_string(),
        Error::AlertReceived(alert) => {
            format!("the engine ended the handshake: {}", words(&format!("{alert:?}")))
        }
        Error::InvalidCertificate(
            Cert::UnknownIssuer | Cert::BadSignature | Cert::UnhandledCriticalExtension,
        ) => format!("{SERVER} is not signed by the CA drover trusts for this host (tls.ca)"),
        Error::InvalidCertificate(Cert::NotValidForNameContext { presented, .. }) => format!(
            "{SERVER} is not valid for {host} (it names {})",
            if presented.is_empty() {
                "nothing".to_string()
            } else {
                presented.join(", ")
            }
        ),
        Error::InvalidCertificate(Cert::NotValidForName) => format!(
            "{SERVER} is not valid for {host} (not among its subject alternative names)"
        ),
        Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            format!("{SERVER} has expired")
        }
        Error::InvalidCertificate(Cert::NotValidYet | Cert::NotValidYetContext { .. }) => {
            format!("{SERVER} is not valid yet (is this machine's clock right?)")
        }
        Error::InvalidCertificate(Cert::Revoked) => format!("{SERVER} has been revoked"),
        Error::InvalidCertificate(Cert::InvalidPurpose | Cert::InvalidPurposeContext { .. }) => {
            format!("{SERVER} is not meant for a server (its extended key usage)")
        }
        Error::InvalidCertificate(other) => {
            format!("{SERVER} is not acceptable: {}", words(&variant(other)))
        }
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. } => {
            "the other end does not speak TLS (a plain tcp:// engine, or another service on this port?)".to_string()
        }
        other => format!("the handshake failed: {other}"),
    };
    format!("TLS: {what}")
}

/// The name of an enum value, without its fields.
fn variant(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    text.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `UnknownCA` as "unknown CA", `BadEncoding` as "bad encoding".
fn words(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
            out.push(' ');
        }
        out.push(*c);
    }
    out.split(' ')
        .map(|w| {
            if w.len() > 1 && w.chars().all(char::is_uppercase) {
                w.to_string()
            } else {
                w.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_read_as_words() {
        assert_eq!(words("UnknownCA"), "unknown CA");
        assert_eq!(words("BadEncoding"), "bad encoding");
        assert_eq!(words("DecodeError"), "decode error");
        assert_eq!(
            variant(&rustls::CertificateError::BadEncoding),
            "BadEncoding"
        );
    }

    #[test]
    fn handshake_failures_name_the_side_and_the_key() {
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        assert!(explain(&refused, "10.0.0.1").starts_with(
            "TLS: the engine refused drover's client certificate (tls.cert): it is not signed by a CA the engine trusts"
        ));
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(
            explain(&unknown, "10.0.0.1"),
            "TLS: the engine's certificate is not signed by the CA drover trusts for this host (tls.ca)"
        );
        let wrapped = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            unknown.clone(),
        ));
        assert_eq!(find_tls_error(&wrapped), Some(&unknown));
    }
}
