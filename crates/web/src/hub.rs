//! The live overview, gathered once per host and shared by every viewer.
//!
//! While at least one overview is open, each host has one watcher and one
//! usage sampler, however many tabs look:
//!
//! - the watcher subscribes to the engine's `/events` (filtered to this
//!   environment's label), then lists the containers once, then inspects
//!   only the container an event names. When the stream drops, the engine
//!   replays only a short backlog, so it lists again and resubscribes;
//! - the sampler reads each running container's memory and CPU counters
//!   every few seconds (CPU as `docker stats` computes it, between two
//!   samples).
//!
//! Both feed one snapshot, the same rows `status --json` prints
//! ([`crate::rows`]), serialized once and handed to every viewer through a
//! `watch` channel: a slow viewer skips to the newest, nobody queues.
//! [`LINGER`] after the last viewer leaves, the watchers stop and the
//! dashboard makes no engine calls at all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use drover_engine::{Engine, EngineError, EngineEvent, UsageSample};
use drover_fleet::TaskStatus;
use drover_plan::views::{locks, status_rows, LockInfo};
use drover_plan::{HostObservation, HostState, Observed, ObservedContainer, Scope};
use futures::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pool::Pool;
use crate::source::FleetSource;
use drover_fleet::task_status;

/// How long the watchers keep running after the last viewer left (a page
/// reload must not cost a full re-list).
pub const LINGER: Duration = Duration::from_secs(10);
/// Events are gathered this long before the containers they name are inspected.
const SETTLE: Duration = Duration::from_millis(100);
/// Snapshots are built at most this often.
const COALESCE: Duration = Duration::from_millis(150);
/// Usage is sampled this often (more slowly on hosts with many containers).
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Time the engine gets to register a new event subscription before the
/// list that it must not miss anything after.
const SUBSCRIBE_GRACE: Duration = Duration::from_millis(50);
/// Inspects and usage reads in flight at once per host.
const CONCURRENCY: usize = 8;

/// The overview as every viewer gets it.
#[derive(Clone)]
pub struct Snapshot {
    /// Bumped on each build.
    pub version: u64,
    /// The JSON the browser renders.
    pub json: Utf8Bytes,
}

pub struct Hub {
    source: Arc<FleetSource>,
    pool: Pool,
    shutdown: CancellationToken,
    tx: watch::Sender<Snapshot>,
    viewers: AtomicUsize,
    /// Bumped each time the last viewer leaves (a lingering stop checks it).
    left: AtomicU64,
    running: Mutex<Option<CancellationToken>>,
    hosts: Mutex<BTreeMap<String, Arc<Mutex<HostLive>>>>,
    dirty: Notify,
    version: AtomicU64,
    /// Event subscriptions opened, over the hub's life (for tests).
    subscriptions: AtomicU64,
}

/// A viewer of the overview; the watchers run while any is alive.
pub struct Viewer {
    hub: Arc<Hub>,
    pub updates: watch::Receiver<Snapshot>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if self.hub.viewers.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let left = self.hub.left.fetch_add(1, Ordering::SeqCst) + 1;
        let hub = Arc::clone(&self.hub);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(LINGER) => {}
                        () = hub.shutdown.cancelled() => {}
                    }
                    hub.stop_if_idle(left);
                });
            }
            Err(_) => hub.stop_if_idle(left),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Link {
    /// Not asked yet.
    Connecting,
    /// Listed, and its events are followed.
    Up,
    /// The event stream dropped: listing again.
    Resyncing,
    Unreachable,
}

struct HostLive {
    link: Link,
    error: Option<String>,
    version: Option<String>,
    api_version: Option<String>,
    /// When `link` last changed.
    since: String,
    containers: BTreeMap<String, ObservedContainer>,
    samples: BTreeMap<String, UsageSample>,
    /// Memory and CPU by container ID.
    usage: BTreeMap<String, (u64, f64)>,
    events: u64,
}

impl HostLive {
    fn new() -> HostLive {
        HostLive {
            link: Link::Connecting,
            error: None,
            version: None,
            api_version: None,
            since: crate::now(),
            containers: BTreeMap::new(),
            samples: BTreeMap::new(),
            usage: BTreeMap::new(),
            events: 0,
        }
    }

