//! `drover adopt`: a fleet started by hand with `docker run`, written down
//! as jobs and taken over without a restart.
//!
//! Teams rarely start from nothing: their hosts run containers someone
//! started by hand, and the flags live on a wiki page. Because drover keeps
//! no state of its own, it can read those containers, write the job files
//! that describe them, and from then on treat each as a task of its job:
//! renamed to the task's name and recorded in an adoption record on its
//! host ([`drover_plan::Adoption`]), never restarted.
//!
//! This file is the pure part, so that it can be tested without an engine:
//! what a container's settings come to in job keys ([`shape`]), which
//! containers are one job ([`group`]) and what it is called
//! ([`job_name`]), which variables are secrets ([`is_secret`]), what a job
//! file says once what it inherits is left out ([`subtract`]), and the
//! files' text ([`render_job_file`], [`with_defaults`], [`merge_secrets`]).
//! [`run`] reads the hosts and takes the containers over.

mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use drover_engine::{Foreign, HandRun, ImageDetails};
use drover_plan::ImageIndex;
use drover_spec::units::{format_duration, format_size, parse_size};
use drover_spec::values::MAX_NAME_LEN;
use drover_spec::{ImageRef, Job, LogDriver, RestartPolicy, RESERVED_ENV_PREFIX};
use serde::Serialize;
use toml::Value;

pub use run::{Adopted, AdoptedJob, AdoptedTask, AdoptionPlan, SecretsEdit};

/// A job's keys as TOML values, by key: `env`, `labels`, `ulimits`, `log`
/// and `health` are tables.
pub type Keys = BTreeMap<String, Value>;

/// The order keys are written in.
const KEY_ORDER: &[&str] = &[
    "image",
    "hosts",
    "instances",
    "entrypoint",
    "command",
    "user",
    "workdir",
    "secret_env",
    "volumes",
    "host_files",
    "memory",
    "cpus",
    "network",
    "init",
    "restart",
    "stop_timeout",
    "ulimits",
    "cap_add",
    "cap_drop",
    "privileged",
    "devices",
    "extra_hosts",
    "tmpfs",
    "shm_size",
    "log",
    "env",
    "labels",
    "health",
];

/// Keys written as a `[table]` of their own, after the others.
const SECTIONS: &[&str] = &["env", "labels", "health"];

/// Keys whose tables merge entry by entry with what a job inherits.
const MERGED: &[&str] = &["env", "labels", "ulimits", "log", "health"];

/// Keys never lifted into `[defaults]`: they say what a job is, not how
/// the environment runs things.
const OWN: &[&str] = &[
    "image",
    "hosts",
    "instances",
    "entrypoint",
    "command",
    "secret_env",
    "volumes",
    "health",
];

/// The engine's `/dev/shm` size when none is asked for.
const ENGINE_SHM_SIZE: u64 = 64 << 20;

/// Labels of tools that manage their containers themselves: drover taking
/// one over would fight them.
const MANAGED_BY: &[(&str, &str)] = &[
    ("com.docker.compose.project", "docker compose (project {})"),
    ("com.docker.swarm.service.name", "a swarm service ({})"),
    ("io.kubernetes.pod.name", "kubernetes (pod {})"),
    ("com.hashicorp.nomad.alloc_id", "nomad (allocation {})"),
];

/// One container on a host that no environment manages, with its image.
#[derive(Debug, Clone)]
pub struct Found {
    pub host: String,
    /// The container, its image's env, command and defaults filled in.
    pub run: HandRun,
    pub image: ImageDetails,
}

impl Found {
    pub fn name(&self) -> &str {
        &self.run.container.name
    }

    pub fn short_id(&self) -> &str {
        self.run.container.short_id()
    }
}

/// A container left as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Untouched {
    pub host: String,
    pub container: String,
    /// Short ID.
    pub id: String,
    pub reasons: Vec<String>,
    /// Left alone on purpose (it does not run) rather than inexpressible.
    pub idle: bool,
}

impl Untouched {
    pub fn of(found: &Found, reasons: Vec<String>) -> Untouched {
        Untouched {
            host: found.host.clone(),
            container: found.name().to_string(),
            id: found.short_id().to_string(),
            reasons,
            idle: false,
        }
    }
}

