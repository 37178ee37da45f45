//! A task's state: one model, parsed once at the engine boundary and asked
//! everywhere else — by `status`, `diff` and `up` (the planner), the rollout
//! gate, `doctor` and the dashboard. "Crash loop", "failing" and "the last
//! exit code" are each defined here once; nothing above this module compares
//! the engine's state words.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::time::{self, Timestamp};

/// The engine's own state of a container (`docker inspect`'s `State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RunState {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl RunState {
    /// The engine's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Restarting => "restarting",
            RunState::Removing => "removing",
            RunState::Exited => "exited",
            RunState::Dead => "dead",
        }
    }

    /// Up as the engine counts it (what `docker ps` lists without `-a`):
    /// running, or between two runs of a restart loop. A stop must wait for it.
    pub fn is_up(self) -> bool {
        matches!(self, RunState::Running | RunState::Restarting)
    }

    /// Beyond use: nothing can start it again.
    pub fn is_broken(self) -> bool {
        matches!(self, RunState::Dead | RunState::Removing)
    }
}

/// An engine word drover does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown container state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for RunState {
    type Err = UnknownState;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Ok(match word {
            "created" => RunState::Created,
            "running" => RunState::Running,
            "paused" => RunState::Paused,
            "restarting" => RunState::Restarting,
            "removing" => RunState::Removing,
            "exited" => RunState::Exited,
            "dead" => RunState::Dead,
            other => return Err(UnknownState(other.to_string())),
        })
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The engine's verdict of a container's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// No health check.
    #[default]
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    /// From the engine's word (`none` or empty: no check).
    pub fn from_engine(word: &str) -> Health {
        match word {
            "starting" => Health::Starting,
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            _ => Health::None,
        }
    }

    /// The engine's word, `None` without a health check.
    pub fn word(self) -> Option<&'static str> {
        match self {
            Health::None => None,
            Health::Starting => Some("starting"),
            Health::Healthy => Some("healthy"),
            Health::Unhealthy => Some("unhealthy"),
        }
    }
}

/// A container restarted by its restart policy within this long of the
/// check is crash-looping (the engine resets its back-off after 10 s up;
/// a loop of short runs keeps restarting inside this window).
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(30);

/// What a container's runs have been, as the engine tells it: the part of
/// `docker inspect` every state rule reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runs {
    pub state: RunState,
    /// The exit code of its last run, where known: the engine's for a
    /// container that is not running; for a running one that restarted,
    /// the last `die` event's (filled in by `observe`).
    pub exit_code: Option<i64>,
    /// The kernel killed its main process for exceeding its memory limit.
    pub oom_killed: bool,
    /// Restarts by its restart policy since it was last started by hand
    /// (a start through the API resets the engine's count).
    pub restarts: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub health: Health,
    /// The output of the last health check.
    pub health_output: String,
    /// When the last health check ended: a verdict from before a start or
    /// an unpause is stale.
    pub health_at: Option<Timestamp>,
}

/// Why a task is not serving. One definition, shown the same way by every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failing {
    /// Restarting again and again.
    CrashLoop {
        restarts: i64,
        exit_code: Option<i64>,
        oom: bool,
    },
    /// Stopped: exited by itself, stopped by hand, or killed.
    Exited {
        code: Option<i64>,
        oom: bool,
    },
    /// Running, and its health check fails.
    Unhealthy {
        output: String,
    },
    Paused,
    /// Created, never started.
    NeverStarted,
    /// Dead or being removed: nothing can start it again.
    Broken(RunState),
}

impl Failing {
    /// The last exit code, where the failure has one.
    pub fn exit_code(&self) -> Option<i64> {
        match self {
            Failing::CrashLoop { exit_code, .. }
            | Failing::Exited {
                code: exit_code, ..
            } => *exit_code,
            _ => None,
        }
    }
}

impl fmt::Display for Failing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failing::CrashLoop {
                restarts,
                exit_code,
                oom,
            } => {
                write!(f, "crash-looping ({restarts} restart(s)")?;
                match (exit_code, oom) {
                    (_, true) => f.write_str(", last killed for exceeding its memory limit)"),
                    (Some(code), false) => write!(f, ", last exit code {code})"),
                    (None, false) => f.write_str(")"),
                }
            }
            Failing::Exited {
                code: Some(code),
                oom: true,
            } => write!(
                f,
                "killed for exceeding its memory limit (exit code {code})"
            ),
            Failing::Exited {
                code: None,
                oom: true,
            } => f.write_str("killed for exceeding its memory limit"),
            Failing::Exited {
                code: Some(code),
                oom: false,
            } => write!(f, "exited (code {code})"),
            Failing::Exited {
                code: None,
                oom: false,
            } => f.write_str("exited"),
            Failing::Unhealthy { output } if output.is_empty() => f.write_str("unhealthy"),
            Failing::Unhealthy { output } => write!(f, "unhealthy: {output}"),
            Failing::Paused => f.write_str("paused"),
            Failing::NeverStarted => f.write_str("created but never started"),
            Failing::Broken(state) => write!(f, "{state}"),
        }
    }
}

