//! The executor: runs a [`Plan`]'s steps against the engines.
//!
//! One rollout engine for every command that changes what runs:
//!
//! 1. **Pull first.** Every image any step needs is pulled on its host
//!    before anything is stopped; a job whose image could not be pulled
//!    anywhere is left untouched everywhere.
//! 2. **Jobs at once, each in order.** Jobs are independent and run
//!    concurrently. Within a job: containers no task claims are removed
//!    (after new tasks are up when the job moves hosts), tasks that take
//!    nothing down are created, started or renamed all at once, and tasks
//!    that must be taken down (replace, rollback, restart) go `parallel` at
//!    a time, in a stable order across hosts, `delay` apart.
//! 3. **Gates.** Every container started must prove itself ([`crate::gate`]).
//! 4. **Keep aside, put back.** A replaced container is stopped gracefully
//!    (its whole stop timeout), renamed aside and kept; the new one takes its
//!    name. If the new one fails, it is removed and the kept one comes back.
//!    With `auto_rollback`, a failure also puts back every task this rollout
//!    already replaced. Old generations beyond `keep` are removed at the end.
//! 5. **Interruption.** Once the cancellation token fires (Ctrl-C, a closed
//!    output), no new step starts; a replacement in flight is undone, and
//!    every step reports what became of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_engine::{ContainerSummary, CreateOptions, Engine, EngineError};
use drover_plan::{
    labels, Change, ContainerRef, DesiredTask, Phase as ChangePhase, Plan, Pull, RunState, Step,
    TaskKey,
};
use futures::future::join_all;
use futures::{stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::events::{Event, GateFailure, Outcome, Phase, Report, Restored, StepError};
use crate::gate::{gate, Before, SETTLE};
use crate::watch::Watch;

/// Engines by host name.
pub type Engines = BTreeMap<String, Arc<dyn Engine>>;

/// Steps in flight at once in a job's phase that takes nothing down. Each
/// mostly waits on its gate; the engine requests they make are bounded per
/// host and in total by the engines' own limits, so this only caps memory.
const CONCURRENCY: usize = 4096;
/// Pulls in flight at once on one host.
const PULLS_PER_HOST: usize = 4;
/// Log lines kept from a container that failed its gate.
const LAST_LINES: usize = 10;

/// Who is deploying, recorded on every container created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `user@machine`.
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The drover command, e.g. `update web --image reg/web:2`.
    pub command: String,
    /// The environment directory's git commit (`-dirty` with changes); `None` outside git.
    pub commit: Option<String>,
}

/// How a job's tasks are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPolicy {
    pub parallel: u32,
    pub delay: Duration,
    pub auto_rollback: bool,
    pub keep: u32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            parallel: 1,
            delay: Duration::ZERO,
            auto_rollback: true,
            keep: drover_spec::DEFAULT_KEEP,
        }
    }
}

impl From<&drover_spec::UpdatePolicy> for RolloutPolicy {
    fn from(p: &drover_spec::UpdatePolicy) -> Self {
        RolloutPolicy {
            parallel: p.parallel,
            delay: p.delay,
            auto_rollback: p.auto_rollback,
            keep: p.keep,
        }
    }
}

pub struct Executor<'a> {
    pub env: &'a str,
    pub engines: &'a Engines,
    pub deployment: Deployment,
    /// Per job; a job without one gets [`RolloutPolicy::default`].
    pub policies: BTreeMap<String, RolloutPolicy>,
    pub cancel: CancellationToken,
    pub events: &'a (dyn Fn(&Event) + Sync),
    /// How long a container without a health check must stay up.
    pub settle: Duration,
    /// Steps whose success was already shown (a rollout shows each as it
    /// passes its gate, and reports them all once it is over).
    announced: Mutex<BTreeSet<(String, String, Option<u32>)>>,
    /// The engines' events, one subscription per host, for the gates.
    watch: Watch,
}

/// An old container set aside, and whether it ran: what putting it back needs.
type Old = (ContainerRef, bool);

/// What a step did, so a rollback can undo it.
enum Swapped {
    /// A new container took the task's name; the old one is kept aside.
    Replaced { new_id: String, old: Option<Old> },
    /// A kept generation `target_id` took the task's name (it was `target_name`);
    /// the previous current container, if any, is kept aside.
    Restored {
        target_id: String,
        target_name: String,
        previous: Option<Old>,
    },
    /// Nothing to undo (a create, a start, a restart in place…).
    Nothing,
}

impl<'a> Executor<'a> {
    pub fn new(
        env: &'a str,
        engines: &'a Engines,
        deployment: Deployment,
        cancel: CancellationToken,
        events: &'a (dyn Fn(&Event) + Sync),
    ) -> Self {
        Executor {
            env,
            engines,
            deployment,
            policies: BTreeMap::new(),
            cancel,
            events,
            settle: SETTLE,
            announced: Mutex::new(BTreeSet::new()),
            watch: Watch::new(env),
        }
    }

