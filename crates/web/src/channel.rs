//! `GET /api/live`: one WebSocket per browser tab, carrying everything
//! live the page shows.
//!
//! Over plain HTTP/1.1 a browser keeps at most six connections to one
//! origin, so a page holding an event stream per feed would leave the
//! seventh tab blank. WebSockets are not counted against that limit: each
//! tab opens this one socket and asks for what it shows on it.
//!
//! Browser to server, JSON text frames:
//!
//! - `{"op":"sub","id":N,"topic":"overview"}`: the whole view;
//! - `{"op":"sub","id":N,"topic":"job","job":J}`: a job's tasks, glance,
//!   recent engine activity (a change from the CLI shows here as it
//!   happens) and the progress of the dashboard's changes of it;
//! - `{"op":"sub","id":N,"topic":"task","job":J,"host":H,"task":T}`: a
//!   task's row, its health check's last output and its last hour of
//!   memory and CPU;
//! - `{"op":"sub","id":N,"topic":"logs","job":J,"task":"H/T","stream":…,
//!   "grep":…,"tail":…,"after":CURSOR}`: lines as `/api/jobs/{job}/logs`
//!   sends them, in batches; a tab that reconnects subscribes again with
//!   the last batch's cursor and resumes with no gap and no duplicate;
//! - `{"op":"unsub","id":N}`.
//!
//! Server to browser: `{"t":"hello","role":…}` first, then
//! `{"id":N,"t":KIND,…}` per subscription (`overview`, `job`, `change`,
//! `task`, `lines`, `dropped`, `note`, `end`, `error`). A subscription the
//! server cannot serve (an unknown job or task: the CLI's words, status
//! 404) gets one `error`. Views only ever send their newest state (a slow
//! tab skips, it never queues); a log that outruns the tab drops lines and
//! says how many.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use drover_fleet::logs::LogEvent;
use drover_plan::TaskKey;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{forbidden, same_origin, Who};
use crate::hub::Snapshot;
use crate::logs::{ask, Params};
use crate::Dashboard;

/// A WebSocket ping this often keeps idle proxies from closing the socket.
pub const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// Messages waiting for a slow tab, at most; then the feeds wait (and a
/// log drops lines).
const QUEUE: usize = 64;
/// Log lines per message at most.
const BATCH: usize = 512;
/// Subscriptions one socket may hold.
const MAX_SUBSCRIPTIONS: usize = 64;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Control {
    Sub {
        id: u64,
        #[serde(flatten)]
        topic: Topic,
    },
    Unsub {
        id: u64,
    },
    Ping,
}

#[derive(Deserialize)]
#[serde(tag = "topic", rename_all = "lowercase")]
enum Topic {
    Overview,
    Job {
        job: String,
    },
    Task {
        job: String,
        host: String,
        task: u32,
    },
    Logs {
        job: String,
        #[serde(flatten)]
        params: Params,
    },
}

pub async fn live(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let authority = uri.authority().map(|a| a.as_str());
    if !same_origin(&headers, authority, dashboard.secure(), who.is_program()) {
        return forbidden("cross-origin WebSocket refused");
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(move |socket| serve(socket, dashboard, who))
}

/// Where a subscription's messages go.
type Out = mpsc::Sender<Utf8Bytes>;

async fn serve(mut socket: WebSocket, dashboard: Dashboard, who: Who) {
    let (out, mut queue) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let mut subscriptions: HashMap<u64, CancellationToken> = HashMap::new();
    let ended = who.ended();
    let shutdown = dashboard.inner.shutdown.clone();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let hello = json!({"t": "hello", "role": who.role().as_str(), "session": who.name()});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            () = ended.cancelled() => {
                close(&mut socket, 4001, "session ended").await;
                break;
            }
            () = shutdown.cancelled() => {
                close(&mut socket, 1001, "the dashboard is stopping").await;
                break;
            }
            message = queue.recv() => {
                let Some(message) = message else { break };
                if socket.send(Message::Text(message)).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(b"drover".as_slice().into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Sub { id, topic }) => {
                        if let Some(old) = subscriptions.remove(&id) {
                            old.cancel();
                        }
                        subscriptions.retain(|_, token| !token.is_cancelled());
                        if subscriptions.len() >= MAX_SUBSCRIPTIONS {
                            let _ = out.try_send(error(id, StatusCode::TOO_MANY_REQUESTS, &format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection")));
                            continue;
                        }
                        let token = shutdown.child_token();
                        subscriptions.insert(id, token.clone());
                        tokio::spawn(subscribe(dashboard.clone(), id, topic, out.clone(), token));
                    }
                    Ok(Control::Unsub { id }) => {
                        if let Some(token) = subscriptions.remove(&id) {
                            token.cancel();
                        }
                    }
                    Ok(Control::Ping) => {
                        let _ = out.try_send(Utf8Bytes::from_static("{\"t\":\"pong\"}"));
                    }
                    Err(e) => {
                        let _ = out.try_send(error(0, StatusCode::BAD_REQUEST, &format!("not a request this socket knows: {e}")));
                    }
                },
                Some(Ok(_)) => {}
            },
        }
    }
    for token in subscriptions.values() {
        token.cancel();
    }
}

