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
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use drover_fleet::logs::{Cursor, LogEvent, LogQuery};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::error;
use crate::auth::Who;
use crate::Dashboard;

/// The query of both routes.
#[derive(Debug, Default, Deserialize)]
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
struct Asked {
    query: LogQuery,
    after: Option<Cursor>,
}

fn parse(params: &Params, headers: &HeaderMap, follow_default: bool) -> Result<Asked, String> {
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
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
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
    if fleet.job(&job).is_err() {
        return error(StatusCode::NOT_FOUND, &format!("unknown job {job:?}"));
    }
    let asked = match parse(&params, &headers, false) {
        Ok(asked) => asked,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
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
    // Tell the browser to reconnect after 1 s, before any line; then what
    // could not be read, then the lines.
    let mut first = String::from("retry: 1000\n: drover\n\n");
    for (host, e) in &connections.unreachable {
        push_event(
            &mut first,
            Some("note"),
            None,
            &json!({ "note": format!("host {host}: {e}") }).to_string(),
        );
    }
    let stop = Box::pin(ended(who.ended(), dashboard.inner.shutdown.clone()));
    let state = (events, stop, DropGuard(cancel), false);
    let body = stream::unfold(state, |(mut events, mut stop, guard, done)| async move {
        if done {
            return None;
        }
        let mut text = String::new();
        let mut done = false;
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    push_log_event(&mut text, event);
                    // Whatever else is waiting goes in the same write, up to
                    // a bound: one write per line would cost more than the line.
                    while text.len() < BATCH {
                        match events.try_recv() {
                            Ok(event) => push_log_event(&mut text, event),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                push_end(&mut text, "end of log");
                                done = true;
                                break;
                            }
                        }
                    }
                }
                None => {
                    push_end(&mut text, "end of log");
                    done = true;
                }
            },
            reason = &mut stop => {
                push_end(&mut text, reason);
                done = true;
            }
            // Idle proxies close quiet connections: a comment now and then.
            () = tokio::time::sleep(KEEP_ALIVE) => text.push_str(": keep-alive\n\n"),
        }
        Some((
            Ok::<Bytes, Infallible>(Bytes::from(text)),
            (events, stop, guard, done),
        ))
    });
    let body = stream::once(async move { Ok::<Bytes, Infallible>(Bytes::from(first)) }).chain(body);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// How much one write of the event stream carries at most (a line beyond
/// it still goes whole).
const BATCH: usize = 64 * 1024;

/// How long the event stream may stay silent before a comment keeps it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Cancels the reader when the response is dropped (the browser left).
struct DropGuard(CancellationToken);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// One server-sent event: `event:`, `id:` and one `data:` line (the data is
/// JSON, which has no raw newline).
fn push_event(out: &mut String, event: Option<&str>, id: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
}

fn push_end(out: &mut String, reason: &str) {
    push_event(
        out,
        Some("end"),
        None,
        &json!({ "reason": reason }).to_string(),
    );
}

fn push_log_event(out: &mut String, event: LogEvent) {
    match event {
        LogEvent::Line(line) => {
            let data = serde_json::to_string(&line).unwrap_or_default();
            push_event(out, None, Some(&line.cursor.to_string()), &data);
        }
        LogEvent::Dropped { host, task, lines } => push_event(
            out,
            Some("dropped"),
            None,
            &json!({ "host": host, "task": task, "lines": lines }).to_string(),
        ),
        LogEvent::Note(note) => push_event(
            out,
            Some("note"),
            None,
            &json!({ "note": note }).to_string(),
        ),
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
    if fleet.job(&job).is_err() {
        return error(StatusCode::NOT_FOUND, &format!("unknown job {job:?}"));
    }
    let asked = match parse(&params, &headers, false) {
        Ok(asked) => asked,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
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

    /// Each event is framed as `EventSource` reads it: a line's id is its
    /// cursor, and a line with a newline or `<script>` in it stays one
    /// `data:` line of JSON.
    #[test]
    fn events_are_framed_for_event_source() {
        let line = drover_fleet::logs::LogLine {
            host: "h1".into(),
            task: 0,
            stream: drover_engine::StreamKind::Stdout,
            time: "2026-11-28T04:05:37.000000001Z".into(),
            line: "a\nb <script>".into(),
            truncated: false,
            cursor: Cursor {
                time_ns: 1_795_838_737_000_000_001,
                host: "h1".into(),
                task: 0,
                n: 0,
            },
        };
        let mut out = String::new();
        push_log_event(&mut out, LogEvent::Line(line));
        push_log_event(
            &mut out,
            LogEvent::Dropped {
                host: "h1".into(),
                task: 0,
                lines: 7,
            },
        );
        push_end(&mut out, "end of log");
        let events: Vec<&str> = out.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 3, "{out}");
        assert!(
            events[0].starts_with("id: 1795838737000000001.0.0.h1\ndata: {"),
            "{out}"
        );
        assert_eq!(events[0].lines().count(), 2, "{out}");
        assert!(events[0].contains(r#""line":"a\nb <script>""#), "{out}");
        assert_eq!(
            events[1],
            r#"event: dropped
data: {"host":"h1","lines":7,"task":0}"#
        );
        assert_eq!(
            events[2],
            r#"event: end
data: {"reason":"end of log"}"#
        );
    }

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
        let asked = parse(&params, &headers, false).unwrap();
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
            assert!(parse(&bad, &headers, false).is_err(), "{bad:?}");
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
        let asked = parse(&params, &headers, false).unwrap();
        assert_eq!(asked.query.tail, None);
        assert_eq!(asked.after.map(|c| c.task), Some(0));
    }
}
