//! Apply: run a [`Plan`]'s steps against the engines.
//!
//! All hosts at once; on each host, images are pulled first, then containers
//! no task claims are removed (freeing their names and ports), then tasks are
//! created, replaced and started, a bounded number at a time. A step that
//! fails is reported and leaves what ran before it running: a replacement
//! only removes the old container once the new one has started.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use drover_engine::{Engine, EngineError};
use drover_plan::{task_name, Action, Change, DesiredTask, Plan, Pull};
use futures::future::join_all;
use futures::{stream, StreamExt};

/// Container operations in flight at once on one host.
pub const HOST_CONCURRENCY: usize = 32;

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// `job host/task`, or the image for a pull.
    pub what: String,
    pub host: String,
    /// `create`, `replace`, `start`, `remove` or `pull`.
    pub action: String,
    /// What was done, or why it failed.
    pub outcome: Result<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub steps: Vec<StepReport>,
}

impl ApplyReport {
    pub fn failures(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| s.outcome.is_err())
    }
}

/// Engines by host name.
pub type Engines = BTreeMap<String, Arc<dyn Engine>>;

/// Runs `plan` on `engines`, calling `progress` as each step ends.
pub async fn apply(
    env: &str,
    plan: &Plan,
    engines: &Engines,
    progress: &(dyn Fn(&StepReport) + Sync),
) -> ApplyReport {
    let mut hosts: BTreeSet<&str> = plan.changes.iter().map(|c| c.host.as_str()).collect();
    hosts.extend(plan.pulls.iter().map(|p| p.host.as_str()));
    let runs = hosts.into_iter().map(|host| async move {
        let Some(engine) = engines.get(host) else {
            return vec![StepReport {
                what: host.to_string(),
                host: host.to_string(),
                action: "connect".to_string(),
                outcome: Err(format!("host {host} is not connected")),
            }];
        };
        let pulls: Vec<&Pull> = plan.pulls.iter().filter(|p| p.host == host).collect();
        let changes: Vec<&Change> = plan.changes.iter().filter(|c| c.host == host).collect();
        apply_host(env, engine.as_ref(), &pulls, &changes, progress).await
    });
    ApplyReport {
        steps: join_all(runs).await.into_iter().flatten().collect(),
    }
}

async fn apply_host(
    env: &str,
    engine: &dyn Engine,
    pulls: &[&Pull],
    changes: &[&Change],
    progress: &(dyn Fn(&StepReport) + Sync),
) -> Vec<StepReport> {
    let report = |what: String, action: &str, outcome: Result<String, String>| {
        let step = StepReport {
            what,
            host: engine.host().to_string(),
            action: action.to_string(),
            outcome,
        };
        progress(&step);
        step
    };

    // Each step is reported the moment it ends, not when its phase does.
    let mut steps: Vec<StepReport> = stream::iter(pulls)
        .map(|pull| async move {
            let outcome = engine
                .pull_image(&pull.image)
                .await
                .map(|()| "pulled".to_string())
                .map_err(|e| e.to_string());
            report(pull.image.clone(), "pull", outcome)
        })
        .buffer_unordered(HOST_CONCURRENCY)
        .collect()
        .await;
    let failed_images: BTreeMap<String, String> = steps
        .iter()
        .filter_map(|s| {
            s.outcome
                .as_ref()
                .err()
                .map(|e| (s.what.clone(), e.clone()))
        })
        .collect();

    for phase in [Phase::Removals, Phase::Tasks] {
        let selected: Vec<&Change> = changes
            .iter()
            .copied()
            .filter(|c| phase.includes(c.action))
            .collect();
        let done: Vec<StepReport> = stream::iter(selected)
            .map(|change| {
                let failed_pull = change
                    .desired
                    .as_ref()
                    .and_then(|d| failed_images.get(&d.config.image))
                    .cloned();
                async move {
                    let outcome = match failed_pull {
                        Some(e) if matches!(change.action, Action::Create | Action::Replace) => {
                            Err(format!("image could not be pulled: {e}"))
                        }
                        _ => run_change(env, engine, change).await,
                    };
                    report(task_name(change), &change.action.to_string(), outcome)
                }
            })
            .buffer_unordered(HOST_CONCURRENCY)
            .collect()
            .await;
        steps.extend(done);
    }
    steps
}

#[derive(Clone, Copy)]
enum Phase {
    Removals,
    Tasks,
}

impl Phase {
    fn includes(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Phase::Removals, Action::Remove)
                | (
                    Phase::Tasks,
                    Action::Create | Action::Replace | Action::Start
                )
        )
    }
}

