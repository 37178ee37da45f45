//! What actually runs, as plain data read from each host's engine.

use std::collections::{BTreeMap, BTreeSet};

use drover_spec::ImageKey;

use crate::config::TaskConfig;
use crate::names::{labels, OneOffKind, TaskKey, ROLE_LOCK, ROLE_STOPPED};
use crate::state::{Failing, RunState, Runs};
use crate::time::{self, Timestamp};

/// What was found on every host that was asked.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub hosts: BTreeMap<String, HostObservation>,
    /// When it was read: the "now" of every rule that depends on time
    /// (a crash loop is a restart within a window of it).
    pub at: Timestamp,
}

/// One host: either what its engine said, or why it could not be asked.
#[derive(Debug, Clone)]
pub enum HostObservation {
    Reachable(HostState),
    Unreachable { address: String, error: String },
}

impl Observed {
    /// The reachable hosts' states.
    pub fn reachable(&self) -> impl Iterator<Item = (&String, &HostState)> {
        self.hosts.iter().filter_map(|(h, o)| match o {
            HostObservation::Reachable(state) => Some((h, state)),
            HostObservation::Unreachable { .. } => None,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct HostState {
    /// drover containers of this environment on the host's engine.
    pub containers: Vec<ObservedContainer>,
    pub images: ImageIndex,
}

/// The images on a host, searchable by tag, digest or ID.
#[derive(Debug, Clone, Default)]
pub struct ImageIndex {
    /// `REPOSITORY:TAG` as the engine lists it → image ID.
    pub tags: BTreeMap<String, String>,
    /// `REPOSITORY@sha256:…` → image ID.
    pub digests: BTreeMap<String, String>,
    pub ids: BTreeSet<String>,
}

impl ImageIndex {
    pub fn add(&mut self, id: &str, repo_tags: &[String], repo_digests: &[String]) {
        self.ids.insert(id.to_string());
        for tag in repo_tags.iter().filter(|t| t.as_str() != "<none>:<none>") {
            self.tags.insert(tag.clone(), id.to_string());
        }
        for digest in repo_digests
            .iter()
            .filter(|d| d.as_str() != "<none>@<none>")
        {
            self.digests.insert(digest.clone(), id.to_string());
        }
    }

    /// The ID of the image `key` names on this host, if it is here.
    pub fn find(&self, key: &ImageKey) -> Option<&str> {
        match key {
            ImageKey::Id(id) => self.ids.get(id).map(String::as_str),
            ImageKey::Digest(d) => self.digests.get(d).map(String::as_str),
            ImageKey::Tag(t) => self.tags.get(t).map(String::as_str),
        }
    }
}

/// One drover container, as `docker inspect` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Its state and runs: what every state rule reads ([`Runs`]).
    pub runs: Runs,
    /// The engine's error from the last start, if any.
    pub error: String,
    pub created: Option<Timestamp>,
    /// The image ID the container runs.
    pub image_id: String,
    /// Read back from the container; `command` is the container's `Cmd` as is
    /// and `env` is the whole of it, the image's own variables included.
    pub config: TaskConfig,
    /// The container image's own `Env` and `Cmd`, to tell them from drover's.
    pub image_env: BTreeMap<String, String>,
    pub image_cmd: Option<Vec<String>>,
    /// What else the image sets, for the keys a job may leave to it.
    pub image_defaults: ImageDefaults,
}

/// What an image gives a container whose create request does not say
/// otherwise; the engine merges it into what `docker inspect` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub user: String,
    pub workdir: String,
    pub labels: BTreeMap<String, String>,
}

/// What a drover container is, by its labels and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The task's container, under its own name.
    Current(TaskKey),
    /// A generation a rollout set aside, under its kept name.
    Kept(TaskKey),
    /// A new container that failed its gate, kept aside stopped as evidence.
    Failed(TaskKey),
    /// Labelled for a task but under another name: renamed by hand, or left
    /// by an interrupted run.
    Stray(TaskKey),
    Lock {
        job: String,
        host: String,
    },
    StopMark {
        job: String,
        host: String,
    },
    /// A one-off container of the job (`drover run`, a release command):
    /// no task's, so `status`, `diff` and `up` pass it by; what becomes of
    /// it is [`crate::retention::one_offs`]'s to say, for `gc` and for the
    /// release's own pruning alike.
    OneOff {
        job: String,
        host: String,
        kind: OneOffKind,
    },
    /// drover's label but no readable task: removed by `up` (scope permitting).
    Unknown,
}

impl ObservedContainer {
    pub fn job(&self) -> Option<&str> {
        self.labels.get(labels::JOB).map(String::as_str)
    }

