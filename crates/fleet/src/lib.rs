//! The pipeline every front end shares: find and load the environment,
//! connect to its hosts, observe what runs, plan, and apply with the job's
//! lock held. The CLI and the web dashboard both call this; neither
//! re-derives any of it.

pub mod adopt;
mod change;
pub mod commit;
mod connect;
mod doctor;
mod exec;
mod gc;
mod held;
mod images;
pub mod logs;
mod marks;
mod package;
mod release;
pub mod run;
mod secrets;
mod source;
mod status;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_apply::lock::{self, Holder, LockError, LockGuard};
use drover_apply::{Deployment, Engines, Event, Executor, Report, RolloutPolicy};
use drover_engine::{Engine, Limits};
use drover_plan::{render_job, DesiredTask, Observed, Plan, Scope, Secrets, TaskKey};
use drover_spec::{Environment, Job, SpecError};
use tokio_util::sync::CancellationToken;

pub use change::{Executed, Notice, Operation, Prepared};
pub use connect::Connections;
pub use doctor::{Check, DoctorReport, Finding, Level};
pub use exec::{parse_task, Picked, Shell};
pub use gc::{GcItem, GcOutcome, GcReport, GcStep, HostGc};
pub use images::{ImageRow, ImagesReport};
pub use marks::ImageEdit;
pub use package::{default_tag, PackageNote, Packaged};
pub use release::{needs_release, ReleaseNotice, ReleaseOutcome};
pub use run::{Ended, OneOff, OneOffSpec, RunRequest};
pub use secrets::load_secrets;
pub use source::FleetSource;
pub use status::{human_bytes, human_duration, now_secs, task_status, StatusReport, TaskStatus};

