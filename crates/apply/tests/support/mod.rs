//! What the executor's tests share: fake hosts holding a job's containers,
//! plans built by hand, and a run that records every event with the
//! (virtual) time it happened at.
//!
//! Every task config carries a health check, and the fake's default
//! behaviour (`Runs`) reports healthy at the first look, so a gate passes
//! without waiting unless a test asks for a slower container.

#![allow(dead_code)] // each test binary uses its own part of this

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_apply::{Deployment, Engines, Event, Executor, Outcome, Phase, Report, RolloutPolicy};
use drover_engine::fake::{Behaviour, FakeContainer, FakeEngine};
use drover_engine::{Engine, Named};
use drover_plan::{
    labels, Change, ContainerRef, DesiredTask, HealthConfig, ObservedContainer,
    Phase as ChangePhase, Plan, Resources, Step, TaskConfig, TaskKey,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const ENV: &str = "prod";
/// What runs now.
pub const OLD: &str = "reg/web:1";
/// What the rollout brings.
pub const NEW: &str = "reg/web:2";

pub const BY: &str = "ops@laptop";
pub const AT: &str = "2026-03-01T12:00:00Z";
pub const COMMAND: &str = "update web --image reg/web:2";

/// A health check as a job would write it: deadline 14s.
pub fn health() -> HealthConfig {
    HealthConfig {
        cmd: vec!["true".to_string()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        retries: 3,
        start_period: Duration::from_secs(5),
    }
}

pub fn config(image: &str) -> TaskConfig {
    TaskConfig {
        image: image.to_string(),
        command: None,
        env: BTreeMap::new(),
        volumes: Vec::new(),
        host_files: Vec::new(),
        memory: None,
        resources: Resources::default(),
        network: "host".to_string(),
        init: true,
        restart: "unless-stopped".to_string(),
        stop_timeout: Duration::from_secs(30),
        log_driver: "local".to_string(),
        log_options: BTreeMap::new(),
        health: Some(health()),
        settings: Default::default(),
    }
}

pub fn desired_with(job: &str, host: &str, task: u32, config: TaskConfig) -> DesiredTask {
    DesiredTask {
        key: TaskKey::new(job, host, task),
        image: config.image.parse().expect("a test image reference"),
        spec_hash: config.hash(),
        config,
    }
}

pub fn desired(job: &str, host: &str, task: u32, image: &str) -> DesiredTask {
    desired_with(job, host, task, config(image))
}

/// `prod.JOB.HOST.TASK`.
pub fn name(job: &str, host: &str, task: u32) -> String {
    TaskKey::new(job, host, task).container_name(ENV)
}

/// A host with the old and the new image, and any others given.
pub fn host(name: &str, images: &[&str]) -> Arc<FakeEngine> {
    let mut engine = FakeEngine::new(name)
        .with_image(OLD, "sha256:old")
        .with_image(NEW, "sha256:new");
    for image in images {
        engine = engine.with_image(image, &format!("sha256:{image}"));
    }
    Arc::new(engine)
}

pub fn set_behaviour(engine: &FakeEngine, image: &str, behaviour: Behaviour) {
    if let Ok(mut state) = engine.state.lock() {
        state.behaviours.insert(image.to_string(), behaviour);
    }
}

pub fn engines(hosts: &[&Arc<FakeEngine>]) -> Engines {
    hosts
        .iter()
        .map(|h| {
            let engine: Arc<dyn Engine> = Arc::clone(h) as Arc<dyn Engine>;
            (host_name(h), engine)
        })
        .collect()
}

/// The host a fake answers for.
pub fn host_name(engine: &FakeEngine) -> String {
    Named::host(engine).to_string()
}

/// The labels drover gave a container of `job host/task` deployed at `at`.
pub fn task_labels(job: &str, host: &str, task: u32, at: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::ENV.to_string(), ENV.to_string()),
        (labels::JOB.to_string(), job.to_string()),
        (labels::HOST.to_string(), host.to_string()),
        (labels::TASK.to_string(), task.to_string()),
        (labels::SPEC.to_string(), config(OLD).hash()),
        (labels::DEPLOYED_AT.to_string(), at.to_string()),
        (
            labels::DEPLOYED_BY.to_string(),
            "earlier@laptop".to_string(),
        ),
        (labels::COMMAND.to_string(), "up".to_string()),
    ])
}

