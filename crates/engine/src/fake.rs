//! An engine that answers from its own state, for fast unit tests of the
//! logic above the engine (the executor, rollouts, locks) — the way youki's
//! `TestHelperSyscall` stands in for the kernel. Every behaviour that
//! touches Docker is also tested against a real engine.
//!
//! Containers move through states as a real engine's would: created,
//! running, exited. What a started container then does is set per image
//! with [`Behaviour`] (keep running, exit, crash-loop, turn healthy after a
//! few looks, never turn healthy). Every call is recorded as one line
//! (`start web.0`, `rename a b`) so tests compare sequences as strings, and
//! any call can be made to fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use drover_plan::time::{self, Timestamp};
use drover_plan::{Health, ObservedContainer, RunState, Runs, TaskConfig};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::{
    is_anonymous_volume, Attachment, ContainerSummary, Containers, CreateOptions, DiskUsage,
    EngineError, EngineEvent, EngineInfo, EngineVersion, ExecOutput, ExecSession, FilesystemSpace,
    HandRun, HostContainer, ImageDetails, ImageRemoval, ImageSummary, Images, ItemSpace,
    LogOptions, LogStream, Named, PullProgress, Streams, System, UsageSample, VolumeSummary,
    Volumes,
};

/// What a container of an image does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Keeps running; healthy at the first look if it has a health check.
    Runs,
    /// Runs, and reports healthy only after this many inspections.
    HealthyAfter(u32),
    /// Runs, and its health check fails.
    Unhealthy,
    /// Exits with this code at the first look.
    Exits(i64),
    /// Restarts again and again.
    CrashLoops,
}

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub config: TaskConfig,
    pub runs: Runs,
    pub created: Timestamp,
    pub image_id: String,
    /// Names of the volumes it mounts.
    pub volumes: Vec<String>,
    looks: u32,
}

impl FakeContainer {
    /// Serves, as a probe would find it: running, not restarting, and
    /// healthy if it has a health check.
    pub fn serves(&self) -> bool {
        self.runs.state == RunState::Running
            && (self.config.health.is_none() || self.runs.health == Health::Healthy)
    }
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub containers: BTreeMap<String, FakeContainer>,
    /// Image reference (tag or ID) → image ID.
    pub images: BTreeMap<String, String>,
    /// Images a pull can find, reference → image ID.
    pub registry: BTreeMap<String, String>,
    /// Volumes on the host, name → size in bytes.
    pub volumes: BTreeMap<String, u64>,
    pub behaviours: BTreeMap<String, Behaviour>,
    /// Every call, one line each.
    pub calls: Vec<String>,
    /// Calls that fail: a line prefix (`start web.0`) and the error.
    pub failures: Vec<(String, EngineError)>,
    /// Calls that fail once, then succeed: a line prefix and the error.
    pub failures_once: Vec<(String, EngineError)>,
    /// Where [`FakeEngine::emit`] sends events, once a test asked for a
    /// feed ([`FakeEngine::with_event_feed`]); without one the event
    /// stream ends at once.
    events: Option<tokio::sync::broadcast::Sender<EngineEvent>>,
    next: u64,
    /// Makes this engine's IDs differ from every other engine's, as real
    /// IDs do (the first engine's start where they always did).
    salt: u64,
}

pub struct FakeEngine {
    host: String,
    pub state: Mutex<FakeState>,
    world: Option<Arc<World>>,
}

/// The clock every fake engine reads: a fixed start plus the time tokio
/// says has passed (virtual under a paused test clock), so container times
/// and the planner's "now" agree and a simulation replays exactly.
pub fn clock() -> Timestamp {
    static BASE: OnceLock<tokio::time::Instant> = OnceLock::new();
    let base = *BASE.get_or_init(tokio::time::Instant::now);
    let start = time::from_unix_secs(1_800_000_000).unwrap_or_default();
    let elapsed = base.elapsed();
    jiff::SignedDuration::try_from(elapsed)
        .ok()
        .and_then(|d| start.checked_add(d).ok())
        .unwrap_or(start)
}

