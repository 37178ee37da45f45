//! What the plan crate's tests share: a small environment written to a
//! temporary directory, and observed containers built the way the engine
//! reads them back after drover created them (same configuration, labels
//! from [`DesiredTask::labels`] plus the deployment labels, the image's own
//! env merged in, `Cmd` from the image when the job has none). A test then
//! changes what a host would have changed, and says what the plan does.

// Each test file uses its own share of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_plan::time;
use drover_plan::{
    labels, plan, render_job, secret_names_label, Action, Change, DesiredTask, EnvValue,
    FieldChange, Health, HostObservation, HostState, ImageIndex, Observed, ObservedContainer, Plan,
    Resources, RunState, Runs, Scope, Secret, Secrets, TaskConfig, TaskKey, MARKER_IMAGE,
    ROLE_LOCK, ROLE_STOPPED,
};
use drover_spec::Environment;
use serde_json::Value;

pub const ENV_NAME: &str = "prod";
/// What `busybox:1.36` names on the hosts.
pub const IMAGE_ID: &str =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const OTHER_IMAGE_ID: &str =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const OLD_PASSWORD: &str = "hunter2-old-password";
pub const NEW_PASSWORD: &str = "s3cr3t-new-password";

/// When the containers of [`observed_from`] were deployed, and by whom.
pub const DEPLOYED_AT: &str = "2024-05-01T10:00:00Z";
pub const DEPLOYED_BY: &str = "ops@laptop";

pub use drover_testkit::fixtures::{DROVER_TOML, WEB_TOML, WORKER_TOML};
pub use drover_testkit::load_env;

/// `web` and `worker`, with `web`'s file swapped for `web`.
pub fn env_with_web(web: &str) -> Environment {
    load_env(&[
        ("drover.toml", DROVER_TOML),
        ("jobs/web.toml", web),
        ("jobs/worker.toml", WORKER_TOML),
    ])
}

pub fn secrets(password: &str) -> Secrets {
    Secrets::from([("DB_PASSWORD".to_string(), Secret::new(password))])
}

/// Every task of every job.
pub fn desired_tasks(env: &Environment, secrets: &Secrets) -> Vec<DesiredTask> {
    env.jobs
        .values()
        .flat_map(|job| render_job(env, job, secrets).expect("every secret has a value"))
        .collect()
}

/// The tasks of [`WEB_TOML`] and [`WORKER_TOML`] with [`OLD_PASSWORD`].
pub fn standard() -> Vec<DesiredTask> {
    desired_tasks(&env_with_web(WEB_TOML), &secrets(OLD_PASSWORD))
}

/// The desired tasks of one job.
pub fn of_job(desired: &[DesiredTask], job: &str) -> Vec<DesiredTask> {
    desired
        .iter()
        .filter(|d| d.key.job == job)
        .cloned()
        .collect()
}

pub fn find<'a>(tasks: &'a [DesiredTask], job: &str, host: &str, task: u32) -> &'a DesiredTask {
    tasks
        .iter()
        .find(|t| t.key == TaskKey::new(job, host, task))
        .unwrap_or_else(|| panic!("no desired task {job} {host}/{task}"))
}

/// A stable, container-ID-like hex string for a name.
pub fn fake_id(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}").repeat(4)
}

/// The ID a host's image of `image` has: [`IMAGE_ID`] for `busybox:1.36`.
pub fn image_id_of(image: &str) -> String {
    match image {
        "busybox:1.36" => IMAGE_ID.to_string(),
        id if id.starts_with("sha256:") => id.to_string(),
        other => format!("sha256:{}", fake_id(other)),
    }
}

/// The labels the executor adds to a container it creates.
pub fn deployment_labels(at: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::DEPLOYED_AT.to_string(), at.to_string()),
        (labels::DEPLOYED_BY.to_string(), DEPLOYED_BY.to_string()),
        (labels::COMMAND.to_string(), "up".to_string()),
    ])
}

