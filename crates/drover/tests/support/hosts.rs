//! The suite's own Docker hosts, started by `scripts/test-hosts` (via
//! `scripts/test`): two isolated engines, each in its own network namespace.
//!
//! Every test gets an environment name of its own, so tests run in parallel
//! on the same engines without touching each other's containers, and a guard
//! that removes that environment's containers when the test ends.

use std::process::Command;

use super::Test;

pub struct Hosts {
    pub h1: String,
    pub h2: String,
    pub h1_netns: String,
    pub h2_netns: String,
    pub registry: String,
}

impl Hosts {
    pub fn get() -> Hosts {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: these tests need the suite's Docker hosts; run them with scripts/test")
            })
        };
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
    pub test: Test,
    pub env: String,
    pub hosts: Hosts,
}

impl Cluster {
    /// `extra_hosts` is appended to drover.toml (e.g. an unreachable host).
    pub fn new(env: &str, extra_hosts: &str) -> Cluster {
        let hosts = Hosts::get();
        let toml = format!(
            "name = \"{env}\"\n\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n{extra_hosts}\n",
            hosts.h1, hosts.h2
        );
        let test = Test::new().file("drover.toml", &toml);
        let cluster = Cluster {
            test,
            env: env.to_string(),
            hosts,
        };
        cluster.cleanup();
        cluster
    }

    pub fn job(self, name: &str, toml: &str) -> Cluster {
        let path = self.test.path().join(format!("jobs/{name}.toml"));
        std::fs::create_dir_all(path.parent().expect("jobs dir")).expect("create jobs dir");
        std::fs::write(path, super::unindent(toml)).expect("write job");
        self
    }

    pub fn remove_job(self, name: &str) -> Cluster {
        std::fs::remove_file(self.test.path().join(format!("jobs/{name}.toml")))
            .expect("remove job file");
        self
    }

    pub fn drover(&self, args: &[&str]) -> super::Run {
        self.drover_env(args, &[])
    }

    pub fn drover_env(&self, args: &[&str], env: &[(&str, &str)]) -> super::Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        cmd.arg("-C")
            .arg(self.test.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DROVER_SECRETS_FILE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        super::Run::from(cmd.output().expect("run drover"))
    }

    /// `docker -H SOCKET ARGS…` on `host` ("h1" or "h2"); panics on failure.
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
        let socket = match host {
            "h1" => &self.hosts.h1,
            "h2" => &self.hosts.h2,
            other => panic!("no test host {other}"),
        };
        Command::new("docker")
            .arg("-H")
            .arg(socket)
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
    pub fn inspect(&self, host: &str, name: &str, format: &str) -> String {
        self.docker(host, &["inspect", "-f", format, name])
    }

    /// Fetches `http://127.0.0.1:PORT/` inside `host`'s network namespace.
    pub fn http_get(&self, host: &str, port: u16) -> Option<String> {
        let netns = if host == "h1" {
            &self.hosts.h1_netns
        } else {
            &self.hosts.h2_netns
        };
        let url = format!("http://127.0.0.1:{port}/");
        for _ in 0..50 {
            let out = Command::new("nsenter")
                .arg(format!("--net={netns}"))
                .args(["curl", "-sf", "--max-time", "2", &url])
                .output()
                .expect("run nsenter");
            if out.status.success() {
                return Some(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
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
