//! `plan()` against hand-built observations: what `diff` shows and `up` does
//! for each way a host can differ from the spec. No Docker: every container
//! here is built the way the engine reads one back after creating it.

use std::collections::{BTreeMap, BTreeSet};

use drover_plan::{
    labels, normalize_image_ref, plan, render_job, Action, Change, DesiredTask, FieldChange,
    HostObservation, HostState, Observed, ObservedContainer, Plan, Pull, Scope, Secrets,
    UnreachableHost,
};
use drover_spec::Environment;
use serde_json::{json, Value};

const ENV_NAME: &str = "prod";
const IMAGE_ID: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_IMAGE_ID: &str =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const OLD_PASSWORD: &str = "hunter2-old-password";
const NEW_PASSWORD: &str = "s3cr3t-new-password";

const DROVER_TOML: &str = r#"
name = "prod"
[hosts.app1]
docker = "unix:///var/run/docker.sock"
[hosts.app2]
docker = "tcp://10.0.0.12:2376"

[defaults]
host_files = ["/etc/localtime"]
stop_timeout = "30s"
log = { driver = "local", max_size = "20m", max_files = 5 }
"#;

const WEB_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1", "app2"]
instances = 2
command = ["httpd", "-f", "-p", "8080"]
env = { MODE = "prod" }
secret_env = ["DB_PASSWORD"]
memory = "64m"
"#;

const WORKER_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1"]
"#;

/// Loads an environment written into a temporary directory.
fn load_env(files: &[(&str, &str)]) -> Environment {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    drover_spec::load(dir.path(), None).unwrap()
}

/// `web` (2 tasks on app1 and app2, with a command and a secret) and `worker`
/// (1 task on app1, the image's own command); `web`'s file can be swapped.
fn env_with_web(web: &str) -> Environment {
    load_env(&[
        ("drover.toml", DROVER_TOML),
        ("jobs/web.toml", web),
        ("jobs/worker.toml", WORKER_TOML),
    ])
}

fn secrets(password: &str) -> Secrets {
    BTreeMap::from([("DB_PASSWORD".to_string(), password.to_string())])
}

/// Every task of every job.
fn desired_tasks(env: &Environment, secrets: &Secrets) -> Vec<DesiredTask> {
    env.jobs
        .values()
        .flat_map(|job| render_job(env, job, secrets).unwrap())
        .collect()
}

fn standard() -> Vec<DesiredTask> {
    desired_tasks(&env_with_web(WEB_TOML), &secrets(OLD_PASSWORD))
}

fn find<'a>(tasks: &'a [DesiredTask], job: &str, host: &str, task: u32) -> &'a DesiredTask {
    tasks
        .iter()
        .find(|t| t.job == job && t.host == host && t.task == task)
        .unwrap_or_else(|| panic!("no desired task {job} {host}/{task}"))
}

/// A stable, container-ID-like hex string for a name.
fn fake_id(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}").repeat(4)
}

