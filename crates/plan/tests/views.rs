//! What `status`, `history` and the lock report read from the observed
//! containers: which task each row is, which container stands for it, and
//! what a host that could not be asked or a job stopped by drover looks like.

mod support;

use drover_plan::views::{history, locks, status_rows, LockInfo, Presence, TaskRow};
use drover_plan::{labels, DesiredTask, Observed, Scope, TaskKey};

use support::*;

fn keys(desired: &[DesiredTask]) -> Vec<TaskKey> {
    desired.iter().map(|d| d.key.clone()).collect()
}

fn status(observed: &Observed, scope: &Scope) -> Vec<String> {
    let desired = standard();
    let desired: Vec<TaskKey> = keys(&desired)
        .into_iter()
        .filter(|k| scope.covers(&k.job))
        .collect();
    status_rows(ENV_NAME, &desired, observed, scope, &known_hosts())
        .iter()
        .map(describe)
        .collect()
}

/// `job host/task presence container [not in spec] [stopped by drover]`.
fn describe(row: &TaskRow<'_>) -> String {
    let task = row.task.map_or("?".to_string(), |t| t.to_string());
    let presence = match row.presence {
        Presence::Found => "found",
        Presence::Missing => "missing",
        Presence::Unreachable => "unreachable",
    };
    let mut text = format!(
        "{} {}/{task} {presence} {}",
        row.job,
        row.host,
        row.container.map_or("-", |c| c.name.as_str())
    );
    if !row.in_spec {
        text.push_str(" [not in spec]");
    }
    if row.stopped_by_drover {
        text.push_str(" [stopped by drover]");
    }
    text
}

#[test]
fn status_lists_every_task_with_its_container_and_the_missing_ones() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers.retain(|c| c.name != "prod.web.app1.1");
    let observed = observed(vec![("app1", app1), ("app2", converged(&desired, "app2"))]);

    assert_eq!(
        status(&observed, &Scope::All),
        [
            "web app1/0 found prod.web.app1.0",
            "web app1/1 missing -",
            "web app2/0 found prod.web.app2.0",
            "web app2/1 found prod.web.app2.1",
            "worker app1/0 found prod.worker.app1.0",
        ]
    );
}

#[test]
fn status_marks_the_tasks_of_an_unreachable_host() {
    let desired = standard();
    let mut observed = observed(vec![("app1", converged(&desired, "app1"))]);
    unreachable(&mut observed, "app2");

    assert_eq!(
        status(&observed, &Scope::All),
        [
            "web app1/0 found prod.web.app1.0",
            "web app1/1 found prod.web.app1.1",
            "web app2/0 unreachable -",
            "web app2/1 unreachable -",
            "worker app1/0 found prod.worker.app1.0",
        ]
    );
}

#[test]
fn status_lists_containers_the_spec_no_longer_asks_for_within_its_scope() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    let legacy = relabel(app1.containers[0].clone(), labels::JOB, "legacy");
    let beyond = relabel(app1.containers[1].clone(), labels::TASK, "2");
    app1.containers.extend([legacy, beyond]);
    let observed = observed(vec![("app1", app1)]);

    assert_eq!(
        status(&observed, &Scope::All),
        [
            "legacy app1/0 found prod.legacy.app1.0 [not in spec]",
            "web app1/0 found prod.web.app1.0",
            "web app1/1 found prod.web.app1.1",
            "web app1/2 found prod.web.app1.2 [not in spec]",
            "worker app1/0 found prod.worker.app1.0",
        ]
    );
    assert_eq!(
        status(&observed, &Scope::Jobs(jobs(&["web"]))),
        [
            "web app1/0 found prod.web.app1.0",
            "web app1/1 found prod.web.app1.1",
            "web app1/2 found prod.web.app1.2 [not in spec]",
        ],
        "`status web` shows web only"
    );
}

#[test]
fn status_shows_a_task_by_its_own_container_else_by_one_under_another_name() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    // Beside web app1/0's own container, a stopped leftover.
    let leftover = exited(
        renamed(&app1.containers[0], "prod.web.app1.0.new-abc123"),
        0,
    );
    // web app1/1 renamed by hand.
    app1.containers[1] = renamed(&app1.containers[1], "my-web");
    app1.containers.insert(0, leftover);
    let observed = observed(vec![("app1", app1)]);

    assert_eq!(
        status(&observed, &Scope::Jobs(jobs(&["web"]))),
        [
            "web app1/0 found prod.web.app1.0",
            "web app1/1 found my-web",
        ]
    );
}

