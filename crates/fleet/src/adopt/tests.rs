//! The pure half of `adopt`: secrets, names, shapes, groups, files.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_engine::{Foreign, HandRun, ImageDetails};
use drover_plan::{
    EnvValue, HealthConfig, ImageDefaults, ImageIndex, ObservedContainer, Resources, Runs,
    Settings, TaskConfig,
};
use proptest::prelude::*;

use super::*;

const IMAGE_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_ID: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A container as `docker run -d IMAGE sleep 1000` leaves it, on `host`.
fn hand_run(host: &str, name: &str, id: &str) -> Found {
    let config = TaskConfig {
        image: "reg.example/app:1".to_string(),
        command: Some(vec!["sleep".to_string(), "1000".to_string()]),
        env: BTreeMap::from([(
            "PATH".to_string(),
            EnvValue::Plain("/usr/bin:/bin".to_string()),
        )]),
        volumes: Vec::new(),
        host_files: Vec::new(),
        memory: None,
        resources: Resources::default(),
        network: "bridge".to_string(),
        init: false,
        restart: "no".to_string(),
        stop_timeout: Duration::from_secs(10),
        log_driver: "json-file".to_string(),
        log_options: BTreeMap::new(),
        health: None,
        settings: Settings {
            shm_size: Some(64 << 20),
            ..Settings::default()
        },
    };
    let container = ObservedContainer {
        id: format!("{id:0<64}"),
        name: name.to_string(),
        labels: BTreeMap::new(),
        runs: Runs::default(),
        error: String::new(),
        created: drover_plan::time::from_unix_secs(1_800_000_000),
        image_id: IMAGE_ID.to_string(),
        config,
        image_env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        image_cmd: Some(vec!["sh".to_string()]),
        image_defaults: ImageDefaults::default(),
        adopted: None,
    };
    Found {
        host: host.to_string(),
        run: HandRun {
            container,
            foreign: Vec::new(),
            anonymous_volumes: Vec::new(),
            stop_signal: None,
        },
        image: ImageDetails::default(),
    }
}

fn index() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.add(
        IMAGE_ID,
        &["reg.example/app:1".to_string()],
        &[format!("reg.example/app@sha256:{}", "a".repeat(64))],
    );
    index
}

fn with_env(mut found: Found, name: &str, value: &str) -> Found {
    found
        .run
        .container
        .config
        .env
        .insert(name.to_string(), EnvValue::Plain(value.to_string()));
    found
}

fn shaped(found: &Found) -> Shape {
    shape(found, &index()).unwrap_or_else(|why| panic!("not adoptable: {why:?}"))
}

fn refused(found: &Found) -> Vec<String> {
    match shape(found, &index()) {
        Ok(shape) => panic!("adoptable after all: {shape:?}"),
        Err(why) => why,
    }
}

#[test]
fn secret_names_and_values() {
    for name in [
        "DB_PASSWORD",
        "db_password",
        "MYSQL_ROOT_PASSWORD",
        "PASSWD",
        "GPG_PASSPHRASE",
        "CLIENT_SECRET",
        "SecretKeyBase",
        "GITHUB_TOKEN",
        "token",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "STRIPE_API_KEY",
        "APIKEY",
        "SIGNING_KEY",
        "ssh_private_key",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "Db_Credential",
        "SMTP_PASS",
        "ADMIN_PWD",
        "BASIC_AUTH",
        "KEY",
    ] {
        assert!(is_secret(name, "x"), "{name} is a secret");
    }
    for name in [
        "PATH",
        "HOME",
        "PWD",
        "TZ",
        "KEYBOARD_LAYOUT",
        "MONKEY",
        "JAVA_OPTS",
        "SSH_AUTH_SOCK",
        "LOG_LEVEL",
        "PASSENGER_MAX_POOL",
        "AUTHOR",
        "DATABASE_URL",
    ] {
        assert!(!is_secret(name, "x"), "{name} is not a secret");
    }
    assert!(is_secret(
        "DATABASE_URL",
        "postgres://app:hunter2@db:5432/app"
    ));
    assert!(is_secret("REDIS", "redis://:hunter2@cache"));
    assert!(!is_secret("DATABASE_URL", "postgres://app@db:5432/app"));
    assert!(!is_secret("HOMEPAGE", "https://example.com/a:b@c"));
    assert!(!is_secret("NOTE", "user:pass@host without a scheme"));
}

