//! A task's container configuration in the terms drover compares.
//!
//! Both sides of a diff become a [`TaskConfig`]: the desired side is rendered
//! from the spec, the actual side is read back from `docker inspect`. Comparing
//! the two field by field is what lets `diff` see changes made by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_spec::units::{format_duration, format_size};
use drover_spec::{Environment, Job};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The labels drover puts on every container it creates.
pub mod labels {
    pub const ENV: &str = "drover.env";
    pub const JOB: &str = "drover.job";
    pub const HOST: &str = "drover.host";
    pub const TASK: &str = "drover.task";
    pub const SPEC: &str = "drover.spec";
    /// Names (not values) of the task's secret env vars, comma-separated, so
    /// a secret dropped from the spec stays masked while its container lives.
    pub const SECRETS: &str = "drover.secrets";
}

/// Shown instead of a secret's value, everywhere.
pub const MASK: &str = "***";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskConfig {
    pub image: String,
    /// `None`: the image's own command.
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Keys of `env` whose values are secrets: never shown.
    #[serde(skip)]
    pub secret_keys: BTreeSet<String>,
    /// `HOST:CONTAINER[:ro]` binds; Docker creates missing host directories.
    pub volumes: Vec<String>,
    /// Host paths bound read-only at the same path; a missing one is an error.
    pub host_files: Vec<String>,
    pub memory: Option<u64>,
    pub network: String,
    pub init: bool,
    pub restart: String,
    pub stop_timeout_secs: u64,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub health: Option<HealthConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// One task as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTask {
    pub job: String,
    pub host: String,
    pub task: u32,
    pub config: TaskConfig,
    /// The `drover.spec` label: a hash of `config`.
    pub spec_hash: String,
}

impl DesiredTask {
    /// The container name: unique per engine even when two hosts share one.
    pub fn container_name(&self, env: &str) -> String {
        format!("{env}.{}.{}.{}", self.job, self.host, self.task)
    }

    pub fn labels(&self, env: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (labels::ENV.to_string(), env.to_string()),
            (labels::JOB.to_string(), self.job.clone()),
            (labels::HOST.to_string(), self.host.clone()),
            (labels::TASK.to_string(), self.task.to_string()),
            (labels::SPEC.to_string(), self.spec_hash.clone()),
        ]);
        if !self.config.secret_keys.is_empty() {
            let names: Vec<&str> = self.config.secret_keys.iter().map(String::as_str).collect();
            labels.insert(labels::SECRETS.to_string(), names.join(","));
        }
        labels
    }
}

/// Values of `secret_env`, from the operator's environment or a secrets file.
pub type Secrets = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: secret {name} has no value: export {name}=... or put it in the secrets file")]
pub struct MissingSecret {
    pub file: String,
    pub name: String,
}

/// Renders the tasks of `job` on its hosts.
pub fn render_job(
    env: &Environment,
    job: &Job,
    secrets: &Secrets,
) -> Result<Vec<DesiredTask>, MissingSecret> {
    let mut job_env = job.env.clone();
    let mut secret_keys = BTreeSet::new();
    for name in &job.secret_env {
        let value = secrets.get(name).ok_or_else(|| MissingSecret {
            file: job.file.clone(),
            name: name.clone(),
        })?;
        job_env.insert(name.clone(), value.clone());
        secret_keys.insert(name.clone());
    }
    let mut log_options = BTreeMap::new();
    if job.log.rotates() {
        log_options.insert("max-size".to_string(), format_size(job.log.max_size));
        log_options.insert("max-file".to_string(), job.log.max_files.to_string());
    }
    let health = job.health.as_ref().map(|h| HealthConfig {
        cmd: h.cmd.clone(),
        interval: h.interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
    });
    Ok(job
        .tasks()
        .map(|(host, task)| {
            let mut env_vars = job_env.clone();
            // Who am I: lets one image serve several tasks on a host (e.g. derive a port).
            env_vars.insert("DROVER_ENV".to_string(), env.name.clone());
            env_vars.insert("DROVER_JOB".to_string(), job.name.clone());
            env_vars.insert("DROVER_HOST".to_string(), host.to_string());
            env_vars.insert("DROVER_TASK".to_string(), task.to_string());
            let config = TaskConfig {
                image: job.image.clone(),
                command: job.command.clone(),
                env: env_vars,
                secret_keys: secret_keys.clone(),
                volumes: job.volumes.iter().map(ToString::to_string).collect(),
                host_files: job.host_files.clone(),
                memory: job.memory,
                network: job.network.clone(),
                init: job.init,
                restart: job.restart.clone(),
                stop_timeout_secs: job.stop_timeout.as_secs(),
                log_driver: job.log.driver.clone(),
                log_options: log_options.clone(),
                health: health.clone(),
            };
            let spec_hash = config.hash();
            DesiredTask {
                job: job.name.clone(),
                host: host.to_string(),
                task,
                config,
                spec_hash,
            }
        })
        .collect())
}

impl TaskConfig {
    /// A short, stable hash of everything drover sets (secrets included, so a
    /// changed secret replaces the container; the hash does not reveal it).
    pub fn hash(&self) -> String {
        let mut canonical = serde_json::to_vec(self).unwrap_or_default();
        canonical.extend(self.secret_keys.iter().flat_map(|k| k.bytes().chain([0])));
        let digest = Sha256::digest(&canonical);
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// Every field as `(path, value)`, in display order. Secret values are
    /// real here; [`mask`] hides them when shown.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let mut fields = vec![
            ("image".to_string(), json!(self.image)),
            (
                "command".to_string(),
                self.command.as_ref().map_or(Value::Null, |c| json!(c)),
            ),
        ];
        fields.extend(self.env.iter().map(|(k, v)| (format!("env.{k}"), json!(v))));
        fields.push(("volumes".to_string(), json!(self.volumes)));
        fields.push(("host_files".to_string(), json!(self.host_files)));
        fields.push((
            "memory".to_string(),
            self.memory.map_or(Value::Null, |m| json!(format_size(m))),
        ));
        fields.push(("network".to_string(), json!(self.network)));
        fields.push(("init".to_string(), json!(self.init)));
        fields.push(("restart".to_string(), json!(self.restart)));
        fields.push((
            "stop_timeout".to_string(),
            json!(format_duration(Duration::from_secs(self.stop_timeout_secs))),
        ));
        fields.push(("log.driver".to_string(), json!(self.log_driver)));
        fields.extend(
            self.log_options
                .iter()
                .map(|(k, v)| (format!("log.{k}"), json!(v))),
        );
        if let Some(h) = &self.health {
            fields.push(("health.cmd".to_string(), json!(h.cmd)));
            fields.push((
                "health.interval".to_string(),
                json!(format_duration(h.interval)),
            ));
            fields.push((
                "health.timeout".to_string(),
                json!(format_duration(h.timeout)),
            ));
            fields.push(("health.retries".to_string(), json!(h.retries)));
            fields.push((
                "health.start_period".to_string(),
                json!(format_duration(h.start_period)),
            ));
        }
        fields
    }

    pub fn is_secret_field(&self, path: &str) -> bool {
        path.strip_prefix("env.")
            .is_some_and(|k| self.secret_keys.contains(k))
    }
}

/// A field's value as shown: secrets become [`MASK`].
pub fn mask(value: Option<&Value>, secret: bool) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(_) if secret => json!(MASK),
        Some(v) => v.clone(),
    }
}
