//! `plan()` against hand-built observations: what `diff` shows and `up` does
//! for each way a host can differ from the spec. No Docker: every container
//! here is built the way the engine reads one back after creating it.

mod support;

use std::collections::BTreeSet;

use drover_plan::{
    labels, lock_name, stop_mark_name, Action, DesiredTask, EnvValue, FieldChange, HostState,
    ImageIndex, ObservedContainer, Phase, Pull, Secrets, Step, TaskKey, UnreachableHost,
};
use serde_json::{json, Value};

use support::*;

#[test]
fn an_empty_host_gets_every_task_created_and_the_missing_image_pulled() {
    let desired = standard();
    let plan = plan_all(&desired, &observed(vec![("app1", HostState::default())]));

    assert_eq!(
        summary(&plan),
        [
            "web app1/0 create (missing)",
            "web app1/1 create (missing)",
            "worker app1/0 create (missing)",
        ]
    );
    assert_eq!(
        plan.pulls,
        [Pull {
            host: "app1".to_string(),
            image: "busybox:1.36".to_string(),
            pullable: true,
        }],
        "one pull per image and host, however many tasks need it"
    );
    assert_eq!(plan.unchanged, 0);
    let create = &plan.changes[0];
    assert_eq!(target_id(create), None, "nothing exists to act on");
    match &create.step {
        Step::Create { desired } => {
            assert_eq!(desired.container_name(ENV_NAME), "prod.web.app1.0")
        }
        other => panic!("expected a create, got {other:?}"),
    }
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
fn a_host_that_has_the_image_pulls_nothing() {
    let desired = standard();
    let host = HostState {
        containers: Vec::new(),
        images: images(&["busybox:1.36"]),
    };
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(plan.count(Action::Create), 3);
    assert_eq!(plan.pulls, []);
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
fn an_exited_container_is_started_again_with_its_exit_code_as_the_reason() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0] = exited(host.containers[0].clone(), 137);
    let id = host.containers[0].id.clone();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.name(), "web app1/0");
    assert_eq!(change.action(), Action::Start);
    assert!(matches!(change.step, Step::Start { .. }), "{change:?}");
    assert_eq!(change.reason, "exited (code 137)");
    assert_eq!(target_id(change), Some(id.as_str()));
    assert_eq!(change.fields, []);
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn a_container_killed_for_memory_is_started_again_saying_so() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0] = exited(host.containers[0].clone(), 137);
    host.containers[0].runs.oom_killed = true;
    host.containers[1].runs.state = "created".parse().expect("a state");

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        summary(&plan),
        [
            "web app1/0 start (killed for exceeding its memory limit (exit code 137))",
            "web app1/1 start (created but never started)",
        ]
    );
}

#[test]
fn a_paused_container_is_started_again() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[1].runs.state = "paused".parse().expect("a state");

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.name(), "web app1/1");
    assert!(matches!(change.step, Step::Start { .. }), "{change:?}");
    assert_eq!(change.reason, "paused");
}

#[test]
fn a_dead_container_is_replaced() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0].runs.state = "dead".parse().expect("a state");

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(change.reason, "dead");
}

#[test]
fn a_field_changed_by_hand_replaces_the_container_and_shows_the_field() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    // `docker update --memory 128m --memory-swap 128m`: the label still carries the spec's hash.
    host.containers[0].config.memory = Some(128 << 20);
    host.containers[0].config.resources.memory_swap = 128 << 20;

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.reason, "changed on the host");
    assert_eq!(
        change.fields,
        [
            field("memory", json!("128m"), json!("64m")),
            field("memory_swap", json!("128m"), json!("64m")),
        ]
    );
    match &change.step {
        Step::Replace { desired: want, .. } => {
            assert_eq!(want, find(&desired, "web", "app1", 0))
        }
        other => panic!("expected a replace, got {other:?}"),
    }
    assert_eq!(plan.pulls, [], "the image is on the host already");
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
        [
            "web app1/0 replace (spec changed)",
            "web app1/1 replace (spec changed)",
            "worker app1/0 create (missing)",
        ]
    );
    assert_eq!(
        plan.changes[0].fields,
        [field("image", json!("busybox:1.36"), json!("busybox:1.37"))]
    );
    assert_eq!(
        plan.pulls,
        [Pull {
            host: "app1".to_string(),
            image: "busybox:1.37".to_string(),
            pullable: true,
        }]
    );
}

#[test]
fn a_tag_that_now_names_another_image_replaces() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    // `busybox:1.36` was pulled again and moved; the containers still run the old image.
    host.images = ImageIndex::default();
    host.images
        .add(OTHER_IMAGE_ID, &["busybox:1.36".to_string()], &[]);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(plan.count(Action::Replace), 3, "{plan}");
    let change = &plan.changes[0];
    assert_eq!(change.reason, "tag now names another image");
    assert_eq!(
        change.fields,
        [field(
            "image_id",
            json!("aaaaaaaaaaaa"),
            json!("bbbbbbbbbbbb")
        )]
    );
    assert_eq!(plan.pulls, [], "the new image is on the host");
}

