//! Defaults, profiles and jobs merge key by key: job > profile > defaults;
//! tables merge entry by entry, lists and single values are replaced whole.

use std::time::Duration;

use drover_spec::{load, DockerAddress, Volume};

fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const ENV: &str = r#"
name = "prod"
[hosts.app1]
docker = "unix:///var/run/docker.sock"
[hosts.app2]
docker = "tcp://10.0.0.12:2376"
insecure = true

[defaults]
restart = "always"
stop_timeout = "20s"
host_files = ["/etc/localtime", "/etc/passwd"]
env = { TZ = "UTC", LEVEL = "info", FROM = "defaults" }
log = { max_size = "10m" }
[defaults.update]
parallel = 2

[profiles.jre8]
image = "registry.example:5000/base/jre8"
memory = "512m"
env = { JAVA_OPTS = "-Xmx512m", FROM = "profile" }
log = { max_files = 3 }
"#;

#[test]
fn job_over_profile_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("drover.toml", ENV),
            (
                "jobs/api.toml",
                r#"
profile = "jre8"
hosts = ["app1", "app2"]
instances = 2
memory = "1g"
env = { FROM = "job", PORT = 8080 }
host_files = ["/etc/hosts"]
volumes = ["/data/api:/data", "/etc/api:/etc/api:ro"]
[update]
delay = "5s"
"#,
            ),
        ],
    );
    let env = load(dir.path(), None).unwrap();
    let api = &env.jobs["api"];
    assert_eq!(
        api.image.as_str(),
        "registry.example:5000/base/jre8",
        "from the profile"
    );
    assert_eq!(api.memory, Some(1 << 30), "the job's own value wins");
    assert_eq!(api.restart.to_string(), "always", "from the defaults");
    assert_eq!(api.stop_timeout, Duration::from_secs(20));
    assert_eq!(
        api.host_files,
        vec!["/etc/hosts"],
        "lists are replaced whole"
    );
    let env_vars: Vec<(&str, &str)> = api
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env_vars,
        vec![
            ("FROM", "job"),
            ("JAVA_OPTS", "-Xmx512m"),
            ("LEVEL", "info"),
            ("PORT", "8080"),
            ("TZ", "UTC")
        ],
        "tables merge entry by entry"
    );
    assert_eq!(
        (
            api.log.driver.to_string().as_str(),
            api.log.max_size,
            api.log.max_files
        ),
        ("local", 10 << 20, 3)
    );
    assert_eq!(
        (api.update.parallel, api.update.delay),
        (2, Duration::from_secs(5))
    );
    assert_eq!(
        api.volumes[1],
        Volume {
            host: "/etc/api".into(),
            container: "/etc/api".into(),
            read_only: true
        }
    );
    assert_eq!(
        api.tasks().collect::<Vec<_>>(),
        vec![("app1", 0), ("app1", 1), ("app2", 0), ("app2", 1)]
    );
    assert_eq!(
        env.hosts["app2"].docker,
        DockerAddress::Tcp {
            host: "10.0.0.12".into(),
            port: 2376
        }
    );
}

#[test]
fn built_in_defaults_guard_against_daemon_pitfalls() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "drover.toml",
                "name = \"x\"\n[hosts.a]\ndocker = \"unix:///s\"\n",
            ),
            ("jobs/web.toml", "image = \"web:1\"\nhosts = [\"a\"]\n"),
        ],
    );
    let env = load(dir.path(), None).unwrap();
    let web = &env.jobs["web"];
    assert_eq!(web.network.to_string(), "host");
    assert!(web.init, "an init process reaps zombies");
    assert_eq!(web.restart.to_string(), "unless-stopped");
    assert_eq!(web.stop_timeout, Duration::from_secs(30));
    assert_eq!(
        (
            web.log.driver.to_string().as_str(),
            web.log.max_size,
            web.log.max_files
        ),
        ("local", 20 << 20, 5)
    );
    assert_eq!(web.host_files, vec!["/etc/localtime"]);
    assert_eq!(web.instances, 1);
    assert!(web.health.is_none());
    assert_eq!((web.update.parallel, web.update.auto_rollback), (1, true));
}

#[test]
fn health_defaults_fill_in_around_cmd() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("drover.toml", "name = \"x\"\n[hosts.a]\ndocker = \"unix:///s\"\n[defaults.health]\ninterval = \"3s\"\n"),
            ("jobs/web.toml", "image = \"web:1\"\nhosts = [\"a\"]\n[health]\ncmd = [\"true\"]\n"),
        ],
    );
    let health = load(dir.path(), None).unwrap().jobs["web"]
        .health
        .clone()
        .unwrap();
    assert_eq!(health.cmd, vec!["true"]);
    assert_eq!(health.interval, Duration::from_secs(3));
    assert_eq!(health.retries, 3);
}

#[test]
fn logs_are_never_unbounded() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "drover.toml",
                "name = \"x\"\n[hosts.a]\ndocker = \"unix:///s\"\n",
            ),
            (
                "jobs/web.toml",
                "image = \"web:1\"\nhosts = [\"a\"]\nlog = { driver = \"none\" }\n",
            ),
            (
                "jobs/api.toml",
                "image = \"web:1\"\nhosts = [\"a\"]\nlog = { max_size = \"0\" }\n",
            ),
        ],
    );
    let err = load(dir.path(), None).unwrap_err().to_string();
    assert!(
        err.contains("jobs/api.toml:3:20: log max_size must be above 0"),
        "{err}"
    );
    assert!(
        err.contains("jobs/web.toml:3:18: log driver \"none\" discards logs"),
        "{err}"
    );
}