/// What a container's settings come to in job keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// The image as it runs: its tag, or a digest (or the ID) when the tag
    /// now names another image on its host.
    pub image: ImageRef,
    /// Every other key the container has a value for, whatever a job
    /// would inherit; secrets by name (`secret_env`).
    pub keys: Keys,
    /// The secrets' values, by name: never in a job file, never shown.
    pub secrets: BTreeMap<String, String>,
}

impl Shape {
    /// What containers must share to be one job: the image's repository
    /// (or ID), every key, and the secrets' values.
    fn likeness(&self) -> (String, String, BTreeMap<String, String>) {
        let repository = self
            .image
            .repository()
            .map_or_else(|| self.image.to_string(), str::to_string);
        (
            repository,
            inline(&Value::Table(to_table(&self.keys))),
            self.secrets.clone(),
        )
    }
}

/// Whether an environment variable holds a secret: its name says so
/// (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*_KEY`, `*CREDENTIAL*` and their
/// kin, in any case), or its value is a URL with a password in it
/// (`postgres://app:hunter2@db/app`).
pub fn is_secret(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const WITHIN: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE_KEY",
        "PRIVATEKEY",
        "APIKEY",
        "API_KEY",
        "ACCESS_KEY",
    ];
    const ENDING: &[&str] = &["_KEY", "_PASS", "_PWD", "_AUTH"];
    WITHIN.iter().any(|w| upper.contains(w))
        || ENDING.iter().any(|e| upper.ends_with(e))
        || matches!(upper.as_str(), "KEY" | "PASS" | "AUTH")
        || url_with_password(value)
}

/// `scheme://user:password@host…`.
fn url_with_password(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty())
}

/// The image reference a job of `container` says: as it was run when that
/// still names the image it runs on `index`'s host; else a digest of the
/// same repository for that image, any digest of it, or its ID.
fn reference(typed: &str, image_id: &str, index: &ImageIndex) -> Result<ImageRef, String> {
    let typed_ref = typed.parse::<ImageRef>().ok();
    if let Some(r) = &typed_ref {
        if index.find(&r.key()) == Some(image_id) {
            return Ok(r.clone());
        }
    }
    let digests: Vec<&String> = index
        .digests
        .iter()
        .filter(|(_, id)| id.as_str() == image_id)
        .map(|(digest, _)| digest)
        .collect();
    let same_repository = typed_ref
        .as_ref()
        .and_then(ImageRef::repository)
        .and_then(|repo| {
            digests
                .iter()
                .find(|d| d.split_once('@').is_some_and(|(r, _)| r == repo))
        });
    let pick = same_repository.or(digests.first());
    if let Some(digest) = pick.and_then(|d| d.parse::<ImageRef>().ok()) {
        return Ok(digest);
    }
    image_id
        .parse::<ImageRef>()
        .map_err(|e| format!("its image cannot be named: {e}"))
}

/// A TOML string.
fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Array(items.into_iter().map(|s| text(s.clone())).collect())
}

