//! A task's container configuration in the terms drover compares.
//!
//! Both sides of a diff become a [`TaskConfig`]: the desired side is rendered
//! from the spec, the actual side is read back from `docker inspect`. Comparing
//! the two field by field is what lets `diff` see changes made by hand,
//! including every setting `docker update` can change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use drover_spec::units::{format_duration, format_size};
use drover_spec::{Device, Environment, ImageRef, Job, Ulimit};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::names::{labels, TaskKey};
use crate::observed::ImageDefaults;

/// Shown instead of a secret's value, everywhere.
pub const MASK: &str = "***";

/// A secret's value. Its `Debug` and `Display` print [`MASK`], so no log
/// line, error or panic message can reveal it; [`Secret::expose`] is the one
/// way to the value, for the engine's create request.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fingerprint for comparing and hashing without the value itself.
    fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("secret:{hex}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// One environment variable's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnvValue {
    Plain(String),
    Secret(Secret),
}

impl EnvValue {
    /// What the container gets.
    pub fn expose(&self) -> &str {
        match self {
            EnvValue::Plain(v) => v,
            EnvValue::Secret(s) => s.expose(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, EnvValue::Secret(_))
    }

    /// The value as compared and hashed: secrets by fingerprint only.
    fn compared(&self) -> Value {
        match self {
            EnvValue::Plain(v) => json!(v),
            EnvValue::Secret(s) => json!(s.fingerprint()),
        }
    }
}

/// Settings `docker update` can change by hand. drover sets none of them
/// beyond memory (and swap, to the same amount), so any other value on a
/// container is drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory_reservation: i64,
    /// Memory plus swap; drover sets it equal to `memory` (no swap).
    pub memory_swap: i64,
    pub pids_limit: i64,
    pub blkio_weight: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthConfig {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl HealthConfig {
    /// How long a new container may take to report healthy.
    pub fn deadline(&self) -> Duration {
        self.start_period + (self.interval + self.timeout) * (self.retries + 1) + self.interval
    }
}

/// The container settings hand-run fleets use, beyond drover's basics.
/// Each left unset is the image's or the engine's: it is listed in no
/// field (so a job without them keeps the hash it had before drover knew
/// them) and is not drift ([`Settings::settle_unset`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `Some([])`: no entrypoint, not even the image's.
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// The job's own labels; drover's (`drover.*`) are not among them.
    pub labels: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Sorted, spelled as [`drover_spec::Capability`] spells them.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub devices: Vec<Device>,
    /// `NAME:ADDRESS`, as [`drover_spec::ExtraHost`] spells them.
    pub extra_hosts: Vec<String>,
    /// Container path → options, sorted and comma-separated (empty: the engine's).
    pub tmpfs: BTreeMap<String, String>,
    /// Bytes of `/dev/shm`.
    pub shm_size: Option<u64>,
}

impl Settings {
    /// Reads both sides of a comparison in the light of what a container
    /// gets for the keys its job leaves unset: the image's entrypoint, user,
    /// workdir and labels, and the engine's shm size and ulimits (a daemon
    /// may have defaults of its own). What the job sets, or what differs
    /// from the image's own, is drift; the rest is not.
    pub fn settle_unset(want: &mut Settings, actual: &mut Settings, image: &ImageDefaults) {
        let set = |text: &str| (!text.is_empty()).then(|| text.to_string());
        if want.entrypoint.is_none() {
            want.entrypoint.clone_from(&image.entrypoint);
        }
        if want.user.is_none() {
            want.user = set(&image.user);
        }
        if want.workdir.is_none() {
            want.workdir = set(&image.workdir);
        }
        // No entrypoint is none, however an engine or an image writes it.
        for side in [&mut *want, &mut *actual] {
            if side.entrypoint.as_ref().is_some_and(Vec::is_empty) {
                side.entrypoint = None;
            }
        }
        actual
            .labels
            .retain(|k, v| want.labels.contains_key(k) || image.labels.get(k) != Some(v));
        actual
            .ulimits
            .retain(|name, _| want.ulimits.contains_key(name));
        if want.shm_size.is_none() {
            actual.shm_size = None;
        }
    }

