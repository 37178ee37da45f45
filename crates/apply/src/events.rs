//! What the executor reports while it works, one [`Event`] at a time, and
//! what it reports when done: an [`Outcome`] per step.
//!
//! A terminal shows events as a live view per task, a pipe as timestamped
//! lines, `--json` as one object per event; the executor does not care which.

use std::fmt;
use std::time::Duration;

use drover_engine::EngineError;
use serde::Serialize;

/// One thing that happened to one task (or image).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub job: String,
    pub host: String,
    pub task: Option<u32>,
    #[serde(flatten)]
    pub phase: Phase,
}

impl Event {
    /// `job host/task`, or `host` for events that concern a host.
    pub fn subject(&self) -> String {
        match (self.job.as_str(), self.task) {
            ("", _) => self.host.clone(),
            (job, Some(task)) => format!("{job} {}/{task}", self.host),
            (job, None) => format!("{job} {}", self.host),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Phase {
    Pulling {
        image: String,
    },
    Pulled {
        image: String,
    },
    Removing,
    Stopping,
    Creating,
    Starting,
    /// Waiting for a new container to prove itself.
    Waiting {
        /// Whether it has a health check (else: staying up for the settle time).
        health: bool,
        #[serde(serialize_with = "secs")]
        elapsed: Duration,
        #[serde(serialize_with = "secs")]
        limit: Duration,
    },
    /// The step ended well.
    Done {
        detail: String,
    },
    Failed {
        error: String,
    },
    /// The previous container is back.
    RolledBack {
        detail: String,
    },
    Skipped {
        why: String,
    },
    /// Cut short by an interruption while in flight (and undone where it can be).
    Interrupted {
        detail: String,
    },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 10.0).round() / 10.0)
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Pulling { image } => write!(f, "pulling {image}"),
            Phase::Pulled { image } => write!(f, "pulled {image}"),
            Phase::Removing => f.write_str("removing"),
            Phase::Stopping => f.write_str("stopping"),
            Phase::Creating => f.write_str("creating"),
            Phase::Starting => f.write_str("starting"),
            Phase::Waiting {
                health: true,
                elapsed,
                limit,
            } => write!(
                f,
                "waiting for health {:.0}s/{:.0}s",
                elapsed.as_secs_f64(),
                limit.as_secs_f64()
            ),
            Phase::Waiting {
                health: false,
                elapsed,
                limit,
            } => write!(
                f,
                "checking it stays up {:.0}s/{:.0}s",
                elapsed.as_secs_f64(),
                limit.as_secs_f64()
            ),
            Phase::Done { detail } => write!(f, "done: {detail}"),
            Phase::Failed { error } => write!(f, "FAILED: {error}"),
            Phase::RolledBack { detail } => write!(f, "rolled back: {detail}"),
            Phase::Skipped { why } => write!(f, "skipped: {why}"),
            Phase::Interrupted { detail } => f.write_str(detail),
        }
    }
}