/// A container deployed earlier under the task's own name; returns what a
/// plan would refer to it by.
pub fn deployed(
    engine: &FakeEngine,
    job: &str,
    task: u32,
    image: &str,
    state: &str,
) -> ContainerRef {
    let host = host_name(engine);
    engine.insert(
        &name(job, &host, task),
        config(image),
        task_labels(job, &host, task, "2026-02-01T00:00:00Z"),
        state,
    );
    container_ref(engine, &name(job, &host, task))
}

/// A generation an earlier rollout set aside, stopped under its kept name.
pub fn kept(engine: &FakeEngine, job: &str, task: u32, image: &str, at: &str) -> ContainerRef {
    let host = host_name(engine);
    let key = TaskKey::new(job, &host, task);
    let id = engine.insert(
        "placeholder",
        config(image),
        task_labels(job, &host, task, at),
        "exited",
    );
    let kept_name = key.kept_name(ENV, &id);
    if let Ok(mut state) = engine.state.lock() {
        if let Some(c) = state.containers.get_mut(&id) {
            c.name.clone_from(&kept_name);
        }
    }
    container_ref(engine, &kept_name)
}

/// What a plan would refer to the container named `name` by, as observe reads it.
pub fn container_ref(engine: &FakeEngine, name: &str) -> ContainerRef {
    let c = engine
        .container(name)
        .unwrap_or_else(|| panic!("no container {name} on {}", host_name(engine)));
    ContainerRef::of(&observed(&c))
}

fn observed(c: &FakeContainer) -> ObservedContainer {
    ObservedContainer {
        id: c.id.clone(),
        name: c.name.clone(),
        labels: c.labels.clone(),
        runs: c.runs.clone(),
        error: String::new(),
        created: Some(c.created),
        image_id: c.image_id.clone(),
        config: c.config.clone(),
        image_env: BTreeMap::new(),
        image_cmd: None,
        image_defaults: Default::default(),
        adopted: None,
    }
}

/// A change in the phase the planner gives its step: a replace, roll
/// back or restart of a serving task goes in the rollout, the removal of a
/// serving container last, the rest at once.
pub fn change(job: &str, host: &str, task: u32, step: Step) -> Change {
    let phase = match &step {
        Step::Replace { current, .. } | Step::Restart { current }
            if current.state == drover_plan::RunState::Running =>
        {
            ChangePhase::Rollout
        }
        Step::Restore {
            current: Some(current),
            ..
        } if current.state == drover_plan::RunState::Running => ChangePhase::Rollout,
        Step::Remove { current } if current.state == drover_plan::RunState::Running => {
            ChangePhase::Retire
        }
        _ => ChangePhase::Now,
    };
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task: Some(task),
        step,
        phase,
        reason: "test".to_string(),
        fields: Vec::new(),
    }
}

/// Replace `current` with `desired`.
pub fn replace(current: ContainerRef, desired: DesiredTask) -> Change {
    let (job, host, task) = (
        desired.key.job.clone(),
        desired.key.host.clone(),
        desired.key.task,
    );
    change(&job, &host, task, Step::Replace { current, desired })
}

/// The task `job host/task` deployed with OLD, planned to be replaced with `image`.
pub fn replace_task(engine: &FakeEngine, job: &str, task: u32, image: &str) -> Change {
    let host = host_name(engine);
    let current = deployed(engine, job, task, OLD, "running");
    replace(current, desired(job, &host, task, image))
}

pub fn plan(changes: Vec<Change>) -> Plan {
    Plan {
        changes,
        ..Plan::default()
    }
}

pub fn policy(parallel: u32) -> RolloutPolicy {
    RolloutPolicy {
        parallel,
        delay: Duration::ZERO,
        auto_rollback: true,
        keep: 3,
    }
}

/// An executor over some fake hosts, with rollout policies per job.
pub struct Apply {
    pub engines: Engines,
    pub policies: BTreeMap<String, RolloutPolicy>,
    pub cancel: CancellationToken,
    pub settle: Option<Duration>,
}