fn to_table(map: &Keys) -> toml::Table {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `cpus` as written: the fewest digits that say the engine's billionths.
fn format_cpus(nanos: i64) -> String {
    let whole = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A health check's durations as a job writes them; 0 is the engine's own default.
fn health_duration(duration: std::time::Duration) -> Value {
    if duration.is_zero() {
        text("30s")
    } else {
        text(format_duration(duration))
    }
}

/// What `found` comes to in job keys, or why it cannot be said in them.
pub fn shape(found: &Found, index: &ImageIndex) -> Result<Shape, Vec<String>> {
    let c = &found.run.container;
    let config = &c.config;
    let settings = &config.settings;
    let mut why: Vec<String> = found
        .run
        .foreign
        .iter()
        .map(|Foreign { setting, why }| format!("{setting}: {why}"))
        .collect();
    for (label, tool) in MANAGED_BY {
        if let Some(value) = c.labels.get(*label) {
            why.push(format!(
                "managed by {}: drover taking it over would fight it",
                tool.replace("{}", value)
            ));
        }
    }
    for label in c.labels.keys().filter(|k| k.starts_with("drover.")) {
        why.push(format!(
            "label {label}: labels starting with drover. are drover's own"
        ));
    }
    for path in &found.run.anonymous_volumes {
        if !found.image.volumes.contains(path) {
            why.push(format!("-v {path}: an anonymous volume, whose data would not follow the task to a new container (bind a host directory instead)"));
        }
    }
    if found.run.stop_signal != found.image.stop_signal {
        if let Some(signal) = &found.run.stop_signal {
            why.push(format!(
                "--stop-signal {signal}: no job key sets the stop signal"
            ));
        }
    }
    if !matches!(config.network.as_str(), "host" | "bridge" | "none")
        && !found
            .run
            .foreign
            .iter()
            .any(|f| f.setting.starts_with("--network"))
    {
        why.push(format!(
            "--network {}: a job's network is host, bridge or none",
            config.network
        ));
    }
    let image = reference(&config.image, &c.image_id, index).map_err(|e| vec![e]);
    let image = match image {
        Ok(image) => Some(image),
        Err(mut e) => {
            why.append(&mut e);
            None
        }
    };

    let mut keys = Keys::new();
    let image_entrypoint = c
        .image_defaults
        .entrypoint
        .clone()
        .filter(|e| !e.is_empty());
    let entrypoint = settings.entrypoint.clone().filter(|e| !e.is_empty());
    let own_entrypoint = entrypoint != image_entrypoint;
    if own_entrypoint {
        keys.insert(
            "entrypoint".to_string(),
            strings(entrypoint.iter().flatten()),
        );
    }
    let command = config.command.clone().filter(|c| !c.is_empty());
    match (own_entrypoint, &command) {
        (true, Some(command)) => {
            keys.insert("command".to_string(), strings(command));
        }
        (true, None) => {}
        (false, Some(command)) if Some(command) != c.image_cmd.as_ref() => {
            keys.insert("command".to_string(), strings(command));
        }
        (false, Some(_)) => {}
        (false, None) => {
            if c.image_cmd.as_ref().is_some_and(|cmd| !cmd.is_empty()) {
                why.push(
                    "it runs without a command although its image has one: no job key says that"
                        .to_string(),
                );
            }
        }
    }
    if let Some(user) = &settings.user {
        if user != &c.image_defaults.user {
            keys.insert("user".to_string(), text(user));
        }
    }
    if let Some(workdir) = &settings.workdir {
        if workdir != &c.image_defaults.workdir {
            keys.insert("workdir".to_string(), text(workdir));
        }
    }

    let mut env = toml::Table::new();
    let mut secrets = BTreeMap::new();
    for (name, value) in &config.env {
        let value = value.expose();
        if c.image_env.get(name).map(String::as_str) == Some(value) {
            continue;
        }
        if name.starts_with(RESERVED_ENV_PREFIX) {
            why.push(format!(
                "env {name}: names starting with {RESERVED_ENV_PREFIX} are drover's own"
            ));
        } else if is_secret(name, value) {
            if value.contains(['\n', '\r']) {
                why.push(format!("env {name}: a secret whose value spans lines, which the secrets file (one KEY=VALUE a line) cannot hold"));
            } else {
                secrets.insert(name.clone(), value.to_string());
            }
        } else {
            env.insert(name.clone(), text(value));
        }
    }
    if !env.is_empty() {
        keys.insert("env".to_string(), Value::Table(env));
    }
    if !secrets.is_empty() {
        keys.insert("secret_env".to_string(), strings(secrets.keys()));
    }

    if !config.volumes.is_empty() {
        keys.insert("volumes".to_string(), strings(&config.volumes));
    }
    keys.insert("host_files".to_string(), strings(&config.host_files));
    if let Some(memory) = config.memory {
        keys.insert("memory".to_string(), text(format_size(memory)));
    }
    if config.resources.nano_cpus > 0 {
        keys.insert(
            "cpus".to_string(),
            text(format_cpus(config.resources.nano_cpus)),
        );
    }
    keys.insert("network".to_string(), text(&config.network));
    // No init is one of Docker's pitfalls: the file says drover's default.
    if config.init {
        keys.insert("init".to_string(), Value::Boolean(true));
    }
    match config.restart.parse::<RestartPolicy>() {
        Ok(policy) => {
            keys.insert("restart".to_string(), text(policy.to_string()));
        }
        Err(e) => why.push(format!("--restart {}: {e}", config.restart)),
    }
    keys.insert(
        "stop_timeout".to_string(),
        text(format_duration(config.stop_timeout)),
    );
    match log_keys(&config.log_driver, &config.log_options) {
        Ok(Some(log)) => {
            keys.insert("log".to_string(), log);
        }
        Ok(None) => {}
        Err(e) => why.push(e),
    }
    if let Some(health) = &config.health {
        let mut table = toml::Table::new();
        table.insert("cmd".to_string(), strings(&health.cmd));
        table.insert("interval".to_string(), health_duration(health.interval));
        table.insert("timeout".to_string(), health_duration(health.timeout));
        table.insert(
            "retries".to_string(),
            Value::Integer(if health.retries == 0 {
                3
            } else {
                i64::from(health.retries)
            }),
        );
        if !health.start_period.is_zero() {
            table.insert(
                "start_period".to_string(),
                text(format_duration(health.start_period)),
            );
        }
        keys.insert("health".to_string(), Value::Table(table));
    }
    if !settings.ulimits.is_empty() {
        let ulimits = settings
            .ulimits
            .iter()
            .map(|(name, limit)| (name.clone(), text(limit.to_string())))
            .collect();
        keys.insert("ulimits".to_string(), Value::Table(ulimits));
    }
    if !settings.cap_add.is_empty() {
        keys.insert("cap_add".to_string(), strings(&settings.cap_add));
    }
    if !settings.cap_drop.is_empty() {
        keys.insert("cap_drop".to_string(), strings(&settings.cap_drop));
    }
    if settings.privileged {
        keys.insert("privileged".to_string(), Value::Boolean(true));
    }
    if !settings.devices.is_empty() {
        let devices: Vec<String> = settings.devices.iter().map(ToString::to_string).collect();
        keys.insert("devices".to_string(), strings(&devices));
    }
    let labels: toml::Table = settings
        .labels
        .iter()
        .filter(|(k, v)| c.image_defaults.labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    if !labels.is_empty() {
        keys.insert("labels".to_string(), Value::Table(labels));
    }
    if !settings.extra_hosts.is_empty() {
        keys.insert("extra_hosts".to_string(), strings(&settings.extra_hosts));
    }
    if !settings.tmpfs.is_empty() {
        let tmpfs: Vec<String> = settings
            .tmpfs
            .iter()
            .map(|(path, options)| match options.as_str() {
                "" => path.clone(),
                options => format!("{path}:{options}"),
            })
            .collect();
        keys.insert("tmpfs".to_string(), strings(&tmpfs));
    }
    if let Some(bytes) = settings.shm_size.filter(|b| *b != ENGINE_SHM_SIZE) {
        keys.insert("shm_size".to_string(), text(format_size(bytes)));
    }

    match image {
        Some(image) if why.is_empty() => Ok(Shape {
            image,
            keys,
            secrets,
        }),
        _ => Err(why),
    }
}

/// `log` as a job writes it, `None` where the file should say drover's
/// default (a log that is never rotated, or discarded), or why no job key
/// can say it.
fn log_keys(driver: &str, options: &BTreeMap<String, String>) -> Result<Option<Value>, String> {
    let unsafe_driver = driver == "none";
    if unsafe_driver {
        return Ok(None);
    }
    let parsed: LogDriver = driver
        .parse()
        .map_err(|e| format!("--log-driver {driver}: {e}"))?;
    let mut table = toml::Table::new();
    table.insert("driver".to_string(), text(driver));
    if !parsed.rotates() {
        if let Some((key, value)) = options.iter().next() {
            return Err(format!(
                "--log-opt {key}={value}: no job key sets options of the {driver} log driver"
            ));
        }
        return Ok(Some(Value::Table(table)));
    }
    if let Some((key, value)) = options
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "max-size" | "max-file"))
    {
        return Err(format!(
            "--log-opt {key}={value}: a job's log takes max_size and max_files only"
        ));
    }
    let max_size = match options.get("max-size") {
        Some(size) => parse_size(size).map_err(|e| format!("--log-opt max-size={size}: {e}"))?,
        // json-file without a size grows without bound: drover's default instead.
        None if parsed == LogDriver::JsonFile => return Ok(None),
        // The local driver's own.
        None => 20 << 20,
    };
    let max_files = match options.get("max-file") {
        Some(n) => n
            .parse::<i64>()
            .map_err(|_| format!("--log-opt max-file={n}: not a number"))?,
        None if parsed == LogDriver::JsonFile => 1,
        None => 5,
    };
    table.insert("max_size".to_string(), text(format_size(max_size)));
    table.insert("max_files".to_string(), Value::Integer(max_files));
    Ok(Some(Value::Table(table)))
}

/// What a job that sets nothing but `image` and `hosts` gets: the keys it
/// inherits from `[defaults]` and drover's own defaults, as [`shape`]
/// writes them.
pub fn inherited(probe: &Job) -> Keys {
    let mut keys = Keys::new();
    let mut put = |key: &str, value: Value| {
        keys.insert(key.to_string(), value);
    };
    if let Some(entrypoint) = &probe.entrypoint {
        put("entrypoint", strings(entrypoint));
    }
    if let Some(command) = &probe.command {
        put("command", strings(command));
    }
    if let Some(user) = &probe.user {
        put("user", text(user));
    }
    if let Some(workdir) = &probe.workdir {
        put("workdir", text(workdir));
    }
    if !probe.env.is_empty() {
        put(
            "env",
            Value::Table(
                probe
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
            ),
        );
    }
    if !probe.secret_env.is_empty() {
        put("secret_env", strings(&probe.secret_env));
    }
    let volumes: Vec<String> = probe.volumes.iter().map(ToString::to_string).collect();
    if !volumes.is_empty() {
        put("volumes", strings(&volumes));
    }
    put("host_files", strings(&probe.host_files));
    if let Some(memory) = probe.memory {
        put("memory", text(format_size(memory)));
    }
    if let Some(cpus) = probe.cpus {
        put(
            "cpus",
            text(format_cpus(i64::try_from(cpus.nanos()).unwrap_or(i64::MAX))),
        );
    }
    put("network", text(probe.network.to_string()));
    if probe.init {
        put("init", Value::Boolean(true));
    }
    put("restart", text(probe.restart.to_string()));
    put("stop_timeout", text(format_duration(probe.stop_timeout)));
    let mut log = toml::Table::new();
    log.insert("driver".to_string(), text(probe.log.driver.to_string()));
    if probe.log.driver.rotates() {
        log.insert(
            "max_size".to_string(),
            text(format_size(probe.log.max_size)),
        );
        log.insert(
            "max_files".to_string(),
            Value::Integer(i64::from(probe.log.max_files)),
        );
    }
    put("log", Value::Table(log));
    if let Some(health) = &probe.health {
        let mut table = toml::Table::new();
        table.insert("cmd".to_string(), strings(&health.cmd));
        table.insert("interval".to_string(), health_duration(health.interval));
        table.insert("timeout".to_string(), health_duration(health.timeout));
        table.insert(
            "retries".to_string(),
            Value::Integer(i64::from(health.retries)),
        );
        if !health.start_period.is_zero() {
            table.insert(
                "start_period".to_string(),
                text(format_duration(health.start_period)),
            );
        }
        put("health", Value::Table(table));
    }
    if !probe.ulimits.is_empty() {
        put(
            "ulimits",
            Value::Table(
                probe
                    .ulimits
                    .iter()
                    .map(|(k, u)| (k.clone(), text(u.to_string())))
                    .collect(),
            ),
        );
    }
    let caps = |list: &[drover_spec::Capability]| -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    };
    if !probe.cap_add.is_empty() {
        put("cap_add", strings(&caps(&probe.cap_add)));
    }
    if !probe.cap_drop.is_empty() {
        put("cap_drop", strings(&caps(&probe.cap_drop)));
    }
    if probe.privileged {
        put("privileged", Value::Boolean(true));
    }
    let devices: Vec<String> = probe.devices.iter().map(ToString::to_string).collect();
    if !devices.is_empty() {
        put("devices", strings(&devices));
    }
    if !probe.labels.is_empty() {
        put(
            "labels",
            Value::Table(
                probe
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
            ),
        );
    }
    let hosts: Vec<String> = probe.extra_hosts.iter().map(ToString::to_string).collect();
    if !hosts.is_empty() {
        put("extra_hosts", strings(&hosts));
    }
    let tmpfs: Vec<String> = probe
        .tmpfs
        .iter()
        .map(|t| match t.options_text().as_str() {
            "" => t.path.clone(),
            options => format!("{}:{options}", t.path),
        })
        .collect();
    if !tmpfs.is_empty() {
        put("tmpfs", strings(&tmpfs));
    }
    if let Some(bytes) = probe.shm_size {
        put("shm_size", text(format_size(bytes)));
    }
    keys
}

