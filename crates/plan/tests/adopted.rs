//! Containers `drover adopt` took over: started by hand, so without
//! drover's labels, spec hash or identity variables; their adoption record
//! says which task each is. Every rule that asks what a container is must
//! see them as that task.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use drover_plan::views::{history, status_rows, Presence};
use drover_plan::{
    labels, Adoption, ContainerRef, DesiredTask, EnvValue, ObservedContainer, Role, Step, TaskKey,
    IDENTITY_ENV,
};
use serde_json::json;

use support::*;

/// `desired`'s container as someone started it by hand and `drover adopt`
/// then took it over: no drover label, no `DROVER_*` variable, its secret
/// a plain variable until the record says otherwise.
fn adopted(desired: &DesiredTask) -> ObservedContainer {
    let mut c = observed_from(desired);
    c.labels.clear();
    c.config
        .env
        .retain(|k, _| !IDENTITY_ENV.contains(&k.as_str()));
    for value in c.config.env.values_mut() {
        *value = EnvValue::Plain(value.expose().to_string());
    }
    c.adopt(Adoption {
        env: ENV_NAME.to_string(),
        key: desired.key.clone(),
        by: Some("ops@laptop".to_string()),
        at: Some("2024-05-02T08:00:00Z".to_string()),
        secrets: BTreeSet::from(["DB_PASSWORD".to_string()]),
    });
    c
}

fn web_app1() -> (Vec<DesiredTask>, Vec<ObservedContainer>) {
    let desired = of_job(&standard(), "web");
    let containers = desired
        .iter()
        .filter(|d| d.key.host == "app1")
        .map(adopted)
        .collect();
    (desired, containers)
}

fn host_with(containers: Vec<ObservedContainer>) -> drover_plan::HostState {
    drover_plan::HostState {
        containers,
        images: images(&["busybox:1.36"]),
    }
}

#[test]
fn an_adopted_container_as_its_file_says_is_unchanged() {
    let (desired, containers) = web_app1();
    let desired: Vec<DesiredTask> = desired
        .into_iter()
        .filter(|d| d.key.host == "app1")
        .collect();
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(containers))]),
    );
    assert!(
        plan.is_empty(),
        "no spec hash and no DROVER_* variables are not drift for an adopted container:\n{plan}"
    );
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn an_adopted_container_that_differs_is_replaced_saying_why() {
    let (desired, mut containers) = web_app1();
    let desired: Vec<DesiredTask> = desired
        .into_iter()
        .filter(|d| d.key.host == "app1")
        .collect();
    containers[0].config.init = !containers[0].config.init;
    let plan = plan_jobs(
        &desired,
        &["web"],
        &observed(vec![("app1", host_with(containers))]),
    );
    let change = only_change(&plan);
    assert_eq!(change.name(), "web app1/0");
    assert!(matches!(change.step, Step::Replace { .. }));
    assert_eq!(
        change.reason,
        "adopted: it runs otherwise than its file says"
    );
    assert_eq!(
        change.fields,
        [field(
            "init",
            json!(!desired[0].config.init),
            json!(desired[0].config.init)
        )]
    );
}

#[test]
fn the_record_says_the_task_whatever_the_name() {
    let desired = of_job(&standard(), "web");
    let own = adopted(&desired[0]);
    assert_eq!(own.role(ENV_NAME), Role::Current(desired[0].key.clone()));
    assert_eq!(own.env(), Some(ENV_NAME));
    assert_eq!(own.job(), Some("web"));
    assert_eq!(own.task_key(), Some(desired[0].key.clone()));

    let mut set_aside = own.clone();
    set_aside.name = desired[0].key.kept_name(ENV_NAME, &own.id);
    assert_eq!(set_aside.role(ENV_NAME), Role::Kept(desired[0].key.clone()));

    // Renamed by hand: a stray of its task, which `up` renames back.
    let mut renamed = own.clone();
    renamed.name = "web".to_string();
    assert_eq!(renamed.role(ENV_NAME), Role::Stray(desired[0].key.clone()));
    let plan = plan_jobs(
        &[desired[0].clone()],
        &["web"],
        &observed(vec![("app1", host_with(vec![renamed]))]),
    );
    let change = only_change(&plan);
    assert!(
        matches!(&change.step, Step::Rename { to, start: false, .. } if to == "prod.web.app1.0"),
        "{plan}"
    );
}

