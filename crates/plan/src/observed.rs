//! What actually runs, as plain data read from each host's engine.

use std::collections::{BTreeMap, BTreeSet};

use drover_spec::ImageKey;

use crate::config::EnvValue;
use crate::config::TaskConfig;
use crate::names::{labels, OneOffKind, TaskKey, ROLE_ADOPTED, ROLE_LOCK, ROLE_STOPPED};
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
    /// Set when `drover adopt` took this container over: it was started by
    /// hand and carries none of drover's labels; its task comes from here.
    pub adopted: Option<Adoption>,
}

/// A container `drover adopt` took over. A running container can be
/// renamed but not relabelled, so it keeps the labels it was started with;
/// the adoption record of its job on its host (a never-started marker
/// container of the environment, `ENV.JOB.HOST.adopted`) says, by container
/// ID, which task it is. The first replacement gives the task a container
/// with drover's labels, and the adopted one becomes a kept generation.
///
/// One record per job and host keeps each record's labels to that job's
/// tasks on that host (at most 1000, about 90 bytes each), well within
/// what an engine stores for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub env: String,
    pub key: TaskKey,
    /// Who adopted it (`user@machine`) and when (RFC 3339), from the record.
    pub by: Option<String>,
    pub at: Option<String>,
    /// Its environment variables that are secrets: masked like a drover
    /// container's, never recorded by value.
    pub secrets: BTreeSet<String>,
}

impl Adoption {
    /// The adoptions an adoption record holds, by container ID: nothing
    /// for a container that is not a record of `env`.
    pub fn from_record(env: &str, record: &BTreeMap<String, String>) -> Vec<(String, Adoption)> {
        let get = |name: &str| record.get(name).map(String::as_str);
        let (Some(own_env), Some(ROLE_ADOPTED), Some(job), Some(host)) = (
            get(labels::ENV),
            get(labels::ROLE),
            get(labels::JOB),
            get(labels::HOST),
        ) else {
            return Vec::new();
        };
        if own_env != env {
            return Vec::new();
        }
        let secrets = crate::config::secret_names_label(record);
        record
            .iter()
            .filter_map(|(name, task)| {
                let id = name.strip_prefix(labels::ADOPTED_PREFIX)?;
                let task = task.parse().ok()?;
                let adoption = Adoption {
                    env: env.to_string(),
                    key: TaskKey::new(job, host, task),
                    by: get(labels::DEPLOYED_BY).map(str::to_string),
                    at: get(labels::DEPLOYED_AT).map(str::to_string),
                    secrets: secrets.clone(),
                };
                Some((id.to_string(), adoption))
            })
            .collect()
    }

