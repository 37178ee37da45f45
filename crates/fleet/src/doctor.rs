//! `doctor`: each host checked for the Docker daemon's known pitfalls, one
//! finding per line, each saying what to do.
//!
//! What it looks at, and why each needs more than an API call:
//!
//! - **Zombies** are counted inside each running drover container through an
//!   exec reading `/proc/[0-9]*/stat`: the engine's top API lists the
//!   container's cgroup, and a zombie has left its cgroup, so top never
//!   shows one. An image without `sh` cannot be looked into; that is said.
//! - **Host files** a job binds are checked through the engine, never by
//!   touching the host's filesystem: a container is created (never started)
//!   from drover's marker image with read-only binds of those paths, which
//!   the engine refuses for a path that does not exist; the same probe,
//!   created without a log configuration, shows the daemon's default log
//!   driver *and its options* (the engine fills both in), which the info API
//!   does not.
//! - **Free inodes** of the data root are read with `statvfs` where this
//!   machine sees the data root (an engine on a local unix socket); over
//!   TCP or SSH they cannot be, and doctor says how to check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use drover_apply::lock::is_stale;
use drover_apply::markers::ensure_marker_image;
use drover_engine::{observe, CreateOptions, Engine, EngineError};
use drover_plan::time::{self, Timestamp};
use drover_plan::views::LockInfo;
use drover_plan::{
    belongs_to, labels, Failing, ObservedContainer, Resources, Role, RunState, Scope, TaskConfig,
    MARKER_IMAGE,
};
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde::Serialize;

use crate::{human_bytes, Connections, Fleet};

/// The engine release that fixed its log-following memory leak.
pub const FIXED_LOG_FOLLOW: (u64, u64, u64) = (20, 10, 24);
/// Below this share free (space or inodes), the data root needs attention.
const LOW_FREE_PERCENT: u64 = 10;
/// How far back `doctor` asks the engine for oom events (it keeps only its recent ones).
const OOM_LOOKBACK_SECS: i64 = 7 * 24 * 3600;
/// How long before its recorded start a container's process may already run.
const START_SLACK_SECS: i64 = 1;
/// Execs in flight at once per host (the engine's own bound applies too).
const EXEC_CONCURRENCY: usize = 8;
/// What counts a container's zombies: every process's state, from /proc.
const ZOMBIE_COUNT: &str = "cat /proc/[0-9]*/stat 2>/dev/null";

/// How much a finding needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to do unless it surprises you.
    Note,
    Warning,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// What doctor checks on every host, in the order it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Reachable,
    Version,
    LogDriver,
    Disk,
    DataRoot,
    Zombies,
    Init,
    Restarts,
    Memory,
    HostFiles,
    Locks,
}

impl Check {
    pub const ALL: [Check; 11] = [
        Check::Reachable,
        Check::Version,
        Check::LogDriver,
        Check::Disk,
        Check::DataRoot,
        Check::Zombies,
        Check::Init,
        Check::Restarts,
        Check::Memory,
        Check::HostFiles,
        Check::Locks,
    ];
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Reachable => "reachable",
            Check::Version => "version",
            Check::LogDriver => "log-driver",
            Check::Disk => "disk",
            Check::DataRoot => "data-root",
            Check::Zombies => "zombies",
            Check::Init => "init",
            Check::Restarts => "restarts",
            Check::Memory => "memory",
            Check::HostFiles => "host-files",
            Check::Locks => "locks",
        })
    }
}

/// One line of `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub host: String,
    pub check: Check,
    pub level: Level,
    /// What it is about, when not the host itself: a task, a job, a path.
    pub subject: Option<String>,
    pub message: String,
    /// What to do; `None` when nothing needs doing.
    pub action: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.action {
            Some(action) => write!(f, ": {action}"),
            None => Ok(()),
        }
    }
}

/// Every finding on every host this run may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// A warning or an error anywhere.
    pub fn needs_attention(&self) -> bool {
        self.findings.iter().any(|f| f.level >= Level::Warning)
    }
}

/// Findings of one host, in check order.
struct Findings {
    host: String,
    list: Vec<Finding>,
}

impl Findings {
    fn add(
        &mut self,
        check: Check,
        level: Level,
        subject: Option<String>,
        message: impl Into<String>,
        action: Option<String>,
    ) {
        self.list.push(Finding {
            host: self.host.clone(),
            check,
            level,
            subject,
            message: message.into(),
            action,
        });
    }