    fn emit(&self, job: &str, host: &str, task: Option<u32>, phase: Phase) {
        (self.events)(&Event {
            job: job.to_string(),
            host: host.to_string(),
            task,
            phase,
        });
    }

    fn emit_for(&self, change: &Change, phase: Phase) {
        self.emit(&change.job, &change.host, change.task, phase);
    }

    // StepError is large, but this is no hot path: one lookup per step.
    #[allow(clippy::result_large_err)]
    fn engine(&self, host: &str) -> Result<&dyn Engine, StepError> {
        self.engines.get(host).map(AsRef::as_ref).ok_or_else(|| {
            StepError::Engine(EngineError::Other(format!("host {host} is not connected")))
        })
    }

    fn policy(&self, job: &str) -> RolloutPolicy {
        self.policies.get(job).cloned().unwrap_or_default()
    }

    /// Runs the whole plan and reports every step.
    pub async fn run(&self, plan: &Plan) -> Report {
        let outcomes = Mutex::new(Vec::new());
        let record = |outcome: Outcome| {
            let key = (outcome.job.clone(), outcome.host.clone(), outcome.task);
            let shown = self.announced.lock().is_ok_and(|a| a.contains(&key));
            match &outcome.result {
                Ok(_) if shown => {}
                Ok(detail) => self.emit(
                    &outcome.job,
                    &outcome.host,
                    outcome.task,
                    Phase::Done {
                        detail: detail.clone(),
                    },
                ),
                Err(StepError::NotStarted { why }) => self.emit(
                    &outcome.job,
                    &outcome.host,
                    outcome.task,
                    Phase::Skipped { why: why.clone() },
                ),
                Err(StepError::RolledBack { because, .. }) => self.emit(
                    &outcome.job,
                    &outcome.host,
                    outcome.task,
                    Phase::RolledBack {
                        detail: because.clone(),
                    },
                ),
                // Cut short by an interruption, a step has not failed.
                Err(e @ StepError::Interrupted { .. }) => self.emit(
                    &outcome.job,
                    &outcome.host,
                    outcome.task,
                    Phase::Interrupted {
                        detail: e.to_string(),
                    },
                ),
                Err(e) => self.emit(
                    &outcome.job,
                    &outcome.host,
                    outcome.task,
                    Phase::Failed {
                        error: e.to_string(),
                    },
                ),
            }
            if let Ok(mut list) = outcomes.lock() {
                list.push(outcome);
            }
        };

        let failed_pulls = self.pull_all(&plan.pulls, &record).await;

        let mut jobs: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
        for change in &plan.changes {
            jobs.entry(change.job.as_str()).or_default().push(change);
        }
        join_all(
            jobs.into_iter()
                .map(|(job, changes)| self.run_job(job, changes, &failed_pulls, &record)),
        )
        .await;

        Report {
            outcomes: outcomes.into_inner().unwrap_or_default(),
            interrupted: self.cancel.is_cancelled(),
        }
    }