/// The container the engine reads back after creating `desired`: same config
/// and labels, the image's own env merged in, and Docker's `Cmd` filled from
/// the image when the job has no command.
fn observed_from(desired: &DesiredTask, env_name: &str) -> ObservedContainer {
    let image_env = BTreeMap::from([("PATH".to_string(), "/bin".to_string())]);
    let image_cmd = Some(vec!["sh".to_string()]);
    let mut config = desired.config.clone();
    // Inspect knows which variables were secrets only from the drover.secrets label.
    config.secret_keys = desired
        .labels(env_name)
        .get(labels::SECRETS)
        .map(|names| names.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut env = image_env.clone();
    env.extend(desired.config.env.clone());
    config.env = env;
    if config.command.is_none() {
        config.command.clone_from(&image_cmd);
    }
    let name = desired.container_name(env_name);
    ObservedContainer {
        id: fake_id(&name),
        name,
        labels: desired.labels(env_name),
        state: "running".to_string(),
        exit_code: 0,
        health: String::new(),
        started_at: "2024-05-01T10:00:00Z".to_string(),
        created: "2024-05-01T10:00:00Z".to_string(),
        restarts: 0,
        image_id: IMAGE_ID.to_string(),
        config,
        image_env,
        image_cmd,
    }
}

/// The images a host has: `busybox:1.36` as [`IMAGE_ID`].
fn busybox_present() -> BTreeMap<String, String> {
    BTreeMap::from([(normalize_image_ref("busybox:1.36"), IMAGE_ID.to_string())])
}

/// A host running exactly the desired tasks placed on it.
fn converged(desired: &[DesiredTask], host: &str) -> HostState {
    HostState {
        containers: desired
            .iter()
            .filter(|d| d.host == host)
            .map(|d| observed_from(d, ENV_NAME))
            .collect(),
        images: busybox_present(),
    }
}

fn observed(hosts: Vec<(&str, HostState)>) -> Observed {
    Observed {
        hosts: hosts
            .into_iter()
            .map(|(host, state)| (host.to_string(), HostObservation::Reachable(state)))
            .collect(),
    }
}

fn known_hosts() -> BTreeSet<String> {
    ["app1", "app2"].into_iter().map(String::from).collect()
}

fn plan_all(desired: &[DesiredTask], observed: &Observed) -> Plan {
    plan(desired, observed, &Scope::All, &known_hosts())
}

/// `(job, host/task, action, reason)` of every change, in plan order.
fn summary(plan: &Plan) -> Vec<(String, String, Action, String)> {
    plan.changes
        .iter()
        .map(|c| {
            let task = c.task.map_or("?".to_string(), |t| t.to_string());
            (
                c.job.clone(),
                format!("{}/{task}", c.host),
                c.action,
                c.reason.clone(),
            )
        })
        .collect()
}

fn row(job: &str, task: &str, action: Action, reason: &str) -> (String, String, Action, String) {
    (
        job.to_string(),
        task.to_string(),
        action,
        reason.to_string(),
    )
}

fn only_change(plan: &Plan) -> &Change {
    assert_eq!(plan.changes.len(), 1, "expected one change:\n{plan}");
    &plan.changes[0]
}

fn field(path: &str, old: Value, new: Value) -> FieldChange {
    FieldChange {
        path: path.to_string(),
        old,
        new,
    }
}

/// `desired` as if rendered for `host`: what a host since dropped from
/// drover.toml left running (its env and so its spec hash name that host).
fn task_for_host(desired: &DesiredTask, host: &str) -> DesiredTask {
    let mut task = desired.clone();
    task.host = host.to_string();
    task.config
        .env
        .insert("DROVER_HOST".to_string(), host.to_string());
    task.spec_hash = task.config.hash();
    task
}

/// Relabels a container as another task's (name follows the label).
fn relabel(mut container: ObservedContainer, key: &str, value: &str) -> ObservedContainer {
    container.labels.insert(key.to_string(), value.to_string());
    let label = |k: &str| container.labels.get(k).cloned().unwrap_or_default();
    container.name = format!(
        "{ENV_NAME}.{}.{}.{}",
        label("drover.job"),
        label("drover.host"),
        label("drover.task")
    );
    container.id = fake_id(&container.name);
    container
}

#[test]
fn empty_host_creates_every_task_and_pulls_the_missing_image() {
    let desired = standard();
    let plan = plan_all(&desired, &observed(vec![("app1", HostState::default())]));

    assert_eq!(
        summary(&plan),
        vec![
            row("web", "app1/0", Action::Create, "missing"),
            row("web", "app1/1", Action::Create, "missing"),
            row("worker", "app1/0", Action::Create, "missing"),
        ]
    );
    assert_eq!(
        plan.pulls,
        vec![Pull {
            host: "app1".to_string(),
            image: "busybox:1.36".to_string(),
        }],
        "one pull per image and host, however many tasks need it"
    );
    assert_eq!(plan.unchanged, 0);
    let create = &plan.changes[0];
    assert!(create.container.is_none());
    assert_eq!(
        create.desired.as_ref().map(|d| d.container_name(ENV_NAME)),
        Some("prod.web.app1.0".to_string())
    );
    assert!(
        create
            .fields
            .contains(&field("image", Value::Null, json!("busybox:1.36"))),
        "a creation lists what it creates: {:?}",
        create.fields
    );
    assert!(create
        .fields
        .contains(&field("env.DB_PASSWORD", Value::Null, json!("***"))));
}

#[test]
fn no_pull_when_the_host_has_the_image() {
    let desired = standard();
    let host = HostState {
        containers: Vec::new(),
        images: busybox_present(),
    };
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(plan.count(Action::Create), 3);
    assert_eq!(plan.pulls, Vec::new());
}

#[test]
fn a_host_as_specified_has_no_changes() {
    let desired = standard();
    let plan = plan_all(
        &desired,
        &observed(vec![
            ("app1", converged(&desired, "app1")),
            ("app2", converged(&desired, "app2")),
        ]),
    );
    assert!(plan.is_empty(), "unexpected changes:\n{plan}");
    assert_eq!(plan.unchanged, 5);
    assert_eq!(plan.to_string(), "No changes: 5 task(s) as specified.\n");
}

#[test]
fn an_exited_container_is_started_again() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0].state = "exited".to_string();
    host.containers[0].exit_code = 137;
    let id = host.containers[0].id.clone();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        (change.job.as_str(), change.host.as_str(), change.task),
        ("web", "app1", Some(0))
    );
    assert_eq!(change.action, Action::Start);
    assert_eq!(change.reason, "exited (code 137)");
    assert_eq!(
        change.container.as_ref().map(|c| c.id.as_str()),
        Some(id.as_str())
    );
    assert_eq!(change.fields, Vec::new());
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn a_paused_container_is_started_again() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[1].state = "paused".to_string();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        (change.action, change.reason.as_str()),
        (Action::Start, "paused")
    );
    assert_eq!(change.task, Some(1));
}