/// What a run reported, with every event and when (in virtual time since
/// the run began) it happened.
pub struct Run {
    pub report: Report,
    pub events: Vec<(Duration, Event)>,
    pub took: Duration,
}

impl Apply {
    pub fn new(hosts: &[&Arc<FakeEngine>]) -> Self {
        Apply {
            engines: engines(hosts),
            policies: BTreeMap::new(),
            cancel: CancellationToken::new(),
            settle: None,
        }
    }

    pub fn policy(mut self, job: &str, policy: RolloutPolicy) -> Self {
        self.policies.insert(job.to_string(), policy);
        self
    }

    pub async fn run(&self, plan: &Plan) -> Run {
        let events = Mutex::new(Vec::new());
        let began = Instant::now();
        let record = |e: &Event| {
            if let Ok(mut list) = events.lock() {
                list.push((began.elapsed(), e.clone()));
            }
        };
        let mut executor = Executor::new(
            ENV,
            &self.engines,
            Deployment {
                by: BY.to_string(),
                at: AT.to_string(),
                command: COMMAND.to_string(),
                commit: None,
            },
            self.cancel.clone(),
            &record,
        );
        executor.policies.clone_from(&self.policies);
        if let Some(settle) = self.settle {
            executor.settle = settle;
        }
        let report = executor.run(plan).await;
        let took = began.elapsed();
        Run {
            report,
            events: events.into_inner().unwrap_or_default(),
            took,
        }
    }
}

impl Run {
    /// The one outcome of the step on `job host/task`.
    pub fn outcome(&self, job: &str, host: &str, task: u32) -> &Outcome {
        let found: Vec<&Outcome> = self
            .report
            .outcomes
            .iter()
            .filter(|o| o.job == job && o.host == host && o.task == Some(task))
            .collect();
        match found.as_slice() {
            [one] => one,
            _ => panic!(
                "expected one outcome for {job} {host}/{task}, got {found:#?}\nall: {:#?}",
                self.report.outcomes
            ),
        }
    }

    /// When each `job host/task` started stopping, in order.
    pub fn stopping(&self) -> Vec<(Duration, String)> {
        self.events
            .iter()
            .filter(|(_, e)| e.phase == Phase::Stopping)
            .map(|(at, e)| (*at, e.subject()))
            .collect()
    }

    /// The subjects and phases of every event, as `web h1/0 creating`.
    pub fn event_lines(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, e)| !matches!(e.phase, Phase::Waiting { .. }))
            .map(|(_, e)| format!("{} {}", e.subject(), e.phase))
            .collect()
    }
}

/// The calls that change something on the host (no inspect, list, logs).
pub fn actions(engine: &FakeEngine) -> Vec<String> {
    engine
        .calls()
        .into_iter()
        .filter(|c| {
            !["inspect ", "inspect-image ", "logs ", "list"]
                .iter()
                .any(|p| c.starts_with(p))
        })
        .collect()
}

/// `(name, state)` of every container on the host, by name.
pub fn containers(engine: &FakeEngine) -> Vec<(String, String)> {
    engine.containers()
}

/// Pairs for comparing with [`containers`].
pub fn list(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = items
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    list.sort();
    list
}

/// The ID of the container now named `name`.
pub fn id_of(engine: &FakeEngine, name: &str) -> String {
    engine
        .container(name)
        .map(|c| c.id)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The most tasks of `job` down at once on a host, from its call log: a task
/// is down from the stop of its container until the last look at the
/// container under its name (the look that let the new one pass its gate).
pub fn most_down_at_once(calls: &[String], job: &str, host: &str, tasks: u32) -> usize {
    let mut intervals = Vec::new();
    for task in 0..tasks {
        let own = name(job, host, task);
        let stop = calls.iter().position(|c| *c == format!("stop {own}"));
        let last = calls
            .iter()
            .rposition(|c| *c == format!("inspect {own}") || *c == format!("start {own}"));
        if let (Some(stop), Some(last)) = (stop, last) {
            intervals.push((stop, last));
        }
    }
    (0..calls.len())
        .map(|i| intervals.iter().filter(|(a, b)| *a <= i && i <= *b).count())
        .max()
        .unwrap_or(0)
}