    /// Pulls every image on its host; returns the ones that failed.
    async fn pull_all(
        &self,
        pulls: &[Pull],
        record: &(dyn Fn(Outcome) + Sync),
    ) -> BTreeMap<(String, String), String> {
        let mut by_host: BTreeMap<&str, Vec<&Pull>> = BTreeMap::new();
        for pull in pulls {
            by_host.entry(pull.host.as_str()).or_default().push(pull);
        }
        let hosts = by_host.into_iter().map(|(host, pulls)| async move {
            stream::iter(pulls)
                .map(|pull| async move {
                    let result = self.pull(pull).await;
                    // Cut short by an interruption, a pull has not failed:
                    // the jobs that need it are simply not started.
                    let interrupted = result.is_err() && self.cancel.is_cancelled();
                    let outcome = Outcome {
                        job: String::new(),
                        host: pull.host.clone(),
                        task: None,
                        step: format!("pull {}", pull.image),
                        result: match &result {
                            Ok(()) => Ok(format!("pulled {}", pull.image)),
                            Err(_) if interrupted => Err(StepError::NotStarted {
                                why: "interrupted".to_string(),
                            }),
                            Err(e) => Err(StepError::Pull {
                                image: pull.image.clone(),
                                host: pull.host.clone(),
                                error: e.clone(),
                            }),
                        },
                    };
                    record(outcome);
                    result
                        .err()
                        .filter(|_| !interrupted)
                        .map(|e| ((host.to_string(), pull.image.clone()), e))
                })
                .buffer_unordered(PULLS_PER_HOST)
                .collect::<Vec<_>>()
                .await
        });
        join_all(hosts)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    async fn pull(&self, pull: &Pull) -> Result<(), String> {
        if !pull.pullable {
            return Err(format!("image {} is not on host {} and an image ID cannot be pulled: load it there (docker load) or name it by tag", pull.image, pull.host));
        }
        if self.cancel.is_cancelled() {
            return Err("interrupted".to_string());
        }
        let engine = self.engine(&pull.host).map_err(|e| e.to_string())?;
        self.emit(
            "",
            &pull.host,
            None,
            Phase::Pulling {
                image: pull.image.clone(),
            },
        );
        let pulled = tokio::select! {
            r = engine.pull_image(&pull.image, &|_| {}) => r.map_err(|e| e.to_string()),
            () = self.cancel.cancelled() => Err("interrupted".to_string()),
        };
        if pulled.is_ok() {
            self.emit(
                "",
                &pull.host,
                None,
                Phase::Pulled {
                    image: pull.image.clone(),
                },
            );
        }
        pulled
    }

    async fn run_job(
        &self,
        job: &str,
        changes: Vec<&Change>,
        failed_pulls: &BTreeMap<(String, String), String>,
        record: &(dyn Fn(Outcome) + Sync),
    ) {
        // A job whose image is missing on any host is touched nowhere: its
        // steps are not started (the pull is what failed, and says why).
        let missing = changes.iter().find_map(|c| {
            let image = &c.step.desired()?.config.image;
            failed_pulls
                .contains_key(&(c.host.clone(), image.clone()))
                .then(|| (c.host.clone(), image.clone()))
        });
        if let Some((host, image)) = missing {
            let why = format!("image {image} could not be pulled on host {host}");
            not_started(&changes, &why, record);
            return;
        }

        let policy = self.policy(job);
        let by_phase = |phase: ChangePhase| -> Vec<&Change> {
            changes
                .iter()
                .copied()
                .filter(|c| c.phase == phase)
                .collect()
        };
        let (now, rollout, retire) = (
            by_phase(ChangePhase::Now),
            by_phase(ChangePhase::Rollout),
            by_phase(ChangePhase::Retire),
        );

        // What takes nothing down, at once; then the rollout, batch by
        // batch; then what goes for good, only if all of that passed.
        let mut failed = self.run_now(&now, record).await;
        failed = match failed {
            Some(why) => {
                not_started(&rollout, &format!("the rollout stopped: {why}"), record);
                Some(why)
            }
            None => self.rollout(&rollout, &policy, record).await,
        };
        // Generations are pruned only after a rollout that went through: a
        // failed one may leave the last generation that ever passed its
        // gate among those beyond `keep` (gc removes them later, by the
        // same rule, once a rollout has served).
        let went_through = failed.is_none();
        match failed {
            Some(why) => not_started(&retire, &format!("kept running, since {why}"), record),
            None => self.retire(&retire, &policy, record).await,
        }
        if went_through
            && changes
                .iter()
                .any(|c| matches!(c.step, Step::Replace { .. } | Step::Restore { .. }))
            && !self.cancel.is_cancelled()
        {
            self.prune(job, &changes, policy.keep, record).await;
        }
    }

    /// Steps that take nothing that serves down, all at once. Returns why
    /// the job's rollout must stop, if one failed.
    async fn run_now(&self, list: &[&Change], record: &(dyn Fn(Outcome) + Sync)) -> Option<String> {
        let failures: Vec<Option<String>> = stream::iter(list)
            .map(|c| async move {
                let result = if self.cancel.is_cancelled() {
                    Err(StepError::NotStarted {
                        why: "interrupted".to_string(),
                    })
                } else {
                    self.apply(c).await.map(|(_, detail)| detail)
                };
                let failed = result
                    .as_ref()
                    .err()
                    .filter(|e| e.counts())
                    .map(|_| c.name());
                record(outcome(c, result));
                failed
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        failures
            .into_iter()
            .flatten()
            .next()
            .map(|name| format!("{name} failed"))
    }

    /// Changes one task; what it swapped (so a rollback can undo it) and what it did.
    async fn apply(&self, c: &Change) -> Result<(Swapped, String), StepError> {
        if self.cancel.is_cancelled() {
            return Err(StepError::NotStarted {
                why: "interrupted".to_string(),
            });
        }
        let engine = self.engine(&c.host)?;
        match &c.step {
            Step::Create { desired } => self
                .create(engine, c, desired)
                .await
                .map(|detail| (Swapped::Nothing, detail)),
            Step::Replace { current, desired } => self.replace(engine, c, current, desired).await,
            Step::Restore { current, target } => {
                self.restore(engine, c, current.as_ref(), target).await
            }
            Step::Restart { current } => {
                self.emit_for(c, Phase::Stopping);
                engine
                    .stop_container(&current.id, current.stop_timeout)
                    .await
                    .map_err(StepError::Engine)?;
                self.emit_for(c, Phase::Starting);
                engine
                    .start_container(&current.id)
                    .await
                    .map_err(StepError::Engine)?;
                self.prove(
                    engine,
                    c,
                    &current.id,
                    current.health.as_ref(),
                    current.health_at,
                )
                .await
                .map_err(|(failure, logs)| {
                    gate_error(
                        "the restarted container",
                        failure,
                        logs,
                        Restored::Nothing,
                        None,
                    )
                })?;
                Ok((
                    Swapped::Nothing,
                    format!("restarted {}", current.short_id()),
                ))
            }
            Step::Start { current } => {
                self.emit_for(c, Phase::Starting);
                if current.state == RunState::Paused {
                    engine
                        .unpause_container(&current.id)
                        .await
                        .map_err(StepError::Engine)?;
                } else {
                    engine
                        .start_container(&current.id)
                        .await
                        .map_err(StepError::Engine)?;
                }
                self.prove(
                    engine,
                    c,
                    &current.id,
                    current.health.as_ref(),
                    current.health_at,
                )
                .await
                .map_err(|(failure, logs)| {
                    gate_error(
                        "the started container",
                        failure,
                        logs,
                        Restored::Nothing,
                        None,
                    )
                })?;
                let verb = if current.state == RunState::Paused {
                    "unpaused"
                } else {
                    "started"
                };
                Ok((Swapped::Nothing, format!("{verb} {}", current.short_id())))
            }
            Step::Rename { current, to, start } => {
                engine
                    .rename_container(&current.id, to)
                    .await
                    .map_err(StepError::Engine)?;
                if !*start {
                    return Ok((
                        Swapped::Nothing,
                        format!("renamed {} to {to}", current.short_id()),
                    ));
                }
                self.emit_for(c, Phase::Starting);
                engine
                    .start_container(&current.id)
                    .await
                    .map_err(StepError::Engine)?;
                self.prove(
                    engine,
                    c,
                    &current.id,
                    current.health.as_ref(),
                    current.health_at,
                )
                .await
                .map_err(|(failure, logs)| {
                    gate_error(
                        "the started container",
                        failure,
                        logs,
                        Restored::Nothing,
                        None,
                    )
                })?;
                Ok((
                    Swapped::Nothing,
                    format!("renamed {} to {to} and started it", current.short_id()),
                ))
            }
            Step::Remove { current } => {
                self.emit_for(c, Phase::Removing);
                if current.is_running() {
                    engine
                        .stop_container(&current.id, current.stop_timeout)
                        .await
                        .map_err(StepError::Engine)?;
                }
                engine
                    .remove_container(&current.id)
                    .await
                    .map_err(StepError::Engine)?;
                Ok((Swapped::Nothing, format!("removed {}", current.short_id())))
            }
            Step::Stop { current } => {
                self.emit_for(c, Phase::Stopping);
                engine
                    .stop_container(&current.id, current.stop_timeout)
                    .await
                    .map_err(StepError::Engine)?;
                Ok((Swapped::Nothing, format!("stopped {}", current.short_id())))
            }
        }
    }

    /// The labels of a new container for `desired`, replacing `previous`.
    fn new_labels(
        &self,
        desired: &DesiredTask,
        previous: Option<&ContainerRef>,
    ) -> BTreeMap<String, String> {
        let mut map = desired.labels(self.env);
        map.insert(labels::DEPLOYED_BY.to_string(), self.deployment.by.clone());
        map.insert(labels::DEPLOYED_AT.to_string(), self.deployment.at.clone());
        map.insert(labels::COMMAND.to_string(), self.deployment.command.clone());
        if let Some(commit) = &self.deployment.commit {
            map.insert(labels::COMMIT.to_string(), commit.clone());
        }
        if let Some(previous) = previous {
            map.insert(labels::PREVIOUS.to_string(), previous.record.clone());
            map.insert(labels::REPLACES.to_string(), previous.id.clone());
        }
        map
    }

    async fn create(
        &self,
        engine: &dyn Engine,
        c: &Change,
        desired: &DesiredTask,
    ) -> Result<String, StepError> {
        self.emit_for(c, Phase::Creating);
        let name = desired.container_name(self.env);
        let id = engine
            .create_container(
                &name,
                &desired.config,
                &CreateOptions {
                    labels: self.new_labels(desired, None),
                },
            )
            .await
            .map_err(StepError::Engine)?;
        self.emit_for(c, Phase::Starting);
        if let Err(e) = engine.start_container(&id).await {
            // Nothing stays created but never started.
            let _ = engine.remove_container(&id).await;
            return Err(StepError::Engine(e));
        }
        match self
            .prove(engine, c, &id, desired.config.health.as_ref(), None)
            .await
        {
            Ok(()) => Ok(format!("created {}", short(&id))),
            // Started; only the wait for proof was cut short.
            Err((GateFailure::Interrupted, _)) => Ok(format!(
                "created {} (interrupted before it proved itself)",
                short(&id)
            )),
            Err((failure, logs)) => {
                // A container that failed its gate does not keep the task's name.
                let evidence = self
                    .set_aside(engine, &desired.key, &id, desired.config.stop_timeout)
                    .await;
                Err(gate_error(
                    "the new container",
                    failure,
                    logs,
                    Restored::Nothing,
                    evidence,
                ))
            }
        }
    }

    /// Stops a new container that failed its gate and keeps it under the
    /// task's `.failed` name (replacing an older one), so the task's name is
    /// free and the evidence stays. Removes it if that cannot be done.
    async fn set_aside(
        &self,
        engine: &dyn Engine,
        key: &TaskKey,
        id: &str,
        stop_timeout: Duration,
    ) -> Option<String> {
        let failed = key.failed_name(self.env);
        let _ = engine.stop_container(id, stop_timeout).await;
        if let Ok(Some(older)) = engine.inspect_container(&failed).await {
            if older.id != id && older.task_key().as_ref() == Some(key) {
                let _ = engine.remove_container(&older.id).await;
            }
        }
        match engine.rename_container(id, &failed).await {
            Ok(()) => Some(failed),
            Err(_) => {
                let _ = engine.remove_container(id).await;
                None
            }
        }
    }

    /// Gates a started container; on failure also returns its last log lines.
    async fn prove(
        &self,
        engine: &dyn Engine,
        c: &Change,
        id: &str,
        health: Option<&drover_plan::HealthConfig>,
        health_at: Option<drover_plan::time::Timestamp>,
    ) -> Result<(), (GateFailure, Vec<String>)> {
        // Its restarts so far, and its configuration: the lines quoted if
        // it fails are shown with its secret values masked.
        let (restarts, config) = match engine.inspect_container(id).await {
            Ok(Some(container)) => (container.runs.restarts, Some(container.config)),
            _ => (0, c.step.desired().map(|d| d.config.clone())),
        };
        let last_second = AtomicU64::new(u64::MAX);
        let progress = |elapsed: Duration, limit: Duration| {
            let second = elapsed.as_secs();
            if last_second.swap(second, Ordering::Relaxed) != second {
                self.emit_for(
                    c,
                    Phase::Waiting {
                        health: health.is_some(),
                        elapsed,
                        limit,
                    },
                );
            }
        };
        let wakeups = self
            .engines
            .get(&c.host)
            .and_then(|arc| self.watch.subscribe(&c.host, arc));
        match gate(
            engine,
            wakeups,
            id,
            health,
            self.settle,
            Before {
                restarts,
                health_at,
            },
            &self.cancel,
            &progress,
        )
        .await
        {
            Ok(()) => Ok(()),
            Err(failure) => {
                let logs = if matches!(failure, GateFailure::Interrupted) {
                    Vec::new()
                } else {
                    let lines = engine.logs_tail(id, LAST_LINES).await.unwrap_or_default();
                    match &config {
                        Some(config) => lines.iter().map(|l| config.mask_secrets(l)).collect(),
                        None => lines,
                    }
                };
                Err((failure, logs))
            }
        }
    }

    /// The steps that take serving tasks down for a moment, `parallel` at a
    /// time, `delay` apart. Returns why the rollout stopped, if it did.
    async fn rollout(
        &self,
        changes: &[&Change],
        policy: &RolloutPolicy,
        record: &(dyn Fn(Outcome) + Sync),
    ) -> Option<String> {
        let batch_size = usize::try_from(policy.parallel.max(1)).unwrap_or(1);
        let mut done: Vec<(&Change, Swapped, String)> = Vec::new();
        let mut failed: Option<String> = None;
        for (i, batch) in changes.chunks(batch_size).enumerate() {
            if failed.is_some() || self.cancel.is_cancelled() {
                let why = match &failed {
                    Some(f) => format!("the rollout stopped: {f}"),
                    None => "interrupted".to_string(),
                };
                not_started(batch, &why, record);
                continue;
            }
            if i > 0 && !policy.delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(policy.delay) => {}
                    () = self.cancel.cancelled() => {}
                }
            }
            let results = join_all(batch.iter().map(|c| self.apply(c))).await;
            for (c, result) in batch.iter().zip(results) {
                match result {
                    Ok((swapped, detail)) => {
                        self.emit_for(
                            c,
                            Phase::Done {
                                detail: detail.clone(),
                            },
                        );
                        if let Ok(mut announced) = self.announced.lock() {
                            announced.insert((c.job.clone(), c.host.clone(), c.task));
                        }
                        done.push((c, swapped, detail));
                    }
                    Err(e) => {
                        if failed.is_none() && e.counts() {
                            failed = Some(format!("{} failed", c.name()));
                        }
                        record(outcome(c, Err(e)));
                    }
                }
            }
        }
        match (&failed, policy.auto_rollback) {
            (Some(because), true) => {
                // Put back what this rollout replaced, newest first.
                done.reverse();
                for batch in done.chunks(batch_size) {
                    let results =
                        join_all(batch.iter().map(|(c, swapped, _)| self.undo(c, swapped))).await;
                    for ((c, swapped, detail), restored) in batch.iter().zip(results) {
                        // A restart has nothing to undo: it stands.
                        let result = match swapped {
                            Swapped::Nothing => Ok(detail.clone()),
                            _ => Err(StepError::RolledBack {
                                because: because.clone(),
                                restored,
                            }),
                        };
                        record(outcome(c, result));
                    }
                }
            }
            _ => {
                for (c, _, detail) in done {
                    record(outcome(c, Ok(detail)));
                }
            }
        }
        failed.or_else(|| {
            self.cancel
                .is_cancelled()
                .then(|| "the run was interrupted".to_string())
        })
    }

    /// Containers that serve and go for good (tasks the spec no longer has,
    /// duplicates): once everything else of the job passed, `parallel` at a
    /// time, `delay` apart.
    async fn retire(
        &self,
        changes: &[&Change],
        policy: &RolloutPolicy,
        record: &(dyn Fn(Outcome) + Sync),
    ) {
        let batch_size = usize::try_from(policy.parallel.max(1)).unwrap_or(1);
        for (i, batch) in changes.chunks(batch_size).enumerate() {
            if self.cancel.is_cancelled() {
                not_started(batch, "interrupted", record);
                continue;
            }
            if i > 0 && !policy.delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(policy.delay) => {}
                    () = self.cancel.cancelled() => {}
                }
            }
            let results = join_all(batch.iter().map(|c| self.apply(c))).await;
            for (c, result) in batch.iter().zip(results) {
                record(outcome(c, result.map(|(_, detail)| detail)));
            }
        }
    }

    /// Stop the current container, set it aside, create and start the new
    /// one under the task's name, gate it; put the old one back on failure.
    async fn replace(
        &self,
        engine: &dyn Engine,
        c: &Change,
        current: &ContainerRef,
        desired: &DesiredTask,
    ) -> Result<(Swapped, String), StepError> {
        let name = desired.container_name(self.env);
        let broken = current.state.is_broken();
        let was_running = current.is_running() || current.state == RunState::Paused;
        let old = if broken {
            // Nothing worth keeping: make room.
            self.emit_for(c, Phase::Removing);
            engine
                .remove_container(&current.id)
                .await
                .map_err(StepError::Engine)?;
            None
        } else {
            if was_running {
                self.emit_for(c, Phase::Stopping);
                if let Err(e) = engine
                    .stop_container(&current.id, current.stop_timeout)
                    .await
                {
                    let _ = engine.start_container(&current.id).await;
                    return Err(StepError::Engine(e));
                }
            }
            // Kept under the name its own labels give it, so it is known
            // for what it is (a host renamed since labels it the old way).
            let kept = current
                .task
                .as_ref()
                .unwrap_or(&desired.key)
                .kept_name(self.env, &current.id);
            if let Err(e) = engine.rename_container(&current.id, &kept).await {
                let restored = self.put_back(engine, c, current, was_running).await;
                return Err(with_restored(StepError::Engine(e), restored));
            }
            Some((current.clone(), was_running))
        };

        self.emit_for(c, Phase::Creating);
        let new_id = match engine
            .create_container(
                &name,
                &desired.config,
                &CreateOptions {
                    labels: self.new_labels(desired, Some(current)),
                },
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let restored = self.put_back_old(engine, c, old.as_ref()).await;
                return Err(with_restored(StepError::Engine(e), restored));
            }
        };
        self.emit_for(c, Phase::Starting);
        if let Err(e) = engine.start_container(&new_id).await {
            let _ = engine.remove_container(&new_id).await;
            let restored = self.put_back_old(engine, c, old.as_ref()).await;
            return Err(with_restored(StepError::Engine(e), restored));
        }
        if let Err((failure, logs)) = self
            .prove(engine, c, &new_id, desired.config.health.as_ref(), None)
            .await
        {
            let evidence = if matches!(failure, GateFailure::Interrupted) {
                let _ = engine.remove_container(&new_id).await;
                None
            } else {
                self.set_aside(engine, &desired.key, &new_id, desired.config.stop_timeout)
                    .await
            };
            let restored = self.put_back_old(engine, c, old.as_ref()).await;
            return Err(gate_error(
                "the new container",
                failure,
                logs,
                restored,
                evidence,
            ));
        }
        let detail = match &old {
            Some((old, _)) => format!(
                "replaced {} with {} (kept {} for rollback)",
                old.short_id(),
                short(&new_id),
                old.short_id()
            ),
            None => format!(
                "replaced the broken {} with {}",
                current.short_id(),
                short(&new_id)
            ),
        };
        Ok((Swapped::Replaced { new_id, old }, detail))
    }

    async fn put_back_old(&self, engine: &dyn Engine, c: &Change, old: Option<&Old>) -> Restored {
        match old {
            Some((container, running)) => self.put_back(engine, c, container, *running).await,
            None => Restored::Nothing,
        }
    }

    /// Gives `container` its name back and, if it ran before, starts it and
    /// waits until it serves again: only then is the previous version back.
    async fn put_back(
        &self,
        engine: &dyn Engine,
        c: &Change,
        container: &ContainerRef,
        start: bool,
    ) -> Restored {
        if let Err(e) = engine
            .rename_container(&container.id, &container.name)
            .await
        {
            return Restored::Failed(e.to_string());
        }
        if !start {
            return Restored::Nothing;
        }
        if let Err(e) = engine.start_container(&container.id).await {
            return Restored::Failed(e.to_string());
        }
        match self
            .prove(
                engine,
                c,
                &container.id,
                container.health.as_ref(),
                container.health_at,
            )
            .await
        {
            // Started again; only the wait for proof was cut short.
            Ok(()) | Err((GateFailure::Interrupted, _)) => Restored::Previous,
            Err((failure, _)) => Restored::Failed(format!("it was started again, but {failure}")),
        }
    }

    /// Rollback: set the current container aside, bring `target` back under the task's name.
    async fn restore(
        &self,
        engine: &dyn Engine,
        c: &Change,
        current: Option<&ContainerRef>,
        target: &ContainerRef,
    ) -> Result<(Swapped, String), StepError> {
        let key = TaskKey {
            job: c.job.clone(),
            host: c.host.clone(),
            task: c.task.unwrap_or_default(),
        };
        let name = key.container_name(self.env);
        let previous = match current {
            Some(current) => {
                let running = current.is_running() || current.state == RunState::Paused;
                if running {
                    self.emit_for(c, Phase::Stopping);
                    engine
                        .stop_container(&current.id, current.stop_timeout)
                        .await
                        .map_err(StepError::Engine)?;
                }
                if let Err(e) = engine
                    .rename_container(&current.id, &key.kept_name(self.env, &current.id))
                    .await
                {
                    let _ = self.put_back(engine, c, current, running).await;
                    return Err(StepError::Engine(e));
                }
                Some((current.clone(), running))
            }
            None => None,
        };
        if let Err(e) = engine.rename_container(&target.id, &name).await {
            let restored = self
                .undo_restore(engine, c, target, previous.as_ref())
                .await;
            return Err(with_restored(StepError::Engine(e), restored));
        }
        self.emit_for(c, Phase::Starting);
        if let Err(e) = engine.start_container(&target.id).await {
            let restored = self
                .undo_restore(engine, c, target, previous.as_ref())
                .await;
            return Err(with_restored(StepError::Engine(e), restored));
        }
        if let Err((failure, logs)) = self
            .prove(
                engine,
                c,
                &target.id,
                target.health.as_ref(),
                target.health_at,
            )
            .await
        {
            let restored = self
                .undo_restore(engine, c, target, previous.as_ref())
                .await;
            return Err(gate_error(
                "the generation rolled back to",
                failure,
                logs,
                restored,
                None,
            ));
        }
        let detail = format!("{} runs again", target.short_id());
        Ok((
            Swapped::Restored {
                target_id: target.id.clone(),
                target_name: target.name.clone(),
                previous,
            },
            detail,
        ))
    }

    async fn undo_restore(
        &self,
        engine: &dyn Engine,
        c: &Change,
        target: &ContainerRef,
        previous: Option<&Old>,
    ) -> Restored {
        let _ = engine.stop_container(&target.id, target.stop_timeout).await;
        let _ = engine.rename_container(&target.id, &target.name).await;
        self.put_back_old(engine, c, previous).await
    }

    /// Undoes a step that succeeded, because a later one failed.
    async fn undo(&self, c: &Change, swapped: &Swapped) -> Restored {
        let Ok(engine) = self.engine(&c.host) else {
            return Restored::Failed(format!("host {} is not connected", c.host));
        };
        let stop_timeout = c
            .step
            .container()
            .map_or(Duration::from_secs(10), |r| r.stop_timeout);
        match swapped {
            Swapped::Replaced { new_id, old } => {
                self.emit_for(c, Phase::Stopping);
                let _ = engine.stop_container(new_id, stop_timeout).await;
                if let Err(e) = engine.remove_container(new_id).await {
                    return Restored::Failed(e.to_string());
                }
                self.put_back_old(engine, c, old.as_ref()).await
            }
            Swapped::Restored {
                target_id,
                target_name,
                previous,
            } => {
                let _ = engine.stop_container(target_id, stop_timeout).await;
                if let Err(e) = engine.rename_container(target_id, target_name).await {
                    return Restored::Failed(e.to_string());
                }
                self.put_back_old(engine, c, previous.as_ref()).await
            }
            Swapped::Nothing => Restored::Nothing,
        }
    }

    /// Removes the kept generations of the tasks just rolled out that
    /// [`drover_plan::retention`] says go (`gc` asks the same rule).
    async fn prune(
        &self,
        job: &str,
        changes: &[&Change],
        keep: u32,
        record: &(dyn Fn(Outcome) + Sync),
    ) {
        let hosts: BTreeSet<&str> = changes.iter().map(|c| c.host.as_str()).collect();
        for host in hosts {
            let Ok(engine) = self.engine(host) else {
                continue;
            };
            let Ok(list) = engine.list_containers(self.env).await else {
                continue;
            };
            // Read as gc reads them (one classification of names and
            // labels), the task's own container beside its generations.
            let mut aside: BTreeMap<TaskKey, (Vec<&ContainerSummary>, Vec<&ContainerSummary>)> =
                BTreeMap::new();
            let mut current: BTreeMap<TaskKey, &ContainerSummary> = BTreeMap::new();
            for summary in &list {
                match drover_plan::role_of(self.env, &summary.name, &summary.labels, None) {
                    drover_plan::Role::Kept(key) if key.job == job && key.host == host => {
                        aside.entry(key).or_default().0.push(summary);
                    }
                    drover_plan::Role::Failed(key) if key.job == job && key.host == host => {
                        aside.entry(key).or_default().1.push(summary);
                    }
                    drover_plan::Role::Current(key) if key.job == job && key.host == host => {
                        current.insert(key, summary);
                    }
                    _ => {}
                }
            }
            for (key, (kept, failed)) in aside {
                let task = key.task;
                let current = current.get(&key);
                let ranks = drover_plan::retention::succession(
                    current.and_then(|s| s.labels.get(labels::REPLACES).map(String::as_str)),
                    kept.iter().map(|s| {
                        (
                            s.id.as_str(),
                            s.labels.get(labels::REPLACES).map(String::as_str),
                        )
                    }),
                );
                let kept: Vec<_> = kept
                    .iter()
                    .map(|s| generation(s, ranks.get(s.id.as_str()).copied()))
                    .collect();
                let failed: Vec<_> = failed.iter().map(|s| generation(s, None)).collect();
                for old in drover_plan::retention::expired(&kept, &failed, keep) {
                    if let Err(e) = engine.remove_container(old.id).await {
                        record(Outcome {
                            job: job.to_string(),
                            host: host.to_string(),
                            task: Some(task),
                            step: "prune".to_string(),
                            result: Err(StepError::Engine(e)),
                        });
                    }
                }
            }
        }
    }
}