proptest! {
    /// Any name holding a secret word, in any case, with anything around it, is a secret.
    #[test]
    fn secret_words_anywhere(
        before in "[A-Za-z0-9_]{0,8}",
        word in prop::sample::select(vec!["password", "secret", "token", "credential", "passwd", "api_key"]),
        after in "[A-Za-z0-9_]{0,8}",
        upper in any::<bool>(),
    ) {
        let word = if upper { word.to_uppercase() } else { word.to_string() };
        let name = format!("{before}{word}{after}");
        prop_assert!(is_secret(&name, ""));
    }

    /// Names made only of ordinary words are not.
    #[test]
    fn ordinary_names(words in prop::collection::vec(
        prop::sample::select(vec!["APP", "LOG", "LEVEL", "PORT", "HOST", "MODE", "JAVA", "OPTS", "TZ", "LANG", "WORKERS"]),
        1..4,
    )) {
        prop_assert!(!is_secret(&words.join("_"), "plain value"));
    }

    /// Whatever a secret's value (on one line), the secrets file reads it back as it was.
    #[test]
    fn secrets_file_keeps_values(value in "[^\n\r\u{0}]{0,24}") {
        let appended = merge_secrets(
            &BTreeMap::new(),
            &BTreeMap::from([("DB_PASSWORD".to_string(), value.clone())]),
            "secrets.env",
        ).unwrap();
        let back = crate::secrets::parse_secrets(&appended).unwrap();
        prop_assert_eq!(back["DB_PASSWORD"].expose(), value.as_str());
    }

    /// A job name is always valid, whatever the containers were called.
    #[test]
    fn names_are_always_valid(names in prop::collection::vec(".{0,80}", 1..4)) {
        let image: ImageRef = "reg.example/team/app:1".parse().unwrap();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let name = job_name(&names, &image);
        prop_assert!(drover_spec::check_name("job", &name).is_ok(), "{name:?}");
    }
}

#[test]
fn job_names() {
    let image: ImageRef = "reg.example/team/api-server:1".parse().unwrap();
    assert_eq!(job_name(&["web", "web"], &image), "web");
    assert_eq!(job_name(&["web-1", "web-2", "web-3"], &image), "web");
    assert_eq!(job_name(&["web10", "web11"], &image), "web");
    assert_eq!(job_name(&["svc07-0", "svc07-1"], &image), "svc07");
    assert_eq!(job_name(&["svc07-10", "svc07-11"], &image), "svc07");
    assert_eq!(job_name(&["api.1", "api.2"], &image), "api");
    assert_eq!(job_name(&["web_a", "web_b"], &image), "web");
    assert_eq!(job_name(&["my.app"], &image), "my-app");
    assert_eq!(job_name(&["--odd..name--"], &image), "odd-name");
    assert_eq!(job_name(&["a1", "b2"], &image), "api-server");
    assert_eq!(job_name(&["x"], &image), "api-server");
    let long = "n".repeat(100);
    assert_eq!(job_name(&[long.as_str()], &image).len(), 63);
    let id: ImageRef = IMAGE_ID.parse().unwrap();
    assert_eq!(job_name(&["1", "2"], &id), "job");
    let taken = BTreeSet::from(["web".to_string(), "web-2".to_string()]);
    assert_eq!(unique("web", &taken), "web-3");
    assert_eq!(unique("api", &taken), "api");
}

#[test]
fn a_plain_container_comes_to_its_own_keys_only() {
    let shape = shaped(&hand_run("h1", "web", "a"));
    assert_eq!(shape.image.to_string(), "reg.example/app:1");
    assert_eq!(
        inline(&Value::Table(to_table(&shape.keys))),
        r#"{ command = ["sleep", "1000"], host_files = [], network = "bridge", restart = "no", stop_timeout = "10s" }"#,
        "no init key (drover's default instead), no log (unbounded json-file: drover's default), the image's PATH and the engine's /dev/shm left out"
    );
    assert!(shape.secrets.is_empty());
}

