//! The plans of the commands that act on a job as it runs: `down`,
//! `rollback`, `restart`, `stop` and `start`.

mod support;

use std::collections::BTreeSet;

use drover_plan::ops::{plan_down, plan_restart, plan_rollback, plan_stop, NoPrevious};
use drover_plan::{
    labels, Action, ContainerRef, DesiredTask, EnvValue, HostState, Observed, ObservedContainer,
    Plan, Secret, Secrets, Step, TaskKey,
};

use support::*;

fn down(names: &[&str], observed: &Observed) -> Plan {
    plan_down(ENV_NAME, &jobs(names), observed, &known_hosts())
}

fn ids<'a>(containers: impl IntoIterator<Item = &'a ObservedContainer>) -> BTreeSet<String> {
    containers.into_iter().map(|c| c.id.clone()).collect()
}

#[test]
fn down_removes_task_stray_kept_and_stop_mark_containers_but_never_a_lock() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    let stray = renamed(&app1.containers[0], "prod.web.app1.0.new-abc123");
    let kept_generation = kept(find(&desired, "web", "app1", 0), "2024-04-01T10:00:00Z");
    let mark = stop_mark("web", "app1");
    let held = lock("web", "app1", "down");
    app1.containers
        .extend([stray, kept_generation, mark, held.clone()]);
    let app2 = converged(&desired, "app2");
    let mut expected: BTreeSet<String> = ids(app1
        .containers
        .iter()
        .chain(&app2.containers)
        .filter(|c| c.job() == Some("web")));
    expected.remove(&held.id);
    let observed = observed(vec![("app1", app1), ("app2", app2)]);

    let plan = down(&["web"], &observed);
    assert_eq!(
        summary(&plan),
        [
            "web app1/? remove (stop mark)",
            "web app1/0 remove (down)",
            "web app1/0 remove (down)",
            "web app1/0 remove (kept generation)",
            "web app1/1 remove (down)",
            "web app2/0 remove (down)",
            "web app2/1 remove (down)",
        ]
    );
    assert_eq!(removed_ids(&plan), expected, "the lock stays:\n{plan}");
    assert_eq!(plan.count(Action::Remove), 7);
}

#[test]
fn down_leaves_other_jobs_alone() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers
        .push(lock("worker", "app1", "deploy freeze"));
    let plan = down(&["worker"], &observed(vec![("app1", app1)]));
    assert_eq!(summary(&plan), ["worker app1/0 remove (down)"]);
}

#[test]
fn down_reports_an_unreachable_host() {
    let desired = standard();
    let mut observed = observed(vec![("app1", converged(&desired, "app1"))]);
    unreachable(&mut observed, "app2");
    let plan = down(&["web"], &observed);
    assert_eq!(plan.unreachable.len(), 1);
    assert_eq!(plan.unreachable[0].host, "app2");
    assert_eq!(plan.count(Action::Remove), 2);
}

/// Regression: two host entries on one engine both list a leftover of a
/// host since dropped from drover.toml; `down` must remove it once, as
/// `up` does, or the second removal fails on a container already gone.
#[test]
fn down_on_hosts_sharing_an_engine_removes_each_container_once() {
    let desired = standard();
    let leftover = observed_from(&task_for_host(find(&desired, "web", "app1", 0), "app9"));
    let mut shared = converged(&desired, "app1");
    shared
        .containers
        .extend(converged(&desired, "app2").containers);
    shared.containers.push(leftover.clone());
    let observed = observed(vec![("app1", shared.clone()), ("app2", shared)]);

    let plan = down(&["web"], &observed);
    let targets: Vec<&str> = plan.changes.iter().filter_map(target_id).collect();
    let distinct: BTreeSet<&str> = targets.iter().copied().collect();
    assert_eq!(
        targets.len(),
        distinct.len(),
        "a container removed twice:\n{plan}"
    );
    assert_eq!(
        plan.changes.len(),
        5,
        "four tasks and the leftover:\n{plan}"
    );
}

// rollback

fn rollback(observed: &Observed, secrets: &Secrets) -> (Plan, Vec<NoPrevious>) {
    plan_rollback(ENV_NAME, "web", observed, &known_hosts(), secrets)
}

/// The web tasks of the spec with `image`.
fn web_at(image: &str) -> Vec<DesiredTask> {
    of_job(
        &desired_tasks(
            &env_with_web(&WEB_TOML.replace("busybox:1.36", image)),
            &secrets(OLD_PASSWORD),
        ),
        "web",
    )
}