/// A set-aside container as the retention rule reads it.
fn generation(s: &ContainerSummary, rank: Option<usize>) -> drover_plan::retention::Generation<'_> {
    drover_plan::retention::Generation {
        id: &s.id,
        rank,
        deployed_at: s
            .labels
            .get(labels::DEPLOYED_AT)
            .and_then(|at| drover_plan::time::parse(at)),
        state: s.state,
    }
}

/// The outcome of `c`.
fn outcome(c: &Change, result: Result<String, StepError>) -> Outcome {
    Outcome {
        job: c.job.clone(),
        host: c.host.clone(),
        task: c.task,
        step: c.step.verb().to_string(),
        result,
    }
}

/// Records every change of `list` as not started, and why.
fn not_started(list: &[&Change], why: &str, record: &(dyn Fn(Outcome) + Sync)) {
    for c in list {
        record(outcome(
            c,
            Err(StepError::NotStarted {
                why: why.to_string(),
            }),
        ));
    }
}

fn gate_error(
    what: &'static str,
    failure: GateFailure,
    logs: Vec<String>,
    restored: Restored,
    evidence: Option<String>,
) -> StepError {
    match failure {
        GateFailure::Interrupted => StepError::Interrupted { restored },
        failure => StepError::Gate {
            what,
            failure,
            logs,
            restored,
            evidence,
        },
    }
}

fn with_restored(error: StepError, restored: Restored) -> StepError {
    match restored {
        Restored::Nothing => error,
        restored => StepError::Undone {
            error: error.to_string(),
            restored,
        },
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