/// What a job file must say for `keys` once what it inherits is left out:
/// a value equal to the inherited one goes, tables lose their equal
/// entries. (An inherited table entry the container lacks cannot be taken
/// away by a job; the plan after adoption shows it.)
pub fn subtract(keys: &Keys, inherited: &Keys) -> Keys {
    let mut own = Keys::new();
    for (key, value) in keys {
        let from = inherited.get(key);
        match (value, from) {
            (Value::Table(table), Some(Value::Table(from))) if MERGED.contains(&key.as_str()) => {
                let rest: toml::Table = table
                    .iter()
                    .filter(|(k, v)| from.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !rest.is_empty() {
                    own.insert(key.clone(), Value::Table(rest));
                }
            }
            (value, Some(from)) if value == from => {}
            (value, _) => {
                own.insert(key.clone(), value.clone());
            }
        }
    }
    own
}

/// A container of a group, and the task it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub host: String,
    pub id: String,
    pub name: String,
    pub task: u32,
}

/// Containers alike but for their host: one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub shape: Shape,
    /// By host, then task.
    pub members: Vec<Member>,
    pub instances: u32,
    /// Images other members run (their repository, another tag), which the
    /// next `up` replaces with the job's.
    pub other_images: Vec<String>,
}

impl Group {
    pub fn hosts(&self) -> Vec<String> {
        let hosts: BTreeSet<&str> = self.members.iter().map(|m| m.host.as_str()).collect();
        hosts.into_iter().map(str::to_string).collect()
    }
}