/// What a simulated world does to every call, decided by its seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Each call takes between these two (virtual) durations.
    pub latency: (Duration, Duration),
    /// The chance that a call fails before the engine acts on it.
    pub fail_before: f64,
    /// The chance that a call that changes something acts, and then its
    /// answer is lost (the caller sees an error).
    pub fail_after: f64,
    /// The chance that, before a call, an operator changes something by
    /// hand (`docker stop`, `kill`, `pause`, `rename`) on that host.
    pub hand_change: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: (Duration::ZERO, Duration::ZERO),
            fail_before: 0.0,
            fail_after: 0.0,
            hand_change: 0.0,
        }
    }
}

/// Several fake hosts seen as one world: seeded faults and latency for
/// every call, and a record of how many containers of each job served at
/// every moment, so a simulation can check that no rollout took more of a
/// job down than it may.
pub struct World {
    state: Mutex<WorldState>,
}

struct WorldState {
    rng: SplitMix64,
    faults: Faults,
    /// Serving containers per host and job, as last counted.
    serving: BTreeMap<String, BTreeMap<String, usize>>,
    /// The fewest containers of each job that served at once, and since when counted.
    min_serving: BTreeMap<String, usize>,
    calls: usize,
    on_call: Option<Box<dyn Fn(usize) + Send + Sync>>,
    hand_changes: Vec<String>,
    /// Environments whose containers the simulated operator leaves alone.
    hands_off: Vec<String>,
}

impl World {
    pub fn new(seed: u64, faults: Faults) -> Arc<World> {
        Arc::new(World {
            state: Mutex::new(WorldState {
                rng: SplitMix64(seed),
                faults,
                serving: BTreeMap::new(),
                min_serving: BTreeMap::new(),
                calls: 0,
                on_call: None,
                hand_changes: Vec::new(),
                hands_off: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorldState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes the faults from now on (e.g. none for the repairing run).
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Called with the number of calls so far, before each call is answered
    /// (to interrupt a run at a chosen point).
    pub fn on_call(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        self.lock().on_call = Some(Box::new(hook));
    }

    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// Starts counting the fewest serving containers per job afresh, from now.
    pub fn reset_min_serving(&self) {
        let mut w = self.lock();
        let totals = w.totals();
        w.min_serving = totals;
    }

    /// The fewest containers of each job that served at once since the last reset.
    pub fn min_serving(&self) -> BTreeMap<String, usize> {
        self.lock().min_serving.clone()
    }

    /// Containers of each job serving now, over every host.
    pub fn serving(&self) -> BTreeMap<String, usize> {
        self.lock().totals()
    }

    /// The simulated operator never touches containers of `env` (so a test
    /// can check that drover did not either).
    pub fn hands_off(&self, env: &str) {
        self.lock().hands_off.push(env.to_string());
    }

    /// What the simulated operator did by hand, in order.
    pub fn hand_changes(&self) -> Vec<String> {
        self.lock().hand_changes.clone()
    }

    /// A number from the world's seed, for a harness's own choices.
    pub fn next_u64(&self) -> u64 {
        self.lock().rng.next_u64()
    }
}

impl WorldState {
    fn totals(&self) -> BTreeMap<String, usize> {
        let mut totals: BTreeMap<String, usize> = BTreeMap::new();
        for jobs in self.serving.values() {
            for (job, n) in jobs {
                *totals.entry(job.clone()).or_default() += n;
            }
        }
        totals
    }

    fn record(&mut self, host: &str, counts: BTreeMap<String, usize>) {
        self.serving.insert(host.to_string(), counts);
        let totals = self.totals();
        for (job, min) in &mut self.min_serving {
            *min = (*min).min(totals.get(job).copied().unwrap_or(0));
        }
    }
}

/// What a world decided for one call.
#[derive(Default)]
struct Roll {
    latency: Duration,
    fail_before: bool,
    fail_after: bool,
    hand_change: Option<u64>,
}

/// A small, seedable generator (SplitMix64): the same seed gives the same world.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        p > 0.0 && unit < p
    }

    /// A duration between `lo` and `hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        if span == 0 {
            return lo;
        }
        lo + Duration::from_micros(self.next_u64() % (span + 1))
    }
}

impl FakeEngine {
    pub fn new(host: &str) -> Self {
        // Far apart per host name, so no two engines hand out one ID.
        let salt = host
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            .wrapping_mul(1 << 32);
        FakeEngine {
            host: host.to_string(),
            state: Mutex::new(FakeState {
                salt,
                ..FakeState::default()
            }),
            world: None,
        }
    }