    fn ok(&mut self, check: Check, message: impl Into<String>) {
        self.add(check, Level::Ok, None, message, None);
    }

    /// An ok line for `check` unless it already has a finding.
    fn ok_unless_found(&mut self, check: Check, message: impl Into<String>) {
        if !self.list.iter().any(|f| f.check == check) {
            self.ok(check, message);
        }
    }
}

/// What doctor needs of the spec for one host.
struct HostSpec {
    /// Jobs by name: does the spec ask for an init, and its file.
    jobs: BTreeMap<String, (bool, String)>,
    /// Host files the jobs placed here bind, with the jobs binding each.
    host_files: BTreeMap<String, Vec<String>>,
}

impl Fleet {
    /// Checks every host this run may touch, all at once.
    pub async fn doctor(&self, connections: &Connections) -> DoctorReport {
        let known_hosts = self.known_hosts();
        let checks = connections.engines.iter().map(|(host, engine)| {
            let spec = host_spec(self, host);
            let known_hosts = &known_hosts;
            async move { examine(&self.env.name, host, engine.as_ref(), &spec, known_hosts).await }
        });
        let mut findings: Vec<Finding> = join_all(checks).await.into_iter().flatten().collect();
        for (host, error) in &connections.unreachable {
            findings.push(Finding {
                host: host.clone(),
                check: Check::Reachable,
                level: Level::Error,
                subject: None,
                message: error.to_string(),
                action: Some(
                    "check that its Docker engine runs and that the address in drover.toml is right"
                        .to_string(),
                ),
            });
        }
        findings.sort_by(|a, b| (&a.host, a.check).cmp(&(&b.host, b.check)));
        DoctorReport { findings }
    }
}

/// The jobs' init and file, and the host files the jobs placed on `host` bind.
fn host_spec(fleet: &Fleet, host: &str) -> HostSpec {
    let mut host_files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for job in fleet.env.jobs.values() {
        if job.hosts.iter().any(|h| h == host) {
            for path in &job.host_files {
                host_files
                    .entry(path.clone())
                    .or_default()
                    .push(job.name.clone());
            }
        }
    }
    HostSpec {
        jobs: fleet
            .env
            .jobs
            .iter()
            .map(|(name, job)| (name.clone(), (job.init, job.file.clone())))
            .collect(),
        host_files,
    }
}

async fn examine(
    env: &str,
    host: &str,
    engine: &dyn Engine,
    spec: &HostSpec,
    known_hosts: &BTreeSet<String>,
) -> Vec<Finding> {
    let mut found = Findings {
        host: host.to_string(),
        list: Vec::new(),
    };
    let (version, info, disk, observed, ooms) = tokio::join!(
        engine.version(),
        engine.info(),
        engine.disk_usage(),
        observe(engine, env, &Scope::All),
        engine.past_events(env, "oom", now_secs().saturating_sub(OOM_LOOKBACK_SECS)),
    );
    // The kernel's kill and the process's exit race to the engine: when the
    // exit wins, inspect says nothing of memory, but the oom event stays.
    let mut last_oom: BTreeMap<String, i64> = BTreeMap::new();
    for event in ooms.unwrap_or_default() {
        let at = event.time_nano / 1_000_000_000;
        let latest = last_oom.entry(event.container).or_insert(at);
        *latest = (*latest).max(at);
    }
    let version = match version {
        Ok(v) => v,
        Err(e) => {
            found.add(
                Check::Reachable,
                Level::Error,
                None,
                if e.is_unreachable() {
                    e.to_string()
                } else {
                    format!("host {host} ({}) does not answer: {e}", engine.address())
                },
                Some("check that its Docker engine runs and is not overloaded".to_string()),
            );
            return found.list;
        }
    };
    found.ok(
        Check::Reachable,
        format!("the engine at {} answers", engine.address()),
    );
    check_version(&mut found, &version.version, &version.api_version);

    let probe = probe(env, host, engine, spec).await;
    let daemon_driver = info.as_ref().map(|i| i.log_driver.clone()).ok();
    check_log_driver(&mut found, &probe, daemon_driver.as_deref());
    match disk {
        Ok(d) => found.ok(
            Check::Disk,
            format!(
                "images {}, containers {}, volumes {}, build cache {}",
                human_bytes(d.images.max(0) as u64),
                human_bytes(d.containers.max(0) as u64),
                human_bytes(d.volumes.max(0) as u64),
                human_bytes(d.build_cache.max(0) as u64),
            ),
        ),
        Err(e) => found.add(
            Check::Disk,
            Level::Note,
            None,
            format!("cannot read disk use: {e}"),
            Some("run `docker system df` on the host".to_string()),
        ),
    }
    match info {
        Ok(info) => check_data_root(&mut found, engine, &info.data_root).await,
        Err(e) => found.add(
            Check::DataRoot,
            Level::Note,
            None,
            format!("cannot read the engine's data root: {e}"),
            Some(
                "check free space and inodes with `df -h -i /var/lib/docker` on the host"
                    .to_string(),
            ),
        ),
    }

    match observed {
        Ok(state) => {
            let tasks: Vec<&ObservedContainer> = state
                .containers
                .iter()
                .filter(|c| belongs_to(c, host, known_hosts))
                .filter(|c| matches!(c.role(env), Role::Current(_) | Role::Stray(_)))
                .collect();
            check_zombies(&mut found, engine, &tasks, spec).await;
            check_tasks(&mut found, &tasks, spec, &last_oom, time::now());
            let lock_list: Vec<LockInfo> = state
                .containers
                .iter()
                .filter(|c| belongs_to(c, host, known_hosts))
                .filter_map(|c| match c.role(env) {
                    Role::Lock { job, host } => Some(LockInfo::from_container(c, &job, &host)),
                    _ => None,
                })
                .collect();
            check_host_files(&mut found, &probe, spec);
            check_locks(&mut found, &lock_list);
        }
        Err(e) => {
            for check in [Check::Zombies, Check::Init, Check::Restarts, Check::Memory] {
                found.add(
                    check,
                    Level::Error,
                    None,
                    format!("cannot read drover's containers: {e}"),
                    Some("run doctor again; if it persists, check the engine's health".to_string()),
                );
            }
            check_host_files(&mut found, &probe, spec);
            found.add(
                Check::Locks,
                Level::Error,
                None,
                format!("cannot read drover's locks: {e}"),
                Some("run doctor again".to_string()),
            );
        }
    }
    found.list
}