/// Groups `shaped` containers into jobs: alike but for their host (same
/// image repository, keys and secrets) is one job over those hosts, with
/// as many instances as the host running most of them runs; on each host
/// the oldest container is task 0. The job's image is the one most of its
/// containers run (the first host's on a tie).
pub fn group(shaped: Vec<(&Found, Shape)>) -> Vec<Group> {
    type Likeness = (String, String, BTreeMap<String, String>);
    let mut by: BTreeMap<Likeness, Vec<(&Found, Shape)>> = BTreeMap::new();
    for (found, shape) in shaped {
        by.entry(shape.likeness()).or_default().push((found, shape));
    }
    let mut groups = Vec::new();
    for (_, mut members) in by {
        members.sort_by(|(a, _), (b, _)| {
            (&a.host, a.run.container.created, a.name()).cmp(&(
                &b.host,
                b.run.container.created,
                b.name(),
            ))
        });
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (i, (_, shape)) in members.iter().enumerate() {
            counts.entry(shape.image.to_string()).or_insert((0, i)).0 += 1;
        }
        let image = counts
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
            .map(|(image, _)| image.clone())
            .unwrap_or_default();
        let mut shape = members
            .iter()
            .find(|(_, s)| s.image.to_string() == image)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| members[0].1.clone());
        shape.keys.remove("image");
        let other_images = counts.keys().filter(|i| **i != image).cloned().collect();
        let mut next: BTreeMap<&str, u32> = BTreeMap::new();
        let list: Vec<Member> = members
            .iter()
            .map(|(found, _)| {
                let task = next.entry(found.host.as_str()).or_insert(0);
                let member = Member {
                    host: found.host.clone(),
                    id: found.run.container.id.clone(),
                    name: found.name().to_string(),
                    task: *task,
                };
                *task += 1;
                member
            })
            .collect();
        let instances = next.values().copied().max().unwrap_or(1);
        groups.push(Group {
            shape,
            members: list,
            instances,
            other_images,
        });
    }
    groups
}