    fn set_link(&mut self, link: Link, error: Option<String>) {
        if self.link != link {
            self.since = crate::now();
        }
        self.link = link;
        self.error = error;
    }
}

impl Hub {
    pub(crate) fn new(
        source: Arc<FleetSource>,
        pool: Pool,
        shutdown: CancellationToken,
    ) -> Arc<Hub> {
        let (tx, _) = watch::channel(Snapshot {
            version: 0,
            json: Utf8Bytes::from_static("{}"),
        });
        let hub = Arc::new(Hub {
            source,
            pool,
            shutdown,
            tx,
            viewers: AtomicUsize::new(0),
            left: AtomicU64::new(0),
            running: Mutex::new(None),
            hosts: Mutex::new(BTreeMap::new()),
            dirty: Notify::new(),
            version: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
        });
        // The first viewer sees the hosts as "connecting" at once.
        let snapshot = hub.build();
        hub.tx.send_replace(snapshot);
        hub
    }

    /// Starts watching (if nobody was) and returns a viewer of the snapshots.
    pub fn subscribe(self: &Arc<Self>) -> Viewer {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        self.viewers.fetch_add(1, Ordering::SeqCst);
        if running.is_none() && !self.shutdown.is_cancelled() {
            let stop = self.shutdown.child_token();
            tokio::spawn(supervise(Arc::clone(self), stop.clone()));
            *running = Some(stop);
        }
        Viewer {
            hub: Arc::clone(self),
            updates: self.tx.subscribe(),
        }
    }

    /// Viewers now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::SeqCst)
    }

    /// Whether the watchers run.
    pub fn is_watching(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or_default()
    }

    /// Event subscriptions opened since the dashboard started.
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions.load(Ordering::SeqCst)
    }

    fn stop_if_idle(&self, left: u64) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if self.viewers.load(Ordering::SeqCst) == 0 && self.left.load(Ordering::SeqCst) == left {
            if let Some(stop) = running.take() {
                stop.cancel();
            }
        }
    }

    fn host(&self, name: &str) -> Arc<Mutex<HostLive>> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            hosts
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(HostLive::new()))),
        )
    }

    fn changed(&self) {
        self.dirty.notify_one();
    }

    /// The overview now, from what the watchers hold.
    fn build(&self) -> Snapshot {
        let fleet = self.source.current();
        let env = fleet.env.name.clone();
        let known = fleet.known_hosts();
        let mut observed = Observed::default();
        let mut hosts_view = Vec::new();
        let mut usage: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
        let mut connecting = BTreeSet::new();
        for name in fleet.hosts() {
            let address = fleet
                .env
                .hosts
                .get(&name)
                .map(|h| h.docker.to_string())
                .unwrap_or_default();
            let live = self.host(&name);
            let live = live.lock().unwrap_or_else(|e| e.into_inner());
            let running = live.containers.values().filter(|c| c.is_running()).count();
            hosts_view.push(HostView {
                name: name.clone(),
                address: address.clone(),
                link: live.link,
                error: live.error.clone(),
                version: live.version.clone(),
                api_version: live.api_version.clone(),
                since: live.since.clone(),
                containers: live.containers.len(),
                running,
                events: live.events,
            });
            let observation = match live.link {
                Link::Up | Link::Resyncing => HostObservation::Reachable(HostState {
                    containers: live.containers.values().cloned().collect(),
                    images: Default::default(),
                }),
                Link::Connecting => {
                    connecting.insert(name.clone());
                    HostObservation::Unreachable {
                        address,
                        error: "connecting".to_string(),
                    }
                }
                Link::Unreachable => HostObservation::Unreachable {
                    address,
                    error: live.error.clone().unwrap_or_default(),
                },
            };
            for (id, u) in &live.usage {
                usage.insert((name.clone(), id.clone()), *u);
            }
            observed.hosts.insert(name, observation);
        }
        let jobs: Vec<&drover_spec::Job> = fleet.env.jobs.values().collect();
        let keys = fleet.task_keys(&jobs);
        let now = drover_plan::time::now();
        observed.at = now;
        let tasks: Vec<TaskStatus> = status_rows(&env, &keys, &observed, &Scope::All, &known)
            .iter()
            .map(|row| {
                let sample = row
                    .container
                    .filter(|c| c.is_running())
                    .and_then(|c| usage.get(&(row.host.clone(), c.id.clone())).copied());
                let mut status = task_status(row, sample, now);
                if connecting.contains(&row.host) {
                    status.state = "connecting".to_string();
                }
                status
            })
            .collect();
        let held = locks(&observed, &env, &known);
        let jobs_view = fleet
            .env
            .jobs
            .values()
            .map(|job| JobView {
                name: job.name.clone(),
                image: job.image.to_string(),
                hosts: job.hosts.clone(),
                instances: job.instances,
                locks: held.get(&job.name).cloned().unwrap_or_default(),
            })
            .collect();
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        let overview = Overview {
            env: &env,
            version,
            time: crate::now(),
            spec_error: self.source.error(),
            hosts: hosts_view,
            jobs: jobs_view,
            tasks,
        };
        let json = serde_json::to_string(&overview).unwrap_or_else(|e| {
            format!("{{\"error\":{}}}", serde_json::Value::String(e.to_string()))
        });
        Snapshot {
            version,
            json: Utf8Bytes::from(json),
        }
    }
}