/// Why a new or restarted container did not prove itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    Exited { code: i64, oom: bool },
    Restarted { count: i64, exit_code: Option<i64> },
    Unhealthy { output: String },
    Deadline { after: Duration, health: String },
    Vanished,
    Engine(EngineError),
    Interrupted,
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateFailure::Exited { code: 137, oom: true } => f.write_str(
                "it was killed for exceeding its memory limit (exit code 137): raise `memory`",
            ),
            GateFailure::Exited { code, oom: true } => write!(
                f,
                "a process in it was killed for exceeding its memory limit, and it exited with code {code}: raise `memory`"
            ),
            // Say what is known: a SIGKILL, and no memory kill on record.
            GateFailure::Exited { code: 137, oom: false } => f.write_str(
                "it was killed with SIGKILL (exit code 137); the engine recorded no memory kill",
            ),
            GateFailure::Exited { code: -1, oom: false } => f.write_str("it stopped"),
            GateFailure::Exited { code, oom: false } => write!(f, "it exited with code {code}"),
            GateFailure::Restarted {
                count,
                exit_code: Some(code),
            } => write!(
                f,
                "it is crash-looping ({count} restart(s), last exit code {code})"
            ),
            GateFailure::Restarted {
                count,
                exit_code: None,
            } => write!(f, "it is crash-looping ({count} restart(s))"),
            GateFailure::Unhealthy { output } if output.is_empty() => {
                f.write_str("its health check failed")
            }
            GateFailure::Unhealthy { output } => write!(f, "its health check failed: {output}"),
            GateFailure::Deadline { after, health } if health.is_empty() => {
                write!(f, "it did not prove itself within {}s", after.as_secs())
            }
            GateFailure::Deadline { after, health } => {
                write!(f, "it was still {health} after {}s", after.as_secs())
            }
            GateFailure::Vanished => f.write_str("its container disappeared"),
            GateFailure::Engine(e) => write!(f, "watching it failed: {e}"),
            GateFailure::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// What became of the container a failed step meant to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The previous container runs again.
    Previous,
    /// There was nothing to put back (a new task), or it was not running before.
    Nothing,
    /// Putting it back failed too: the task may be down.
    Failed(String),
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restored::Previous => f.write_str("the previous container runs again"),
            Restored::Nothing => Ok(()),
            Restored::Failed(e) => write!(
                f,
                "putting the previous container back failed too ({e}): run `drover up` to repair"
            ),
        }
    }
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    Engine(EngineError),
    /// The image this task needs could not be pulled (on this or another host).
    Pull {
        image: String,
        host: String,
        error: String,
    },
    /// A container did not prove itself; `logs` are its last lines.
    Gate {
        /// Which container: "the new container", "the restarted container"…
        what: &'static str,
        failure: GateFailure,
        logs: Vec<String>,
        restored: Restored,
        /// The failed container, kept aside stopped under this name.
        evidence: Option<String>,
    },
    /// It worked, but was rolled back because another task of the rollout failed.
    RolledBack {
        because: String,
        restored: Restored,
    },
    /// Never started: the rollout stopped first.
    NotStarted {
        why: String,
    },
    /// Interrupted while in flight, and undone.
    Interrupted {
        restored: Restored,
    },
    /// Failed part way, and what it had done was undone.
    Undone {
        error: String,
        restored: Restored,
    },
}

impl StepError {
    /// A failure of its own: not a step undone because another one failed
    /// (rolled back), nor one left undone because the run was interrupted
    /// or the rollout stopped.
    pub fn counts(&self) -> bool {
        !matches!(
            self,
            StepError::Interrupted { .. }
                | StepError::NotStarted { .. }
                | StepError::RolledBack { .. }
        )
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, r: &Restored| match r {
            Restored::Nothing => Ok(()),
            r => write!(f, "; {r}"),
        };
        match self {
            StepError::Engine(e) => write!(f, "{e}"),
            StepError::Pull { image, host, error } => write!(
                f,
                "image {image} could not be pulled on host {host}: {error}"
            ),
            StepError::Gate {
                what,
                failure,
                restored,
                evidence,
                ..
            } => {
                write!(f, "{what} failed: {failure}")?;
                with(f, restored)?;
                match evidence {
                    Some(name) => write!(f, "; it is kept stopped as {name} for its logs"),
                    None => Ok(()),
                }
            }
            StepError::RolledBack { because, restored } => {
                write!(f, "rolled back because {because}")?;
                with(f, restored)
            }
            StepError::NotStarted { why } => write!(f, "not started: {why}"),
            StepError::Interrupted { restored } => {
                f.write_str("interrupted")?;
                with(f, restored)
            }
            StepError::Undone { error, restored } => {
                f.write_str(error)?;
                with(f, restored)
            }
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub job: String,
    pub host: String,
    pub task: Option<u32>,
    /// The operator's word for the step: `create`, `replace`, `pull`…
    pub step: String,
    pub result: Result<String, StepError>,
}

impl Outcome {
    pub fn subject(&self) -> String {
        match (self.job.as_str(), self.task) {
            ("", _) => self.host.clone(),
            (job, Some(task)) => format!("{job} {}/{task}", self.host),
            (job, None) => format!("{job} {}", self.host),
        }
    }
}

/// Everything that happened, in the order steps ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// A signal or a closed output stopped the run early.
    pub interrupted: bool,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }

    pub fn succeeded(&self) -> bool {
        !self.interrupted && self.failures().next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::GateFailure;

    #[test]
    fn exits_say_whether_memory_killed_them() {
        let say = |code, oom| GateFailure::Exited { code, oom }.to_string();
        assert_eq!(say(3, false), "it exited with code 3");
        assert_eq!(
            say(137, true),
            "it was killed for exceeding its memory limit (exit code 137): raise `memory`"
        );
        assert!(say(3, true).starts_with(
            "a process in it was killed for exceeding its memory limit, and it exited with code 3"
        ));
        // No memory kill on record: say what is known, not a guess.
        assert_eq!(
            say(137, false),
            "it was killed with SIGKILL (exit code 137); the engine recorded no memory kill"
        );
    }
}