fn now_secs() -> i64 {
    time::unix_secs(time::now())
}

/// `20.10.24+dfsg1` → `(20, 10, 24)`.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let numeric: String = text
        .trim_start_matches('v')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn check_version(found: &mut Findings, version: &str, api: &str) {
    let (a, b, c) = FIXED_LOG_FOLLOW;
    match parse_version(version) {
        Some(v) if v < FIXED_LOG_FOLLOW => found.add(
            Check::Version,
            Level::Warning,
            None,
            format!("Docker {version} (API {api}) is older than {a}.{b}.{c}: following a container's logs leaks memory in the engine until it is restarted"),
            Some(format!("upgrade Docker on the host to {a}.{b}.{c} or later")),
        ),
        Some(_) => found.ok(Check::Version, format!("Docker {version}, API {api}")),
        None => found.add(
            Check::Version,
            Level::Note,
            None,
            format!("Docker {version:?} (API {api}): not a version drover can compare"),
            Some(format!("make sure the engine is {a}.{b}.{c} or later")),
        ),
    }
}

/// What the probe container found.
#[derive(Debug, Default)]
struct Probe {
    /// The daemon's default log driver and options, as filled into the probe.
    log: Option<(String, BTreeMap<String, String>)>,
    /// Host files the engine said do not exist.
    missing: Vec<String>,
    /// Why the probe could not be made.
    error: Option<String>,
}

/// The barest container of the marker image: never started, no log
/// configuration of its own, the host files bound read-only.
fn probe_config(host_files: &[String]) -> TaskConfig {
    TaskConfig {
        image: MARKER_IMAGE.to_string(),
        command: Some(vec!["/drover-marker".to_string()]),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        host_files: host_files.to_vec(),
        memory: None,
        resources: Resources::default(),
        network: "none".to_string(),
        init: false,
        restart: "no".to_string(),
        stop_timeout: Duration::ZERO,
        // Empty: the engine fills in its default driver and options.
        log_driver: String::new(),
        log_options: BTreeMap::new(),
        health: None,
        settings: Default::default(),
    }
}

