//! The incident rules: one message per incident and one per recovery, the
//! thresholds, the rate limit per job with its summary — rule by rule, then
//! as invariants over random histories.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use drover_notify::{Event, EventKind, Fact, Rules, Tracker};
use drover_plan::TaskKey;
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn web(host: &str, task: u32) -> TaskKey {
    TaskKey::new("web", host, task)
}

/// Feeds facts and ticks, keeping every event in order.
struct Run {
    tracker: Tracker,
    events: Vec<Event>,
}

impl Run {
    fn new() -> Run {
        Run::with(Rules::default())
    }

    fn with(rules: Rules) -> Run {
        Run {
            tracker: Tracker::new(rules),
            events: Vec::new(),
        }
    }

    fn see(&mut self, secs: u64, fact: Fact) -> &mut Self {
        let events = self.tracker.observe(at(secs), fact);
        self.events.extend(events);
        self
    }

    /// Ticks every second from `from` to `to`, inclusive.
    fn tick(&mut self, from: u64, to: u64) -> &mut Self {
        for secs in from..=to {
            let events = self.tracker.tick(at(secs));
            self.events.extend(events);
        }
        self
    }

    /// `(event, message, next command)` of everything so far.
    fn said(&self) -> Vec<(&'static str, String, String)> {
        self.events
            .iter()
            .map(|e| {
                (
                    e.kind.as_str(),
                    e.summary.clone(),
                    e.next.as_ref().map(|n| n.join(" ")).unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn exited(task: TaskKey, exit_code: i64, restarting: bool) -> Fact {
    Fact::TaskExited {
        task,
        exit_code,
        oom_killed: false,
        restarting,
    }
}

fn said(kind: &'static str, message: &str, next: &str) -> (&'static str, String, String) {
    (kind, message.to_string(), next.to_string())
}

#[test]
fn a_crash_loop_of_sixty_restarts_is_one_message_and_one_recovery() {
    let mut run = Run::new();
    run.see(0, Fact::TaskRunning { task: web("a", 0) });
    for n in 0..60 {
        let secs = 1 + n * 2;
        run.see(secs, exited(web("a", 0), 1, true))
            .see(secs + 1, Fact::TaskRunning { task: web("a", 0) })
            .tick(secs, secs + 1);
    }
    // Fixed: the last start (at 120s) stays up.
    run.tick(121, 400);
    assert_eq!(
        run.said(),
        [
            said(
                "task.crash_loop",
                "web a/0 is crash-looping: 3 exits in 4s, the last with code 1",
                "logs web --task a/0"
            ),
            said(
                "task.recovered",
                "web a/0 is running again after 3m",
                "status web"
            ),
        ]
    );
    let loop_event = &run.events[0];
    assert_eq!(
        (
            loop_event.job.as_deref(),
            loop_event.host.as_deref(),
            loop_event.task
        ),
        (Some("web"), Some("a"), Some(0))
    );
    assert_eq!(loop_event.time, at(5));
    assert_eq!(run.events[1].time, at(180), "60s after the last start");
}

#[test]
fn one_or_two_restarts_are_no_incident_nor_are_three_spread_out() {
    let mut run = Run::new();
    run.see(0, exited(web("a", 0), 1, true))
        .see(1, Fact::TaskRunning { task: web("a", 0) })
        .see(100, exited(web("a", 0), 2, true))
        .see(101, Fact::TaskRunning { task: web("a", 0) })
        // The first exit is more than 5 minutes old by now.
        .see(301, exited(web("a", 0), 3, true))
        .see(302, Fact::TaskRunning { task: web("a", 0) })
        .tick(302, 1000);
    assert_eq!(run.said(), []);
}

#[test]
fn an_exit_that_is_not_restarted_is_posted_at_once() {
    let mut run = Run::new();
    run.see(0, Fact::TaskRunning { task: web("b", 1) })
        .see(10, exited(web("b", 1), 0, false))
        .tick(10, 100)
        .see(100, exited(web("b", 1), 0, false))
        // Someone ran `drover start web`.
        .see(200, Fact::TaskRunning { task: web("b", 1) })
        .tick(200, 300);
    assert_eq!(
        run.said(),
        [
            said(
                "task.exited",
                "web b/1 exited with code 0 and is not running",
                "logs web --task b/1"
            ),
            said(
                "task.recovered",
                "web b/1 is running again after 4m",
                "status web"
            ),
        ]
    );
}

#[test]
fn a_memory_kill_is_posted_at_once_and_a_loop_after_it_is_the_same_incident() {
    let mut run = Run::new();
    let oom = |restarting| Fact::TaskExited {
        task: web("a", 0),
        exit_code: 137,
        oom_killed: true,
        restarting,
    };
    run.see(0, oom(true));
    for n in 1..10 {
        run.see(n * 3, Fact::TaskRunning { task: web("a", 0) })
            .see(n * 3 + 1, oom(true));
    }
    run.see(40, Fact::TaskRunning { task: web("a", 0) })
        .tick(40, 100);
    assert_eq!(
        run.said(),
        [
            said(
                "task.oom_killed",
                "web a/0 ran out of memory and was killed (exit code 137); the engine restarts it",
                "logs web --task a/0"
            ),
            said(
                "task.recovered",
                "web a/0 is running again after 2m",
                "status web"
            ),
        ]
    );
}

#[test]
fn an_unhealthy_task_recovers_when_its_check_passes() {
    let mut run = Run::new();
    let health = |healthy, output: &str| Fact::TaskHealth {
        task: web("a", 0),
        healthy,
        output: output.to_string(),
    };
    run.see(0, Fact::TaskRunning { task: web("a", 0) })
        .see(100, health(true, ""))
        .see(
            200,
            health(false, "wget: server returned error: HTTP/1.1 503\nmore"),
        )
        .see(202, health(false, "again"))
        .see(230, health(true, "ok"));
    assert_eq!(
        run.said(),
        [
            said(
                "task.unhealthy",
                "web a/0 is unhealthy: wget: server returned error: HTTP/1.1 503 …",
                "logs web --task a/0"
            ),
            said(
                "task.recovered",
                "web a/0 is healthy again after 30s",
                "status web"
            ),
        ]
    );
}

#[test]
fn an_unhealthy_task_that_restarted_must_also_stay_up() {
    let mut run = Run::new();
    let health = |healthy| Fact::TaskHealth {
        task: web("a", 0),
        healthy,
        output: String::new(),
    };
    run.see(0, health(false))
        .see(10, exited(web("a", 0), 1, true))
        .see(11, Fact::TaskRunning { task: web("a", 0) })
        .see(15, health(true))
        .tick(15, 70);
    assert_eq!(run.said().len(), 1, "not recovered 4s after a restart");
    run.tick(71, 72);
    assert_eq!(
        run.said(),
        [
            said(
                "task.unhealthy",
                "web a/0 is unhealthy",
                "logs web --task a/0"
            ),
            said(
                "task.recovered",
                "web a/0 is healthy again after 71s",
                "status web"
            ),
        ]
    );
}

#[test]
fn drift_is_one_message_until_the_task_matches_again() {
    let mut run = Run::new();
    let drift = |what: &str| Fact::TaskDrift {
        task: web("a", 0),
        what: what.to_string(),
    };
    run.see(0, drift("stopped by hand"))
        .see(5, drift("stopped by hand"))
        .see(9, drift("removed by hand"))
        .see(60, Fact::TaskInSync { task: web("a", 0) })
        .see(61, Fact::TaskInSync { task: web("a", 0) });
    assert_eq!(
        run.said(),
        [
            said(
                "drift.detected",
                "web a/0 no longer matches the spec: stopped by hand",
                "diff web"
            ),
            said("task.recovered", "web a/0 matches the spec again", ""),
        ]
    );
}

#[test]
fn drift_and_health_are_separate_incidents_of_one_task() {
    let mut run = Run::new();
    run.see(0, exited(web("a", 0), 1, false))
        .see(
            1,
            Fact::TaskDrift {
                task: web("a", 0),
                what: "stopped".into(),
            },
        )
        .see(2, Fact::TaskInSync { task: web("a", 0) });
    let kinds: Vec<&str> = run.said().into_iter().map(|s| s.0).collect();
    assert_eq!(kinds, ["task.exited", "drift.detected", "task.recovered"]);
}

#[test]
fn an_unreachable_host_is_one_message_and_one_recovery() {
    let mut run = Run::new();
    let down = || Fact::HostUnreachable {
        host: "app1".into(),
        reason: "tcp://10.0.0.12:2376: connection refused".into(),
    };
    let up = || Fact::HostReachable {
        host: "app1".into(),
    };
    run.see(0, up())
        .see(10, down())
        .see(20, down())
        .see(250, up())
        .see(260, up());
    assert_eq!(
        run.said(),
        [
            said(
                "host.unreachable",
                "host app1 is unreachable: tcp://10.0.0.12:2376: connection refused",
                "doctor --host app1"
            ),
            said(
                "host.recovered",
                "host app1 is reachable again after 4m",
                "status --host app1"
            ),
        ]
    );
    assert_eq!(run.events[0].job, None);
    assert_eq!(run.events[0].task, None);
}

#[test]
fn low_disk_has_a_margin_before_it_recovers() {
    let mut run = Run::new();
    let disk = |space, inodes| Fact::Disk {
        host: "app1".into(),
        space_percent: space,
        inodes_percent: inodes,
    };
    run.see(0, disk(80.0, 10.0))
        .see(1, disk(91.2, 10.0))
        .see(2, disk(89.0, 10.0))
        .see(3, disk(92.0, 10.0))
        .see(4, disk(84.0, 86.0))
        .see(5, disk(84.0, 12.0))
        .see(6, disk(50.0, 95.0));
    assert_eq!(
        run.said(),
        [
            said(
                "disk.low",
                "host app1's disk is low: data root 91% full, 10% of inodes used",
                "gc --dry-run --host app1"
            ),
            said(
                "host.recovered",
                "host app1's disk is fine again: data root 84% full, 12% of inodes used",
                ""
            ),
            said(
                "disk.low",
                "host app1's disk is low: data root 50% full, 95% of inodes used",
                "gc --dry-run --host app1"
            ),
        ]
    );
}

#[test]
fn a_new_image_is_announced_once() {
    let mut run = Run::new();
    let image = |tag: &str| Fact::ImageAvailable {
        job: "web".into(),
        image: format!("registry.example:5000/web:{tag}"),
    };
    run.see(0, image("2"))
        .see(300, image("2"))
        .see(600, image("3"));
    assert_eq!(
        run.said(),
        [
            said(
                "image.available",
                "web: a new image is available: registry.example:5000/web:2",
                "update web --image registry.example:5000/web:2"
            ),
            said(
                "image.available",
                "web: a new image is available: registry.example:5000/web:3",
                "update web --image registry.example:5000/web:3"
            ),
        ]
    );
}

#[test]
fn a_task_drover_removed_is_forgotten_without_a_message() {
    let mut run = Run::new();
    run.see(0, exited(web("a", 0), 1, false))
        .see(5, Fact::TaskGone { task: web("a", 0) })
        .tick(5, 200)
        .see(300, exited(web("a", 0), 1, false));
    let kinds: Vec<&str> = run.said().into_iter().map(|s| s.0).collect();
    assert_eq!(
        kinds,
        ["task.exited", "task.exited"],
        "a new incident after"
    );
}

#[test]
fn a_flapping_job_gets_five_messages_then_one_summary() {
    let mut run = Run::new();
    let health = |task, healthy| Fact::TaskHealth {
        task,
        healthy,
        output: "503".to_string(),
    };
    // Unhealthy and healthy again every 20s, for 10 minutes.
    for n in 0..15 {
        run.see(n * 40, health(web("a", 0), false))
            .see(n * 40 + 20, health(web("a", 0), true));
    }
    // Another task of the same job goes down meanwhile; a host's own
    // messages are counted apart.
    run.see(700, exited(web("b", 0), 1, false))
        .see(
            710,
            Fact::HostUnreachable {
                host: "b".into(),
                reason: "timeout".into(),
            },
        )
        .tick(700, 1000);
    let all = run.said();
    let kinds: Vec<&str> = all.iter().map(|s| s.0).collect();
    assert_eq!(
        kinds,
        [
            "task.unhealthy",
            "task.recovered",
            "task.unhealthy",
            "task.recovered",
            "task.unhealthy",
            "host.unreachable",
            "task.exited",
        ]
    );
    assert_eq!(
        all[6],
        said(
            "task.exited",
            "web is flapping: 26 more messages held back over 13m; now b/0 exited",
            "status web"
        )
    );
    assert_eq!(run.events[6].time, at(900), "15 minutes after the first");
    assert_eq!(
        (run.events[6].host.as_deref(), run.events[6].task),
        (Some("b"), Some(0)),
        "one task is in trouble: the summary names it"
    );
}

#[test]
fn after_a_summary_messages_flow_again() {
    let rules = Rules {
        rate_max: 2,
        rate_window: Duration::from_secs(100),
        ..Rules::default()
    };
    let mut run = Run::with(rules);
    let health = |healthy| Fact::TaskHealth {
        task: web("a", 0),
        healthy,
        output: String::new(),
    };
    run.see(0, health(false))
        .see(1, health(true))
        .see(2, health(false))
        .tick(3, 150)
        .see(300, health(true))
        .see(400, health(false));
    assert_eq!(
        run.said(),
        [
            said(
                "task.unhealthy",
                "web a/0 is unhealthy",
                "logs web --task a/0"
            ),
            said(
                "task.recovered",
                "web a/0 is healthy again after 1s",
                "status web"
            ),
            said(
                "task.unhealthy",
                "web is flapping: 1 more message held back over 2m; now a/0 unhealthy",
                "status web"
            ),
            said(
                "task.recovered",
                "web a/0 is healthy again after 5m",
                "status web"
            ),
            said(
                "task.unhealthy",
                "web a/0 is unhealthy",
                "logs web --task a/0"
            ),
        ]
    );
}

// Random histories.

const JOBS: [&str; 2] = ["web", "api"];
const HOSTS: [&str; 2] = ["a", "b"];

fn any_task() -> impl Strategy<Value = TaskKey> {
    (0..2usize, 0..2usize, 0..2u32).prop_map(|(j, h, t)| TaskKey::new(JOBS[j], HOSTS[h], t))
}

fn any_host() -> impl Strategy<Value = String> {
    (0..2usize).prop_map(|h| HOSTS[h].to_string())
}

/// Any fact but `TaskGone`, which ends a subject's story on purpose.
fn any_fact(drift: bool) -> impl Strategy<Value = Fact> {
    let drift_facts = if drift { 1 } else { 0 };
    prop_oneof![
        6 => (any_task(), 0..3i64, any::<bool>(), any::<bool>()).prop_map(|(task, exit_code, oom_killed, restarting)| Fact::TaskExited { task, exit_code, oom_killed, restarting }),
        6 => any_task().prop_map(|task| Fact::TaskRunning { task }),
        4 => (any_task(), any::<bool>()).prop_map(|(task, healthy)| Fact::TaskHealth { task, healthy, output: "out".into() }),
        drift_facts => any_task().prop_map(|task| Fact::TaskDrift { task, what: "stopped".into() }),
        drift_facts => any_task().prop_map(|task| Fact::TaskInSync { task }),
        1 => any_host().prop_map(|host| Fact::HostUnreachable { host, reason: "timeout".into() }),
        1 => any_host().prop_map(|host| Fact::HostReachable { host }),
        1 => (any_host(), prop_oneof![Just(50.0), Just(88.0), Just(95.0)], prop_oneof![Just(50.0), Just(95.0)]).prop_map(|(host, space_percent, inodes_percent)| Fact::Disk { host, space_percent, inodes_percent }),
        1 => (0..2usize, 1..4u32).prop_map(|(j, tag)| Fact::ImageAvailable { job: JOBS[j].into(), image: format!("r/{}:{tag}", JOBS[j]) }),
    ]
}

/// `(seconds since the previous fact, fact)`.
fn history(drift: bool) -> impl Strategy<Value = Vec<(u64, Fact)>> {
    proptest::collection::vec((0..90u64, any_fact(drift)), 0..150)
}

/// Plays a history with a tick every 5 seconds; returns the events and the
/// time the history ended.
fn play(tracker: &mut Tracker, history: &[(u64, Fact)]) -> (Vec<Event>, u64) {
    let mut events = Vec::new();
    let mut now = 0;
    for (gap, fact) in history {
        for secs in (now..now + gap).step_by(5) {
            events.extend(tracker.tick(at(secs)));
        }
        now += gap;
        events.extend(tracker.observe(at(now), fact.clone()));
    }
    (events, now)
}

/// What messages are counted against: the job, else the host.
fn rate_key(event: &Event) -> String {
    match (&event.job, &event.host) {
        (Some(job), _) => job.clone(),
        (None, Some(host)) => format!("host {host}"),
        (None, None) => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// At most `rate_max` messages per job or host in any window.
    #[test]
    fn the_rate_limit_holds_in_every_window(history in history(true)) {
        let mut tracker = Tracker::new(Rules::default());
        let rules = tracker.rules().clone();
        let (events, _) = play(&mut tracker, &history);
        let limited: Vec<&Event> = events.iter().filter(|e| e.kind != EventKind::ImageAvailable).collect();
        for (i, first) in limited.iter().enumerate() {
            let in_window = limited[i..]
                .iter()
                .filter(|e| rate_key(e) == rate_key(first))
                .filter(|e| e.time.duration_since(first.time).unwrap_or_default() < rules.rate_window)
                .count();
            prop_assert!(in_window <= rules.rate_max, "{} messages for {} from {:?}", in_window, rate_key(first), first.time);
        }
    }

    /// Without a rate limit, a task's health messages alternate: an
    /// incident, its recovery, the next incident… never two in a row.
    #[test]
    fn every_incident_is_one_message_and_one_recovery(history in history(false)) {
        let rules = Rules { rate_max: usize::MAX, ..Rules::default() };
        let mut tracker = Tracker::new(rules);
        let (events, _) = play(&mut tracker, &history);
        let mut open: BTreeMap<(String, String, u32), bool> = BTreeMap::new();
        for event in events.iter().filter(|e| e.task.is_some()) {
            let key = (event.job.clone().unwrap_or_default(), event.host.clone().unwrap_or_default(), event.task.unwrap_or_default());
            let was_open = open.get(&key).copied().unwrap_or(false);
            let recovery = event.kind == EventKind::TaskRecovered;
            prop_assert_eq!(was_open, recovery, "{:?} after {}", event, if was_open { "an incident" } else { "nothing or a recovery" });
            open.insert(key, !recovery);
        }
        // And no task is named that never had trouble.
        for event in &events {
            if let (Some(job), Some(host), Some(task)) = (&event.job, &event.host, event.task) {
                let troubled = history.iter().any(|(_, fact)| matches!(fact,
                    Fact::TaskExited { task: t, .. } | Fact::TaskHealth { task: t, healthy: false, .. }
                        if t == &TaskKey::new(job, host, task)));
                prop_assert!(troubled, "{:?}", event);
            }
        }
    }

    /// Once everything is fine and time has passed, the last word on every
    /// job and host is that it is fine, and nothing more is said.
    #[test]
    fn when_all_is_well_the_team_ends_up_told_so(history in history(true)) {
        let mut tracker = Tracker::new(Rules::default());
        let rules = tracker.rules().clone();
        let (mut events, end) = play(&mut tracker, &history);
        let calm = end + 1;
        for job in JOBS {
            for host in HOSTS {
                for task in 0..2 {
                    let task = TaskKey::new(job, host, task);
                    events.extend(tracker.observe(at(calm), Fact::TaskRunning { task: task.clone() }));
                    events.extend(tracker.observe(at(calm), Fact::TaskHealth { task: task.clone(), healthy: true, output: String::new() }));
                    events.extend(tracker.observe(at(calm), Fact::TaskInSync { task }));
                }
            }
        }
        for host in HOSTS {
            events.extend(tracker.observe(at(calm), Fact::HostReachable { host: host.into() }));
            events.extend(tracker.observe(at(calm), Fact::Disk { host: host.into(), space_percent: 10.0, inodes_percent: 10.0 }));
        }
        let window = rules.rate_window.as_secs();
        for later in [rules.stable_after.as_secs() + 1, 2 * window, 4 * window] {
            events.extend(tracker.tick(at(calm + later)));
        }
        let mut last: BTreeMap<String, EventKind> = BTreeMap::new();
        for event in events.iter().filter(|e| e.kind != EventKind::ImageAvailable) {
            last.insert(rate_key(event), event.kind);
        }
        for (key, kind) in &last {
            prop_assert!(matches!(kind, EventKind::TaskRecovered | EventKind::HostRecovered), "{}: last said {}", key, kind);
        }
        prop_assert_eq!(tracker.tick(at(calm + 8 * window)), vec![]);
    }
}
