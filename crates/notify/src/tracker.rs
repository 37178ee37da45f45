//! One message per incident, not per event.
//!
//! A crash-looping task makes the engine emit an exit and a start every few
//! seconds; a team wants one message when it starts looping and one when it
//! is fine again. The [`Tracker`] takes what `drover watch` sees as plain
//! [`Fact`]s, each with the time it was seen (the clock is passed in: no I/O,
//! no timers), and returns the [`Event`]s worth posting.
//!
//! Each subject has *slots* that are open (an incident) or closed: a task's
//! health (exited, crash loop, memory kill, unhealthy) and its drift; a
//! host's reachability and its disk. A slot opening posts its event once;
//! whatever else happens while it is open is part of the same incident; it
//! closes with one `task.recovered` / `host.recovered`.
//!
//! A flapping subject would still open and close slots without end, so
//! messages are rate-limited per job (per host for host incidents): at most
//! [`Rules::rate_max`] in any [`Rules::rate_window`]. Messages beyond that
//! are held back, and when the window has room again one summary says how
//! many were held and how things stand now — after it, what the team was
//! last told matches the truth again.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use drover_plan::TaskKey;

use crate::event::{about, args, one_line, Event, EventKind, SUMMARY_LIMIT};

/// The thresholds of the incident rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Exits the engine restarts, within [`Rules::crash_loop_window`], that
    /// make a crash loop.
    pub crash_loop_exits: usize,
    pub crash_loop_window: Duration,
    /// A task that exited is fine again once it has run this long (and no
    /// health check says otherwise).
    pub stable_after: Duration,
    /// `disk.low` when the data root's space or inodes reach this percentage…
    pub disk_low_percent: f64,
    /// …and recovered once both are below this one (a margin, so a disk
    /// hovering at the threshold does not flap).
    pub disk_fine_percent: f64,
    /// At most this many messages per job (or host)…
    pub rate_max: usize,
    /// …in any window this long.
    pub rate_window: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            crash_loop_exits: 3,
            crash_loop_window: Duration::from_secs(5 * 60),
            stable_after: Duration::from_secs(60),
            disk_low_percent: 90.0,
            disk_fine_percent: 85.0,
            rate_max: 5,
            rate_window: Duration::from_secs(15 * 60),
        }
    }
}

/// Something `drover watch` saw. Exits and stops drover made itself (a
/// rollout, `drover stop`) are not facts: the watcher leaves them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// The task's container exited. `restarting`: the engine's restart
    /// policy is starting it again (its state after the exit).
    TaskExited {
        task: TaskKey,
        exit_code: i64,
        oom_killed: bool,
        restarting: bool,
    },
    /// The task's container (re)started, or was seen running.
    TaskRunning {
        task: TaskKey,
    },
    /// The engine's health check passed or failed; `output` is the last
    /// check's output.
    TaskHealth {
        task: TaskKey,
        healthy: bool,
        output: String,
    },
    /// A diff of the task found it changed, stopped or removed by hand;
    /// `what` says how, in a few words.
    TaskDrift {
        task: TaskKey,
        what: String,
    },
    /// A diff of the task found nothing to change.
    TaskInSync {
        task: TaskKey,
    },
    /// The task is no longer wanted (its job removed, fewer instances,
    /// stopped by drover): forget it without a message.
    TaskGone {
        task: TaskKey,
    },
    HostUnreachable {
        host: String,
        reason: String,
    },
    HostReachable {
        host: String,
    },
    /// Use of the engine's data root, in percent.
    Disk {
        host: String,
        space_percent: f64,
        inodes_percent: f64,
    },
    /// The newest tag of a job's repository, newer than what it runs.
    ImageAvailable {
        job: String,
        image: String,
    },
}

/// The incident state of every subject seen so far.
#[derive(Debug, Default)]
pub struct Tracker {
    rules: Rules,
    tasks: BTreeMap<TaskKey, TaskState>,
    hosts: BTreeMap<String, HostState>,
    /// The last image announced per job.
    images: BTreeMap<String, String>,
    limits: BTreeMap<RateKey, Limit>,
}

