//! The routes, and the JSON the pages are made from.
//!
//! Each answer is one fleet call, as a CLI command is: `/api/status` is
//! `Fleet::status` (the very array `status --json` prints), a job's page is
//! `Fleet::plan_up` (the diff, printed by the CLI's renderer) with the
//! history, timeline and locks read from the same observation, and its
//! images are `Fleet::images`. An unknown job or task is 404 everywhere,
//! in the words the CLI uses. Only `/login` (the sign-in form) is open to
//! anyone; every other route is behind [`auth::require`].

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Json, Router};
use drover_fleet::Fleet;
use drover_plan::views::{history, locks, status_rows};
use drover_plan::HostObservation;
use serde::Serialize;
use serde_json::json;

use crate::{actions, assets, auth, channel, logs, metrics, pages, shell, timeline, Dashboard};
use drover_fleet::task_status;

pub fn router(dashboard: Dashboard) -> Router {
    let signed_in = Router::new()
        .route("/", get(pages::page))
        .route("/jobs/{job}", get(pages::page))
        .route("/jobs/{job}/tasks/{host}/{task}", get(pages::page))
        .route("/jobs/{job}/tasks/{host}/{task}/shell", get(pages::page))
        .route("/assets/{name}", get(assets::serve))
        .route("/logout", post(auth::logout))
        .route("/metrics", get(metrics::metrics))
        .route("/api/status", get(status))
        .route("/api/live", get(channel::live))
        .route("/api/changes/{id}", get(actions::progress))
        .route("/api/jobs/{job}", get(job))
        .route("/api/jobs/{job}/images", get(images))
        .route("/api/jobs/{job}/logs", get(logs::sse))
        .route("/api/jobs/{job}/logs/download", get(logs::download))
        .route("/api/jobs/{job}/{action}", post(actions::act))
        .route("/api/jobs/{job}/{action}/plan", get(actions::plan))
        .route(
            "/api/jobs/{job}/tasks/{host}/{task}/shell",
            get(shell::shell),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            dashboard.clone(),
            auth::require,
        ));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .merge(signed_in)
        .with_state(dashboard)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page")
}

/// `{"error": why}` with `status`.
pub fn error(status: StatusCode, why: &str) -> Response {
    let mut response = (status, Json(json!({ "error": why }))).into_response();
    no_store(&mut response);
    response
}

pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `GET /api/status`: what `drover --json status` prints.
async fn status(State(dashboard): State<Dashboard>) -> Response {
    let fleet = dashboard.fleet();
    let connections = dashboard.inner.pool.connections().await;
    match fleet.status(&connections, &[]).await {
        Ok(report) => {
            let mut response = Json(&report.tasks).into_response();
            no_store(&mut response);
            let unreachable: Vec<&str> = report
                .unreachable
                .iter()
                .map(|(h, _, _)| h.as_str())
                .collect();
            if let Ok(value) = HeaderValue::from_str(&unreachable.join(",")) {
                if !unreachable.is_empty() {
                    response.headers_mut().insert("x-drover-unreachable", value);
                }
            }
            response
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Serialize)]
struct JobSpec {
    name: String,
    file: String,
    image: String,
    hosts: Vec<String>,
    instances: u32,
    command: Option<Vec<String>>,
    ports: Vec<u16>,
    memory: Option<u64>,
    profile: Option<String>,
    health: bool,
    parallel: u32,
    keep: u32,
}

/// `GET /api/jobs/{job}`: the job's spec, tasks, diff, history and locks.
async fn job(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<auth::Who>,
    Path(name): Path<String>,
) -> Response {
    let fleet = dashboard.fleet();
    let spec = fleet.job(&name).ok();
    let connections = dashboard.inner.pool.connections().await;
    let names = [name.clone()];
    let (diff, diff_error, observed) = match spec {
        Some(_) => match fleet.plan_up(&connections, &names).await {
            Ok((plan, observed)) => (Some(plan), None, observed),
            Err(e) => (
                None,
                Some(e.to_string()),
                fleet.observe(&connections, &Fleet::scope(&names)).await,
            ),
        },
        None => (
            None,
            Some(format!(
                "job {name} is not in the spec: `drover up` removes its containers"
            )),
            fleet.observe(&connections, &Fleet::scope(&names)).await,
        ),
    };
    let env = fleet.env.name.as_str();
    let known = fleet.known_hosts();
    let generations = history(env, &name, &observed, &known);
    if spec.is_none() && generations.is_empty() {
        if let Err(e) = fleet.job(&name) {
            return error(StatusCode::NOT_FOUND, &e.to_string());
        }
    }
    let timeline = timeline::timeline(env, &name, &observed, &known);
    let keys = spec.map(|s| fleet.task_keys(&[s])).unwrap_or_default();
    let now = observed.at;
    let tasks: Vec<_> = status_rows(env, &keys, &observed, &Fleet::scope(&names), &known)
        .iter()
        .map(|row| task_status(row, None, now))
        .collect();
    let held = locks(&observed, env, &known)
        .remove(&name)
        .unwrap_or_default();
    let unreachable: Vec<_> = observed
        .hosts
        .iter()
        .filter_map(|(host, o)| match o {
            HostObservation::Unreachable { address, error } => {
                Some(json!({"host": host, "address": address, "error": error}))
            }
            HostObservation::Reachable(_) => None,
        })
        .collect();
    let body = json!({
        "env": env,
        "job": spec.map(|s| JobSpec {
            name: s.name.clone(),
            file: s.file.clone(),
            image: s.image.to_string(),
            hosts: s.hosts.clone(),
            instances: s.instances,
            command: s.command.clone(),
            ports: s.ports.clone(),
            memory: s.memory,
            profile: s.profile.clone(),
            health: s.health.is_some(),
            parallel: s.update.parallel,
            keep: s.update.keep,
        }),
        "tasks": tasks,
        "diff": diff.as_ref().map(|plan| json!({
            "text": plan.render(false),
            "ansi": plan.render(true),
            "empty": plan.is_empty(),
            "changes": plan.changes,
            "pulls": plan.pulls,
        })),
        "diff_error": diff_error,
        "history": generations,
        "timeline": timeline,
        "role": who.role(),
        "locks": held,
        "unreachable": unreachable,
        "spec_error": dashboard.inner.source.error(),
    });
    let mut response = Json(body).into_response();
    no_store(&mut response);
    response
}

/// `GET /api/jobs/{job}/images`: the tags of the job's repository, as
/// `drover images JOB` lists them.
async fn images(State(dashboard): State<Dashboard>, Path(name): Path<String>) -> Response {
    let fleet = dashboard.fleet();
    if let Err(e) = fleet.job(&name) {
        return error(StatusCode::NOT_FOUND, &e.to_string());
    }
    let connections = dashboard.inner.pool.connections().await;
    match fleet.images(&connections, &name).await {
        Ok(report) => {
            let unreachable: Vec<_> = report
                .unreachable
                .iter()
                .map(|(host, address, error)| json!({"host": host, "address": address, "error": error}))
                .collect();
            let mut response = Json(json!({
                "repository": report.repository,
                "rows": report.rows,
                "registry_error": report.registry_error,
                "unreachable": unreachable,
            }))
            .into_response();
            no_store(&mut response);
            response
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}