/// Creates (never starts) probe containers until one is accepted: each
/// refusal names one missing host file, which the next try leaves out.
async fn probe(env: &str, host: &str, engine: &dyn Engine, spec: &HostSpec) -> Probe {
    let mut result = Probe::default();
    if let Err(e) = ensure_marker_image(engine).await {
        result.error = Some(format!("cannot make drover's marker image: {e}"));
        return result;
    }
    let name = format!("{env}.{host}.doctor-{}", std::process::id());
    let options = CreateOptions {
        labels: BTreeMap::from([
            (labels::ENV.to_string(), env.to_string()),
            (labels::HOST.to_string(), host.to_string()),
            (labels::ROLE.to_string(), "probe".to_string()),
        ]),
    };
    let mut paths: Vec<String> = spec.host_files.keys().cloned().collect();
    let mut cleared_conflict = false;
    // Each try either succeeds or removes one path: at most one try per path, and one more.
    for _ in 0..paths.len() + 2 {
        match engine
            .create_container(&name, &probe_config(&paths), &options)
            .await
        {
            Ok(id) => {
                match engine.inspect_container(&id).await {
                    Ok(Some(c)) => {
                        result.log = Some((c.config.log_driver, c.config.log_options));
                    }
                    Ok(None) => {}
                    Err(e) => result.error = Some(format!("cannot inspect the probe: {e}")),
                }
                if let Err(e) = engine.remove_container(&id).await {
                    result.error = Some(format!("cannot remove the probe container {name}: {e}"));
                }
                return result;
            }
            Err(EngineError::MissingHostFile { path, .. }) => {
                let before = paths.len();
                paths.retain(|p| p != &path);
                if paths.len() == before {
                    result.error = Some(format!(
                        "the engine refused host file {path}, which drover did not ask for"
                    ));
                    return result;
                }
                result.missing.push(path);
            }
            // A probe left by an earlier doctor of the same process ID.
            Err(EngineError::Conflict(_)) if !cleared_conflict => {
                cleared_conflict = true;
                let _ = engine.remove_container(&name).await;
            }
            Err(e) => {
                result.error = Some(format!("cannot create a probe container: {e}"));
                return result;
            }
        }
    }
    result.error = Some("the engine kept refusing the probe container".to_string());
    result
}

fn check_log_driver(found: &mut Findings, probe: &Probe, daemon_driver: Option<&str>) {
    const DAEMON_JSON: &str = "set \"log-driver\": \"local\" (or \"log-opts\": {\"max-size\": \"20m\", \"max-file\": \"5\"}) in /etc/docker/daemon.json and restart the daemon; drover's own containers set their own";
    let Some((driver, options)) = &probe.log else {
        let driver = daemon_driver.unwrap_or("unknown");
        found.add(
            Check::LogDriver,
            Level::Note,
            None,
            format!(
                "the daemon's default log driver is {driver}; whether it rotates cannot be read ({})",
                probe.error.as_deref().unwrap_or("no probe container")
            ),
            Some(format!(
                "for json-file, check that /etc/docker/daemon.json sets \"log-opts\" max-size, or {DAEMON_JSON}"
            )),
        );
        return;
    };
    let size = options.get("max-size");
    let files = options.get("max-file");
    match (driver.as_str(), size) {
        // Docker's own default, and the pitfall drover guards its own
        // containers against: a log that grows until the disk is full.
        ("json-file", None) => found.add(
            Check::LogDriver,
            Level::Warning,
            None,
            "the daemon's default log driver is json-file without max-size: containers not made by drover log without bound",
            Some(DAEMON_JSON.to_string()),
        ),
        ("json-file" | "local", Some(size)) => found.ok(
            Check::LogDriver,
            format!(
                "the daemon's default log driver is {driver}, rotated at max-size {size}{}",
                files.map(|f| format!(", max-file {f}")).unwrap_or_default()
            ),
        ),
        ("local", None) => found.ok(
            Check::LogDriver,
            "the daemon's default log driver is local, rotated (20m, 5 files unless set)",
        ),
        ("none", _) => found.add(
            Check::LogDriver,
            Level::Note,
            None,
            "the daemon's default log driver is none: containers not made by drover keep no logs",
            Some("set \"log-driver\": \"local\" in /etc/docker/daemon.json if their logs matter".to_string()),
        ),
        (driver, _) => found.ok(
            Check::LogDriver,
            format!("the daemon's default log driver is {driver}: logs leave the host, and it keeps them"),
        ),
    }
}

