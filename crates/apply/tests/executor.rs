//! The executor's logic against a recording fake engine, as youki tests its
//! syscalls: every engine call is recorded as a line (`create NAME`,
//! `stop ID TIMEOUT`…), the fake keeps just enough state (which containers
//! exist, under which name, running or not) to check what a host is left
//! with, and any call can be made to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use drover_apply::{apply, ApplyReport, Engines, StepReport, SETTLE};
use drover_engine::{
    ContainerSummary, Engine, EngineError, EngineVersion, ImageDetails, ImageSummary, Usage,
};
use drover_plan::{
    Action, Change, ContainerRef, DesiredTask, ObservedContainer, Plan, Pull, TaskConfig,
};

const ENV: &str = "t";

#[derive(Debug, Clone, PartialEq, Eq)]
struct FakeContainer {
    name: String,
    state: &'static str,
}

/// An engine that records every call and keeps a toy model of its containers.
struct FakeEngine {
    host: String,
    calls: Mutex<Vec<String>>,
    /// Calls starting with one of these fail (and change nothing).
    failing: Mutex<Vec<String>>,
    /// Containers whose ID starts with one of these start, then exit at once.
    crashing: Mutex<Vec<String>>,
    /// Container ID → name and state.
    containers: Mutex<BTreeMap<String, FakeContainer>>,
}

impl FakeEngine {
    fn new(host: &str) -> Arc<Self> {
        Arc::new(FakeEngine {
            host: host.to_string(),
            calls: Mutex::new(Vec::new()),
            failing: Mutex::new(Vec::new()),
            crashing: Mutex::new(Vec::new()),
            containers: Mutex::new(BTreeMap::new()),
        })
    }

    /// A container that exists before the plan runs.
    fn with_container(self: Arc<Self>, id: &str, name: &str, state: &'static str) -> Arc<Self> {
        self.containers.lock().unwrap().insert(
            id.to_string(),
            FakeContainer {
                name: name.to_string(),
                state,
            },
        );
        self
    }

    /// Makes every call starting with `prefix` fail.
    fn fail(self: Arc<Self>, prefix: &str) -> Arc<Self> {
        self.failing.lock().unwrap().push(prefix.to_string());
        self
    }

    /// Makes containers whose ID starts with `prefix` exit right after starting.
    fn crash(self: Arc<Self>, prefix: &str) -> Arc<Self> {
        self.crashing.lock().unwrap().push(prefix.to_string());
        self
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// `(name, state)` of every container left on the host, by name.
    fn containers(&self) -> Vec<(String, &'static str)> {
        let mut list: Vec<(String, &'static str)> = self
            .containers
            .lock()
            .unwrap()
            .values()
            .map(|c| (c.name.clone(), c.state))
            .collect();
        list.sort();
        list
    }

    /// Records `call`; `Err` if it was told to fail.
    fn record(&self, call: String) -> Result<(), EngineError> {
        let fails = self
            .failing
            .lock()
            .unwrap()
            .iter()
            .any(|p| call.starts_with(p.as_str()));
        self.calls.lock().unwrap().push(call.clone());
        if fails {
            Err(EngineError::Api {
                status: 500,
                message: format!("injected failure of {call}"),
            })
        } else {
            Ok(())
        }
    }

    /// The ID of a container given by ID or name, as Docker resolves either.
    fn resolve(&self, id_or_name: &str) -> Result<String, EngineError> {
        let containers = self.containers.lock().unwrap();
        if containers.contains_key(id_or_name) {
            return Ok(id_or_name.to_string());
        }
        containers
            .iter()
            .find(|(_, c)| c.name == id_or_name)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| EngineError::NotFound(format!("no such container: {id_or_name}")))
    }

    fn set_state(&self, id_or_name: &str, state: &'static str) -> Result<(), EngineError> {
        let id = self.resolve(id_or_name)?;
        if let Some(c) = self.containers.lock().unwrap().get_mut(&id) {
            c.state = state;
        }
        Ok(())
    }
}

fn unused(what: &str) -> EngineError {
    EngineError::Other(format!("{what} is not used by apply"))
}

#[async_trait]
impl Engine for FakeEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> &str {
        "fake://"
    }