    /// The same engine, part of a simulated world.
    pub fn in_world(mut self, world: &Arc<World>) -> Self {
        self.world = Some(Arc::clone(world));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An image present on the host.
    pub fn with_image(self, reference: &str, id: &str) -> Self {
        self.lock()
            .images
            .insert(reference.to_string(), id.to_string());
        self
    }

    /// An image a pull can fetch.
    pub fn with_registry_image(self, reference: &str, id: &str) -> Self {
        self.lock()
            .registry
            .insert(reference.to_string(), id.to_string());
        self
    }

    /// An event stream that stays open and carries what [`FakeEngine::emit`] sends.
    pub fn with_event_feed(self) -> Self {
        self.lock().events = Some(tokio::sync::broadcast::channel(1024).0);
        self
    }

    /// Sends `action` about the container `name` (with its labels and name,
    /// as a real engine's event carries them, and `extra` attributes such as
    /// `exitCode`) to the event streams open now. False without a feed or
    /// such a container.
    pub fn emit(&self, name: &str, action: &str, extra: &[(&str, &str)]) -> bool {
        let s = self.lock();
        let (Some(feed), Some(c)) = (&s.events, s.containers.values().find(|c| c.name == name))
        else {
            return false;
        };
        let mut attributes = c.labels.clone();
        attributes.insert("name".to_string(), c.name.clone());
        attributes.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let nanos = clock().as_nanosecond();
        let event = EngineEvent {
            container: c.id.clone(),
            action: action.to_string(),
            labels: attributes,
            time_nano: i64::try_from(nanos).unwrap_or(i64::MAX),
        };
        feed.send(event).is_ok()
    }

    /// Ends the event streams open now, as a dropped connection would
    /// (the feed stays for streams opened later).
    pub fn drop_event_streams(&self) {
        let mut s = self.lock();
        if s.events.is_some() {
            s.events = Some(tokio::sync::broadcast::channel(1024).0);
        }
    }

    pub fn with_behaviour(self, image: &str, behaviour: Behaviour) -> Self {
        self.lock().behaviours.insert(image.to_string(), behaviour);
        self
    }

    /// Makes every call whose line starts with `prefix` fail with `error`.
    pub fn fail(&self, prefix: &str, error: EngineError) {
        self.lock().failures.push((prefix.to_string(), error));
    }

    /// Makes the next call whose line starts with `prefix` fail with
    /// `error`; later ones succeed (a start that fails for the new container
    /// but not for the old one put back under the same name).
    pub fn fail_once(&self, prefix: &str, error: EngineError) {
        self.lock().failures_once.push((prefix.to_string(), error));
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// `(name, state)` of every container, sorted by name.
    pub fn containers(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> = self
            .lock()
            .containers
            .values()
            .map(|c| (c.name.clone(), c.runs.state.to_string()))
            .collect();
        list.sort();
        list
    }

    pub fn container(&self, name: &str) -> Option<FakeContainer> {
        self.lock()
            .containers
            .values()
            .find(|c| c.name == name)
            .cloned()
    }

    /// Puts a container in place as if created and started earlier.
    pub fn insert(
        &self,
        name: &str,
        config: TaskConfig,
        labels: BTreeMap<String, String>,
        state: &str,
    ) -> String {
        let id = {
            let mut s = self.lock();
            let id = s.new_id();
            let image_id = s
                .images
                .get(&config.image)
                .cloned()
                .unwrap_or_else(|| config.image.clone());
            let state: RunState = state.parse().unwrap_or(RunState::Exited);
            let created = time::before(clock(), Duration::from_secs(3600 - s.next % 60));
            s.containers.insert(
                id.clone(),
                FakeContainer {
                    id: id.clone(),
                    name: name.to_string(),
                    labels,
                    runs: Runs {
                        state,
                        health: if config.health.is_some() && state == RunState::Running {
                            Health::Healthy
                        } else {
                            Health::None
                        },
                        started_at: Some(created),
                        exit_code: (state == RunState::Exited).then_some(0),
                        finished_at: (state == RunState::Exited).then_some(created),
                        ..Runs::default()
                    },
                    config,
                    created,
                    image_id,
                    volumes: Vec::new(),
                    looks: 0,
                },
            );
            id
        };
        self.counted();
        id
    }

    /// Changes a container as an operator would by hand (`docker stop`,
    /// `kill`, `pause`, `rename`), outside any drover command.
    pub fn by_hand(&self, name: &str, action: HandAction) -> bool {
        let done = {
            let mut s = self.lock();
            let now = clock();
            match s.find(name) {
                None => false,
                Some(c) => {
                    match action {
                        HandAction::Stop | HandAction::Kill => {
                            if c.runs.state.is_up() || c.runs.state == RunState::Paused {
                                c.runs.state = RunState::Exited;
                                c.runs.exit_code =
                                    Some(if action == HandAction::Kill { 137 } else { 0 });
                                c.runs.finished_at = Some(now);
                                c.runs.health = Health::None;
                            }
                        }
                        HandAction::Pause => {
                            if c.runs.state == RunState::Running {
                                c.runs.state = RunState::Paused;
                            }
                        }
                        HandAction::Rename => {
                            c.name = format!("{}-by-hand", c.name);
                        }
                        HandAction::Start => {
                            if !c.runs.state.is_up() {
                                c.runs.state = RunState::Running;
                                c.runs.started_at = Some(now);
                                c.runs.restarts = 0;
                                c.looks = 0;
                            }
                        }
                    }
                    true
                }
            }
        };
        self.counted();
        done
    }

    /// Tells the world how many containers of each job serve here now.
    fn counted(&self) {
        let Some(world) = &self.world else { return };
        let counts = {
            let s = self.lock();
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for c in s.containers.values() {
                if let Some(job) = c.labels.get(drover_plan::labels::JOB) {
                    if c.labels.contains_key(drover_plan::labels::ROLE) {
                        continue;
                    }
                    let n = counts.entry(job.clone()).or_default();
                    if c.serves() {
                        *n += 1;
                    }
                }
            }
            counts
        };
        world.lock().record(&self.host, counts);
    }

    /// What the world does before a call: wait, maybe change something by
    /// hand, maybe fail. Returns whether the answer is lost after acting.
    async fn enter(&self, line: &str, changes: bool) -> Result<bool, EngineError> {
        let Some(world) = &self.world else {
            return Ok(false);
        };
        let roll = {
            let mut w = world.lock();
            w.calls += 1;
            let calls = w.calls;
            if let Some(hook) = &w.on_call {
                hook(calls);
            }
            let faults = w.faults;
            Roll {
                latency: w.rng.between(faults.latency.0, faults.latency.1),
                fail_before: w.rng.chance(faults.fail_before),
                fail_after: changes && w.rng.chance(faults.fail_after),
                hand_change: w.rng.chance(faults.hand_change).then(|| w.rng.next_u64()),
            }
        };
        if !roll.latency.is_zero() {
            tokio::time::sleep(roll.latency).await;
        }
        if let Some(pick) = roll.hand_change {
            self.random_hand_change(pick);
        }
        if roll.fail_before {
            return Err(EngineError::Other(format!(
                "simulated: the connection to {} was reset before {line}",
                self.host
            )));
        }
        Ok(roll.fail_after)
    }

    /// After a call that changed something: count, and maybe lose the answer.
    fn leave<T>(
        &self,
        line: &str,
        lost: bool,
        result: Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.counted();
        match result {
            Ok(_) if lost => Err(EngineError::Other(format!(
                "simulated: the answer to {line} from {} was lost",
                self.host
            ))),
            other => other,
        }
    }

    fn random_hand_change(&self, pick: u64) {
        let spared = self
            .world
            .as_ref()
            .map(|w| w.lock().hands_off.clone())
            .unwrap_or_default();
        let names: Vec<String> = {
            let s = self.lock();
            s.containers
                .values()
                .filter(|c| {
                    c.labels.contains_key(drover_plan::labels::TASK)
                        && !c.labels.contains_key(drover_plan::labels::ROLE)
                        && !c
                            .labels
                            .get(drover_plan::labels::ENV)
                            .is_some_and(|env| spared.contains(env))
                })
                .map(|c| c.name.clone())
                .collect()
        };
        if names.is_empty() {
            return;
        }
        let name = &names[(pick % names.len() as u64) as usize];
        let action = match (pick >> 32) % 4 {
            0 => HandAction::Stop,
            1 => HandAction::Kill,
            2 => HandAction::Pause,
            _ => HandAction::Rename,
        };
        if self.by_hand(name, action) {
            if let Some(world) = &self.world {
                world
                    .lock()
                    .hand_changes
                    .push(format!("{action:?} {name} on {}", self.host));
            }
        }
    }
}

/// What an operator does to a container by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandAction {
    Stop,
    Kill,
    Pause,
    Rename,
    Start,
}

impl FakeState {
    /// A new container ID. Like Docker's, IDs differ in their first 12
    /// digits, so short IDs (and the kept names made of them) never collide.
    fn new_id(&mut self) -> String {
        self.next += 1;
        let n = self.next.wrapping_add(self.salt);
        format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).repeat(4)
    }

