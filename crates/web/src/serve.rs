//! The accept loop: plain HTTP or TLS, HTTP/1.1 and HTTP/2, and a clean stop.
//!
//! axum's own `serve` has no TLS, so the loop is hyper's, the same for both:
//! a connection is served once it is accepted (and, under TLS, once its
//! handshake finishes within [`HANDSHAKE_TIMEOUT`], in its own task, so a
//! slow client delays nobody). When `shutdown` completes, no connection is
//! accepted any more, the dashboard's own token ends every log stream, live
//! feed and shell (each tells its browser why), and open connections get
//! [`DRAIN`] to finish.
//!
//! Under TLS, browsers speak HTTP/2 (offered by ALPN) and so keep every tab's
//! streams on one connection; over plain HTTP/1.1 a browser opens at most
//! six connections to one origin, which is why a page's live data travels
//! over one WebSocket per tab (not counted against those six); the
//! event-stream routes are for programs.
//!
//! It refuses to start with a token too short for the address it listens
//! on ([`crate::check_tokens`]), and once stopping, waits for the changes
//! started from the dashboard to wind down (they are interrupted as the
//! CLI's are by Ctrl-C).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use tower::ServiceExt;

use crate::auth::ClientAddr;
use crate::{Dashboard, WebError};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `dashboard` on `listener` until `shutdown` completes, then stops
/// cleanly: streams and shells are closed with a reason, connections drained.
pub async fn run(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    dashboard: Dashboard,
) -> Result<(), WebError> {
    let local = listener.local_addr().map_err(WebError::Listener)?;
    dashboard.inner.auth.check(local)?;
    let _ = dashboard
        .inner
        .cookie_name
        .set(format!("drover_session_{}", local.port()));
    let _ = dashboard
        .inner
        .base_url
        .set(crate::login_base(local, dashboard.secure()));
    let app = crate::api::router(dashboard.clone());
    let tls = dashboard.inner.tls.clone().map(TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A slow browser following a flooding log holds at most this much in
    // the connection's buffer (hyper's default is ~400 KiB per connection).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    dashboard.log(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its client's address (failed logins are
        // slowed per address; the audit record names it).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ClientAddr(peer));
                request
            },
        ));
        let watcher = graceful.watcher();
        let builder = Arc::clone(&builder);
        match &tls {
            None => {
                tokio::spawn(async move {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                });
            }
        }
    }
    drop(listener);
    dashboard.inner.shutdown.cancel();
    // Changes in flight were interrupted with it: no new step starts, steps
    // in flight finish or are undone, locks are given back. Wait for that.
    let running = dashboard.inner.changes.running();
    if running > 0 {
        dashboard.log(&format!(
            "waiting for {running} change(s) started from the dashboard: steps in flight finish or are undone"
        ));
    }
    dashboard.inner.changes.wait().await;
    // Streams and shells see the token and say goodbye; give them a moment
    // before connections are asked to close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
}

/// The TLS configuration of `--tls-cert` and `--tls-key` (PEM), offering
/// HTTP/2 and HTTP/1.1.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| WebError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| WebError::BadPem {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(WebError::NoPem {
            path: cert.to_path_buf(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => WebError::NoPem {
            path: key.to_path_buf(),
            what: "private key",
        },
        other => WebError::BadPem {
            path: key.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