async fn check_data_root(found: &mut Findings, engine: &dyn Engine, data_root: &str) {
    let how = format!("check with `df -h -i {data_root}` on the host");
    match engine.data_root_space(data_root).await {
        Ok(Some(space)) => {
            let percent = |free: u64, total: u64| free.saturating_mul(100) / total.max(1);
            let space_free = percent(space.free_bytes, space.total_bytes);
            let inodes_free = percent(space.free_inodes, space.total_inodes);
            let inodes = if space.total_inodes == 0 {
                "inodes not limited".to_string()
            } else {
                format!(
                    "{} of {} inodes free ({inodes_free}%)",
                    space.free_inodes, space.total_inodes
                )
            };
            let message = format!(
                "{data_root}: {} of {} free ({space_free}%), {inodes}",
                human_bytes(space.free_bytes),
                human_bytes(space.total_bytes)
            );
            let low_inodes = space.total_inodes > 0 && inodes_free < LOW_FREE_PERCENT;
            if space_free < LOW_FREE_PERCENT || low_inodes {
                found.add(
                    Check::DataRoot,
                    Level::Warning,
                    None,
                    message,
                    Some("free space before the engine fails to write: run `drover gc`, then look at `docker system df -v` on the host".to_string()),
                );
            } else {
                found.ok(Check::DataRoot, message);
            }
        }
        Ok(None) => {
            let why = match engine.address().split_once("://") {
                Some(("unix", _)) => "this machine does not see the engine's data root".to_string(),
                Some((scheme, _)) => format!("they cannot be read over {scheme}://"),
                None => "they cannot be read from here".to_string(),
            };
            found.add(
                Check::DataRoot,
                Level::Note,
                None,
                format!("free space and inodes of {data_root} are not known: {why}"),
                Some(how),
            );
        }
        Err(e) => found.add(
            Check::DataRoot,
            Level::Note,
            None,
            format!("cannot read free space and inodes of {data_root}: {e}"),
            Some(how),
        ),
    }
}

/// `web h1/0`, or the container's name when it is not under its task's own.
fn subject(c: &ObservedContainer) -> String {
    match c.task_key() {
        Some(key) => key.to_string(),
        None => c.name.clone(),
    }
}

fn job_file(spec: &HostSpec, c: &ObservedContainer) -> String {
    let job = c.job().unwrap_or_default();
    spec.jobs
        .get(job)
        .map(|(_, file)| file.clone())
        .unwrap_or_else(|| format!("jobs/{job}.toml"))
}

/// Counts processes in state Z in `/proc/PID/stat` lines. The state follows
/// the command name in parentheses, which may itself hold spaces and parentheses.
pub fn count_zombies(stat: &str) -> usize {
    stat.lines()
        .filter_map(|line| line.rsplit_once(')'))
        .filter(|(_, rest)| rest.trim_start().starts_with('Z'))
        .count()
}

async fn check_zombies(
    found: &mut Findings,
    engine: &dyn Engine,
    tasks: &[&ObservedContainer],
    spec: &HostSpec,
) {
    let running: Vec<&ObservedContainer> = tasks
        .iter()
        .copied()
        .filter(|c| c.state() == RunState::Running)
        .collect();
    let command: Vec<String> = ["sh", "-c", ZOMBIE_COUNT]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let command = &command;
    let counts: Vec<(&ObservedContainer, Result<usize, String>)> = stream::iter(running.iter())
        .map(|c| async move {
            let result = match engine.exec_output(&c.id, command).await {
                // The runtime's "executable file not found" comes as exit 126 (or 127 from a shell).
                Ok(out) if out.exit_code == 126 || out.exit_code == 127 => {
                    Err("its image has no sh or cat to read /proc with".to_string())
                }
                // A process that exits while being read makes cat fail; what it read still counts.
                Ok(out) if out.exit_code == 0 || !out.stdout.is_empty() => {
                    Ok(count_zombies(&String::from_utf8_lossy(&out.stdout)))
                }
                Ok(out) => Err(format!(
                    "reading /proc failed (exit {}): {}",
                    out.exit_code,
                    drover_engine::short_message(&String::from_utf8_lossy(&out.stderr))
                )),
                Err(e) => {
                    let text = e.to_string();
                    if text.contains("executable file not found") || text.contains("no such file") {
                        Err("its image has no sh or cat to read /proc with".to_string())
                    } else {
                        Err(format!("cannot run a command in it: {text}"))
                    }
                }
            };
            (*c, result)
        })
        .buffered(EXEC_CONCURRENCY)
        .collect()
        .await;
    let mut looked = 0;
    for (c, result) in counts {
        match result {
            Ok(0) => looked += 1,
            Ok(n) => {
                looked += 1;
                let job = c.job().unwrap_or_default();
                let action = if c.config.init {
                    "its init reaps only orphans: a process in it leaves its own children unreaped; fix that process, or restart the task with `drover restart JOB`".replace("JOB", job)
                } else {
                    format!(
                        "nothing in it reaps orphaned processes (no init): set init = true in {}, then run `drover up {job}`",
                        job_file(spec, c)
                    )
                };
                found.add(
                    Check::Zombies,
                    Level::Warning,
                    Some(subject(c)),
                    format!(
                        "{} ({}) has {n} zombie process{}",
                        subject(c),
                        c.name,
                        if n == 1 { "" } else { "es" }
                    ),
                    Some(action),
                );
            }
            Err(why) => found.add(
                Check::Zombies,
                Level::Note,
                Some(subject(c)),
                format!("cannot count zombies in {} ({}): {why}", subject(c), c.name),
                Some("the engine's top cannot show zombies either; look at `ps` on the host for processes in state Z".to_string()),
            ),
        }
    }
    if !found
        .list
        .iter()
        .any(|f| f.check == Check::Zombies && f.level >= Level::Warning)
    {
        let message = match looked {
            0 => "no running drover container to look into".to_string(),
            1 => "no zombie processes in the one running drover container".to_string(),
            n => format!("no zombie processes in {n} running drover containers"),
        };
        found.ok(Check::Zombies, message);
    }
}