    /// Records `line`; fails if a failure was set for it.
    fn call(&mut self, line: String) -> Result<(), EngineError> {
        self.calls.push(line.clone());
        if let Some(i) = self
            .failures_once
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix.as_str()))
        {
            return Err(self.failures_once.remove(i).1);
        }
        match self
            .failures
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
        {
            Some((_, error)) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn find(&mut self, id_or_name: &str) -> Option<&mut FakeContainer> {
        self.containers
            .values_mut()
            .find(|c| c.id == id_or_name || c.name == id_or_name)
    }

    fn name_of(&self, id: &str) -> String {
        self.containers
            .get(id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    }
}

impl Named for FakeEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> &str {
        "fake://"
    }
}

fn not_found(what: &str) -> EngineError {
    EngineError::NotFound(format!("no such container: {what}"))
}

#[async_trait]
impl Containers for FakeEngine {
    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        self.enter("list", false).await?;
        let mut s = self.lock();
        s.call("list".to_string())?;
        Ok(s.containers
            .values()
            .filter(|c| c.labels.get(drover_plan::labels::ENV).map(String::as_str) == Some(env))
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                state: c.runs.state,
                image: c.config.image.clone(),
                image_id: c.image_id.clone(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        self.enter("inspect", false).await?;
        let observed = {
            let mut s = self.lock();
            let name = s.name_of(id);
            s.call(format!("inspect {name}"))?;
            let behaviours = s.behaviours.clone();
            let Some(c) = s.find(id) else { return Ok(None) };
            let now = clock();
            if c.runs.state.is_up() {
                c.looks += 1;
                let checked = c.config.health.is_some();
                match behaviours
                    .get(&c.config.image)
                    .copied()
                    .unwrap_or(Behaviour::Runs)
                {
                    Behaviour::Runs => {
                        if checked {
                            c.runs.health = Health::Healthy;
                            c.runs.health_at = Some(now);
                        }
                    }
                    Behaviour::HealthyAfter(n) => {
                        if checked {
                            c.runs.health = if c.looks > n {
                                Health::Healthy
                            } else {
                                Health::Starting
                            };
                            c.runs.health_at = Some(now);
                        }
                    }
                    Behaviour::Unhealthy => {
                        if checked {
                            c.runs.health = Health::Unhealthy;
                            c.runs.health_output = "check failed".to_string();
                            c.runs.health_at = Some(now);
                        }
                    }
                    Behaviour::Exits(code) => {
                        c.runs.state = RunState::Exited;
                        c.runs.exit_code = Some(code);
                        c.runs.finished_at = Some(now);
                        c.runs.health = Health::None;
                    }
                    Behaviour::CrashLoops => {
                        c.runs.state = RunState::Restarting;
                        c.runs.restarts += 1;
                        c.runs.exit_code = Some(1);
                        c.runs.finished_at = Some(now);
                        c.runs.health = Health::None;
                    }
                }
            }
            ObservedContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                runs: c.runs.clone(),
                error: String::new(),
                created: Some(c.created),
                image_id: c.image_id.clone(),
                config: c.config.clone(),
                image_env: BTreeMap::new(),
                image_cmd: None,
                image_defaults: Default::default(),
                adopted: None,
            }
        };
        self.counted();
        Ok(Some(observed))
    }

