//! The container settings hand-run fleets use (`entrypoint`, `user`,
//! `workdir`, `cpus`, `ulimits`, caps, `labels`, `extra_hosts`, `tmpfs`,
//! `shm_size`, `privileged`, `devices`) in the plan: compared field by field,
//! left to the image or the engine where the job leaves them unset, and
//! never a reason to replace a task whose job sets none of them.

mod support;

use std::collections::BTreeMap;

use drover_plan::{field_changes, FieldChange, HostState, ObservedContainer, Secrets, TaskConfig};
use drover_spec::Ulimit;
use serde_json::{json, Value};
use support::*;

/// Every key drover knew before these settings, none of them.
const FULL_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1"]
instances = 1
command = ["httpd", "-f"]
env = { MODE = "prod", N = 3 }
secret_env = ["DB_PASSWORD"]
volumes = ["/data/x:/data", "/data/y:/y:ro"]
ports = [8080]
memory = "1.5g"
network = "bridge"
init = false
restart = "on-failure:3"
stop_timeout = "5s"
host_files = ["/etc/localtime", "/etc/passwd"]
log = { driver = "json-file", max_size = "10m", max_files = 3 }
[health]
cmd = ["true"]
interval = "2s"
timeout = "1s"
retries = 2
start_period = "1s"
[update]
parallel = 2
"#;

/// What main's code (before these settings) rendered for [`FULL_TOML`] and
/// [`WORKER_TOML`]: their hashes label every running task, so any change
/// here would replace every task of every fleet on the next `up`.
const MAIN_FULL_FIELDS: &str = r#"[["image","busybox:1.36"],["command",["httpd","-f"]],["env.DB_PASSWORD","secret:415c500aaae21d094a359aaa47593578"],["env.DROVER_ENV","prod"],["env.DROVER_HOST","app1"],["env.DROVER_JOB","web"],["env.DROVER_TASK","0"],["env.MODE","prod"],["env.N","3"],["volumes",["/data/x:/data","/data/y:/y:ro"]],["host_files",["/etc/localtime","/etc/passwd"]],["memory","1536m"],["memory_swap","1536m"],["memory_reservation",null],["cpus",null],["cpu_shares",null],["cpu_period",null],["cpu_quota",null],["cpu_realtime_period",null],["cpu_realtime_runtime",null],["cpuset_cpus",null],["cpuset_mems",null],["pids_limit",null],["blkio_weight",null],["network","bridge"],["init",false],["restart","on-failure:3"],["stop_timeout","5s"],["log.driver","json-file"],["log.max-file","3"],["log.max-size","10m"],["health.cmd",["true"]],["health.interval","2s"],["health.timeout","1s"],["health.retries",2],["health.start_period","1s"]]"#;
const MAIN_FULL_RECORD: &str = r#"{"command":["httpd","-f"],"env":{"DB_PASSWORD":{"secret":"DB_PASSWORD"},"DROVER_ENV":"prod","DROVER_HOST":"app1","DROVER_JOB":"web","DROVER_TASK":"0","MODE":"prod","N":"3"},"health":{"cmd":["true"],"interval_ms":2000,"retries":2,"start_period_ms":1000,"timeout_ms":1000},"host_files":["/etc/localtime","/etc/passwd"],"image":"busybox:1.36","init":false,"log_driver":"json-file","log_options":{"max-file":"3","max-size":"10m"},"memory":1610612736,"network":"bridge","restart":"on-failure:3","stop_timeout_secs":5,"volumes":["/data/x:/data","/data/y:/y:ro"]}"#;
const MAIN_WORKER_FIELDS: &str = r#"[["image","busybox:1.36"],["command",null],["env.DROVER_ENV","prod"],["env.DROVER_HOST","app1"],["env.DROVER_JOB","worker"],["env.DROVER_TASK","0"],["volumes",[]],["host_files",["/etc/localtime"]],["memory",null],["memory_swap",null],["memory_reservation",null],["cpus",null],["cpu_shares",null],["cpu_period",null],["cpu_quota",null],["cpu_realtime_period",null],["cpu_realtime_runtime",null],["cpuset_cpus",null],["cpuset_mems",null],["pids_limit",null],["blkio_weight",null],["network","host"],["init",true],["restart","unless-stopped"],["stop_timeout","30s"],["log.driver","local"],["log.max-file","5"],["log.max-size","20m"]]"#;

fn fields_json(config: &TaskConfig) -> String {
    serde_json::to_string(&config.fields()).unwrap()
}