#[test]
fn a_changed_secret_is_masked_in_the_text_and_the_json() {
    let before = standard();
    let after = desired_tasks(&env_with_web(WEB_TOML), &secrets(NEW_PASSWORD));
    let mut host = converged(&before, "app1");
    host.containers.retain(|c| c.job() == Some("web"));
    host.containers.truncate(1);

    let plan = plan_all(&after, &observed(vec![("app1", host)]));
    let change = &plan.changes[0];
    assert_eq!(change.name(), "web app1/0");
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(change.reason, "spec changed");
    assert_eq!(
        change.fields,
        [field("env.DB_PASSWORD", json!("***"), json!("***"))]
    );
    let text = plan.to_string();
    assert!(
        text.contains("    env.DB_PASSWORD: \"***\" => \"***\"\n"),
        "the replace: {text}"
    );
    assert!(
        text.contains("    env.DB_PASSWORD: \"***\"\n"),
        "the create: {text}"
    );
    let json = serde_json::to_value(&plan).expect("a plan serializes");
    assert_eq!(
        json["changes"][0]["fields"],
        json!([{"path": "env.DB_PASSWORD", "old": "***", "new": "***"}])
    );
    let output = every_output(&plan);
    for secret in [OLD_PASSWORD, NEW_PASSWORD] {
        assert!(!output.contains(secret), "a secret is shown:\n{output}");
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
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(
        change.fields,
        [field("env.DB_PASSWORD", json!("***"), Value::Null)],
        "the variable goes away, its value unseen"
    );
    let output = every_output(&plan);
    assert!(
        !output.contains(OLD_PASSWORD),
        "the running container's secret is shown:\n{output}"
    );
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
            .map(|v| v.expose()),
        Some("/bin"),
        "the container carries its image's PATH"
    );
    let plan = plan_all(&desired, &observed(vec![("app1", host.clone())]));
    assert!(plan.is_empty(), "the image's env is not drift:\n{plan}");

    let mut host = host;
    host.containers[0]
        .config
        .env
        .insert("DEBUG".to_string(), EnvValue::Plain("1".to_string()));
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(change.reason, "changed on the host");
    assert_eq!(change.fields, [field("env.DEBUG", json!("1"), Value::Null)]);
}

#[test]
fn an_image_variable_overridden_by_hand_is_drift() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0]
        .config
        .env
        .insert("PATH".to_string(), EnvValue::Plain("/opt/bin".to_string()));
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        only_change(&plan).fields,
        [field("env.PATH", json!("/opt/bin"), Value::Null)]
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
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(
        change.fields,
        [field("command", json!(["sleep", "1"]), json!(["sh"]))]
    );
}

#[test]
fn duplicates_of_a_task_keep_the_running_current_one_and_remove_the_others() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let keeper = host.containers.remove(0);
    assert_eq!(keeper.name, "prod.web.app1.0");

    let mut stopped_copy = exited(renamed(&keeper, "prod.web.app1.0.new-0123456789ab"), 0);
    stopped_copy.created = drover_plan::time::parse("2024-05-02T10:00:00Z");
    let mut older_spec = renamed(&keeper, "prod.web.app1.0.old");
    older_spec
        .labels
        .insert(labels::SPEC.to_string(), "0123456789ab".to_string());
    older_spec.created = drover_plan::time::parse("2024-05-03T10:00:00Z");
    // The keeper last, so input order cannot be what picks it.
    host.containers.push(stopped_copy.clone());
    host.containers.push(older_spec.clone());
    host.containers.push(keeper);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        removed_ids(&plan),
        BTreeSet::from([stopped_copy.id.clone(), older_spec.id.clone()])
    );
    assert_eq!(plan.changes.len(), 2, "nothing else changes:\n{plan}");
    for change in &plan.changes {
        assert_eq!(change.reason, "duplicate container for the task");
        assert_eq!(change.name(), "web app1/0");
    }
    assert_eq!(plan.unchanged, 3, "the kept container is as specified");
}

#[test]
fn containers_of_a_job_gone_from_the_spec_are_removed_only_in_full_scope() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let orphan = relabel(host.containers[0].clone(), labels::JOB, "legacy");
    host.containers.push(orphan.clone());
    let observed = observed(vec![("app1", host)]);

    let plan_everything = plan_all(&desired, &observed);
    let change = only_change(&plan_everything);
    assert_eq!(
        summary(&plan_everything),
        ["legacy app1/0 remove (not in the spec)"]
    );
    assert_eq!(target_id(change), Some(orphan.id.as_str()));

    let plan_web = plan_jobs(&desired, &["web"], &observed);
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
    let extra = relabel(host.containers[1].clone(), labels::TASK, "2");
    host.containers.push(extra.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        summary(&plan),
        ["web app1/2 remove (task beyond the job's instances)"]
    );
    assert_eq!(target_id(change), Some(extra.id.as_str()));
}