#[test]
fn rollback_restores_the_newest_kept_generation_older_than_the_current_one() {
    let desired = standard();
    let current = observed_from(find(&desired, "web", "app1", 0));
    let oldest = kept(
        find(&web_at("busybox:1.34"), "web", "app1", 0),
        "2024-03-01T10:00:00Z",
    );
    let previous = kept(
        find(&web_at("busybox:1.35"), "web", "app1", 0),
        "2024-04-01T10:00:00Z",
    );
    // Set aside by an earlier rollback: newer than what runs now.
    let rolled_back_from = kept(
        find(&web_at("busybox:1.37"), "web", "app1", 0),
        "2024-05-10T10:00:00Z",
    );
    let app1 = HostState {
        containers: vec![oldest, rolled_back_from, current.clone(), previous.clone()],
        images: images(&["busybox:1.36"]),
    };

    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &Secrets::new());
    assert_eq!(problems, []);
    let change = only_change(&plan);
    assert_eq!(change.name(), "web app1/0");
    assert_eq!(
        change.step,
        Step::Restore {
            current: Some(ContainerRef::of(&current)),
            target: ContainerRef::of(&previous),
        }
    );
    assert_eq!(change.reason, "back to busybox:1.35 (2024-04-01T10:00:00Z)");
    assert_eq!(change.step.verb(), "rollback");
    assert_eq!(change.action(), Action::Replace);
}

#[test]
fn rollback_of_a_task_without_a_current_container_restores_its_newest_kept_one() {
    let older = kept(
        find(&web_at("busybox:1.34"), "web", "app1", 0),
        "2024-03-01T10:00:00Z",
    );
    let newest = kept(
        find(&web_at("busybox:1.35"), "web", "app1", 0),
        "2024-04-01T10:00:00Z",
    );
    let app1 = HostState {
        containers: vec![newest.clone(), older],
        images: images(&["busybox:1.36"]),
    };

    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &Secrets::new());
    assert_eq!(problems, []);
    assert_eq!(
        only_change(&plan).step,
        Step::Restore {
            current: None,
            target: ContainerRef::of(&newest),
        }
    );
}

/// The current container of web app1/0, deployed over `previous`: its
/// `drover.previous` label records that generation.
fn deployed_over(previous: &ObservedContainer) -> ObservedContainer {
    let desired = standard();
    let mut current = observed_from(find(&desired, "web", "app1", 0));
    current.labels.insert(
        labels::PREVIOUS.to_string(),
        ContainerRef::of(previous).record,
    );
    current
}

#[test]
fn rollback_without_a_kept_generation_recreates_the_recorded_previous_one() {
    let old = web_at("busybox:1.35");
    let old_task = find(&old, "web", "app1", 0);
    let previous = deployed_at(observed_from(old_task), "2024-04-01T10:00:00Z");
    let current = deployed_over(&previous);
    let app1 = HostState {
        containers: vec![current.clone()],
        images: images(&["busybox:1.36"]),
    };

    // The secret's value is the operator's, now: the record holds only its name.
    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &secrets(NEW_PASSWORD));
    assert_eq!(problems, []);
    let change = only_change(&plan);
    assert_eq!(
        change.reason,
        "back to busybox:1.35 (recreated from its record)"
    );
    let Step::Replace {
        current: replaced,
        desired,
    } = &change.step
    else {
        panic!("expected a replace, got {:?}", change.step);
    };
    assert_eq!(replaced, &ContainerRef::of(&current));
    assert_eq!(desired.key, TaskKey::new("web", "app1", 0));
    assert_eq!(
        desired.spec_hash, old_task.spec_hash,
        "the old generation's own spec"
    );
    let config = &desired.config;
    assert_eq!(config.image, "busybox:1.35");
    assert_eq!(config.command, old_task.config.command);
    assert_eq!(config.memory, Some(64 << 20));
    assert_eq!(config.restart, old_task.config.restart);
    assert_eq!(config.log_options, old_task.config.log_options);
    assert_eq!(
        config.env.get("DB_PASSWORD"),
        Some(&EnvValue::Secret(Secret::new(NEW_PASSWORD)))
    );
    assert_eq!(
        config.env.get("MODE"),
        Some(&EnvValue::Plain("prod".to_string()))
    );
}

#[test]
fn rollback_reports_a_recorded_secret_without_a_value() {
    let previous = observed_from(find(&web_at("busybox:1.35"), "web", "app1", 0));
    let app1 = HostState {
        containers: vec![deployed_over(&previous)],
        images: images(&["busybox:1.36"]),
    };

    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &Secrets::new());
    assert!(plan.changes.is_empty(), "{plan}");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].task, TaskKey::new("web", "app1", 0));
    assert!(
        problems[0].why.contains("secret DB_PASSWORD has no value"),
        "{}",
        problems[0].why
    );
}

#[test]
fn rollback_of_a_first_deployment_reports_no_previous_generation() {
    let desired = standard();
    let app1 = converged(&desired, "app1");
    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &secrets(OLD_PASSWORD));
    assert!(plan.changes.is_empty(), "{plan}");
    let tasks: Vec<String> = problems.iter().map(|p| p.task.to_string()).collect();
    assert_eq!(tasks, ["web app1/0", "web app1/1"]);
    for problem in &problems {
        assert!(
            problem.why.starts_with("no previous generation"),
            "{}",
            problem.why
        );
    }
}

// restart, stop, start