impl Runs {
    /// How long it has been up, at `now`.
    pub fn uptime(&self, now: Timestamp) -> Option<Duration> {
        (self.state == RunState::Running)
            .then_some(self.started_at)
            .flatten()
            .map(|started| time::since(now, started))
    }

    /// The health verdict of the run in progress. The engine keeps its
    /// last one on a container that stopped (as `unhealthy`) or is paused
    /// (its checks cannot run): neither is a verdict on anything running.
    pub fn current_health(&self) -> Health {
        match self.state {
            RunState::Running | RunState::Restarting => self.health,
            _ => Health::None,
        }
    }

    /// Restarting again and again: between two runs of its restart policy,
    /// or up only a moment after one.
    pub fn crash_loop(&self, now: Timestamp) -> bool {
        match self.state {
            RunState::Restarting => true,
            RunState::Running => {
                self.restarts > 0 && self.uptime(now).is_some_and(|up| up < CRASH_LOOP_WINDOW)
            }
            _ => false,
        }
    }

    /// Why it does not serve, or `None` when it runs well (healthy, or
    /// without a health check, or still starting).
    pub fn failing(&self, now: Timestamp) -> Option<Failing> {
        if self.crash_loop(now) {
            return Some(Failing::CrashLoop {
                restarts: self.restarts.max(1),
                exit_code: self.exit_code,
                oom: self.oom_killed,
            });
        }
        match self.state {
            RunState::Running if self.health == Health::Unhealthy => Some(Failing::Unhealthy {
                output: self.health_output.clone(),
            }),
            RunState::Running | RunState::Restarting => None,
            RunState::Paused => Some(Failing::Paused),
            RunState::Created => Some(Failing::NeverStarted),
            RunState::Exited => Some(Failing::Exited {
                code: self.exit_code,
                oom: self.oom_killed,
            }),
            state @ (RunState::Removing | RunState::Dead) => Some(Failing::Broken(state)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        time::from_unix_secs(1_800_000_000 + secs).expect("a time")
    }

    fn running(restarts: i64, up_secs: i64) -> Runs {
        Runs {
            state: RunState::Running,
            restarts,
            started_at: Some(at(-up_secs)),
            ..Runs::default()
        }
    }

    #[test]
    fn every_engine_word_round_trips() {
        for state in [
            RunState::Created,
            RunState::Running,
            RunState::Paused,
            RunState::Restarting,
            RunState::Removing,
            RunState::Exited,
            RunState::Dead,
        ] {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
        assert!("zombie".parse::<RunState>().is_err());
    }

    #[test]
    fn a_crash_loop_is_restarting_or_restarted_and_up_only_a_moment() {
        let now = at(0);
        assert!(running(1, 4).crash_loop(now));
        assert!(!running(1, 31).crash_loop(now));
        assert!(!running(0, 4).crash_loop(now));
        let restarting = Runs {
            state: RunState::Restarting,
            exit_code: Some(1),
            ..Runs::default()
        };
        assert!(restarting.crash_loop(now));
        assert_eq!(
            restarting.failing(now).map(|f| f.to_string()).as_deref(),
            Some("crash-looping (1 restart(s), last exit code 1)")
        );
    }

    #[test]
    fn a_stopped_or_paused_container_has_no_current_health() {
        for (state, health) in [
            (RunState::Running, Health::Unhealthy),
            (RunState::Exited, Health::None),
            (RunState::Paused, Health::None),
        ] {
            let runs = Runs {
                state,
                health: Health::Unhealthy,
                ..Runs::default()
            };
            assert_eq!(runs.current_health(), health, "{state}");
        }
    }

    #[test]
    fn failing_covers_every_state_that_does_not_serve() {
        let now = at(0);
        assert_eq!(running(0, 100).failing(now), None);
        let unhealthy = Runs {
            health: Health::Unhealthy,
            health_output: "connection refused".to_string(),
            ..running(0, 100)
        };
        assert_eq!(
            unhealthy.failing(now).map(|f| f.to_string()).as_deref(),
            Some("unhealthy: connection refused")
        );
        let starting = Runs {
            health: Health::Starting,
            ..running(0, 1)
        };
        assert_eq!(starting.failing(now), None);
        for (state, words) in [
            (RunState::Paused, "paused"),
            (RunState::Created, "created but never started"),
            (RunState::Dead, "dead"),
        ] {
            let runs = Runs {
                state,
                ..Runs::default()
            };
            assert_eq!(
                runs.failing(now).map(|f| f.to_string()).as_deref(),
                Some(words)
            );
        }
        let oom = Runs {
            state: RunState::Exited,
            exit_code: Some(137),
            oom_killed: true,
            ..Runs::default()
        };
        assert_eq!(
            oom.failing(now).map(|f| f.to_string()).as_deref(),
            Some("killed for exceeding its memory limit (exit code 137)")
        );
    }
}