#[test]
fn a_container_without_a_readable_task_is_removed_when_its_job_is_in_scope() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let mut no_task = renamed(&host.containers[0], "prod.web.app1.x");
    no_task
        .labels
        .insert(labels::TASK.to_string(), "x".to_string());
    let mut no_job = renamed(&host.containers[0], "prod.nothing");
    no_job.labels.remove(labels::JOB);
    host.containers.extend([no_task.clone(), no_job.clone()]);
    let observed = observed(vec![("app1", host)]);

    let plan = plan_all(&desired, &observed);
    assert_eq!(
        summary(&plan),
        [
            "? app1/? remove (no task label)",
            "web app1/? remove (no task label)"
        ]
    );
    assert_eq!(
        removed_ids(&plan),
        BTreeSet::from([no_task.id.clone(), no_job.id])
    );

    let plan_web = plan_jobs(&desired, &["web"], &observed);
    assert_eq!(
        removed_ids(&plan_web),
        BTreeSet::from([no_task.id]),
        "a container of no job is left to a full `up`"
    );
}

#[test]
fn a_container_of_another_known_host_on_the_same_engine_is_left_alone() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers
        .push(observed_from(find(&desired, "web", "app2", 0)));
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert!(plan.is_empty(), "app2's task belongs to app2:\n{plan}");
    assert_eq!(plan.unchanged, 3);
}

#[test]
fn a_container_of_an_unknown_host_is_removed_through_the_engine_it_is_on() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let stray = observed_from(&task_for_host(find(&desired, "web", "app1", 0), "app9"));
    assert_eq!(stray.name, "prod.web.app9.0");
    host.containers.push(stray.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(change.action(), Action::Remove);
    assert_eq!(change.host, "app1");
    assert_eq!(target_id(change), Some(stray.id.as_str()));
}

/// Regression: a host renamed in drover.toml (`app0` → `app1`) leaves its
/// old container beside the new one, and the engine lists `prod.web.app0.0`
/// first. The task's own container must stay; the leftover must go.
#[test]
fn a_leftover_of_an_unknown_host_never_displaces_the_task_own_container() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let own = host.containers[0].clone();
    let leftover = observed_from(&task_for_host(find(&desired, "web", "app1", 0), "app0"));
    assert_eq!(leftover.name, "prod.web.app0.0");
    host.containers.sort_by(|a, b| a.name.cmp(&b.name));
    host.containers.insert(0, leftover.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(
        removed_ids(&plan),
        BTreeSet::from([leftover.id.clone()]),
        "the leftover goes:\n{plan}"
    );
    assert!(
        plan.changes.iter().all(|c| target_id(c) != Some(&own.id)),
        "the task's own container, as specified, is left alone:\n{plan}"
    );
    assert_eq!(plan.changes.len(), 1, "{plan}");
    assert_eq!(plan.unchanged, 3, "{plan}");
}

#[test]
fn hosts_sharing_an_engine_each_keep_their_own_tasks_and_remove_a_stray_once() {
    let desired = standard();
    let mut containers: Vec<ObservedContainer> = desired.iter().map(observed_from).collect();
    let stray = observed_from(&task_for_host(find(&desired, "web", "app1", 0), "app9"));
    containers.push(stray.clone());
    // app1 and app2 are two entries for one engine: both list every container.
    let shared = HostState {
        containers,
        images: images(&["busybox:1.36"]),
    };
    let plan = plan_all(
        &desired,
        &observed(vec![("app1", shared.clone()), ("app2", shared)]),
    );
    assert_eq!(plan.unchanged, 5, "{plan}");
    assert_eq!(plan.changes.len(), 1, "one container, one removal:\n{plan}");
    assert_eq!(removed_ids(&plan), BTreeSet::from([stray.id]));
}

#[test]
fn nothing_is_planned_for_an_unreachable_host_and_it_is_reported() {
    let desired = standard();
    let mut observed = observed(vec![("app1", converged(&desired, "app1"))]);
    unreachable(&mut observed, "app2");

    let plan = plan_all(&desired, &observed);
    assert_eq!(
        plan.unreachable,
        [UnreachableHost {
            host: "app2".to_string(),
            address: "tcp://10.0.0.12:2376".to_string(),
            error: "connection refused".to_string(),
        }]
    );
    assert!(plan.changes.is_empty(), "{plan}");
    assert_eq!(plan.pulls, []);
    assert_eq!(
        plan.to_string(),
        "! host app2 (tcp://10.0.0.12:2376) is unreachable: connection refused\n\
         No changes: 3 task(s) as specified.\n"
    );
}