    async fn create_container(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
    ) -> Result<String, EngineError> {
        let line = format!("create {name}");
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            if s.containers.values().any(|c| c.name == name) {
                return Err(EngineError::Conflict(format!(
                    "the container name \"/{name}\" is already in use"
                )));
            }
            let Some(image_id) = s.images.get(&config.image).cloned() else {
                return Err(EngineError::NotFound(format!(
                    "no such image: {}",
                    config.image
                )));
            };
            let id = s.new_id();
            s.containers.insert(
                id.clone(),
                FakeContainer {
                    id: id.clone(),
                    name: name.to_string(),
                    labels: options.labels.clone(),
                    config: config.clone(),
                    runs: Runs::default(),
                    created: clock(),
                    image_id,
                    volumes: Vec::new(),
                    looks: 0,
                },
            );
            Ok(id)
        })();
        self.leave(&line, lost, result)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let line = format!("start {}", self.lock().name_of(id));
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            let c = s.find(id).ok_or_else(|| not_found(id))?;
            if c.runs.state != RunState::Running {
                c.runs.state = RunState::Running;
                c.looks = 0;
                // A start through the API resets the engine's restart count.
                c.runs.restarts = 0;
                c.runs.health = if c.config.health.is_some() {
                    Health::Starting
                } else {
                    Health::None
                };
                c.runs.started_at = Some(clock());
            }
            Ok(())
        })();
        self.leave(&line, lost, result)
    }

    async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        let line = format!("unpause {}", self.lock().name_of(id));
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            let c = s.find(id).ok_or_else(|| not_found(id))?;
            // The health verdict from before the pause stays until the next check.
            c.runs.state = RunState::Running;
            Ok(())
        })();
        self.leave(&line, lost, result)
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<(), EngineError> {
        let line = format!("stop {}", self.lock().name_of(id));
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            let c = s.find(id).ok_or_else(|| not_found(id))?;
            if c.runs.state != RunState::Created && c.runs.state != RunState::Exited {
                c.runs.state = RunState::Exited;
                c.runs.exit_code = Some(0);
                c.runs.finished_at = Some(clock());
            }
            c.runs.health = Health::None;
            Ok(())
        })();
        self.leave(&line, lost, result)
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let line = format!("remove {}", self.lock().name_of(id));
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            let key = s
                .containers
                .iter()
                .find(|(k, c)| *k == id || c.name == id)
                .map(|(k, _)| k.clone());
            // As `docker rm -v`: its anonymous volumes go with it.
            if let Some(gone) = key.and_then(|key| s.containers.remove(&key)) {
                for volume in gone.volumes {
                    let used = s.containers.values().any(|c| c.volumes.contains(&volume));
                    if !used && is_anonymous_volume(&volume, &BTreeMap::new(), false) {
                        s.volumes.remove(&volume);
                    }
                }
            }
            Ok(())
        })();
        self.leave(&line, lost, result)
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let line = format!("rename {} {name}", self.lock().name_of(id));
        let lost = self.enter(&line, true).await?;
        let result = (|| {
            let mut s = self.lock();
            s.call(line.clone())?;
            if s.containers.values().any(|c| c.name == name && c.id != id) {
                return Err(EngineError::Conflict(format!(
                    "the container name \"/{name}\" is already in use"
                )));
            }
            let c = s.find(id).ok_or_else(|| not_found(id))?;
            c.name = name.to_string();
            Ok(())
        })();
        self.leave(&line, lost, result)
    }

    async fn usage(&self, id: &str) -> Result<UsageSample, EngineError> {
        self.enter("stats", false).await?;
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("stats {name}"))?;
        Ok(UsageSample {
            memory_bytes: 1 << 20,
            cpu_total_ns: 0,
            system_total_ns: 0,
            online_cpus: 1,
        })
    }

    async fn logs_tail(&self, id: &str, _lines: usize) -> Result<Vec<String>, EngineError> {
        self.enter("logs", false).await?;
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("logs {name}"))?;
        Ok(vec![format!("last words of {name}")])
    }

    async fn exec_output(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, EngineError> {
        self.enter("exec", false).await?;
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("exec {name} {}", cmd.join(" ")))?;
        Ok(ExecOutput::default())
    }

    async fn inspect_hand_run(&self, id: &str) -> Result<Option<HandRun>, EngineError> {
        // The fake keeps no settings beyond the job keys.
        Ok(self.inspect_container(id).await?.map(|container| HandRun {
            container,
            foreign: Vec::new(),
            anonymous_volumes: Vec::new(),
            stop_signal: None,
        }))
    }

    async fn create_attached(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
        _attachment: Attachment,
    ) -> Result<String, EngineError> {
        self.create_container(name, config, options).await
    }

    async fn list_all_containers(&self) -> Result<Vec<HostContainer>, EngineError> {
        self.enter("list-all", false).await?;
        let mut s = self.lock();
        s.call("list-all".to_string())?;
        Ok(s.containers
            .values()
            .map(|c| HostContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                state: c.runs.state.to_string(),
                image_id: c.image_id.clone(),
                volumes: c.volumes.clone(),
            })
            .collect())
    }
}