/// Init, restart loops and memory kills: what inspect and the engine's
/// `oom` events (`last_oom`: container ID → Unix seconds) say.
fn check_tasks(
    found: &mut Findings,
    tasks: &[&ObservedContainer],
    spec: &HostSpec,
    last_oom: &BTreeMap<String, i64>,
    now: Timestamp,
) {
    for c in tasks {
        let job = c.job().unwrap_or_default();
        if !c.config.init {
            match spec.jobs.get(job) {
                Some((true, _)) => found.add(
                    Check::Init,
                    Level::Warning,
                    Some(subject(c)),
                    format!("{} ({}) runs without an init, though the spec asks for one", subject(c), c.name),
                    Some(format!("recreate it with `drover up {job}`")),
                ),
                Some((false, file)) => found.add(
                    Check::Init,
                    Level::Note,
                    Some(subject(c)),
                    format!("{} ({}) runs without an init (init = false in {file}): orphaned processes in it become zombies nobody reaps", subject(c), c.name),
                    Some(format!("set init = true in {file} unless its PID 1 reaps them")),
                ),
                None => found.add(
                    Check::Init,
                    Level::Note,
                    Some(subject(c)),
                    format!("{} ({}) runs without an init; its job is not in the spec", subject(c), c.name),
                    Some("`drover gc` removes it".to_string()),
                ),
            }
        }
        if let Some(why @ Failing::CrashLoop { .. }) = c.failing(now) {
            found.add(
                Check::Restarts,
                Level::Warning,
                Some(subject(c)),
                format!(
                    "{} ({}) is {why}{}",
                    subject(c),
                    c.name,
                    if c.error.is_empty() { String::new() } else { format!(" ({})", c.error) }
                ),
                Some(format!(
                    "read why with `drover logs {job} --task {}/{} --tail 50`, fix it, then run `drover up {job}`",
                    c.host_label().unwrap_or_default(),
                    c.task().unwrap_or_default()
                )),
            );
        }
        // An oom event since the container last started is this run's; the
        // engine records the start a moment after the process runs, so a
        // kill at once may come a little before it.
        let oom_event = last_oom.get(&c.id).copied().filter(|at| {
            c.runs
                .started_at
                .map(time::unix_secs)
                .is_none_or(|started| *at >= started - START_SLACK_SECS)
        });
        if c.runs.oom_killed || oom_event.is_some() {
            let limit = c
                .config
                .memory
                .map(|m| format!("memory = {}", human_bytes(m)))
                .unwrap_or_else(|| "no memory limit of its own: the host ran out".to_string());
            let what = if c.is_running() {
                format!(
                    "a process in {} ({}) was killed for running out of memory ({limit}); the container kept running",
                    subject(c),
                    c.name
                )
            } else {
                format!(
                    "{} ({}) was killed for running out of memory ({limit})",
                    subject(c),
                    c.name
                )
            };
            found.add(
                Check::Memory,
                Level::Warning,
                Some(subject(c)),
                what,
                Some(format!(
                    "raise memory in {} (or find what grows), then run `drover up {job}`",
                    job_file(spec, c)
                )),
            );
        }
    }
    let (init, restarts, memory) = match tasks.len() {
        0 => (
            "no drover container here".to_string(),
            "no drover container here".to_string(),
            "no drover container here".to_string(),
        ),
        1 => (
            "the one drover container runs with an init".to_string(),
            "the one drover container is not restarting in a loop".to_string(),
            "the one drover container was not killed for memory".to_string(),
        ),
        n => (
            format!("all {n} drover containers run with an init"),
            format!("none of {n} drover containers is restarting in a loop"),
            format!("none of {n} drover containers was killed for memory"),
        ),
    };
    found.ok_unless_found(Check::Init, init);
    found.ok_unless_found(Check::Restarts, restarts);
    found.ok_unless_found(Check::Memory, memory);
}