#[test]
fn changes_are_ordered_by_job_host_and_task_whatever_the_engine_order() {
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
        observed_from(find(&desired, "web", "app2", 1)),
        labels::JOB,
        "aaa-legacy",
    );
    let mut app2 = converged(&desired, "app2");
    app2.containers.retain(|c| c.job() == Some("web"));
    app2.containers[0] = exited(app2.containers[0].clone(), 0);
    app2.containers.push(legacy);
    let app1 = HostState::default();

    let plan = plan_all(
        &desired,
        &observed(vec![("app2", app2.clone()), ("app1", app1.clone())]),
    );
    let order: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{} {}", c.name(), c.action()))
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

    app2.containers.reverse();
    let again = plan_all(&desired, &observed(vec![("app1", app1), ("app2", app2)]));
    assert_eq!(again, plan);
}

/// Gives a container a readable ID, so the text's short IDs can be written out.
fn with_id(mut container: ObservedContainer, prefix: &str) -> ObservedContainer {
    container.id = format!("{prefix:0<64}");
    container
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
    let web: Vec<DesiredTask> = of_job(&desired, "web");
    let mut containers: Vec<ObservedContainer> = web.iter().map(observed_from).collect();
    containers[0] = with_id(containers[0].clone(), "0a0a0a0a0a0a");
    containers[0].config.memory = Some(128 << 20);
    containers[1] = with_id(exited(containers[1].clone(), 137), "1b1b1b1b1b1b");
    let orphan = with_id(
        relabel(
            relabel(containers[2].clone(), labels::JOB, "old"),
            labels::TASK,
            "0",
        ),
        "2c2c2c2c2c2c",
    );
    containers.push(orphan);
    let host = HostState {
        containers,
        images: images(&["busybox:1.36"]),
    };

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
    assert_eq!(plan.render(false), plan.to_string());
    let colored = plan.render(true);
    assert!(colored.contains("\x1b["), "a terminal gets colors");
    assert!(!plan.to_string().contains('\x1b'), "Display has none");

    let actions: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| serde_json::to_value(c).expect("a change serializes")["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [
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

    let value = serde_json::to_value(only_change(&plan)).expect("a change serializes");
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

    let whole = serde_json::to_value(&plan).expect("a plan serializes");
    assert_eq!(whole["changes"].as_array().map(Vec::len), Some(1));
}

// Container names: `ENV.JOB.HOST.TASK`, and what is under another name.

#[test]
fn containers_are_named_env_job_host_task_and_markers_after_the_job_and_host() {
    let key = TaskKey::new("web", "app1", 0);
    assert_eq!(key.container_name(ENV_NAME), "prod.web.app1.0");
    assert_eq!(
        key.kept_name(ENV_NAME, &fake_id("x")),
        format!("prod.web.app1.0.kept-{}", &fake_id("x")[..12])
    );
    assert_eq!(lock_name(ENV_NAME, "web", "app1"), "prod.web.app1.lock");
    assert_eq!(
        stop_mark_name(ENV_NAME, "web", "app1"),
        "prod.web.app1.stopped"
    );
}

#[test]
fn a_task_container_renamed_by_hand_is_renamed_back() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0] = with_id(renamed(&host.containers[0], "my-web"), "3d3d3d3d3d3d");

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    match &change.step {
        Step::Rename { current, to, start } => {
            assert_eq!(current.short_id(), "3d3d3d3d3d3d");
            assert_eq!(to, "prod.web.app1.0");
            assert!(!start, "it runs already");
        }
        other => panic!("expected a rename, got {other:?}"),
    }
    assert_eq!(
        change.fields,
        [field("name", json!("my-web"), json!("prod.web.app1.0"))]
    );
    // `diff --json` names it for what it is.
    assert_eq!(change.action(), Action::Rename);
    assert_eq!(
        plan.to_string(),
        r#"~ rename  web app1/0  (3d3d3d3d3d3d, renamed)
    name: "my-web" => "prod.web.app1.0"
Plan: 1 to rename; 2 task(s) unchanged.
"#
    );
    let json = serde_json::to_value(change).expect("a change serializes");
    assert_eq!(json["action"], json!("rename"));
    assert_eq!(json["step"], json!("rename"));
}