#[derive(Serialize)]
struct Overview<'a> {
    env: &'a str,
    version: u64,
    time: String,
    spec_error: Option<String>,
    hosts: Vec<HostView>,
    jobs: Vec<JobView>,
    tasks: Vec<TaskStatus>,
}

#[derive(Serialize)]
struct HostView {
    name: String,
    address: String,
    #[serde(rename = "state")]
    link: Link,
    error: Option<String>,
    version: Option<String>,
    api_version: Option<String>,
    since: String,
    containers: usize,
    running: usize,
    events: u64,
}

#[derive(Serialize)]
struct JobView {
    name: String,
    image: String,
    hosts: Vec<String>,
    instances: u32,
    locks: Vec<LockInfo>,
}

/// Runs the watchers of the environment's hosts until `stop`, following
/// the files: a host added to drover.toml gets a watcher, a removed one
/// loses it.
async fn supervise(hub: Arc<Hub>, stop: CancellationToken) {
    {
        // A restart after a pause starts from nothing known.
        let mut hosts = hub.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.clear();
    }
    let publisher = tokio::spawn(publish(Arc::clone(&hub), stop.clone()));
    let mut watchers: BTreeMap<String, CancellationToken> = BTreeMap::new();
    let mut seen = (u64::MAX, None);
    loop {
        let fleet = hub.source.current();
        let now = (hub.source.generation(), hub.source.error());
        if now != seen {
            seen = now;
            let wanted = fleet.hosts();
            watchers.retain(|host, token| {
                let keep = wanted.contains(host);
                if !keep {
                    token.cancel();
                }
                keep
            });
            for host in wanted {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    watchers.entry(host.clone())
                {
                    let token = stop.child_token();
                    tokio::spawn(watch_host(Arc::clone(&hub), host, token.clone()));
                    slot.insert(token);
                }
            }
            hub.changed();
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    for token in watchers.values() {
        token.cancel();
    }
    let _ = publisher.await;
}

/// Builds a snapshot whenever something changed, at most every [`COALESCE`].
async fn publish(hub: Arc<Hub>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = hub.dirty.notified() => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(COALESCE) => {}
        }
        let snapshot = hub.build();
        hub.tx.send_replace(snapshot);
    }
}