    /// The labels of the record of `tasks` (container ID → task index),
    /// adopted as `job` on `host`, `secrets` by name.
    pub fn record(
        env: &str,
        job: &str,
        host: &str,
        tasks: &BTreeMap<String, u32>,
        secrets: &BTreeSet<String>,
    ) -> BTreeMap<String, String> {
        let mut record = BTreeMap::from([
            (labels::ENV.to_string(), env.to_string()),
            (labels::JOB.to_string(), job.to_string()),
            (labels::HOST.to_string(), host.to_string()),
            (labels::ROLE.to_string(), ROLE_ADOPTED.to_string()),
        ]);
        if !secrets.is_empty() {
            let names: Vec<&str> = secrets.iter().map(String::as_str).collect();
            record.insert(labels::SECRETS.to_string(), names.join(","));
        }
        for (id, task) in tasks {
            record.insert(format!("{}{id}", labels::ADOPTED_PREFIX), task.to_string());
        }
        record
    }
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
    /// The adoption record of a job on a host ([`Adoption`]).
    AdoptionRecord {
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
    // A container's environment, job, host and task: from its labels, or
    // for an adopted container from its adoption record. Every rule that
    // asks what a container is asks these.

    pub fn env(&self) -> Option<&str> {
        self.labels
            .get(labels::ENV)
            .map(String::as_str)
            .or(self.adopted.as_ref().map(|a| a.env.as_str()))
    }

    pub fn job(&self) -> Option<&str> {
        self.labels
            .get(labels::JOB)
            .map(String::as_str)
            .or(self.adopted.as_ref().map(|a| a.key.job.as_str()))
    }

    pub fn host_label(&self) -> Option<&str> {
        self.labels
            .get(labels::HOST)
            .map(String::as_str)
            .or(self.adopted.as_ref().map(|a| a.key.host.as_str()))
    }

    pub fn task(&self) -> Option<u32> {
        match self.labels.get(labels::TASK) {
            Some(task) => task.parse().ok(),
            None => self.adopted.as_ref().map(|a| a.key.task),
        }
    }

    /// Takes `adoption` as what this container is, its secrets masked from now on.
    pub fn adopt(&mut self, adoption: Adoption) {
        for (name, value) in &mut self.config.env {
            if adoption.secrets.contains(name) {
                if let EnvValue::Plain(plain) = value {
                    *value = EnvValue::Secret(crate::config::Secret::new(std::mem::take(plain)));
                }
            }
        }
        self.runs.health_output = self.config.mask_secrets(&self.runs.health_output);
        self.adopted = Some(adoption);
    }

    /// Who created it for its task: the deployment label, or who adopted it.
    pub fn deployed_by(&self) -> Option<&str> {
        self.label(labels::DEPLOYED_BY)
            .or(self.adopted.as_ref().and_then(|a| a.by.as_deref()))
    }

    /// The drover command that created it; `adopt` for an adopted container.
    pub fn deployed_with(&self) -> Option<&str> {
        self.label(labels::COMMAND)
            .or(self.adopted.as_ref().map(|_| "adopt"))
    }

    /// The `drover.commit` it was created from, if it records one.
    pub fn commit(&self) -> Option<&str> {
        self.label(labels::COMMIT)
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
        classify(
            env,
            &self.name,
            self.label(labels::ROLE),
            self.job(),
            self.host_label(),
            self.task(),
        )
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

    /// The ID of the container it replaced ([`labels::REPLACES`]).
    pub fn replaces(&self) -> Option<&str> {
        self.label(labels::REPLACES)
    }

    /// Why it does not serve at `now`, if it does not ([`Runs::failing`]).
    pub fn failing(&self, now: Timestamp) -> Option<Failing> {
        self.runs.failing(now)
    }
}

/// What a drover container named `name` with `container_labels` is, as an
/// engine event (which carries the container's labels and name) tells it.
/// An adopted container carries none of drover's labels: only its adoption
/// record says what it is, so a reader of events passes the adoption it
/// knows of for the event's container (from its own observation, or a
/// record's event); the labels, where there are any, come first, as in
/// [`ObservedContainer::role`].
pub fn role_of(
    env: &str,
    name: &str,
    container_labels: &BTreeMap<String, String>,
    adopted: Option<&Adoption>,
) -> Role {
    let label = |key: &str| container_labels.get(key).map(String::as_str);
    let key = adopted.map(|a| &a.key);
    classify(
        env,
        name,
        label(labels::ROLE),
        label(labels::JOB).or(key.map(|k| k.job.as_str())),
        label(labels::HOST).or(key.map(|k| k.host.as_str())),
        match label(labels::TASK) {
            Some(task) => task.parse::<u32>().ok(),
            None => key.map(|k| k.task),
        },
    )
}

/// The one reading of a container's role, name and identity.
fn classify(
    env: &str,
    name: &str,
    role: Option<&str>,
    job: Option<&str>,
    host: Option<&str>,
    task: Option<u32>,
) -> Role {
    let (job, host) = (job.map(str::to_string), host.map(str::to_string));
    match (role, job, host, task) {
        (Some(ROLE_LOCK), Some(job), Some(host), _) => Role::Lock { job, host },
        (Some(ROLE_STOPPED), Some(job), Some(host), _) => Role::StopMark { job, host },
        (Some(ROLE_ADOPTED), Some(job), Some(host), _) => Role::AdoptionRecord { job, host },
        (Some(role), Some(job), Some(host), _) => match OneOffKind::from_role(role) {
            Some(kind) => Role::OneOff { job, host, kind },
            None => Role::Unknown,
        },
        (None, Some(job), Some(host), Some(task)) => {
            let key = TaskKey { job, host, task };
            if name == key.container_name(env) {
                Role::Current(key)
            } else if name == key.failed_name(env) {
                Role::Failed(key)
            } else if is_kept_name(name, env, &key) {
                Role::Kept(key)
            } else {
                Role::Stray(key)
            }
        }
        _ => Role::Unknown,
    }
}

/// `ENV.JOB.HOST.TASK.kept-ID` for the container's own job and task, on
/// any host: a rollout sets the old container aside under the name of the
/// task it replaces, so after a host is renamed a generation labelled for
/// the old host is kept under the new host's name (and the other way round).
fn is_kept_name(name: &str, env: &str, key: &TaskKey) -> bool {
    let Some(rest) = name.strip_prefix(&format!("{env}.{}.", key.job)) else {
        return false;
    };
    let Some((task, id)) = rest.rsplit_once(".kept-") else {
        return false;
    };
    !id.is_empty()
        && task
            .split_once('.')
            .is_some_and(|(host, task)| !host.is_empty() && task == key.task.to_string())
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
