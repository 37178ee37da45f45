//! `drover watch`, and the same watcher `drover web` runs beside the
//! dashboard: every host watched, and what goes wrong posted to `[notify]`
//! as it happens — one message per incident and one when it clears.
//!
//! Per host, one subscription to the engine's container events of this
//! environment (only the actions that matter: a few hundred health checks
//! make no `exec_*` noise), the containers `drover adopt` took over
//! included ([`EngineEvent::concerns`]): which task such a container is,
//! the watcher knows from the adoption records it listed or saw written.
//! After each (re)connect the host is listed once, and then only a
//! container an event names is inspected. A dropped stream
//! is followed by a new one and a new list (the engine replays no events),
//! with a backoff of 1 s doubling to 30 s while the host does not answer;
//! a ping every 30 s notices a connection that died silently.
//!
//! Events become [`Fact`]s for the [`Tracker`] (which turns them into one
//! message per incident, rate-limited per job) — but only what drover did
//! not do itself: while a job's lock container is on the host a change is
//! under way (a rollout stops and replaces its tasks), and a job with a
//! stop mark was stopped by `drover stop`. Once the lock goes, the job's
//! tasks are looked at again.
//!
//! - an exit the engine restarts counts towards a crash loop; one it does
//!   not restart is `task.exited`; a memory kill is `task.oom_killed`; a
//!   failing health check `task.unhealthy`;
//! - a container stopped, killed, removed, renamed, paused, updated or
//!   created by hand (the engine says who asked: a `kill` precedes the exit
//!   of a container an API client stopped) is checked with a diff of that
//!   task, made by the planner itself; what `up` would change is
//!   `drift.detected`, and a later diff that is clean clears it. Without
//!   the job's secrets (a monitoring machine) the check falls back to the
//!   task's container: there, under its name, and up;
//! - the engine's data root is polled every minute where drover can read
//!   its filesystem (an engine on this machine): `disk.low`;
//! - each job's repository in `[registry]` is polled every few minutes: a
//!   tag that appears, newer than the job's, is `image.available`. Tags
//!   there at the first poll are not news.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use drover_engine::{observe, Engine, EngineError, EngineEvent};
use drover_notify::{Event, Fact, Notifier, Rules, Tracker};
use drover_plan::{
    belongs_to, role_of, Adoption, HostObservation, HostState, Observed, Role, RunState, Scope,
    Step, TaskKey,
};
use drover_registry::RegistryClient;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Fleet, FleetSource};

/// Time the engine gets to register a new event subscription before the
/// list that must not miss anything after it.
const SUBSCRIBE_GRACE: Duration = Duration::from_millis(50);
/// A `kill` this long before an exit made it (a stop waits the container's
/// stop timeout before the exit).
const KILL_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How often the watcher looks, and how it waits.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub rules: Rules,
    /// Events about a task are gathered this long before its diff.
    pub settle: Duration,
    /// A host is pinged this often (a connection can die without a word).
    pub ping_every: Duration,
    pub disk_every: Duration,
    pub images_every: Duration,
    /// A host that does not answer is tried again after this, doubling…
    pub backoff_min: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// How often time alone is looked at (a task that has now run long
    /// enough has recovered).
    pub tick: Duration,
    /// How often the files are looked at for hosts added or removed.
    pub hosts_every: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            rules: Rules::default(),
            settle: Duration::from_millis(300),
            ping_every: Duration::from_secs(30),
            disk_every: Duration::from_secs(60),
            images_every: Duration::from_secs(5 * 60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            hosts_every: Duration::from_secs(5),
        }
    }
}

/// Where the watcher reports, beside the webhook: each message it posts,
/// and notes about itself (a host it cannot read the disk of…).
#[derive(Clone)]
pub struct Sink {
    pub posted: Arc<dyn Fn(&Event) + Send + Sync>,
    pub note: Arc<dyn Fn(&str) + Send + Sync>,
}

/// How the watcher reaches a host: `fleet.connect` for the real thing, a
/// map of fake engines in unit tests.
pub type Connect = Arc<
    dyn Fn(Arc<Fleet>, String) -> BoxFuture<'static, Result<Arc<dyn Engine>, EngineError>>
        + Send
        + Sync,
>;

/// Connects to a host as every command does.
pub fn connect_hosts() -> Connect {
    Arc::new(|fleet: Arc<Fleet>, host: String| {
        async move {
            let mut connections = fleet.connect(&BTreeSet::from([host.clone()])).await;
            match (
                connections.engines.remove(&host),
                connections.unreachable.remove(&host),
            ) {
                (Some(engine), _) => Ok(engine),
                (None, Some(error)) => Err(error),
                (None, None) => Err(EngineError::Other(format!(
                    "host {host} is not in the environment"
                ))),
            }
        }
        .boxed()
    })
}

/// Watches every host of the environment `source` reads until `cancel`,
/// posting through `notifier`.
pub async fn run(
    source: Arc<FleetSource>,
    notifier: Notifier,
    options: WatchOptions,
    sink: Sink,
    cancel: CancellationToken,
) {
    run_with(source, connect_hosts(), notifier, options, sink, cancel).await;
}

/// [`run`], reaching hosts through `connect`.
pub async fn run_with(
    source: Arc<FleetSource>,
    connect: Connect,
    notifier: Notifier,
    options: WatchOptions,
    sink: Sink,
    cancel: CancellationToken,
) {
    let (facts, received) = mpsc::channel::<Fact>(4096);
    let tracker = tokio::spawn(track(
        received,
        notifier,
        options.clone(),
        sink.clone(),
        cancel.clone(),
    ));
    let images = tokio::spawn(poll_images(
        Arc::clone(&source),
        facts.clone(),
        options.clone(),
        sink.clone(),
        cancel.clone(),
    ));
    let mut watchers: BTreeMap<String, CancellationToken> = BTreeMap::new();
    loop {
        let wanted = source.current().hosts();
        watchers.retain(|host, token| {
            let keep = wanted.contains(host);
            if !keep {
                token.cancel();
            }
            keep
        });
        for host in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = watchers.entry(host.clone()) {
                let token = cancel.child_token();
                let watch = HostWatch::new(
                    host,
                    Arc::clone(&source),
                    Arc::clone(&connect),
                    facts.clone(),
                    options.clone(),
                    sink.clone(),
                );
                tokio::spawn(watch.run(token.clone()));
                slot.insert(token);
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(options.hosts_every) => {}
        }
    }
    drop(facts);
    let _ = tokio::join!(tracker, images);
}

/// The tracker's loop: facts in, messages out; time alone looked at every tick.
async fn track(
    mut facts: mpsc::Receiver<Fact>,
    notifier: Notifier,
    options: WatchOptions,
    sink: Sink,
    cancel: CancellationToken,
) {
    let mut tracker = Tracker::new(options.rules);
    let mut tick = tokio::time::interval(options.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let post = |events: Vec<Event>| {
        for event in events {
            (sink.posted)(&event);
            notifier.post(event);
        }
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            fact = facts.recv() => match fact {
                Some(fact) => post(tracker.observe(SystemTime::now(), fact)),
                None => return,
            },
            _ = tick.tick() => post(tracker.tick(SystemTime::now())),
        }
    }
}

/// What a host's events mean to the watcher, before anything is inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    Ignore,
    /// The job's lock on this host was taken (`true`) or given back.
    Lock {
        job: String,
        held: bool,
    },
    /// The job's stop mark on this host was set or cleared.
    Mark {
        job: String,
        set: bool,
    },
    /// The job's adoption record on this host was written (`true`) or
    /// removed: from then on (or no longer) the containers it names, by
    /// ID, are the job's tasks.
    Adoptions {
        adopted: Vec<(String, Adoption)>,
        written: bool,
    },
    /// An API client killed (or is stopping) the task's container: its
    /// exit, if it comes, was asked for.
    Killed {
        id: String,
    },
    /// The kernel killed a process of the container for memory.
    Oom {
        id: String,
    },
    /// The task's container exited with this code.
    Died {
        task: TaskKey,
        id: String,
        exit_code: Option<i64>,
    },
    Started {
        task: TaskKey,
        id: String,
    },
    Health {
        task: TaskKey,
        id: String,
        healthy: bool,
    },
    /// Created, removed, renamed, paused, unpaused or updated: worth a diff.
    Changed {
        task: TaskKey,
        id: String,
    },
}

