//! `GET /api/jobs/{job}/logs`: a job's logs as server-sent events, and
//! `/logs/download`: the whole log as one text file.
//!
//! Both are `Fleet::follow_logs`, the reader `drover logs` uses: the job's
//! tasks merged in time order, filtered (`task`, `stream`, `grep`) before
//! anything is sent. Each line is one event whose `id` is its cursor; a
//! browser's `EventSource` sends the last one back as `Last-Event-ID` when
//! it reconnects, and the stream resumes right after it, with no gap and no
//! duplicate.
//!
//! Memory stays bounded for a slow browser: the response body is pulled
//! only as fast as the connection drains, so the reader's bounded queues
//! fill and it drops lines, which arrive as a `dropped` event saying how
//! many, instead of piling up here.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use drover_fleet::logs::{Cursor, LogEvent, LogQuery};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api::error;
use crate::auth::Who;
use crate::Dashboard;

/// The query of both routes (and of a page's log subscription).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Params {
    /// Lines per task from the end (`all`, or absent: everything).
    pub tail: Option<String>,
    pub follow: Option<String>,
    /// `HOST/N`.
    pub task: Option<String>,
    /// `stdout` or `stderr` (absent: both).
    pub stream: Option<String>,
    pub grep: Option<String>,
    /// A cursor to resume after, for clients that cannot send `Last-Event-ID`.
    pub after: Option<String>,
}

/// What the query asks for, checked.
pub struct Asked {
    pub query: LogQuery,
    pub after: Option<Cursor>,
}

/// Checks `params` (and a client's `Last-Event-ID`, which wins over
/// `after`) against `job` of `fleet`: a bad value is 400, an unknown job
/// or task 404, each with the CLI's words.
pub fn ask(
    fleet: &drover_fleet::Fleet,
    job: &str,
    params: &Params,
    last_event_id: Option<&str>,
    follow_default: bool,
) -> Result<Asked, (StatusCode, String)> {
    fleet
        .job(job)
        .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
    let asked = parse(params, last_event_id, follow_default)
        .map_err(|why| (StatusCode::BAD_REQUEST, why))?;
    if let Some((host, task)) = &asked.query.task {
        fleet
            .task(job, host, *task)
            .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
    }
    Ok(asked)
}

fn last_event_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn parse(
    params: &Params,
    last_event_id: Option<&str>,
    follow_default: bool,
) -> Result<Asked, String> {
    let tail = match params.tail.as_deref() {
        None | Some("") | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| format!("tail={n:?}: expected a number of lines or \"all\""))?,
        ),
    };
    let follow = match params.follow.as_deref() {
        None => follow_default,
        Some("true" | "1" | "yes" | "") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => return Err(format!("follow={other:?}: expected true or false")),
    };
    let task = match params.task.as_deref() {
        None | Some("") => None,
        Some(text) => Some(drover_fleet::parse_task(text).map_err(|e| e.to_string())?),
    };
    let (stdout, stderr) = match params.stream.as_deref() {
        None | Some("") | Some("all") => (true, true),
        Some("stdout") => (true, false),
        Some("stderr") => (false, true),
        Some(other) => return Err(format!("stream={other:?}: expected stdout or stderr")),
    };
    let grep = params.grep.clone().filter(|g| !g.is_empty());
    let after = match last_event_id.or(params.after.as_deref().filter(|a| !a.is_empty())) {
        None => None,
        Some(text) => Some(text.parse::<Cursor>()?),
    };
    Ok(Asked {
        query: LogQuery {
            task,
            // Resuming: every line after the cursor, however many were
            // written while the client was away.
            tail: if after.is_some() { None } else { tail },
            since_ns: None,
            follow,
            stdout,
            stderr,
            grep,
        },
        after,
    })
}

/// What ends a stream early: logout, or the server stopping.
async fn ended(who: CancellationToken, shutdown: CancellationToken) -> &'static str {
    tokio::select! {
        () = who.cancelled() => "session ended",
        () = shutdown.cancelled() => "the dashboard is stopping",
    }
}

/// `GET /api/jobs/{job}/logs`.
pub async fn sse(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    Path(job): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let fleet = dashboard.fleet();
    let asked = match ask(&fleet, &job, &params, last_event_id(&headers), false) {
        Ok(asked) => asked,
        Err((status, why)) => return error(status, &why),
    };
    let connections = dashboard.inner.pool.connections().await;
    let cancel = CancellationToken::new();
    let events = fleet.follow_logs(
        connections.engines,
        &job,
        asked.query,
        asked.after,
        cancel.clone(),
    );
    let notes: Vec<Result<Event, Infallible>> = connections
        .unreachable
        .iter()
        .map(|(host, e)| {
            Ok(Event::default()
                .event("note")
                .data(json!({ "note": format!("host {host}: {e}") }).to_string()))
        })
        .collect();
    let stop = Box::pin(ended(who.ended(), dashboard.inner.shutdown.clone()));
    let state = (events, stop, DropGuard(cancel), false);
    let body = stream::unfold(state, |(mut events, mut stop, guard, done)| async move {
        if done {
            return None;
        }
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Some(event) => sse_event(event),
                    None => return Some((Ok(end("end of log")), (events, stop, guard, true))),
                };
                Some((Ok(event), (events, stop, guard, false)))
            }
            reason = &mut stop => Some((Ok(end(reason)), (events, stop, guard, true))),
        }
    });
    let body = stream::iter(notes).chain(body);
    let mut response = Sse::new(retry_first(body))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Cancels the reader when the response is dropped (the browser left).