fn check_host_files(found: &mut Findings, probe: &Probe, spec: &HostSpec) {
    for path in &probe.missing {
        let jobs = spec.host_files.get(path).cloned().unwrap_or_default();
        let files: Vec<String> = jobs
            .iter()
            .map(|job| {
                spec.jobs
                    .get(job)
                    .map_or_else(|| format!("jobs/{job}.toml"), |(_, file)| file.clone())
            })
            .collect();
        found.add(
            Check::HostFiles,
            Level::Error,
            Some(path.clone()),
            format!(
                "host file {path} does not exist on host {}, and job {} binds it (host_files): its tasks cannot be created here",
                found.host,
                crate::list(&jobs)
            ),
            Some(format!(
                "create it on the host, or drop it from host_files in {}",
                crate::list(&files)
            )),
        );
    }
    if spec.host_files.is_empty() {
        found.ok_unless_found(Check::HostFiles, "no job placed here binds host files");
        return;
    }
    match &probe.error {
        // The probe stopped before every path was tried.
        Some(error) if probe.log.is_none() => found.add(
            Check::HostFiles,
            Level::Note,
            None,
            format!("cannot check host files: {error}"),
            Some(format!(
                "check that {} exist on the host",
                crate::list(spec.host_files.keys())
            )),
        ),
        other => {
            if let Some(error) = other {
                found.add(
                    Check::HostFiles,
                    Level::Note,
                    None,
                    error.clone(),
                    Some("`drover gc` removes a probe container left behind".to_string()),
                );
            }
            if probe.missing.is_empty() {
                found.ok(
                    Check::HostFiles,
                    format!(
                        "every host file the jobs bind here exists: {}",
                        crate::list(spec.host_files.keys())
                    ),
                );
            }
        }
    }
}

