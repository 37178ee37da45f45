//! The gate a started container must pass before a rollout moves on: healthy
//! by its health check, or, without one, up for the settle time without a
//! restart. An exit, a restart, `unhealthy`, or the deadline fails it; so
//! does an interruption, which the caller then undoes.
//!
//! The gate listens to the engine's events and looks at the container again
//! the moment one concerns it (`health_status: healthy`, `die`), so a
//! rollout moves on as soon as the engine knows, not at the next tick of a
//! poll; a slow poll stays as a safety net, and takes over if the event
//! stream breaks.

use std::time::Duration;

use tokio::time::Instant;

use drover_engine::Engine;
use tokio::sync::broadcast::error::RecvError;

use crate::watch::Wakeups;
use drover_plan::time::Timestamp;
use drover_plan::{Health, HealthConfig, RunState, Runs};
use tokio_util::sync::CancellationToken;

use crate::events::GateFailure;

/// How long a container without a health check must stay up.
pub const SETTLE: Duration = Duration::from_secs(2);
/// How often the container is looked at without events to wake the gate.
const POLL: Duration = Duration::from_millis(150);
/// How often it is looked at anyway while events flow.
const SAFETY_POLL: Duration = Duration::from_millis(500);

/// What a gate knows of the container before it waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Before {
    /// Its restart count once started (a start through the API resets it).
    pub restarts: i64,
    /// When its last health check ended before it was (re)started or
    /// unpaused: a verdict from then is stale, and the gate waits for a
    /// check that ended later.
    pub health_at: Option<Timestamp>,
}

/// Waits until `id` proves itself.
#[allow(clippy::too_many_arguments)]
pub async fn gate(
    engine: &dyn Engine,
    wakeups: Option<Wakeups>,
    id: &str,
    health: Option<&HealthConfig>,
    settle: Duration,
    before: Before,
    cancel: &CancellationToken,
    progress: &(dyn Fn(Duration, Duration) + Sync),
) -> Result<(), GateFailure> {
    let limit = health.map_or(settle, HealthConfig::deadline);
    let started = Instant::now();
    let mut events = wakeups;
    loop {
        let elapsed = started.elapsed();
        let container = match engine.inspect_container(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(GateFailure::Vanished),
            Err(e) => return Err(GateFailure::Engine(e)),
        };
        let runs = &container.runs;
        match runs.state {
            RunState::Exited | RunState::Dead | RunState::Removing => {
                let oom = runs.oom_killed || killed_for_memory(engine, id, runs).await;
                return Err(GateFailure::Exited {
                    code: runs.exit_code.unwrap_or(-1),
                    oom,
                });
            }
            RunState::Restarting => {
                return Err(GateFailure::Restarted {
                    count: runs.restarts.max(1),
                    exit_code: runs.exit_code,
                })
            }
            _ if runs.restarts > before.restarts => {
                return Err(GateFailure::Restarted {
                    count: runs.restarts - before.restarts,
                    exit_code: runs.exit_code,
                })
            }
            _ => {}
        }
        // A verdict from before the start (or the unpause) says nothing yet.
        let fresh = before.health_at.is_none() || runs.health_at > before.health_at;
        match (health, runs.health) {
            (Some(_), Health::Healthy) if fresh => return Ok(()),
            (Some(_), Health::Unhealthy) if fresh => {
                return Err(GateFailure::Unhealthy {
                    output: runs.health_output.clone(),
                })
            }
            (None, _) if elapsed >= settle && runs.state == RunState::Running => return Ok(()),
            _ => {}
        }
        if elapsed >= limit {
            return Err(GateFailure::Deadline {
                after: limit,
                health: if fresh {
                    runs.health.word().unwrap_or_default().to_string()
                } else {
                    "waiting for its first health check".to_string()
                },
            });
        }
        progress(elapsed, limit);
        let tick = if events.is_some() { SAFETY_POLL } else { POLL };
        let mut wait = tick.min(limit.saturating_sub(elapsed) + Duration::from_millis(1));
        if health.is_none() && elapsed < settle {
            wait = wait.min(settle - elapsed + Duration::from_millis(1));
        }
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        // Until the next look: an event about this container, or the tick.
        loop {
            let next = async {
                match events.as_mut() {
                    Some(receiver) => Some(receiver.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return Err(GateFailure::Interrupted),
                () = &mut deadline => break,
                event = next => match event {
                    Some(Ok(container)) if container == id => break,
                    Some(Ok(_)) => {}
                    // Fell behind: something may have happened, look.
                    Some(Err(RecvError::Lagged(_))) => break,
                    // The engine's stream ended: poll instead, from a fresh look.
                    Some(Err(RecvError::Closed)) | None => {
                        events = None;
                        break;
                    }
                },
            }
        }
    }
}

/// How long the engine may take to record a memory kill after the exit.
const OOM_NEWS: Duration = Duration::from_millis(500);

/// A container killed (exit code 137) may show as killed for memory only a
/// moment after it shows as exited: the engine learns of the two from
/// separate events. Looks again once, shortly.
async fn killed_for_memory(engine: &dyn Engine, id: &str, runs: &Runs) -> bool {
    if runs.exit_code != Some(137) {
        return false;
    }
    tokio::time::sleep(OOM_NEWS).await;
    matches!(engine.inspect_container(id).await, Ok(Some(c)) if c.runs.oom_killed)
}