/// A job name for containers called `names` running `image`: their common
/// name, else the longest prefix they share, else the image's repository's
/// last part; made valid (letters, digits, `_` and `-`, starting with a
/// letter or digit, at most 63 characters).
pub fn job_name(names: &[&str], image: &ImageRef) -> String {
    let common = match names.split_first() {
        Some((first, rest)) if rest.iter().all(|n| n == first) => first.to_string(),
        Some((first, rest)) => {
            let mut prefix = first.to_string();
            for name in rest {
                while !name.starts_with(&prefix) {
                    prefix.pop();
                }
            }
            // `web-1`, `web-2`: `web`. `web10`, `web11`: `web`, not `web1`
            // (a number the names go on with is theirs, not the job's);
            // `svc07-1`, `svc07-2`: `svc07`.
            let numbered = names
                .iter()
                .any(|n| n[prefix.len()..].starts_with(|c: char| c.is_ascii_digit()));
            let mut base = prefix.as_str();
            if numbered {
                base = base.trim_end_matches(|c: char| c.is_ascii_digit());
            }
            base.trim_end_matches(['-', '_', '.']).to_string()
        }
        None => String::new(),
    };
    let base = if valid_name(&common).chars().count() >= 2 {
        common
    } else {
        image
            .repository()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or("job")
            .to_string()
    };
    match valid_name(&base) {
        name if name.is_empty() => "job".to_string(),
        name => name,
    }
}

