//! [`crate::Engine`] over a real Docker engine, through bollard, one file
//! per API area.
//!
//! bollard's own request timeout is set out of reach; every call goes
//! through [`DockerEngine::call`] instead, which holds a slot of the
//! request bounds and applies the deadline that fits the call, so a
//! timeout says which call, on which host, after how long.

mod containers;
mod images;
mod streams;
mod system;
mod volumes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use drover_spec::{DockerAddress, Host};

use crate::limits::{HostLimits, Limits};
use crate::transport::{self, Raw};
use crate::{EngineError, Named};

/// bollard's own timeout, in seconds: never the one that fires.
const NO_TIMEOUT: u64 = 365 * 24 * 3600;
/// Extra time a stop request gets beyond the container's stop timeout.
pub(crate) const STOP_MARGIN: Duration = Duration::from_secs(15);

pub struct DockerEngine {
    host: String,
    address: String,
    docker: Docker,
    raw: Raw,
    base: String,
    /// Deadline of an ordinary request.
    timeout: Duration,
    /// A pull fails when no progress arrives for this long.
    pull_stall: Duration,
    limits: HostLimits,
    /// The engine's API version, e.g. `1.41`.
    api: (u64, u64),
    /// Whatever must live as long as the connection (an SSH master).
    _keepalive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// Connects to `host` and agrees on an API version with its engine, so
/// drover works with engines older and newer than bollard's default. An
/// engine that does not answer within the host's timeout is unreachable.
pub async fn connect(host: &Host, limits: &Limits) -> Result<DockerEngine, EngineError> {
    let address = host.docker.to_string();
    let unreachable = |reason: String| EngineError::Unreachable {
        host: host.name.clone(),
        address: address.clone(),
        reason,
    };
    // `validate` refuses it too; a Host built in code is held to the same rule.
    if let Some(why) = host.refusal() {
        return Err(unreachable(why));
    }
    let version: &ClientVersion = API_DEFAULT_VERSION;
    let (connection, keepalive) = match &host.docker {
        DockerAddress::Unix(path) => (
            transport::unix(&path.to_string_lossy(), NO_TIMEOUT, version),
            None,
        ),
        DockerAddress::Tcp {
            host: tcp_host,
            port,
        } => match &host.tls {
            Some(tls) => (
                transport::tls(tcp_host, *port, tls, NO_TIMEOUT, version)
                    .map_err(|e| unreachable(e.to_string()))?,
                None,
            ),
            None => (transport::tcp(tcp_host, *port, NO_TIMEOUT, version), None),
        },
        DockerAddress::Ssh {
            user,
            host: ssh_host,
            port,
        } => {
            let tunnel = transport::ssh::open(user.as_deref(), ssh_host, *port, host.timeout)
                .await
                .map_err(unreachable)?;
            let connection = tunnel.connection(NO_TIMEOUT, version);
            (
                connection,
                Some(Arc::new(tunnel) as Arc<dyn std::any::Any + Send + Sync>),
            )
        }
    };
    let connection = connection.map_err(|e| EngineError::from_bollard(e, &host.name, &address))?;
    let docker =
        match tokio::time::timeout(host.timeout, connection.docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => {
                return Err(match EngineError::from_bollard(e, &host.name, &address) {
                    e @ EngineError::Unreachable { .. } => e,
                    EngineError::Api { message, .. }
                        if message.contains("HTTP request to an HTTPS server") =>
                    {
                        unreachable(format!(
                            "the engine speaks TLS on this port: add `tls = {{ ca = ..., cert = ..., key = ... }}` to [hosts.{}]",
                            host.name
                        ))
                    }
                    other => unreachable(format!("it does not answer as a Docker engine: {other}")),
                })
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer to the version request within {}s",
                    host.timeout.as_secs_f64()
                )))
            }
        };
    let api = parse_api(&docker.client_version().to_string());
    Ok(DockerEngine {
        host: host.name.clone(),
        address,
        docker,
        raw: connection.raw,
        base: connection.base,
        timeout: host.timeout,
        pull_stall: host.pull_stall,
        limits: limits.for_host(),
        api,
        _keepalive: keepalive,
    })
}

fn parse_api(text: &str) -> (u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(1), parts.next().unwrap_or(0))
}

impl Named for DockerEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> &str {
        &self.address
    }
}

impl DockerEngine {
    fn err(&self, e: bollard::errors::Error) -> EngineError {
        EngineError::from_bollard(e, &self.host, &self.address)
    }

    fn timeout_error(&self, what: &str, after: Duration) -> EngineError {
        EngineError::Timeout {
            host: self.host.clone(),
            address: self.address.clone(),
            what: what.to_string(),
            after,
        }
    }

    /// Runs one request within `deadline`, holding a slot of the bounds.
    /// The wait for a slot does not count against the deadline: it depends
    /// on this drover's own load, not on the engine.
    pub(crate) async fn call<T>(
        &self,
        what: &str,
        deadline: Duration,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, EngineError> {
        let _permit = self.limits.acquire().await;
        self.within(what, deadline, request).await
    }

    /// [`Self::call`] for a usage sample, under the samples' own bounds.
    pub(crate) async fn call_sample<T>(
        &self,
        what: &str,
        deadline: Duration,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, EngineError> {
        let _permit = self.limits.acquire_sample().await;
        self.within(what, deadline, request).await
    }

    async fn within<T>(
        &self,
        what: &str,
        deadline: Duration,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(deadline, request).await {
            Ok(result) => result.map_err(|e| self.err(e)),
            Err(_) => Err(self.timeout_error(what, deadline)),
        }
    }

    /// `GET path` (below the API version) as JSON, for answers bollard's
    /// models do not fit (they follow the newest API; drover speaks to older engines too).
    pub(crate) async fn get_json(
        &self,
        what: &str,
        path: &str,
        deadline: Duration,
    ) -> Result<serde_json::Value, EngineError> {
        use http_body_util::BodyExt;
        let uri = format!("{}/v{}.{}{path}", self.base, self.api.0, self.api.1);
        let request = async {
            let request = http::Request::get(uri)
                .body(bollard::body_full(bytes::Bytes::new()))
                .map_err(|e| bollard::errors::Error::IOError {
                    err: std::io::Error::other(e.to_string()),
                })?;
            let response = (self.raw)(request).await?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| bollard::errors::Error::IOError {
                    err: std::io::Error::other(e.to_string()),
                })?
                .to_bytes();
            if status >= 400 {
                return Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: status,
                    message: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            serde_json::from_slice(&body)
                .map_err(|err| bollard::errors::Error::JsonSerdeError { err })
        };
        self.call(what, deadline, request).await
    }

    /// Whether the engine labels the volumes it makes without a name
    /// ([`crate::ANONYMOUS_VOLUME_LABEL`], engine 23.0, API 1.42+).
    pub(crate) fn marks_anonymous_volumes(&self) -> bool {
        self.api >= (1, 42)
    }

    /// Whether the engine answers stats with a single sample (`one-shot`, API 1.41+).
    pub(crate) fn has_one_shot_stats(&self) -> bool {
        self.api >= (1, 41)
    }
}