#[test]
fn status_says_where_a_job_was_stopped_by_drover() {
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
    let observed = observed(vec![("app1", app1), ("app2", converged(&desired, "app2"))]);

    assert_eq!(
        status(&observed, &Scope::All),
        [
            "web app1/0 found prod.web.app1.0 [stopped by drover]",
            "web app1/1 found prod.web.app1.1 [stopped by drover]",
            "web app2/0 found prod.web.app2.0",
            "web app2/1 found prod.web.app2.1",
            "worker app1/0 found prod.worker.app1.0",
        ]
    );
}

#[test]
fn status_has_no_rows_for_kept_generations_locks_or_stop_marks() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers.extend([
        kept(find(&desired, "web", "app1", 0), "2024-04-01T10:00:00Z"),
        lock("web", "app1", "deploy freeze"),
        stop_mark("legacy", "app1"),
    ]);
    let observed = observed(vec![("app1", app1)]);

    assert_eq!(
        status(&observed, &Scope::All),
        [
            "web app1/0 found prod.web.app1.0",
            "web app1/1 found prod.web.app1.1",
            "worker app1/0 found prod.worker.app1.0",
        ]
    );
}

#[test]
fn history_lists_a_job_generations_newest_first_with_the_current_ones_marked() {
    let desired = standard();
    let old_spec = desired_tasks(
        &env_with_web(&WEB_TOML.replace("busybox:1.36", "busybox:1.35")),
        &secrets(OLD_PASSWORD),
    );
    let mut app1 = converged(&desired, "app1");
    app1.containers[1] = deployed_at(app1.containers[1].clone(), "2024-05-03T10:00:00Z");
    app1.containers.extend([
        kept(find(&old_spec, "web", "app1", 0), "2024-04-01T10:00:00Z"),
        kept(find(&old_spec, "web", "app1", 1), "2024-04-02T10:00:00Z"),
        lock("web", "app1", "deploy freeze"),
        stop_mark("web", "app1"),
    ]);
    let mut app2 = converged(&desired, "app2");
    app2.containers.truncate(1);
    let observed = observed(vec![("app1", app1), ("app2", app2)]);

    let generations = history(ENV_NAME, "web", &observed, &known_hosts());
    let rows: Vec<String> = generations
        .iter()
        .map(|g| {
            format!(
                "{} {}/{} {} {} {} {}",
                g.deployed_at,
                g.host,
                g.task.map_or("-".to_string(), |t| t.to_string()),
                g.image,
                g.state,
                if g.current { "current" } else { "kept" },
                g.name.split(".kept-").next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "2024-05-03T10:00:00Z app1/1 busybox:1.36 running current prod.web.app1.1",
            "2024-05-01T10:00:00Z app1/0 busybox:1.36 running current prod.web.app1.0",
            "2024-05-01T10:00:00Z app2/0 busybox:1.36 running current prod.web.app2.0",
            "2024-04-02T10:00:00Z app1/1 busybox:1.35 exited kept prod.web.app1.1",
            "2024-04-01T10:00:00Z app1/0 busybox:1.35 exited kept prod.web.app1.0",
        ]
    );
    let newest = &generations[0];
    assert_eq!(newest.job, "web");
    assert_eq!(newest.deployed_by, DEPLOYED_BY);
    assert_eq!(newest.command, "up");
    assert_eq!(newest.spec, find(&desired, "web", "app1", 1).spec_hash);
    assert_eq!(newest.container.len(), 12, "a short container ID");
}

#[test]
fn history_of_a_container_without_deployment_labels_falls_back_to_its_creation() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers.truncate(1);
    for label in [labels::DEPLOYED_AT, labels::DEPLOYED_BY, labels::COMMAND] {
        app1.containers[0].labels.remove(label);
    }
    app1.containers[0].created = drover_plan::time::parse("2024-01-02T03:04:05Z");

    let generations = history(
        ENV_NAME,
        "web",
        &observed(vec![("app1", app1)]),
        &known_hosts(),
    );
    assert_eq!(generations.len(), 1);
    assert_eq!(generations[0].deployed_at, "2024-01-02T03:04:05Z");
    assert_eq!(generations[0].deployed_by, "unknown");
    assert_eq!(generations[0].command, "unknown");
}