#[async_trait]
impl Images for FakeEngine {
    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        self.enter("images", false).await?;
        let mut s = self.lock();
        s.call("images".to_string())?;
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (reference, id) in &s.images {
            by_id.entry(id.clone()).or_default().push(reference.clone());
        }
        Ok(by_id
            .into_iter()
            .map(|(id, tags)| ImageSummary {
                repo_tags: tags
                    .into_iter()
                    .filter(|t| !t.starts_with("sha256:"))
                    .collect(),
                id,
                repo_digests: Vec::new(),
                created: 0,
                size: 0,
                labels: BTreeMap::new(),
            })
            .collect())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError> {
        self.enter("inspect-image", false).await?;
        let mut s = self.lock();
        s.call(format!("inspect-image {reference}"))?;
        let id = s
            .images
            .get(reference)
            .cloned()
            .or_else(|| s.images.values().find(|id| *id == reference).cloned());
        Ok(id.map(|id| ImageDetails {
            id,
            ..ImageDetails::default()
        }))
    }

    async fn pull_image(
        &self,
        reference: &str,
        _progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<(), EngineError> {
        self.enter("pull", false).await?;
        let mut s = self.lock();
        s.call(format!("pull {reference}"))?;
        match s.registry.get(reference).cloned() {
            Some(id) => {
                s.images.insert(reference.to_string(), id);
                Ok(())
            }
            None => Err(EngineError::Pull {
                host: self.host.clone(),
                image: reference.to_string(),
                reason: "manifest unknown".to_string(),
            }),
        }
    }

    async fn import_image(&self, reference: &str, _rootfs_tar: Vec<u8>) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("import {reference}"))?;
        s.next += 1;
        let id = format!("sha256:{:064x}", s.next);
        s.images.insert(reference.to_string(), id);
        Ok(())
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-image {id}"))?;
        s.images.retain(|_, v| v != id);
        Ok(())
    }

    async fn remove_image_reference(&self, reference: &str) -> Result<ImageRemoval, EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-image {reference}"))?;
        let id = match s.images.get(reference) {
            Some(id) => id.clone(),
            None if s.images.values().any(|id| id == reference) => reference.to_string(),
            None => return Ok(ImageRemoval::default()),
        };
        if s.containers.values().any(|c| c.image_id == id) {
            return Err(EngineError::Conflict(format!(
                "unable to remove {reference} (must force): a container is using its image"
            )));
        }
        let untagged = if reference == id {
            let refs: Vec<String> = s
                .images
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect();
            s.images.retain(|_, v| *v != id);
            refs
        } else {
            s.images.remove(reference);
            vec![reference.to_string()]
        };
        let deleted = if s.images.values().any(|v| *v == id) {
            Vec::new()
        } else {
            vec![id]
        };
        Ok(ImageRemoval { untagged, deleted })
    }

    async fn export_image(
        &self,
        reference: &str,
        _to: &std::path::Path,
    ) -> Result<(), EngineError> {
        self.lock().call(format!("export {reference}"))
    }

    async fn load_image(&self, _from: &std::path::Path) -> Result<(), EngineError> {
        self.lock().call("load".to_string())
    }

    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("tag {id} {reference}"))?;
        let id = match s.images.get(id) {
            Some(id) => id.clone(),
            None if s.images.values().any(|known| known == id) => id.to_string(),
            None => return Err(EngineError::NotFound(format!("no such image: {id}"))),
        };
        s.images.insert(reference.to_string(), id);
        Ok(())
    }

    async fn push_image(
        &self,
        reference: &str,
        _auth: Option<&crate::RegistryAuth>,
        _progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<String, EngineError> {
        self.lock().call(format!("push {reference}"))?;
        Ok(format!("sha256:{:064x}", 1))
    }
}