    async fn version(&self) -> Result<EngineVersion, EngineError> {
        self.record("version".to_string())?;
        Err(unused("version"))
    }

    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        self.record(format!("list_containers {env}"))?;
        Err(unused("list_containers"))
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        self.record(format!("inspect {id}"))?;
        let Ok(id) = self.resolve(id) else {
            return Ok(None);
        };
        let container = self.containers.lock().unwrap()[&id].clone();
        Ok(Some(ObservedContainer {
            id,
            name: container.name,
            labels: BTreeMap::new(),
            state: container.state.to_string(),
            exit_code: i64::from(container.state == "exited"),
            health: String::new(),
            started_at: String::new(),
            created: String::new(),
            restarts: 0,
            image_id: String::new(),
            config: config(""),
            image_env: BTreeMap::new(),
            image_cmd: None,
        }))
    }

    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        self.record("list_images".to_string())?;
        Err(unused("list_images"))
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError> {
        self.record(format!("inspect_image {reference}"))?;
        Err(unused("inspect_image"))
    }

    async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        self.record(format!("pull {reference}"))
    }

    async fn create_container(
        &self,
        env: &str,
        name: &str,
        task: &DesiredTask,
    ) -> Result<String, EngineError> {
        assert_eq!(env, ENV, "containers are created in the plan's environment");
        assert_eq!(task.host, self.host, "a task is created on its own host");
        self.record(format!("create {name}"))?;
        let mut containers = self.containers.lock().unwrap();
        if containers.values().any(|c| c.name == name) {
            return Err(EngineError::Conflict(format!(
                "the container name {name} is already in use"
            )));
        }
        let id = format!("c-{name}");
        containers.insert(
            id.clone(),
            FakeContainer {
                name: name.to_string(),
                state: "created",
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("start {id}"))?;
        let crashes = self
            .crashing
            .lock()
            .unwrap()
            .iter()
            .any(|p| id.starts_with(p.as_str()));
        self.set_state(id, if crashes { "exited" } else { "running" })
    }

    async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("unpause {id}"))?;
        self.set_state(id, "running")
    }

    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), EngineError> {
        self.record(format!("stop {id} {timeout_secs}"))?;
        self.set_state(id, "exited")
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.record(format!("remove {id}"))?;
        let id = self.resolve(id)?;
        self.containers.lock().unwrap().remove(&id);
        Ok(())
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError> {
        self.record(format!("rename {id} {name}"))?;
        let id = self.resolve(id)?;
        if let Some(c) = self.containers.lock().unwrap().get_mut(&id) {
            c.name = name.to_string();
        }
        Ok(())
    }

    async fn usage(&self, id: &str) -> Result<Usage, EngineError> {
        self.record(format!("usage {id}"))?;
        Err(unused("usage"))
    }
}

fn config(image: &str) -> TaskConfig {
    TaskConfig {
        image: image.to_string(),
        command: None,
        env: BTreeMap::new(),
        secret_keys: BTreeSet::new(),
        volumes: Vec::new(),
        host_files: Vec::new(),
        memory: None,
        network: "host".to_string(),
        init: true,
        restart: "unless-stopped".to_string(),
        stop_timeout_secs: 30,
        log_driver: "local".to_string(),
        log_options: BTreeMap::new(),
        health: None,
    }
}

fn desired(job: &str, host: &str, task: u32, image: &str) -> DesiredTask {
    let mut config = config(image);
    config.env.insert("DROVER_JOB".to_string(), job.to_string());
    let spec_hash = config.hash();
    DesiredTask {
        job: job.to_string(),
        host: host.to_string(),
        task,
        config,
        spec_hash,
    }
}

fn change(job: &str, host: &str, task: u32, action: Action) -> Change {
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task: Some(task),
        action,
        reason: "test".to_string(),
        container: None,
        fields: Vec::new(),
        desired: None,
    }
}

fn existing(id: &str, job: &str, host: &str, task: u32, state: &str) -> ContainerRef {
    ContainerRef {
        id: id.to_string(),
        name: format!("{ENV}.{job}.{host}.{task}"),
        state: state.to_string(),
        stop_timeout_secs: 30,
    }
}

fn create(job: &str, host: &str, task: u32, image: &str) -> Change {
    Change {
        desired: Some(desired(job, host, task, image)),
        ..change(job, host, task, Action::Create)
    }
}

fn replace(job: &str, host: &str, task: u32, image: &str, old_id: &str, old_state: &str) -> Change {
    Change {
        desired: Some(desired(job, host, task, image)),
        container: Some(existing(old_id, job, host, task, old_state)),
        ..change(job, host, task, Action::Replace)
    }
}

fn start(job: &str, host: &str, task: u32, id: &str, state: &str) -> Change {
    Change {
        container: Some(existing(id, job, host, task, state)),
        ..change(job, host, task, Action::Start)
    }
}