#[test]
fn locks_lists_each_held_lock_by_job_with_its_record() {
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    let mut held_by_a_command = lock("worker", "app1", "drover up");
    held_by_a_command
        .labels
        .insert(labels::PID.to_string(), "4242".to_string());
    held_by_a_command
        .labels
        .insert(labels::COMMAND.to_string(), "up".to_string());
    app1.containers.extend([
        lock("web", "app1", "deploy freeze"),
        held_by_a_command,
        stop_mark("web", "app1"),
    ]);
    let mut app2 = converged(&desired, "app2");
    app2.containers.push(lock("web", "app2", "deploy freeze"));
    let observed = observed(vec![("app1", app1), ("app2", app2)]);

    let held = locks(&observed, ENV_NAME, &support::known_hosts());
    let web_lock = |host: &str| LockInfo {
        job: "web".to_string(),
        host: host.to_string(),
        container: format!("prod.web.{host}.lock"),
        by: DEPLOYED_BY.to_string(),
        at: "2024-05-02T09:00:00Z".to_string(),
        reason: "deploy freeze".to_string(),
        command: "lock".to_string(),
        pid: None,
    };
    assert_eq!(held.keys().collect::<Vec<_>>(), ["web", "worker"]);
    assert_eq!(held["web"], [web_lock("app1"), web_lock("app2")]);
    assert_eq!(
        held["worker"],
        [LockInfo {
            job: "worker".to_string(),
            host: "app1".to_string(),
            container: "prod.worker.app1.lock".to_string(),
            by: DEPLOYED_BY.to_string(),
            at: "2024-05-02T09:00:00Z".to_string(),
            reason: "drover up".to_string(),
            command: "up".to_string(),
            pid: Some(4242),
        }]
    );
}

