//! Acting from a job's page: `restart`, `stop`, `start`, `rollback`, `up`.
//!
//! Plan first, then confirm, then run, as on the command line:
//!
//! 1. `GET /api/jobs/{job}/{action}/plan` is `Fleet::prepare` (observe,
//!    plan, refusals; nothing written): the plan as `diff` renders it, the
//!    lock someone else holds if any, and a fingerprint of the plan;
//! 2. the page shows it and asks;
//! 3. `POST /api/jobs/{job}/{action}` with that fingerprint prepares again
//!    and runs `Fleet::execute` only if the plan is still the one shown;
//!    otherwise it answers 409 with the new plan, to be shown and asked
//!    about again (never applied blindly). Without a fingerprint (a
//!    script's `curl`) it runs what it finds, as `--yes` does. It answers
//!    202 with a change id whose progress streams to every page watching
//!    the job and from `GET /api/changes/{id}` as server-sent events.
//!
//! Both need the operator's role; a POST also needs the dashboard's own
//! `Origin` (a browser always sends one; only a program holding the token
//! may leave it out), and the session cookie is SameSite=Strict. A job
//! whose lock someone else holds is refused (409) with the holder, and
//! not retried.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use drover_apply::lock::{self, LockError};
use drover_fleet::{Connections, Fleet, FleetError, Operation, Prepared};
use drover_plan::views::{locks, LockInfo};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{error, no_store};
use crate::auth::{forbidden, random_hex, same_origin, ClientAddr, Role, Who};
use crate::changes::{lock_holder, plan_summary, Start};
use crate::Dashboard;

/// The actions a job's page offers.
pub const ACTIONS: [&str; 5] = ["restart", "stop", "start", "rollback", "up"];

/// The operation an action names, for `job`.
fn operation(action: &str, job: &str) -> Option<Operation> {
    let jobs = vec![job.to_string()];
    Some(match action {
        "restart" => Operation::Restart {
            job: job.to_string(),
            parallel: None,
        },
        "stop" => Operation::Stop { jobs },
        "start" => Operation::Start { jobs },
        "rollback" => Operation::Rollback {
            job: job.to_string(),
        },
        "up" => Operation::Up { jobs },
        _ => return None,
    })
}

/// The checks both routes make: an operator, a job the files have, an
/// action there is.
fn check(
    dashboard: &Dashboard,
    who: &Who,
    job: &str,
    action: &str,
) -> Result<(std::sync::Arc<Fleet>, Operation), Box<Response>> {
    if who.role() != Role::Operator {
        return Err(Box::new(forbidden(
            "a viewer takes no action: sign in with the operator's token (DROVER_WEB_TOKEN) to act",
        )));
    }
    let fleet = dashboard.fleet();
    if let Err(e) = fleet.job(job) {
        return Err(Box::new(error(StatusCode::NOT_FOUND, &e.to_string())));
    }
    let Some(operation) = operation(action, job) else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            &format!(
                "unknown action {action:?} (actions: {})",
                ACTIONS.join(", ")
            ),
        )));
    };
    Ok((fleet, operation))
}

