//! The suite's own Docker hosts, started by `scripts/test-hosts` (via
//! `scripts/test`): isolated engines, each in its own network namespace.
//! h1 keeps Docker's default log driver (json-file without a size limit,
//! which `doctor` warns about); h2 rotates it.
//!
//! Every test gets an environment name of its own, so tests run in parallel
//! on the same engines without touching each other's containers, and a
//! guard that removes that environment's containers when the test ends.

use std::process::Command;

use crate::cli::Drover;

pub struct Hosts {
    pub h1: String,
    pub h2: String,
    pub h1_netns: String,
    pub h2_netns: String,
    pub registry: String,
}

/// An environment variable the suite's hosts script sets.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: these tests need the suite's Docker hosts; run them with scripts/test"))
}

impl Hosts {
    pub fn get() -> Hosts {
        Hosts {
            h1: var("DROVER_TEST_H1"),
            h2: var("DROVER_TEST_H2"),
            h1_netns: var("DROVER_TEST_H1_NETNS"),
            h2_netns: var("DROVER_TEST_H2_NETNS"),
            registry: var("DROVER_TEST_REGISTRY"),
        }
    }
}

/// `docker ARGS…` on this machine's own engine (the one that builds the
/// fixture images and pushes to the test registry); panics on failure.
#[track_caller]
pub fn docker_local(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A test environment on h1 and h2 named `env`, cleaned up on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub env: String,
    pub hosts: Hosts,
    bin: String,
}

impl Cluster {
    /// `extra` is appended to drover.toml (e.g. another host).
    pub fn new(bin: &str, env: &str, extra: &str) -> Cluster {
        let hosts = Hosts::get();
        let toml = format!("name = \"{env}\"\n\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n{extra}\n", hosts.h1, hosts.h2);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
        std::fs::write(dir.path().join("drover.toml"), toml).expect("write drover.toml");
        let cluster = Cluster {
            dir,
            env: env.to_string(),
            hosts,
            bin: bin.to_string(),
        };
        cluster.cleanup();
        cluster
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn file(self, path: &str, contents: &str) -> Cluster {
        crate::tree(self.dir.path(), &[(path, contents)]);
        self
    }

    pub fn job(self, name: &str, toml: &str) -> Cluster {
        let path = format!("jobs/{name}.toml");
        self.file(&path, toml)
    }

    /// Writes a file of the environment in place (between two runs of one test).
    pub fn write(&self, path: &str, contents: &str) {
        crate::tree(self.dir.path(), &[(path, contents)]);
    }

    /// Rewrites a job file in place (between two runs of one test).
    pub fn set_job(&self, name: &str, toml: &str) {
        crate::tree(self.dir.path(), &[(&format!("jobs/{name}.toml"), toml)]);
    }

    pub fn remove_job(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(format!("jobs/{name}.toml")))
            .expect("remove job file");
    }

    pub fn drover(&self, args: &[&str]) -> Drover {
        Drover::new(&self.bin, self.dir.path(), args)
    }

    pub fn socket(&self, host: &str) -> &str {
        match host {
            "h1" => &self.hosts.h1,
            "h2" => &self.hosts.h2,
            other => panic!("no test host {other}"),
        }
    }