#[test]
fn a_job_without_the_new_keys_keeps_its_hash_fields_and_record() {
    let tasks = standard();
    let hashes: Vec<(String, &str)> = tasks
        .iter()
        .map(|t| {
            (
                format!("{} {}/{}", t.key.job, t.key.host, t.key.task),
                t.spec_hash.as_str(),
            )
        })
        .collect();
    assert_eq!(
        hashes,
        [
            ("web app1/0".to_string(), "012753067ee4"),
            ("web app1/1".to_string(), "02b0ff32856e"),
            ("web app2/0".to_string(), "0154f62751d8"),
            ("web app2/1".to_string(), "80b8f1bde6e1"),
            ("worker app1/0".to_string(), "1863b9058502"),
        ],
        "the hashes main's code gave these tasks"
    );
    assert_eq!(
        fields_json(&find(&tasks, "worker", "app1", 0).config),
        MAIN_WORKER_FIELDS
    );

    let full = desired_tasks(&env_with_web(FULL_TOML), &secrets(OLD_PASSWORD));
    let web = find(&full, "web", "app1", 0);
    assert_eq!(web.spec_hash, "57d6c7863cb0");
    assert_eq!(fields_json(&web.config), MAIN_FULL_FIELDS);
    assert_eq!(web.config.to_record().to_string(), MAIN_FULL_RECORD);
}

#[test]
fn a_record_written_before_the_new_keys_still_recreates_its_generation() {
    let record: Value = serde_json::from_str(MAIN_FULL_RECORD).unwrap();
    let config = TaskConfig::from_record(&record, &secrets(OLD_PASSWORD)).unwrap();
    let full = desired_tasks(&env_with_web(FULL_TOML), &secrets(OLD_PASSWORD));
    assert_eq!(config, find(&full, "web", "app1", 0).config);
}

/// A job setting every new key, with odd-but-valid values.
const KEYS_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1"]
command = ["3600"]
entrypoint = ["sleep"]
user = "1000:1000"
workdir = "/nonexistent"
cpus = "1.25"
ulimits = { nofile = "1024:2048", core = -1 }
cap_add = ["net_admin", "CAP_SYS_TIME"]
cap_drop = ["mknod"]
labels = { "com.example.team" = "core", empty = "" }
extra_hosts = ["db:10.0.0.5", "v6:[2001:DB8::1]"]
tmpfs = ["/run:size=64m,noexec,mode=1777", "/scratch"]
shm_size = "128m"
devices = ["/dev/fuse:/dev/fuse2:mrw"]
"#;

fn keys_task() -> drover_plan::DesiredTask {
    let tasks = desired_tasks(&env_with_web(KEYS_TOML), &secrets(OLD_PASSWORD));
    find(&tasks, "web", "app1", 0).clone()
}

#[test]
fn the_new_keys_are_fields_of_their_own_in_the_order_diff_shows_them() {
    let task = keys_task();
    let paths: Vec<(String, Value)> = task
        .config
        .fields()
        .into_iter()
        .filter(|(path, value)| {
            !value.is_null()
                && !path.starts_with("env.")
                && !path.starts_with("log.")
                && path != "stop_timeout"
                && path != "restart"
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("image", json!("busybox:1.36")),
            ("entrypoint", json!(["sleep"])),
            ("command", json!(["3600"])),
            ("user", json!("1000:1000")),
            ("workdir", json!("/nonexistent")),
            ("labels.com.example.team", json!("core")),
            ("labels.empty", json!("")),
            ("volumes", json!([])),
            ("host_files", json!(["/etc/localtime"])),
            (
                "tmpfs",
                json!(["/run:mode=1777,noexec,size=64m", "/scratch"])
            ),
            ("devices", json!(["/dev/fuse:/dev/fuse2"])),
            ("cpus", json!(1.25)),
            ("shm_size", json!("128m")),
            ("ulimits.core", json!("-1:-1")),
            ("ulimits.nofile", json!("1024:2048")),
            ("network", json!("host")),
            ("extra_hosts", json!(["db:10.0.0.5", "v6:2001:db8::1"])),
            ("init", json!(true)),
            ("cap_add", json!(["CAP_NET_ADMIN", "CAP_SYS_TIME"])),
            ("cap_drop", json!(["CAP_MKNOD"])),
        ]
        .map(|(p, v)| (p.to_string(), v))
    );
    assert_eq!(task.config.resources.nano_cpus, 1_250_000_000);
    let labels = task.labels(ENV_NAME);
    assert!(
        !labels.contains_key("com.example.team"),
        "the job's labels go to the engine with the configuration, not with drover's: {labels:?}"
    );
}

