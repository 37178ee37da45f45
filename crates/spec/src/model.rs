//! The validated environment: once built, every value here is usable as is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::notify::{Notify, NotifyClass, NotifyFormat, Webhook};
pub use crate::release::{Release, DEFAULT_RELEASE_TIMEOUT};
pub use crate::source::Place;
pub use crate::values::{
    Capability, Cpus, Device, DockerAddress, ExtraHost, ImageKey, ImageRef, LogDriver, Network,
    RestartPolicy, Tmpfs, Ulimit, Volume,
};

/// A whole environment: `drover.toml` (with its stage overlay) and every job.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The directory holding `drover.toml`.
    pub dir: PathBuf,
    /// `-e STAGE`, when an overlay was read.
    pub stage: Option<String>,
    pub hosts: BTreeMap<String, Host>,
    /// The file the `[hosts]` table came from (`drover.toml` or the stage's).
    pub hosts_file: String,
    pub registry: Option<Registry>,
    /// `[notify]`; `None` without it or with `events = []`.
    pub notify: Option<Notify>,
    pub jobs: BTreeMap<String, Job>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub docker: DockerAddress,
    pub tls: Option<TlsFiles>,
    /// Deadline of one ordinary engine request (list, inspect, create…).
    pub timeout: Duration,
    /// Plain tcp:// to an address other than loopback is allowed.
    pub insecure: bool,
    /// A pull fails when no progress arrives for this long.
    pub pull_stall: Duration,
}

impl Host {
    /// Why drover will not talk to this host as written, if it will not:
    /// plain tcp:// to another machine is unencrypted and unauthenticated
    /// (anyone on the path gets root on the host) unless the operator says
    /// the network is trusted.
    pub fn refusal(&self) -> Option<String> {
        let plain_tcp = matches!(self.docker, DockerAddress::Tcp { .. }) && self.tls.is_none();
        (plain_tcp && !self.insecure && !self.docker.is_loopback()).then(|| {
            format!(
                "plain tcp:// to a host other than this machine is refused (unencrypted and unauthenticated): add `tls = {{ ca = ..., cert = ..., key = ... }}` to [hosts.{}], or `insecure = true` if the network is trusted",
                self.name
            )
        })
    }
}

/// Default time a pull may go without progress.
pub const DEFAULT_PULL_STALL: Duration = Duration::from_secs(60);

/// Default deadline of an ordinary engine request.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(10);

/// Client certificate files, resolved against the environment directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Where `tls` was written, for a problem found in the files' contents.
    pub place: Option<Place>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `http://HOST[:PORT]` or `https://…`, without a trailing slash.
    pub url: String,
}

/// Where a job's value was written, so `update` can rewrite it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, relative to the environment directory.
    pub file: String,
    /// The table holding the key: `[]` for a job file, `["profiles", "jre8"]`,
    /// `["defaults"]`.
    pub table: Vec<String>,
}

impl Origin {
    pub fn describe(&self) -> String {
        if self.table.is_empty() {
            self.file.clone()
        } else {
            format!("[{}] in {}", self.table.join("."), self.file)
        }
    }
}

/// One job with defaults and profile merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    /// `jobs/NAME.toml`, relative to the environment directory.
    pub file: String,
    pub image: ImageRef,
    /// Where `image` was set: the job file, its profile or the defaults.
    pub image_origin: Origin,
    pub hosts: Vec<String>,
    pub instances: u32,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Names only; values come from the operator at run time.
    pub secret_env: Vec<String>,
    /// Where each `secret_env` name was written, for a secret with no value.
    pub secret_env_places: BTreeMap<String, Place>,
    pub volumes: Vec<Volume>,
    pub ports: Vec<u16>,
    /// Bytes; swap is limited to the same amount (no swap beyond it).
    pub memory: Option<u64>,
    pub profile: Option<String>,
    pub network: Network,
    pub init: bool,
    pub restart: RestartPolicy,
    /// Whole seconds: the engine's stop timeout has no finer unit.
    pub stop_timeout: Duration,
    pub host_files: Vec<String>,
    pub log: LogConfig,
    pub health: Option<Health>,
    pub update: UpdatePolicy,
    /// Run once before a rollout that changes the image.
    pub release: Option<Release>,
    /// `drover package`: the image the artifact is put onto.
    pub base: Option<ImageRef>,
    /// `drover package`: where the artifact goes in the image.
    pub artifact_path: String,
    /// The container settings hand-run fleets use. Each left unset is the
    /// image's (`entrypoint`, `user`, `workdir`, image labels) or the
    /// engine's (`shm_size`, `ulimits`): no drift either way.
    /// `Some([])`: no entrypoint, not even the image's.
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub cpus: Option<Cpus>,
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Sorted, each once, none in both lists.
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    /// The job's own labels; none starts with `drover.`.
    pub labels: BTreeMap<String, String>,
    pub extra_hosts: Vec<ExtraHost>,
    /// Each at its own container path, none where a volume or host file is.
    pub tmpfs: Vec<Tmpfs>,
    /// Bytes of `/dev/shm`.
    pub shm_size: Option<u64>,
    pub privileged: bool,
    pub devices: Vec<Device>,
}

impl Job {
    /// `(host, task)` for every task of the job, in placement order.
    pub fn tasks(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.hosts
            .iter()
            .flat_map(move |host| (0..self.instances).map(move |task| (host.as_str(), task)))
    }

    pub fn task_count(&self) -> usize {
        self.hosts.len() * self.instances as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub driver: LogDriver,
    /// Bytes per file, for drivers that rotate (`local`, `json-file`).
    pub max_size: u64,
    pub max_files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl Health {
    /// How long a new task may take to report healthy before its rollout
    /// gives up: the start period, then every allowed failing try, then one
    /// more interval for the engine to get round to it.
    pub fn deadline(&self) -> Duration {
        self.start_period + (self.interval + self.timeout) * (self.retries + 1) + self.interval
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// Tasks replaced at once.
    pub parallel: u32,
    /// Pause between batches.
    pub delay: Duration,
    pub auto_rollback: bool,
    /// Previous generations kept per task (stopped containers) for `rollback`.
    pub keep: u32,
}

/// Default `[update] keep`.
pub const DEFAULT_KEEP: u32 = 3;
