//! The standard environment of the test suite: two hosts, shared defaults,
//! a profile, and a web job with a secret. Tests that need another shape
//! start from these and change one thing.

/// `prod` on app1 (a unix socket) and app2 (plain TCP, marked insecure), shared defaults, and a
/// profile. The plan tests compare rendered plans with these exact values.
pub const DROVER_TOML: &str = r#"
name = "prod"
[hosts.app1]
docker = "unix:///var/run/docker.sock"
[hosts.app2]
docker = "tcp://10.0.0.12:2376"
insecure = true

[defaults]
host_files = ["/etc/localtime"]
stop_timeout = "30s"
log = { driver = "local", max_size = "20m", max_files = 5 }

[profiles.jre8]
image = "registry.example:5000/base/jre8"
env = { JAVA_OPTS = "-Xmx512m" }
"#;

/// Two tasks on each of app1 and app2, with a command, an env var and a secret.
pub const WEB_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1", "app2"]
instances = 2
command = ["httpd", "-f", "-p", "8080"]
env = { MODE = "prod" }
secret_env = ["DB_PASSWORD"]
memory = "64m"
"#;

/// One task on app1 running the image's own command.
pub const WORKER_TOML: &str = r#"
image = "busybox:1.36"
hosts = ["app1"]
"#;

/// `web` and `worker` with `web`'s file as given.
pub fn files(web: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("drover.toml", DROVER_TOML),
        ("jobs/web.toml", web),
        ("jobs/worker.toml", WORKER_TOML),
    ]
}