fn remove(job: &str, host: &str, task: u32, id: &str) -> Change {
    Change {
        container: Some(existing(id, job, host, task, "running")),
        ..change(job, host, task, Action::Remove)
    }
}

fn plan_of(changes: Vec<Change>, pulls: Vec<(&str, &str)>) -> Plan {
    Plan {
        changes,
        pulls: pulls
            .into_iter()
            .map(|(host, image)| Pull {
                host: host.to_string(),
                image: image.to_string(),
            })
            .collect(),
        ..Plan::default()
    }
}

fn engines(fakes: &[&Arc<FakeEngine>]) -> Engines {
    fakes
        .iter()
        .map(|f| (f.host.clone(), Arc::clone(*f) as Arc<dyn Engine>))
        .collect()
}

/// Applies `plan`, ignoring progress; fails the test if it hangs.
async fn run(plan: &Plan, fakes: &[&Arc<FakeEngine>]) -> ApplyReport {
    tokio::time::timeout(
        Duration::from_secs(10),
        apply(ENV, plan, &engines(fakes), &|_| {}),
    )
    .await
    .expect("apply finishes")
}

/// The report of the step for `what` (`job host/task`, or an image).
fn step<'a>(report: &'a ApplyReport, what: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.what == what)
        .unwrap_or_else(|| panic!("no step for {what}: {:#?}", report.steps))
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no call {call:?} in {calls:#?}"))
}

/// Asserts `expected` were all called, in this order (other calls may come between).
fn assert_in_order(calls: &[String], expected: &[&str]) {
    let positions: Vec<usize> = expected.iter().map(|c| position(calls, c)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "expected {expected:#?} in this order, got {calls:#?}"
    );
}

#[tokio::test]
async fn create_creates_then_starts_the_task() {
    let h1 = FakeEngine::new("h1");
    let plan = plan_of(vec![create("web", "h1", 0, "busybox:1.36")], vec![]);

    let report = run(&plan, &[&h1]).await;
    assert_eq!(h1.calls(), vec!["create t.web.h1.0", "start c-t.web.h1.0"]);
    let step = step(&report, "web h1/0");
    assert_eq!((step.host.as_str(), step.action.as_str()), ("h1", "create"));
    assert!(step.outcome.is_ok(), "{:?}", step.outcome);
    assert_eq!(h1.containers(), vec![("t.web.h1.0".to_string(), "running")]);
}

#[tokio::test]
async fn replace_starts_the_new_container_before_removing_the_old() {
    let h1 = FakeEngine::new("h1").with_container("old0", "t.web.h1.0", "running");
    let change = replace("web", "h1", 0, "busybox:1.37", "old0", "running");
    let staging = format!(
        "t.web.h1.0.new-{}",
        change.desired.as_ref().unwrap().spec_hash
    );
    let new_id = format!("c-{staging}");
    let plan = plan_of(vec![change], vec![]);

    let report = run(&plan, &[&h1]).await;
    let calls = h1.calls();
    assert_in_order(
        &calls,
        &[
            &format!("create {staging}"),
            "stop old0 30",
            &format!("start {new_id}"),
            "remove old0",
            &format!("rename {new_id} t.web.h1.0"),
        ],
    );
    assert!(
        !calls.iter().any(|c| c == "start old0"),
        "the old container stays stopped: {calls:#?}"
    );
    assert!(step(&report, "web h1/0").outcome.is_ok(), "{report:#?}");
    assert_eq!(
        h1.containers(),
        vec![("t.web.h1.0".to_string(), "running")],
        "one container, the new one, under the task's name"
    );
    assert_eq!(h1.resolve("t.web.h1.0").unwrap(), new_id);
}