#[async_trait]
impl Volumes for FakeEngine {
    async fn list_volumes(&self) -> Result<Vec<VolumeSummary>, EngineError> {
        let mut s = self.lock();
        s.call("volumes".to_string())?;
        Ok(s.volumes
            .keys()
            .map(|name| VolumeSummary {
                name: name.clone(),
                driver: "local".to_string(),
                labels: BTreeMap::new(),
                anonymous: is_anonymous_volume(name, &BTreeMap::new(), false),
                by_mark: false,
            })
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-volume {name}"))?;
        if s.containers
            .values()
            .any(|c| c.volumes.iter().any(|v| v == name))
        {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use"
            )));
        }
        s.volumes.remove(name);
        Ok(())
    }
}

#[async_trait]
impl System for FakeEngine {
    async fn version(&self) -> Result<EngineVersion, EngineError> {
        self.lock().call("version".to_string())?;
        Ok(EngineVersion {
            version: "20.10.24".to_string(),
            api_version: "1.41".to_string(),
        })
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.lock().call("info".to_string())?;
        Ok(EngineInfo {
            name: self.host.clone(),
            data_root: "/var/lib/docker".to_string(),
            log_driver: "json-file".to_string(),
            containers: 0,
            images: 0,
        })
    }

    async fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        self.lock().call("df".to_string())?;
        Ok(DiskUsage::default())
    }

    async fn item_space(&self) -> Result<ItemSpace, EngineError> {
        let mut s = self.lock();
        s.call("item-space".to_string())?;
        Ok(ItemSpace {
            images: BTreeMap::new(),
            volumes: s.volumes.clone(),
        })
    }

    async fn data_root_space(
        &self,
        _data_root: &str,
    ) -> Result<Option<FilesystemSpace>, EngineError> {
        self.lock().call("statvfs".to_string())?;
        Ok(None)
    }
}