#[test]
fn a_record_holds_its_tasks_by_container_id() {
    let tasks = BTreeMap::from([("a".repeat(64), 0), ("b".repeat(64), 1)]);
    let secrets = BTreeSet::from(["DB_PASSWORD".to_string()]);
    let mut record = Adoption::record(ENV_NAME, "web", "app1", &tasks, &secrets);
    record.insert(labels::DEPLOYED_BY.to_string(), "ops@laptop".to_string());
    let found = Adoption::from_record(ENV_NAME, &record);
    assert_eq!(found.len(), 2);
    let (id, adoption) = &found[1];
    assert_eq!(id, &"b".repeat(64));
    assert_eq!(adoption.key, TaskKey::new("web", "app1", 1));
    assert_eq!(adoption.by.as_deref(), Some("ops@laptop"));
    assert_eq!(adoption.secrets, secrets);
    // Another environment's record, or a lock, holds nothing for this one.
    assert!(Adoption::from_record("staging", &record).is_empty());
    let mut lock = record.clone();
    lock.insert(labels::ROLE.to_string(), "lock".to_string());
    assert!(Adoption::from_record(ENV_NAME, &lock).is_empty());
}

#[test]
fn an_adopted_secret_is_never_recorded_by_value() {
    let desired = of_job(&standard(), "web");
    let c = adopted(&desired[0]);
    assert!(c.config.env["DB_PASSWORD"].is_secret());
    let record = ContainerRef::of(&c).record;
    assert!(!record.contains(OLD_PASSWORD), "{record}");
    assert!(!format!("{c:?}").contains(OLD_PASSWORD));
}

#[test]
fn status_and_history_see_it_as_the_task() {
    let (desired, containers) = web_app1();
    let keys: Vec<TaskKey> = desired.iter().map(|d| d.key.clone()).collect();
    let obs = observed(vec![("app1", host_with(containers))]);
    let rows = status_rows(
        ENV_NAME,
        &keys,
        &obs,
        &drover_plan::Scope::All,
        &known_hosts(),
    );
    let app1: Vec<_> = rows.iter().filter(|r| r.host == "app1").collect();
    assert_eq!(app1.len(), 2);
    assert!(app1
        .iter()
        .all(|r| r.presence == Presence::Found && r.in_spec));
    let generations = history(ENV_NAME, "web", &obs, &known_hosts());
    assert_eq!(generations.len(), 2);
    assert!(generations
        .iter()
        .all(|g| g.command == "adopt" && g.deployed_by == "ops@laptop" && g.current));
    assert!(generations.iter().all(|g| g.commit.is_none()));
}

#[test]
fn an_event_of_an_adopted_container_is_its_task_s_by_the_record_alone() {
    let key = TaskKey::new("web", "app1", 0);
    let adoption = Adoption {
        env: ENV_NAME.to_string(),
        key: key.clone(),
        by: None,
        at: None,
        secrets: BTreeSet::new(),
    };
    // An event's attributes: the labels it was started with, none of drover's.
    let attributes = BTreeMap::from([
        ("name".to_string(), key.container_name(ENV_NAME)),
        ("maintainer".to_string(), "ops".to_string()),
    ]);
    let name = key.container_name(ENV_NAME);
    assert_eq!(
        drover_plan::role_of(ENV_NAME, &name, &attributes, None),
        Role::Unknown
    );
    assert_eq!(
        drover_plan::role_of(ENV_NAME, &name, &attributes, Some(&adoption)),
        Role::Current(key.clone())
    );
    // Renamed away by hand, set aside by a rollout: the name says which.
    assert_eq!(
        drover_plan::role_of(ENV_NAME, "web-old", &attributes, Some(&adoption)),
        Role::Stray(key.clone())
    );
    let kept = format!("{}.kept-0123456789ab", key.container_name(ENV_NAME));
    assert_eq!(
        drover_plan::role_of(ENV_NAME, &kept, &attributes, Some(&adoption)),
        Role::Kept(key.clone())
    );
    // drover's labels, where there are any, come first.
    let labelled = BTreeMap::from([
        (labels::ENV.to_string(), ENV_NAME.to_string()),
        (labels::JOB.to_string(), "web".to_string()),
        (labels::HOST.to_string(), "app1".to_string()),
        (labels::TASK.to_string(), "1".to_string()),
    ]);
    let other = TaskKey::new("web", "app1", 1);
    assert_eq!(
        drover_plan::role_of(
            ENV_NAME,
            &other.container_name(ENV_NAME),
            &labelled,
            Some(&adoption)
        ),
        Role::Current(other)
    );
}