#[test]
fn a_leftover_under_another_name_that_exited_is_renamed_back_and_started() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let leftover = exited(
        renamed(&host.containers[0], "prod.web.app1.0.new-abc123"),
        0,
    );
    host.containers[0] = leftover.clone();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    match &change.step {
        Step::Rename { current, to, start } => {
            assert_eq!(current.id, leftover.id);
            assert_eq!(to, "prod.web.app1.0");
            assert!(start, "a stopped task is started too");
        }
        other => panic!("expected a rename, got {other:?}"),
    }
    assert_eq!(change.step.verb(), "rename");
    assert_eq!(
        change.fields,
        [field(
            "name",
            json!("prod.web.app1.0.new-abc123"),
            json!("prod.web.app1.0")
        )]
    );
}

#[test]
fn a_task_of_a_job_stopped_by_drover_is_renamed_back_but_not_started() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0] = exited(
        renamed(&host.containers[0], "prod.web.app1.0.new-abc123"),
        143,
    );
    host.containers[1] = exited(host.containers[1].clone(), 143);
    host.containers.push(stop_mark("web", "app1"));

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    match &only_change(&plan).step {
        Step::Rename { to, start, .. } => {
            assert_eq!(to, "prod.web.app1.0");
            assert!(!start, "`drover stop` stopped it: it stays stopped");
        }
        other => panic!("expected a rename, got {other:?}"),
    }
}

#[test]
fn a_misnamed_container_that_also_differs_from_the_spec_is_replaced() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let mut misnamed = renamed(&host.containers[0], "my-web");
    misnamed.config.memory = Some(128 << 20);
    misnamed.config.resources.memory_swap = 128 << 20;
    host.containers[0] = misnamed.clone();

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert!(matches!(change.step, Step::Replace { .. }), "{change:?}");
    assert_eq!(target_id(change), Some(misnamed.id.as_str()));
    assert_eq!(change.reason, "changed on the host");
    assert_eq!(
        change.fields,
        [
            field("memory", json!("128m"), json!("64m")),
            field("memory_swap", json!("128m"), json!("64m")),
            field("name", json!("my-web"), json!("prod.web.app1.0")),
        ]
    );
}

#[test]
fn a_stray_beside_the_own_named_container_is_removed_as_a_duplicate() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let stray = renamed(&host.containers[0], "prod.web.app1.0.new-abc123");
    host.containers.push(stray.clone());

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    assert_eq!(
        summary(&plan),
        ["web app1/0 remove (duplicate container for the task)"]
    );
    assert_eq!(target_id(change), Some(stray.id.as_str()));
}

// Kept generations: what rollouts set aside for `rollback`.

#[test]
fn kept_generations_are_never_changed_or_removed() {
    let desired = standard();
    let old_spec = desired_tasks(
        &env_with_web(&WEB_TOML.replace("64m", "32m")),
        &secrets(OLD_PASSWORD),
    );
    let mut host = converged(&desired, "app1");
    // Of a task in the spec, of a task past the instance count, and of a job gone from the spec.
    let mut beyond = find(&old_spec, "web", "app1", 1).clone();
    beyond.key.task = 5;
    let mut gone = find(&old_spec, "worker", "app1", 0).clone();
    gone.key.job = "legacy".to_string();
    let kept_generations = [
        kept(find(&old_spec, "web", "app1", 0), "2024-04-01T10:00:00Z"),
        kept(&beyond, "2024-04-01T10:00:00Z"),
        kept(&gone, "2024-04-01T10:00:00Z"),
    ];
    assert!(kept_generations[0]
        .name
        .starts_with("prod.web.app1.0.kept-"));
    host.containers.extend(kept_generations);

    let plan = plan_all(&desired, &observed(vec![("app1", host.clone())]));
    assert!(plan.is_empty(), "kept generations stay:\n{plan}");
    assert_eq!(plan.unchanged, 3);

    let plan_web = plan_jobs(&desired, &["web"], &observed(vec![("app1", host)]));
    assert!(plan_web.is_empty(), "kept generations stay:\n{plan_web}");
}

#[test]
fn a_missing_task_gets_its_kept_generation_of_the_same_spec_back_by_rename() {
    let desired = standard();
    let want = find(&desired, "web", "app1", 0);
    let other_spec = desired_tasks(
        &env_with_web(&WEB_TOML.replace("64m", "32m")),
        &secrets(OLD_PASSWORD),
    );
    let mut host = converged(&desired, "app1");
    host.containers.retain(|c| c.name != "prod.web.app1.0");
    let older = kept(want, "2024-04-01T10:00:00Z");
    let newest_of_the_spec = kept(want, "2024-04-20T10:00:00Z");
    let of_another_spec = kept(find(&other_spec, "web", "app1", 0), "2024-04-30T10:00:00Z");
    host.containers.extend([
        older.clone(),
        newest_of_the_spec.clone(),
        of_another_spec.clone(),
    ]);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let change = only_change(&plan);
    match &change.step {
        Step::Rename { current, to, start } => {
            assert_eq!(current.id, newest_of_the_spec.id);
            assert_eq!(to, "prod.web.app1.0");
            assert!(start, "a kept generation is stopped: it is started");
        }
        other => panic!("expected a rename, got {other:?}"),
    }
    assert_eq!(change.reason, "kept generation of this spec");
    assert_eq!(plan.pulls, []);
}