/// Sends a close frame with `code` and `reason`.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

fn message(id: u64, kind: &str, body: Value) -> Utf8Bytes {
    let mut map = match body {
        Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("data".into(), other);
            map
        }
    };
    map.insert("id".into(), Value::from(id));
    map.insert("t".into(), Value::String(kind.to_string()));
    Value::Object(map).to_string().into()
}

fn error(id: u64, status: StatusCode, why: &str) -> Utf8Bytes {
    message(
        id,
        "error",
        json!({"status": status.as_u16(), "error": why}),
    )
}

/// Runs one subscription until it is cancelled, the socket goes, or it ends.
async fn subscribe(dashboard: Dashboard, id: u64, topic: Topic, out: Out, stop: CancellationToken) {
    let work = async {
        match topic {
            Topic::Overview => overview(&dashboard, id, &out).await,
            Topic::Job { job } => job_feed(&dashboard, id, &job, &out).await,
            Topic::Task { job, host, task } => {
                task_feed(&dashboard, id, &job, &host, task, &out).await
            }
            Topic::Logs { job, params } => logs(&dashboard, id, &job, &params, &out, &stop).await,
        }
    };
    tokio::select! {
        () = work => {}
        () = stop.cancelled() => {}
    }
}

/// The whole view, on each change.
async fn overview(dashboard: &Dashboard, id: u64, out: &Out) {
    let mut viewer = dashboard.inner.hub.subscribe();
    loop {
        let snapshot = viewer.updates.borrow_and_update().clone();
        let text = format!(
            "{{\"id\":{id},\"t\":\"overview\",\"data\":{}}}",
            snapshot.json
        );
        if out.send(text.into()).await.is_err() {
            return;
        }
        if viewer.updates.changed().await.is_err() {
            return;
        }
    }
}