#[test]
fn a_dead_container_is_replaced() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0].state = "dead".to_string();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        (change.action, change.reason.as_str()),
        (Action::Replace, "dead")
    );
}

#[test]
fn a_field_changed_by_hand_replaces_the_container() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    // `docker update --memory 128m`: the label still carries the spec's hash.
    host.containers[0].config.memory = Some(128 << 20);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.action, Action::Replace);
    assert_eq!(change.reason, "changed on the host");
    assert_eq!(
        change.fields,
        vec![field("memory", json!("128m"), json!("64m"))]
    );
    assert_eq!(
        change.desired.as_ref().map(|d| d.spec_hash.as_str()),
        Some(find(&desired, "web", "app1", 0).spec_hash.as_str())
    );
    assert!(plan.pulls.is_empty(), "the image is on the host already");
}

#[test]
fn a_changed_image_in_the_spec_replaces_and_pulls() {
    let before = standard();
    let after = desired_tasks(
        &env_with_web(&WEB_TOML.replace("busybox:1.36", "busybox:1.37")),
        &secrets(OLD_PASSWORD),
    );
    let mut host = converged(&before, "app1");
    host.containers.retain(|c| c.job() == Some("web"));

    let plan = plan_all(&after, &observed(vec![("app1", host)]));
    assert_eq!(
        summary(&plan),
        vec![
            row("web", "app1/0", Action::Replace, "spec changed"),
            row("web", "app1/1", Action::Replace, "spec changed"),
            row("worker", "app1/0", Action::Create, "missing"),
        ]
    );
    assert_eq!(
        plan.changes[0].fields,
        vec![field("image", json!("busybox:1.36"), json!("busybox:1.37"))]
    );
    assert_eq!(
        plan.pulls,
        vec![Pull {
            host: "app1".to_string(),
            image: "busybox:1.37".to_string(),
        }]
    );
}