#[test]
fn a_kept_generation_of_another_spec_does_not_stand_in_for_a_missing_task() {
    let desired = standard();
    let other_spec = desired_tasks(
        &env_with_web(&WEB_TOML.replace("64m", "32m")),
        &secrets(OLD_PASSWORD),
    );
    let mut host = converged(&desired, "app1");
    host.containers.retain(|c| c.name != "prod.web.app1.0");
    host.containers.push(kept(
        find(&other_spec, "web", "app1", 0),
        "2024-04-30T10:00:00Z",
    ));

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert_eq!(summary(&plan), ["web app1/0 create (missing)"]);
}

// drover's marker containers: locks and stop marks.

#[test]
fn locks_and_stop_marks_are_never_removed_even_in_full_scope() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers.extend([
        lock("web", "app1", "deploy freeze"),
        lock("legacy", "app1", "migrating"),
        stop_mark("legacy", "app1"),
        lock("web", "app9", "a host since dropped"),
    ]);
    let observed = observed(vec![("app1", host)]);

    let plan = plan_all(&desired, &observed);
    assert!(plan.is_empty(), "markers are not tasks:\n{plan}");
    assert_eq!(plan.unchanged, 3);
    let plan_web = plan_jobs(&desired, &["web"], &observed);
    assert!(plan_web.is_empty(), "markers are not tasks:\n{plan_web}");
}

#[test]
fn a_job_stopped_by_drover_stop_stays_stopped_only_where_it_was_stopped() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    for c in app1
        .containers
        .iter_mut()
        .filter(|c| c.job() == Some("web"))
    {
        *c = exited(c.clone(), 143);
    }
    app1.containers.push(stop_mark("web", "app1"));
    let mut app2 = converged(&desired, "app2");
    app2.containers[0] = with_id(exited(app2.containers[0].clone(), 143), "4e4e4e4e4e4e");

    let plan = plan_all(&desired, &observed(vec![("app1", app1), ("app2", app2)]));
    assert_eq!(plan.stopped, 2);
    assert_eq!(plan.unchanged, 4);
    assert_eq!(
        plan.to_string(),
        r#"> start   web app2/0  (4e4e4e4e4e4e, exited (code 143))
Plan: 1 to start; 4 task(s) unchanged (2 stopped by `drover stop`).
"#
    );
}

// Images: found by tag, by digest and by ID.

const DIGEST: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

/// The tasks of a `web` job whose image is `image`.
fn web_with_image(image: &str) -> Vec<DesiredTask> {
    of_job(
        &desired_tasks(
            &env_with_web(&WEB_TOML.replace("busybox:1.36", image)),
            &secrets(OLD_PASSWORD),
        ),
        "web",
    )
}

fn host_with(index: ImageIndex) -> HostState {
    HostState {
        containers: Vec::new(),
        images: index,
    }
}

#[test]
fn an_image_named_by_digest_is_found_by_its_repo_digest() {
    let desired = web_with_image(&format!("busybox:1.36@{DIGEST}"));
    let mut present = ImageIndex::default();
    present.add(
        IMAGE_ID,
        &["busybox:1.36".to_string()],
        &[format!("busybox@{DIGEST}")],
    );
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(present))]),
    );
    assert_eq!(plan.count(Action::Create), 2);
    assert_eq!(plan.pulls, [], "the digest is on the host");

    // The tag alone is not the content the digest names.
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(images(&["busybox:1.36"])))]),
    );
    assert_eq!(
        plan.pulls,
        [Pull {
            host: "app1".to_string(),
            image: format!("busybox:1.36@{DIGEST}"),
            pullable: true,
        }]
    );
}

#[test]
fn an_image_named_by_id_is_found_by_its_id() {
    let desired = web_with_image(IMAGE_ID);
    let mut present = ImageIndex::default();
    present.add(IMAGE_ID, &[], &[]);
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(present))]),
    );
    assert_eq!(plan.count(Action::Create), 2);
    assert_eq!(plan.pulls, [], "the image ID is on the host");
}

#[test]
fn an_absent_image_id_is_a_pull_that_cannot_be_made() {
    let desired = web_with_image(OTHER_IMAGE_ID);
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(images(&["busybox:1.36"])))]),
    );
    assert_eq!(
        plan.pulls,
        [Pull {
            host: "app1".to_string(),
            image: OTHER_IMAGE_ID.to_string(),
            pullable: false,
        }]
    );
    let first_line = plan.to_string().lines().next().map(str::to_string);
    assert_eq!(
        first_line.as_deref(),
        Some(
            "↓ pull    sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb on app1 \
             (an image ID cannot be pulled: load the image on the host, or name it by tag)"
        )
    );
}