/// A refusal of `prepare` as an answer: an unknown job is 404, the rest
/// (stopped by `drover stop`, nothing to roll back to…) 409.
fn refused(e: &FleetError) -> Response {
    let status = match e {
        FleetError::UnknownJob { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    error(status, &e.to_string())
}

/// A fingerprint of what a plan would do: two plans with the same one do
/// the same to the same containers.
pub fn fingerprint(prepared: &Prepared) -> String {
    let text = serde_json::to_string(&(
        &prepared.plan,
        &prepared.problems,
        &prepared.warnings,
        prepared.operation.command(),
    ))
    .unwrap_or_default();
    // FNV-1a: not a secret, only a "same or not".
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The locks of `job` that someone else holds now (a stale one is taken
/// over by `execute`, so it is not in the way).
async fn held_by_others(fleet: &Fleet, connections: &Connections, job: &str) -> Vec<LockInfo> {
    let observed = fleet
        .observe(connections, &Fleet::scope(&[job.to_string()]))
        .await;
    locks(&observed, &fleet.env.name, &fleet.known_hosts())
        .remove(job)
        .unwrap_or_default()
        .into_iter()
        .filter(|info| !lock::is_stale(info))
        .collect()
}

/// The plan as the page shows it.
fn plan_json(
    dashboard: &Dashboard,
    job: &str,
    action: &str,
    prepared: &Prepared,
    held: &[LockInfo],
) -> Value {
    let running = dashboard.inner.changes.running_of(job);
    json!({
        "job": job,
        "action": action,
        "command": format!("drover {}", prepared.operation.command()),
        "question": prepared.operation.question(),
        // Plain for machines; `ansi` is the page's, colored as the CLI's.
        "text": prepared.plan.render(false),
        "ansi": prepared.plan.render(true),
        "summary": plan_summary(prepared),
        "changes": prepared.plan.changes,
        "held": prepared.plan.held,
        "unreachable": prepared.plan.unreachable,
        "problems": prepared.problems,
        "warnings": prepared.warnings,
        "noop": prepared.is_noop(),
        "fingerprint": fingerprint(prepared),
        "locked": held.first().map(|info| LockError::Held { job: job.to_string(), held: info.clone() }.to_string()),
        "locks": held,
        "running": running.map(|c| json!({"change": c.id, "action": c.action, "by": c.by})),
    })
}

/// `GET /api/jobs/{job}/{action}/plan`.
pub async fn plan(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    Path((job, action)): Path<(String, String)>,
) -> Response {
    let (fleet, operation) = match check(&dashboard, &who, &job, &action) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let connections = dashboard.inner.pool.connections().await;
    let prepared = match fleet.prepare(&connections, operation).await {
        Ok(prepared) => prepared,
        Err(e) => return refused(&e),
    };
    let held = held_by_others(&fleet, &connections, &job).await;
    let mut response = Json(plan_json(&dashboard, &job, &action, &prepared, &held)).into_response();
    no_store(&mut response);
    response
}

/// What a POST may carry.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Confirm {
    /// The fingerprint of the plan the operator saw and confirmed.
    fingerprint: Option<String>,
}

/// `POST /api/jobs/{job}/{action}`.
pub async fn act(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    client: Option<Extension<ClientAddr>>,
    Path((job, action)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if !same_origin(
        &headers,
        uri.authority().map(|a| a.as_str()),
        dashboard.secure(),
        who.is_program(),
    ) {
        return forbidden(
            "cross-origin request refused: an action is taken from the dashboard's own page (its Origin), or by a program with the token",
        );
    }
    let (fleet, operation) = match check(&dashboard, &who, &job, &action) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let confirm: Confirm = if body.iter().all(u8::is_ascii_whitespace) {
        Confirm::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(confirm) => confirm,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not {{\"fingerprint\": \"…\"}}: {e}"),
                )
            }
        }
    };
    let changes = &dashboard.inner.changes;
    if let Some(running) = changes.running_of(&job) {
        let mut response = (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("a change of job {job} started from the dashboard is still running ({} {}): wait for it to finish", running.action, running.id),
                "change": running.id,
            })),
        )
            .into_response();
        no_store(&mut response);
        return response;
    }
    let connections = dashboard.inner.pool.connections().await;
    let prepared = match fleet.prepare(&connections, operation).await {
        Ok(prepared) => prepared,
        Err(e) => return refused(&e),
    };
    let held = held_by_others(&fleet, &connections, &job).await;
    let shown = plan_json(&dashboard, &job, &action, &prepared, &held);
    if confirm
        .fingerprint
        .as_ref()
        .is_some_and(|f| *f != fingerprint(&prepared))
    {
        let mut response = (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "the plan changed since it was shown: look at it again before confirming",
                "plan": shown,
            })),
        )
            .into_response();
        no_store(&mut response);
        return response;
    }
    let by = crate::audit::who(&who, client.map(|c| c.0 .0));
    if let Some(info) = held.first() {
        let e = LockError::Held {
            job: job.clone(),
            held: info.clone(),
        };
        dashboard.audit().record(
            "action.refused",
            json!({"job": job, "action": action, "by": by, "why": e.to_string()}),
        );
        let mut response = (
            StatusCode::CONFLICT,
            Json(json!({"error": e.to_string(), "lock": lock_holder(&e), "plan": shown})),
        )
            .into_response();
        no_store(&mut response);
        return response;
    }
    let summary = plan_summary(&prepared);
    if prepared.is_noop() {
        dashboard.audit().record(
            "action",
            json!({"job": job, "action": action, "by": by, "plan": summary, "result": "nothing to do"}),
        );
        let mut response = Json(json!({
            "change": null,
            "noop": true,
            "message": format!("nothing to do: job {job} is as the files say"),
        }))
        .into_response();
        no_store(&mut response);
        return response;
    }
    let id = match random_hex(4) {
        Ok(hex) => format!("c-{hex}"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let origin = format!(
        "{} (drover web, {})",
        prepared.operation.command(),
        who.name()
    );
    let change = changes.start(
        id,
        Start {
            fleet,
            connections,
            prepared,
            job: job.clone(),
            action: action.clone(),
            by,
            origin,
            cancel: dashboard.inner.shutdown.child_token(),
            audit: dashboard.audit().clone(),
            plan_summary: summary.clone(),
            notifier: dashboard.inner.notifier.clone(),
        },
    );
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({
            "change": change.id,
            "job": job,
            "action": action,
            "plan": summary,
            "progress": format!("/api/changes/{}", change.id),
        })),
    )
        .into_response();
    no_store(&mut response);
    response
}