/// Why a fleet operation could not run.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("unknown job {name:?} (jobs in {}: {known})", dir.display())]
    UnknownJob {
        name: String,
        known: String,
        dir: PathBuf,
    },
    #[error("unknown host {name:?} given to --host (hosts in {file}: {known})")]
    UnknownHost {
        name: String,
        known: String,
        file: String,
    },
    #[error(transparent)]
    MissingSecret(#[from] drover_plan::MissingSecret),
    #[error("{0}")]
    Secrets(String),
    #[error(transparent)]
    Lock(Box<LockError>),
    #[error(transparent)]
    Edit(#[from] drover_spec::edit::EditError),
    /// The release command before a rollout did not succeed: nothing rolled out.
    #[error("{}", release_failure(.0))]
    Release(Box<ReleaseOutcome>),
    #[error("{0}")]
    Other(String),
}

/// A failed release, its consequence and its last lines, as one message.
fn release_failure(outcome: &ReleaseOutcome) -> String {
    let mut text = format!("{outcome}; no task was touched");
    if outcome.last_lines.is_empty() {
        text.push_str(" (it printed nothing)");
    } else {
        text.push_str("; its last lines:");
        for line in &outcome.last_lines {
            text.push_str("\n    ");
            text.push_str(line);
        }
    }
    text
}

impl From<LockError> for FleetError {
    fn from(e: LockError) -> Self {
        FleetError::Lock(Box::new(e))
    }
}

/// The environment as loaded, and which of its hosts this run may touch.
pub struct Fleet {
    pub env: Environment,
    /// `--host`: only these hosts (empty: all of them).
    pub only_hosts: BTreeSet<String>,
    pub limits: Limits,
}

/// Names, comma-separated, or "none".
pub fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let list: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

impl Fleet {
    /// Loads the environment in `dir`, or the nearest one up from the current directory.
    pub fn load(
        dir: Option<&Path>,
        stage: Option<&str>,
        only_hosts: &[String],
    ) -> Result<Fleet, FleetError> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                let cwd = std::env::current_dir().map_err(|source| SpecError::Io {
                    path: PathBuf::from("."),
                    source,
                })?;
                drover_spec::find_dir(&cwd)?
            }
        };
        let env = drover_spec::load(&dir, stage)?;
        for name in only_hosts {
            if !env.hosts.contains_key(name) {
                return Err(FleetError::UnknownHost {
                    name: name.clone(),
                    known: list(env.hosts.keys()),
                    file: env.hosts_file.clone(),
                });
            }
        }
        Ok(Fleet {
            env,
            only_hosts: only_hosts.iter().cloned().collect(),
            limits: Limits::default(),
        })
    }

    /// The named jobs, or all of them; an unknown name is an error.
    pub fn jobs(&self, names: &[String]) -> Result<Vec<&Job>, FleetError> {
        if names.is_empty() {
            return Ok(self.env.jobs.values().collect());
        }
        names.iter().map(|name| self.job(name)).collect()
    }

    pub fn job(&self, name: &str) -> Result<&Job, FleetError> {
        self.env
            .jobs
            .get(name)
            .ok_or_else(|| FleetError::UnknownJob {
                name: name.to_string(),
                known: list(self.env.jobs.keys()),
                dir: self.env.dir.join("jobs"),
            })
    }

    /// Every host of the environment this run may touch. Per-job commands
    /// look at all of them too: a job's container may linger on a host the
    /// job no longer lists.
    pub fn hosts(&self) -> BTreeSet<String> {
        self.env
            .hosts
            .keys()
            .filter(|h| self.only_hosts.is_empty() || self.only_hosts.contains(*h))
            .cloned()
            .collect()
    }

    pub fn known_hosts(&self) -> BTreeSet<String> {
        self.env.hosts.keys().cloned().collect()
    }

    pub fn scope(names: &[String]) -> Scope {
        if names.is_empty() {
            Scope::All
        } else {
            Scope::Jobs(names.iter().cloned().collect())
        }
    }

    /// The secret values the jobs need; one with no value is an error at
    /// the place its name was written.
    pub fn secrets(&self, jobs: &[&Job]) -> Result<Secrets, FleetError> {
        secrets::resolve(&self.env.dir, jobs)
    }

    /// Every task of the jobs, on every host: the planner plans only for
    /// the hosts it observed (those `--host` leaves), but must know where
    /// else each job runs — a job moved to a host left out is still in the
    /// spec, and its task on the host it left serves until it runs there.
    pub fn desired(
        &self,
        jobs: &[&Job],
        secrets: &Secrets,
    ) -> Result<Vec<DesiredTask>, FleetError> {
        let mut tasks = Vec::new();
        for job in jobs {
            tasks.extend(render_job(&self.env, job, secrets)?);
        }
        Ok(tasks)
    }

    /// `(job, host, task)` of the jobs' tasks, with no secret needed.
    pub fn task_keys(&self, jobs: &[&Job]) -> Vec<TaskKey> {
        let hosts = self.hosts();
        jobs.iter()
            .flat_map(|job| {
                job.tasks()
                    .map(|(host, task)| TaskKey::new(&job.name, host, task))
            })
            .filter(|k| hosts.contains(&k.host))
            .collect()
    }

    /// Observe + plan for `up` / `diff` of the named jobs (or everything).
    pub async fn plan_up(
        &self,
        connections: &Connections,
        names: &[String],
    ) -> Result<(Plan, Observed), FleetError> {
        self.plan_with(connections, names, &BTreeMap::new()).await
    }

    /// Like [`Fleet::plan_up`], with some jobs' images replaced (`rolling-update --image`).
    pub async fn plan_with(
        &self,
        connections: &Connections,
        names: &[String],
        images: &BTreeMap<String, drover_spec::ImageRef>,
    ) -> Result<(Plan, Observed), FleetError> {
        let (desired, observed) = self
            .desired_and_observed(connections, names, images)
            .await?;
        let plan = drover_plan::plan(
            &self.env.name,
            &desired,
            &observed,
            &Fleet::scope(names),
            &self.known_hosts(),
        );
        Ok((plan, observed))
    }

    /// The named jobs' tasks (some with another image), and what runs.
    pub async fn desired_and_observed(
        &self,
        connections: &Connections,
        names: &[String],
        images: &BTreeMap<String, drover_spec::ImageRef>,
    ) -> Result<(Vec<DesiredTask>, Observed), FleetError> {
        let jobs: Vec<Job> = self
            .jobs(names)?
            .into_iter()
            .map(|job| {
                let mut job = job.clone();
                if let Some(image) = images.get(&job.name) {
                    job.image = image.clone();
                }
                job
            })
            .collect();
        let jobs: Vec<&Job> = jobs.iter().collect();
        let secrets = self.secrets(&jobs)?;
        let desired = self.desired(&jobs, &secrets)?;
        let observed = self.observe(connections, &Fleet::scope(names)).await;
        Ok((desired, observed))
    }

    /// How each job's tasks are replaced, with `--parallel` over the spec's.
    pub fn policies(&self, parallel: Option<u32>) -> BTreeMap<String, RolloutPolicy> {
        self.env
            .jobs
            .iter()
            .map(|(name, job)| {
                let mut policy = RolloutPolicy::from(&job.update);
                if let Some(p) = parallel {
                    policy.parallel = p.max(1);
                }
                (name.clone(), policy)
            })
            .collect()
    }

    /// The engines of the hosts a job's lock lives on: the hosts it lists
    /// and the hosts where `plan` changes it, that are connected.
    pub fn lock_hosts(
        &self,
        connections: &Connections,
        job: &str,
        plan: Option<&Plan>,
    ) -> Vec<(String, Arc<dyn Engine>)> {
        let mut hosts: BTreeSet<String> = self
            .env
            .jobs
            .get(job)
            .map(|j| j.hosts.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(plan) = plan {
            hosts.extend(
                plan.changes
                    .iter()
                    .filter(|c| c.job == job)
                    .map(|c| c.host.clone()),
            );
        }
        hosts
            .into_iter()
            .filter_map(|h| {
                connections
                    .engines
                    .get(&h)
                    .map(|e| (h.clone(), Arc::clone(e)))
            })
            .collect()
    }

    /// Takes the locks of `jobs`, all or none.
    pub async fn lock(
        &self,
        connections: &Connections,
        jobs: &BTreeSet<String>,
        plan: Option<&Plan>,
        holder: &Holder,
    ) -> Result<Vec<LockGuard>, FleetError> {
        let mut guards = Vec::new();
        for job in jobs {
            match lock::acquire(
                &self.env.name,
                job,
                &self.lock_hosts(connections, job, plan),
                holder,
            )
            .await
            {
                Ok(guard) => guards.push(guard),
                Err(e) => {
                    for guard in guards {
                        guard.release().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(guards)
    }

    /// Runs `plan` with the executor.
    pub async fn apply(&self, connections: &Connections, plan: &Plan, run: &Run<'_>) -> Report {
        let mut executor = Executor::new(
            &self.env.name,
            &connections.engines,
            run.deployment.clone(),
            run.cancel.clone(),
            run.events,
        );
        executor.policies = self.policies(run.parallel);
        executor.run(plan).await
    }
}

/// How one run of the executor goes: who, with what overrides, reporting where.
#[derive(Clone)]
pub struct Run<'a> {
    pub deployment: Deployment,
    pub parallel: Option<u32>,
    pub cancel: CancellationToken,
    /// Each task's progress.
    pub events: &'a (dyn Fn(&Event) + Sync),
    /// What happens beside it (a job locked by someone else, the file written…).
    pub notices: &'a (dyn Fn(&Notice) + Sync),
    /// Where each job's deploy is announced (`[notify]`); posting never waits.
    pub notifier: drover_notify::Notifier,
}

/// The holder record for a command of this process.
pub fn holder(command: &str, reason: &str, process: bool) -> Holder {
    Holder {
        by: lock::operator(),
        at: now_rfc3339(),
        reason: reason.to_string(),
        command: command.to_string(),
        pid: process.then(std::process::id),
    }
}

impl Fleet {
    /// The deployment record for a command of this process: who, when, and
    /// the environment directory's commit.
    pub fn deployment(&self, command: &str) -> Deployment {
        Deployment {
            by: lock::operator(),
            at: now_rfc3339(),
            command: command.to_string(),
            commit: commit::git_commit(&self.env.dir).map(|c| c.label()),
        }
    }
}

/// Now, as RFC 3339 in UTC (as drover writes it into labels and records).
pub fn now_rfc3339() -> String {
    drover_plan::time::format(drover_plan::time::now())
}

/// Engines by host name, for callers holding [`Connections`].
pub fn engines(connections: &Connections) -> &Engines {
    &connections.engines
}