/// Sleeps; true if stopped meanwhile.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// Why a host could not be read, for the overview.
fn reason(error: &EngineError) -> String {
    match error {
        EngineError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// What made the event stream end.
enum Ended {
    Stopped,
    Dropped(Option<EngineError>),
}

/// One host: connect, subscribe, list, then follow events; on any break,
/// start over (backing off while the host is unreachable).
async fn watch_host(hub: Arc<Hub>, host: String, stop: CancellationToken) {
    let live = hub.host(&host);
    let sampler = tokio::spawn(sample(
        Arc::clone(&hub),
        host.clone(),
        Arc::clone(&live),
        stop.clone(),
    ));
    let mut backoff = Duration::from_secs(1);
    loop {
        if stop.is_cancelled() {
            break;
        }
        let engine = match hub.pool.get(&host).await {
            Ok(engine) => engine,
            Err(e) => {
                lock(&live).set_link(Link::Unreachable, Some(reason(&e)));
                hub.changed();
                if pause(&stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Ok(version) = engine.version().await {
            let mut live = lock(&live);
            live.version = Some(version.version);
            live.api_version = Some(version.api_version);
        }
        let env = hub.source.current().env.name.clone();
        // Subscribe before listing, so nothing that happens in between is missed.
        let (events_tx, mut events) = mpsc::channel(256);
        let (sent, subscribed) = tokio::sync::oneshot::channel();
        let forward = tokio::spawn(forward_events(engine.events(&env), events_tx, sent));
        hub.subscriptions.fetch_add(1, Ordering::SeqCst);
        // The engine has no "since" for a stream opened through drover's
        // engine API, so the list waits until the subscription is on its way.
        let _ = tokio::time::timeout(Duration::from_secs(5), subscribed).await;
        tokio::time::sleep(SUBSCRIBE_GRACE).await;
        match list(engine.as_ref(), &env).await {
            Ok(containers) => {
                let mut live = lock(&live);
                live.containers = containers;
                live.set_link(Link::Up, None);
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                forward.abort();
                hub.pool.failed(&host, &e);
                lock(&live).set_link(Link::Unreachable, Some(reason(&e)));
                hub.changed();
                if pause(&stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        }
        hub.changed();
        let ended = follow(&hub, engine.as_ref(), &live, &mut events, &stop).await;
        forward.abort();
        match ended {
            Ended::Stopped => break,
            Ended::Dropped(error) => {
                let why = error.as_ref().map_or_else(
                    || "the event stream ended".to_string(),
                    |e| format!("the event stream broke: {}", reason(e)),
                );
                if let Some(e) = &error {
                    hub.pool.failed(&host, e);
                }
                lock(&live).set_link(Link::Resyncing, Some(why));
                hub.changed();
                if pause(&stop, Duration::from_millis(500)).await {
                    break;
                }
            }
        }
    }
    sampler.abort();
}

fn lock(live: &Mutex<HostLive>) -> std::sync::MutexGuard<'_, HostLive> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// Passes a host's events on; `sent` fires once the request is out (the
/// stream's first poll found nothing yet).
async fn forward_events(
    mut events: futures::stream::BoxStream<'static, Result<EngineEvent, EngineError>>,
    tx: mpsc::Sender<Result<EngineEvent, EngineError>>,
    sent: tokio::sync::oneshot::Sender<()>,
) {
    let mut sent = Some(sent);
    let first = std::future::poll_fn(|cx| match events.poll_next_unpin(cx) {
        std::task::Poll::Pending => {
            if let Some(sent) = sent.take() {
                let _ = sent.send(());
            }
            std::task::Poll::Pending
        }
        ready => ready,
    })
    .await;
    if let Some(sent) = sent.take() {
        let _ = sent.send(());
    }
    let Some(first) = first else { return };
    let failed = first.is_err();
    if tx.send(first).await.is_err() || failed {
        return;
    }
    while let Some(event) = events.next().await {
        let failed = event.is_err();
        if tx.send(event).await.is_err() || failed {
            return;
        }
    }
}

/// The environment's containers on one host, inspected.
async fn list(
    engine: &dyn Engine,
    env: &str,
) -> Result<BTreeMap<String, ObservedContainer>, EngineError> {
    let summaries = engine.list_containers(env).await?;
    let ids: Vec<String> = summaries.iter().map(|s| s.id.clone()).collect();
    let found: Vec<Result<Option<ObservedContainer>, EngineError>> = stream::iter(ids)
        .map(|id| async move { engine.inspect_container(&id).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut containers = BTreeMap::new();
    for c in found {
        if let Some(c) = c? {
            containers.insert(c.id.clone(), c);
        }
    }
    // Containers `drover adopt` took over carry no label to list them by.
    for c in drover_engine::adopted(engine, env, &summaries).await? {
        containers.insert(c.id.clone(), c);
    }
    Ok(containers)
}

/// Whether an event can change what the overview shows. Health checks run
/// as execs: their events come every interval and change nothing.
fn matters(action: &str) -> bool {
    !(action.starts_with("exec_")
        || matches!(
            action,
            "attach"
                | "detach"
                | "resize"
                | "top"
                | "export"
                | "copy"
                | "archive-path"
                | "extract-to-dir"
                | "commit"
        ))
}

/// Follows a host's events until they end or `stop`: each event names a
/// container, inspected once the burst it came in has settled.
async fn follow(
    hub: &Hub,
    engine: &dyn Engine,
    live: &Mutex<HostLive>,
    events: &mut mpsc::Receiver<Result<EngineEvent, EngineError>>,
    stop: &CancellationToken,
) -> Ended {
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut due: Option<Instant> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            event = events.recv() => match event {
                Some(Ok(event)) => {
                    lock(live).events += 1;
                    if event.action == "destroy" {
                        let mut live = lock(live);
                        live.containers.remove(&event.container);
                        live.samples.remove(&event.container);
                        live.usage.remove(&event.container);
                        pending.remove(&event.container);
                        drop(live);
                        hub.changed();
                    } else if matters(&event.action) && !event.container.is_empty() {
                        pending.insert(event.container);
                        due.get_or_insert_with(|| Instant::now() + SETTLE);
                    }
                }
                Some(Err(e)) => return Ended::Dropped(Some(e)),
                None => return Ended::Dropped(None),
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                due = None;
                let ids: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
                let found: Vec<(String, Result<Option<ObservedContainer>, EngineError>)> =
                    stream::iter(ids)
                        .map(|id| async move {
                            let c = engine.inspect_container(&id).await;
                            (id, c)
                        })
                        .buffer_unordered(CONCURRENCY)
                        .collect()
                        .await;
                let mut failure = None;
                {
                    let mut live = lock(live);
                    for (id, result) in found {
                        match result {
                            Ok(Some(c)) => {
                                if !c.is_running() {
                                    live.usage.remove(&id);
                                    live.samples.remove(&id);
                                }
                                live.containers.insert(id, c);
                            }
                            Ok(None) => {
                                live.containers.remove(&id);
                                live.usage.remove(&id);
                                live.samples.remove(&id);
                            }
                            Err(e) if e.is_unreachable() => failure = Some(e),
                            Err(_) => {}
                        }
                    }
                }
                hub.changed();
                if let Some(e) = failure {
                    return Ended::Dropped(Some(e));
                }
            }
        }
    }
}

/// Samples the memory and CPU of a host's running containers, every
/// [`SAMPLE_EVERY`] (or 20 ms per container, on a host with many).
async fn sample(hub: Arc<Hub>, host: String, live: Arc<Mutex<HostLive>>, stop: CancellationToken) {
    loop {
        let ids: Vec<String> = {
            let live = lock(&live);
            if live.link == Link::Up {
                live.containers
                    .values()
                    .filter(|c| c.is_running())
                    .map(|c| c.id.clone())
                    .collect()
            } else {
                Vec::new()
            }
        };
        // Nothing listed yet: look again soon, so usage shows with the first rows.
        let every = if ids.is_empty() {
            Duration::from_millis(250)
        } else {
            SAMPLE_EVERY.max(Duration::from_millis(20) * ids.len() as u32)
        };
        if !ids.is_empty() {
            if let Ok(engine) = hub.pool.get(&host).await {
                let engine = &engine;
                let read: Vec<(String, Result<UsageSample, EngineError>)> = stream::iter(ids)
                    .map(|id| async move {
                        let sample = engine.usage(&id).await;
                        (id, sample)
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                let mut live = lock(&live);
                for (id, result) in read {
                    let Ok(now) = result else { continue };
                    if !live.containers.get(&id).is_some_and(|c| c.is_running()) {
                        continue;
                    }
                    let cpu = live.samples.get(&id).map_or(0.0, |before| {
                        (now.cpu_percent_since(before) * 100.0).round() / 100.0
                    });
                    live.usage.insert(id.clone(), (now.memory_bytes, cpu));
                    live.samples.insert(id, now);
                }
                drop(live);
                hub.changed();
            }
        }
        if pause(&stop, every).await {
            return;
        }
    }
}