#[derive(Debug, Default)]
struct TaskState {
    /// Exits the engine restarted, within the crash-loop window.
    restarts: VecDeque<SystemTime>,
    /// Up since then, without an exit.
    running_since: Option<SystemTime>,
    /// The last health check's verdict since the last start.
    healthy: Option<bool>,
    health: Slot,
    drift: Slot,
}

#[derive(Debug, Default)]
struct HostState {
    reach: Slot,
    disk: Slot,
}

#[derive(Debug, Default)]
struct Slot {
    open: Option<Open>,
    /// Whether the team was last told this slot is open.
    announced: bool,
}

#[derive(Debug, Clone)]
struct Open {
    kind: EventKind,
    since: SystemTime,
}

/// One of the slots, by name.
#[derive(Debug, Clone)]
enum SlotId {
    Health(TaskKey),
    Drift(TaskKey),
    Reach(String),
    Disk(String),
}

impl SlotId {
    fn rate_key(&self) -> RateKey {
        match self {
            SlotId::Health(task) | SlotId::Drift(task) => RateKey::Job(task.job.clone()),
            SlotId::Reach(host) | SlotId::Disk(host) => RateKey::Host(host.clone()),
        }
    }
}

/// What messages are counted against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RateKey {
    Job(String),
    Host(String),
}

#[derive(Debug, Default)]
struct Limit {
    /// When messages were posted, within the last window.
    sent: VecDeque<SystemTime>,
    /// Messages held back since the window filled.
    held: u32,
    held_since: Option<SystemTime>,
}