#[test]
fn a_tag_that_now_names_another_image_replaces() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    // `busybox:1.36` was pulled again and moved; the containers still run the old image.
    host.images = BTreeMap::from([(
        normalize_image_ref("busybox:1.36"),
        OTHER_IMAGE_ID.to_string(),
    )]);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(plan.count(Action::Replace), 3, "{plan}");
    let change = &plan.changes[0];
    assert_eq!(change.reason, "tag now names another image");
    assert_eq!(
        change.fields,
        vec![field(
            "image_id",
            json!("aaaaaaaaaaaa"),
            json!("bbbbbbbbbbbb")
        )]
    );
    assert!(plan.pulls.is_empty(), "the new image is on the host");
}

#[test]
fn a_changed_secret_is_masked_everywhere() {
    let before = standard();
    let after = desired_tasks(&env_with_web(WEB_TOML), &secrets(NEW_PASSWORD));
    let mut host = converged(&before, "app1");
    host.containers.retain(|c| c.job() == Some("web"));
    host.containers.truncate(1);

    let plan = plan_all(&after, &observed(vec![("app1", host)]));
    let change = &plan.changes[0];
    assert_eq!((change.action, change.task), (Action::Replace, Some(0)));
    assert_eq!(change.reason, "spec changed");
    assert_eq!(
        change.fields,
        vec![field("env.DB_PASSWORD", json!("***"), json!("***"))]
    );
    let text = plan.to_string();
    assert!(
        text.contains(r#"env.DB_PASSWORD: "***" => "***""#),
        "{text}"
    );
    assert!(
        text.contains("env.DB_PASSWORD: \"***\"\n"),
        "the create: {text}"
    );
    let json = serde_json::to_string(&plan).unwrap();
    for secret in [OLD_PASSWORD, NEW_PASSWORD] {
        assert!(!text.contains(secret), "secret in the text:\n{text}");
        assert!(!plan.render(true).contains(secret));
        assert!(!json.contains(secret), "secret in the JSON: {json}");
    }
}

#[test]
fn a_secret_dropped_from_the_spec_stays_masked() {
    let before = standard();
    let after = desired_tasks(
        &env_with_web(&WEB_TOML.replace(r#"secret_env = ["DB_PASSWORD"]"#, "")),
        &Secrets::new(),
    );
    let mut host = converged(&before, "app1");
    host.containers.retain(|c| c.job() == Some("web"));
    host.containers.truncate(1);

    let plan = plan_all(&after, &observed(vec![("app1", host)]));
    let change = &plan.changes[0];
    assert_eq!(change.action, Action::Replace);
    assert!(
        change
            .fields
            .iter()
            .any(|f| f.path == "env.DB_PASSWORD" && f.new == Value::Null),
        "the variable goes away: {:?}",
        change.fields
    );
    let text = plan.to_string();
    let json = serde_json::to_string(&plan).unwrap();
    assert!(
        !text.contains(OLD_PASSWORD),
        "the running container's secret is printed:\n{text}"
    );
    assert!(!json.contains(OLD_PASSWORD), "secret in the JSON: {json}");
}

#[test]
fn the_image_own_env_is_not_drift_but_an_extra_variable_is() {
    let desired = standard();
    let host = converged(&desired, "app1");
    assert_eq!(
        host.containers[0]
            .config
            .env
            .get("PATH")
            .map(String::as_str),
        Some("/bin"),
        "the container carries its image's PATH"
    );
    let plan = plan_all(&desired, &observed(vec![("app1", host.clone())]));
    assert!(plan.is_empty(), "the image's env is not drift:\n{plan}");

    let mut host = host;
    host.containers[0]
        .config
        .env
        .insert("DEBUG".to_string(), "1".to_string());
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.action, Action::Replace);
    assert_eq!(change.reason, "changed on the host");
    assert_eq!(
        change.fields,
        vec![field("env.DEBUG", json!("1"), Value::Null)]
    );
}

#[test]
fn an_image_variable_overridden_by_hand_is_drift() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0]
        .config
        .env
        .insert("PATH".to_string(), "/opt/bin".to_string());
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        only_change(&plan).fields,
        vec![field("env.PATH", json!("/opt/bin"), Value::Null)]
    );
}