/// The container the engine reads back after creating `desired`, running.
pub fn observed_from(desired: &DesiredTask) -> ObservedContainer {
    let image_env = BTreeMap::from([("PATH".to_string(), "/bin".to_string())]);
    let image_cmd = Some(vec!["sh".to_string()]);
    let mut container_labels = desired.labels(ENV_NAME);
    container_labels.extend(deployment_labels(DEPLOYED_AT));

    // The engine merges the image's env under the container's own, and
    // knows a variable was a secret only from the drover.secrets label.
    let secret_keys = secret_names_label(&container_labels);
    let mut env_lines = image_env.clone();
    env_lines.extend(
        desired
            .config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string())),
    );
    let mut config = desired.config.clone();
    config.env = env_lines
        .into_iter()
        .map(|(k, v)| {
            let value = if secret_keys.contains(&k) {
                EnvValue::Secret(Secret::new(v))
            } else {
                EnvValue::Plain(v)
            };
            (k, value)
        })
        .collect();
    if config.command.is_none() {
        config.command.clone_from(&image_cmd);
    }

    let name = desired.container_name(ENV_NAME);
    ObservedContainer {
        id: fake_id(&name),
        name,
        labels: container_labels,
        runs: Runs {
            state: RunState::Running,
            started_at: time::parse(DEPLOYED_AT),
            health: if desired.config.health.is_some() {
                Health::Healthy
            } else {
                Health::None
            },
            ..Runs::default()
        },
        error: String::new(),
        created: time::parse(DEPLOYED_AT),
        image_id: image_id_of(&desired.config.image),
        config,
        image_env,
        image_cmd,
        image_defaults: Default::default(),
        adopted: None,
    }
}

/// The same container under another name (and so another ID).
pub fn renamed(container: &ObservedContainer, name: &str) -> ObservedContainer {
    let mut copy = container.clone();
    copy.name = name.to_string();
    copy.id = fake_id(name);
    copy
}

/// `container` stopped after exiting with `code`.
pub fn exited(mut container: ObservedContainer, code: i64) -> ObservedContainer {
    container.runs.state = RunState::Exited;
    container.runs.exit_code = Some(code);
    container.runs.finished_at = time::parse(DEPLOYED_AT);
    container.runs.health = Health::None;
    container
}

/// A generation a rollout set aside: stopped, under its kept name,
/// deployed at `at`.
pub fn kept(desired: &DesiredTask, at: &str) -> ObservedContainer {
    let mut container = observed_from(desired);
    container.id = fake_id(&format!("{} {at}", desired.key));
    container.name = desired.key.kept_name(ENV_NAME, &container.id);
    container.labels.extend(deployment_labels(at));
    container.created = time::parse(at);
    exited(container, 0)
}

/// `container` as if deployed at `at`.
pub fn deployed_at(mut container: ObservedContainer, at: &str) -> ObservedContainer {
    container.labels.extend(deployment_labels(at));
    container.created = time::parse(at);
    container
}

/// A marker container (never started) of `job` on `host` with `role`.
fn marker(name: String, job: &str, host: &str, role: &str) -> ObservedContainer {
    let mut marker_labels = BTreeMap::from([
        (labels::ENV.to_string(), ENV_NAME.to_string()),
        (labels::JOB.to_string(), job.to_string()),
        (labels::HOST.to_string(), host.to_string()),
        (labels::ROLE.to_string(), role.to_string()),
    ]);
    marker_labels.extend(deployment_labels("2024-05-02T09:00:00Z"));
    ObservedContainer {
        id: fake_id(&name),
        name,
        labels: marker_labels,
        runs: Runs::default(),
        error: String::new(),
        created: time::parse("2024-05-02T09:00:00Z"),
        image_id: image_id_of(MARKER_IMAGE),
        config: TaskConfig {
            image: MARKER_IMAGE.to_string(),
            command: Some(vec!["/drover-marker".to_string()]),
            env: BTreeMap::new(),
            volumes: Vec::new(),
            host_files: Vec::new(),
            memory: None,
            resources: Resources::default(),
            network: "none".to_string(),
            init: false,
            restart: "no".to_string(),
            stop_timeout: Duration::ZERO,
            log_driver: "none".to_string(),
            log_options: BTreeMap::new(),
            health: None,
            settings: Default::default(),
        },
        image_env: BTreeMap::new(),
        image_cmd: None,
        image_defaults: Default::default(),
        adopted: None,
    }
}

/// The lock `drover lock web --reason …` leaves on a host.
pub fn lock(job: &str, host: &str, reason: &str) -> ObservedContainer {
    let mut container = marker(
        drover_plan::lock_name(ENV_NAME, job, host),
        job,
        host,
        ROLE_LOCK,
    );
    container
        .labels
        .insert(labels::REASON.to_string(), reason.to_string());
    container
        .labels
        .insert(labels::COMMAND.to_string(), "lock".to_string());
    container
}

/// The stop mark `drover stop JOB` leaves on a host.
pub fn stop_mark(job: &str, host: &str) -> ObservedContainer {
    marker(
        drover_plan::stop_mark_name(ENV_NAME, job, host),
        job,
        host,
        ROLE_STOPPED,
    )
}