#[test]
fn each_new_key_changes_the_hash() {
    let base = desired_tasks(&env_with_web(WORKER_TOML), &Secrets::new());
    let base = &find(&base, "web", "app1", 0).spec_hash;
    for key in [
        "entrypoint = []",
        "user = \"root\"",
        "workdir = \"/\"",
        "cpus = \"1\"",
        "ulimits = { core = 0 }",
        "cap_add = [\"NET_ADMIN\"]",
        "cap_drop = [\"NET_ADMIN\"]",
        "labels = { a = \"\" }",
        "extra_hosts = [\"db:10.0.0.5\"]",
        "tmpfs = [\"/run\"]",
        "shm_size = \"64m\"",
        "privileged = true",
        "devices = [\"/dev/fuse\"]",
    ] {
        let tasks = desired_tasks(
            &env_with_web(&format!("{WORKER_TOML}{key}\n")),
            &Secrets::new(),
        );
        assert_ne!(&find(&tasks, "web", "app1", 0).spec_hash, base, "{key}");
    }
    let tasks = desired_tasks(
        &env_with_web(&format!("{WORKER_TOML}privileged = false\n")),
        &Secrets::new(),
    );
    assert_eq!(
        &find(&tasks, "web", "app1", 0).spec_hash,
        base,
        "false is the default: nothing set"
    );
}

#[test]
fn records_carry_the_new_keys_so_a_rollback_recreates_them() {
    let mut config = keys_task().config;
    config.settings.privileged = true;
    config.settings.cap_add.clear();
    config.settings.cap_drop.clear();
    let record = config.to_record();
    assert_eq!(record["nano_cpus"], json!(1_250_000_000));
    assert_eq!(record["ulimits"]["core"], json!([-1, -1]));
    assert_eq!(
        record["devices"],
        json!([{"host": "/dev/fuse", "container": "/dev/fuse2", "permissions": "rwm"}])
    );
    let back = TaskConfig::from_record(&record, &secrets(OLD_PASSWORD)).unwrap();
    assert_eq!(back, config);

    let mut broken = record.clone();
    broken["ulimits"] = json!({"nofile": [1]});
    assert_eq!(
        TaskConfig::from_record(&broken, &secrets(OLD_PASSWORD)),
        Err("the recorded configuration has no valid ulimits".to_string())
    );
}

/// `keys_task` as the engine reads it back, on an image with its own defaults.
fn observed_keys() -> (drover_plan::DesiredTask, ObservedContainer) {
    let task = keys_task();
    let mut container = observed_from(&task);
    // An entrypoint of the job's own: the engine drops the image's Cmd.
    container.config.command = task.config.command.clone();
    (task, container)
}

fn paths(changes: &[FieldChange]) -> Vec<(&str, Value, Value)> {
    changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.clone(), c.new.clone()))
        .collect()
}

#[test]
fn a_container_made_as_the_keys_say_has_no_changes() {
    let (task, container) = observed_keys();
    assert_eq!(paths(&field_changes(&task.config, &container)), []);
}

#[test]
fn what_the_image_gives_is_not_drift_where_the_job_sets_nothing() {
    let tasks = desired_tasks(&env_with_web(WORKER_TOML), &Secrets::new());
    let task = find(&tasks, "web", "app1", 0);
    let mut container = observed_from(task);
    container.image_defaults = drover_plan::ImageDefaults {
        entrypoint: Some(vec!["/entry.sh".into()]),
        user: "app".into(),
        workdir: "/srv".into(),
        labels: BTreeMap::from([("org.opencontainers.image.version".into(), "1.2".into())]),
    };
    // The engine merges the image's settings into what it reports.
    let s = &mut container.config.settings;
    s.entrypoint = Some(vec!["/entry.sh".into()]);
    s.user = Some("app".into());
    s.workdir = Some("/srv".into());
    s.labels
        .insert("org.opencontainers.image.version".into(), "1.2".into());
    // And the engine's own defaults: /dev/shm, and a daemon's default-ulimits.
    s.shm_size = Some(64 << 20);
    s.ulimits.insert(
        "nofile".into(),
        Ulimit {
            soft: 1024,
            hard: 4096,
        },
    );
    assert_eq!(paths(&field_changes(&task.config, &container)), []);

    // Changed by hand (a container recreated with other flags): drift.
    let s = &mut container.config.settings;
    s.user = Some("1000".into());
    s.workdir = Some("/tmp".into());
    s.entrypoint = Some(vec!["/other.sh".into()]);
    s.labels
        .insert("org.opencontainers.image.version".into(), "9".into());
    s.labels.insert("by-hand".into(), "1".into());
    s.cap_add = vec!["CAP_NET_ADMIN".into()];
    s.privileged = true;
    s.extra_hosts = vec!["db:10.0.0.9".into()];
    s.tmpfs.insert("/run".into(), String::new());
    s.devices = vec!["/dev/fuse".parse().unwrap()];
    container.config.resources.nano_cpus = 500_000_000;
    assert_eq!(
        paths(&field_changes(&task.config, &container)),
        [
            ("entrypoint", json!(["/other.sh"]), json!(["/entry.sh"])),
            ("user", json!("1000"), json!("app")),
            ("workdir", json!("/tmp"), json!("/srv")),
            ("cpus", json!(0.5), Value::Null),
            ("cap_add", json!(["CAP_NET_ADMIN"]), Value::Null),
            ("devices", json!(["/dev/fuse"]), Value::Null),
            ("extra_hosts", json!(["db:10.0.0.9"]), Value::Null),
            ("labels.by-hand", json!("1"), Value::Null),
            (
                "labels.org.opencontainers.image.version",
                json!("9"),
                Value::Null
            ),
            ("privileged", json!(true), Value::Null),
            ("tmpfs", json!(["/run"]), Value::Null),
        ]
    );
}

