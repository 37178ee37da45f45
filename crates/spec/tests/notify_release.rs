//! `[notify]` in drover.toml (and its stage overlay) and `[release]` in jobs,
//! profiles and `[defaults]`: what they accept, their defaults, and errors
//! with their places — never quoting the webhook, which is a secret.

use std::collections::BTreeSet;
use std::time::Duration;

use drover_spec::{load, Environment, NotifyClass, NotifyFormat, Release, SpecError};

const SECRET: &str = "T0KEN-S3CRET";

fn load_files(files: &[(&str, &str)], stage: Option<&str>) -> Result<Environment, SpecError> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    load(dir.path(), stage)
}

const HOSTS: &str = "name = \"prod\"\n[hosts.app1]\ndocker = \"unix:///var/run/docker.sock\"\n";
const WEB: (&str, &str) = ("jobs/web.toml", "image = \"web:1\"\nhosts = [\"app1\"]\n");

fn with_notify(notify: &str) -> Result<Environment, SpecError> {
    load_files(&[("drover.toml", &format!("{HOSTS}{notify}")), WEB], None)
}

/// The whole error text of a spec that must not load.
fn errors(result: Result<Environment, SpecError>) -> String {
    match result {
        Ok(env) => panic!("loaded: {env:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn notify_defaults_to_slack_and_both_classes() {
    let env = with_notify(&format!(
        "[notify]\nwebhook = \"https://chat.example/hooks/{SECRET}\"\n"
    ))
    .unwrap();
    let notify = env.notify.as_ref().unwrap();
    assert_eq!(
        notify.webhook.expose(),
        format!("https://chat.example/hooks/{SECRET}")
    );
    assert_eq!(notify.format, NotifyFormat::Slack);
    assert_eq!(
        notify.events,
        BTreeSet::from([NotifyClass::Deploy, NotifyClass::Incident])
    );
    assert!(
        !format!("{env:?}").contains(SECRET),
        "the environment's Debug shows the webhook whole"
    );
}

#[test]
fn notify_takes_json_and_one_class() {
    let env = with_notify(
        "[notify]\nwebhook = \"http://127.0.0.1:8080/x\"\nformat = \"json\"\nevents = [\"incident\"]\n",
    )
    .unwrap();
    let notify = env.notify.unwrap();
    assert_eq!(notify.format, NotifyFormat::Json);
    assert!(notify.wants(NotifyClass::Incident));
    assert!(!notify.wants(NotifyClass::Deploy));
}

#[test]
fn no_notify_table_and_no_events_both_mean_no_notifications() {
    assert!(with_notify("").unwrap().notify.is_none());
    assert!(with_notify("[notify]\nevents = []\n")
        .unwrap()
        .notify
        .is_none());
    assert!(
        with_notify("[notify]\nwebhook = \"https://chat.example/h\"\nevents = []\n")
            .unwrap()
            .notify
            .is_none()
    );
}

#[test]
fn a_stage_replaces_notify_whole() {
    let files = [
        (
            "drover.toml",
            format!(
                "{HOSTS}[notify]\nwebhook = \"https://chat.example/prod\"\nformat = \"json\"\n"
            ),
        ),
        (
            "drover.staging.toml",
            "[notify]\nwebhook = \"https://chat.example/staging\"\n".to_string(),
        ),
        ("drover.quiet.toml", "[notify]\nevents = []\n".to_string()),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (*p, t.as_str()))
        .chain([WEB])
        .collect();
    let staging = load_files(&files, Some("staging")).unwrap().notify.unwrap();
    assert_eq!(staging.webhook.expose(), "https://chat.example/staging");
    assert_eq!(
        staging.format,
        NotifyFormat::Slack,
        "nothing of drover.toml's [notify] is kept"
    );
    assert!(load_files(&files, Some("quiet")).unwrap().notify.is_none());
}

#[test]
fn notify_errors_have_places_and_never_the_webhook() {
    let err = errors(with_notify(&format!(
        "[notify]\nwebhook = \"ftp://chat.example/{SECRET}\"\nformat = \"xml\"\nevents = [\"deploy\", \"incidents\", \"deploy\"]\n"
    )));
    assert_eq!(
        err,
        "drover.toml:5:11: invalid webhook: expected an http:// or https:// URL, found a ftp: URL (the value is not shown: a webhook URL is a secret)\n\
         drover.toml:6:10: invalid notify format \"xml\": expected \"slack\" ({\"text\": …}, which Slack, Mattermost and Rocket.Chat take) or \"json\" (the event object)\n\
         drover.toml:7:21: unknown notify event class \"incidents\": expected \"deploy\" or \"incident\"\n\
         drover.toml:7:34: \"deploy\" is listed twice in events"
    );
    let err = errors(with_notify(&format!(
        "[notify]\nwebhook = \"chat.example/{SECRET}\"\n"
    )));
    assert_eq!(err, "drover.toml:5:11: invalid webhook: relative URL without a base: expected an http:// or https:// URL (the value is not shown: a webhook URL is a secret)");
    assert!(!err.contains(SECRET));
}

#[test]
fn notify_without_a_webhook_or_with_an_unknown_key() {
    assert_eq!(
        errors(with_notify("[notify]\nformat = \"json\"\n")),
        "drover.toml:4:1: [notify] needs `webhook`, the URL to post to (or `events = []` to post nothing)"
    );
    assert_eq!(
        errors(with_notify(
            "[notify]\nwebhook = \"https://c.example/h\"\nchannel = \"#ops\"\n"
        )),
        "drover.toml:6:1: unknown key `channel`; valid keys here: webhook, format, events"
    );
}

const RELEASE_ENV: &str = r#"name = "prod"
[hosts.app1]
docker = "unix:///var/run/docker.sock"

[defaults.release]
timeout = "2m"

[profiles.rails]
image = "rails:1"
release = { command = ["bin/rails", "db:migrate"] }
"#;

#[test]
fn release_merges_key_by_key_like_health() {
    let env = load_files(
        &[
            ("drover.toml", RELEASE_ENV),
            ("jobs/web.toml", "profile = \"rails\"\nhosts = [\"app1\"]\n"),
            (
                "jobs/api.toml",
                "profile = \"rails\"\nhosts = [\"app1\"]\n[release]\ncommand = [\"bin/migrate\", \"--api\"]\ntimeout = \"30s\"\n",
            ),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        env.jobs["web"].release,
        Some(Release {
            command: vec!["bin/rails".into(), "db:migrate".into()],
            timeout: Duration::from_secs(120),
        }),
        "the command from the profile, the timeout from the defaults"
    );
    assert_eq!(
        env.jobs["api"].release,
        Some(Release {
            command: vec!["bin/migrate".into(), "--api".into()],
            timeout: Duration::from_secs(30),
        })
    );
    // The defaults' table has no command: a job without one of its own is an error…
    let err = errors(load_files(
        &[
            ("drover.toml", RELEASE_ENV),
            ("jobs/worker.toml", "image = \"w:1\"\nhosts = [\"app1\"]\n"),
        ],
        None,
    ));
    assert_eq!(
        err,
        "drover.toml:5:1: [release] needs `command`, the command to run before the rollout"
    );
}

#[test]
fn release_defaults_to_ten_minutes_and_no_release() {
    let env = load_files(
        &[
            ("drover.toml", HOSTS),
            (
                "jobs/web.toml",
                "image = \"web:1\"\nhosts = [\"app1\"]\n[release]\ncommand = [\"bin/migrate\"]\n",
            ),
            ("jobs/api.toml", "image = \"api:1\"\nhosts = [\"app1\"]\n"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        env.jobs["web"].release.as_ref().unwrap().timeout,
        drover_spec::DEFAULT_RELEASE_TIMEOUT
    );
    assert_eq!(
        drover_spec::DEFAULT_RELEASE_TIMEOUT,
        Duration::from_secs(600)
    );
    assert_eq!(env.jobs["api"].release, None);
}

#[test]
fn release_errors_have_places() {
    let job = |release: &str| {
        errors(load_files(
            &[
                ("drover.toml", HOSTS),
                (
                    "jobs/web.toml",
                    &format!("image = \"web:1\"\nhosts = [\"app1\"]\n[release]\n{release}"),
                ),
            ],
            None,
        ))
    };
    assert_eq!(
        job("command = []\n"),
        "jobs/web.toml:4:11: release command must not be empty: name the program to run, e.g. [\"bin/migrate\"]"
    );
    assert_eq!(
        job("command = [\"m\"]\ntimeout = \"0s\"\n"),
        "jobs/web.toml:5:11: release timeout must be above 0"
    );
    assert_eq!(
        job("command = [\"m\"]\ntimeout = \"25h\"\n"),
        "jobs/web.toml:5:11: release timeout \"25h\" is too large: the largest allowed is 24h"
    );
    assert_eq!(
        job("command = [\"m\"]\ntimeout = \"soon\"\n"),
        "jobs/web.toml:5:11: invalid duration \"soon\": expected a number and a unit (ms, s, m, h), e.g. \"500ms\", \"1.5s\", \"5m\""
    );
    assert_eq!(
        job("command = \"bin/migrate\"\n"),
        "jobs/web.toml:4:11: expected an array, found the string \"bin/migrate\""
    );
    assert_eq!(
        job("cmd = [\"m\"]\n"),
        "jobs/web.toml:4:1: unknown key `cmd`; valid keys here: command or timeout"
    );
}
