//! The validated environment: once built, every value here is usable as is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A whole environment: `drover.toml` (with its stage overlay) and every job.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The directory holding `drover.toml`.
    pub dir: PathBuf,
    pub hosts: BTreeMap<String, Host>,
    pub registry: Option<Registry>,
    pub jobs: BTreeMap<String, Job>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub docker: DockerAddress,
    pub tls: Option<TlsFiles>,
}

/// How a host's engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerAddress {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    Ssh {
        user: Option<String>,
        host: String,
        port: u16,
    },
}

impl fmt::Display for DockerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            DockerAddress::Ssh {
                user: Some(user),
                host,
                port,
            } => write!(f, "ssh://{user}@{host}:{port}"),
            DockerAddress::Ssh {
                user: None,
                host,
                port,
            } => write!(f, "ssh://{host}:{port}"),
        }
    }
}

/// Client certificate files, resolved against the environment directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub url: String,
}

/// One job with defaults and profile merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    /// `jobs/NAME.toml`, relative to the environment directory.
    pub file: String,
    pub image: String,
    pub hosts: Vec<String>,
    pub instances: u32,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Names only; values come from the operator at run time.
    pub secret_env: Vec<String>,
    pub volumes: Vec<Volume>,
    pub ports: Vec<u16>,
    pub memory: Option<u64>,
    pub profile: Option<String>,
    pub network: String,
    pub init: bool,
    pub restart: String,
    pub stop_timeout: Duration,
    pub host_files: Vec<String>,
    pub log: LogConfig,
    pub health: Option<Health>,
    pub update: UpdatePolicy,
}

impl Job {
    /// `(host, task)` for every task of the job, in placement order.
    pub fn tasks(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.hosts
            .iter()
            .flat_map(move |host| (0..self.instances).map(move |task| (host.as_str(), task)))
    }
}

/// `HOST:CONTAINER[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.container)?;
        if self.read_only {
            write!(f, ":ro")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub driver: String,
    /// Bytes per file, for drivers that rotate (`local`, `json-file`).
    pub max_size: u64,
    pub max_files: u32,
}

impl LogConfig {
    /// Whether drover passes `max-size`/`max-file` to this driver.
    pub fn rotates(&self) -> bool {
        matches!(self.driver.as_str(), "local" | "json-file")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    pub parallel: u32,
    pub delay: Duration,
    pub auto_rollback: bool,
}
