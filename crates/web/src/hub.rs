//! The live view, gathered once per host and shared by every viewer.
//!
//! While at least one page (or a metrics lease) looks, each host has one
//! watcher and one usage sampler, however many tabs look:
//!
//! - the watcher subscribes to the engine's `/events` (of this
//!   environment's containers, the ones `drover adopt` took over included:
//!   [`EngineEvent::concerns`]), then observes the host as `diff` does (the
//!   containers inspected, their images' own settings, the host's tags),
//!   then inspects only the container an event names; one without
//!   drover's labels is its task as long as an adoption record of the
//!   host names it (a record written meanwhile counts). When the stream
//!   drops, the engine replays only a short backlog, so it observes again
//!   and resubscribes. The host's tags are listed again after containers
//!   are created (a deploy pulls first) and every minute;
//! - the sampler reads each running container's memory and CPU counters
//!   every few seconds (CPU as `docker stats` computes it, between two
//!   samples), for the overview, the task pages' charts ([`History`]) and
//!   `/metrics`.
//!
//! Everything feeds one [`View`]: the rows `status --json` prints, each
//! job's [`Glance`] (its `diff` count, computed by the planner over this
//! same observation), the hosts; serialized once and handed to every viewer
//! through a `watch` channel: a slow viewer skips to the newest, nobody
//! queues. Each event that names a job is also kept in the job's recent
//! [`Activity`], so a change made from the CLI shows on the job's page as
//! it happens. [`LINGER`] after the last viewer leaves, the watchers stop
//! and the dashboard makes no engine calls at all.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use drover_engine::{Engine, EngineError, EngineEvent, ImageDetails, UsageSample};
use drover_fleet::TaskStatus;
use drover_plan::views::{locks, status_rows, LockInfo};
use drover_plan::{
    labels, Adoption, DesiredTask, HostObservation, HostState, ImageIndex, Observed,
    ObservedContainer, Role, Scope, TaskKey,
};
use drover_spec::Host;
use futures::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::glance::{glances, Glance};
use crate::pool::Pool;
use crate::samples::History;
use crate::source::FleetSource;
use drover_fleet::task_status;

/// How long the watchers keep running after the last viewer left (a page
/// reload must not cost a full re-read).
pub const LINGER: Duration = Duration::from_secs(10);
/// Events are gathered this long before the containers they name are inspected.
const SETTLE: Duration = Duration::from_millis(100);
/// Views are built at most this often.
const COALESCE: Duration = Duration::from_millis(150);
/// Usage is sampled this often (more slowly on hosts with many containers).
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// The host's tags are listed again this often (and after creates).
const IMAGES_EVERY: Duration = Duration::from_secs(60);
/// Time the engine gets to register a new event subscription before the
/// read that it must not miss anything after.
const SUBSCRIBE_GRACE: Duration = Duration::from_millis(50);
/// Inspects and usage reads in flight at once per host.
const CONCURRENCY: usize = 8;
/// Recent events kept per job.
const ACTIVITY: usize = 50;

/// The view as every viewer gets it.
#[derive(Clone)]
pub struct Snapshot {
    /// Bumped on each build.
    pub version: u64,
    /// [`View`] as JSON, serialized once for every overview.
    pub json: Utf8Bytes,
    pub view: Arc<View>,
}

/// Everything the pages, the topics and `/metrics` show, at one moment.
#[derive(Serialize, Default)]
pub struct View {
    pub env: String,
    pub version: u64,
    pub time: String,
    pub spec_error: Option<String>,
    pub hosts: Vec<HostView>,
    pub jobs: Vec<JobView>,
    pub tasks: Vec<TaskStatus>,
    /// What a task page shows beyond its row, by `(job, host, task)`.
    #[serde(skip)]
    pub details: HashMap<(String, String, u32), TaskDetail>,
}

impl View {
    /// Whether some host has not been read yet.
    pub fn reading(&self) -> bool {
        self.hosts.iter().any(|h| h.link == Link::Connecting)
    }

