//! Changes started from the dashboard, and their progress.
//!
//! A change is an [`Operation`] prepared and executed by `drover-fleet`
//! exactly as the CLI does it (`Fleet::execute`: the job's lock, stop
//! marks, a fresh plan under the lock, the rollout, the lock given back);
//! this module only runs it in the background, keeps what it reports (each
//! task's [`Event`], each [`Notice`]) and hands every line to whoever
//! watches the job: pages over their WebSocket, `curl` over
//! `GET /api/changes/{id}` as server-sent events.
//!
//! Memory is bounded: a change keeps its last [`LINES`] lines, the
//! dashboard its last [`KEPT`] changes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use drover_apply::lock::LockError;
use drover_apply::{Event, StepError};
use drover_fleet::{Connections, Executed, Fleet, FleetError, Notice, Operation, Prepared, Run};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::Audit;

/// Lines a change keeps.
pub const LINES: usize = 2000;
/// Changes kept after they finished.
pub const KEPT: usize = 20;

/// One change: who started it, what it planned, what happened.
pub struct Change {
    pub id: String,
    pub job: String,
    /// `restart`, `stop`, `start`, `rollback`, `up`.
    pub action: String,
    /// Who, as the audit record names them.
    pub by: Value,
    pub started: String,
    /// The next line's number.
    seq: std::sync::atomic::AtomicU64,
    lines: Mutex<VecDeque<Value>>,
    finished: Mutex<Option<Value>>,
}

impl Change {
    /// Everything it said so far, oldest first, and its end if it ended.
    pub fn lines(&self) -> (Vec<Value>, Option<Value>) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        (lines.iter().cloned().collect(), finished.clone())
    }

    pub fn is_finished(&self) -> bool {
        self.finished
            .lock()
            .map(|f| f.is_some())
            .unwrap_or_default()
    }
}

/// Every change started from this dashboard, and the feed of their lines.
pub struct Changes {
    recent: Mutex<VecDeque<Arc<Change>>>,
    feed: broadcast::Sender<Value>,
    running: AtomicUsize,
    tasks: TaskTracker,
}

impl Default for Changes {
    fn default() -> Self {
        let (feed, _) = broadcast::channel(1024);
        Changes {
            recent: Mutex::new(VecDeque::new()),
            feed,
            running: AtomicUsize::new(0),
            tasks: TaskTracker::new(),
        }
    }
}

/// What a change needs to run.
pub struct Start {
    pub fleet: Arc<Fleet>,
    pub connections: Connections,
    pub prepared: Prepared,
    pub job: String,
    pub action: String,
    pub by: Value,
    /// How the record on new containers names the change's origin.
    pub origin: String,
    pub cancel: CancellationToken,
    pub audit: Audit,
    pub plan_summary: String,
    /// Where the deploy is announced (`[notify]`).
    pub notifier: drover_notify::Notifier,
}