    /// `docker -H SOCKET ARGS…` on `host` ("h1" or "h2"); panics on failure.
    #[track_caller]
    pub fn docker(&self, host: &str, args: &[&str]) -> String {
        let out = self.docker_raw(host, args);
        assert!(
            out.status.success(),
            "docker {args:?} on {host} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn docker_raw(&self, host: &str, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.socket(host))
            .args(args)
            .output()
            .expect("run docker")
    }

    /// Names of this environment's containers on `host`, sorted.
    pub fn containers(&self, host: &str) -> Vec<String> {
        let filter = format!("label=drover.env={}", self.env);
        let out = self.docker(
            host,
            &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        );
        let mut names: Vec<String> = out
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        names.sort();
        names
    }

    /// `docker inspect -f FORMAT NAME` on `host`.
    #[track_caller]
    pub fn inspect(&self, host: &str, name: &str, format: &str) -> String {
        self.docker(host, &["inspect", "-f", format, name])
    }

    pub fn netns(&self, host: &str) -> &str {
        if host == "h1" {
            &self.hosts.h1_netns
        } else {
            &self.hosts.h2_netns
        }
    }

    /// Fetches `http://127.0.0.1:PORT/` inside `host`'s network namespace, retrying for up to 5 s.
    pub fn http_get(&self, host: &str, port: u16) -> Option<String> {
        for _ in 0..50 {
            if let Some(body) = self.http_get_once(host, port) {
                return Some(body);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }

    /// One attempt at `http://127.0.0.1:PORT/` inside `host`'s namespace.
    pub fn http_get_once(&self, host: &str, port: u16) -> Option<String> {
        let url = format!("http://127.0.0.1:{port}/");
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.netns(host)))
            .args(["curl", "-sf", "--max-time", "1", &url])
            .output()
            .expect("run nsenter");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn cleanup(&self) {
        for host in ["h1", "h2"] {
            for name in self.containers(host) {
                let _ = self.docker_raw(host, &["rm", "-f", "-v", &name]);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The remote-transport hosts `scripts/remote-hosts` starts (via
/// `scripts/test`): h3, a Docker engine behind an sshd (forwarding allowed
/// on one port, refused on another), and h4, an engine serving the API
/// with mutual TLS. Both are also reachable on plain unix sockets, for
/// inspecting them directly.
pub struct RemoteHosts {
    /// `ssh://root@127.0.0.1:PORT`, unix-socket forwarding allowed.
    pub ssh: String,
    /// The same sshd on a port that refuses unix-socket forwarding.
    pub ssh_nofwd: String,
    /// An ssh client config that logs in to both (for `DROVER_SSH_CONFIG`).
    pub ssh_config: String,
    pub sshd_pid: i32,
    /// h3's own socket, `unix://…`.
    pub h3: String,
    /// `tcp://127.0.0.1:PORT`, TLS.
    pub tls: String,
    pub tls_ca: String,
    pub tls_cert: String,
    pub tls_key: String,
    /// A CA, and a client certificate signed by it, that h4 does not trust.
    pub tls_other_ca: String,
    pub tls_other_cert: String,
    pub tls_other_key: String,
    /// h4's own socket, `unix://…`.
    pub h4: String,
    /// The directory `scripts/remote-hosts up` was given (logs, pid files).
    pub dir: std::path::PathBuf,
}

impl RemoteHosts {
    pub fn get() -> RemoteHosts {
        let ssh_config = var("DROVER_TEST_SSH_CONFIG");
        // DIR/ssh/ssh_config
        let dir = std::path::Path::new(&ssh_config)
            .ancestors()
            .nth(2)
            .expect("DROVER_TEST_SSH_CONFIG is DIR/ssh/ssh_config")
            .to_path_buf();
        RemoteHosts {
            ssh: var("DROVER_TEST_SSH_HOST"),
            ssh_nofwd: var("DROVER_TEST_SSH_NOFWD_HOST"),
            ssh_config,
            sshd_pid: var("DROVER_TEST_SSHD_PID")
                .parse()
                .expect("DROVER_TEST_SSHD_PID is a pid"),
            h3: var("DROVER_TEST_H3"),
            tls: var("DROVER_TEST_TLS_HOST"),
            tls_ca: var("DROVER_TEST_TLS_CA"),
            tls_cert: var("DROVER_TEST_TLS_CERT"),
            tls_key: var("DROVER_TEST_TLS_KEY"),
            tls_other_ca: var("DROVER_TEST_TLS_OTHER_CA"),
            tls_other_cert: var("DROVER_TEST_TLS_OTHER_CERT"),
            tls_other_key: var("DROVER_TEST_TLS_OTHER_KEY"),
            h4: var("DROVER_TEST_H4_SOCK"),
            dir,
        }
    }

    /// The pid of `host`'s dockerd ("h3" or "h4"), from the script's pid file.
    pub fn dockerd_pid(&self, host: &str) -> i32 {
        let file = self.dir.join("pids").join(format!("{host}-dockerd.pid"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{} holds no pid: {e}", file.display()))
    }

    /// The sshd's log (`LogLevel VERBOSE`: one "Accepted publickey" line per login).
    pub fn sshd_log(&self) -> std::path::PathBuf {
        self.dir.join("ssh").join("sshd.log")
    }

    /// `unix://…` of "h3" or "h4".
    pub fn socket(&self, host: &str) -> &str {
        match host {
            "h3" => &self.h3,
            "h4" => &self.h4,
            other => panic!("no remote test host {other}"),
        }
    }
}
