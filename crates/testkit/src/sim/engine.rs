//! One simulated engine's state: containers (labels, names, state, health,
//! restart counts, logs), images, volumes, exec sessions and the event
//! stream, changing as a real engine's do.
//!
//! Everything that happens by itself on a real host happens here on a
//! timer: a health check turns healthy after its interval (or unhealthy
//! after its retries), a process exits when its image says so and the
//! restart policy brings it back after Docker's back-off, a log line is
//! written. Each timer is bound to one run of a container (its
//! generation), so a stop, restart or removal ends it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::clock::{self, Rng};
use super::config::{normalize_reference, Behaviour, Call, ImageSpec, SimConfig};

/// Events the engine keeps for `since` queries (moby's `eventsLimit`).
const PAST_EVENTS: usize = 256;
/// Log lines kept per container.
const LOG_LINES: usize = 1000;
/// Health probes kept per container (moby's `maxLogEntries`).
const HEALTH_LOG: usize = 5;
/// Docker's restart back-off: starts here, doubles, resets after a run this long.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// The engine's stats collector runs this often.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(1);
/// CPUs and memory every simulated host has.
pub const NCPU: u64 = 2;
pub const MEM_TOTAL: u64 = 25_276_182_528;

/// An answer other than success: an HTTP status and the engine's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn no_container(what: &str) -> ApiError {
        ApiError::new(404, format!("No such container: {what}"))
    }
}

pub type Answer<T> = Result<T, ApiError>;

/// One event, serialized once for every subscriber.
#[derive(Debug)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub actor: String,
    pub attributes: BTreeMap<String, String>,
    pub time: SystemTime,
    pub json: Bytes,
}

/// A health check as the container's configuration gives it.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: i64,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub start: SystemTime,
    pub end: SystemTime,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub status: &'static str,
    pub failing_streak: i64,
    pub log: VecDeque<Probe>,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    pub container: String,
    pub seq: u64,
    pub time: SystemTime,
    /// 1 stdout, 2 stderr (the multiplexed stream's numbers).
    pub stream: u8,
    pub text: Bytes,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created: SystemTime,
    pub image_id: String,
    /// `Config` as `docker inspect` shows it (the request merged with the image's).
    pub config: Map<String, Value>,
    pub host_config: Map<String, Value>,
    pub labels: BTreeMap<String, String>,
    pub path: String,
    pub args: Vec<String>,
    pub tty: bool,
    pub stop_timeout: Option<u64>,
    pub healthcheck: Option<HealthCheck>,
    pub behaviour: Behaviour,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub dead: bool,
    pub oom_killed: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub restart_count: i64,
    pub manually_stopped: bool,
    pub health: Option<Health>,
    /// Bumped by every start and every exit: timers of an older run stop.
    pub generation: u64,
    run_started: Option<Instant>,
    backoff: Duration,
    /// CPU time of the runs before this one, nanoseconds.
    cpu_ns: u64,
    /// Share of one CPU it uses while running.
    pub cpu_rate: f64,
    pub memory: u64,
    pub log: VecDeque<LogLine>,
    next_log_seq: u64,
    pub volumes: Vec<String>,
    /// What of `docker inspect` never changes, serialized at create.
    pub fixed_json: Bytes,
}

impl Container {
    /// What `docker ps` shows as STATE.
    pub fn state_string(&self) -> &'static str {
        if self.running {
            if self.paused {
                "paused"
            } else if self.restarting {
                "restarting"
            } else {
                "running"
            }
        } else if self.dead {
            "dead"
        } else if self.started_at.is_none() {
            "created"
        } else {
            "exited"
        }
    }

    /// What `docker ps` shows as STATUS.
    pub fn status_string(&self, now: SystemTime) -> String {
        let since = |t: Option<SystemTime>| {
            clock::human_duration(
                t.and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default(),
            )
        };
        if self.running {
            if self.paused {
                return format!("Up {} (Paused)", since(self.started_at));
            }
            if self.restarting {
                return format!(
                    "Restarting ({}) {} ago",
                    self.exit_code,
                    since(self.finished_at)
                );
            }
            return match &self.health {
                Some(h) if h.status == "starting" => {
                    format!("Up {} (health: starting)", since(self.started_at))
                }
                Some(h) => format!("Up {} ({})", since(self.started_at), h.status),
                None => format!("Up {}", since(self.started_at)),
            };
        }
        if self.dead {
            return "Dead".to_string();
        }
        if self.started_at.is_none() {
            return "Created".to_string();
        }
        format!(
            "Exited ({}) {} ago",
            self.exit_code,
            since(self.finished_at)
        )
    }

    /// The cumulative CPU counter at `at`.
    fn cpu_total(&self, at: Instant) -> u64 {
        let running = match (self.running && !self.restarting, self.run_started) {
            (true, Some(t)) => at.saturating_duration_since(t).as_nanos() as f64 * self.cpu_rate,
            _ => 0.0,
        };
        self.cpu_ns + running as u64
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: SystemTime,
    pub size: i64,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub comment: String,
    pub behaviour: Behaviour,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub created: SystemTime,
    pub anonymous: bool,
}

#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub env: Vec<String>,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

#[derive(Debug, Default)]
pub struct State {
    pub containers: BTreeMap<String, Container>,
    pub names: HashMap<String, String>,
    pub images: BTreeMap<String, Image>,
    pub volumes: BTreeMap<String, Volume>,
    pub execs: HashMap<String, Exec>,
    pub past: VecDeque<Arc<Event>>,
    next_pid: i64,
}

impl State {
    /// The container `what` names: full ID, name (with or without `/`), or
    /// a unique ID prefix.
    pub fn find(&self, what: &str) -> Answer<&Container> {
        let id = self.resolve(what)?;
        self.containers
            .get(&id)
            .ok_or_else(|| ApiError::no_container(what))
    }

    pub fn resolve(&self, what: &str) -> Answer<String> {
        if self.containers.contains_key(what) {
            return Ok(what.to_string());
        }
        if let Some(id) = self.names.get(what.trim_start_matches('/')) {
            return Ok(id.clone());
        }
        if what.is_empty() {
            return Err(ApiError::no_container(what));
        }
        let mut matches = self
            .containers
            .range(what.to_string()..)
            .take_while(|(id, _)| id.starts_with(what));
        match (matches.next(), matches.next()) {
            (Some((id, _)), None) => Ok(id.clone()),
            (Some(_), Some(_)) => Err(ApiError::new(
                404,
                format!("No such container: {what} (multiple IDs found with provided prefix)"),
            )),
            _ => Err(ApiError::no_container(what)),
        }
    }