impl Changes {
    /// Changes that have not finished.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Every line of every change, as it comes.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.feed.subscribe()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Change>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().find(|c| c.id == id).cloned()
    }

    /// The changes of `job` still kept, oldest first.
    pub fn of_job(&self, job: &str) -> Vec<Arc<Change>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().filter(|c| c.job == job).cloned().collect()
    }

    /// The change of `job` that runs now, if one does.
    pub fn running_of(&self, job: &str) -> Option<Arc<Change>> {
        self.of_job(job).into_iter().find(|c| !c.is_finished())
    }

    /// Waits until every change has finished (the server is stopping; they
    /// were told to by their cancellation token).
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Starts `start` in the background; returns the change.
    pub fn start(self: &Arc<Self>, id: String, start: Start) -> Arc<Change> {
        let change = Arc::new(Change {
            id,
            job: start.job.clone(),
            action: start.action.clone(),
            by: start.by.clone(),
            started: crate::now(),
            seq: std::sync::atomic::AtomicU64::new(0),
            lines: Mutex::new(VecDeque::new()),
            finished: Mutex::new(None),
        });
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            while recent.len() >= KEPT {
                match recent.iter().position(|c| c.is_finished()) {
                    Some(oldest) => {
                        recent.remove(oldest);
                    }
                    None => break,
                }
            }
            recent.push_back(Arc::clone(&change));
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        start.audit.record(
            "action.start",
            json!({
                "change": change.id, "job": change.job, "action": change.action,
                "by": change.by, "plan": start.plan_summary,
            }),
        );
        self.say(
            &change,
            json!({
                "kind": "started", "action": change.action, "by": change.by,
                "at": change.started,
                "plan": start.prepared.plan.render(false),
                "plan_ansi": start.prepared.plan.render(true),
                "summary": start.plan_summary,
            }),
        );
        let changes = Arc::clone(self);
        let running = Arc::clone(&change);
        let runtime = tokio::runtime::Handle::current();
        self.tasks.spawn(async move {
            // The fleet's execute future is Send, but rustc cannot prove it
            // inside a spawned task (its closures' higher-ranked lifetimes,
            // rust-lang/rust#102211); so it runs on a blocking thread of
            // this same runtime, which drives its I/O and timers.
            let (executing, ran) = (Arc::clone(&changes), Arc::clone(&running));
            let start = Arc::new(start);
            let shared = Arc::clone(&start);
            let outcome = tokio::task::spawn_blocking(move || {
                runtime.block_on(executing.execute(&ran, &shared))
            })
            .await
            .unwrap_or_else(|e| json!({"result": "failed", "ok": false, "summary": format!("the change stopped unexpectedly: {e}")}));
            start.audit.record(
                "action.end",
                json!({
                    "change": running.id, "job": running.job, "action": running.action,
                    "by": running.by, "plan": start.plan_summary,
                    "result": outcome["result"], "summary": outcome["summary"],
                }),
            );
            changes.finish(&running, outcome);
            changes.running.fetch_sub(1, Ordering::SeqCst);
        });
        change
    }

    async fn execute(&self, change: &Arc<Change>, start: &Start) -> Value {
        let events = |event: &Event| {
            self.say(
                change,
                json!({"kind": "event", "event": event, "text": format!("{}: {}", event.subject(), event.phase)}),
            );
        };
        let notices = |notice: &Notice| {
            self.say(change, notice_line(notice));
        };
        let run = Run {
            deployment: start.fleet.deployment(&start.origin),
            parallel: None,
            cancel: start.cancel.clone(),
            events: &events,
            notices: &notices,
            notifier: start.notifier.clone(),
        };
        let executed = start
            .fleet
            .execute(&start.connections, &start.prepared, &run)
            .await;
        outcome(&start.prepared, executed)
    }

    /// Keeps a line of `change` and hands it to its watchers, numbered in
    /// the order kept.
    fn say(&self, change: &Change, mut line: Value) {
        let mut lines = change.lines.lock().unwrap_or_else(|e| e.into_inner());
        self.stamp(change, &mut line);
        if lines.len() >= LINES {
            lines.pop_front();
        }
        lines.push_back(line.clone());
        let _ = self.feed.send(line);
    }

    fn finish(&self, change: &Change, mut outcome: Value) {
        let _lines = change.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Value::Object(map) = &mut outcome {
            map.insert("kind".into(), Value::String("finished".into()));
        }
        self.stamp(change, &mut outcome);
        {
            let mut finished = change.finished.lock().unwrap_or_else(|e| e.into_inner());
            *finished = Some(outcome.clone());
        }
        let _ = self.feed.send(outcome);
    }

    fn stamp(&self, change: &Change, line: &mut Value) {
        if let Value::Object(map) = line {
            map.insert("change".into(), Value::String(change.id.clone()));
            map.insert("job".into(), Value::String(change.job.clone()));
            map.insert("time".into(), Value::String(crate::now()));
            map.insert(
                "seq".into(),
                Value::from(change.seq.fetch_add(1, Ordering::SeqCst)),
            );
        }
    }
}

/// A notice as a line: what the CLI prints beside the progress.
fn notice_line(notice: &Notice) -> Value {
    match notice {
        Notice::Replanned(plan) => json!({
            "kind": "notice", "level": "warn",
            "text": "the hosts changed since the plan was shown (someone, or a request still under way, changed them); applying the plan as it stands now:",
            "plan": plan.render(false),
            "plan_ansi": plan.render(true),
        }),
        Notice::LockedOut(e) => json!({
            "kind": "notice", "level": "bad",
            "text": format!("skipped: {e}; its changes are left for later"),
            "lock": lock_holder(e),
        }),
        Notice::Wrote(edit) => json!({
            "kind": "notice", "level": "info",
            "text": format!("wrote image = {:?} into {} (was {:?})", edit.new, edit.origin.describe(), edit.old),
        }),
        Notice::PutBack(edit) => json!({
            "kind": "notice", "level": "warn",
            "text": format!("nothing rolled out, so {} is back as it was (image = {:?})", edit.origin.file, edit.old),
        }),
        Notice::Warning(w) => {
            json!({"kind": "notice", "level": "warn", "text": format!("warning: {w}")})
        }
        Notice::Release(notice) => {
            json!({"kind": "notice", "level": "info", "text": format!("release: {notice}")})
        }
    }
}