async fn run_change(env: &str, engine: &dyn Engine, change: &Change) -> Result<String, String> {
    match (change.action, &change.desired, &change.container) {
        (Action::Create, Some(desired), _) => create(env, engine, desired).await,
        (Action::Replace, Some(desired), Some(old)) => {
            replace(
                env,
                engine,
                desired,
                &old.id,
                &old.state,
                old.stop_timeout_secs,
            )
            .await
        }
        (Action::Start, _, Some(current)) => {
            let result = if current.state == "paused" {
                engine.unpause_container(&current.id).await
            } else {
                engine.start_container(&current.id).await
            };
            result
                .map(|()| format!("started {}", short(&current.id)))
                .map_err(|e| e.to_string())
        }
        (Action::Remove, _, Some(current)) => {
            remove(engine, &current.id, current.stop_timeout_secs)
                .await
                .map(|()| format!("removed {}", short(&current.id)))
                .map_err(|e| e.to_string())
        }
        _ => Err("inconsistent plan step".to_string()),
    }
}

async fn create(env: &str, engine: &dyn Engine, desired: &DesiredTask) -> Result<String, String> {
    let name = desired.container_name(env);
    let id = engine
        .create_container(env, &name, desired)
        .await
        .map_err(|e| explain_create(engine, e))?;
    if let Err(e) = engine.start_container(&id).await {
        // Leave nothing behind that never ran.
        let _ = engine.remove_container(&id).await;
        return Err(format!("created but could not start: {e}"));
    }
    Ok(format!("created {}", short(&id)))
}

/// New beside old, then swap: the old container keeps running until the new
/// one exists, and comes back if the new one cannot start.
async fn replace(
    env: &str,
    engine: &dyn Engine,
    desired: &DesiredTask,
    old_id: &str,
    old_state: &str,
    old_timeout: u64,
) -> Result<String, String> {
    let name = desired.container_name(env);
    let staging = format!("{name}.new-{}", desired.spec_hash);
    // A leftover from an interrupted run would hold the staging name.
    let _ = engine.remove_container(&staging).await;
    let new_id = engine
        .create_container(env, &staging, desired)
        .await
        .map_err(|e| explain_create(engine, e))?;
    if let Err(e) = engine.stop_container(old_id, old_timeout).await {
        let _ = engine.remove_container(&new_id).await;
        return Err(format!(
            "could not stop the old container {}: {e}",
            short(old_id)
        ));
    }
    let started = match engine.start_container(&new_id).await {
        Ok(()) => settled(engine, &new_id).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = started {
        let _ = engine.remove_container(&new_id).await;
        let restored = if matches!(old_state, "running" | "restarting" | "paused") {
            match engine.start_container(old_id).await {
                Ok(()) => "; the previous container is running again".to_string(),
                Err(e2) => format!("; restarting the previous container failed too: {e2}"),
            }
        } else {
            String::new()
        };
        return Err(format!("the new container could not start: {e}{restored}"));
    }
    remove(engine, old_id, 0).await.map_err(|e| {
        format!(
            "new container {} runs, but removing the old one failed: {e}",
            short(&new_id)
        )
    })?;
    engine.rename_container(&new_id, &name).await.map_err(|e| {
        format!(
            "new container {} runs, but renaming it to {name} failed: {e}",
            short(&new_id)
        )
    })?;
    Ok(format!(
        "replaced {} with {}",
        short(old_id),
        short(&new_id)
    ))
}

/// How long a replacement must keep running before the old container goes.
/// A process that dies at once (bad command, missing file) does so well within it.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Whether a just-started container is still up after [`SETTLE`], not
/// exited nor restarting.
async fn settled(engine: &dyn Engine, id: &str) -> Result<(), String> {
    tokio::time::sleep(SETTLE).await;
    match engine.inspect_container(id).await {
        Ok(Some(c)) if c.state == "running" && c.restarts == 0 => Ok(()),
        Ok(Some(c)) if c.state == "exited" => Err(format!(
            "it exited with code {} within {}s",
            c.exit_code,
            SETTLE.as_secs()
        )),
        Ok(Some(c)) if c.restarts > 0 => Err(format!(
            "it restarted {} time(s) within {}s",
            c.restarts,
            SETTLE.as_secs()
        )),
        Ok(Some(c)) => Err(format!("it is {} after {}s", c.state, SETTLE.as_secs())),
        Ok(None) => Err("it disappeared".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn remove(engine: &dyn Engine, id: &str, timeout_secs: u64) -> Result<(), EngineError> {
    match engine.stop_container(id, timeout_secs).await {
        Ok(()) | Err(EngineError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    engine.remove_container(id).await
}

/// Docker's message for a missing bind source names the path but not the host.
fn explain_create(engine: &dyn Engine, e: EngineError) -> String {
    let text = e.to_string();
    if let Some(path) = text.split("bind source path does not exist: ").nth(1) {
        return format!(
            "host file {} does not exist on host {} ({})",
            path.trim(),
            engine.host(),
            engine.address()
        );
    }
    format!("could not create the container: {text}")
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
