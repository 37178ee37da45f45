//! Connections to an engine that are kept and reused.
//!
//! bollard's own unix and http transports open a new connection for every
//! request (`pool_max_idle_per_host(0)`). Over a unix socket that costs
//! little; to a tcp:// host it is a round trip per request (and, with TLS, a
//! handshake). drover's runs are short and the engine does not close idle
//! connections, so one pooled hyper client serves every request of a run.
//! SSH hosts are reached through a local unix socket forwarded over one
//! SSH connection ([`ssh`]), so they use the unix transport unchanged; only
//! where each connection costs an SSH session (the `dial-stdio` fallback)
//! are connections not kept idle.

pub mod ssh;
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper::body::Incoming;
use hyper::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub use tls::{check_tls_files, tls, TlsSetupError};

/// Idle connections are dropped after this; a drover run is far shorter.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn builder() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(IDLE_TIMEOUT);
    builder
}

type Answer =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, bollard::errors::Error>> + Send>>;

/// The transport itself, for the few requests bollard's models cannot
/// carry (an older engine's `/system/df`).
pub type Raw = Arc<dyn Fn(BollardRequest) -> Answer + Send + Sync>;

/// A client for one engine: bollard over a transport, and the transport.
pub struct Connection {
    pub docker: Docker,
    pub raw: Raw,
    /// The base URI requests are made against.
    pub base: String,
}

fn connection(
    raw: Raw,
    base: String,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Connection, bollard::errors::Error> {
    let for_bollard = Arc::clone(&raw);
    let docker = Docker::connect_with_custom_transport(
        move |request: BollardRequest| for_bollard(request),
        Some(base.clone()),
        timeout_secs,
        version,
    )?;
    Ok(Connection { docker, raw, base })
}

/// An engine on a unix socket, over pooled connections.
pub fn unix(
    path: &str,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Connection, bollard::errors::Error> {
    unix_with(path, true, timeout_secs, version)
}

/// An engine on a unix socket; `keep_idle` false closes each connection
/// once its request is done (each one holds a scarce resource behind the socket).
fn unix_with(
    path: &str,
    keep_idle: bool,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Connection, bollard::errors::Error> {
    if !std::path::Path::new(path).exists() {
        return Err(bollard::errors::Error::SocketNotFoundError(
            path.to_string(),
        ));
    }
    let mut builder = builder();
    if !keep_idle {
        builder.pool_max_idle_per_host(0);
    }
    let client = Arc::new(builder.build(hyperlocal::UnixConnector));
    // hyperlocal names the socket in the URI's host, hex-encoded.
    let host: String = path.bytes().map(|b| format!("{b:02x}")).collect();
    let raw: Raw = Arc::new(move |request: BollardRequest| {
        let client = Arc::clone(&client);
        let host = host.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            parts.uri = format!("unix://{host}:0{path}").parse::<hyper::Uri>()?;
            Ok(client
                .request(BollardRequest::from_parts(parts, body))
                .await?)
        })
    });
    connection(raw, "http://localhost".to_string(), timeout_secs, version)
}

/// An engine on plain tcp://HOST:PORT, over pooled connections.
pub fn tcp(
    host: &str,
    port: u16,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Connection, bollard::errors::Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let client = Arc::new(builder().build(connector));
    let raw: Raw = Arc::new(move |request: BollardRequest| {
        let client = Arc::clone(&client);
        Box::pin(async move { Ok(client.request(request).await?) })
    });
    connection(
        raw,
        format!("http://{}:{port}", bracket(host)),
        timeout_secs,
        version,
    )
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