    pub fn task(&self, job: &str, host: &str, task: u32) -> Option<&TaskStatus> {
        self.tasks
            .iter()
            .find(|t| t.job == job && t.host == host && t.task == Some(task) && t.in_spec)
    }
}

/// A task's page, beyond its row.
#[derive(Serialize, Clone, Default)]
pub struct TaskDetail {
    /// The output of the last health check.
    pub health_output: String,
    /// The container's full ID.
    pub container_id: String,
    /// When its container was created (RFC 3339).
    pub created: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Not asked yet.
    Connecting,
    /// Read, and its events are followed.
    Up,
    /// The event stream dropped: reading again.
    Resyncing,
    Unreachable,
}

#[derive(Serialize, Clone)]
pub struct HostView {
    pub name: String,
    pub address: String,
    #[serde(rename = "state")]
    pub link: Link,
    pub error: Option<String>,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub since: String,
    pub containers: usize,
    pub running: usize,
    pub events: u64,
}

#[derive(Serialize, Clone)]
pub struct JobView {
    pub name: String,
    /// Empty for a job only the hosts still have.
    pub image: String,
    pub hosts: Vec<String>,
    pub instances: u32,
    pub in_spec: bool,
    pub locks: Vec<LockInfo>,
    pub glance: Glance,
}

/// Something an engine said happened to one of a job's containers.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Activity {
    /// RFC 3339.
    pub time: String,
    pub host: String,
    pub task: Option<u32>,
    /// The engine's word: `create`, `start`, `die`, `kill`, `destroy`,
    /// `rename`, `health_status: healthy`…
    pub action: String,
    /// The container's name.
    pub name: String,
    /// `die`: its exit code.
    pub exit_code: Option<i64>,
    /// `lock`, `stopped` (drover's markers), or `task`.
    pub what: &'static str,
}

/// What the glances were planned from: the state's version, the files'
/// generation, and whether they load.
type GlanceKey = (u64, u64, Option<String>);
/// Every job's rendered tasks, or why they cannot be.
type Desired = Result<Arc<Vec<DesiredTask>>, String>;

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
    /// Bumped whenever a container or a host's tags change (not usage):
    /// the glances are planned again only then.
    state: AtomicU64,
    glance_cache: Mutex<Option<(GlanceKey, BTreeMap<String, Glance>)>>,
    desired_cache: Mutex<Option<(u64, Desired)>>,
    activity: Mutex<BTreeMap<String, VecDeque<Activity>>>,
    history: History,
    /// `/metrics` keeps the watchers running until then.
    lease_until: Mutex<Option<Instant>>,
    /// Event subscriptions opened, over the hub's life (for tests).
    subscriptions: AtomicU64,
}

/// A viewer of the view; the watchers run while any is alive.
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

struct HostLive {
    link: Link,
    error: Option<String>,
    version: Option<String>,
    api_version: Option<String>,
    /// When `link` last changed.
    since: String,
    containers: BTreeMap<String, ObservedContainer>,
    /// The host's tags, as `observe` reads them.
    images: ImageIndex,
    /// Images inspected for containers that came after the last read.
    image_details: BTreeMap<String, ImageDetails>,
    /// The exit code of each container's last `die`: a running container
    /// that restarted has none in `inspect`.
    dies: BTreeMap<String, i64>,
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
            images: ImageIndex::default(),
            image_details: BTreeMap::new(),
            dies: BTreeMap::new(),
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

    fn forget(&mut self, id: &str) {
        self.containers.remove(id);
        self.samples.remove(id);
        self.usage.remove(id);
        self.dies.remove(id);
    }

