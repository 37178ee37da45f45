//! The gate a started container must pass before a rollout moves on: healthy
//! by its health check, or, without one, up for the settle time without a
//! restart. An exit, a restart, `unhealthy`, or the deadline fails it; so
//! does an interruption, which the caller then undoes.

use std::time::Duration;

use tokio::time::Instant;

use drover_engine::Engine;
use drover_plan::HealthConfig;
use tokio_util::sync::CancellationToken;

use crate::events::GateFailure;

/// How long a container without a health check must stay up.
pub const SETTLE: Duration = Duration::from_secs(2);
/// How often the container is looked at while waiting.
const POLL: Duration = Duration::from_millis(150);

/// Waits until `id` proves itself. `restarts_before` is its restart count
/// when it was started (a restarted container keeps its count).
pub async fn gate(
    engine: &dyn Engine,
    id: &str,
    health: Option<&HealthConfig>,
    settle: Duration,
    restarts_before: i64,
    cancel: &CancellationToken,
    progress: &(dyn Fn(Duration, Duration) + Sync),
) -> Result<(), GateFailure> {
    let limit = health.map_or(settle, HealthConfig::deadline);
    let started = Instant::now();
    loop {
        let elapsed = started.elapsed();
        let container = match engine.inspect_container(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(GateFailure::Vanished),
            Err(e) => return Err(GateFailure::Engine(e)),
        };
        match container.state.as_str() {
            "exited" | "dead" => {
                return Err(GateFailure::Exited {
                    code: container.exit_code,
                    oom: container.oom_killed,
                })
            }
            "restarting" => {
                return Err(GateFailure::Restarted {
                    count: container.restarts.max(1),
                })
            }
            _ if container.restarts > restarts_before => {
                return Err(GateFailure::Restarted {
                    count: container.restarts - restarts_before,
                })
            }
            _ => {}
        }
        match (health, container.health.as_str()) {
            (Some(_), "healthy") => return Ok(()),
            (Some(_), "unhealthy") => {
                return Err(GateFailure::Unhealthy {
                    output: container.health_output,
                })
            }
            (None, _) if elapsed >= settle && container.state == "running" => return Ok(()),
            _ => {}
        }
        if elapsed >= limit {
            return Err(GateFailure::Deadline {
                after: limit,
                health: container.health,
            });
        }
        progress(elapsed, limit);
        let wait = POLL.min(limit.saturating_sub(elapsed) + Duration::from_millis(1));
        tokio::select! {
            () = cancel.cancelled() => return Err(GateFailure::Interrupted),
            () = tokio::time::sleep(wait) => {}
        }
    }
}
