//! What a stream call yields: chunks of a container's output, and an exec
//! session's two directions.

use std::pin::Pin;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncWrite;

use crate::EngineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Stdout,
    Stderr,
}

/// A piece of output as the engine framed it (not necessarily a whole line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: StreamKind,
    pub bytes: Bytes,
}

pub type LogStream = BoxStream<'static, Result<LogChunk, EngineError>>;

/// An exec running in a container (or a container's own process, attached):
/// its output, and a writer to its stdin.
pub struct ExecSession {
    /// The exec's ID, or the attached container's.
    pub exec_id: String,
    pub output: LogStream,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}