    /// Adds the settings that are set to a record of [`TaskConfig::to_record`].
    fn record_into(&self, record: &mut serde_json::Map<String, Value>) {
        let mut put = |key: &str, value: Value| {
            record.insert(key.to_string(), value);
        };
        if let Some(e) = &self.entrypoint {
            put("entrypoint", json!(e));
        }
        if let Some(u) = &self.user {
            put("user", json!(u));
        }
        if let Some(w) = &self.workdir {
            put("workdir", json!(w));
        }
        if !self.labels.is_empty() {
            put("labels", json!(self.labels));
        }
        if !self.ulimits.is_empty() {
            let ulimits: BTreeMap<&str, [i64; 2]> = self
                .ulimits
                .iter()
                .map(|(name, u)| (name.as_str(), [u.soft, u.hard]))
                .collect();
            put("ulimits", json!(ulimits));
        }
        if !self.cap_add.is_empty() {
            put("cap_add", json!(self.cap_add));
        }
        if !self.cap_drop.is_empty() {
            put("cap_drop", json!(self.cap_drop));
        }
        if self.privileged {
            put("privileged", json!(true));
        }
        if !self.devices.is_empty() {
            let devices: Vec<Value> = self
                .devices
                .iter()
                .map(|d| json!({"host": d.host, "container": d.container, "permissions": d.permissions}))
                .collect();
            put("devices", json!(devices));
        }
        if !self.extra_hosts.is_empty() {
            put("extra_hosts", json!(self.extra_hosts));
        }
        if !self.tmpfs.is_empty() {
            put("tmpfs", json!(self.tmpfs));
        }
        if let Some(bytes) = self.shm_size {
            put("shm_size", json!(bytes));
        }
    }