/// What `event` on `host` means, knowing which jobs are locked there and
/// which containers there were adopted (by ID).
pub fn meaning(
    env: &str,
    host: &str,
    event: &EngineEvent,
    locked: &BTreeSet<String>,
    adopted: &HashMap<String, Adoption>,
) -> Meaning {
    let name = event.labels.get("name").map(String::as_str).unwrap_or("");
    let role = role_of(env, name, &event.labels, adopted.get(&event.container));
    let action = event.action.as_str();
    let id = event.container.clone();
    match role {
        Role::Lock { job, host: h } if h == host => match action {
            "create" => Meaning::Lock { job, held: true },
            "destroy" => Meaning::Lock { job, held: false },
            _ => Meaning::Ignore,
        },
        Role::StopMark { job, host: h } if h == host => match action {
            "create" => Meaning::Mark { job, set: true },
            "destroy" => Meaning::Mark { job, set: false },
            _ => Meaning::Ignore,
        },
        Role::AdoptionRecord { host: h, .. } if h == host => match action {
            "create" | "destroy" => Meaning::Adoptions {
                adopted: Adoption::from_record(env, &event.labels),
                written: action == "create",
            },
            _ => Meaning::Ignore,
        },
        Role::Current(task) if task.host == host && !locked.contains(&task.job) => match action {
            "kill" if !stops(event.labels.get("signal").map(String::as_str)) => Meaning::Ignore,
            "kill" => Meaning::Killed { id },
            "oom" => Meaning::Oom { id },
            "die" => Meaning::Died {
                task,
                id,
                exit_code: event.labels.get("exitCode").and_then(|c| c.parse().ok()),
            },
            "start" => Meaning::Started { task, id },
            "health_status: healthy" => Meaning::Health {
                task,
                id,
                healthy: true,
            },
            "health_status: unhealthy" => Meaning::Health {
                task,
                id,
                healthy: false,
            },
            "create" | "destroy" | "rename" | "pause" | "unpause" | "update" => {
                Meaning::Changed { task, id }
            }
            _ => Meaning::Ignore,
        },
        // A task's container renamed away from the task's name, by hand.
        Role::Stray(task) | Role::Kept(task) | Role::Failed(task)
            if task.host == host && !locked.contains(&task.job) && action == "rename" =>
        {
            let old = event
                .labels
                .get("oldName")
                .map(|n| n.trim_start_matches('/'));
            if old == Some(task.container_name(env).as_str()) {
                Meaning::Changed { task, id }
            } else {
                Meaning::Ignore
            }
        }
        _ => Meaning::Ignore,
    }
}

/// Whether a `kill` event's signal asks the process to end (a `docker
/// stop`, `docker kill`), rather than to reload or report (`HUP`, `USR1`…).
fn stops(signal: Option<&str>) -> bool {
    let signal = signal.unwrap_or("").trim_start_matches("SIG");
    !matches!(
        signal,
        "1" | "HUP"
            | "10"
            | "USR1"
            | "12"
            | "USR2"
            | "28"
            | "WINCH"
            | "17"
            | "CHLD"
            | "18"
            | "CONT"
    )
}

/// Why a task's container exited, once inspected: the fact for the
/// tracker, or `None` when the exit was asked for (a diff says more).
pub fn exit_fact(
    task: &TaskKey,
    exit_code: Option<i64>,
    oom_event: bool,
    after: Option<&drover_plan::ObservedContainer>,
    died_at: Option<drover_plan::time::Timestamp>,
) -> Fact {
    // The engine decides a restart before it tells of the exit; by the
    // time it is looked at the container may be up again already.
    let restarting = after.is_some_and(|c| {
        c.state() == RunState::Restarting
            || (c.state() == RunState::Running
                && matches!((c.runs.started_at, died_at), (Some(s), Some(d)) if s >= d))
    });
    let oom_killed = oom_event || after.is_some_and(|c| c.runs.oom_killed);
    Fact::TaskExited {
        task: task.clone(),
        exit_code: exit_code
            .or_else(|| after.and_then(|c| c.runs.exit_code))
            .unwrap_or(-1),
        oom_killed,
        restarting,
    }
}

/// What the watcher knows of one host's tasks, from a list of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub facts: Vec<Fact>,
    pub locked: BTreeSet<String>,
    pub marked: BTreeSet<String>,
    /// Each task's container under its name: ID and state.
    pub seen: BTreeMap<TaskKey, (String, RunState)>,
}

