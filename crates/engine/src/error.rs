use bollard::errors::Error as BollardError;

/// What went wrong talking to an engine, in terms drover acts on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The engine could not be reached at all.
    #[error("host {host} ({address}) is unreachable: {reason}")]
    Unreachable {
        host: String,
        address: String,
        reason: String,
    },
    /// 404: the container or image does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: e.g. a container name already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other status the engine answered with.
    #[error("engine error {status}: {message}")]
    Api { status: u16, message: String },
    #[error("timed out after {0}s")]
    Timeout(u64),
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// Maps bollard's error for a request to `host` at `address`.
    pub(crate) fn from_bollard(err: BollardError, host: &str, address: &str) -> Self {
        match err {
            BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound(message),
            BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict(message),
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api {
                status: status_code,
                message,
            },
            BollardError::RequestTimeoutError => EngineError::Timeout(0),
            BollardError::SocketNotFoundError(path) => EngineError::Unreachable {
                host: host.to_string(),
                address: address.to_string(),
                reason: format!("no socket at {path}"),
            },
            BollardError::IOError { err } => EngineError::Unreachable {
                host: host.to_string(),
                address: address.to_string(),
                reason: err.to_string(),
            },
            BollardError::HyperLegacyError { err } => EngineError::Unreachable {
                host: host.to_string(),
                address: address.to_string(),
                reason: root_cause(&err),
            },
            other => EngineError::Other(other.to_string()),
        }
    }
}

/// The innermost message of an error chain: "connection refused", not "client error (Connect)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