    pub fn host_label(&self) -> Option<&str> {
        self.labels.get(labels::HOST).map(String::as_str)
    }

    pub fn task(&self) -> Option<u32> {
        self.labels.get(labels::TASK).and_then(|t| t.parse().ok())
    }

    pub fn spec_hash(&self) -> Option<&str> {
        self.labels.get(labels::SPEC).map(String::as_str)
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Up, from the engine's point of view (a restart loop counts).
    pub fn is_running(&self) -> bool {
        self.runs.state.is_up()
    }

    pub fn state(&self) -> RunState {
        self.runs.state
    }

    pub fn role(&self, env: &str) -> Role {
        role_of(env, &self.name, &self.labels)
    }

    /// The task this container belongs to, whatever its name.
    pub fn task_key(&self) -> Option<TaskKey> {
        Some(TaskKey {
            job: self.job()?.to_string(),
            host: self.host_label()?.to_string(),
            task: self.task()?,
        })
    }

    /// When it was created for its task (the deployment label, else the engine's creation time).
    pub fn deployed_at(&self) -> Option<Timestamp> {
        self.label(labels::DEPLOYED_AT)
            .and_then(time::parse)
            .or(self.created)
    }

    /// Why it does not serve at `now`, if it does not ([`Runs::failing`]).
    pub fn failing(&self, now: Timestamp) -> Option<Failing> {
        self.runs.failing(now)
    }
}

/// What a drover container named `name` with `container_labels` is: the
/// one reading of names and labels, for an inspected container and for an
/// engine event (which carries the container's labels and name) alike.
pub fn role_of(env: &str, name: &str, container_labels: &BTreeMap<String, String>) -> Role {
    let label = |key: &str| container_labels.get(key).map(String::as_str);
    let job = label(labels::JOB).map(str::to_string);
    let host = label(labels::HOST).map(str::to_string);
    let task = label(labels::TASK).and_then(|t| t.parse::<u32>().ok());
    match (label(labels::ROLE), job, host, task) {
        (Some(ROLE_LOCK), Some(job), Some(host), _) => Role::Lock { job, host },
        (Some(ROLE_STOPPED), Some(job), Some(host), _) => Role::StopMark { job, host },
        (Some(role), Some(job), Some(host), _) => match OneOffKind::from_role(role) {
            Some(kind) => Role::OneOff { job, host, kind },
            None => Role::Unknown,
        },
        (None, Some(job), Some(host), Some(task)) => {
            let key = TaskKey { job, host, task };
            let own = key.container_name(env);
            if name == own {
                Role::Current(key)
            } else if name == key.failed_name(env) {
                Role::Failed(key)
            } else if name
                .strip_prefix(&own)
                .is_some_and(|rest| rest.starts_with(".kept-"))
            {
                Role::Kept(key)
            } else {
                Role::Stray(key)
            }
        }
        _ => Role::Unknown,
    }
}

/// Does `host`'s observation pass cover `container`? Two host entries may
/// share one engine: each sees the other's containers, and a container
/// labelled for another known host is left to that host's pass.
pub fn belongs_to(
    container: &ObservedContainer,
    host: &str,
    known_hosts: &BTreeSet<String>,
) -> bool {
    !matches!(container.host_label(), Some(label) if label != host && known_hosts.contains(label))
}