/// The facts a list of `host` gives about `tasks` (the spec's tasks there):
/// those running, healthy or not; with `failures`, also those exited or
/// crash-looping (at start and after a reconnect: not after a change of
/// drover's own, which its command reported). A task of a job stopped by
/// `drover stop` is forgotten.
pub fn baseline(
    env: &str,
    host: &str,
    tasks: &BTreeSet<TaskKey>,
    state: &HostState,
    known_hosts: &BTreeSet<String>,
    now: drover_plan::time::Timestamp,
    failures: bool,
) -> Baseline {
    let mut found = Baseline::default();
    let mut own = BTreeMap::new();
    for c in &state.containers {
        if !belongs_to(c, host, known_hosts) {
            continue;
        }
        match c.role(env) {
            Role::Lock { job, host: h } if h == host => {
                found.locked.insert(job);
            }
            Role::StopMark { job, host: h } if h == host => {
                found.marked.insert(job);
            }
            Role::Current(task) if task.host == host => {
                own.insert(task, c);
            }
            _ => {}
        }
    }
    for task in tasks.iter().filter(|t| t.host == host) {
        if found.marked.contains(&task.job) {
            found.facts.push(Fact::TaskGone { task: task.clone() });
            continue;
        }
        let Some(c) = own.get(task) else { continue };
        found.seen.insert(task.clone(), (c.id.clone(), c.state()));
        if found.locked.contains(&task.job) {
            continue;
        }
        let runs = &c.runs;
        match c.failing(now) {
            Some(drover_plan::Failing::CrashLoop { restarts, .. }) if failures => {
                // As many exits as the engine counted, up to what makes a loop.
                for _ in 0..restarts.clamp(1, 3) {
                    found.facts.push(Fact::TaskExited {
                        task: task.clone(),
                        exit_code: runs.exit_code.unwrap_or(-1),
                        oom_killed: runs.oom_killed,
                        restarting: true,
                    });
                }
            }
            Some(drover_plan::Failing::Exited { code, oom }) if failures => {
                found.facts.push(Fact::TaskExited {
                    task: task.clone(),
                    exit_code: code.unwrap_or(-1),
                    oom_killed: oom,
                    restarting: false,
                });
            }
            Some(drover_plan::Failing::Unhealthy { output }) if failures => {
                found.facts.push(Fact::TaskHealth {
                    task: task.clone(),
                    healthy: false,
                    output,
                });
            }
            None if c.is_running() => {
                found.facts.push(Fact::TaskRunning { task: task.clone() });
                if runs.health == drover_plan::Health::Healthy {
                    found.facts.push(Fact::TaskHealth {
                        task: task.clone(),
                        healthy: true,
                        output: runs.health_output.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// What `up` would change of `task` in `plan`, in a few words; `None` when
/// nothing (a restart of a failing task is the task's health, not drift;
/// what a stop mark holds back is drover's own doing).
pub fn drift_of(plan: &drover_plan::Plan, task: &TaskKey) -> Option<String> {
    let change = plan.changes.iter().find(|c| {
        c.job == task.job
            && c.host == task.host
            && c.task == Some(task.task)
            && !matches!(c.step, Step::Restart { .. })
            // Running, its health check not yet passed since it started: a
            // health matter (task.unhealthy if it fails), not drift.
            && !matches!(&c.step, Step::Start { current } if current.state == RunState::Running)
    })?;
    let mut what = format!(
        "`drover up` would {} it ({})",
        change.step.verb(),
        change.reason
    );
    let fields: Vec<&str> = change
        .fields
        .iter()
        .map(|f| f.path.as_str())
        .take(4)
        .collect();
    if !fields.is_empty() && !matches!(change.step, Step::Create { .. }) {
        what.push_str(&format!(", {} differ", fields.join(", ")));
        if change.fields.len() > fields.len() {
            what.push_str(&format!(" and {} more", change.fields.len() - fields.len()));
        }
    }
    Some(what)
}

/// A kill or an out-of-memory event the engine reported before an exit.
#[derive(Debug, Default)]
struct Recent {
    killed_at: Option<Instant>,
    oom: bool,
}

/// One host's watcher.
struct HostWatch {
    host: String,
    source: Arc<FleetSource>,
    connect: Connect,
    facts: mpsc::Sender<Fact>,
    options: WatchOptions,
    sink: Sink,
    locked: BTreeSet<String>,
    marked: BTreeSet<String>,
    /// By container ID.
    recent: HashMap<String, Recent>,
    /// The task containers as last listed.
    seen: BTreeMap<TaskKey, (String, RunState)>,
    /// The containers adopted here, by ID, as the adoption records say.
    adopted: HashMap<String, Adoption>,
    /// Tasks told to be drifted: their next event, or their job's unlock, checks again.
    drifted: BTreeSet<TaskKey>,
    /// Tasks to check with a diff, and when.
    due: BTreeMap<TaskKey, Instant>,
    /// Jobs whose lock went: their tasks are looked at again then.
    unlocked: BTreeMap<String, Instant>,
    /// Tasks the tracker was told about (to forget those the spec drops).
    told: BTreeSet<TaskKey>,
    notes_given: BTreeSet<String>,
    /// The spec's tasks on this host, as of the files' generation.
    wanted: (u64, BTreeSet<TaskKey>),
}

/// Why a host's watch loop ended.
enum Ended {
    Cancelled,
    /// The event stream ended or broke, or the host stopped answering.
    Dropped(String),
}

impl HostWatch {
    fn new(
        host: String,
        source: Arc<FleetSource>,
        connect: Connect,
        facts: mpsc::Sender<Fact>,
        options: WatchOptions,
        sink: Sink,
    ) -> HostWatch {
        HostWatch {
            host,
            source,
            connect,
            facts,
            options,
            sink,
            locked: BTreeSet::new(),
            marked: BTreeSet::new(),
            recent: HashMap::new(),
            seen: BTreeMap::new(),
            adopted: HashMap::new(),
            drifted: BTreeSet::new(),
            due: BTreeMap::new(),
            unlocked: BTreeMap::new(),
            told: BTreeSet::new(),
            notes_given: BTreeSet::new(),
            wanted: (u64::MAX, BTreeSet::new()),
        }
    }

    /// Whether the spec (as its files say now) has `task` on this host.
    fn wanted(&mut self, task: &TaskKey) -> bool {
        let generation = self.source.generation();
        if self.wanted.0 != generation {
            let tasks = self.tasks(&self.source.current());
            self.wanted = (generation, tasks);
        }
        self.wanted.1.contains(task)
    }

    async fn send(&mut self, fact: Fact) {
        if let Fact::TaskGone { task } = &fact {
            self.told.remove(task);
            self.drifted.remove(task);
        } else if let Some(task) = fact_task(&fact) {
            self.told.insert(task.clone());
        }
        let _ = self.facts.send(fact).await;
    }

    /// Says `text` once per watcher.
    fn note_once(&mut self, text: String) {
        if self.notes_given.insert(text.clone()) {
            (self.sink.note)(&text);
        }
    }

    /// The spec's tasks on this host now.
    fn tasks(&self, fleet: &Fleet) -> BTreeSet<TaskKey> {
        let jobs: Vec<&drover_spec::Job> = fleet.env.jobs.values().collect();
        fleet
            .task_keys(&jobs)
            .into_iter()
            .filter(|k| k.host == self.host)
            .collect()
    }

    async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = self.options.backoff_min;
        let mut engine: Option<Arc<dyn Engine>> = None;
        let mut first = true;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let fleet = self.source.current();
            let env = fleet.env.name.clone();
            let connected = match engine.clone() {
                Some(engine) => Ok(engine),
                None => (self.connect)(Arc::clone(&fleet), self.host.clone())
                    .await
                    .map_err(|e| reason(&e)),
            };
            let listed = match connected {
                Ok(connected) => {
                    let events = connected.events(&env);
                    tokio::time::sleep(SUBSCRIBE_GRACE).await;
                    match observe(connected.as_ref(), &env, &Scope::All).await {
                        Ok(state) => Ok((connected, events, state)),
                        Err(e) => Err(reason(&e)),
                    }
                }
                Err(why) => Err(why),
            };
            let (connected, events, state) = match listed {
                Ok(listed) => listed,
                Err(why) => {
                    engine = None;
                    self.send(Fact::HostUnreachable {
                        host: self.host.clone(),
                        reason: why,
                    })
                    .await;
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.options.backoff_max);
                    continue;
                }
            };
            backoff = self.options.backoff_min;
            engine = Some(Arc::clone(&connected));
            self.send(Fact::HostReachable {
                host: self.host.clone(),
            })
            .await;
            self.relisted(&fleet, &state, first).await;
            first = false;
            match self.follow(&connected, events, &cancel).await {
                Ended::Cancelled => return,
                Ended::Dropped(why) => {
                    (self.sink.note)(&format!("host {}: {why}; listing it again", self.host));
                    // Whether the host still answers is the next list's to tell.
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(self.options.backoff_min) => {}
                    }
                }
            }
        }
    }

    /// After a (re)list: the baseline facts, and a diff of every task whose
    /// container changed while nobody was looking.
    async fn relisted(&mut self, fleet: &Fleet, state: &HostState, first: bool) {
        let tasks = self.tasks(fleet);
        let found = baseline(
            &fleet.env.name,
            &self.host,
            &tasks,
            state,
            &fleet.known_hosts(),
            drover_plan::time::now(),
            true,
        );
        if !first {
            for task in &tasks {
                if found.locked.contains(&task.job) || found.marked.contains(&task.job) {
                    continue;
                }
                if self.seen.get(task) != found.seen.get(task) || self.drifted.contains(task) {
                    self.due
                        .insert(task.clone(), Instant::now() + self.options.settle);
                }
            }
        }
        // Tasks the spec no longer has here are forgotten.
        let gone: Vec<TaskKey> = self.told.difference(&tasks).cloned().collect();
        for task in gone {
            self.send(Fact::TaskGone { task }).await;
        }
        self.locked = found.locked;
        self.marked = found.marked;
        self.seen = found.seen;
        self.adopted = adoptions(state).collect();
        for fact in found.facts {
            self.send(fact).await;
        }
    }

    /// Follows the host's events until the stream ends or `cancel`.
    async fn follow(
        &mut self,
        engine: &Arc<dyn Engine>,
        mut events: futures::stream::BoxStream<'static, Result<EngineEvent, EngineError>>,
        cancel: &CancellationToken,
    ) -> Ended {
        let mut ping = tokio::time::interval(self.options.ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut disk = tokio::time::interval(self.options.disk_every);
        disk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_due = self
                .due
                .values()
                .chain(self.unlocked.values())
                .min()
                .copied();
            tokio::select! {
                () = cancel.cancelled() => return Ended::Cancelled,
                event = events.next() => match event {
                    Some(Ok(event)) => self.on_event(engine, event).await,
                    Some(Err(e)) => return Ended::Dropped(format!("the event stream broke off: {}", reason(&e))),
                    None => return Ended::Dropped("the event stream ended".to_string()),
                },
                () = sleep_until(next_due) => self.checks(engine).await,
                _ = ping.tick() => {
                    if let Err(e) = engine.version().await {
                        return Ended::Dropped(format!("it did not answer a ping: {}", reason(&e)));
                    }
                }
                _ = disk.tick() => self.poll_disk(engine).await,
            }
        }
    }

    async fn on_event(&mut self, engine: &Arc<dyn Engine>, event: EngineEvent) {
        let fleet = self.source.current();
        let env = fleet.env.name.clone();
        let settle = Instant::now() + self.options.settle;
        let meaning = meaning(&env, &self.host, &event, &self.locked, &self.adopted);
        // Only the spec's tasks are watched (a job gone from the files is `up`'s to remove).
        let task = match &meaning {
            Meaning::Died { task, .. }
            | Meaning::Started { task, .. }
            | Meaning::Health { task, .. }
            | Meaning::Changed { task, .. } => Some(task.clone()),
            _ => None,
        };
        if task.is_some_and(|task| !self.wanted(&task)) {
            return;
        }
        match meaning {
            Meaning::Ignore => {}
            Meaning::Lock { job, held: true } => {
                self.locked.insert(job.clone());
                self.unlocked.remove(&job);
                self.due.retain(|task, _| task.job != job);
            }
            Meaning::Lock { job, held: false } => {
                self.locked.remove(&job);
                self.unlocked.insert(job, settle);
            }
            Meaning::Mark { job, set } => {
                if set {
                    self.marked.insert(job);
                } else {
                    self.marked.remove(&job);
                }
            }
            Meaning::Adoptions { adopted, written } => {
                for (id, adoption) in adopted {
                    if written {
                        self.adopted.insert(id, adoption);
                    } else {
                        self.adopted.remove(&id);
                    }
                }
            }
            Meaning::Killed { id } => {
                self.recent.entry(id).or_default().killed_at = Some(Instant::now());
            }
            Meaning::Oom { id } => self.recent.entry(id).or_default().oom = true,
            Meaning::Died {
                task,
                id,
                exit_code,
            } => {
                let recent = self.recent.remove(&id).unwrap_or_default();
                let asked = recent
                    .killed_at
                    .is_some_and(|at| at.elapsed() < KILL_WINDOW);
                if self.marked.contains(&task.job) {
                    return;
                }
                if asked && !recent.oom {
                    // Stopped or killed by someone: is that what the spec says?
                    self.due.insert(task, settle);
                    return;
                }
                let after = engine.inspect_container(&id).await.ok().flatten();
                let died_at = drover_plan::time::from_unix_nanos(event.time_nano);
                let fact = exit_fact(&task, exit_code, recent.oom, after.as_ref(), died_at);
                if self.drifted.contains(&task) {
                    self.due.insert(task, settle);
                }
                self.send(fact).await;
            }
            Meaning::Started { task, id } => {
                // A new run: a kill before it was about the last one.
                self.recent.remove(&id);
                if self.drifted.contains(&task) {
                    self.due.insert(task.clone(), settle);
                }
                self.send(Fact::TaskRunning { task }).await;
            }
            Meaning::Health { task, id, healthy } => {
                let output = match engine.inspect_container(&id).await {
                    Ok(Some(c)) => c.runs.health_output,
                    _ => String::new(),
                };
                self.send(Fact::TaskHealth {
                    task,
                    healthy,
                    output,
                })
                .await;
            }
            Meaning::Changed { task, id } => {
                if event.action == "destroy" {
                    self.recent.remove(&id);
                }
                self.due.insert(task, settle);
            }
        }
    }

    /// Runs the diffs and the looks after an unlock that are due.
    async fn checks(&mut self, engine: &Arc<dyn Engine>) {
        let now = Instant::now();
        let mut jobs: BTreeMap<String, Vec<TaskKey>> = BTreeMap::new();
        let due: Vec<TaskKey> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(task, _)| task.clone())
            .collect();
        for task in due {
            self.due.remove(&task);
            if !self.locked.contains(&task.job) {
                jobs.entry(task.job.clone()).or_default().push(task);
            }
        }
        let unlocked: Vec<String> = self
            .unlocked
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(job, _)| job.clone())
            .collect();
        for job in unlocked {
            self.unlocked.remove(&job);
            if self.locked.contains(&job) {
                continue;
            }
            // Only drift already reported is checked again: what drover's
            // own command left (a job taken down…) is no news.
            let again: Vec<TaskKey> = self
                .drifted
                .iter()
                .filter(|t| t.job == job)
                .cloned()
                .collect();
            let entry = jobs.entry(job.clone()).or_default();
            entry.extend(again);
            self.look_again(engine, &job).await;
        }
        for (job, tasks) in jobs {
            if !tasks.is_empty() {
                self.diff(engine, &job, tasks).await;
            }
        }
    }

    /// After a change of drover's own: what runs now, without reporting
    /// failures (the command reported them).
    async fn look_again(&mut self, engine: &Arc<dyn Engine>, job: &str) {
        let fleet = self.source.current();
        let scope = Scope::Jobs(BTreeSet::from([job.to_string()]));
        let Ok(state) = observe(engine.as_ref(), &fleet.env.name, &scope).await else {
            return;
        };
        self.adopted.extend(adoptions(&state));
        let tasks: BTreeSet<TaskKey> = self
            .tasks(&fleet)
            .into_iter()
            .filter(|t| t.job == job)
            .collect();
        let found = baseline(
            &fleet.env.name,
            &self.host,
            &tasks,
            &state,
            &fleet.known_hosts(),
            drover_plan::time::now(),
            false,
        );
        for (task, seen) in found.seen {
            self.seen.insert(task, seen);
        }
        for fact in found.facts {
            self.send(fact).await;
        }
    }

    /// Checks `tasks` of `job` with a diff made by the planner.
    async fn diff(&mut self, engine: &Arc<dyn Engine>, job: &str, tasks: Vec<TaskKey>) {
        let fleet = self.source.current();
        let env = fleet.env.name.clone();
        let Some(spec) = fleet.env.jobs.get(job) else {
            for task in tasks {
                self.send(Fact::TaskGone { task }).await;
            }
            return;
        };
        let scope = Scope::Jobs(BTreeSet::from([job.to_string()]));
        let state = match observe(engine.as_ref(), &env, &scope).await {
            Ok(state) => state,
            Err(e) => {
                (self.sink.note)(&format!(
                    "host {}: cannot check job {job} for drift: {}",
                    self.host,
                    reason(&e)
                ));
                return;
            }
        };
        self.adopted.extend(adoptions(&state));
        let verdicts: Vec<(TaskKey, Option<String>)> = match fleet.secrets(&[spec]) {
            Ok(secrets) => {
                let desired = match drover_plan::render_job(&fleet.env, spec, &secrets) {
                    Ok(desired) => desired,
                    Err(e) => {
                        (self.sink.note)(&format!("cannot check job {job} for drift: {e}"));
                        return;
                    }
                };
                let desired: Vec<_> = desired
                    .into_iter()
                    .filter(|d| d.key.host == self.host)
                    .collect();
                let observed = Observed {
                    hosts: BTreeMap::from([(
                        self.host.clone(),
                        HostObservation::Reachable(state.clone()),
                    )]),
                    at: drover_plan::time::now(),
                };
                let plan =
                    drover_plan::plan(&env, &desired, &observed, &scope, &fleet.known_hosts());
                tasks
                    .into_iter()
                    .map(|task| {
                        let drift = drift_of(&plan, &task);
                        (task, drift)
                    })
                    .collect()
            }
            Err(e) => {
                self.note_once(format!(
                    "job {job}: {e}; its tasks are checked for drift by their containers only (there, under their names, up)"
                ));
                tasks
                    .into_iter()
                    .map(|task| {
                        let drift = state_drift(&env, &self.host, &task, &state);
                        (task, drift)
                    })
                    .collect()
            }
        };
        let marked = baseline(
            &env,
            &self.host,
            &BTreeSet::new(),
            &state,
            &fleet.known_hosts(),
            drover_plan::time::now(),
            false,
        )
        .marked;
        for (task, drift) in verdicts {
            if marked.contains(&task.job) {
                continue;
            }
            match drift {
                Some(what) => {
                    self.drifted.insert(task.clone());
                    self.send(Fact::TaskDrift { task, what }).await;
                }
                None => {
                    self.drifted.remove(&task);
                    self.send(Fact::TaskInSync { task }).await;
                }
            }
        }
    }

    async fn poll_disk(&mut self, engine: &Arc<dyn Engine>) {
        let Ok(info) = engine.info().await else {
            return;
        };
        match engine.data_root_space(&info.data_root).await {
            Ok(Some(space)) => {
                let percent = |free: u64, total: u64| {
                    if total == 0 {
                        0.0
                    } else {
                        total.saturating_sub(free) as f64 * 100.0 / total as f64
                    }
                };
                self.send(Fact::Disk {
                    host: self.host.clone(),
                    space_percent: percent(space.free_bytes, space.total_bytes),
                    inodes_percent: percent(space.free_inodes, space.total_inodes),
                })
                .await;
            }
            Ok(None) => self.note_once(format!(
                "host {}: its data root ({}) is not on this machine, so its disk is not watched here",
                self.host, info.data_root
            )),
            Err(e) => self.note_once(format!(
                "host {}: cannot read the space of its data root: {}",
                self.host,
                reason(&e)
            )),
        }
    }
}

/// The adopted containers of `state`, by ID.
fn adoptions(state: &HostState) -> impl Iterator<Item = (String, Adoption)> + '_ {
    state
        .containers
        .iter()
        .filter_map(|c| Some((c.id.clone(), c.adopted.clone()?)))
}