    fn get_mut(&mut self, id: &str) -> Answer<&mut Container> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| ApiError::no_container(id))
    }

    /// The image `reference` names: `sha256:ID`, an ID or its prefix,
    /// `REPO:TAG` (`REPO` alone meaning `:latest`), or `REPO@DIGEST`.
    pub fn find_image(&self, reference: &str) -> Option<&Image> {
        if let Some(image) = self.images.get(reference) {
            return Some(image);
        }
        let hex = reference.trim_start_matches("sha256:");
        if hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut matches = self
                .images
                .values()
                .filter(|i| i.id.trim_start_matches("sha256:").starts_with(hex));
            if let (Some(image), None) = (matches.next(), matches.next()) {
                return Some(image);
            }
        }
        let normalized = normalize_reference(reference);
        self.images.values().find(|i| {
            i.repo_tags.contains(&normalized) || i.repo_digests.iter().any(|d| d == reference)
        })
    }

    pub fn containers_of_image(&self, image_id: &str) -> Vec<&Container> {
        self.containers
            .values()
            .filter(|c| c.image_id == image_id)
            .collect()
    }
}

/// The shared registry: every image a pull can find.
#[derive(Debug, Default)]
pub struct Registry {
    pub images: BTreeMap<String, ImageSpec>,
}

pub struct Engine {
    pub name: String,
    pub config: Arc<SimConfig>,
    pub registry: Arc<Registry>,
    state: Mutex<State>,
    rng: Mutex<Rng>,
    events: broadcast::Sender<Arc<Event>>,
    logs: broadcast::Sender<Arc<LogLine>>,
    /// Where in each second the stats collector runs.
    collector_phase: Duration,
    epoch: Instant,
    /// The host's uptime when the simulation started (for its CPU counter).
    uptime_at_epoch: Duration,
    pub id: String,
    pub network_ids: BTreeMap<&'static str, String>,
    trace: Option<Arc<Mutex<std::fs::File>>>,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The image a spec stands for: the same ID and digest on every engine.
fn image_of(spec: &ImageSpec, created: SystemTime) -> Image {
    let reference = &spec.reference;
    let repo = repository(reference);
    Image {
        id: format!(
            "sha256:{}",
            sha256_hex(format!("engine-sim image {reference}").as_bytes())
        ),
        repo_tags: vec![reference.clone()],
        repo_digests: vec![format!(
            "{repo}@sha256:{}",
            sha256_hex(format!("engine-sim manifest {reference}").as_bytes())
        )],
        created,
        size: 1_984_291,
        labels: BTreeMap::new(),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()],
        cmd: Some(vec!["sh".to_string()]),
        comment: String::new(),
        behaviour: spec.behaviour.clone(),
    }
}

/// `REPO:TAG` → `REPO` (a `:` before the last `/` is a registry's port).
pub fn repository(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => &reference[..name_start + i],
        None => reference,
    }
}

/// Images of the specs given first: created a minute apart from a fixed
/// day, so listings are the same on every run.
fn creation_time(index: usize) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 60 * index as u64)
}