/// The holder of a lock someone else has, as the page shows it.
pub fn lock_holder(e: &LockError) -> Value {
    match e {
        LockError::Held { held, .. } => serde_json::to_value(held).unwrap_or(Value::Null),
        LockError::Engine { .. } => Value::Null,
    }
}

/// How a change ended: `succeeded`, `failed`, `locked` (someone else holds
/// the job's lock: nothing was done, nothing retried), `interrupted`.
fn outcome(prepared: &Prepared, executed: Result<Executed, FleetError>) -> Value {
    let executed = match executed {
        Ok(executed) => executed,
        Err(FleetError::Lock(e)) => {
            return json!({
                "result": "locked", "ok": false,
                "summary": e.to_string(), "lock": lock_holder(&e),
            });
        }
        Err(e) => return json!({"result": "failed", "ok": false, "summary": e.to_string()}),
    };
    let report = &executed.report;
    let ok = executed.succeeded() && prepared.problems.is_empty();
    let done = report.outcomes.iter().filter(|o| o.result.is_ok()).count();
    let failures: Vec<String> = report
        .failures()
        .filter(|o| o.result.as_ref().err().is_some_and(StepError::counts))
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{} ({}): {e}", o.subject(), o.step))
        })
        .collect();
    let mut parts = vec![format!("{done} of {} step(s) done", report.outcomes.len())];
    if !failures.is_empty() {
        parts.push(format!("{} failed", failures.len()));
    }
    if !executed.locked_out.is_empty() {
        parts.push(format!(
            "job(s) {} locked by someone else, left alone",
            drover_fleet::list(&executed.locked_out)
        ));
    }
    if !executed.plan.unreachable.is_empty() {
        parts.push(format!(
            "{} host(s) unreachable",
            executed.plan.unreachable.len()
        ));
    }
    if !executed.plan.held.is_empty() {
        parts.push(format!(
            "{} change(s) held by `drover stop`",
            executed.plan.held.len()
        ));
    }
    parts.extend(prepared.problems.iter().cloned());
    let result = if report.interrupted {
        "interrupted"
    } else if ok {
        "succeeded"
    } else if !executed.locked_out.is_empty() && done == 0 && failures.is_empty() {
        "locked"
    } else {
        "failed"
    };
    json!({
        "result": result,
        "ok": ok,
        "summary": parts.join("; "),
        "failures": failures,
        "steps": report.outcomes.iter().map(|o| json!({
            "host": o.host, "task": o.task, "step": o.step, "ok": o.result.is_ok(),
            "detail": match &o.result { Ok(d) => d.clone(), Err(e) => e.to_string() },
        })).collect::<Vec<_>>(),
    })
}

/// What the plan does, in a few words, for the record: `restart h1/0, h1/1`.
pub fn plan_summary(prepared: &Prepared) -> String {
    let plan = &prepared.plan;
    if prepared.is_noop() {
        return "nothing to do".to_string();
    }
    let mut by_step: Vec<(String, Vec<String>)> = Vec::new();
    for change in &plan.changes {
        let verb = change.step.verb().to_string();
        let task = match change.task {
            Some(t) => format!("{}/{t}", change.host),
            None => format!("{}/?", change.host),
        };
        match by_step.iter_mut().find(|(v, _)| *v == verb) {
            Some((_, tasks)) => tasks.push(task),
            None => by_step.push((verb, vec![task])),
        }
    }
    let mut parts: Vec<String> = by_step
        .into_iter()
        .map(|(verb, tasks)| format!("{verb} {}", tasks.join(", ")))
        .collect();
    if !plan.pulls.is_empty() {
        parts.push(format!("pull {} image(s)", plan.pulls.len()));
    }
    if !plan.held.is_empty() {
        parts.push(format!("{} held by `drover stop`", plan.held.len()));
    }
    if matches!(
        prepared.operation,
        Operation::Stop { .. } | Operation::Start { .. }
    ) && plan.changes.is_empty()
    {
        parts.push(format!(
            "{} the stop mark",
            if matches!(prepared.operation, Operation::Stop { .. }) {
                "set"
            } else {
                "clear"
            }
        ));
    }
    parts.join("; ")
}