#[test]
fn a_job_without_command_runs_the_image_command() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers.retain(|c| c.job() == Some("worker"));
    assert_eq!(
        host.containers[0].config.command,
        Some(vec!["sh".to_string()]),
        "Docker fills Cmd from the image"
    );
    let plan = plan_all(&desired, &observed(vec![("app1", host.clone())]));
    assert_eq!(plan.count(Action::Replace), 0, "{plan}");

    host.containers[0].config.command = Some(vec!["sleep".to_string(), "1".to_string()]);
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = plan
        .changes
        .iter()
        .find(|c| c.job == "worker")
        .expect("the worker differs");
    assert_eq!(change.action, Action::Replace);
    assert_eq!(
        change.fields,
        vec![field("command", json!(["sleep", "1"]), json!(["sh"]))]
    );
}

#[test]
fn duplicates_of_a_task_keep_the_running_current_one() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let keeper = host.containers[0].clone();
    assert_eq!(keeper.name, "prod.web.app1.0");

    let mut stopped_copy = keeper.clone();
    stopped_copy.id = fake_id("stopped copy");
    stopped_copy.name = "prod.web.app1.0.new-0123456789ab".to_string();
    stopped_copy.state = "exited".to_string();
    stopped_copy.created = "2024-05-02T10:00:00Z".to_string();
    let mut older_spec = keeper.clone();
    older_spec.id = fake_id("older spec");
    older_spec.name = "prod.web.app1.0.old".to_string();
    older_spec
        .labels
        .insert("drover.spec".to_string(), "0123456789ab".to_string());
    older_spec.created = "2024-05-03T10:00:00Z".to_string();
    // Put the keeper last, so input order cannot be what picks it.
    host.containers.remove(0);
    host.containers.push(stopped_copy.clone());
    host.containers.push(older_spec.clone());
    host.containers.push(keeper.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let removed: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Remove)
        .map(|c| c.container.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(
        removed,
        BTreeSet::from([stopped_copy.id.as_str(), older_spec.id.as_str()])
    );
    assert_eq!(plan.changes.len(), 2, "nothing else changes:\n{plan}");
    for change in &plan.changes {
        assert_eq!(change.reason, "duplicate container for the task");
        assert_eq!((change.job.as_str(), change.task), ("web", Some(0)));
    }
    assert_eq!(plan.unchanged, 3, "the kept container is as specified");
}

#[test]
fn containers_of_a_job_gone_from_the_spec_are_removed_only_in_full_scope() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let orphan = relabel(host.containers[0].clone(), "drover.job", "legacy");
    host.containers.push(orphan.clone());
    let observed = observed(vec![("app1", host)]);

    let plan_everything = plan_all(&desired, &observed);
    let change = only_change(&plan_everything);
    assert_eq!(
        (change.job.as_str(), change.action, change.reason.as_str()),
        ("legacy", Action::Remove, "not in the spec")
    );
    assert_eq!(
        change.container.as_ref().map(|c| c.id.as_str()),
        Some(orphan.id.as_str())
    );

    let web_only: Vec<DesiredTask> = desired.iter().filter(|d| d.job == "web").cloned().collect();
    let scope = Scope::Jobs(BTreeSet::from(["web".to_string()]));
    let plan_web = plan(&web_only, &observed, &scope, &known_hosts());
    assert!(
        plan_web.is_empty(),
        "`up web` leaves other jobs alone:\n{plan_web}"
    );
    assert_eq!(plan_web.unchanged, 2);
}

#[test]
fn a_task_past_the_instance_count_is_removed() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let extra = relabel(host.containers[1].clone(), "drover.task", "2");
    host.containers.push(extra.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        (change.job.as_str(), change.task, change.action),
        ("web", Some(2), Action::Remove)
    );
    assert_eq!(change.reason, "not in the spec");
    assert_eq!(
        change.container.as_ref().map(|c| c.id.as_str()),
        Some(extra.id.as_str())
    );
}