// Resources set by hand with `docker update`.

#[test]
fn resources_set_by_hand_are_drift() {
    type Edit = fn(&mut ObservedContainer);
    let cases: [(&str, Edit, Vec<FieldChange>); 5] = [
        (
            "docker update --cpus 1.5",
            |c| c.config.resources.nano_cpus = 1_500_000_000,
            vec![field("cpus", json!(1.5), Value::Null)],
        ),
        (
            "docker update --memory-reservation 32m",
            |c| c.config.resources.memory_reservation = 32 << 20,
            vec![field("memory_reservation", json!(32 << 20), Value::Null)],
        ),
        (
            "docker update --pids-limit 100",
            |c| c.config.resources.pids_limit = 100,
            vec![field("pids_limit", json!(100), Value::Null)],
        ),
        (
            "docker update --memory-swap 128m",
            |c| c.config.resources.memory_swap = 128 << 20,
            vec![field("memory_swap", json!("128m"), json!("64m"))],
        ),
        (
            "docker update --restart always",
            |c| c.config.restart = "always".to_string(),
            vec![field("restart", json!("always"), json!("unless-stopped"))],
        ),
    ];
    let desired = standard();
    for (command, edit, fields) in cases {
        let mut host = converged(&desired, "app1");
        edit(&mut host.containers[0]);
        let plan = plan_all(&desired, &observed(vec![("app1", host)]));
        assert_eq!(plan.changes.len(), 1, "`{command}`:\n{plan}");
        let change = &plan.changes[0];
        assert!(
            matches!(change.step, Step::Replace { .. }),
            "`{command}`: {change:?}"
        );
        assert_eq!(change.reason, "changed on the host", "`{command}`");
        assert_eq!(change.fields, fields, "`{command}`");
    }
}

#[test]
fn a_memory_swap_of_minus_one_from_a_host_without_swap_accounting_is_not_drift() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    for c in &mut host.containers {
        c.config.resources.memory_swap = -1;
    }
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.unchanged, 3);
}

// Scope.