#[tokio::test]
async fn replace_whose_new_container_cannot_start_brings_the_old_one_back() {
    let h1 = FakeEngine::new("h1")
        .with_container("old0", "t.web.h1.0", "running")
        .fail("start c-t.web.h1.0.new-");
    let plan = plan_of(
        vec![replace("web", "h1", 0, "busybox:1.37", "old0", "running")],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    let calls = h1.calls();
    let new_id = calls
        .iter()
        .find_map(|c| c.strip_prefix("create "))
        .map(|name| format!("c-{name}"))
        .expect("a new container was created");
    assert_in_order(
        &calls,
        &[
            "stop old0 30",
            &format!("start {new_id}"),
            &format!("remove {new_id}"),
            "start old0",
        ],
    );
    assert_old_container_restored(&h1, &report);
    assert_eq!(report.failures().count(), 1);
}

#[tokio::test]
async fn replace_whose_new_container_exits_at_once_brings_the_old_one_back() {
    let h1 = FakeEngine::new("h1")
        .with_container("old0", "t.web.h1.0", "running")
        .crash("c-t.web.h1.0.new-");
    let plan = plan_of(
        vec![replace("web", "h1", 0, "busybox:1.37", "old0", "running")],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    let error = assert_old_container_restored(&h1, &report);
    assert!(error.contains("exited with code 1"), "{error}");
}

#[tokio::test]
async fn replace_of_a_stopped_container_does_not_start_it_when_the_new_one_fails() {
    let h1 = FakeEngine::new("h1")
        .with_container("old0", "t.web.h1.0", "exited")
        .fail("start c-t.web.h1.0.new-");
    let plan = plan_of(
        vec![replace("web", "h1", 0, "busybox:1.37", "old0", "exited")],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    assert!(
        !h1.calls().iter().any(|c| c == "start old0"),
        "{:#?}",
        h1.calls()
    );
    assert!(step(&report, "web h1/0").outcome.is_err());
    assert_eq!(h1.containers(), vec![("t.web.h1.0".to_string(), "exited")]);
}

#[tokio::test]
async fn create_whose_start_fails_leaves_nothing_behind() {
    let h1 = FakeEngine::new("h1").fail("start c-t.web.h1.0");
    let plan = plan_of(vec![create("web", "h1", 0, "busybox:1.36")], vec![]);

    let report = run(&plan, &[&h1]).await;
    assert_in_order(
        &h1.calls(),
        &[
            "create t.web.h1.0",
            "start c-t.web.h1.0",
            "remove c-t.web.h1.0",
        ],
    );
    let error = step(&report, "web h1/0")
        .outcome
        .as_ref()
        .expect_err("the step fails");
    assert!(error.contains("could not start"), "{error}");
    assert!(error.contains("injected failure"), "says why: {error}");
    assert_eq!(h1.containers(), Vec::new(), "no container that never ran");
}

#[tokio::test]
async fn a_failed_create_is_reported_with_the_engine_message() {
    let h1 = FakeEngine::new("h1").fail("create t.web.h1.0");
    let plan = plan_of(vec![create("web", "h1", 0, "busybox:1.36")], vec![]);

    let report = run(&plan, &[&h1]).await;
    assert_eq!(h1.calls(), vec!["create t.web.h1.0"], "nothing to start");
    let error = step(&report, "web h1/0")
        .outcome
        .as_ref()
        .expect_err("the step fails");
    assert!(error.contains("injected failure of create"), "{error}");
}

#[tokio::test]
async fn removals_on_a_host_run_before_its_creates() {
    // The plan lists the create first (job "api" < "web"); the removal frees
    // a port or name the new task may need, so it must go first anyway.
    let h1 = FakeEngine::new("h1").with_container("gone0", "t.web.h1.0", "running");
    let plan = plan_of(
        vec![
            create("api", "h1", 0, "busybox:1.36"),
            remove("web", "h1", 0, "gone0"),
        ],
        vec![("h1", "busybox:1.36")],
    );

    let report = run(&plan, &[&h1]).await;
    assert_in_order(
        &h1.calls(),
        &[
            "pull busybox:1.36",
            "stop gone0 30",
            "remove gone0",
            "create t.api.h1.0",
            "start c-t.api.h1.0",
        ],
    );
    assert_eq!(report.failures().count(), 0, "{report:#?}");
    assert_eq!(h1.containers(), vec![("t.api.h1.0".to_string(), "running")]);
}

#[tokio::test]
async fn a_failed_pull_fails_the_steps_that_need_the_image() {
    let h1 = FakeEngine::new("h1")
        .with_container("api0", "t.api.h1.0", "running")
        .fail("pull busybox:1.37");
    let plan = plan_of(
        vec![
            replace("api", "h1", 0, "busybox:1.37", "api0", "running"),
            create("web", "h1", 0, "busybox:1.37"),
            create("worker", "h1", 0, "busybox:1.36"),
        ],
        vec![("h1", "busybox:1.36"), ("h1", "busybox:1.37")],
    );

    let report = run(&plan, &[&h1]).await;
    let calls = h1.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create t.web.") || c.starts_with("create t.api.")),
        "nothing is created from a missing image: {calls:#?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("api0")),
        "the running container is left alone: {calls:#?}"
    );
    assert!(calls.iter().any(|c| c == "create t.worker.h1.0"));
    for what in ["api h1/0", "web h1/0"] {
        let error = step(&report, what)
            .outcome
            .as_ref()
            .expect_err("the step fails");
        assert!(
            error.contains("image could not be pulled"),
            "{what}: {error}"
        );
    }
    assert!(step(&report, "busybox:1.37").outcome.is_err());
    assert!(step(&report, "busybox:1.36").outcome.is_ok());
    assert!(step(&report, "worker h1/0").outcome.is_ok());
    let failed: BTreeSet<&str> = report.failures().map(|s| s.what.as_str()).collect();
    assert_eq!(
        failed,
        BTreeSet::from(["busybox:1.37", "api h1/0", "web h1/0"])
    );
    assert_eq!(
        h1.containers(),
        vec![
            ("t.api.h1.0".to_string(), "running"),
            ("t.worker.h1.0".to_string(), "running"),
        ]
    );
}

#[tokio::test]
async fn start_unpauses_a_paused_container_and_starts_a_stopped_one() {
    let h1 = FakeEngine::new("h1")
        .with_container("paused0", "t.web.h1.0", "paused")
        .with_container("exited1", "t.web.h1.1", "exited");
    let plan = plan_of(
        vec![
            start("web", "h1", 0, "paused0", "paused"),
            start("web", "h1", 1, "exited1", "exited"),
        ],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    let calls: BTreeSet<String> = h1.calls().into_iter().collect();
    assert_eq!(
        calls,
        BTreeSet::from(["unpause paused0".to_string(), "start exited1".to_string()])
    );
    assert_eq!(report.failures().count(), 0);
    assert_eq!(step(&report, "web h1/0").action, "start");
    assert_eq!(
        h1.containers(),
        vec![
            ("t.web.h1.0".to_string(), "running"),
            ("t.web.h1.1".to_string(), "running"),
        ]
    );
}

#[tokio::test]
async fn remove_stops_gracefully_then_removes() {
    let h1 = FakeEngine::new("h1").with_container("old0", "t.web.h1.0", "running");
    let plan = plan_of(vec![remove("web", "h1", 0, "old0")], vec![]);

    let report = run(&plan, &[&h1]).await;
    assert_eq!(h1.calls(), vec!["stop old0 30", "remove old0"]);
    assert_eq!(step(&report, "web h1/0").action, "remove");
    assert_eq!(h1.containers(), Vec::new());
}

#[tokio::test]
async fn steps_of_every_host_run() {
    let h1 = FakeEngine::new("h1");
    let h2 = FakeEngine::new("h2").with_container("old0", "t.web.h2.0", "exited");
    let plan = plan_of(
        vec![
            create("web", "h1", 0, "busybox:1.36"),
            start("web", "h2", 0, "old0", "exited"),
            create("web", "h2", 1, "busybox:1.36"),
        ],
        vec![],
    );

    let report = run(&plan, &[&h1, &h2]).await;
    assert_eq!(h1.calls(), vec!["create t.web.h1.0", "start c-t.web.h1.0"]);
    let h2_calls: BTreeSet<String> = h2.calls().into_iter().collect();
    assert_eq!(
        h2_calls,
        BTreeSet::from([
            "start old0".to_string(),
            "create t.web.h2.1".to_string(),
            "start c-t.web.h2.1".to_string(),
        ])
    );
    let mut steps: Vec<(&str, &str, &str)> = report
        .steps
        .iter()
        .map(|s| (s.host.as_str(), s.what.as_str(), s.action.as_str()))
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        vec![
            ("h1", "web h1/0", "create"),
            ("h2", "web h2/0", "start"),
            ("h2", "web h2/1", "create"),
        ]
    );
    assert_eq!(report.failures().count(), 0);
}

#[tokio::test]
async fn a_host_without_an_engine_fails_without_stopping_the_others() {
    let h1 = FakeEngine::new("h1");
    let plan = plan_of(
        vec![
            create("web", "h1", 0, "busybox:1.36"),
            create("web", "h3", 0, "busybox:1.36"),
        ],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    assert!(step(&report, "web h1/0").outcome.is_ok());
    let failures: Vec<&StepReport> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report:#?}");
    assert_eq!(failures[0].host, "h3");
    assert!(
        failures[0]
            .outcome
            .as_ref()
            .is_err_and(|e| e.contains("h3")),
        "names the host: {:?}",
        failures[0].outcome
    );
}

#[tokio::test]
async fn failures_counts_only_failed_steps() {
    let h1 = FakeEngine::new("h1")
        .with_container("a0", "t.a.h1.0", "exited")
        .with_container("b0", "t.b.h1.0", "exited")
        .with_container("c0", "t.c.h1.0", "running")
        .fail("start b0")
        .fail("stop c0");
    let plan = plan_of(
        vec![
            start("a", "h1", 0, "a0", "exited"),
            start("b", "h1", 0, "b0", "exited"),
            remove("c", "h1", 0, "c0"),
            create("d", "h1", 0, "busybox:1.36"),
        ],
        vec![],
    );

    let report = run(&plan, &[&h1]).await;
    assert_eq!(report.steps.len(), 4);
    let failed: BTreeSet<&str> = report.failures().map(|s| s.what.as_str()).collect();
    assert_eq!(failed, BTreeSet::from(["b h1/0", "c h1/0"]));
    assert!(
        !h1.calls().iter().any(|c| c == "remove c0"),
        "a container that would not stop is not removed"
    );
}

#[tokio::test]
async fn progress_is_called_once_per_step() {
    let h1 = FakeEngine::new("h1").fail("start c-t.web.h1.1");
    let h2 = FakeEngine::new("h2").with_container("old0", "t.web.h2.0", "running");
    let plan = plan_of(
        vec![
            create("web", "h1", 0, "busybox:1.36"),
            create("web", "h1", 1, "busybox:1.36"),
            remove("web", "h2", 0, "old0"),
        ],
        vec![("h1", "busybox:1.36")],
    );
    let seen = Mutex::new(Vec::new());
    let report = apply(ENV, &plan, &engines(&[&h1, &h2]), &|step: &StepReport| {
        seen.lock().unwrap().push(step.clone());
    })
    .await;

    let mut seen = seen.into_inner().unwrap();
    let mut steps = report.steps.clone();
    assert_eq!(steps.len(), 4, "a pull and three changes: {steps:#?}");
    let key = |s: &StepReport| (s.host.clone(), s.what.clone(), s.action.clone());
    seen.sort_by_key(key);
    steps.sort_by_key(key);
    assert_eq!(seen, steps, "each step reported once, as it ended");
}

#[tokio::test]
async fn progress_reports_a_step_when_it_ends_not_when_its_batch_does() {
    // The replacement waits for its new container to settle; the create
    // beside it is done long before, and `up` should say so then.
    let h1 = FakeEngine::new("h1").with_container("old0", "t.web.h1.0", "running");
    let plan = plan_of(
        vec![
            create("api", "h1", 0, "busybox:1.36"),
            replace("web", "h1", 0, "busybox:1.37", "old0", "running"),
        ],
        vec![],
    );
    let began = Instant::now();
    let seen = Mutex::new(Vec::new());
    let report = apply(ENV, &plan, &engines(&[&h1]), &|step: &StepReport| {
        seen.lock()
            .unwrap()
            .push((step.what.clone(), began.elapsed()));
    })
    .await;

    assert_eq!(report.failures().count(), 0, "{report:#?}");
    let seen = seen.into_inner().unwrap();
    let (_, create_reported) = seen
        .iter()
        .find(|(what, _)| what == "api h1/0")
        .expect("the create is reported");
    let (_, replace_reported) = seen
        .iter()
        .find(|(what, _)| what == "web h1/0")
        .expect("the replace is reported");
    assert!(*replace_reported >= SETTLE, "the replace waited to settle");
    assert!(
        *create_reported < SETTLE / 2,
        "the create ended at once but was reported after {create_reported:?}, \
         with the replace ({replace_reported:?})"
    );
}

/// After a failed replacement of `web h1/0`: the old container `old0` was never
/// removed, runs again under the task's name, and the step failed saying so.
/// Returns the step's error for further checks.
fn assert_old_container_restored(h1: &FakeEngine, report: &ApplyReport) -> String {
    let calls = h1.calls();
    assert!(
        !calls.iter().any(|c| c == "remove old0"),
        "the old container is kept: {calls:#?}"
    );
    let error = step(report, "web h1/0")
        .outcome
        .clone()
        .expect_err("the step fails");
    assert!(
        error.contains("the previous container is running again"),
        "{error}"
    );
    assert_eq!(
        h1.containers(),
        vec![("t.web.h1.0".to_string(), "running")],
        "the old container runs, the new one is gone"
    );
    assert_eq!(h1.resolve("t.web.h1.0").unwrap(), "old0");
    error
}