/// Regression: two host entries on one engine both list its containers;
/// the lock `drover lock web` took there is one lock.
#[test]
fn a_lock_on_an_engine_two_hosts_share_is_listed_once() {
    let desired = standard();
    let mut shared = converged(&desired, "app1");
    shared.containers.push(lock("web", "app1", "deploy freeze"));
    let observed = observed(vec![("app1", shared.clone()), ("app2", shared)]);

    let held = locks(&observed, ENV_NAME, &support::known_hosts());
    let hosts: Vec<&str> = held
        .get("web")
        .map(|l| l.iter().map(|i| i.host.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(hosts, ["app1"], "{held:?}");
}

#[test]
fn history_tells_generations_of_one_tag_apart_by_their_image_id() {
    // The tag was pushed again with other contents between two `up`s: the
    // same image name and spec hash, another image.
    let desired = standard();
    let mut app1 = converged(&desired, "app1");
    app1.containers.truncate(1);
    let mut before = kept(find(&desired, "web", "app1", 0), "2024-04-01T10:00:00Z");
    before.image_id = format!("sha256:{}", "ab".repeat(32));
    app1.containers.push(before);

    let generations = history(
        ENV_NAME,
        "web",
        &observed(vec![("app1", app1)]),
        &known_hosts(),
    );
    let rows: Vec<(&str, &str, &str, &str)> = generations
        .iter()
        .map(|g| {
            (
                g.image.as_str(),
                g.spec.as_str(),
                g.image_id.as_str(),
                g.short_image_id(),
            )
        })
        .collect();
    let spec = find(&desired, "web", "app1", 0).spec_hash.as_str();
    let old = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        rows,
        [
            ("busybox:1.36", spec, IMAGE_ID, &IMAGE_ID[7..19]),
            ("busybox:1.36", spec, old.as_str(), "abababababab"),
        ]
    );
}

/// A release run of `job` on `host`: its container, stopped with `code`
/// after running `ran` seconds, its `[release] timeout` `timeout` seconds.
fn release_run(
    job: &str,
    host: &str,
    at: &str,
    code: i64,
    ran: i64,
    timeout: u64,
) -> drover_plan::ObservedContainer {
    let desired = standard();
    let mut c = exited(observed_from(find(&desired, job, host, 0)), code);
    c.name = drover_plan::OneOffKind::Release.container_name(ENV_NAME, job, host, at);
    c.id = fake_id(&c.name);
    c.labels.remove(labels::TASK);
    c.labels.remove(labels::SPEC);
    c.labels.insert(
        labels::ROLE.to_string(),
        drover_plan::ROLE_RELEASE.to_string(),
    );
    c.labels
        .insert(labels::TIMEOUT.to_string(), (timeout * 1000).to_string());
    c.labels.extend(deployment_labels(at));
    let start = drover_plan::time::parse(at).expect("a time");
    // Created by drover a moment before the engine started it (a busy
    // engine's start latency); drover's deadline runs from the create.
    c.created = start.checked_sub(jiff::SignedDuration::from_secs(2)).ok();
    c.runs.started_at = Some(start);
    c.runs.finished_at = start.checked_add(jiff::SignedDuration::from_secs(ran)).ok();
    c
}

#[test]
fn history_lists_failed_generations_with_their_reason_and_release_runs_with_their_outcome() {
    let desired = standard();
    let web0 = find(&desired, "web", "app1", 0);
    let mut app1 = converged(&desired, "app1");
    app1.containers.truncate(1);
    // A new container that crash-looped at its gate, then was stopped by drover.
    let mut looped = exited(observed_from(web0), 3);
    looped.name = web0.key.failed_name(ENV_NAME);
    looped.id = fake_id(&looped.name);
    looped.runs.restarts = 4;
    looped = deployed_at(looped, "2024-05-02T09:30:00Z");
    app1.containers.push(looped);
    app1.containers.extend([
        release_run("web", "app1", "2024-05-02T09:20:00Z", 0, 5, 600),
        // Ctrl-C during the rollout stopped it long before its timeout.
        release_run("web", "app1", "2024-05-02T09:22:00Z", 143, 5, 600),
        release_run("web", "app1", "2024-05-02T09:25:00Z", 2, 5, 600),
        release_run("web", "app1", "2024-05-02T09:28:00Z", 143, 599, 600),
    ]);

    let generations = history(
        ENV_NAME,
        "web",
        &observed(vec![("app1", app1)]),
        &known_hosts(),
    );
    let rows: Vec<String> = generations
        .iter()
        .map(|g| {
            format!(
                "{} {}/{} {:?} {}",
                g.deployed_at,
                g.host,
                g.task.map_or("-".to_string(), |t| t.to_string()),
                g.kind,
                g.outcome.as_deref().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "2024-05-02T09:30:00Z app1/0 Failed crash-looping (4 restart(s), last exit code 3)",
            "2024-05-02T09:28:00Z app1/- Release timed out after 10m; stopped",
            "2024-05-02T09:25:00Z app1/- Release failed with exit code 2",
            "2024-05-02T09:22:00Z app1/- Release stopped by a signal before it ended (exit code 143)",
            "2024-05-02T09:20:00Z app1/- Release succeeded",
            "2024-05-01T10:00:00Z app1/0 Current -",
        ]
    );
    assert_eq!(generations[2].exit_code, Some(2));
    assert_eq!(
        generations[5].exit_code, None,
        "a running container has none"
    );
}

#[test]
fn a_failed_generation_says_what_its_stopped_container_tells() {
    let desired = standard();
    let web0 = find(&desired, "web", "app1", 0);
    let failed = |code: i64| {
        let mut c = exited(observed_from(web0), code);
        c.name = web0.key.failed_name(ENV_NAME);
        c
    };
    assert_eq!(
        drover_plan::views::failed_reason(&failed(1)),
        "exited (code 1)"
    );
    let mut oom = failed(137);
    oom.runs.oom_killed = true;
    assert_eq!(
        drover_plan::views::failed_reason(&oom),
        "killed for exceeding its memory limit (exit code 137)"
    );
    // Stopped by drover after its check failed: the check's output is the reason.
    let mut unhealthy = failed(143);
    unhealthy.config.health = Some(drover_plan::HealthConfig {
        cmd: vec!["check".to_string()],
        interval: std::time::Duration::from_secs(1),
        timeout: std::time::Duration::from_secs(1),
        retries: 1,
        start_period: std::time::Duration::ZERO,
    });
    unhealthy.runs.health = drover_plan::Health::Unhealthy;
    unhealthy.runs.health_output = "connection refused".to_string();
    unhealthy.runs.health_at = drover_plan::time::parse("2024-05-02T09:00:00Z");
    assert_eq!(
        drover_plan::views::failed_reason(&unhealthy),
        "unhealthy: connection refused"
    );
    // The engine calls every stopped container with a check unhealthy:
    // without a check that ran, that says nothing.
    unhealthy.runs.health_at = None;
    unhealthy.runs.health_output.clear();
    assert_eq!(
        drover_plan::views::failed_reason(&unhealthy),
        "no health check finished before the gate's deadline; stopped by drover (exit code 143)"
    );
}