impl Engine {
    pub fn new(
        index: usize,
        config: Arc<SimConfig>,
        registry: Arc<Registry>,
        trace: Option<Arc<Mutex<std::fs::File>>>,
    ) -> Engine {
        let mut rng = Rng::new(config.seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut state = State {
            next_pid: 1000 + (rng.next_u64() % 30_000) as i64,
            ..State::default()
        };
        for (i, spec) in config.images.iter().enumerate() {
            let image = image_of(spec, creation_time(i));
            state.images.insert(image.id.clone(), image);
        }
        let collector_phase = Duration::from_secs_f64(rng.unit());
        let uptime_at_epoch = Duration::from_secs(600 + rng.next_u64() % 86_400);
        let id: Vec<String> = (0..12)
            .map(|_| {
                (0..4)
                    .map(|_| char::from(b'A' + (rng.next_u64() % 26) as u8))
                    .collect()
            })
            .collect();
        let network_ids = ["host", "bridge", "none"]
            .into_iter()
            .map(|n| (n, rng.hex_id()))
            .collect();
        Engine {
            name: format!("h{index}"),
            config,
            registry,
            state: Mutex::new(state),
            rng: Mutex::new(rng),
            events: broadcast::channel(4096).0,
            logs: broadcast::channel(4096).0,
            collector_phase,
            epoch: Instant::now(),
            uptime_at_epoch,
            id: id.join(":"),
            network_ids,
            trace,
        }
    }

    /// Writes one request's line to the trace, if there is one.
    pub fn trace(&self, came: SystemTime, took: Duration, method: &str, path: &str, status: u16) {
        let Some(trace) = &self.trace else {
            return;
        };
        let came = came
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let line = format!(
            "{came:.6} {:.6} {} {method} {path} {status}\n",
            took.as_secs_f64(),
            self.name
        );
        if let Ok(mut file) = trace.lock() {
            use std::io::Write;
            // A trace that cannot be written loses lines, not answers.
            let _ = file.write_all(line.as_bytes());
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rng(&self) -> MutexGuard<'_, Rng> {
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn new_id(&self) -> String {
        self.rng().hex_id()
    }

    /// Waits the latency of `call`, with the configured jitter.
    pub async fn delay(&self, call: Call) {
        let base = self.config.latency.get(call);
        if base.is_zero() {
            return;
        }
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let factor = self.rng().between(1.0 - jitter, 1.0 + jitter);
        tokio::time::sleep(base.mul_f64(factor)).await;
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    pub fn event_listeners(&self) -> usize {
        self.events.receiver_count()
    }

    pub fn subscribe_logs(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.logs.subscribe()
    }

    // ---- events -------------------------------------------------------------

    fn emit(
        &self,
        st: &mut State,
        kind: &'static str,
        action: &str,
        actor: &str,
        attributes: BTreeMap<String, String>,
        from: Option<&str>,
    ) {
        let time = SystemTime::now();
        let mut body = json!({
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor, "Attributes": attributes},
            "scope": "local",
            "time": clock::unix_secs(time),
            "timeNano": clock::unix_nanos(time),
        });
        // The pre-1.22 fields the engine still sends for containers and images.
        if kind == "container" || kind == "image" {
            body["status"] = json!(action);
            body["id"] = json!(actor);
            if let Some(from) = from {
                body["from"] = json!(from);
            }
        }
        let mut json = serde_json::to_vec(&body).unwrap_or_default();
        json.push(b'\n');
        let event = Arc::new(Event {
            kind,
            action: action.to_string(),
            actor: actor.to_string(),
            attributes,
            time,
            json: Bytes::from(json),
        });
        if st.past.len() == PAST_EVENTS {
            st.past.pop_front();
        }
        st.past.push_back(Arc::clone(&event));
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    fn container_event(&self, st: &mut State, id: &str, action: &str, extra: &[(&str, String)]) {
        let Some(c) = st.containers.get(id) else {
            return;
        };
        let image = c
            .config
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut attributes = c.labels.clone();
        attributes.insert("image".to_string(), image.clone());
        attributes.insert("name".to_string(), c.name.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.emit(st, "container", action, id, attributes, Some(&image));
    }

    fn image_event(&self, st: &mut State, action: &str, actor: &str) {
        let attributes = BTreeMap::from([("name".to_string(), actor.to_string())]);
        self.emit(st, "image", action, actor, attributes, None);
    }

    // ---- containers -----------------------------------------------------------

    /// `POST /containers/create`: the request body merged with the image's
    /// configuration, as the engine stores it.
    pub fn create(&self, name: Option<&str>, body: &Value) -> Answer<String> {
        let image_ref = body["Image"].as_str().unwrap_or_default().to_string();
        if image_ref.is_empty() {
            return Err(ApiError::new(400, "No command specified"));
        }
        if let Some(name) = name {
            let valid = name.trim_start_matches('/');
            let ok = valid.len() >= 2
                && valid.starts_with(|c: char| c.is_ascii_alphanumeric())
                && valid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(ApiError::new(
                    400,
                    format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                ));
            }
        }
        let id = self.new_id();
        let (memory, cpu_rate) = {
            let mut rng = self.rng();
            (
                (rng.between(2.0, 64.0) * f64::from(1u32 << 20)) as u64,
                rng.between(0.001, 0.03),
            )
        };
        let mut st = self.lock();
        let image = st
            .find_image(&image_ref)
            .cloned()
            .ok_or_else(|| ApiError::new(404, format!("No such image: {image_ref}")))?;
        let name = match name {
            Some(n) => n.trim_start_matches('/').to_string(),
            None => format!("sim_{}", &id[..12]),
        };
        if let Some(other) = st.names.get(&name) {
            return Err(ApiError::new(
                409,
                format!("Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."),
            ));
        }
        let host_config = super::shapes::host_config(&body["HostConfig"]);
        let network = host_config
            .get("NetworkMode")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let hostname = if network == "host" {
            self.name.clone()
        } else {
            id[..12].to_string()
        };
        let config = super::shapes::container_config(body, &image, &hostname);
        let labels: BTreeMap<String, String> = config
            .get("Labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let strings = |key: &str| -> Vec<String> {
            config
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut argv = strings("Entrypoint");
        argv.extend(strings("Cmd"));
        if argv.is_empty() {
            return Err(ApiError::new(400, "No command specified"));
        }
        let healthcheck = health_check(config.get("Healthcheck"));
        let volumes = super::shapes::named_volumes(&host_config);
        let now = SystemTime::now();
        for volume in &volumes {
            if !st.volumes.contains_key(volume) {
                st.volumes.insert(
                    volume.clone(),
                    Volume {
                        name: volume.clone(),
                        created: now,
                        anonymous: false,
                    },
                );
                let attributes = BTreeMap::from([("driver".to_string(), "local".to_string())]);
                self.emit(&mut st, "volume", "create", volume, attributes, None);
            }
        }
        let mut container = Container {
            id: id.clone(),
            name: name.clone(),
            created: now,
            image_id: image.id.clone(),
            tty: config.get("Tty").and_then(Value::as_bool).unwrap_or(false),
            stop_timeout: config
                .get("StopTimeout")
                .and_then(Value::as_i64)
                .and_then(|t| u64::try_from(t).ok()),
            labels,
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config,
            healthcheck,
            memory: image.behaviour.memory.unwrap_or(memory),
            cpu_rate: image.behaviour.cpu_percent.map_or(cpu_rate, |p| p / 100.0),
            behaviour: image.behaviour.clone(),
            running: false,
            paused: false,
            restarting: false,
            dead: false,
            oom_killed: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: None,
            finished_at: None,
            restart_count: 0,
            manually_stopped: false,
            health: None,
            generation: 0,
            run_started: None,
            backoff: Duration::ZERO,
            cpu_ns: 0,
            log: VecDeque::new(),
            next_log_seq: 0,
            volumes,
            fixed_json: Bytes::new(),
        };
        container.fixed_json = super::shapes::inspect_fixed(&container);
        st.containers.insert(id.clone(), container);
        st.names.insert(name, id.clone());
        self.container_event(&mut st, &id, "create", &[]);
        Ok(id)
    }

    /// `POST /containers/{id}/start`; `Ok(false)` when it already runs (304).
    pub fn start(self: &Arc<Self>, what: &str) -> Answer<bool> {
        let mut st = self.lock();
        let id = st.resolve(what)?;
        let c = st.get_mut(&id)?;
        if c.running && !c.restarting {
            return Ok(false);
        }
        if c.restarting {
            // A start during the back-off starts it now.
            c.restarting = false;
        }
        c.manually_stopped = false;
        c.backoff = Duration::ZERO;
        self.run(&mut st, &id);
        Ok(true)
    }

    /// Starts the container's process, and the timers of this run.
    fn run(self: &Arc<Self>, st: &mut State, id: &str) {
        let pid = st.next_pid;
        st.next_pid += 1;
        let Some(c) = st.containers.get_mut(id) else {
            return;
        };
        c.running = true;
        c.paused = false;
        c.restarting = false;
        c.dead = false;
        c.oom_killed = false;
        c.exit_code = 0;
        c.error.clear();
        c.pid = pid;
        c.started_at = Some(SystemTime::now());
        c.run_started = Some(Instant::now());
        c.generation += 1;
        c.health = c.healthcheck.as_ref().map(|_| Health {
            status: "starting",
            failing_streak: 0,
            log: VecDeque::new(),
        });
        let generation = c.generation;
        let behaviour = c.behaviour.clone();
        let health = c.healthcheck.clone();
        self.container_event(st, id, "start", &[]);
        if let Some(after) = behaviour.exit_after {
            let (engine, id) = (Arc::clone(self), id.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let code = if behaviour.oom {
                    137
                } else {
                    behaviour.exit_code
                };
                engine.exit_by_itself(&id, generation, code, behaviour.oom);
            });
        }
        if let Some(check) = health {
            let (engine, id) = (Arc::clone(self), id.to_string());
            tokio::spawn(async move { engine.health_loop(&id, generation, check).await });
        }
        if let Some(every) = behaviour.log_every {
            let (engine, id) = (Arc::clone(self), id.to_string());
            tokio::spawn(async move { engine.log_loop(&id, generation, every).await });
        }
    }

    fn is_run(&self, st: &State, id: &str, generation: u64) -> bool {
        st.containers
            .get(id)
            .is_some_and(|c| c.generation == generation && c.running && !c.restarting)
    }

    /// The process ended: the container is exited, and the restart policy decides what next.
    fn exited(self: &Arc<Self>, st: &mut State, id: &str, code: i64, oom: bool, by_hand: bool) {
        let Some(c) = st.containers.get_mut(id) else {
            return;
        };
        let now = Instant::now();
        c.cpu_ns = c.cpu_total(now);
        let ran = c
            .run_started
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        c.running = false;
        c.paused = false;
        c.restarting = false;
        c.pid = 0;
        c.exit_code = code;
        c.oom_killed = oom;
        c.finished_at = Some(SystemTime::now());
        c.run_started = None;
        c.generation += 1;
        // moby marks a stopped monitor unhealthy "for compatibility reasons".
        if let Some(health) = c.health.as_mut() {
            health.status = "unhealthy";
        }
        if by_hand {
            c.manually_stopped = true;
        }
        // Exec sessions end with their container.
        let execs: Vec<String> = st
            .execs
            .values()
            .filter(|e| e.container == id && e.running)
            .map(|e| e.id.clone())
            .collect();
        for exec in execs {
            if let Some(e) = st.execs.get_mut(&exec) {
                e.running = false;
                e.exit_code.get_or_insert(137);
            }
        }
        if oom {
            self.container_event(st, id, "oom", &[]);
        }
        self.container_event(st, id, "die", &[("exitCode", code.to_string())]);
        let Some(c) = st.containers.get_mut(id) else {
            return;
        };
        let policy = c
            .host_config
            .get("RestartPolicy")
            .cloned()
            .unwrap_or(Value::Null);
        let name = policy["Name"].as_str().unwrap_or_default();
        let max = policy["MaximumRetryCount"].as_i64().unwrap_or(0);
        let restart = !c.manually_stopped
            && match name {
                "always" | "unless-stopped" => true,
                "on-failure" => code != 0 && (max == 0 || c.restart_count < max),
                _ => false,
            };
        if !restart {
            return;
        }
        c.backoff = if ran >= BACKOFF_RESET_AFTER || c.backoff.is_zero() {
            BACKOFF_START
        } else {
            (c.backoff * 2).min(BACKOFF_MAX)
        };
        c.running = true;
        c.restarting = true;
        let (wait, generation) = (c.backoff, c.generation);
        let (engine, id) = (Arc::clone(self), id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let mut st = engine.lock();
            let due = st
                .containers
                .get(&id)
                .is_some_and(|c| c.generation == generation && c.restarting);
            if due {
                if let Some(c) = st.containers.get_mut(&id) {
                    c.restart_count += 1;
                }
                engine.run(&mut st, &id);
            }
        });
    }

    fn exit_by_itself(self: &Arc<Self>, id: &str, generation: u64, code: i64, oom: bool) {
        let mut st = self.lock();
        if self.is_run(&st, id, generation) {
            self.exited(&mut st, id, code, oom, false);
        }
    }

    async fn health_loop(self: Arc<Self>, id: &str, generation: u64, check: HealthCheck) {
        let interval = if check.interval.is_zero() {
            Duration::from_secs(30)
        } else {
            check.interval
        };
        let command = check.test.get(1..).unwrap_or_default().join(" ");
        let mut probes = 0u64;
        loop {
            tokio::time::sleep(interval).await;
            let mut st = self.lock();
            if !self.is_run(&st, id, generation) {
                return;
            }
            if st.containers.get(id).is_some_and(|c| c.paused) {
                continue;
            }
            probes += 1;
            let exec_id = format!("{:016x}{:048x}", probes, generation);
            let Some(c) = st.containers.get_mut(id) else {
                return;
            };
            let in_start_period = c
                .run_started
                .is_some_and(|t| t.elapsed() < check.start_period);
            let fails = c.behaviour.health_fails;
            let now = SystemTime::now();
            let probe = Probe {
                start: now,
                end: now + Duration::from_millis(50),
                exit_code: i64::from(fails),
                output: if fails {
                    "engine-sim: the health check of this image fails\n".to_string()
                } else {
                    String::new()
                },
            };
            let Some(health) = c.health.as_mut() else {
                return;
            };
            let before = health.status;
            if health.log.len() == HEALTH_LOG {
                health.log.pop_front();
            }
            health.log.push_back(probe);
            if fails {
                if !in_start_period {
                    health.failing_streak += 1;
                    if health.failing_streak >= check.retries.max(1) {
                        health.status = "unhealthy";
                    }
                }
            } else {
                health.failing_streak = 0;
                health.status = "healthy";
            }
            let after = health.status;
            let exec = [("execID", exec_id)];
            self.container_event(&mut st, id, &format!("exec_create: {command} "), &exec);
            self.container_event(&mut st, id, &format!("exec_start: {command} "), &exec);
            let died = [exec[0].clone(), ("exitCode", i64::from(fails).to_string())];
            self.container_event(&mut st, id, "exec_die", &died);
            if before != after {
                self.container_event(&mut st, id, &format!("health_status: {after}"), &[]);
            }
        }
    }

    async fn log_loop(self: Arc<Self>, id: &str, generation: u64, every: Duration) {
        let mut n = 0u64;
        loop {
            tokio::time::sleep(every).await;
            let mut st = self.lock();
            if !self.is_run(&st, id, generation) {
                return;
            }
            n += 1;
            let line = format!("engine-sim: line {n}\n");
            self.write_log(&mut st, id, 1, line.into_bytes());
        }
    }

    fn write_log(&self, st: &mut State, id: &str, stream: u8, text: Vec<u8>) {
        let Some(c) = st.containers.get_mut(id) else {
            return;
        };
        let line = LogLine {
            container: id.to_string(),
            seq: c.next_log_seq,
            time: SystemTime::now(),
            stream,
            text: Bytes::from(text),
        };
        c.next_log_seq += 1;
        if c.log.len() == LOG_LINES {
            c.log.pop_front();
        }
        c.log.push_back(line.clone());
        let _ = self.logs.send(Arc::new(line));
    }

    /// `POST /containers/{id}/stop`: SIGTERM, then SIGKILL at the timeout.
    /// `Ok(false)` when it was not running (304).
    pub async fn stop(self: &Arc<Self>, what: &str, timeout: Option<u64>) -> Answer<bool> {
        self.delay(Call::Kill).await;
        let (id, generation, timeout, killed) = {
            let mut st = self.lock();
            let id = st.resolve(what)?;
            let c = st.get_mut(&id)?;
            if c.restarting {
                // Cancels the restart: it stays down.
                c.restarting = false;
                c.running = false;
                c.manually_stopped = true;
                c.generation += 1;
                self.container_event(&mut st, &id, "stop", &[]);
                return Ok(true);
            }
            if !c.running {
                return Ok(false);
            }
            let timeout = Duration::from_secs(timeout.or(c.stop_timeout).unwrap_or(10));
            // Killed at the timeout: a process that ignores SIGTERM, or no time at all.
            let killed = c.behaviour.ignores_sigterm || timeout.is_zero();
            let generation = c.generation;
            self.container_event(&mut st, &id, "kill", &[("signal", "15".to_string())]);
            (id, generation, timeout, killed)
        };
        if killed {
            tokio::time::sleep(timeout).await;
        } else {
            self.delay(Call::Stop).await;
        }
        let mut st = self.lock();
        if self.is_run(&st, &id, generation) {
            let code = if killed {
                self.container_event(&mut st, &id, "kill", &[("signal", "9".to_string())]);
                137
            } else {
                143
            };
            self.exited(&mut st, &id, code, false, true);
        }
        if st.containers.contains_key(&id) {
            self.container_event(&mut st, &id, "stop", &[]);
        }
        Ok(true)
    }

    /// `POST /containers/{id}/kill`: SIGKILL or SIGTERM end the process at
    /// once (SIGTERM unless the image ignores it); other signals are handled.
    pub fn kill(self: &Arc<Self>, what: &str, signal: &str) -> Answer<()> {
        let number = signal_number(signal)
            .ok_or_else(|| ApiError::new(400, format!("Invalid signal: {signal}")))?;
        let mut st = self.lock();
        let id = st.resolve(what)?;
        let c = st.get_mut(&id)?;
        if !c.running || c.restarting {
            return Err(ApiError::new(
                409,
                format!("Cannot kill container: {what}: Container {id} is not running"),
            ));
        }
        let dies = number == 9 || (number == 15 && !c.behaviour.ignores_sigterm);
        self.container_event(&mut st, &id, "kill", &[("signal", number.to_string())]);
        if dies {
            self.exited(&mut st, &id, 128 + number, false, true);
        }
        Ok(())
    }

    pub fn pause(&self, what: &str, pause: bool) -> Answer<()> {
        let mut st = self.lock();
        let id = st.resolve(what)?;
        let c = st.get_mut(&id)?;
        if !c.running || c.restarting {
            return Err(ApiError::new(409, format!("Container {id} is not running")));
        }
        match (pause, c.paused) {
            (true, true) => Err(ApiError::new(
                409,
                format!("Container {id} is already paused"),
            )),
            (false, false) => Err(ApiError::new(500, format!("Container {id} is not paused"))),
            _ => {
                c.paused = pause;
                self.container_event(&mut st, &id, if pause { "pause" } else { "unpause" }, &[]);
                Ok(())
            }
        }
    }

    pub fn rename(&self, what: &str, new_name: &str) -> Answer<()> {
        let new_name = new_name.trim_start_matches('/').to_string();
        let mut st = self.lock();
        let id = st.resolve(what)?;
        if new_name.is_empty() {
            return Err(ApiError::new(400, "Neither old nor new names may be empty"));
        }
        if let Some(other) = st.names.get(&new_name) {
            return Err(ApiError::new(
                409,
                format!("Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."),
            ));
        }
        let c = st.get_mut(&id)?;
        let old = std::mem::replace(&mut c.name, new_name.clone());
        st.names.remove(&old);
        st.names.insert(new_name, id.clone());
        self.container_event(&mut st, &id, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `DELETE /containers/{id}`; `force` kills a running one first,
    /// `volumes` removes its anonymous volumes with it.
    pub fn remove(self: &Arc<Self>, what: &str, force: bool, volumes: bool) -> Answer<()> {
        let mut st = self.lock();
        let id = st.resolve(what)?;
        let c = st.get_mut(&id)?;
        if c.running && !c.restarting {
            if !force {
                return Err(ApiError::new(
                    409,
                    format!("You cannot remove a running container {id}. Stop the container before attempting removal or force remove"),
                ));
            }
            self.container_event(&mut st, &id, "kill", &[("signal", "9".to_string())]);
            self.exited(&mut st, &id, 137, false, true);
        }
        // The event carries the labels, so it goes out before the container does.
        self.container_event(&mut st, &id, "destroy", &[]);
        let Some(c) = st.containers.remove(&id) else {
            return Err(ApiError::no_container(what));
        };
        st.names.remove(&c.name);
        st.execs.retain(|_, e| e.container != id);
        if volumes {
            for name in &c.volumes {
                if st.volumes.get(name).is_some_and(|v| v.anonymous) {
                    st.volumes.remove(name);
                }
            }
        }
        Ok(())
    }

    // ---- stats ----------------------------------------------------------------

    /// When the stats collector next runs, after `now`.
    pub fn next_collection(&self, now: Instant) -> Instant {
        let since =
            now.saturating_duration_since(self.epoch) + COLLECT_INTERVAL - self.collector_phase;
        let ticks = since.as_nanos() / COLLECT_INTERVAL.as_nanos();
        let next =
            self.collector_phase + COLLECT_INTERVAL * u32::try_from(ticks).unwrap_or(u32::MAX);
        let at = self.epoch + next;
        if at <= now {
            at + COLLECT_INTERVAL
        } else {
            at
        }
    }

    /// The host's CPU counter at `at`, nanoseconds (in 10 ms ticks, as `/proc/stat`).
    pub fn system_cpu(&self, at: Instant) -> u64 {
        let uptime = self.uptime_at_epoch + at.saturating_duration_since(self.epoch);
        (uptime.as_nanos() as u64 * NCPU) / 10_000_000 * 10_000_000
    }

    /// The container's counters as the collector reads them at `at`:
    /// `None` when it is gone.
    pub fn sample(&self, id: &str, at: Instant) -> Option<Sample> {
        let st = self.lock();
        let c = st.containers.get(id)?;
        Some(Sample {
            read: SystemTime::now(),
            running: c.running && !c.restarting,
            cpu_total: c.cpu_total(at),
            system: self.system_cpu(at),
            memory: c.memory,
            limit: c
                .host_config
                .get("Memory")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
                .unwrap_or(MEM_TOTAL),
            pids: if c.running { 2 } else { 0 },
            name: c.name.clone(),
        })
    }

    // ---- images ---------------------------------------------------------------

    /// Pulls `reference` from the registry; `Ok(false)` when it was here already.
    pub fn pull(&self, reference: &str) -> Answer<(bool, Image)> {
        let reference = normalize_reference(reference);
        let spec =
            self.registry
                .images
                .get(&reference)
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(
                404,
                format!("manifest for {reference} not found: manifest unknown: manifest unknown"),
            )
                })?;
        let index = self.config.images.len()
            + self
                .registry
                .images
                .keys()
                .position(|k| *k == reference)
                .unwrap_or(0);
        let image = image_of(&spec, creation_time(index));
        let mut st = self.lock();
        if let Some(present) = st.images.get(&image.id) {
            if present.repo_tags.contains(&reference) {
                return Ok((false, present.clone()));
            }
        }
        untag_elsewhere(&mut st, &reference, &image.id);
        let entry = st
            .images
            .entry(image.id.clone())
            .or_insert_with(|| image.clone());
        for tag in &image.repo_tags {
            if !entry.repo_tags.contains(tag) {
                entry.repo_tags.push(tag.clone());
            }
        }
        for digest in &image.repo_digests {
            if !entry.repo_digests.contains(digest) {
                entry.repo_digests.push(digest.clone());
            }
        }
        let pulled = entry.clone();
        self.image_event(&mut st, "pull", &reference);
        Ok((true, pulled))
    }

    /// `docker import`: an image from a root filesystem tar, named `reference`.
    pub fn import(&self, reference: &str, tar: &[u8], labels: BTreeMap<String, String>) -> String {
        let mut hasher = Sha256::new();
        hasher.update(tar);
        for (k, v) in &labels {
            hasher.update(format!("{k}={v}\n").as_bytes());
        }
        let id = format!(
            "sha256:{}",
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let reference = normalize_reference(reference);
        let mut st = self.lock();
        untag_elsewhere(&mut st, &reference, &id);
        let entry = st.images.entry(id.clone()).or_insert_with(|| Image {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            created: SystemTime::now(),
            size: tar.len() as i64,
            labels,
            env: Vec::new(),
            cmd: None,
            comment: "Imported from -".to_string(),
            behaviour: Behaviour::default(),
        });
        if !entry.repo_tags.contains(&reference) {
            entry.repo_tags.push(reference.clone());
        }
        self.image_event(&mut st, "import", &id);
        id
    }

    pub fn tag(&self, source: &str, reference: &str) -> Answer<()> {
        let reference = normalize_reference(reference);
        let mut st = self.lock();
        let id = st
            .find_image(source)
            .map(|i| i.id.clone())
            .ok_or_else(|| ApiError::new(404, format!("No such image: {source}")))?;
        untag_elsewhere(&mut st, &reference, &id);
        if let Some(image) = st.images.get_mut(&id) {
            if !image.repo_tags.contains(&reference) {
                image.repo_tags.push(reference.clone());
            }
        }
        self.image_event(&mut st, "tag", &id);
        Ok(())
    }

    /// `DELETE /images/{name}`: untags a reference, and deletes the image
    /// with its last one, unless a container uses it.
    pub fn remove_image(&self, reference: &str, force: bool) -> Answer<Vec<Value>> {
        let mut st = self.lock();
        let image = st
            .find_image(reference)
            .cloned()
            .ok_or_else(|| ApiError::new(404, format!("No such image: {reference}")))?;
        let short = |id: &str| {
            id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>()
        };
        let normalized = normalize_reference(reference);
        let by_tag = image.repo_tags.contains(&normalized);
        if by_tag && image.repo_tags.len() > 1 {
            if let Some(i) = st.images.get_mut(&image.id) {
                i.repo_tags.retain(|t| *t != normalized);
            }
            self.image_event(&mut st, "untag", &image.id);
            return Ok(vec![json!({"Untagged": normalized})]);
        }
        if !force {
            if let Some(c) = st.containers_of_image(&image.id).first() {
                let message = if by_tag {
                    format!(
                        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
                        short(&c.id),
                        short(&image.id)
                    )
                } else {
                    let how = if c.running { "running" } else { "stopped" };
                    format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by {how} container {}",
                        short(&image.id),
                        short(&c.id)
                    )
                };
                return Err(ApiError::new(409, message));
            }
        }
        st.images.remove(&image.id);
        let mut out: Vec<Value> = image
            .repo_tags
            .iter()
            .chain(&image.repo_digests)
            .map(|t| json!({"Untagged": t}))
            .collect();
        out.push(json!({"Deleted": image.id}));
        self.image_event(&mut st, "untag", &image.id);
        self.image_event(&mut st, "delete", &image.id);
        Ok(out)
    }

    pub fn remove_volume(&self, name: &str) -> Answer<()> {
        let mut st = self.lock();
        if !st.volumes.contains_key(name) {
            return Err(ApiError::new(404, format!("get {name}: no such volume")));
        }
        let users: Vec<String> = st
            .containers
            .values()
            .filter(|c| c.volumes.iter().any(|v| v == name))
            .map(|c| c.id.clone())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::new(
                409,
                format!("remove {name}: volume is in use - [{}]", users.join(", ")),
            ));
        }
        st.volumes.remove(name);
        let attributes = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        self.emit(&mut st, "volume", "destroy", name, attributes, None);
        Ok(())
    }

    // ---- exec -----------------------------------------------------------------

    pub fn exec_create(
        &self,
        what: &str,
        cmd: Vec<String>,
        tty: bool,
        env: Vec<String>,
    ) -> Answer<String> {
        if cmd.is_empty() {
            return Err(ApiError::new(400, "No exec command specified"));
        }
        let exec_id = self.new_id();
        let mut st = self.lock();
        let id = st.resolve(what)?;
        let c = st.find(&id)?;
        if !c.running || c.restarting {
            return Err(ApiError::new(409, format!("Container {id} is not running")));
        }
        if c.paused {
            return Err(ApiError::new(
                409,
                format!("Container {id} is paused, unpause the container before exec"),
            ));
        }
        let command = cmd.join(" ");
        st.execs.insert(
            exec_id.clone(),
            Exec {
                id: exec_id.clone(),
                container: id.clone(),
                cmd,
                tty,
                env,
                running: false,
                exit_code: None,
                pid: 0,
            },
        );
        self.container_event(
            &mut st,
            &id,
            &format!("exec_create: {command}"),
            &[("execID", exec_id.clone())],
        );
        Ok(exec_id)
    }

    /// Marks the exec started; returns it and its container's env and hostname.
    pub fn exec_start(&self, exec_id: &str) -> Answer<(Exec, Vec<String>, String)> {
        let mut st = self.lock();
        let pid = st.next_pid;
        st.next_pid += 1;
        let exec = st
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| ApiError::new(404, format!("No such exec instance: {exec_id}")))?;
        if exec.running || exec.exit_code.is_some() {
            return Err(ApiError::new(
                409,
                format!("Error: Exec command {exec_id} is already running"),
            ));
        }
        exec.running = true;
        exec.pid = pid;
        let exec = exec.clone();
        let c = st.find(&exec.container)?;
        let env = c
            .config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let hostname = c
            .config
            .get("Hostname")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let command = exec.cmd.join(" ");
        let container = exec.container.clone();
        self.container_event(
            &mut st,
            &container,
            &format!("exec_start: {command}"),
            &[("execID", exec.id.clone())],
        );
        Ok((exec, env, hostname))
    }

