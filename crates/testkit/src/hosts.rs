//! The suite's own Docker hosts, started by `scripts/test-hosts` (via
//! `scripts/test`): isolated engines, each in its own network namespace.
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