/// `now - then`, or zero for a clock that went back.
fn since(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

impl Tracker {
    pub fn new(rules: Rules) -> Tracker {
        Tracker {
            rules,
            ..Tracker::default()
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Takes in one fact seen at `now`; returns what to post.
    pub fn observe(&mut self, now: SystemTime, fact: Fact) -> Vec<Event> {
        let mut out = Vec::new();
        self.summaries(now, &mut out);
        match fact {
            Fact::TaskExited {
                task,
                exit_code,
                oom_killed,
                restarting,
            } => self.exited(now, task, exit_code, oom_killed, restarting, &mut out),
            Fact::TaskRunning { task } => {
                let state = self.tasks.entry(task.clone()).or_default();
                state.running_since.get_or_insert(now);
                self.settle(now, &task, &mut out);
            }
            Fact::TaskHealth {
                task,
                healthy,
                output,
            } => self.health(now, task, healthy, &output, &mut out),
            Fact::TaskDrift { task, what } => {
                let state = self.tasks.entry(task.clone()).or_default();
                if state.drift.open.is_none() {
                    state.drift.open = Some(Open {
                        kind: EventKind::DriftDetected,
                        since: now,
                    });
                    let summary = format!(
                        "{task} no longer matches the spec: {}",
                        one_line(&what, SUMMARY_LIMIT)
                    );
                    let next = args(&["diff", &task.job]);
                    let event =
                        Event::task(EventKind::DriftDetected, &task, now, summary, Some(next));
                    self.say(now, SlotId::Drift(task), event, &mut out);
                }
            }
            Fact::TaskInSync { task } => {
                if let Some(state) = self.tasks.get_mut(&task) {
                    if state.drift.open.take().is_some() {
                        let summary = format!("{task} matches the spec again");
                        let event =
                            Event::task(EventKind::TaskRecovered, &task, now, summary, None);
                        self.say(now, SlotId::Drift(task), event, &mut out);
                    }
                }
            }
            Fact::TaskGone { task } => {
                self.tasks.remove(&task);
            }
            Fact::HostUnreachable { host, reason } => {
                let state = self.hosts.entry(host.clone()).or_default();
                if state.reach.open.is_none() {
                    state.reach.open = Some(Open {
                        kind: EventKind::HostUnreachable,
                        since: now,
                    });
                    let summary = format!(
                        "host {host} is unreachable: {}",
                        one_line(&reason, SUMMARY_LIMIT)
                    );
                    let next = args(&["doctor", "--host", &host]);
                    let event =
                        Event::host(EventKind::HostUnreachable, &host, now, summary, Some(next));
                    self.say(now, SlotId::Reach(host), event, &mut out);
                }
            }
            Fact::HostReachable { host } => {
                if let Some(state) = self.hosts.get_mut(&host) {
                    if let Some(open) = state.reach.open.take() {
                        let summary = format!(
                            "host {host} is reachable again after {}",
                            about(since(now, open.since))
                        );
                        let next = args(&["status", "--host", &host]);
                        let event =
                            Event::host(EventKind::HostRecovered, &host, now, summary, Some(next));
                        self.say(now, SlotId::Reach(host), event, &mut out);
                    }
                }
            }
            Fact::Disk {
                host,
                space_percent,
                inodes_percent,
            } => self.disk(now, host, space_percent, inodes_percent, &mut out),
            Fact::ImageAvailable { job, image } => {
                if self.images.get(&job) != Some(&image) {
                    let summary = format!("{job}: a new image is available: {image}");
                    let next = args(&["update", &job, "--image", &image]);
                    out.push(Event {
                        kind: EventKind::ImageAvailable,
                        job: Some(job.clone()),
                        host: None,
                        task: None,
                        time: now,
                        summary,
                        next: Some(next),
                        commit: None,
                    });
                    self.images.insert(job, image);
                }
            }
        }
        out
    }

    /// What time alone brings: recoveries of tasks that have now run long
    /// enough, and summaries whose window has room. Call it every second or so.
    pub fn tick(&mut self, now: SystemTime) -> Vec<Event> {
        let mut out = Vec::new();
        self.summaries(now, &mut out);
        let open: Vec<TaskKey> = self
            .tasks
            .iter()
            .filter(|(_, state)| state.health.open.is_some())
            .map(|(task, _)| task.clone())
            .collect();
        for task in open {
            self.settle(now, &task, &mut out);
        }
        out
    }

    fn exited(
        &mut self,
        now: SystemTime,
        task: TaskKey,
        exit_code: i64,
        oom_killed: bool,
        restarting: bool,
        out: &mut Vec<Event>,
    ) {
        let window = self.rules.crash_loop_window;
        let loop_exits = self.rules.crash_loop_exits;
        let state = self.tasks.entry(task.clone()).or_default();
        state.running_since = None;
        state.healthy = None;
        if restarting {
            state.restarts.push_back(now);
        }
        while state
            .restarts
            .front()
            .is_some_and(|&t| since(now, t) > window)
        {
            state.restarts.pop_front();
        }
        if state.health.open.is_some() {
            return;
        }
        let logs = Some(args(&[
            "logs",
            &task.job,
            "--task",
            &format!("{}/{}", task.host, task.task),
        ]));
        let (kind, summary) = if oom_killed {
            let after = if restarting {
                "the engine restarts it"
            } else {
                "it is not running"
            };
            (
                EventKind::TaskOomKilled,
                format!("{task} ran out of memory and was killed (exit code {exit_code}); {after}"),
            )
        } else if !restarting {
            (
                EventKind::TaskExited,
                format!("{task} exited with code {exit_code} and is not running"),
            )
        } else if state.restarts.len() >= loop_exits {
            let span = state
                .restarts
                .front()
                .map_or(Duration::ZERO, |&t| since(now, t));
            (
                EventKind::TaskCrashLoop,
                format!(
                    "{task} is crash-looping: {} exits in {}, the last with code {exit_code}",
                    state.restarts.len(),
                    about(span)
                ),
            )
        } else {
            return;
        };
        state.health.open = Some(Open { kind, since: now });
        let event = Event::task(kind, &task, now, summary, logs);
        self.say(now, SlotId::Health(task), event, out);
    }

    fn health(
        &mut self,
        now: SystemTime,
        task: TaskKey,
        healthy: bool,
        output: &str,
        out: &mut Vec<Event>,
    ) {
        let state = self.tasks.entry(task.clone()).or_default();
        // A health check runs only in a running container.
        state.running_since.get_or_insert(now);
        state.healthy = Some(healthy);
        if !healthy && state.health.open.is_none() {
            state.health.open = Some(Open {
                kind: EventKind::TaskUnhealthy,
                since: now,
            });
            let output = one_line(output, SUMMARY_LIMIT);
            let summary = if output.is_empty() {
                format!("{task} is unhealthy")
            } else {
                format!("{task} is unhealthy: {output}")
            };
            let next = args(&[
                "logs",
                &task.job,
                "--task",
                &format!("{}/{}", task.host, task.task),
            ]);
            let event = Event::task(EventKind::TaskUnhealthy, &task, now, summary, Some(next));
            self.say(now, SlotId::Health(task.clone()), event, out);
        }
        self.settle(now, &task, out);
    }

    /// Closes the task's health incident if it is over: the task has run
    /// long enough with no failing check, or — for an unhealthy task that
    /// has not restarted since — its check passes again.
    fn settle(&mut self, now: SystemTime, task: &TaskKey, out: &mut Vec<Event>) {
        let stable_after = self.rules.stable_after;
        let Some(state) = self.tasks.get_mut(task) else {
            return;
        };
        let (Some(open), Some(running_since)) = (&state.health.open, state.running_since) else {
            return;
        };
        let stable = since(now, running_since) >= stable_after && state.healthy != Some(false);
        let healthy_again = open.kind == EventKind::TaskUnhealthy
            && state.healthy == Some(true)
            && running_since <= open.since;
        if !(stable || healthy_again) {
            return;
        }
        let summary = if open.kind == EventKind::TaskUnhealthy {
            format!(
                "{task} is healthy again after {}",
                about(since(now, open.since))
            )
        } else {
            format!(
                "{task} is running again after {}",
                about(since(now, open.since))
            )
        };
        state.health.open = None;
        state.restarts.clear();
        let next = args(&["status", &task.job]);
        let event = Event::task(EventKind::TaskRecovered, task, now, summary, Some(next));
        self.say(now, SlotId::Health(task.clone()), event, out);
    }

    fn disk(
        &mut self,
        now: SystemTime,
        host: String,
        space: f64,
        inodes: f64,
        out: &mut Vec<Event>,
    ) {
        let (low, fine) = (self.rules.disk_low_percent, self.rules.disk_fine_percent);
        let state = self.hosts.entry(host.clone()).or_default();
        let usage = format!("data root {space:.0}% full, {inodes:.0}% of inodes used");
        if state.disk.open.is_none() && (space >= low || inodes >= low) {
            state.disk.open = Some(Open {
                kind: EventKind::DiskLow,
                since: now,
            });
            let summary = format!("host {host}'s disk is low: {usage}");
            let next = args(&["gc", "--dry-run", "--host", &host]);
            let event = Event::host(EventKind::DiskLow, &host, now, summary, Some(next));
            self.say(now, SlotId::Disk(host), event, out);
        } else if state.disk.open.is_some() && space < fine && inodes < fine {
            state.disk.open = None;
            let summary = format!("host {host}'s disk is fine again: {usage}");
            let event = Event::host(EventKind::HostRecovered, &host, now, summary, None);
            self.say(now, SlotId::Disk(host), event, out);
        }
    }

    fn slot_mut(&mut self, id: &SlotId) -> Option<&mut Slot> {
        match id {
            SlotId::Health(task) => self.tasks.get_mut(task).map(|s| &mut s.health),
            SlotId::Drift(task) => self.tasks.get_mut(task).map(|s| &mut s.drift),
            SlotId::Reach(host) => self.hosts.get_mut(host).map(|s| &mut s.reach),
            SlotId::Disk(host) => self.hosts.get_mut(host).map(|s| &mut s.disk),
        }
    }

    /// A slot just opened or closed: post `event`, or hold it back when its
    /// job (or host) has had its share of messages.
    fn say(&mut self, now: SystemTime, id: SlotId, event: Event, out: &mut Vec<Event>) {
        let (max, window) = (self.rules.rate_max, self.rules.rate_window);
        let Some(slot) = self.slot_mut(&id) else {
            return;
        };
        let open = slot.open.is_some();
        let unchanged = slot.announced == open;
        let limit = self.limits.entry(id.rate_key()).or_default();
        if limit.room(now, max, window) {
            // Never tell the team what it was last told.
            if unchanged {
                return;
            }
            limit.sent.push_back(now);
            out.push(event);
            if let Some(slot) = self.slot_mut(&id) {
                slot.announced = open;
            }
        } else {
            limit.held += 1;
            limit.held_since.get_or_insert(now);
        }
    }

    /// One summary for each job or host whose held-back messages can now go.
    fn summaries(&mut self, now: SystemTime, out: &mut Vec<Event>) {
        let (max, window) = (self.rules.rate_max, self.rules.rate_window);
        let due: Vec<RateKey> = self
            .limits
            .iter_mut()
            .filter(|(_, limit)| limit.held > 0)
            .filter_map(|(key, limit)| {
                limit.prune(now, window);
                (limit.sent.len() < max).then(|| key.clone())
            })
            .collect();
        for key in due {
            let Some(limit) = self.limits.get_mut(&key) else {
                continue;
            };
            let held = std::mem::take(&mut limit.held);
            let held_since = limit.held_since.take().unwrap_or(now);
            limit.sent.push_back(now);
            let event = self.summary(now, &key, held, since(now, held_since));
            out.push(event);
        }
    }

    /// How a flapping job or host stands now; every slot of it is then known
    /// to the team as it is.
    fn summary(&mut self, now: SystemTime, key: &RateKey, held: u32, over: Duration) -> Event {
        let held = format!(
            "{held} more message{} held back over {}",
            if held == 1 { "" } else { "s" },
            about(over)
        );
        match key {
            RateKey::Job(job) => {
                let mut open: Vec<(TaskKey, Open)> = Vec::new();
                for (task, state) in self.tasks.iter_mut().filter(|(t, _)| &t.job == job) {
                    for slot in [&mut state.health, &mut state.drift] {
                        slot.announced = slot.open.is_some();
                        if let Some(o) = &slot.open {
                            open.push((task.clone(), o.clone()));
                        }
                    }
                }
                let now_text = if open.is_empty() {
                    "every task is fine now".to_string()
                } else {
                    let mut states: Vec<String> = open
                        .iter()
                        .take(5)
                        .map(|(t, o)| format!("{}/{} {}", t.host, t.task, state_words(o.kind)))
                        .collect();
                    if open.len() > 5 {
                        states.push(format!("{} more", open.len() - 5));
                    }
                    format!("now {}", states.join(", "))
                };
                let latest = open.iter().max_by_key(|(_, o)| o.since);
                let one_task = open
                    .first()
                    .map(|(t, _)| t)
                    .filter(|first| open.iter().all(|(t, _)| t == *first));
                Event {
                    kind: latest.map_or(EventKind::TaskRecovered, |(_, o)| o.kind),
                    job: Some(job.clone()),
                    host: one_task.map(|t| t.host.clone()),
                    task: one_task.map(|t| t.task),
                    time: now,
                    summary: format!("{job} is flapping: {held}; {now_text}"),
                    next: Some(args(&["status", job])),
                    commit: None,
                }
            }
            RateKey::Host(host) => {
                let mut open: Vec<Open> = Vec::new();
                if let Some(state) = self.hosts.get_mut(host) {
                    for slot in [&mut state.reach, &mut state.disk] {
                        slot.announced = slot.open.is_some();
                        open.extend(slot.open.clone());
                    }
                }
                let now_text = if open.is_empty() {
                    "fine now".to_string()
                } else {
                    let states: Vec<&str> = open.iter().map(|o| state_words(o.kind)).collect();
                    format!("now {}", states.join(", "))
                };
                let latest = open.iter().max_by_key(|o| o.since);
                Event::host(
                    latest.map_or(EventKind::HostRecovered, |o| o.kind),
                    host,
                    now,
                    format!("host {host} is flapping: {held}; {now_text}"),
                    Some(args(&["doctor", "--host", host])),
                )
            }
        }
    }
}

/// An open incident's state, in a few words.
fn state_words(kind: EventKind) -> &'static str {
    match kind {
        EventKind::TaskCrashLoop => "crash-looping",
        EventKind::TaskOomKilled => "killed for memory",
        EventKind::TaskUnhealthy => "unhealthy",
        EventKind::TaskExited => "exited",
        EventKind::DriftDetected => "changed by hand",
        EventKind::HostUnreachable => "unreachable",
        EventKind::DiskLow => "low on disk",
        _ => "fine",
    }
}

impl Limit {
    fn prune(&mut self, now: SystemTime, window: Duration) {
        while self.sent.front().is_some_and(|&t| since(now, t) >= window) {
            self.sent.pop_front();
        }
    }

    /// Whether a message may go now: nothing held back (the summary goes
    /// first) and fewer than `max` in the window.
    fn room(&mut self, now: SystemTime, max: usize, window: Duration) -> bool {
        self.prune(now, window);
        self.held == 0 && self.sent.len() < max
    }
}