#[test]
fn up_of_one_job_removes_it_from_a_host_it_no_longer_lists_and_nothing_else() {
    let before = standard();
    let after = desired_tasks(
        &env_with_web(&WEB_TOML.replace(r#"["app1", "app2"]"#, r#"["app1"]"#)),
        &secrets(OLD_PASSWORD),
    );
    let mut app1 = converged(&after, "app1");
    app1.containers[2] = exited(app1.containers[2].clone(), 1);
    assert_eq!(app1.containers[2].job(), Some("worker"));
    let mut app2 = converged(&before, "app2");
    let orphan = relabel(app2.containers[0].clone(), labels::JOB, "legacy");
    app2.containers.push(orphan);
    let web_on_app2: BTreeSet<String> = app2
        .containers
        .iter()
        .filter(|c| c.job() == Some("web"))
        .map(|c| c.id.clone())
        .collect();

    let plan = plan_jobs(
        &after,
        &["web"],
        &observed(vec![("app1", app1), ("app2", app2)]),
    );
    assert_eq!(
        summary(&plan),
        [
            "web app2/0 remove (job web no longer runs on host app2)",
            "web app2/1 remove (job web no longer runs on host app2)",
        ]
    );
    assert_eq!(removed_ids(&plan), web_on_app2);
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn restart_on_failure_0_matches_what_the_engine_reports_back() {
    let desired = desired_tasks(
        &env_with_web(&format!("{WEB_TOML}restart = \"on-failure:0\"\n")),
        &secrets(OLD_PASSWORD),
    );
    let want = find(&desired, "web", "app1", 0);
    assert_eq!(want.config.restart, "on-failure");

    let mut host = converged(&desired, "app1");
    // The engine keeps the name "on-failure" and MaximumRetryCount 0, and
    // drover reads that back as plain "on-failure".
    for c in host
        .containers
        .iter_mut()
        .filter(|c| c.job() == Some("web"))
    {
        c.config.restart = "on-failure".to_string();
    }
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert!(plan.is_empty(), "{plan}");
}

/// Regression (issue 12, case 1): a host renamed (`app0` → `app1`) and
/// renamed back. The rollout that moved a task to the new name set its old
/// container aside under the new task's kept name, still labelled for the
/// old host; it was then taken for a duplicate of the task, removed with
/// the rollout's first step, and `diff` never came back clean.
#[test]
fn a_kept_generation_labelled_for_a_renamed_host_stays_a_kept_generation() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    let old = task_for_host(find(&desired, "web", "app1", 0), "app0");
    let mut aside = kept(&old, "2024-04-01T10:00:00Z");
    aside.name = find(&desired, "web", "app1", 0)
        .key
        .kept_name(ENV_NAME, &aside.id);
    assert!(aside.name.starts_with("prod.web.app1.0.kept-"));
    host.containers.push(aside);

    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    assert!(plan.changes.is_empty(), "{plan}");
    assert_eq!(plan.unchanged, 3, "{plan}");
}

/// Regression (issue 12, case 2, a neighbour): a job moved to a host that
/// does not answer. Nothing could be created there, and the removal of the
/// job's serving tasks on the host it left ran all the same: no task of the
/// job served anywhere.
#[test]
fn a_job_moved_to_a_host_that_cannot_be_seen_keeps_serving_where_it_was() {
    let before = standard();
    let moved = desired_tasks(
        &env_with_web(&WEB_TOML.replace(r#"hosts = ["app1", "app2"]"#, r#"hosts = ["app2"]"#)),
        &secrets(OLD_PASSWORD),
    );
    let app1 = converged(&before, "app1");

    let mut hidden = observed(vec![("app1", app1.clone())]);
    unreachable(&mut hidden, "app2");
    let plan = plan_all(&moved, &hidden);
    assert!(
        plan.changes.iter().all(|c| c.job != "web"),
        "web's tasks on app1 stay while app2 cannot be seen:\n{plan}"
    );
    // Left out by `--host app1`, app2 cannot be seen either.
    let plan = plan_all(&moved, &observed(vec![("app1", app1.clone())]));
    assert!(plan.changes.iter().all(|c| c.job != "web"), "{plan}");

    // Seen, the move goes ahead: the new tasks first, the old ones retired after.
    let seen = observed(vec![("app1", app1), ("app2", HostState::default())]);
    let plan = plan_all(&moved, &seen);
    let web: Vec<(String, Action, Phase)> = plan
        .changes
        .iter()
        .filter(|c| c.job == "web")
        .map(|c| (c.host.clone(), c.action(), c.phase))
        .collect();
    assert_eq!(
        web,
        [
            ("app1".to_string(), Action::Remove, Phase::Retire),
            ("app1".to_string(), Action::Remove, Phase::Retire),
            ("app2".to_string(), Action::Create, Phase::Now),
            ("app2".to_string(), Action::Create, Phase::Now),
        ],
        "{plan}"
    );
}

#[test]
fn one_off_containers_of_a_job_are_no_task_and_up_leaves_them_alone() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    for (kind, id) in [
        (drover_plan::OneOffKind::Run, "1a2b3c4d"),
        (drover_plan::OneOffKind::Release, "5e6f7a8b"),
    ] {
        // Made from a task's configuration, without the task label.
        let mut c = observed_from(find(&desired, "web", "app1", 0));
        c.name = kind.container_name(ENV_NAME, "web", "app1", id);
        c.id = fake_id(&c.name);
        c.labels.remove(labels::TASK);
        c.labels.remove(labels::SPEC);
        c.labels
            .insert(labels::ROLE.to_string(), kind.role().to_string());
        assert_eq!(
            c.role(ENV_NAME),
            drover_plan::Role::OneOff {
                job: "web".to_string(),
                host: "app1".to_string(),
                kind
            }
        );
        app1.containers.push(c);
    }
    let plan = plan_all(&desired, &observed(vec![("app1", app1)]));
    assert!(plan.changes.is_empty(), "{}", plan);
    assert_eq!(plan.unchanged, 3);
}

/// Regression (review): a rollout interrupted right after starting a task's
/// new container left it running, its health check not yet passed. `diff`
/// counted it unchanged, and the next `up` took the job's other task down
/// while this one never proved itself: no task served. A task not proven
/// is proven first, in the phase that takes nothing down, so a failure
/// stops the job's rollout before anything else goes down.
#[test]
fn a_running_task_whose_health_check_has_not_passed_is_proven_before_the_rollout() {
    let desired = standard();
    let mut host = converged(&desired, "app1");
    host.containers[0].runs.health = drover_plan::Health::from_engine("starting");
    // The other task of web is to be replaced.
    host.containers[1].config.env.clear();
    let plan = plan_all(&desired, &observed(vec![("app1", host)]));
    let web: Vec<(Option<u32>, Action, Phase)> = plan
        .changes
        .iter()
        .filter(|c| c.job == "web")
        .map(|c| (c.task, c.action(), c.phase))
        .collect();
    assert_eq!(
        web,
        [
            (Some(0), Action::Start, Phase::Now),
            (Some(1), Action::Replace, Phase::Rollout),
        ],
        "{plan}"
    );
    assert!(
        summary(&plan).contains(
            &"web app1/0 start (running, but its health check has not passed since it started)"
                .to_string()
        ),
        "{plan}"
    );
}