/// Drift judged by the task's container alone: there under its name, and up.
fn state_drift(env: &str, host: &str, task: &TaskKey, state: &HostState) -> Option<String> {
    let own = state
        .containers
        .iter()
        .find(|c| matches!(c.role(env), Role::Current(ref k) if k == task && k.host == host));
    match own {
        None => Some("its container is gone (or renamed)".to_string()),
        Some(c) if !c.is_running() => Some(format!("its container is {}", c.state())),
        Some(_) => None,
    }
}

fn fact_task(fact: &Fact) -> Option<&TaskKey> {
    match fact {
        Fact::TaskExited { task, .. }
        | Fact::TaskRunning { task }
        | Fact::TaskHealth { task, .. }
        | Fact::TaskDrift { task, .. }
        | Fact::TaskInSync { task }
        | Fact::TaskGone { task } => Some(task),
        _ => None,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a host could not be read, without its name and address again.
fn reason(error: &EngineError) -> String {
    match error {
        EngineError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Polls each job's repository in `[registry]`: a tag that was not there
/// before and is newer than the job's own is `image.available`.
async fn poll_images(
    source: Arc<FleetSource>,
    facts: mpsc::Sender<Fact>,
    options: WatchOptions,
    sink: Sink,
    cancel: CancellationToken,
) {
    // Tags seen so far, by repository.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut noted = false;
    loop {
        let fleet = source.current();
        match &fleet.env.registry {
            None if !noted => {
                noted = true;
                (sink.note)("drover.toml has no [registry]: new images are not watched");
            }
            None => {}
            Some(registry) => {
                match RegistryClient::with_credentials_from_environment(
                    &registry.url,
                    crate::images::REGISTRY_TIMEOUT,
                ) {
                    Ok(client) => {
                        for fact in new_images(&fleet, &client, &mut seen, &sink).await {
                            let _ = facts.send(fact).await;
                        }
                    }
                    Err(e) if !noted => {
                        noted = true;
                        (sink.note)(&format!(
                            "registry {} cannot be asked: {e}; new images are not watched",
                            registry.url
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(options.images_every) => {}
        }
    }
}

/// A repository polled for new tags: its path in the registry's API, and
/// the jobs that run it with the tag each runs.
struct Polled<'a> {
    path: String,
    jobs: Vec<(&'a str, Option<&'a str>)>,
}

/// One poll of every job's repository.
async fn new_images(
    fleet: &Fleet,
    client: &RegistryClient,
    seen: &mut BTreeMap<String, BTreeSet<String>>,
    sink: &Sink,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    // Jobs by the repository they run, each asked once, and only where the
    // registry is the image's own (as Docker decides it: `ImageRef`).
    let mut repositories: BTreeMap<String, Polled> = BTreeMap::new();
    for job in fleet.env.jobs.values() {
        let (Some(repository), Some(registry), Some(path)) = (
            job.image.written_repository(),
            job.image.registry(),
            job.image.path(),
        ) else {
            continue;
        };
        if registry != client.registry_host() {
            continue;
        }
        repositories
            .entry(repository.to_string())
            .or_insert_with(|| Polled {
                path: path.to_string(),
                jobs: Vec::new(),
            })
            .jobs
            .push((job.name.as_str(), job.image.tag()));
    }
    for (repository, Polled { path, jobs }) in repositories {
        let tags: BTreeSet<String> = match client.tags(&path).await {
            Ok(tags) => tags.into_iter().collect(),
            Err(e) => {
                (sink.note)(&format!("cannot list the tags of {repository}: {e}"));
                continue;
            }
        };
        let Some(before) = seen.insert(repository.clone(), tags.clone()) else {
            // The first poll: what is there now is not news.
            continue;
        };
        let fresh: Vec<&String> = tags.difference(&before).collect();
        if fresh.is_empty() {
            continue;
        }
        let mut created = BTreeMap::new();
        for tag in fresh
            .iter()
            .map(|t| t.as_str())
            .chain(jobs.iter().filter_map(|(_, tag)| *tag))
        {
            if let Ok(info) = client.tag_info(&path, tag).await {
                created.insert(tag.to_string(), info.created_unix);
            }
        }
        let newest = fresh
            .iter()
            .max_by_key(|t| (created.get(t.as_str()).copied().flatten(), t.as_str()));
        let Some(newest) = newest else { continue };
        let newest_at = created.get(newest.as_str()).copied().flatten();
        for (job, tag) in &jobs {
            let current_at = tag.and_then(|t| created.get(t).copied().flatten());
            if *tag == Some(newest.as_str()) {
                continue;
            }
            let newer = match (newest_at, current_at) {
                (Some(new), Some(current)) => new > current,
                _ => true,
            };
            if newer {
                facts.push(Fact::ImageAvailable {
                    job: job.to_string(),
                    image: format!("{repository}:{newest}"),
                });
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::fake::{Behaviour, FakeEngine, HandAction};
    use drover_notify::EventKind;
    use std::sync::Mutex;

    const ENV: &str = "prod";
    const IMAGE: &str = "busybox:1";

    fn event(name: &str, action: &str, labels: &[(&str, &str)]) -> EngineEvent {
        let mut map: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("name".to_string(), name.to_string());
        EngineEvent {
            container: format!("id-{name}"),
            action: action.to_string(),
            labels: map,
            time_nano: 0,
        }
    }

    fn task_labels(job: &'static str, task: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            (drover_plan::labels::ENV, ENV),
            (drover_plan::labels::JOB, job),
            (drover_plan::labels::HOST, "h1"),
            (drover_plan::labels::TASK, task),
        ]
    }

    fn web0() -> TaskKey {
        TaskKey::new("web", "h1", 0)
    }

    #[test]
    fn events_mean_what_drover_did_not_do_itself() {
        let none = BTreeSet::new();
        let web = task_labels("web", "0");
        let died = event(
            "prod.web.h1.0",
            "die",
            &[web.clone(), vec![("exitCode", "3")]].concat(),
        );
        assert_eq!(
            meaning(ENV, "h1", &died, &none, &HashMap::new()),
            Meaning::Died {
                task: web0(),
                id: "id-prod.web.h1.0".to_string(),
                exit_code: Some(3)
            }
        );
        // While the job's lock is on the host, drover is changing it.
        let locked = BTreeSet::from(["web".to_string()]);
        assert_eq!(
            meaning(ENV, "h1", &died, &locked, &HashMap::new()),
            Meaning::Ignore
        );
        // Another host's task (two entries sharing an engine) is its watcher's.
        assert_eq!(
            meaning(ENV, "h2", &died, &none, &HashMap::new()),
            Meaning::Ignore
        );
        // A kept generation or a one-off exiting is no task's news.
        let kept = event("prod.web.h1.0.kept-abc", "die", &web);
        assert_eq!(
            meaning(ENV, "h1", &kept, &none, &HashMap::new()),
            Meaning::Ignore
        );
        let one_off = event(
            "prod.web.h1.run-1a2b",
            "die",
            &[
                (drover_plan::labels::ENV, ENV),
                (drover_plan::labels::JOB, "web"),
                (drover_plan::labels::HOST, "h1"),
                (drover_plan::labels::ROLE, "run"),
            ],
        );
        assert_eq!(
            meaning(ENV, "h1", &one_off, &none, &HashMap::new()),
            Meaning::Ignore
        );

        let lock = [
            (drover_plan::labels::ENV, ENV),
            (drover_plan::labels::JOB, "web"),
            (drover_plan::labels::HOST, "h1"),
            (drover_plan::labels::ROLE, "lock"),
        ];
        assert_eq!(
            meaning(
                ENV,
                "h1",
                &event("prod.web.h1.lock", "create", &lock),
                &none,
                &HashMap::new()
            ),
            Meaning::Lock {
                job: "web".to_string(),
                held: true
            }
        );
        assert_eq!(
            meaning(
                ENV,
                "h1",
                &event("prod.web.h1.lock", "destroy", &lock),
                &none,
                &HashMap::new()
            ),
            Meaning::Lock {
                job: "web".to_string(),
                held: false
            }
        );

        // A stop or kill asks the process to end; a HUP asks it to reload.
        let stop = event(
            "prod.web.h1.0",
            "kill",
            &[web.clone(), vec![("signal", "15")]].concat(),
        );
        assert!(matches!(
            meaning(ENV, "h1", &stop, &none, &HashMap::new()),
            Meaning::Killed { .. }
        ));
        let hup = event(
            "prod.web.h1.0",
            "kill",
            &[web.clone(), vec![("signal", "1")]].concat(),
        );
        assert_eq!(
            meaning(ENV, "h1", &hup, &none, &HashMap::new()),
            Meaning::Ignore
        );
        let unhealthy = event("prod.web.h1.0", "health_status: unhealthy", &web);
        assert!(matches!(
            meaning(ENV, "h1", &unhealthy, &none, &HashMap::new()),
            Meaning::Health { healthy: false, .. }
        ));
        // The task's container renamed away by hand: the task is checked.
        let renamed = event(
            "oops",
            "rename",
            &[web.clone(), vec![("oldName", "/prod.web.h1.0")]].concat(),
        );
        assert_eq!(
            meaning(ENV, "h1", &renamed, &none, &HashMap::new()),
            Meaning::Changed {
                task: web0(),
                id: "id-oops".to_string()
            }
        );
        // A rollout's rename of the old container aside, under the lock, is not.
        assert_eq!(
            meaning(ENV, "h1", &renamed, &locked, &HashMap::new()),
            Meaning::Ignore
        );
    }

    /// A task running while its health check has not passed since it
    /// started (after any restart) is for `up` to prove, not drift; one
    /// that exited is drift.
    #[tokio::test]
    async fn a_task_not_yet_proven_is_no_drift_an_exited_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let engine = engine_running(&fleet);
        let mut state = drover_engine::observe(engine.as_ref(), ENV, &Scope::All)
            .await
            .unwrap();
        let desired =
            drover_plan::render_job(&fleet.env, fleet.job("web").unwrap(), &BTreeMap::new())
                .unwrap();
        let verdict = |state: &HostState| {
            let observed = Observed {
                hosts: BTreeMap::from([(
                    "h1".to_string(),
                    HostObservation::Reachable(state.clone()),
                )]),
                at: drover_plan::time::now(),
            };
            let plan =
                drover_plan::plan(ENV, &desired, &observed, &Scope::All, &fleet.known_hosts());
            (plan.changes.len(), drift_of(&plan, &web0()))
        };
        state.containers[0].runs.health = drover_plan::Health::Starting;
        assert_eq!(
            verdict(&state),
            (1, None),
            "a start for up to prove; no drift"
        );
        state.containers[0].runs.state = RunState::Exited;
        state.containers[0].runs.exit_code = Some(0);
        let (changes, drift) = verdict(&state);
        assert_eq!(changes, 1);
        assert!(drift.is_some_and(|d| d.contains("would start it")));
    }

    /// A fleet of one job `web` on h1 (never connected: fake engines stand in).
    fn fleet(dir: &std::path::Path, instances: u32) -> Fleet {
        std::fs::create_dir_all(dir.join("jobs")).unwrap();
        std::fs::write(
            dir.join("drover.toml"),
            "name = \"prod\"\n[hosts.h1]\ndocker = \"unix:///nonexistent/h1.sock\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("jobs/web.toml"),
            format!("image = \"{IMAGE}\"\nhosts = [\"h1\"]\ninstances = {instances}\ncommand = [\"serve\"]\n"),
        )
        .unwrap();
        Fleet::load(Some(dir), None, &[]).unwrap()
    }

    /// The fake engine running `fleet`'s tasks as `up` would have made them.
    fn engine_running(fleet: &Fleet) -> Arc<FakeEngine> {
        let engine = FakeEngine::new("h1")
            .with_image(IMAGE, "sha256:1111")
            .with_event_feed();
        let job = fleet.job("web").unwrap();
        for task in drover_plan::render_job(&fleet.env, job, &BTreeMap::new()).unwrap() {
            engine.insert(
                &task.container_name(ENV),
                task.config.clone(),
                task.labels(ENV),
                "running",
            );
        }
        Arc::new(engine)
    }

    struct Watching {
        posted: Arc<Mutex<Vec<Event>>>,
        cancel: CancellationToken,
        done: tokio::task::JoinHandle<()>,
    }

    impl Watching {
        fn start(fleet: Fleet, engine: Arc<FakeEngine>, rules: Rules) -> Watching {
            let posted: Arc<Mutex<Vec<Event>>> = Arc::default();
            let seen = Arc::clone(&posted);
            let sink = Sink {
                posted: Arc::new(move |e: &Event| seen.lock().unwrap().push(e.clone())),
                note: Arc::new(|_: &str| {}),
            };
            let connect: Connect = Arc::new(move |_, _| {
                let engine: Arc<dyn Engine> = engine.clone();
                async move { Ok(engine) }.boxed()
            });
            let options = WatchOptions {
                rules,
                settle: Duration::from_millis(50),
                tick: Duration::from_millis(50),
                ..WatchOptions::default()
            };
            let cancel = CancellationToken::new();
            let done = tokio::spawn(run_with(
                Arc::new(FleetSource::new(fleet)),
                connect,
                Notifier::disabled(),
                options,
                sink,
                cancel.clone(),
            ));
            Watching {
                posted,
                cancel,
                done,
            }
        }

        /// The kinds posted so far, after a moment for the watcher to act.
        async fn kinds(&self) -> Vec<EventKind> {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let posted = self.posted.lock().unwrap();
            posted
                .iter()
                .filter(|e| e.kind != EventKind::DiskLow)
                .map(|e| e.kind)
                .collect()
        }

        async fn stop(self) {
            self.cancel.cancel();
            let _ = self.done.await;
        }
    }

    #[tokio::test]
    async fn a_stop_by_hand_is_drift_until_the_task_runs_as_specified_again() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let engine = engine_running(&fleet);
        let watching = Watching::start(fleet, Arc::clone(&engine), Rules::default());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(watching.kinds().await, []);

        engine.by_hand("prod.web.h1.0", HandAction::Stop);
        engine.emit("prod.web.h1.0", "kill", &[("signal", "15")]);
        engine.emit("prod.web.h1.0", "die", &[("exitCode", "0")]);
        engine.emit("prod.web.h1.0", "stop", &[]);
        assert_eq!(watching.kinds().await, [EventKind::DriftDetected]);
        let drift = watching.posted.lock().unwrap()[0].clone();
        assert_eq!(
            drift.summary,
            "web h1/0 no longer matches the spec: `drover up` would start it (exited (code 0))"
        );

        engine.by_hand("prod.web.h1.0", HandAction::Start);
        engine.emit("prod.web.h1.0", "start", &[]);
        assert_eq!(
            watching.kinds().await,
            [EventKind::DriftDetected, EventKind::TaskRecovered]
        );
        watching.stop().await;
    }

    #[tokio::test]
    async fn a_crash_loop_is_one_message_and_a_change_of_drover_s_own_none() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 2);
        let engine = Arc::new(
            Arc::try_unwrap(engine_running(&fleet))
                .ok()
                .unwrap()
                .with_behaviour(IMAGE, Behaviour::CrashLoops),
        );
        let rules = Rules {
            stable_after: Duration::from_millis(1500),
            ..Rules::default()
        };
        let watching = Watching::start(fleet, Arc::clone(&engine), rules);
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..6 {
            engine.emit("prod.web.h1.0", "die", &[("exitCode", "1")]);
            engine.emit("prod.web.h1.0", "start", &[]);
        }
        assert_eq!(watching.kinds().await, [EventKind::TaskCrashLoop]);
        let posted = watching.posted.lock().unwrap()[0].clone();
        assert_eq!(posted.task, Some(0));
        assert!(
            posted
                .summary
                .starts_with("web h1/0 is crash-looping: 3 exits in"),
            "{}",
            posted.summary
        );

        // A rollout: the lock on the host, the task stopped and replaced.
        let lock_labels = BTreeMap::from([
            (drover_plan::labels::ENV.to_string(), ENV.to_string()),
            (drover_plan::labels::JOB.to_string(), "web".to_string()),
            (drover_plan::labels::HOST.to_string(), "h1".to_string()),
            (drover_plan::labels::ROLE.to_string(), "lock".to_string()),
        ]);
        let mut marker = engine.container("prod.web.h1.0").unwrap().config;
        marker.image = IMAGE.to_string();
        engine.insert("prod.web.h1.lock", marker, lock_labels, "created");
        engine.emit("prod.web.h1.lock", "create", &[]);
        engine.emit("prod.web.h1.1", "kill", &[("signal", "15")]);
        engine.emit("prod.web.h1.1", "die", &[("exitCode", "143")]);
        assert_eq!(watching.kinds().await, [EventKind::TaskCrashLoop]);
        // The rollout fixed the image; the lock goes.
        {
            let mut state = engine.state.lock().unwrap();
            state.behaviours.clear();
            for c in state.containers.values_mut() {
                if c.name == "prod.web.h1.0" {
                    c.runs.state = RunState::Running;
                    c.runs.started_at = Some(drover_engine::fake::clock());
                }
            }
        }
        engine.emit("prod.web.h1.lock", "destroy", &[]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            watching.kinds().await,
            [EventKind::TaskCrashLoop, EventKind::TaskRecovered],
            "recovered once it has run long enough"
        );
        watching.stop().await;
    }

    #[tokio::test]
    async fn a_dropped_event_stream_is_followed_by_a_new_list() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let engine = engine_running(&fleet);
        let watching = Watching::start(fleet, Arc::clone(&engine), Rules::default());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lists = |engine: &FakeEngine| {
            engine
                .calls()
                .iter()
                .filter(|c| c.as_str() == "list")
                .count()
        };
        let before = lists(&engine);
        // Removed by hand while the stream was down: the new list notices.
        engine.drop_event_streams();
        engine.by_hand("prod.web.h1.0", HandAction::Kill);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(lists(&engine) > before, "listed again");
        let kinds = watching.kinds().await;
        assert!(
            kinds.contains(&EventKind::DriftDetected),
            "a container that changed while nobody looked is checked: {kinds:?}"
        );
        watching.stop().await;
    }

    #[test]
    fn an_exit_restarted_by_the_engine_counts_towards_a_crash_loop() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let config =
            drover_plan::render_job(&fleet.env, fleet.job("web").unwrap(), &BTreeMap::new())
                .unwrap()[0]
                .config
                .clone();
        let engine_time = drover_plan::time::parse("2026-01-01T00:00:10Z");
        let mut after = drover_plan::ObservedContainer {
            id: "c".to_string(),
            name: "prod.web.h1.0".to_string(),
            labels: BTreeMap::new(),
            runs: drover_plan::Runs {
                state: RunState::Running,
                started_at: drover_plan::time::parse("2026-01-01T00:00:11Z"),
                ..Default::default()
            },
            error: String::new(),
            created: None,
            image_id: String::new(),
            config,
            image_env: BTreeMap::new(),
            image_cmd: None,
            image_defaults: Default::default(),
            adopted: None,
        };
        let fact = |after: &drover_plan::ObservedContainer| {
            exit_fact(&web0(), Some(1), false, Some(after), engine_time)
        };
        // Up again already, started after the exit: restarted.
        assert!(matches!(
            fact(&after),
            Fact::TaskExited {
                restarting: true,
                exit_code: 1,
                ..
            }
        ));
        after.runs.state = RunState::Exited;
        after.runs.oom_killed = true;
        assert!(matches!(
            fact(&after),
            Fact::TaskExited {
                restarting: false,
                oom_killed: true,
                ..
            }
        ));
        // Gone already (removed with -f): not restarting.
        assert!(matches!(
            exit_fact(&web0(), None, true, None, engine_time),
            Fact::TaskExited {
                restarting: false,
                oom_killed: true,
                exit_code: -1,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_list_tells_what_runs_and_what_failed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 3);
        let engine = engine_running(&fleet);
        {
            let mut state = engine.state.lock().unwrap();
            for c in state.containers.values_mut() {
                match c.name.as_str() {
                    // Restarting again and again.
                    "prod.web.h1.1" => {
                        c.runs.state = RunState::Restarting;
                        c.runs.restarts = 7;
                        c.runs.exit_code = Some(2);
                    }
                    // Exited, not restarted.
                    "prod.web.h1.2" => {
                        c.runs.state = RunState::Exited;
                        c.runs.exit_code = Some(9);
                    }
                    _ => {}
                }
            }
        }
        let tasks: BTreeSet<TaskKey> = (0..3).map(|n| TaskKey::new("web", "h1", n)).collect();
        let known = fleet.known_hosts();
        let read = |engine: Arc<FakeEngine>| async move {
            observe(engine.as_ref(), ENV, &Scope::All).await.unwrap()
        };
        let state = read(Arc::clone(&engine)).await;
        let now = drover_plan::time::now();
        let found = baseline(ENV, "h1", &tasks, &state, &known, now, true);
        let exited = |task: u32, code: i64, restarting: bool| Fact::TaskExited {
            task: TaskKey::new("web", "h1", task),
            exit_code: code,
            oom_killed: false,
            restarting,
        };
        assert_eq!(
            found.facts,
            [
                Fact::TaskRunning {
                    task: TaskKey::new("web", "h1", 0)
                },
                exited(1, 2, true),
                exited(1, 2, true),
                exited(1, 2, true),
                exited(2, 9, false),
            ]
        );
        assert_eq!(found.seen.len(), 3);
        // After a change of drover's own, only what runs is told.
        let quiet = baseline(ENV, "h1", &tasks, &state, &known, now, false);
        assert_eq!(
            quiet.facts,
            [Fact::TaskRunning {
                task: TaskKey::new("web", "h1", 0)
            }]
        );

        // `drover stop` left its mark: the job's tasks are forgotten.
        let mark_labels = BTreeMap::from([
            (drover_plan::labels::ENV.to_string(), ENV.to_string()),
            (drover_plan::labels::JOB.to_string(), "web".to_string()),
            (drover_plan::labels::HOST.to_string(), "h1".to_string()),
            (drover_plan::labels::ROLE.to_string(), "stopped".to_string()),
        ]);
        let config = engine.container("prod.web.h1.0").unwrap().config;
        engine.insert("prod.web.h1.stopped", config, mark_labels, "created");
        let state = read(Arc::clone(&engine)).await;
        let marked = baseline(ENV, "h1", &tasks, &state, &known, now, true);
        assert_eq!(marked.marked, BTreeSet::from(["web".to_string()]));
        assert!(marked
            .facts
            .iter()
            .all(|f| matches!(f, Fact::TaskGone { .. })));
        assert_eq!(marked.facts.len(), 3);
    }

    /// The fake engine running `fleet`'s tasks as containers started by
    /// hand that `drover adopt` took over: none of drover's labels, `names`
    /// (the tasks' own after the adoption), and with `record`, the job's
    /// adoption record. The containers' IDs, by task.
    fn engine_adopted(
        fleet: &Fleet,
        names: impl Fn(&TaskKey) -> String,
        record: bool,
    ) -> (Arc<FakeEngine>, BTreeMap<String, u32>) {
        let engine = FakeEngine::new("h1")
            .with_image(IMAGE, "sha256:1111")
            .with_event_feed();
        let job = fleet.job("web").unwrap();
        let mut ids = BTreeMap::new();
        for task in drover_plan::render_job(&fleet.env, job, &BTreeMap::new()).unwrap() {
            let hand_labels = BTreeMap::from([("team".to_string(), "ops".to_string())]);
            let id = engine.insert(
                &names(&task.key),
                task.config.clone(),
                hand_labels,
                "running",
            );
            ids.insert(id, task.key.task);
        }
        let engine = Arc::new(engine);
        if record {
            write_record(&engine, &ids);
        }
        (engine, ids)
    }

    /// `drover adopt`'s record of `ids` as web's tasks on h1.
    fn write_record(engine: &FakeEngine, ids: &BTreeMap<String, u32>) {
        let record = Adoption::record(ENV, "web", "h1", ids, &BTreeSet::new());
        let config = engine
            .container("prod.web.h1.0")
            .or_else(|| engine.container("web-1"))
            .unwrap()
            .config;
        engine.insert(
            &drover_plan::adoption_name(ENV, "web", "h1"),
            config,
            record,
            "created",
        );
    }

    #[test]
    fn an_adopted_container_s_events_are_its_task_s_by_its_record() {
        let none = BTreeSet::new();
        // Started by hand: its event carries its own labels, none of drover's.
        let died = event(
            "prod.web.h1.0",
            "die",
            &[("team", "ops"), ("exitCode", "3")],
        );
        assert_eq!(
            meaning(ENV, "h1", &died, &none, &HashMap::new()),
            Meaning::Ignore
        );
        let adoption = Adoption {
            env: ENV.to_string(),
            key: web0(),
            by: None,
            at: None,
            secrets: BTreeSet::new(),
        };
        let adopted = HashMap::from([("id-prod.web.h1.0".to_string(), adoption.clone())]);
        assert_eq!(
            meaning(ENV, "h1", &died, &none, &adopted),
            Meaning::Died {
                task: web0(),
                id: "id-prod.web.h1.0".to_string(),
                exit_code: Some(3)
            }
        );
        let locked = BTreeSet::from(["web".to_string()]);
        assert_eq!(
            meaning(ENV, "h1", &died, &locked, &adopted),
            Meaning::Ignore
        );

        // The record's own events say what it holds, from its labels.
        let ids = BTreeMap::from([("id-prod.web.h1.0".to_string(), 0)]);
        let record: Vec<(String, String)> =
            Adoption::record(ENV, "web", "h1", &ids, &BTreeSet::new())
                .into_iter()
                .collect();
        let record: Vec<(&str, &str)> = record
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let written = event("prod.web.h1.adopted", "create", &record);
        assert_eq!(
            meaning(ENV, "h1", &written, &none, &HashMap::new()),
            Meaning::Adoptions {
                adopted: vec![("id-prod.web.h1.0".to_string(), adoption)],
                written: true
            }
        );
        let removed = event("prod.web.h1.adopted", "destroy", &record);
        assert!(matches!(
            meaning(ENV, "h1", &removed, &none, &HashMap::new()),
            Meaning::Adoptions { written: false, .. }
        ));
        assert_eq!(
            meaning(ENV, "h2", &written, &none, &HashMap::new()),
            Meaning::Ignore
        );
    }

    #[tokio::test]
    async fn an_adopted_task_stopped_by_hand_is_drift() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let (engine, _) = engine_adopted(&fleet, |k| k.container_name(ENV), true);
        let watching = Watching::start(fleet, Arc::clone(&engine), Rules::default());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(watching.kinds().await, []);

        engine.by_hand("prod.web.h1.0", HandAction::Stop);
        engine.emit("prod.web.h1.0", "kill", &[("signal", "15")]);
        engine.emit("prod.web.h1.0", "die", &[("exitCode", "0")]);
        engine.emit("prod.web.h1.0", "stop", &[]);
        assert_eq!(watching.kinds().await, [EventKind::DriftDetected]);
        let drift = watching.posted.lock().unwrap()[0].clone();
        assert_eq!(
            drift.summary,
            "web h1/0 no longer matches the spec: `drover up` would start it (exited (code 0))"
        );
        engine.by_hand("prod.web.h1.0", HandAction::Start);
        engine.emit("prod.web.h1.0", "start", &[]);
        assert_eq!(
            watching.kinds().await,
            [EventKind::DriftDetected, EventKind::TaskRecovered]
        );
        watching.stop().await;
    }

    #[tokio::test]
    async fn a_container_adopted_while_watching_is_watched_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), 1);
        let (engine, ids) = engine_adopted(&fleet, |_| "web-1".to_string(), false);
        let watching = Watching::start(fleet, Arc::clone(&engine), Rules::default());
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A container nobody manages, stopped by hand: nobody's news.
        engine.by_hand("web-1", HandAction::Stop);
        engine.emit("web-1", "die", &[("exitCode", "0")]);
        engine.by_hand("web-1", HandAction::Start);
        engine.emit("web-1", "start", &[]);
        assert_eq!(watching.kinds().await, []);

        // `drover adopt`: the record, then the rename.
        write_record(&engine, &ids);
        engine.emit("prod.web.h1.adopted", "create", &[]);
        let id = ids.keys().next().unwrap();
        drover_engine::Containers::rename_container(engine.as_ref(), id, "prod.web.h1.0")
            .await
            .unwrap();
        engine.emit("prod.web.h1.0", "rename", &[("oldName", "/web-1")]);
        assert_eq!(watching.kinds().await, []);

        engine.by_hand("prod.web.h1.0", HandAction::Stop);
        engine.emit("prod.web.h1.0", "kill", &[("signal", "15")]);
        engine.emit("prod.web.h1.0", "die", &[("exitCode", "0")]);
        assert_eq!(watching.kinds().await, [EventKind::DriftDetected]);
        watching.stop().await;
    }
}
