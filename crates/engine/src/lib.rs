//! Talking to Docker engines: the [`Engine`] trait drover's commands use, its
//! Docker implementation ([`DockerEngine`], over bollard), and [`observe`],
//! which reads one host's drover containers into the planner's plain data.
//!
//! Engine status codes become meaningful [`EngineError`]s here, once, so the
//! rest of drover never looks at an HTTP status.

mod convert;
mod docker;
mod error;
mod observe;
mod transport;

use async_trait::async_trait;
use drover_plan::{DesiredTask, ObservedContainer};

pub use convert::create_body;
pub use docker::DockerEngine;
pub use error::EngineError;
pub use observe::observe;

/// A drover container as the engine's list call returns it: cheap, no inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub state: String,
    pub image: String,
}

/// One image on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
}

/// An image's own configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDetails {
    pub id: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
}

/// Memory and CPU of a running container, from one stats sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub memory_bytes: u64,
    pub cpu_percent: f64,
}

/// The engine version of a host, as `doctor` and errors report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
}

/// What drover asks of a host's engine. The Docker implementation talks to a
/// real engine; tests of the executor's logic use a recording fake.
#[async_trait]
pub trait Engine: Send + Sync {
    /// The host's name in drover.toml and the address it is reached at, for messages.
    fn host(&self) -> &str;
    fn address(&self) -> &str;

    async fn version(&self) -> Result<EngineVersion, EngineError>;
    /// All containers (running or not) labelled `drover.env=ENV`.
    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError>;
    /// `None` when the container no longer exists. The image's env and
    /// command are left empty: [`observe`] reads each image once.
    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError>;
    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError>;
    /// `None` when the host has no such image.
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError>;
    async fn pull_image(&self, reference: &str) -> Result<(), EngineError>;
    /// Creates (does not start) the task's container under `name`; returns its ID.
    async fn create_container(
        &self,
        env: &str,
        name: &str,
        task: &DesiredTask,
    ) -> Result<String, EngineError>;
    /// Starts a created or stopped container; one already running is fine.
    async fn start_container(&self, id: &str) -> Result<(), EngineError>;
    async fn unpause_container(&self, id: &str) -> Result<(), EngineError>;
    /// Stops gracefully: SIGTERM, then SIGKILL after `timeout_secs`.
    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), EngineError>;
    /// Removes a stopped container and its anonymous volumes, so no leftovers pile up.
    async fn remove_container(&self, id: &str) -> Result<(), EngineError>;
    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError>;
    async fn usage(&self, id: &str) -> Result<Usage, EngineError>;
}