fn check_locks(found: &mut Findings, locks: &[LockInfo]) {
    for lock in locks {
        let why = if lock.reason.is_empty() {
            lock.command.clone()
        } else {
            format!("reason: {}", lock.reason)
        };
        let message = format!(
            "job {} is locked on {} by {} since {} ({why})",
            lock.job, lock.host, lock.by, lock.at
        );
        let (level, message, action) = match lock.pid {
            Some(pid) if is_stale(lock) => (
                Level::Warning,
                format!("{message}: a stale lock, process {pid} no longer runs"),
                format!("release it with `drover unlock {}`", lock.job),
            ),
            Some(pid) => (
                Level::Note,
                format!("{message}, process {pid}: a command is changing it"),
                format!(
                    "wait for it; if nothing runs any more, `drover unlock {}`",
                    lock.job
                ),
            ),
            None => (
                Level::Warning,
                message,
                format!(
                    "changes to the job are refused until `drover unlock {}`",
                    lock.job
                ),
            ),
        };
        found.add(
            Check::Locks,
            level,
            Some(lock.job.clone()),
            message,
            Some(action),
        );
    }
    found.ok_unless_found(Check::Locks, "no job is locked here");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(parse_version("20.10.24+dfsg1"), Some((20, 10, 24)));
        assert_eq!(parse_version("28.2.2"), Some((28, 2, 2)));
        assert_eq!(parse_version("v19.03"), Some((19, 3, 0)));
        assert_eq!(parse_version("dev"), None);
        assert!(parse_version("20.10.23").unwrap() < FIXED_LOG_FOLLOW);
        assert!(parse_version("20.10.24").unwrap() >= FIXED_LOG_FOLLOW);
        assert!(parse_version("23.0.1").unwrap() >= FIXED_LOG_FOLLOW);
    }

    #[test]
    fn a_default_log_that_grows_without_bound_needs_attention() {
        let level = |driver: &str, options: &[(&str, &str)]| {
            let mut found = Findings {
                host: "h1".to_string(),
                list: Vec::new(),
            };
            let probe = Probe {
                log: Some((
                    driver.to_string(),
                    options
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )),
                missing: Vec::new(),
                error: None,
            };
            check_log_driver(&mut found, &probe, Some(driver));
            found.list[0].level
        };
        assert_eq!(level("json-file", &[]), Level::Warning);
        assert_eq!(level("json-file", &[("max-file", "5")]), Level::Warning);
        assert_eq!(level("json-file", &[("max-size", "20m")]), Level::Ok);
        assert_eq!(level("local", &[]), Level::Ok);
        assert_eq!(level("none", &[]), Level::Note);
    }

    #[test]
    fn zombies_are_counted_by_state_after_the_name() {
        let stat = "1 (sleep) S 0 1 1 0\n7 (sle) Z(p) ) Z 1 1 1\n8 (cat) R 0 8\n9 (a b) Z 1\n";
        assert_eq!(count_zombies(stat), 2);
        assert_eq!(count_zombies(""), 0);
    }

    fn task(state: &str, oom_killed: bool) -> ObservedContainer {
        use drover_plan::Runs;
        ObservedContainer {
            id: "c1".to_string(),
            name: "prod.web.h1.0".to_string(),
            labels: [
                (labels::ENV, "prod"),
                (labels::JOB, "web"),
                (labels::HOST, "h1"),
                (labels::TASK, "0"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            runs: Runs {
                state: state.parse().unwrap_or_default(),
                exit_code: Some(137),
                oom_killed,
                started_at: time::parse("2026-01-01T00:00:10.5Z"),
                ..Runs::default()
            },
            error: String::new(),
            created: None,
            image_id: String::new(),
            config: TaskConfig {
                memory: Some(64 << 20),
                init: true,
                ..probe_config(&[])
            },
            image_env: BTreeMap::new(),
            image_cmd: None,
            image_defaults: Default::default(),
            adopted: None,
        }
    }

    fn memory_findings(c: &ObservedContainer, last_oom: &[(&str, i64)]) -> Vec<String> {
        let mut found = Findings {
            host: "h1".to_string(),
            list: Vec::new(),
        };
        let spec = HostSpec {
            jobs: BTreeMap::from([("web".to_string(), (true, "jobs/web.toml".to_string()))]),
            host_files: BTreeMap::new(),
        };
        let last_oom = last_oom
            .iter()
            .map(|(id, at)| (id.to_string(), *at))
            .collect();
        check_tasks(&mut found, &[c], &spec, &last_oom, time::now());
        found
            .list
            .iter()
            .filter(|f| f.check == Check::Memory)
            .map(|f| format!("{} {f}", f.level))
            .collect()
    }

    #[test]
    fn memory_kills_come_from_inspect_or_from_the_engines_oom_events() {
        let started = time::parse("2026-01-01T00:00:10Z")
            .map(time::unix_secs)
            .unwrap();
        assert_eq!(
            memory_findings(&task("exited", true), &[]),
            ["warning web h1/0 (prod.web.h1.0) was killed for running out of memory (memory = 64.0MiB): raise memory in jobs/web.toml (or find what grows), then run `drover up web`"]
        );
        // Inspect lost the race with the exit; the event tells.
        assert_eq!(
            memory_findings(&task("exited", false), &[("c1", started)]).len(),
            1
        );
        assert_eq!(
            memory_findings(&task("running", false), &[("c1", started + 3)]),
            ["warning a process in web h1/0 (prod.web.h1.0) was killed for running out of memory (memory = 64.0MiB); the container kept running: raise memory in jobs/web.toml (or find what grows), then run `drover up web`"]
        );
        // An earlier run's kill is not this run's.
        assert_eq!(
            memory_findings(&task("running", false), &[("c1", started - 60)]),
            ["ok the one drover container was not killed for memory"]
        );
    }

    #[tokio::test]
    async fn a_missing_host_file_is_found_by_a_probe_that_is_then_removed() {
        let engine = drover_engine::fake::FakeEngine::new("h1");
        engine.fail(
            "create prod.h1.doctor-",
            EngineError::MissingHostFile {
                host: "h1".into(),
                address: "fake://".into(),
                path: "/etc/missing".into(),
            },
        );
        let spec = HostSpec {
            jobs: BTreeMap::new(),
            host_files: BTreeMap::from([("/etc/missing".to_string(), vec!["web".to_string()])]),
        };
        let probe = probe("prod", "h1", &engine, &spec).await;
        // The fake refuses every create: one try per path, then it gives up.
        assert_eq!(probe.missing, ["/etc/missing"]);
        assert!(engine.containers().is_empty());
    }
}
