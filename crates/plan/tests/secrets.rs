//! A secret's value reaches the engine's create request and nothing else:
//! no `Debug`, no `Display`, no plan text, no JSON, no label.

mod support;

use drover_plan::ops::{plan_down, plan_rollback};
use drover_plan::{labels, ContainerRef, EnvValue, HostState, Plan, Secret, Secrets};
use sha2::{Digest, Sha256};

use support::*;

/// What could give a secret away: its value, or an unsalted hash of it.
fn giveaways() -> Vec<String> {
    [OLD_PASSWORD, NEW_PASSWORD]
        .into_iter()
        .flat_map(|secret| {
            let digest = Sha256::digest(secret.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            [secret.to_string(), hex[..16].to_string()]
        })
        .collect()
}

fn assert_hidden(what: &str, text: &str) {
    for giveaway in giveaways() {
        assert!(
            !text.contains(&giveaway),
            "{what} gives a secret away ({giveaway:?}):\n{text}"
        );
    }
}

#[test]
fn a_secret_shows_only_a_mask_in_debug_and_display() {
    let secret = Secret::new(OLD_PASSWORD);
    assert_eq!(secret.expose(), OLD_PASSWORD, "the engine gets the value");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    let value = EnvValue::Secret(secret);
    assert_eq!(value.expose(), OLD_PASSWORD);
    assert_hidden("an env value's Debug", &format!("{value:?}"));
    assert_hidden(
        "the secrets' Debug",
        &format!("{:?}", secrets(OLD_PASSWORD)),
    );
}

#[test]
fn a_task_configuration_never_shows_a_secret() {
    let desired = standard();
    let task = find(&desired, "web", "app1", 0);
    assert_eq!(
        task.config.env.get("DB_PASSWORD").map(EnvValue::expose),
        Some(OLD_PASSWORD),
        "the value is there, for the engine"
    );
    assert_hidden(
        "a task configuration's Debug",
        &format!("{:?}", task.config),
    );
    assert_hidden("a desired task's Debug", &format!("{task:?}"));
    assert_hidden("a container's Debug", &format!("{:?}", observed_from(task)));
    assert_hidden("the labels", &format!("{:?}", task.labels(ENV_NAME)));
}

#[test]
fn the_record_a_replacement_keeps_in_a_label_holds_no_secret() {
    let desired = standard();
    let running = observed_from(find(&desired, "web", "app1", 0));
    let record = ContainerRef::of(&running).record;
    assert!(
        record.contains("DB_PASSWORD"),
        "the secret is named: {record}"
    );
    assert_hidden("the drover.previous record", &record);
}

#[test]
fn no_plan_shows_a_secret_in_its_text_or_json() {
    let before = standard();
    let after = desired_tasks(&env_with_web(WEB_TOML), &secrets(NEW_PASSWORD));
    let dropped = desired_tasks(
        &env_with_web(&WEB_TOML.replace(r#"secret_env = ["DB_PASSWORD"]"#, "")),
        &Secrets::new(),
    );

    // app1: web app1/0 under another name, app1/1 as before (its secret
    // changes), a container of a job gone from the spec; app2: empty.
    let mut app1 = converged(&before, "app1");
    app1.containers[0] = renamed(&app1.containers[0], "my-web");
    let mut previous = observed_from(find(&before, "web", "app1", 1));
    previous.id = fake_id("previous");
    app1.containers[1].labels.insert(
        labels::PREVIOUS.to_string(),
        ContainerRef::of(&previous).record,
    );
    app1.containers
        .push(relabel(app1.containers[1].clone(), labels::JOB, "legacy"));
    let observed = observed(vec![("app1", app1), ("app2", HostState::default())]);

    let plans: Vec<(&str, Plan)> = vec![
        ("up with a changed secret", plan_all(&after, &observed)),
        ("up with the secret dropped", plan_all(&dropped, &observed)),
        (
            "down",
            plan_down(
                ENV_NAME,
                &jobs(&["web", "legacy"]),
                &observed,
                &known_hosts(),
            ),
        ),
        (
            "rollback",
            plan_rollback(
                ENV_NAME,
                "web",
                &observed,
                &known_hosts(),
                &secrets(NEW_PASSWORD),
            )
            .0,
        ),
    ];
    for (command, plan) in plans {
        assert!(!plan.changes.is_empty(), "{command} changes something");
        assert_hidden(command, &every_output(&plan));
    }
}