#[test]
fn a_container_of_another_known_host_on_the_same_engine_is_left_alone() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let neighbour = observed_from(find(&desired, "web", "app2", 0), ENV_NAME);
    host.containers.push(neighbour);
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert!(plan.is_empty(), "app2's task belongs to app2:\n{plan}");
    assert_eq!(plan.unchanged, 3);
}

#[test]
fn a_container_of_an_unknown_host_is_removed() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let stray = observed_from(
        &task_for_host(find(&desired, "web", "app1", 0), "app9"),
        ENV_NAME,
    );
    assert_eq!(stray.name, "prod.web.app9.0");
    host.containers.push(stray.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.action, Action::Remove);
    assert_eq!(change.host, "app1", "removed through the engine it is on");
    assert_eq!(
        change.container.as_ref().map(|c| c.id.as_str()),
        Some(stray.id.as_str())
    );
}

#[test]
fn hosts_sharing_an_engine_each_keep_their_own_tasks_and_remove_a_stray_once() {
    let desired = standard();
    let mut containers: Vec<ObservedContainer> =
        desired.iter().map(|d| observed_from(d, ENV_NAME)).collect();
    let stray = observed_from(
        &task_for_host(find(&desired, "web", "app1", 0), "app9"),
        ENV_NAME,
    );
    containers.push(stray.clone());
    // app1 and app2 are two entries for one engine: both list every container.
    let shared = HostState {
        containers,
        images: busybox_present(),
    };
    let plan = plan_all(
        &desired,
        &observed(vec![("app1", shared.clone()), ("app2", shared)]),
    );
    assert_eq!(plan.unchanged, 5, "{plan}");
    let removals: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Remove)
        .map(|c| c.container.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(
        removals,
        vec![stray.id.as_str()],
        "one container, one removal:\n{plan}"
    );
}

#[test]
fn nothing_is_planned_for_an_unreachable_host() {
    let desired = standard();
    let mut observed = observed(vec![("app1", converged(&desired, "app1"))]);
    observed.hosts.insert(
        "app2".to_string(),
        HostObservation::Unreachable {
            address: "tcp://10.0.0.12:2376".to_string(),
            error: "connection refused".to_string(),
        },
    );

    let plan = plan_all(&desired, &observed);
    assert_eq!(
        plan.unreachable,
        vec![UnreachableHost {
            host: "app2".to_string(),
            address: "tcp://10.0.0.12:2376".to_string(),
            error: "connection refused".to_string(),
        }]
    );
    assert!(plan.changes.is_empty(), "{plan}");
    assert!(plan.pulls.is_empty());
    assert_eq!(
        plan.to_string(),
        "! host app2 (tcp://10.0.0.12:2376) is unreachable: connection refused\n\
         No changes: 3 task(s) as specified.\n"
    );
}

#[test]
fn changes_are_ordered_by_job_host_and_task() {
    let env = load_env(&[
        ("drover.toml", DROVER_TOML),
        ("jobs/web.toml", WEB_TOML),
        ("jobs/worker.toml", WORKER_TOML),
        (
            "jobs/batch.toml",
            "image = \"busybox:1.36\"\nhosts = [\"app2\", \"app1\"]\ninstances = 11\n",
        ),
    ]);
    let desired = desired_tasks(&env, &secrets(OLD_PASSWORD));
    let legacy = relabel(
        observed_from(find(&desired, "web", "app2", 1), ENV_NAME),
        "drover.job",
        "aaa-legacy",
    );
    let mut app2 = converged(&desired, "app2");
    app2.containers.retain(|c| c.job() == Some("web"));
    app2.containers[0].state = "exited".to_string();
    app2.containers.push(legacy);
    let app1 = HostState::default();

    let plan = plan_all(
        &desired,
        &observed(vec![("app2", app2.clone()), ("app1", app1.clone())]),
    );
    let order: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{} {}/{} {}", c.job, c.host, c.task.unwrap(), c.action))
        .collect();
    let mut expected = vec!["aaa-legacy app2/1 remove".to_string()];
    expected.extend((0..11).map(|t| format!("batch app1/{t} create")));
    expected.extend((0..11).map(|t| format!("batch app2/{t} create")));
    expected.extend([
        "web app1/0 create".to_string(),
        "web app1/1 create".to_string(),
        "web app2/0 start".to_string(),
        "worker app1/0 create".to_string(),
    ]);
    assert_eq!(order, expected);

    // The order the engine lists containers in does not matter.
    app2.containers.reverse();
    let again = plan_all(&desired, &observed(vec![("app1", app1), ("app2", app2)]));
    assert_eq!(again, plan);
}