    /// The inverse of [`Settings::record_into`]: an absent key is unset (a
    /// record written before drover knew it), a malformed one an error.
    fn from_record(record: &Value) -> Result<Settings, String> {
        let bad = |what: &str| format!("the recorded configuration has no valid {what}");
        let text = |v: &Value| v.as_str().map(str::to_string);
        let list = |v: &Value| -> Option<Vec<String>> { v.as_array()?.iter().map(text).collect() };
        let map = |v: &Value| -> Option<BTreeMap<String, String>> {
            v.as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect()
        };
        // Absent is the default; present must read as `read` says.
        fn or_default<T: Default>(
            value: &Value,
            read: impl Fn(&Value) -> Option<T>,
            bad: impl Fn() -> String,
        ) -> Result<T, String> {
            match value {
                Value::Null => Ok(T::default()),
                v => read(v).ok_or_else(bad),
            }
        }
        let ulimit = |v: &Value| -> Option<Ulimit> {
            match v.as_array()?.as_slice() {
                [soft, hard] => Some(Ulimit {
                    soft: soft.as_i64()?,
                    hard: hard.as_i64()?,
                }),
                _ => None,
            }
        };
        let device = |v: &Value| -> Option<Device> {
            Some(Device {
                host: text(&v["host"])?,
                container: text(&v["container"])?,
                permissions: text(&v["permissions"])?,
            })
        };
        Ok(Settings {
            entrypoint: or_default(
                &record["entrypoint"],
                |v| list(v).map(Some),
                || bad("entrypoint"),
            )?,
            user: or_default(&record["user"], |v| text(v).map(Some), || bad("user"))?,
            workdir: or_default(&record["workdir"], |v| text(v).map(Some), || bad("workdir"))?,
            labels: or_default(&record["labels"], map, || bad("labels"))?,
            ulimits: or_default(
                &record["ulimits"],
                |v| {
                    v.as_object()?
                        .iter()
                        .map(|(k, v)| Some((k.clone(), ulimit(v)?)))
                        .collect()
                },
                || bad("ulimits"),
            )?,
            cap_add: or_default(&record["cap_add"], list, || bad("cap_add"))?,
            cap_drop: or_default(&record["cap_drop"], list, || bad("cap_drop"))?,
            privileged: or_default(&record["privileged"], Value::as_bool, || bad("privileged"))?,
            devices: or_default(
                &record["devices"],
                |v| v.as_array()?.iter().map(device).collect(),
                || bad("devices"),
            )?,
            extra_hosts: or_default(&record["extra_hosts"], list, || bad("extra_hosts"))?,
            tmpfs: or_default(&record["tmpfs"], map, || bad("tmpfs"))?,
            shm_size: or_default(
                &record["shm_size"],
                |v| v.as_u64().map(Some),
                || bad("shm_size"),
            )?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConfig {
    pub image: String,
    /// `None`: the image's own command.
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, EnvValue>,
    /// `HOST:CONTAINER[:ro]` binds; Docker creates missing host directories.
    pub volumes: Vec<String>,
    /// Host paths bound read-only at the same path; a missing one is an error.
    pub host_files: Vec<String>,
    pub memory: Option<u64>,
    pub resources: Resources,
    pub network: String,
    pub init: bool,
    pub restart: String,
    pub stop_timeout: Duration,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub health: Option<HealthConfig>,
    pub settings: Settings,
}

/// One task as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTask {
    pub key: TaskKey,
    /// The image as the spec names it, typed: how the host's images are
    /// searched and whether it can be pulled. `config.image` is its text.
    pub image: ImageRef,
    pub config: TaskConfig,
    /// The `drover.spec` label: a hash of `config`.
    pub spec_hash: String,
}

impl DesiredTask {
    pub fn container_name(&self, env: &str) -> String {
        self.key.container_name(env)
    }

    /// The labels every container of this task carries; who created it and
    /// when are added by the executor.
    pub fn labels(&self, env: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::from([
            (labels::ENV.to_string(), env.to_string()),
            (labels::JOB.to_string(), self.key.job.clone()),
            (labels::HOST.to_string(), self.key.host.clone()),
            (labels::TASK.to_string(), self.key.task.to_string()),
            (labels::SPEC.to_string(), self.spec_hash.clone()),
        ]);
        let secrets: Vec<&str> = self.config.secret_names().collect();
        if !secrets.is_empty() {
            map.insert(labels::SECRETS.to_string(), secrets.join(","));
        }
        map
    }
}

/// Values of `secret_env`, from the operator's environment or a secrets file.
pub type Secrets = BTreeMap<String, Secret>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: secret {name} has no value: export {name}=... or put it in the secrets file (secrets.env beside drover.toml, or DROVER_SECRETS_FILE)")]
pub struct MissingSecret {
    pub file: String,
    pub name: String,
}

/// The names of the environment variables drover sets in every task.
pub const IDENTITY_ENV: [&str; 4] = ["DROVER_ENV", "DROVER_JOB", "DROVER_HOST", "DROVER_TASK"];

/// The environment variables drover sets in every task.
pub fn identity_env(env: &str, key: &TaskKey) -> [(String, String); 4] {
    let [e, j, h, t] = IDENTITY_ENV;
    [
        (e.to_string(), env.to_string()),
        (j.to_string(), key.job.clone()),
        (h.to_string(), key.host.clone()),
        (t.to_string(), key.task.to_string()),
    ]
}

/// Renders the tasks of `job` on its hosts.
pub fn render_job(
    env: &Environment,
    job: &Job,
    secrets: &Secrets,
) -> Result<Vec<DesiredTask>, MissingSecret> {
    let mut job_env: BTreeMap<String, EnvValue> = job
        .env
        .iter()
        .map(|(k, v)| (k.clone(), EnvValue::Plain(v.clone())))
        .collect();
    for name in &job.secret_env {
        let value = secrets.get(name).ok_or_else(|| MissingSecret {
            file: job
                .secret_env_places
                .get(name)
                .map_or_else(|| job.file.clone(), ToString::to_string),
            name: name.clone(),
        })?;
        job_env.insert(name.clone(), EnvValue::Secret(value.clone()));
    }
    let mut log_options = BTreeMap::new();
    if job.log.driver.rotates() {
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
    let memory_swap = job
        .memory
        .map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX));
    let nano_cpus = job
        .cpus
        .map_or(0, |c| i64::try_from(c.nanos()).unwrap_or(i64::MAX));
    let settings = Settings {
        entrypoint: job.entrypoint.clone(),
        user: job.user.clone(),
        workdir: job.workdir.clone(),
        labels: job.labels.clone(),
        ulimits: job.ulimits.clone(),
        cap_add: job.cap_add.iter().map(ToString::to_string).collect(),
        cap_drop: job.cap_drop.iter().map(ToString::to_string).collect(),
        privileged: job.privileged,
        devices: job.devices.clone(),
        extra_hosts: job.extra_hosts.iter().map(ToString::to_string).collect(),
        tmpfs: job
            .tmpfs
            .iter()
            .map(|t| (t.path.clone(), t.options_text()))
            .collect(),
        shm_size: job.shm_size,
    };
    Ok(job
        .tasks()
        .map(|(host, task)| {
            let key = TaskKey::new(&job.name, host, task);
            let mut env_vars = job_env.clone();
            // Who am I: lets one image serve several tasks on a host (e.g. derive a port).
            for (k, v) in identity_env(&env.name, &key) {
                env_vars.insert(k, EnvValue::Plain(v));
            }
            let config = TaskConfig {
                image: job.image.as_str().to_string(),
                command: job.command.clone(),
                env: env_vars,
                volumes: job.volumes.iter().map(ToString::to_string).collect(),
                host_files: job.host_files.clone(),
                memory: job.memory,
                resources: Resources {
                    memory_swap,
                    nano_cpus,
                    ..Resources::default()
                },
                network: job.network.to_string(),
                init: job.init,
                restart: job.restart.to_string(),
                stop_timeout: job.stop_timeout,
                log_driver: job.log.driver.to_string(),
                log_options: log_options.clone(),
                health: health.clone(),
                settings: settings.clone(),
            };
            let spec_hash = config.hash();
            DesiredTask {
                key,
                image: job.image.clone(),
                config,
                spec_hash,
            }
        })
        .collect())
}

impl TaskConfig {
    /// `text` with each of this configuration's secret values masked: what
    /// drover quotes of a task's own output (the last lines of a container
    /// that failed its gate, of a release command) never prints a secret,
    /// even when the task printed it.
    pub fn mask_secrets(&self, text: &str) -> String {
        let values: Vec<&str> = self
            .env
            .values()
            .filter_map(|v| match v {
                EnvValue::Secret(secret) => Some(secret.expose()),
                EnvValue::Plain(_) => None,
            })
            .collect();
        mask_values(text, values)
    }

    /// A short, stable hash of everything drover sets. A changed secret
    /// changes it (so the container is replaced); the hash does not reveal it.
    pub fn hash(&self) -> String {
        let mut canonical = Vec::new();
        for (path, value) in self.fields() {
            canonical.extend(path.as_bytes());
            canonical.push(0);
            canonical.extend(value.to_string().as_bytes());
            canonical.push(0);
        }
        let digest = Sha256::digest(&canonical);
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.env
            .iter()
            .filter(|(_, v)| v.is_secret())
            .map(|(k, _)| k.as_str())
    }

    /// Every field as `(path, value)`, in display order. Secret values are
    /// fingerprints here; [`mask`] hides even those when shown. Settings left
    /// at the engine's default are `null`; the [`Settings`] left unset are
    /// not listed at all.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        let nonzero = |n: i64| (n != 0).then(|| json!(n));
        let r = &self.resources;
        let s = &self.settings;
        let mut fields = vec![("image".to_string(), json!(self.image))];
        let put = |fields: &mut Vec<(String, Value)>, path: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.push((path.to_string(), value));
            }
        };
        put(
            &mut fields,
            "entrypoint",
            s.entrypoint.as_ref().map(|e| json!(e)),
        );
        fields.push((
            "command".to_string(),
            opt(self.command.as_ref().map(|c| json!(c))),
        ));
        put(&mut fields, "user", s.user.as_ref().map(|u| json!(u)));
        put(&mut fields, "workdir", s.workdir.as_ref().map(|w| json!(w)));
        fields.extend(
            self.env
                .iter()
                .map(|(k, v)| (format!("env.{k}"), v.compared())),
        );
        fields.extend(
            s.labels
                .iter()
                .map(|(k, v)| (format!("labels.{k}"), json!(v))),
        );
        fields.extend([
            ("volumes".to_string(), json!(self.volumes)),
            ("host_files".to_string(), json!(self.host_files)),
        ]);
        let tmpfs: Vec<String> = s
            .tmpfs
            .iter()
            .map(|(path, options)| match options.as_str() {
                "" => path.clone(),
                options => format!("{path}:{options}"),
            })
            .collect();
        put(
            &mut fields,
            "tmpfs",
            (!tmpfs.is_empty()).then(|| json!(tmpfs)),
        );
        let devices: Vec<String> = s.devices.iter().map(ToString::to_string).collect();
        put(
            &mut fields,
            "devices",
            (!devices.is_empty()).then(|| json!(devices)),
        );
        fields.extend([
            (
                "memory".to_string(),
                opt(self.memory.map(|m| json!(format_size(m)))),
            ),
            (
                "memory_swap".to_string(),
                opt(
                    (r.memory_swap != 0).then(|| match u64::try_from(r.memory_swap) {
                        Ok(bytes) => json!(format_size(bytes)),
                        Err(_) => json!(r.memory_swap),
                    }),
                ),
            ),
            (
                "memory_reservation".to_string(),
                opt(nonzero(r.memory_reservation)),
            ),
            (
                "cpus".to_string(),
                opt((r.nano_cpus != 0).then(|| json!(r.nano_cpus as f64 / 1e9))),
            ),
            ("cpu_shares".to_string(), opt(nonzero(r.cpu_shares))),
            ("cpu_period".to_string(), opt(nonzero(r.cpu_period))),
            ("cpu_quota".to_string(), opt(nonzero(r.cpu_quota))),
            (
                "cpu_realtime_period".to_string(),
                opt(nonzero(r.cpu_realtime_period)),
            ),
            (
                "cpu_realtime_runtime".to_string(),
                opt(nonzero(r.cpu_realtime_runtime)),
            ),
            (
                "cpuset_cpus".to_string(),
                opt((!r.cpuset_cpus.is_empty()).then(|| json!(r.cpuset_cpus))),
            ),
            (
                "cpuset_mems".to_string(),
                opt((!r.cpuset_mems.is_empty()).then(|| json!(r.cpuset_mems))),
            ),
            ("pids_limit".to_string(), opt(nonzero(r.pids_limit))),
            ("blkio_weight".to_string(), opt(nonzero(r.blkio_weight))),
        ]);
        put(
            &mut fields,
            "shm_size",
            s.shm_size.map(|b| json!(format_size(b))),
        );
        fields.extend(
            s.ulimits
                .iter()
                .map(|(name, u)| (format!("ulimits.{name}"), json!(u.to_string()))),
        );
        fields.push(("network".to_string(), json!(self.network)));
        put(
            &mut fields,
            "extra_hosts",
            (!s.extra_hosts.is_empty()).then(|| json!(s.extra_hosts)),
        );
        fields.push(("init".to_string(), json!(self.init)));
        put(
            &mut fields,
            "privileged",
            s.privileged.then_some(json!(true)),
        );
        put(
            &mut fields,
            "cap_add",
            (!s.cap_add.is_empty()).then(|| json!(s.cap_add)),
        );
        put(
            &mut fields,
            "cap_drop",
            (!s.cap_drop.is_empty()).then(|| json!(s.cap_drop)),
        );
        fields.extend([
            ("restart".to_string(), json!(self.restart)),
            (
                "stop_timeout".to_string(),
                json!(format_duration(self.stop_timeout)),
            ),
            ("log.driver".to_string(), json!(self.log_driver)),
        ]);
        fields.extend(
            self.log_options
                .iter()
                .map(|(k, v)| (format!("log.{k}"), json!(v))),
        );
        if let Some(h) = &self.health {
            fields.extend([
                ("health.cmd".to_string(), json!(h.cmd)),
                (
                    "health.interval".to_string(),
                    json!(format_duration(h.interval)),
                ),
                (
                    "health.timeout".to_string(),
                    json!(format_duration(h.timeout)),
                ),
                ("health.retries".to_string(), json!(h.retries)),
                (
                    "health.start_period".to_string(),
                    json!(format_duration(h.start_period)),
                ),
            ]);
        }
        fields
    }