/// `text` with what a name may not hold replaced by `-`.
fn valid_name(text: &str) -> String {
    let mut name = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && name.ends_with('-') {
            continue;
        }
        if name.is_empty() && !c.is_ascii_alphanumeric() {
            continue;
        }
        name.push(c);
    }
    name.truncate(MAX_NAME_LEN);
    name.trim_end_matches(['-', '_']).to_string()
}

/// `name`, or `name-2`, `name-3`… whichever `taken` does not hold yet.
pub fn unique(name: &str, taken: &BTreeSet<String>) -> String {
    if !taken.contains(name) {
        return name.to_string();
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let mut base = name.to_string();
            base.truncate(MAX_NAME_LEN - suffix.len());
            format!("{}{suffix}", base.trim_end_matches(['-', '_']))
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| name.to_string())
}

/// The keys every one of `jobs` says alike, that `[defaults]` could say
/// for all of them instead: whole keys, and single `env` entries. Never
/// what a job is (its image, command, volumes, health…).
pub fn common(jobs: &[&Keys]) -> Keys {
    let Some((first, rest)) = jobs.split_first() else {
        return Keys::new();
    };
    if rest.is_empty() {
        return Keys::new();
    }
    let mut lifted = Keys::new();
    for (key, value) in first.iter() {
        if OWN.contains(&key.as_str()) {
            continue;
        }
        if key == "env" {
            let Value::Table(env) = value else { continue };
            let shared: toml::Table = env
                .iter()
                .filter(|(k, v)| {
                    rest.iter().all(|job| {
                        matches!(job.get("env"), Some(Value::Table(other)) if other.get(*k) == Some(*v))
                    })
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !shared.is_empty() {
                lifted.insert(key.clone(), Value::Table(shared));
            }
        } else if rest.iter().all(|job| job.get(key) == Some(value)) {
            lifted.insert(key.clone(), value.clone());
        }
    }
    lifted
}

/// `keys` without what `lifted` says for them in `[defaults]`.
pub fn without(keys: &Keys, lifted: &Keys) -> Keys {
    subtract(keys, lifted)
}

/// A TOML key, bare when it can be.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        inline(&text(name))
    }
}