#[test]
fn the_plan_reads_as_one_line_per_change_and_a_summary() {
    let env = load_env(&[
        ("drover.toml", DROVER_TOML),
        (
            "jobs/web.toml",
            "image = \"busybox:1.36\"\nhosts = [\"app1\"]\ninstances = 3\nmemory = \"64m\"\n",
        ),
        (
            "jobs/worker.toml",
            "image = \"alpine:3.19\"\nhosts = [\"app1\"]\n",
        ),
    ]);
    let desired = desired_tasks(&env, &Secrets::new());
    let mut host = converged(&desired, "app1");
    host.containers.retain(|c| c.job() == Some("web"));
    host.containers[0].id = format!("{:0<64}", "0a0a0a0a0a0a");
    host.containers[0].config.memory = Some(128 << 20);
    host.containers[1].id = format!("{:0<64}", "1b1b1b1b1b1b");
    host.containers[1].state = "exited".to_string();
    host.containers[1].exit_code = 137;
    let mut orphan = relabel(host.containers[2].clone(), "drover.job", "old");
    orphan.id = format!("{:0<64}", "2c2c2c2c2c2c");
    orphan
        .labels
        .insert("drover.task".to_string(), "0".to_string());
    host.containers.push(orphan);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        plan.to_string(),
        r#"↓ pull    alpine:3.19 on app1
- remove  old app1/0  (2c2c2c2c2c2c, not in the spec)
~ replace web app1/0  (0a0a0a0a0a0a, changed on the host)
    memory: "128m" => "64m"
> start   web app1/1  (1b1b1b1b1b1b, exited (code 137))
+ create  worker app1/0  (missing)
    image: "alpine:3.19"
    host_files: ["/etc/localtime"]
    network: "host"
    init: true
    restart: "unless-stopped"
    stop_timeout: "30s"
    log.driver: "local"
    log.max-file: "5"
    log.max-size: "20m"
Plan: 1 to create, 1 to replace, 1 to start, 1 to remove; 1 task(s) unchanged.
"#
    );
    let colored = plan.render(true);
    assert!(colored.contains("\x1b["), "a terminal gets colors");
    assert!(!plan.to_string().contains('\x1b'), "Display has none");

    let actions: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| serde_json::to_value(c).unwrap()["action"].clone())
        .collect();
    assert_eq!(
        actions,
        vec![
            json!("remove"),
            json!("replace"),
            json!("start"),
            json!("create")
        ]
    );
}

#[test]
fn a_change_serializes_with_the_documented_keys() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0].config.memory = Some(128 << 20);
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));

    let value = serde_json::to_value(only_change(&plan)).unwrap();
    let object = value.as_object().expect("a change is an object");
    for key in ["job", "host", "task", "action", "fields"] {
        assert!(object.contains_key(key), "missing {key:?} in {value}");
    }
    assert_eq!(value["job"], json!("web"));
    assert_eq!(value["host"], json!("app1"));
    assert_eq!(value["task"], json!(0));
    assert_eq!(value["action"], json!("replace"));
    assert_eq!(
        value["fields"],
        json!([{"path": "memory", "old": "128m", "new": "64m"}])
    );

    let whole = serde_json::to_value(&plan).unwrap();
    assert_eq!(whole["changes"].as_array().map(Vec::len), Some(1));
}