/// Whether `job` is one to show: in the files, or still on the hosts.
fn known_job(dashboard: &Dashboard, snapshot: &Snapshot, job: &str) -> Result<(), String> {
    match dashboard.fleet().job(job) {
        Ok(_) => Ok(()),
        Err(_) if snapshot.view.jobs.iter().any(|j| j.name == job) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits for a view in which every host was read (or a few seconds), so an
/// unknown name is not called unknown only because nothing was read yet.
async fn settled(viewer: &mut crate::hub::Viewer) -> Snapshot {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let snapshot = viewer.updates.borrow_and_update().clone();
        if !snapshot.view.reading() {
            return snapshot;
        }
        tokio::select! {
            changed = viewer.updates.changed() => if changed.is_err() { return snapshot },
            () = tokio::time::sleep_until(deadline) => return snapshot,
        }
    }
}

/// A job's page: its tasks, glance and activity on each change of the
/// view, and the lines of its changes as they come.
async fn job_feed(dashboard: &Dashboard, id: u64, job: &str, out: &Out) {
    let mut viewer = dashboard.inner.hub.subscribe();
    let first = if dashboard.fleet().job(job).is_ok() {
        viewer.updates.borrow_and_update().clone()
    } else {
        settled(&mut viewer).await
    };
    if let Err(why) = known_job(dashboard, &first, job) {
        let _ = out.send(error(id, StatusCode::NOT_FOUND, &why)).await;
        return;
    }
    let changes = &dashboard.inner.changes;
    let mut feed = changes.subscribe();
    // What the dashboard's changes of this job said so far.
    let mut next: HashMap<String, u64> = HashMap::new();
    for change in changes.of_job(job) {
        let (lines, finished) = change.lines();
        for line in lines.into_iter().chain(finished) {
            next.insert(change.id.clone(), line["seq"].as_u64().unwrap_or(0) + 1);
            if out.send(message(id, "change", line)).await.is_err() {
                return;
            }
        }
    }
    let mut last = String::new();
    let mut fresh = true;
    loop {
        if fresh {
            let snapshot = viewer.updates.borrow_and_update().clone();
            let view = &snapshot.view;
            let body = json!({
                "job": view.jobs.iter().find(|j| j.name == job),
                "tasks": view.tasks.iter().filter(|t| t.job == job).collect::<Vec<_>>(),
                "hosts": view.hosts,
                "activity": dashboard.inner.hub.activity(job),
                "time": view.time,
                "spec_error": view.spec_error,
            });
            let mut compare = body.clone();
            compare["time"] = Value::Null;
            let text = compare.to_string();
            if text != last {
                last = text;
                if out.send(message(id, "job", body)).await.is_err() {
                    return;
                }
            }
            fresh = false;
        }
        tokio::select! {
            changed = viewer.updates.changed() => {
                if changed.is_err() {
                    return;
                }
                fresh = true;
            }
            line = feed.recv() => match line {
                Ok(line) if line["job"] == job => {
                    let change = line["change"].as_str().unwrap_or_default().to_string();
                    let seq = line["seq"].as_u64().unwrap_or(0);
                    if next.get(&change).is_some_and(|n| seq < *n) {
                        continue;
                    }
                    next.insert(change, seq + 1);
                    if out.send(message(id, "change", line)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Behind: send each change of the job whole again.
                    for change in changes.of_job(job) {
                        let (lines, finished) = change.lines();
                        for line in lines.into_iter().chain(finished) {
                            let seq = line["seq"].as_u64().unwrap_or(0);
                            if next.get(&change.id).is_some_and(|n| seq < *n) {
                                continue;
                            }
                            next.insert(change.id.clone(), seq + 1);
                            if out.send(message(id, "change", line)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// A task's page: its row, health output, and chart points, when they change.
async fn task_feed(dashboard: &Dashboard, id: u64, job: &str, host: &str, task: u32, out: &Out) {
    if let Err(e) = dashboard.fleet().task(job, host, task) {
        let _ = out
            .send(error(id, StatusCode::NOT_FOUND, &e.to_string()))
            .await;
        return;
    }
    let key = TaskKey::new(job, host, task);
    let hub = Arc::clone(&dashboard.inner.hub);
    let mut viewer = hub.subscribe();
    let mut last = String::new();
    let mut sent_points = None;
    loop {
        let snapshot = viewer.updates.borrow_and_update().clone();
        let view = &snapshot.view;
        let row = view.task(job, host, task);
        let detail = view.details.get(&(job.to_string(), host.to_string(), task));
        let activity: Vec<_> = hub
            .activity(job)
            .into_iter()
            .filter(|a| a.host == host && a.task == Some(task))
            .collect();
        let body = json!({
            "task": row,
            "detail": detail,
            "activity": activity,
            "reading": view.reading(),
        });
        let text = body.to_string();
        if text != last {
            last = text;
            if out.send(message(id, "task", body)).await.is_err() {
                return;
            }
        }
        let newest = hub.history().newest(&key);
        if newest != sent_points {
            sent_points = newest;
            let series = hub.history().series(&key);
            let body = json!({"series": series});
            if out.send(message(id, "usage", body)).await.is_err() {
                return;
            }
        }
        if viewer.updates.changed().await.is_err() {
            return;
        }
    }
}

/// A job's logs, as `/api/jobs/{job}/logs` streams them, in batches.
async fn logs(
    dashboard: &Dashboard,
    id: u64,
    job: &str,
    params: &Params,
    out: &Out,
    stop: &CancellationToken,
) {
    let fleet = dashboard.fleet();
    let asked = match ask(&fleet, job, params, None, true) {
        Ok(asked) => asked,
        Err((status, why)) => {
            let _ = out.send(error(id, status, &why)).await;
            return;
        }
    };
    let connections = dashboard.inner.pool.connections().await;
    for (host, e) in &connections.unreachable {
        let note = message(id, "note", json!({"note": format!("host {host}: {e}")}));
        if out.send(note).await.is_err() {
            return;
        }
    }
    let cancel = stop.child_token();
    let _guard = cancel.clone().drop_guard();
    let mut events = fleet.follow_logs(connections.engines, job, asked.query, asked.after, cancel);
    loop {
        let Some(first) = events.recv().await else {
            let _ = out
                .send(message(id, "end", json!({"reason": "end of log"})))
                .await;
            return;
        };
        let mut lines = Vec::new();
        let mut cursor = None;
        let mut pending = Some(first);
        while let Some(event) = pending.take() {
            match event {
                LogEvent::Line(line) => {
                    cursor = Some(line.cursor.to_string());
                    lines.push(serde_json::to_value(&line).unwrap_or(Value::Null));
                }
                other => {
                    if !flush(id, &mut lines, &cursor, out).await {
                        return;
                    }
                    let (kind, body) = match other {
                        LogEvent::Dropped { host, task, lines } => (
                            "dropped",
                            json!({"host": host, "task": task, "lines": lines}),
                        ),
                        LogEvent::Note(note) => ("note", json!({"note": note})),
                        LogEvent::Line(_) => continue,
                    };
                    if out.send(message(id, kind, body)).await.is_err() {
                        return;
                    }
                }
            }
            if lines.len() < BATCH {
                pending = events.try_recv().ok();
            }
        }
        if !flush(id, &mut lines, &cursor, out).await {
            return;
        }
    }
}

/// Sends the lines gathered, if any; false when the socket is gone.
async fn flush(id: u64, lines: &mut Vec<Value>, cursor: &Option<String>, out: &Out) -> bool {
    if lines.is_empty() {
        return true;
    }
    let body = json!({"lines": std::mem::take(lines), "cursor": cursor});
    out.send(message(id, "lines", body)).await.is_ok()
}