/// A host's images: each of `images` by its tag.
pub fn images(images: &[&str]) -> ImageIndex {
    let mut index = ImageIndex::default();
    for image in images {
        index.add(&image_id_of(image), &[image.to_string()], &[]);
    }
    index
}

/// A host running exactly the desired tasks placed on it, with their images.
pub fn converged(desired: &[DesiredTask], host: &str) -> HostState {
    let on_host: Vec<&DesiredTask> = desired.iter().filter(|d| d.key.host == host).collect();
    let mut wanted_images: BTreeSet<&str> =
        on_host.iter().map(|d| d.config.image.as_str()).collect();
    wanted_images.insert("busybox:1.36");
    HostState {
        containers: on_host.into_iter().map(observed_from).collect(),
        images: images(&wanted_images.into_iter().collect::<Vec<_>>()),
    }
}

/// When the tests' hosts are looked at: a day after the deployments.
pub const NOW: &str = "2024-05-02T10:00:00Z";

pub fn observed(hosts: Vec<(&str, HostState)>) -> Observed {
    Observed {
        at: time::parse(NOW).expect("a time"),
        hosts: hosts
            .into_iter()
            .map(|(host, state)| (host.to_string(), HostObservation::Reachable(state)))
            .collect(),
    }
}

pub fn unreachable(observed: &mut Observed, host: &str) {
    observed.hosts.insert(
        host.to_string(),
        HostObservation::Unreachable {
            address: "tcp://10.0.0.12:2376".to_string(),
            error: "connection refused".to_string(),
        },
    );
}

pub fn known_hosts() -> BTreeSet<String> {
    ["app1", "app2"].into_iter().map(String::from).collect()
}

pub fn jobs(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// `up` of the whole environment.
pub fn plan_all(desired: &[DesiredTask], observed: &Observed) -> Plan {
    plan(ENV_NAME, desired, observed, &Scope::All, &known_hosts())
}

/// `up JOB…`: the jobs' tasks only, in their scope.
pub fn plan_jobs(desired: &[DesiredTask], names: &[&str], observed: &Observed) -> Plan {
    let wanted: Vec<DesiredTask> = desired
        .iter()
        .filter(|d| names.contains(&d.key.job.as_str()))
        .cloned()
        .collect();
    plan(
        ENV_NAME,
        &wanted,
        observed,
        &Scope::Jobs(jobs(names)),
        &known_hosts(),
    )
}

/// `"job host/task verb (reason)"` of every change, in plan order.
pub fn summary(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| format!("{} {} ({})", c.name(), c.step.verb(), c.reason))
        .collect()
}

pub fn only_change(plan: &Plan) -> &Change {
    assert_eq!(plan.changes.len(), 1, "expected one change:\n{plan}");
    &plan.changes[0]
}

/// The ID of the container a change acts on.
pub fn target_id(change: &Change) -> Option<&str> {
    change.step.container().map(|c| c.id.as_str())
}

/// The IDs of the containers the plan removes.
pub fn removed_ids(plan: &Plan) -> BTreeSet<String> {
    plan.changes
        .iter()
        .filter(|c| c.action() == Action::Remove)
        .filter_map(|c| target_id(c).map(str::to_string))
        .collect()
}

pub fn field(path: &str, old: Value, new: Value) -> FieldChange {
    FieldChange {
        path: path.to_string(),
        old,
        new,
    }
}

/// `desired` as if rendered for `host`: what a host since dropped from
/// drover.toml left running (its env and so its spec hash name that host).
pub fn task_for_host(desired: &DesiredTask, host: &str) -> DesiredTask {
    let mut task = desired.clone();
    task.key.host = host.to_string();
    task.config
        .env
        .insert("DROVER_HOST".to_string(), EnvValue::Plain(host.to_string()));
    task.spec_hash = task.config.hash();
    task
}

/// Relabels a container as another task's (its name follows the labels).
pub fn relabel(mut container: ObservedContainer, key: &str, value: &str) -> ObservedContainer {
    container.labels.insert(key.to_string(), value.to_string());
    let label = |k: &str| container.labels.get(k).cloned().unwrap_or_default();
    container.name = format!(
        "{ENV_NAME}.{}.{}.{}",
        label(labels::JOB),
        label(labels::HOST),
        label(labels::TASK)
    );
    container.id = fake_id(&container.name);
    container
}

/// Every rendering of a plan an operator or a script can see.
pub fn every_output(plan: &Plan) -> String {
    format!(
        "{}\n{}\n{}\n{:?}",
        plan.render(false),
        plan.render(true),
        serde_json::to_string(plan).expect("a plan serializes"),
        plan
    )
}