    pub fn is_secret_field(&self, path: &str) -> bool {
        path.strip_prefix("env.")
            .and_then(|k| self.env.get(k))
            .is_some_and(EnvValue::is_secret)
    }

    /// The configuration as recorded in a label: secrets by name only.
    pub fn to_record(&self) -> Value {
        let env: BTreeMap<&str, Value> = self
            .env
            .iter()
            .map(|(k, v)| match v {
                EnvValue::Plain(v) => (k.as_str(), json!(v)),
                EnvValue::Secret(_) => (k.as_str(), json!({ "secret": k })),
            })
            .collect();
        let mut record = json!({
            "image": self.image,
            "command": self.command,
            "env": env,
            "volumes": self.volumes,
            "host_files": self.host_files,
            "memory": self.memory,
            "network": self.network,
            "init": self.init,
            "restart": self.restart,
            "stop_timeout_secs": self.stop_timeout.as_secs(),
            "log_driver": self.log_driver,
            "log_options": self.log_options,
            "health": self.health.as_ref().map(|h| json!({
                "cmd": h.cmd,
                "interval_ms": h.interval.as_millis() as u64,
                "timeout_ms": h.timeout.as_millis() as u64,
                "retries": h.retries,
                "start_period_ms": h.start_period.as_millis() as u64,
            })),
        });
        if let Value::Object(map) = &mut record {
            if self.resources.nano_cpus != 0 {
                map.insert("nano_cpus".to_string(), json!(self.resources.nano_cpus));
            }
            self.settings.record_into(map);
        }
        record
    }