    /// What `drover adopt` recorded container `id` as: the adoption known
    /// of it, else what an adoption record of the host names it (a few
    /// records per host, one per adopted job).
    fn adoption_of(&self, env: &str, id: &str) -> Option<Adoption> {
        if let Some(known) = self.containers.get(id).and_then(|c| c.adopted.clone()) {
            return Some(known);
        }
        self.containers
            .values()
            .filter(|c| c.label(labels::ROLE) == Some(drover_plan::ROLE_ADOPTED))
            .flat_map(|record| Adoption::from_record(env, &record.labels))
            .find(|(named, _)| named == id)
            .map(|(_, adoption)| adoption)
    }

    /// Gives a freshly inspected container what `observe` would: its
    /// image's own settings (from a container of the same image, or the
    /// image inspected) and the last exit code of a restarted one.
    fn complete(&self, c: &mut ObservedContainer) -> bool {
        if let Some(details) = self.image_details.get(&c.image_id) {
            drover_engine::with_image(c, details);
        } else if let Some(donor) = self.containers.values().find(|d| d.image_id == c.image_id) {
            c.image_env.clone_from(&donor.image_env);
            c.image_cmd.clone_from(&donor.image_cmd);
            c.image_defaults.clone_from(&donor.image_defaults);
        } else {
            return false;
        }
        if c.runs.state.is_up() && c.runs.restarts > 0 && c.runs.exit_code.is_none() {
            c.runs.exit_code = self.dies.get(&c.id).copied();
        }
        true
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
            view: Arc::new(View::default()),
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
            state: AtomicU64::new(0),
            glance_cache: Mutex::new(None),
            desired_cache: Mutex::new(None),
            activity: Mutex::new(BTreeMap::new()),
            history: History::default(),
            lease_until: Mutex::new(None),
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
            // A start after a pause starts from nothing known, and says so
            // at once: the view from before the pause is stale.
            {
                let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
                hosts.clear();
            }
            self.tx.send_replace(self.build());
            let stop = self.shutdown.child_token();
            tokio::spawn(supervise(Arc::clone(self), stop.clone()));
            *running = Some(stop);
        }
        Viewer {
            hub: Arc::clone(self),
            updates: self.tx.subscribe(),
        }
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    /// Keeps the watchers running for at least `time` more (a scraper that
    /// comes back every few seconds keeps them warm); returns the view,
    /// waiting up to `wait` for every host to be read if nobody watched.
    pub async fn lease(self: &Arc<Self>, time: Duration, wait: Duration) -> Snapshot {
        let until = Instant::now() + time;
        let holder = {
            let mut lease = self.lease_until.lock().unwrap_or_else(|e| e.into_inner());
            let start = lease.is_none();
            *lease = Some(lease.map_or(until, |u| u.max(until)));
            start
        };
        let mut viewer = self.subscribe();
        if holder {
            let hub = Arc::clone(self);
            let held = self.subscribe();
            tokio::spawn(async move {
                loop {
                    let due = {
                        let mut lease = hub.lease_until.lock().unwrap_or_else(|e| e.into_inner());
                        match *lease {
                            Some(until) if until > Instant::now() => Some(until),
                            _ => {
                                *lease = None;
                                None
                            }
                        }
                    };
                    let Some(due) = due else { break };
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = hub.shutdown.cancelled() => break,
                    }
                }
                drop(held);
            });
        }
        let deadline = Instant::now() + wait;
        loop {
            let snapshot = viewer.updates.borrow_and_update().clone();
            if !snapshot.view.reading() || Instant::now() >= deadline {
                return snapshot;
            }
            tokio::select! {
                changed = viewer.updates.changed() => if changed.is_err() { return snapshot },
                () = tokio::time::sleep_until(deadline) => return snapshot,
            }
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

    /// The usage history of the tasks (the task page's charts).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// What the engines said happened to `job`'s containers lately, oldest first.
    pub fn activity(&self, job: &str) -> Vec<Activity> {
        let activity = self.activity.lock().unwrap_or_else(|e| e.into_inner());
        activity
            .get(job)
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
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

    /// Something shown changed.
    fn changed(&self) {
        self.dirty.notify_one();
    }

    /// A container or a host's tags changed: the glances are planned again.
    fn state_changed(&self) {
        self.state.fetch_add(1, Ordering::SeqCst);
        self.dirty.notify_one();
    }

    /// Keeps `event` in its job's activity; an adopted container's job and
    /// task are its `adoption`'s.
    fn remember(&self, event: &EngineEvent, adoption: Option<&Adoption>) {
        let key = adoption.map(|a| &a.key);
        let Some(job) = event.labels.get(labels::JOB).or(key.map(|k| &k.job)) else {
            return;
        };
        if !matters(&event.action) {
            return;
        }
        let what = match event.labels.get(labels::ROLE).map(String::as_str) {
            Some(drover_plan::ROLE_LOCK) => "lock",
            Some(drover_plan::ROLE_STOPPED) => "stopped",
            _ => "task",
        };
        let entry = Activity {
            time: drover_plan::time::from_unix_nanos(event.time_nano)
                .map(drover_plan::time::format)
                .unwrap_or_else(crate::now),
            host: event
                .labels
                .get(labels::HOST)
                .or(key.map(|k| &k.host))
                .cloned()
                .unwrap_or_default(),
            task: match event.labels.get(labels::TASK) {
                Some(task) => task.parse().ok(),
                None => key.map(|k| k.task),
            },
            action: event.action.clone(),
            name: event.labels.get("name").cloned().unwrap_or_default(),
            exit_code: event.labels.get("exitCode").and_then(|c| c.parse().ok()),
            what,
        };
        let mut activity = self.activity.lock().unwrap_or_else(|e| e.into_inner());
        let recent = activity.entry(job.clone()).or_default();
        if recent.len() >= ACTIVITY {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    /// Every job's rendered tasks, once per version of the files.
    fn desired(&self, fleet: &drover_fleet::Fleet) -> Desired {
        let generation = self.source.generation();
        let mut cache = self.desired_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, desired)) = cache.as_ref() {
            if *at == generation {
                return desired.clone();
            }
        }
        let jobs: Vec<&drover_spec::Job> = fleet.env.jobs.values().collect();
        let desired = fleet
            .secrets(&jobs)
            .and_then(|secrets| fleet.desired(&jobs, &secrets))
            .map(Arc::new)
            .map_err(|e| e.to_string());
        *cache = Some((generation, desired.clone()));
        desired
    }

    /// The view now, from what the watchers hold.
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
                    images: live.images.clone(),
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
        let rows = status_rows(&env, &keys, &observed, &Scope::All, &known);
        let mut details = HashMap::new();
        let tasks: Vec<TaskStatus> = rows
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
                if let (Some(c), Some(task), true) = (row.container, row.task, row.in_spec) {
                    details.insert(
                        (row.job.clone(), row.host.clone(), task),
                        TaskDetail {
                            health_output: c.runs.health_output.clone(),
                            container_id: c.id.clone(),
                            created: c.created.map(drover_plan::time::format),
                        },
                    );
                }
                status
            })
            .collect();
        let held = locks(&observed, &env, &known);
        let glance = self.glance(&fleet, &observed, &connecting, &held);
        let mut jobs_view: Vec<JobView> = fleet
            .env
            .jobs
            .values()
            .map(|job| JobView {
                name: job.name.clone(),
                image: job.image.to_string(),
                hosts: job.hosts.clone(),
                instances: job.instances,
                in_spec: true,
                locks: held.get(&job.name).cloned().unwrap_or_default(),
                glance: glance.get(&job.name).cloned().unwrap_or_default(),
            })
            .collect();
        // Jobs only the hosts still have (`up` removes them): shown too.
        let leftovers: BTreeSet<&str> = tasks
            .iter()
            .map(|t| t.job.as_str())
            .filter(|j| !fleet.env.jobs.contains_key(*j))
            .collect();
        for job in leftovers {
            jobs_view.push(JobView {
                name: job.to_string(),
                image: String::new(),
                hosts: Vec::new(),
                instances: 0,
                in_spec: false,
                locks: held.get(job).cloned().unwrap_or_default(),
                glance: glance.get(job).cloned().unwrap_or_default(),
            });
        }
        // Charts of tasks that are gone go too.
        if connecting.is_empty() {
            let present: BTreeSet<(&str, &str, u32)> = tasks
                .iter()
                .filter_map(|t| t.task.map(|n| (t.job.as_str(), t.host.as_str(), n)))
                .collect();
            self.history
                .retain(|k| present.contains(&(k.job.as_str(), k.host.as_str(), k.task)));
        }
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        let view = View {
            env,
            version,
            time: crate::now(),
            spec_error: self.source.error(),
            hosts: hosts_view,
            jobs: jobs_view,
            tasks,
            details,
        };
        let json = serde_json::to_string(&view).unwrap_or_else(|e| {
            format!("{{\"error\":{}}}", serde_json::Value::String(e.to_string()))
        });
        Snapshot {
            version,
            json: Utf8Bytes::from(json),
            view: Arc::new(view),
        }
    }

    /// Each job's glance, planned again only when what runs or the files changed.
    fn glance(
        &self,
        fleet: &drover_fleet::Fleet,
        observed: &Observed,
        connecting: &BTreeSet<String>,
        held: &BTreeMap<String, Vec<LockInfo>>,
    ) -> BTreeMap<String, Glance> {
        let key = (
            self.state.load(Ordering::SeqCst),
            self.source.generation(),
            self.source.error(),
        );
        {
            let cache = self.glance_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, glance)) = cache.as_ref() {
                if *at == key {
                    return glance.clone();
                }
            }
        }
        let desired = self.desired(fleet);
        let jobs: BTreeMap<String, Vec<String>> = fleet
            .env
            .jobs
            .values()
            .map(|j| (j.name.clone(), j.hosts.clone()))
            .collect();
        let glance = glances(
            &fleet.env.name,
            &jobs,
            desired
                .as_ref()
                .map(|d| d.as_slice())
                .map_err(String::as_str),
            observed,
            connecting,
            &fleet.known_hosts(),
            held,
        );
        let mut cache = self.glance_cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = Some((key, glance.clone()));
        glance
    }
}

