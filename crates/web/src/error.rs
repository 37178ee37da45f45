use std::path::PathBuf;

/// Why the dashboard could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no {what} in PEM form", path.display())]
    NoPem { path: PathBuf, what: &'static str },
    #[error("{} is not a PEM file: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("the TLS certificate and key do not go together: {0}")]
    Tls(String),
    #[error("cannot read the listening address: {0}")]
    Listener(std::io::Error),
    #[error("the system has no randomness to make a token from: {0}")]
    Random(String),
    /// A token the dashboard must not start with.
    #[error("{0}")]
    Token(String),
}
