//! Connections to an engine that are kept and reused.
//!
//! bollard's own unix and http transports open a new connection for every
//! request (`pool_max_idle_per_host(0)`). Over a unix socket that costs
//! little; to a tcp:// host it is a round trip per request (and, with TLS, a
//! handshake). drover's runs are short and the engine does not close idle
//! connections, so a pooled hyper client serves every request of a run.

use std::sync::Arc;
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Idle connections are dropped after this; a drover run is far shorter.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

fn builder() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(IDLE_TIMEOUT);
    builder
}

/// An engine on a unix socket, over pooled connections.
pub fn unix(
    path: &str,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Docker, bollard::errors::Error> {
    if !std::path::Path::new(path).exists() {
        return Err(bollard::errors::Error::SocketNotFoundError(
            path.to_string(),
        ));
    }
    let client = Arc::new(builder().build(hyperlocal::UnixConnector));
    // hyperlocal names the socket in the URI's host, hex-encoded.
    let host: String = path.bytes().map(|b| format!("{b:02x}")).collect();
    let transport = move |request: BollardRequest| {
        let client = Arc::clone(&client);
        let host = host.clone();
        async move {
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
        }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://localhost"),
        timeout_secs,
        version,
    )
}

/// An engine on plain tcp://HOST:PORT, over pooled connections.
pub fn tcp(
    host: &str,
    port: u16,
    timeout_secs: u64,
    version: &ClientVersion,
) -> Result<Docker, bollard::errors::Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Arc::new(builder().build(connector));
    let transport = move |request: BollardRequest| {
        let client = Arc::clone(&client);
        async move { Ok(client.request(request).await?) }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some(format!("http://{host}:{port}")),
        timeout_secs,
        version,
    )
}