/// A TOML value on one line.
pub fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04X}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Table(table) if table.is_empty() => "{}".to_string(),
        Value::Table(table) => {
            let entries: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

/// Keys as lines of a TOML table: plain keys first, in [`KEY_ORDER`],
/// then `env`, `labels` and `health` as sections under `prefix`
/// (`env` → `[env]`, or `[defaults.env]` with prefix `defaults.`).
fn render_keys(keys: &Keys, prefix: &str) -> String {
    let mut order: Vec<&String> = keys.keys().collect();
    let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(usize::MAX);
    order.sort_by_key(|k| (rank(k), k.as_str()));
    let mut out = String::new();
    for name in order.iter().filter(|k| !SECTIONS.contains(&k.as_str())) {
        let _ = writeln!(out, "{} = {}", key(name), inline(&keys[*name]));
    }
    for name in order.iter().filter(|k| SECTIONS.contains(&k.as_str())) {
        let Value::Table(table) = &keys[*name] else {
            let _ = writeln!(out, "{} = {}", key(name), inline(&keys[*name]));
            continue;
        };
        let _ = writeln!(out, "\n[{prefix}{name}]");
        for (k, v) in table {
            let _ = writeln!(out, "{} = {}", key(k), inline(v));
        }
    }
    out
}

/// A job file: a comment saying where it came from, then its keys.
pub fn render_job_file(job: &str, members: &[Member], keys: &Keys, at: &str) -> String {
    let mut from: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in members {
        from.entry(m.name.as_str())
            .or_default()
            .push(m.host.as_str());
    }
    let from: Vec<String> = from
        .iter()
        .map(|(name, hosts)| format!("{name} on {}", hosts.join(", ")))
        .collect();
    format!(
        "# Job {job}, written by `drover adopt` at {at} from the containers\n# {}.\n{}",
        from.join("; "),
        render_keys(keys, "")
    )
}

/// `drover.toml`'s text with `lifted` set in its `[defaults]` (made if it
/// has none), everything else as it was.
pub fn with_defaults(drover_toml: &str, lifted: &Keys) -> Result<String, String> {
    if lifted.is_empty() {
        return Ok(drover_toml.to_string());
    }
    let mut doc: toml_edit::DocumentMut = drover_toml
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("drover.toml: {}", e.message()))?;
    let defaults = doc
        .entry("defaults")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let Some(defaults) = defaults.as_table_like_mut() else {
        return Err("drover.toml: `defaults` is not a table".to_string());
    };
    for (name, value) in lifted {
        let parsed: toml_edit::Value = inline(value)
            .parse()
            .map_err(|e: toml_edit::TomlError| format!("cannot write {name}: {}", e.message()))?;
        if let (Value::Table(entries), Some(existing)) = (value, defaults.get_mut(name)) {
            // A table `[defaults]` has already: entry by entry.
            let Some(existing) = existing.as_table_like_mut() else {
                return Err(format!("drover.toml: defaults.{name} is not a table"));
            };
            for (k, v) in entries {
                let v: toml_edit::Value =
                    inline(v).parse().map_err(|e: toml_edit::TomlError| {
                        format!("cannot write {name}.{k}: {}", e.message())
                    })?;
                existing.insert(k, toml_edit::Item::Value(v));
            }
            continue;
        }
        defaults.insert(name, toml_edit::Item::Value(parsed));
    }
    Ok(doc.to_string())
}

/// A secrets file's text with `new` values appended (`KEY=VALUE` lines),
/// keeping every line it had. A name it holds already with the same value
/// is left; with another value it is an error naming the name (never the
/// values). Returns the text to append, empty when there is nothing new.
pub fn merge_secrets(
    existing: &BTreeMap<String, drover_plan::Secret>,
    new: &BTreeMap<String, String>,
    file: &str,
) -> Result<String, String> {
    let mut appended = String::new();
    for (name, value) in new {
        match existing.get(name) {
            Some(held) if held.expose() == value => {}
            Some(_) => {
                return Err(format!(
                    "{file} holds {name} with another value than the container's: adopting it would change it; reconcile the two (the file's value is what drover would run)"
                ))
            }
            None => {
                let _ = writeln!(appended, "{name}={}", quoted_secret(value));
            }
        }
    }
    Ok(appended)
}

/// A value as the secrets file's reader reads it back unchanged.
fn quoted_secret(value: &str) -> String {
    let needs = value.trim() != value
        || value.starts_with(['"', '\''])
        || value.ends_with(['"', '\''])
        || value.starts_with('#');
    if needs {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests;