    /// The inverse of [`TaskConfig::to_record`]; secret values come from
    /// `secrets` (the operator's, now). `None` if the record is unreadable.
    pub fn from_record(record: &Value, secrets: &Secrets) -> Result<TaskConfig, String> {
        let text = |v: &Value| v.as_str().map(str::to_string);
        let list = |v: &Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let bad = |what: &str| format!("the recorded configuration has no valid {what}");
        let mut env = BTreeMap::new();
        for (k, v) in record["env"].as_object().ok_or_else(|| bad("env"))? {
            let value = match v {
                Value::String(s) => EnvValue::Plain(s.clone()),
                _ => EnvValue::Secret(secrets.get(k).cloned().ok_or_else(|| {
                    format!("secret {k} has no value: export {k}=... or put it in the secrets file")
                })?),
            };
            env.insert(k.clone(), value);
        }
        let health = match &record["health"] {
            Value::Null => None,
            h => {
                let ms = |key: &str| {
                    h[key]
                        .as_u64()
                        .map(Duration::from_millis)
                        .ok_or_else(|| bad("health"))
                };
                Some(HealthConfig {
                    cmd: list(&h["cmd"]).ok_or_else(|| bad("health"))?,
                    interval: ms("interval_ms")?,
                    timeout: ms("timeout_ms")?,
                    retries: h["retries"]
                        .as_u64()
                        .and_then(|r| u32::try_from(r).ok())
                        .ok_or_else(|| bad("health"))?,
                    start_period: ms("start_period_ms")?,
                })
            }
        };
        let memory = record["memory"].as_u64();
        Ok(TaskConfig {
            image: text(&record["image"]).ok_or_else(|| bad("image"))?,
            command: match &record["command"] {
                Value::Null => None,
                c => Some(list(c).ok_or_else(|| bad("command"))?),
            },
            env,
            volumes: list(&record["volumes"]).ok_or_else(|| bad("volumes"))?,
            host_files: list(&record["host_files"]).ok_or_else(|| bad("host_files"))?,
            memory,
            resources: Resources {
                memory_swap: memory.map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX)),
                nano_cpus: match &record["nano_cpus"] {
                    Value::Null => 0,
                    n => n.as_i64().ok_or_else(|| bad("nano_cpus"))?,
                },
                ..Resources::default()
            },
            network: text(&record["network"]).ok_or_else(|| bad("network"))?,
            init: record["init"].as_bool().ok_or_else(|| bad("init"))?,
            restart: text(&record["restart"]).ok_or_else(|| bad("restart"))?,
            stop_timeout: Duration::from_secs(
                record["stop_timeout_secs"]
                    .as_u64()
                    .ok_or_else(|| bad("stop_timeout"))?,
            ),
            log_driver: text(&record["log_driver"]).ok_or_else(|| bad("log_driver"))?,
            log_options: record["log_options"]
                .as_object()
                .ok_or_else(|| bad("log_options"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
            health,
            settings: Settings::from_record(record)?,
        })
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

/// `text` with each of `values` (secret values) replaced by [`MASK`],
/// longest first, so a secret that contains another is masked whole.
pub fn mask_values<'a>(text: &str, values: impl IntoIterator<Item = &'a str>) -> String {
    // A value of several lines (a PEM key) is printed a line at a time:
    // each of its lines is masked too.
    let mut values: Vec<&str> = values
        .into_iter()
        .flat_map(|v| {
            let lines = v.lines().map(str::trim).filter(|l| l.len() >= 6);
            std::iter::once(v).chain(lines.filter(move |_| v.contains('\n')))
        })
        .filter(|v| !v.is_empty())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut text = text.to_string();
    for value in values {
        if text.contains(value) {
            text = text.replace(value, MASK);
        }
    }
    text
}

/// Secret names listed in a container's [`labels::SECRETS`] label.
pub fn secret_names_label(labels_map: &BTreeMap<String, String>) -> BTreeSet<String> {
    labels_map
        .get(labels::SECRETS)
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        let value = EnvValue::Secret(secret);
        assert!(!format!("{value:?}").contains("hunter2"));
        let config = TaskConfig {
            image: "x".into(),
            command: None,
            env: BTreeMap::from([("PW".to_string(), value)]),
            volumes: vec![],
            host_files: vec![],
            memory: None,
            resources: Resources::default(),
            network: "host".into(),
            init: true,
            restart: "no".into(),
            stop_timeout: Duration::from_secs(1),
            log_driver: "local".into(),
            log_options: BTreeMap::new(),
            health: None,
            settings: Settings::default(),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!config
            .fields()
            .iter()
            .any(|(_, v)| v.to_string().contains("hunter2")));
        assert!(!config.to_record().to_string().contains("hunter2"));
        let mut other = config.clone();
        other
            .env
            .insert("PW".into(), EnvValue::Secret(Secret::new("hunter3")));
        assert_ne!(
            config.hash(),
            other.hash(),
            "a changed secret changes the hash"
        );
    }

