//! What drover calls its containers, and how it tells them apart.
//!
//! A task's container is named `ENV.JOB.HOST.TASK`. Environment, job and
//! host names cannot contain dots (the spec rejects them), so two different
//! tasks can never share a name. Around the task's own container live:
//!
//! - kept generations, stopped, named `ENV.JOB.HOST.TASK.kept-ID`: what a
//!   rollout set aside, for `rollback` and `history`;
//! - the new container of the last rollout that failed its gate, stopped,
//!   named `ENV.JOB.HOST.TASK.failed`: the evidence, for `logs --failed`;
//! - a job's lock on a host, `ENV.JOB.HOST.lock`, labelled `drover.role=lock`;
//! - a job's stop mark on a host, `ENV.JOB.HOST.stopped`, labelled
//!   `drover.role=stopped`: the record that `drover stop` left the job stopped;
//! - a job's adoption record on a host, `ENV.JOB.HOST.adopted`, labelled
//!   `drover.role=adopted`: which containers started by hand `drover adopt`
//!   took over as which tasks (a running container can be renamed but not
//!   relabelled, so the record lives beside it, keyed by container ID).
//! - one-off containers of a job ([`OneOffKind`]): `drover run`'s,
//!   `ENV.JOB.HOST.run-ID`, labelled `drover.role=run`, removed when it
//!   ends; and the `[release]` command's, `ENV.JOB.HOST.release-ID`,
//!   labelled `drover.role=release`, kept stopped when it ends as the
//!   record `history` lists (its exit code is the engine's).
//!
//! None of a lock, a stop mark, an adoption record or a one-off carries
//! `drover.task`, so nothing that looks for tasks can mistake one for a
//! stray task container.

use std::fmt;

use serde::Serialize;

/// The labels drover puts on containers.
pub mod labels {
    pub const ENV: &str = "drover.env";
    pub const JOB: &str = "drover.job";
    pub const HOST: &str = "drover.host";
    pub const TASK: &str = "drover.task";
    pub const SPEC: &str = "drover.spec";
    /// Names (not values) of the task's secret env vars, comma-separated, so
    /// a secret dropped from the spec stays masked while its container lives.
    pub const SECRETS: &str = "drover.secrets";
    /// When, by whom (`user@machine`) and by which command a container was created.
    pub const DEPLOYED_AT: &str = "drover.deployed_at";
    pub const DEPLOYED_BY: &str = "drover.deployed_by";
    pub const COMMAND: &str = "drover.command";
    /// The generation this container replaced, as JSON, so `rollback` can
    /// recreate it when its kept container is gone.
    pub const PREVIOUS: &str = "drover.previous";
    /// The ID of the container this one replaced (set aside as a kept
    /// generation): what served just before it. `rollback` goes back to
    /// it, and retention keeps generations in this order of succession.
    pub const REPLACES: &str = "drover.replaces";
    /// `lock` or `stopped` on drover's marker containers.
    pub const ROLE: &str = "drover.role";
    /// A lock's record: why it is held.
    pub const REASON: &str = "drover.reason";
    /// The process holding a lock (or running a one-off), for telling a
    /// stale one from a held one.
    pub const PID: &str = "drover.pid";
    /// The git commit of the environment directory a container was created
    /// from (`-dirty` with uncommitted changes). Not part of [`SPEC`]: a new
    /// commit alone replaces nothing.
    pub const COMMIT: &str = "drover.commit";
    /// On an adoption record: `drover.adopted.<container ID>` = the task index.
    pub const ADOPTED_PREFIX: &str = "drover.adopted.";
    /// A release container's `[release] timeout`, in milliseconds, so
    /// `history` can say a run that was stopped at it timed out.
    pub const TIMEOUT: &str = "drover.timeout";
}

/// `job host/task`: one task of the spec.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TaskKey {
    pub job: String,
    pub host: String,
    pub task: u32,
}

impl TaskKey {
    pub fn new(job: &str, host: &str, task: u32) -> Self {
        TaskKey {
            job: job.to_string(),
            host: host.to_string(),
            task,
        }
    }

    /// The task's own container name.
    pub fn container_name(&self, env: &str) -> String {
        format!("{env}.{}.{}.{}", self.job, self.host, self.task)
    }

    /// The name a new container that failed its gate is kept under, stopped,
    /// so its output can still be read (`logs --failed`): one per task, the latest.
    pub fn failed_name(&self, env: &str) -> String {
        format!("{}.failed", self.container_name(env))
    }

    /// The name a generation set aside by a rollout goes by.
    pub fn kept_name(&self, env: &str, container_id: &str) -> String {
        format!(
            "{}.kept-{}",
            self.container_name(env),
            container_id.get(..12).unwrap_or(container_id)
        )
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.job, self.host, self.task)
    }
}

/// The lock container of `job` on `host`.
pub fn lock_name(env: &str, job: &str, host: &str) -> String {
    format!("{env}.{job}.{host}.lock")
}

/// The stop mark of `job` on `host`.
pub fn stop_mark_name(env: &str, job: &str, host: &str) -> String {
    format!("{env}.{job}.{host}.stopped")
}

/// The adoption record of `job` on `host` (`drover adopt`).
pub fn adoption_name(env: &str, job: &str, host: &str) -> String {
    format!("{env}.{job}.{host}.adopted")
}

/// Values of the [`labels::ROLE`] label.
pub const ROLE_LOCK: &str = "lock";
pub const ROLE_STOPPED: &str = "stopped";
pub const ROLE_ADOPTED: &str = "adopted";
pub const ROLE_RUN: &str = "run";
pub const ROLE_RELEASE: &str = "release";

/// What a one-off container of a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OneOffKind {
    /// `drover run`: removed when it ends (unless `--keep`).
    Run,
    /// The `[release]` command before a rollout: kept stopped as its record.
    Release,
}

impl OneOffKind {
    /// Its [`labels::ROLE`] value, and the prefix of its name's last part.
    pub fn role(self) -> &'static str {
        match self {
            OneOffKind::Run => ROLE_RUN,
            OneOffKind::Release => ROLE_RELEASE,
        }
    }

    pub fn from_role(role: &str) -> Option<OneOffKind> {
        match role {
            ROLE_RUN => Some(OneOffKind::Run),
            ROLE_RELEASE => Some(OneOffKind::Release),
            _ => None,
        }
    }

    /// `ENV.JOB.HOST.run-ID` / `ENV.JOB.HOST.release-ID`.
    pub fn container_name(self, env: &str, job: &str, host: &str, id: &str) -> String {
        format!("{env}.{job}.{host}.{}-{id}", self.role())
    }
}

impl fmt::Display for OneOffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OneOffKind::Run => "one-off run",
            OneOffKind::Release => "release run",
        })
    }
}

/// The image drover creates marker containers from. It is made on each host
/// from a few bytes (never pulled), and never run.
pub const MARKER_IMAGE: &str = "drover-internal/marker:1";