    pub fn exec_finished(&self, exec_id: &str, code: i64) {
        let mut st = self.lock();
        let Some(exec) = st.execs.get_mut(exec_id) else {
            return;
        };
        exec.running = false;
        exec.exit_code = Some(code);
        let container = exec.container.clone();
        self.container_event(
            &mut st,
            &container,
            "exec_die",
            &[
                ("execID", exec_id.to_string()),
                ("exitCode", code.to_string()),
            ],
        );
    }
}

/// A tag moves: whatever image had `reference` loses it.
fn untag_elsewhere(st: &mut State, reference: &str, keep: &str) {
    for image in st.images.values_mut() {
        if image.id != keep {
            image.repo_tags.retain(|t| t != reference);
        }
    }
}

/// The counters one stats read gives.
#[derive(Debug, Clone)]
pub struct Sample {
    pub read: SystemTime,
    pub running: bool,
    pub cpu_total: u64,
    pub system: u64,
    pub memory: u64,
    pub limit: u64,
    pub pids: u64,
    pub name: String,
}

fn health_check(value: Option<&Value>) -> Option<HealthCheck> {
    let v = value?;
    let test: Vec<String> = v["Test"]
        .as_array()?
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let nanos = |key: &str| Duration::from_nanos(v[key].as_u64().unwrap_or(0));
    let or = |d: Duration, default: u64| {
        if d.is_zero() {
            Duration::from_secs(default)
        } else {
            d
        }
    };
    Some(HealthCheck {
        test,
        interval: or(nanos("Interval"), 30),
        timeout: or(nanos("Timeout"), 30),
        start_period: nanos("StartPeriod"),
        retries: v["Retries"].as_i64().filter(|r| *r > 0).unwrap_or(3),
    })
}