struct DropGuard(CancellationToken);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Tells the browser to reconnect after 1 s, before any line.
fn retry_first(
    body: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream::once(async {
        Ok(Event::default()
            .retry(Duration::from_secs(1))
            .comment("drover"))
    })
    .chain(body)
}

fn end(reason: &str) -> Event {
    Event::default()
        .event("end")
        .data(json!({ "reason": reason }).to_string())
}

fn sse_event(event: LogEvent) -> Event {
    match event {
        LogEvent::Line(line) => {
            let data = serde_json::to_string(&line).unwrap_or_default();
            Event::default().id(line.cursor.to_string()).data(data)
        }
        LogEvent::Dropped { host, task, lines } => Event::default()
            .event("dropped")
            .data(json!({ "host": host, "task": task, "lines": lines }).to_string()),
        LogEvent::Note(note) => Event::default()
            .event("note")
            .data(json!({ "note": note }).to_string()),
    }
}

/// `GET /api/jobs/{job}/logs/download`: the whole log (or what the query
/// keeps of it) as text, streamed as it is read.
pub async fn download(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    Path(job): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let fleet = dashboard.fleet();
    let asked = match ask(&fleet, &job, &params, last_event_id(&headers), false) {
        Ok(asked) => asked,
        Err((status, why)) => return error(status, &why),
    };
    let file = {
        let mut name = format!("{}-{job}", fleet.env.name);
        if let Some((host, task)) = &asked.query.task {
            name.push_str(&format!("-{host}-{task}"));
        }
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.log")
    };
    let connections = dashboard.inner.pool.connections().await;
    let cancel = CancellationToken::new();
    let events = fleet.follow_logs(
        connections.engines,
        &job,
        asked.query,
        asked.after,
        cancel.clone(),
    );
    let stop = Box::pin(ended(who.ended(), dashboard.inner.shutdown.clone()));
    let body = stream::unfold(
        (events, stop, DropGuard(cancel)),
        |(mut events, mut stop, guard)| async move {
            let text = tokio::select! {
                event = events.recv() => match event? {
                    LogEvent::Line(l) => format!(
                        "{} {}/{} {} {}\n",
                        l.time,
                        l.host,
                        l.task,
                        match l.stream {
                            drover_engine::StreamKind::Stdout => "stdout",
                            drover_engine::StreamKind::Stderr => "stderr",
                        },
                        l.line
                    ),
                    LogEvent::Dropped { host, task, lines } => {
                        format!("# drover: {lines} lines of {host}/{task} dropped\n")
                    }
                    LogEvent::Note(note) => format!("# drover: {note}\n"),
                },
                _ = &mut stop => return None,
            };
            Some((
                Ok::<Bytes, Infallible>(Bytes::from(text)),
                (events, stop, guard),
            ))
        },
    );
    // Many small lines: send them in chunks of up to 64 KiB.
    let body = body.ready_chunks(512).map(|chunk| {
        let mut joined = Vec::new();
        for piece in chunk.into_iter().flatten() {
            joined.extend_from_slice(&piece);
        }
        Ok::<Bytes, Infallible>(Bytes::from(joined))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked() {
        let headers = HeaderMap::new();
        let params = Params {
            tail: Some("20".into()),
            follow: Some("true".into()),
            task: Some("h1/0".into()),
            stream: Some("stderr".into()),
            grep: Some("GET".into()),
            after: None,
        };
        let asked = parse(&params, last_event_id(&headers), false).unwrap();
        assert_eq!(asked.query.tail, Some(20));
        assert!(asked.query.follow);
        assert_eq!(asked.query.task, Some(("h1".to_string(), 0)));
        assert!(!asked.query.stdout && asked.query.stderr);
        assert_eq!(asked.query.grep.as_deref(), Some("GET"));
        for bad in [
            Params {
                tail: Some("x".into()),
                ..Params::default()
            },
            Params {
                stream: Some("both".into()),
                ..Params::default()
            },
            Params {
                task: Some("h1".into()),
                ..Params::default()
            },
            Params {
                after: Some("nonsense".into()),
                ..Params::default()
            },
        ] {
            assert!(parse(&bad, None, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resuming_reads_everything_after_the_cursor() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "last-event-id",
            HeaderValue::from_static("1795561558000000001.0.0.h1"),
        );
        let params = Params {
            tail: Some("10".into()),
            ..Params::default()
        };
        let asked = parse(&params, last_event_id(&headers), false).unwrap();
        assert_eq!(asked.query.tail, None);
        assert_eq!(asked.after.map(|c| c.task), Some(0));
    }
}