#[test]
fn what_the_job_sets_is_compared_field_by_field() {
    let (task, mut container) = observed_keys();
    container
        .image_defaults
        .labels
        .insert("com.example.team".into(), "image".into());
    container.image_defaults.user = "app".into();
    let s = &mut container.config.settings;
    // `docker update` cannot change these: a container recreated by hand.
    s.ulimits.insert(
        "nofile".into(),
        Ulimit {
            soft: 512,
            hard: 2048,
        },
    );
    s.ulimits
        .insert("nproc".into(), Ulimit { soft: 10, hard: 10 });
    s.labels.insert("com.example.team".into(), "image".into());
    s.shm_size = Some(64 << 20);
    s.cap_drop.clear();
    s.tmpfs.insert("/run".into(), "mode=1777,size=32m".into());
    // `docker update --cpus 2`.
    container.config.resources.nano_cpus = 2_000_000_000;
    assert_eq!(
        paths(&field_changes(&task.config, &container)),
        [
            ("labels.com.example.team", json!("image"), json!("core")),
            (
                "tmpfs",
                json!(["/run:mode=1777,size=32m", "/scratch"]),
                json!(["/run:mode=1777,noexec,size=64m", "/scratch"])
            ),
            ("cpus", json!(2.0), json!(1.25)),
            ("shm_size", json!("64m"), json!("128m")),
            ("ulimits.nofile", json!("512:2048"), json!("1024:2048")),
            ("cap_drop", Value::Null, json!(["CAP_MKNOD"])),
        ],
        "nproc, which the job does not set, is the engine's"
    );
}

#[test]
fn an_entrypoint_of_the_job_runs_without_the_image_command() {
    let (task, mut container) = observed_keys();
    container.image_cmd = Some(vec!["sh".into()]);
    assert_eq!(
        paths(&field_changes(&task.config, &container)),
        [],
        "Cmd as the job says"
    );

    // Without a command of its own, the engine reports no Cmd at all.
    let tasks = desired_tasks(
        &env_with_web(&format!(
            "{WORKER_TOML}entrypoint = [\"sleep\", \"3600\"]\n"
        )),
        &Secrets::new(),
    );
    let task = find(&tasks, "web", "app1", 0);
    let mut container = observed_from(task);
    container.config.command = None;
    assert_eq!(paths(&field_changes(&task.config, &container)), []);

    // `entrypoint = []`: none, not even the image's; the image's Cmd runs.
    let tasks = desired_tasks(
        &env_with_web(&format!("{WORKER_TOML}entrypoint = []\n")),
        &Secrets::new(),
    );
    let task = find(&tasks, "web", "app1", 0);
    let mut container = observed_from(task);
    container.image_defaults.entrypoint = Some(vec!["/entry.sh".into()]);
    assert_eq!(container.config.command, Some(vec!["sh".to_string()]));
    assert_eq!(paths(&field_changes(&task.config, &container)), []);
    // An engine that reports no entrypoint as null rather than [] agrees.
    container.config.settings.entrypoint = None;
    assert_eq!(paths(&field_changes(&task.config, &container)), []);
    // The image's entrypoint back, by hand: drift.
    container.config.settings.entrypoint = Some(vec!["/entry.sh".into()]);
    assert_eq!(
        paths(&field_changes(&task.config, &container)),
        [("entrypoint", json!(["/entry.sh"]), Value::Null)]
    );
}

#[test]
fn a_task_created_with_the_keys_shows_them() {
    let task = keys_task();
    let plan = plan_all(&[task], &observed(vec![("app1", HostState::default())]));
    let text = plan.to_string();
    for line in [
        "    entrypoint: [\"sleep\"]\n",
        "    user: \"1000:1000\"\n",
        "    ulimits.nofile: \"1024:2048\"\n",
        "    cap_add: [\"CAP_NET_ADMIN\",\"CAP_SYS_TIME\"]\n",
        "    tmpfs: [\"/run:mode=1777,noexec,size=64m\",\"/scratch\"]\n",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
}