/// Runs the watchers of the environment's hosts until `stop`, following
/// the files: a host added to drover.toml gets a watcher, a removed one
/// loses it, one given another address or certificates starts over.
async fn supervise(hub: Arc<Hub>, stop: CancellationToken) {
    let publisher = tokio::spawn(publish(Arc::clone(&hub), stop.clone()));
    let mut watchers: BTreeMap<String, (Host, CancellationToken)> = BTreeMap::new();
    let mut seen = (u64::MAX, None);
    loop {
        let fleet = hub.source.current();
        let now = (hub.source.generation(), hub.source.error());
        if now != seen {
            seen = now;
            let wanted: BTreeMap<String, Host> = fleet
                .hosts()
                .into_iter()
                .filter_map(|h| fleet.env.hosts.get(&h).map(|e| (h, e.clone())))
                .collect();
            watchers.retain(|host, (entry, token)| {
                let keep = wanted.get(host) == Some(entry);
                if !keep {
                    token.cancel();
                    let mut hosts = hub.hosts.lock().unwrap_or_else(|e| e.into_inner());
                    hosts.remove(host);
                }
                keep
            });
            for (host, entry) in wanted {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    watchers.entry(host.clone())
                {
                    let token = stop.child_token();
                    tokio::spawn(watch_host(Arc::clone(&hub), host, token.clone()));
                    slot.insert((entry, token));
                }
            }
            hub.state_changed();
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    for (_, token) in watchers.values() {
        token.cancel();
    }
    let _ = publisher.await;
}

/// Builds a view whenever something changed, at most every [`COALESCE`].
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

/// One host: connect, subscribe, observe, then follow events; on any
/// break, start over (backing off while the host is unreachable).
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
                hub.state_changed();
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
        // Subscribe before reading, so nothing that happens in between is missed.
        let (events_tx, mut events) = mpsc::channel(256);
        let (sent, subscribed) = tokio::sync::oneshot::channel();
        let forward = tokio::spawn(forward_events(engine.events(&env), events_tx, sent));
        hub.subscriptions.fetch_add(1, Ordering::SeqCst);
        // The engine has no "since" for a stream opened through drover's
        // engine API, so the read waits until the subscription is on its way.
        let _ = tokio::time::timeout(Duration::from_secs(5), subscribed).await;
        tokio::time::sleep(SUBSCRIBE_GRACE).await;
        match drover_engine::observe(engine.as_ref(), &env, &Scope::All).await {
            Ok(state) => {
                let mut live = lock(&live);
                live.containers = state
                    .containers
                    .into_iter()
                    .map(|c| (c.id.clone(), c))
                    .collect();
                live.images = state.images;
                live.image_details.clear();
                let ids: BTreeSet<String> = live.containers.keys().cloned().collect();
                live.dies.retain(|id, _| ids.contains(id));
                live.set_link(Link::Up, None);
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                forward.abort();
                hub.pool.failed(&host, &e);
                lock(&live).set_link(Link::Unreachable, Some(reason(&e)));
                hub.state_changed();
                if pause(&stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        }
        hub.state_changed();
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
                hub.state_changed();
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

/// Whether an event can change what the view shows. Health checks run
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
/// container, inspected once the burst it came in has settled; after
/// creates (and every [`IMAGES_EVERY`]) the host's tags are listed again.
async fn follow(
    hub: &Hub,
    engine: &dyn Engine,
    live: &Mutex<HostLive>,
    events: &mut mpsc::Receiver<Result<EngineEvent, EngineError>>,
    stop: &CancellationToken,
) -> Ended {
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut due: Option<Instant> = None;
    let mut images_due = Instant::now() + IMAGES_EVERY;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            event = events.recv() => match event {
                Some(Ok(event)) => {
                    let mut l = lock(live);
                    let adoption = match event.labels.get(labels::ENV) {
                        Some(_) => None,
                        None => l.adoption_of(&hub.source.current().env.name, &event.container),
                    };
                    hub.remember(&event, adoption.as_ref());
                    l.events += 1;
                    if event.action == "die" {
                        if let Some(code) = event.labels.get("exitCode").and_then(|c| c.parse().ok()) {
                            l.dies.insert(event.container.clone(), code);
                        }
                    }
                    if event.action == "destroy" {
                        l.forget(&event.container);
                        pending.remove(&event.container);
                        drop(l);
                        hub.state_changed();
                    } else if matters(&event.action) && !event.container.is_empty() {
                        drop(l);
                        if event.action == "create" {
                            images_due = images_due.min(Instant::now() + Duration::from_secs(1));
                        }
                        pending.insert(event.container);
                        due.get_or_insert_with(|| Instant::now() + SETTLE);
                    }
                }
                Some(Err(e)) => return Ended::Dropped(Some(e)),
                None => return Ended::Dropped(None),
            },
            () = tokio::time::sleep_until(images_due) => {
                images_due = Instant::now() + IMAGES_EVERY;
                match engine.list_images().await {
                    Ok(images) => {
                        let mut index = ImageIndex::default();
                        for image in &images {
                            index.add(&image.id, &image.repo_tags, &image.repo_digests);
                        }
                        let mut l = lock(live);
                        let same = l.images.tags == index.tags
                            && l.images.digests == index.digests
                            && l.images.ids == index.ids;
                        if !same {
                            l.images = index;
                            drop(l);
                            hub.state_changed();
                        }
                    }
                    Err(e) if e.is_unreachable() => return Ended::Dropped(Some(e)),
                    Err(_) => {}
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                due = None;
                let ids: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
                let mut found: Vec<(String, Result<Option<ObservedContainer>, EngineError>)> =
                    stream::iter(ids)
                        .map(|id| async move {
                            let c = engine.inspect_container(&id).await;
                            (id, c)
                        })
                        .buffer_unordered(CONCURRENCY)
                        .collect()
                        .await;
                // Adoption records first: `drover adopt` writes one, then
                // renames the containers it names, often in one burst.
                found.sort_by_key(|(_, c)| {
                    !matches!(c, Ok(Some(c)) if c.label(labels::ROLE) == Some(drover_plan::ROLE_ADOPTED))
                });
                let env = hub.source.current().env.name.clone();
                let mut failure = None;
                for (id, result) in found {
                    match result {
                        Ok(Some(mut c)) => {
                            // A container `drover adopt` took over carries no
                            // label: it is the task its record names, and one
                            // no record names is no container of this
                            // environment (`observe` reads none such either).
                            if c.label(labels::ENV).is_none() {
                                let adoption = lock(live).adoption_of(&env, &id);
                                match adoption {
                                    Some(adoption) => c.adopt(adoption),
                                    None => {
                                        lock(live).forget(&id);
                                        continue;
                                    }
                                }
                            }
                            if !lock(live).complete(&mut c) {
                                // A new image: read what it sets, once.
                                match engine.inspect_image(&c.image_id).await {
                                    Ok(Some(details)) => {
                                        let mut l = lock(live);
                                        l.image_details.insert(c.image_id.clone(), details);
                                        l.complete(&mut c);
                                    }
                                    Err(e) if e.is_unreachable() => failure = Some(e),
                                    _ => {}
                                }
                            }
                            let mut l = lock(live);
                            if !c.is_running() {
                                l.usage.remove(&id);
                                l.samples.remove(&id);
                            }
                            l.containers.insert(id, c);
                        }
                        Ok(None) => lock(live).forget(&id),
                        Err(e) if e.is_unreachable() => failure = Some(e),
                        Err(_) => {}
                    }
                }
                // Images no container runs any more are not kept.
                {
                    let mut l = lock(live);
                    let used: BTreeSet<String> =
                        l.containers.values().map(|c| c.image_id.clone()).collect();
                    l.image_details.retain(|id, _| used.contains(id));
                }
                hub.state_changed();
                if let Some(e) = failure {
                    return Ended::Dropped(Some(e));
                }
            }
        }
    }
}

/// Samples the memory and CPU of a host's running containers, every
/// [`SAMPLE_EVERY`] (or 20 ms per container, on a host with many), into
/// the view and the tasks' histories.
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
        // Nothing read yet: look again soon, so usage shows with the first rows.
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
                let env = hub.source.current().env.name.clone();
                let unix = drover_plan::time::unix_secs(drover_plan::time::now());
                let unix = u64::try_from(unix).unwrap_or(0);
                let mut live = lock(&live);
                for (id, result) in read {
                    let Ok(now) = result else { continue };
                    let Some(c) = live.containers.get(&id).filter(|c| c.is_running()) else {
                        continue;
                    };
                    let task: Option<TaskKey> = match c.role(&env) {
                        Role::Current(key) | Role::Stray(key) => Some(key),
                        _ => None,
                    };
                    let before = live.samples.get(&id).copied();
                    let cpu = before.map_or(0.0, |before| {
                        (now.cpu_percent_since(&before) * 100.0).round() / 100.0
                    });
                    if let (Some(task), Some(_)) = (&task, before) {
                        hub.history.record(task, unix, now.memory_bytes, cpu);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_do_not_count_as_changes() {
        assert!(!matters("exec_start: /bin/sh -c true"));
        assert!(!matters("exec_die"));
        assert!(matters("die"));
        assert!(matters("update"));
        assert!(matters("health_status: unhealthy"));
    }
}