/// app1 with web app1/0 running, web app1/1 `state`, a kept generation
/// of web app1/0 and the worker (running).
fn app1_with_second_task(state: &str) -> Observed {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers[1].runs.state = state.parse().expect("a state");
    app1.containers.push(kept(
        find(&desired, "web", "app1", 0),
        "2024-04-01T10:00:00Z",
    ));
    observed(vec![("app1", app1)])
}

#[test]
fn restart_restarts_the_running_tasks_in_place() {
    let observed = app1_with_second_task("exited");
    let plan = plan_restart(ENV_NAME, &jobs(&["web"]), &observed, &known_hosts());
    assert_eq!(summary(&plan), ["web app1/0 restart (restart)"]);
    assert!(matches!(plan.changes[0].step, Step::Restart { .. }));
    assert_eq!(
        target_id(&plan.changes[0]),
        Some(fake_id("prod.web.app1.0").as_str())
    );
    assert_eq!(plan.unchanged, 1, "the exited task is left as it is");
}

#[test]
fn stop_stops_the_running_and_paused_tasks() {
    let observed = app1_with_second_task("paused");
    let plan = plan_stop(ENV_NAME, &jobs(&["web"]), &observed, &known_hosts());
    assert_eq!(
        summary(&plan),
        ["web app1/0 stop (stop)", "web app1/1 stop (stop)"]
    );

    let observed = app1_with_second_task("exited");
    let plan = plan_stop(ENV_NAME, &jobs(&["web"]), &observed, &known_hosts());
    assert_eq!(summary(&plan), ["web app1/0 stop (stop)"]);
    assert_eq!(plan.unchanged, 1);
}

/// Regression: a host renamed in drover.toml (`app9` → `app1`) left its old,
/// stopped container; `restart web` must restart the task's own container.
#[test]
fn restart_acts_on_the_task_own_container_not_a_leftover_of_an_unknown_host() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers.retain(|c| c.name == "prod.web.app1.0");
    let own = app1.containers[0].clone();
    let leftover = exited(
        observed_from(&task_for_host(find(&desired, "web", "app1", 0), "app9")),
        0,
    );
    app1.containers.push(leftover);

    let plan = plan_restart(
        ENV_NAME,
        &jobs(&["web"]),
        &observed(vec![("app1", app1)]),
        &known_hosts(),
    );
    assert_eq!(
        plan.changes
            .iter()
            .filter_map(target_id)
            .collect::<Vec<_>>(),
        [own.id.as_str()],
        "{plan}"
    );
}

/// Regression (review): `up` V1, `up` V2, `rollback` (V1 runs again, V2 set
/// aside), `up` V3 (V1 set aside). The generation that served before V3 is
/// V1, though V2 was deployed later: rollback returns to the one the
/// current container replaced, and retention keeps in that order.
#[test]
fn rollback_after_a_rollback_returns_to_the_generation_the_current_one_replaced() {
    let desired = standard();
    let v1 = kept(
        find(&web_at("busybox:1.34"), "web", "app1", 0),
        "2024-03-01T10:00:00Z",
    );
    let mut v2 = kept(
        find(&web_at("busybox:1.35"), "web", "app1", 0),
        "2024-04-01T10:00:00Z",
    );
    // V2 had replaced V1 when it was deployed.
    v2.labels
        .insert(labels::REPLACES.to_string(), v1.id.clone());
    let mut current = deployed_at(
        observed_from(find(&desired, "web", "app1", 0)),
        "2024-06-01T10:00:00Z",
    );
    current
        .labels
        .insert(labels::REPLACES.to_string(), v1.id.clone());
    let app1 = HostState {
        containers: vec![v2.clone(), current.clone(), v1.clone()],
        images: images(&["busybox:1.36"]),
    };
    let (plan, problems) = rollback(&observed(vec![("app1", app1)]), &Secrets::new());
    assert_eq!(problems, []);
    assert_eq!(
        only_change(&plan).step,
        Step::Restore {
            current: Some(ContainerRef::of(&current)),
            target: ContainerRef::of(&v1),
        }
    );
    let ranks = drover_plan::retention::succession(
        current.replaces(),
        [&v1, &v2].map(|c| (c.id.as_str(), c.replaces())),
    );
    assert_eq!(ranks.get(v1.id.as_str()), Some(&0));
    assert_eq!(ranks.get(v2.id.as_str()), None, "V2 is not in V3's line");
    let generation = |c: &ObservedContainer| drover_plan::retention::Generation {
        id: "",
        rank: ranks.get(c.id.as_str()).copied(),
        deployed_at: c.deployed_at(),
        state: c.state(),
    };
    let (g1, g2) = (generation(&v1), generation(&v2));
    let gone = drover_plan::retention::expired(
        &[
            drover_plan::retention::Generation { id: "v2", ..g2 },
            drover_plan::retention::Generation { id: "v1", ..g1 },
        ],
        &[],
        1,
    );
    assert_eq!(
        gone.iter().map(|r| r.id).collect::<Vec<_>>(),
        ["v2"],
        "keep = 1 keeps the generation that served last"
    );
}