/// `GET /api/changes/{id}`: a change's lines as server-sent events (each
/// event's data one JSON line, its `id` the line's number), from its
/// start; the stream ends with the line saying how it ended.
pub async fn progress(State(dashboard): State<Dashboard>, Path(id): Path<String>) -> Response {
    let changes = &dashboard.inner.changes;
    // Subscribed before the replay is read: nothing falls in between, and
    // what is in both is skipped by its number.
    let feed = changes.subscribe();
    let Some(change) = changes.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "no change {id:?} (the dashboard keeps its last {} changes)",
                crate::changes::KEPT
            ),
        );
    };
    let (lines, finished) = change.lines();
    let next = lines
        .iter()
        .chain(&finished)
        .filter_map(|l| l["seq"].as_u64())
        .max()
        .map_or(0, |n| n + 1);
    let done = finished.is_some();
    let replay = stream::iter(lines.into_iter().chain(finished));
    let shutdown = dashboard.inner.shutdown.clone();
    let live = stream::unfold((feed, done, next), move |(mut feed, done, next)| {
        let id = id.clone();
        let shutdown = shutdown.clone();
        let change = std::sync::Arc::clone(&change);
        async move {
            if done {
                return None;
            }
            loop {
                tokio::select! {
                    line = feed.recv() => match line {
                        Ok(line) if line["change"] == id.as_str() => {
                            let seq = line["seq"].as_u64().unwrap_or(u64::MAX);
                            if seq < next {
                                continue;
                            }
                            let end = line["kind"] == "finished";
                            return Some((line, (feed, end, seq + 1)));
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // Too far behind: say how it stands once it ends.
                            if let (_, Some(end)) = change.lines() {
                                return Some((end, (feed, true, next)));
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    });
    let events = replay.chain(live).map(|line| {
        let mut event = SseEvent::default().data(line.to_string());
        if let Some(seq) = line["seq"].as_u64() {
            event = event.id(seq.to_string());
        }
        Ok::<_, Infallible>(event)
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    no_store(&mut response);
    response
}