#[async_trait]
impl Streams for FakeEngine {
    fn logs(&self, _id: &str, _options: LogOptions) -> LogStream {
        futures::stream::empty().boxed()
    }

    async fn exec_session(
        &self,
        _id: &str,
        _cmd: &[String],
        _tty: bool,
    ) -> Result<ExecSession, EngineError> {
        Err(EngineError::Other(
            "the fake engine has no exec sessions".to_string(),
        ))
    }

    async fn resize_exec(&self, _exec_id: &str, _rows: u16, _cols: u16) -> Result<(), EngineError> {
        Ok(())
    }

    async fn exec_exit_code(&self, _exec_id: &str) -> Result<Option<i64>, EngineError> {
        Ok(Some(0))
    }

    /// Without a feed ([`FakeEngine::with_event_feed`]) the fake's event
    /// stream ends at once, and watchers fall back to looking.
    fn events(&self, env: &str) -> BoxStream<'static, Result<EngineEvent, EngineError>> {
        let Some(receiver) = self.lock().events.as_ref().map(|feed| feed.subscribe()) else {
            return futures::stream::empty().boxed();
        };
        let env = env.to_string();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |event| {
            // As the engine's `event` filter: `health_status` matches
            // `health_status: healthy`.
            let wanted = event.concerns(&env)
                && crate::CONTAINER_ACTIONS
                    .iter()
                    .any(|a| event.action == *a || event.action.starts_with(&format!("{a}:")));
            futures::future::ready(wanted)
        })
        .map(Ok)
        .boxed()
    }

    async fn attach(&self, id: &str) -> Result<ExecSession, EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("attach {name}"))?;
        Ok(ExecSession {
            exec_id: id.to_string(),
            output: futures::stream::empty().boxed(),
            input: Box::pin(tokio::io::sink()),
        })
    }

    /// Looks at the container (as an inspect would, so its behaviour plays
    /// out) every 100 ms until it is not up.
    async fn wait_exit(&self, id: &str) -> Result<i64, EngineError> {
        loop {
            match self.inspect_container(id).await? {
                None => return Err(not_found(id)),
                Some(c) if !c.is_running() => return Ok(c.runs.exit_code.unwrap_or(0)),
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn resize_tty(&self, _id: &str, _rows: u16, _cols: u16) -> Result<(), EngineError> {
        Ok(())
    }

    async fn past_events(
        &self,
        _env: &str,
        action: &str,
        _since: i64,
    ) -> Result<Vec<EngineEvent>, EngineError> {
        self.lock().call(format!("past-events {action}"))?;
        Ok(Vec::new())
    }
}