/// Signal names and numbers as `docker kill --signal` takes them.
fn signal_number(signal: &str) -> Option<i64> {
    if let Ok(n) = signal.parse::<i64>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = signal.trim_start_matches("SIG");
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::Latencies;

    fn engine(images: &[&str]) -> Arc<Engine> {
        let mut config = SimConfig::new(1, "/nonexistent");
        config.latency = Latencies::none();
        config.images = images.iter().map(|i| i.parse().unwrap()).collect();
        Arc::new(Engine::new(
            1,
            Arc::new(config),
            Arc::new(Registry::default()),
            None,
        ))
    }

    fn create(engine: &Engine, name: &str, image: &str, extra: Value) -> String {
        let mut body = json!({"Image": image, "Cmd": ["sleep", "3600"]});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        engine.create(Some(name), &body).unwrap()
    }

    fn actions(events: &mut broadcast::Receiver<Arc<Event>>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = events.try_recv() {
            out.push(e.action.clone());
        }
        out
    }

    async fn after(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_health_check_turns_healthy_after_its_interval() {
        let e = engine(&["app:1"]);
        let health = json!({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 2_000_000_000u64, "Retries": 3}});
        let id = create(&e, "web", "app:1", health);
        let mut events = e.subscribe_events();
        assert!(e.start(&id).unwrap());
        let status = |e: &Engine| e.lock().find(&id).unwrap().health.as_ref().unwrap().status;
        assert_eq!(status(&e), "starting");
        after(1_900).await;
        assert_eq!(status(&e), "starting");
        after(200).await;
        assert_eq!(status(&e), "healthy");
        assert_eq!(
            actions(&mut events),
            [
                "start",
                "exec_create: true ",
                "exec_start: true ",
                "exec_die",
                "health_status: healthy"
            ]
        );
        assert!(
            !e.start(&id).unwrap(),
            "a running container starts again as 304"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_health_check_turns_unhealthy_after_its_retries() {
        let e = engine(&["bad:1,health=fail"]);
        let health = json!({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000u64, "Retries": 2}});
        let id = create(&e, "web", "bad:1", health);
        e.start(&id).unwrap();
        after(1_050).await;
        let health = |e: &Engine| e.lock().find(&id).unwrap().health.clone().unwrap();
        assert_eq!(
            (health(&e).status, health(&e).failing_streak),
            ("starting", 1)
        );
        after(1_000).await;
        assert_eq!(
            (health(&e).status, health(&e).failing_streak),
            ("unhealthy", 2)
        );
        assert!(health(&e).log.back().unwrap().output.contains("fails"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_crashing_process_comes_back_by_its_restart_policy_with_back_off() {
        let e = engine(&["crash:1,exit-after=1s,exit-code=3"]);
        let policy = json!({"HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}});
        let id = create(&e, "web", "crash:1", policy);
        let mut events = e.subscribe_events();
        e.start(&id).unwrap();
        let look = |e: &Engine| {
            let st = e.lock();
            let c = st.find(&id).unwrap();
            (c.state_string(), c.exit_code, c.restart_count)
        };
        after(1_010).await;
        assert_eq!(look(&e), ("restarting", 3, 0));
        after(100).await;
        assert_eq!(look(&e), ("running", 0, 1));
        // The second exit waits twice as long before the restart.
        after(1_000).await;
        assert_eq!(look(&e), ("restarting", 3, 1));
        after(150).await;
        assert_eq!(look(&e), ("restarting", 3, 1));
        after(100).await;
        assert_eq!(look(&e), ("running", 0, 2));
        assert_eq!(
            actions(&mut events),
            ["start", "die", "start", "die", "start"]
        );
        // A stop during the back-off keeps it down.
        after(1_000).await;
        assert!(e.stop(&id, None).await.unwrap());
        after(5_000).await;
        assert_eq!(look(&e).0, "exited");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_waits_the_timeout_for_a_process_that_ignores_sigterm() {
        let e = engine(&["app:1", "stubborn:1,sigterm=ignore"]);
        let polite = create(&e, "polite", "app:1", json!({}));
        let stubborn = create(&e, "stubborn", "stubborn:1", json!({"StopTimeout": 7}));
        e.start(&polite).unwrap();
        e.start(&stubborn).unwrap();
        let mut events = e.subscribe_events();
        let t0 = Instant::now();
        assert!(e.stop(&polite, Some(30)).await.unwrap());
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(actions(&mut events), ["kill", "die", "stop"]);
        let t0 = Instant::now();
        assert!(e.stop(&stubborn, None).await.unwrap());
        assert_eq!(t0.elapsed(), Duration::from_secs(7), "its own stop timeout");
        assert_eq!(actions(&mut events), ["kill", "kill", "die", "stop"]);
        let code = |id: &str| e.lock().find(id).unwrap().exit_code;
        assert_eq!((code(&polite), code(&stubborn)), (143, 137));
        assert!(
            !e.stop(&polite, None).await.unwrap(),
            "a stopped container stops again as 304"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn names_are_unique_and_follow_renames() {
        let e = engine(&["app:1"]);
        let id = create(&e, "web.0", "app:1", json!({}));
        let again = e
            .create(Some("web.0"), &json!({"Image": "app:1", "Cmd": ["x"]}))
            .unwrap_err();
        assert_eq!(again.status, 409);
        assert!(
            again
                .message
                .contains("The container name \"/web.0\" is already in use"),
            "{}",
            again.message
        );
        // As the engine's own rule: two characters at least.
        assert_eq!(
            e.create(Some("a"), &json!({"Image": "app:1", "Cmd": ["x"]}))
                .unwrap_err()
                .status,
            400
        );
        e.rename(&id, "web.1").unwrap();
        assert_eq!(e.lock().find("/web.1").unwrap().id, id);
        assert_eq!(e.lock().find("web.0").unwrap_err().status, 404);
        assert_eq!(e.lock().find(&id[..12]).unwrap().name, "web.1");
        let missing = e
            .create(None, &json!({"Image": "nope:1", "Cmd": ["x"]}))
            .unwrap_err();
        assert_eq!(missing, ApiError::new(404, "No such image: nope:1"));
        e.start(&id).unwrap();
        assert_eq!(e.remove(&id, false, true).unwrap_err().status, 409);
        e.remove(&id, true, true).unwrap();
        assert!(e.lock().containers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn inspect_answers_as_the_engine_stores_a_create() {
        let e = engine(&["app:1"]);
        let body = json!({
            "Env": ["A=1"], "Labels": {"drover.env": "x"}, "StopTimeout": 5,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000u64, "StartPeriod": 0},
            "HostConfig": {"Memory": 1_048_576, "NetworkMode": "host", "Binds": ["data:/data", "/etc/x:/x:ro"]},
        });
        let id = create(&e, "web.0", "app:1", body);
        e.start(&id).unwrap();
        let st = e.lock();
        let c = st.find(&id).unwrap();
        let v: Value = serde_json::from_slice(&super::super::shapes::inspect(c, &e, &st)).unwrap();
        assert_eq!(
            (v["Id"].as_str(), v["Name"].as_str()),
            (Some(id.as_str()), Some("/web.0"))
        );
        assert_eq!(
            (
                v["State"]["Status"].as_str(),
                v["State"]["Running"].as_bool()
            ),
            (Some("running"), Some(true))
        );
        assert_eq!(v["State"]["Health"]["Status"], "starting");
        assert_eq!(
            v["Config"]["Env"],
            json!([
                "A=1",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ])
        );
        assert_eq!(v["Config"]["Cmd"], json!(["sleep", "3600"]));
        assert_eq!(
            v["Config"]["Hostname"], "h1",
            "host networking: the host's name"
        );
        assert_eq!(
            v["Config"]["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 1_000_000_000u64})
        );
        assert_eq!(
            v["HostConfig"]["MemorySwap"], 2_097_152,
            "the daemon's default: twice the memory"
        );
        assert_eq!(
            v["HostConfig"]["LogConfig"],
            json!({"Type": "json-file", "Config": {}})
        );
        assert_eq!(
            v["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(v["Mounts"][0]["Type"], "volume");
        assert_eq!(
            v["Mounts"][1],
            json!({"Type": "bind", "Source": "/etc/x", "Destination": "/x", "Mode": "ro", "RW": false, "Propagation": "rprivate"})
        );
        assert!(v["NetworkSettings"]["Networks"]["host"]["EndpointID"]
            .as_str()
            .is_some_and(|e| !e.is_empty()));
        assert!(st.volumes.contains_key("data"));
    }

    #[tokio::test(start_paused = true)]
    async fn stats_are_read_at_the_collectors_tick() {
        let e = engine(&["app:1"]);
        let now = Instant::now();
        let next = e.next_collection(now);
        assert!(next > now && next <= now + COLLECT_INTERVAL);
        assert_eq!(e.next_collection(next), next + COLLECT_INTERVAL);
        assert_eq!(e.next_collection(next - Duration::from_nanos(1)), next);
    }
}