    #[test]
    fn records_round_trip() {
        let config = TaskConfig {
            image: "reg/app:1".into(),
            command: Some(vec!["sh".into()]),
            env: BTreeMap::from([
                ("A".to_string(), EnvValue::Plain("1".into())),
                ("PW".to_string(), EnvValue::Secret(Secret::new("s"))),
            ]),
            volumes: vec!["/a:/b".into()],
            host_files: vec!["/etc/localtime".into()],
            memory: Some(64 << 20),
            resources: Resources {
                memory_swap: 64 << 20,
                ..Resources::default()
            },
            network: "host".into(),
            init: true,
            restart: "unless-stopped".into(),
            stop_timeout: Duration::from_secs(30),
            log_driver: "local".into(),
            log_options: BTreeMap::from([("max-size".to_string(), "20m".to_string())]),
            health: Some(HealthConfig {
                cmd: vec!["true".into()],
                interval: Duration::from_millis(500),
                timeout: Duration::from_secs(1),
                retries: 3,
                start_period: Duration::ZERO,
            }),
            settings: Settings::default(),
        };
        let secrets = Secrets::from([("PW".to_string(), Secret::new("s"))]);
        let back = TaskConfig::from_record(&config.to_record(), &secrets).unwrap();
        assert_eq!(back, config);
        assert!(TaskConfig::from_record(&config.to_record(), &Secrets::new()).is_err());
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_whole_and_line_by_line() {
        let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----";
        let text =
            format!("short hunter2, long hunter2hunter2; printed: {pem}; a line: MIIBOgIBAAJBAK");
        assert_eq!(
            mask_values(&text, ["hunter2", "hunter2hunter2", pem]),
            "short ***, long ***; printed: ***; a line: ***"
        );
        assert_eq!(mask_values("nothing here", ["", "x"]), "nothing here");
    }
}