#[test]
fn secrets_go_to_secret_env_by_name() {
    let found = with_env(
        with_env(hand_run("h1", "api", "a"), "DB_PASSWORD", "hunter2"),
        "MODE",
        "prod",
    );
    let shape = shaped(&found);
    assert_eq!(inline(&shape.keys["secret_env"]), r#"["DB_PASSWORD"]"#);
    assert_eq!(inline(&shape.keys["env"]), r#"{ MODE = "prod" }"#);
    assert_eq!(shape.secrets["DB_PASSWORD"], "hunter2");
    assert!(!format!("{:?}", shape.keys).contains("hunter2"));
}

#[test]
fn command_and_entrypoint() {
    // The image's own command is left to it.
    let mut found = hand_run("h1", "web", "a");
    found.run.container.config.command = Some(vec!["sh".to_string()]);
    assert!(!shaped(&found).keys.contains_key("command"));
    // An entrypoint of its own: written, with the command it runs with.
    found.run.container.config.settings.entrypoint = Some(vec!["/init".to_string()]);
    let keys = shaped(&found).keys;
    assert_eq!(inline(&keys["entrypoint"]), r#"["/init"]"#);
    assert_eq!(inline(&keys["command"]), r#"["sh"]"#);
    // No entrypoint although the image has one: `entrypoint = []`.
    found.run.container.image_defaults.entrypoint = Some(vec!["/docker-entrypoint.sh".to_string()]);
    found.run.container.config.settings.entrypoint = None;
    assert_eq!(inline(&shaped(&found).keys["entrypoint"]), "[]");
}

#[test]
fn logs_and_init() {
    let mut found = hand_run("h1", "web", "a");
    found.run.container.config.init = true;
    found.run.container.config.log_driver = "json-file".to_string();
    found.run.container.config.log_options =
        BTreeMap::from([("max-size".to_string(), "10m".to_string())]);
    let keys = shaped(&found).keys;
    assert_eq!(inline(&keys["init"]), "true");
    assert_eq!(
        inline(&keys["log"]),
        r#"{ driver = "json-file", max_files = 1, max_size = "10m" }"#
    );
    found.run.container.config.log_driver = "local".to_string();
    found.run.container.config.log_options.clear();
    assert_eq!(
        inline(&shaped(&found).keys["log"]),
        r#"{ driver = "local", max_files = 5, max_size = "20m" }"#
    );
    found.run.container.config.log_driver = "none".to_string();
    assert!(!shaped(&found).keys.contains_key("log"));
    found.run.container.config.log_driver = "syslog".to_string();
    assert_eq!(
        inline(&shaped(&found).keys["log"]),
        r#"{ driver = "syslog" }"#
    );
    found.run.container.config.log_options = BTreeMap::from([(
        "syslog-address".to_string(),
        "udp://1.2.3.4:514".to_string(),
    )]);
    assert_eq!(
        refused(&found),
        ["--log-opt syslog-address=udp://1.2.3.4:514: no job key sets options of the syslog log driver"]
    );
    found.run.container.config.log_driver = "json-file".to_string();
    found.run.container.config.log_options =
        BTreeMap::from([("compress".to_string(), "true".to_string())]);
    assert_eq!(
        refused(&found),
        ["--log-opt compress=true: a job's log takes max_size and max_files only"]
    );
    found.run.container.config.log_driver = "loki".to_string();
    found.run.container.config.log_options.clear();
    assert!(refused(&found)[0].starts_with("--log-driver loki: unknown log driver"));
}

#[test]
fn settings_a_job_key_says() {
    let mut found = hand_run("h1", "worker", "a");
    let c = &mut found.run.container;
    c.config.volumes = vec!["/srv/data:/data".to_string()];
    c.config.memory = Some(256 << 20);
    c.config.resources.nano_cpus = 1_500_000_000;
    c.config.health = Some(HealthConfig {
        cmd: vec!["true".to_string()],
        interval: Duration::ZERO,
        timeout: Duration::from_secs(2),
        retries: 0,
        start_period: Duration::ZERO,
    });
    c.config.settings.user = Some("1000:1000".to_string());
    c.config.settings.workdir = Some("/data".to_string());
    c.config.settings.shm_size = Some(128 << 20);
    c.config.settings.labels = BTreeMap::from([
        ("team".to_string(), "core".to_string()),
        ("from.image".to_string(), "yes".to_string()),
    ]);
    c.image_defaults.labels = BTreeMap::from([("from.image".to_string(), "yes".to_string())]);
    let keys = shaped(&found).keys;
    assert_eq!(inline(&keys["volumes"]), r#"["/srv/data:/data"]"#);
    assert_eq!(inline(&keys["memory"]), r#""256m""#);
    assert_eq!(inline(&keys["cpus"]), r#""1.5""#);
    assert_eq!(inline(&keys["user"]), r#""1000:1000""#);
    assert_eq!(inline(&keys["workdir"]), r#""/data""#);
    assert_eq!(inline(&keys["shm_size"]), r#""128m""#);
    assert_eq!(inline(&keys["labels"]), r#"{ team = "core" }"#);
    assert_eq!(
        inline(&keys["health"]),
        r#"{ cmd = ["true"], interval = "30s", retries = 3, timeout = "2s" }"#,
        "the engine's defaults for what the container left at 0"
    );
}

#[test]
fn what_no_job_key_says_is_refused() {
    let mut found = hand_run("h1", "side", "a");
    found.run.foreign.push(Foreign {
        setting: "--network container:abc".to_string(),
        why: "it shares another container's network".to_string(),
    });
    found
        .run
        .container
        .labels
        .insert("com.docker.compose.project".to_string(), "shop".to_string());
    found.run.anonymous_volumes = vec!["/scratch".to_string(), "/var/lib/db".to_string()];
    found.image.volumes = vec!["/var/lib/db".to_string()];
    found.run.stop_signal = Some("SIGQUIT".to_string());
    let found = with_env(found, "DROVER_TASK", "3");
    assert_eq!(
        refused(&found),
        [
            "--network container:abc: it shares another container's network",
            "managed by docker compose (project shop): drover taking it over would fight it",
            "-v /scratch: an anonymous volume, whose data would not follow the task to a new container (bind a host directory instead)",
            "--stop-signal SIGQUIT: no job key sets the stop signal",
            "env DROVER_TASK: names starting with DROVER_ are drover's own",
        ]
    );
}

#[test]
fn the_image_as_it_runs() {
    let found = hand_run("h1", "web", "a");
    assert_eq!(shaped(&found).image.to_string(), "reg.example/app:1");
    // The tag now names another image: the digest of the one it runs.
    let mut moved = ImageIndex::default();
    moved.add(OTHER_ID, &["reg.example/app:1".to_string()], &[]);
    moved.add(
        IMAGE_ID,
        &[],
        &[
            format!("other.example/x@sha256:{}", "b".repeat(64)),
            format!("reg.example/app@sha256:{}", "a".repeat(64)),
        ],
    );
    let shape = shape(&found, &moved).unwrap();
    assert_eq!(
        shape.image.to_string(),
        format!("reg.example/app@sha256:{}", "a".repeat(64))
    );
    // Built on the host, never pushed: its ID.
    let mut local = ImageIndex::default();
    local.add(OTHER_ID, &["reg.example/app:1".to_string()], &[]);
    local.add(IMAGE_ID, &[], &[]);
    assert_eq!(
        super::shape(&found, &local).unwrap().image.to_string(),
        IMAGE_ID
    );
}

fn shapes(found: &[Found]) -> Vec<(&Found, Shape)> {
    found.iter().map(|f| (f, shaped(f))).collect()
}

#[test]
fn alike_but_for_their_host_is_one_job() {
    let found = vec![
        hand_run("h1", "web", "a"),
        hand_run("h2", "web", "b"),
        with_env(hand_run("h1", "api", "c"), "MODE", "prod"),
    ];
    let groups = group(shapes(&found));
    assert_eq!(groups.len(), 2);
    let web = groups.iter().find(|g| g.members[0].name == "web").unwrap();
    assert_eq!(web.hosts(), ["h1", "h2"]);
    assert_eq!(web.instances, 1);
    assert_eq!(
        web.members
            .iter()
            .map(|m| (m.host.as_str(), m.task))
            .collect::<Vec<_>>(),
        [("h1", 0), ("h2", 0)]
    );
}

#[test]
fn several_alike_on_a_host_are_instances_oldest_first() {
    let mut older = hand_run("h1", "web-2", "b");
    older.run.container.created = drover_plan::time::from_unix_secs(1_700_000_000);
    let found = vec![
        hand_run("h1", "web-1", "a"),
        older,
        hand_run("h2", "web-3", "c"),
    ];
    let groups = group(shapes(&found));
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.instances, 2);
    assert_eq!(
        g.members
            .iter()
            .map(|m| (m.host.as_str(), m.name.as_str(), m.task))
            .collect::<Vec<_>>(),
        [("h1", "web-2", 0), ("h1", "web-1", 1), ("h2", "web-3", 0)]
    );
}

#[test]
fn secrets_of_other_values_are_other_jobs() {
    let found = vec![
        with_env(hand_run("h1", "api", "a"), "DB_PASSWORD", "one"),
        with_env(hand_run("h2", "api", "b"), "DB_PASSWORD", "two"),
    ];
    assert_eq!(group(shapes(&found)).len(), 2);
}

#[test]
fn another_tag_of_the_repository_is_the_same_job() {
    let mut other_tag = hand_run("h2", "web", "b");
    other_tag.run.container.config.image = "reg.example/app:2".to_string();
    other_tag.run.container.image_id = OTHER_ID.to_string();
    let mut idx = index();
    idx.add(OTHER_ID, &["reg.example/app:2".to_string()], &[]);
    let found = [
        hand_run("h1", "web", "a"),
        hand_run("h3", "web", "c"),
        other_tag,
    ];
    let shaped: Vec<(&Found, Shape)> = found.iter().map(|f| (f, shape(f, &idx).unwrap())).collect();
    let groups = group(shaped);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].shape.image.to_string(), "reg.example/app:1");
    assert_eq!(groups[0].other_images, ["reg.example/app:2"]);
}

#[test]
fn generated_fleets_group_by_likeness() {
    // Containers of a few kinds on a few hosts, in any number: one job per
    // kind, as many instances as the busiest host runs, every container once.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let fleet = prop::collection::vec((0..3usize, 0..4usize), 1..40);
    runner
        .run(&fleet, |placements| {
            let found: Vec<Found> = placements
                .iter()
                .enumerate()
                .map(|(i, (kind, host))| {
                    let f = hand_run(
                        &format!("h{host}"),
                        &format!("kind{kind}-{i}"),
                        &format!("{i:x}"),
                    );
                    with_env(f, "KIND", &kind.to_string())
                })
                .collect();
            let groups = group(shapes(&found));
            let kinds: BTreeSet<usize> = placements.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(groups.len(), kinds.len());
            let members: usize = groups.iter().map(|g| g.members.len()).sum();
            prop_assert_eq!(members, found.len());
            for g in &groups {
                let mut per_host: BTreeMap<&str, u32> = BTreeMap::new();
                for m in &g.members {
                    let n = per_host.entry(m.host.as_str()).or_default();
                    prop_assert_eq!(m.task, *n);
                    *n += 1;
                }
                prop_assert_eq!(g.instances, per_host.values().copied().max().unwrap_or(0));
            }
            Ok(())
        })
        .unwrap();
}

fn keys(pairs: &[(&str, Value)]) -> Keys {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn table(pairs: &[(&str, &str)]) -> Value {
    Value::Table(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), text(*v)))
            .collect(),
    )
}

#[test]
fn what_a_job_inherits_is_left_out() {
    let own = keys(&[
        ("network", text("host")),
        ("restart", text("always")),
        ("env", table(&[("TZ", "UTC"), ("MODE", "prod")])),
        (
            "log",
            Value::Table(
                [
                    ("driver".to_string(), text("local")),
                    ("max_size".to_string(), text("50m")),
                    ("max_files".to_string(), Value::Integer(5)),
                ]
                .into_iter()
                .collect(),
            ),
        ),
    ]);
    let inherited = keys(&[
        ("network", text("host")),
        ("restart", text("unless-stopped")),
        ("env", table(&[("TZ", "UTC")])),
        (
            "log",
            Value::Table(
                [
                    ("driver".to_string(), text("local")),
                    ("max_size".to_string(), text("20m")),
                    ("max_files".to_string(), Value::Integer(5)),
                ]
                .into_iter()
                .collect(),
            ),
        ),
    ]);
    let left = subtract(&own, &inherited);
    assert_eq!(
        inline(&Value::Table(to_table(&left))),
        r#"{ env = { MODE = "prod" }, log = { max_size = "50m" }, restart = "always" }"#
    );
}

#[test]
fn common_keys_of_every_job_and_never_what_a_job_is() {
    let a = keys(&[
        ("restart", text("always")),
        ("command", strings(&["x".to_string()])),
        ("env", table(&[("TZ", "UTC"), ("A", "1")])),
        ("user", text("app")),
    ]);
    let b = keys(&[
        ("restart", text("always")),
        ("command", strings(&["x".to_string()])),
        ("env", table(&[("TZ", "UTC"), ("A", "2")])),
        ("user", text("other")),
    ]);
    let lifted = common(&[&a, &b]);
    assert_eq!(
        inline(&Value::Table(to_table(&lifted))),
        r#"{ env = { TZ = "UTC" }, restart = "always" }"#
    );
    assert_eq!(
        inline(&Value::Table(to_table(&without(&a, &lifted)))),
        r#"{ command = ["x"], env = { A = "1" }, user = "app" }"#
    );
    assert!(common(&[&a]).is_empty(), "one job lifts nothing");
}

#[test]
fn files_load_as_written() {
    let found = with_env(
        with_env(hand_run("h1", "web", "a"), "MODE", "prod"),
        "weird.name-1",
        "a \"quoted\" \\ value",
    );
    let mut shape = shaped(&found);
    shape
        .keys
        .insert("image".to_string(), text(shape.image.to_string()));
    shape
        .keys
        .insert("hosts".to_string(), strings(&["h1".to_string()]));
    let members = vec![Member {
        host: "h1".to_string(),
        id: "a".to_string(),
        name: "web".to_string(),
        task: 0,
    }];
    let file = render_job_file("web", &members, &shape.keys, "2026-01-01T00:00:00Z");
    assert!(file.starts_with("# Job web, written by `drover adopt`"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    std::fs::write(
        dir.path().join("drover.toml"),
        "name = \"prod\"\n# hosts\n[hosts.h1]\ndocker = \"unix:///var/run/docker.sock\"\n",
    )
    .unwrap();
    let lifted = keys(&[("user", text("app")), ("env", table(&[("TZ", "UTC")]))]);
    let drover_toml = with_defaults(
        &std::fs::read_to_string(dir.path().join("drover.toml")).unwrap(),
        &lifted,
    )
    .unwrap();
    assert!(
        drover_toml.contains("# hosts"),
        "comments stay: {drover_toml}"
    );
    let files = BTreeMap::from([
        ("jobs/web.toml".to_string(), file),
        ("drover.toml".to_string(), drover_toml),
    ]);
    let env = drover_spec::load_with(dir.path(), None, &files)
        .unwrap_or_else(|e| panic!("{e}\n{files:#?}"));
    let job = &env.jobs["web"];
    assert_eq!(job.env["weird.name-1"], "a \"quoted\" \\ value");
    assert_eq!(job.env["TZ"], "UTC");
    assert_eq!(job.user.as_deref(), Some("app"), "from [defaults]");
    assert_eq!(job.restart, RestartPolicy::No, "the job's own");
    assert_eq!(job.network, drover_spec::Network::Bridge);
    assert!(job.init, "no init key: drover's default (an init) applies");
    // Not on disk: the loader only saw it.
    assert!(!dir.path().join("jobs/web.toml").exists());
}

#[test]
fn defaults_merge_into_a_table_drover_toml_has() {
    let text_before =
        "name = \"prod\"\n\n[defaults]\nenv = { LANG = \"C\" }  # kept\nrestart = \"no\"\n";
    let lifted = keys(&[
        ("env", table(&[("TZ", "UTC")])),
        ("stop_timeout", text("10s")),
    ]);
    let after = with_defaults(text_before, &lifted).unwrap();
    let parsed: toml::Table = after.parse().unwrap();
    assert_eq!(
        inline(&parsed["defaults"]),
        r#"{ env = { LANG = "C", TZ = "UTC" }, restart = "no", stop_timeout = "10s" }"#
    );
    assert_eq!(
        with_defaults(text_before, &Keys::new()).unwrap(),
        text_before
    );
}

#[test]
fn secrets_file_is_appended_never_changed() {
    let held = BTreeMap::from([("A_TOKEN".to_string(), drover_plan::Secret::new("same"))]);
    let new = BTreeMap::from([
        ("A_TOKEN".to_string(), "same".to_string()),
        ("B_PASSWORD".to_string(), " spaced ".to_string()),
    ]);
    assert_eq!(
        merge_secrets(&held, &new, "secrets.env").unwrap(),
        "B_PASSWORD=\" spaced \"\n"
    );
    let conflicting = BTreeMap::from([("A_TOKEN".to_string(), "other".to_string())]);
    let error = merge_secrets(&held, &conflicting, "secrets.env").unwrap_err();
    assert!(
        error.contains("secrets.env holds A_TOKEN with another value"),
        "{error}"
    );
    assert!(
        !error.contains("same") && !error.contains("other\""),
        "{error}"
    );
}
