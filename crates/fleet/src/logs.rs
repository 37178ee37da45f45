//! A job's logs: every task on every host, merged in time order (by the
//! engine's timestamps), each line tagged `host/task`, for `drover logs`
//! and the dashboard alike.
//!
//! Memory stays bounded however fast a container writes and however long
//! its lines are: lines are cut at [`MAX_LINE`] (a TTY container writing
//! `\r` without `\n` cannot grow a buffer), every queue has a fixed depth,
//! and a follower that cannot keep up drops lines and says how many
//! ([`LogEvent::Dropped`]) rather than buffering them.
//!
//! [`Fleet::failed_logs`] reads, the same way, the containers the last
//! rollout that failed its gate kept aside (`ENV.JOB.HOST.TASK.failed`):
//! the evidence of why it failed, after the task went back.
//!
//! Following survives what happens to tasks: when a task's container stops
//! or is replaced (a rollout, a restart) the follower picks up the
//! container now under the task's name; when a host drops, it retries until
//! the host answers again. Every line carries a [`Cursor`]; a reader that
//! resumes after one gets the lines after it, with no gap and no duplicate.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use drover_apply::Engines;
use drover_engine::{Engine, LogOptions, StreamKind};
use drover_plan::TaskKey;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Fleet;

/// Longest line kept; the rest of a longer one is cut (and marked).
pub const MAX_LINE: usize = 8 * 1024;
/// Lines queued per task, and out of the merge.
const QUEUE: usize = 1024;
/// How long a live line may wait to be put in time order with the others.
const REORDER: Duration = Duration::from_millis(250);
/// How long to wait before asking a host again after it failed.
const RETRY: Duration = Duration::from_secs(2);
/// Lines a follow re-reads from the end of a log when it first attaches.
const FOLLOW_WINDOW: usize = 10_000;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this task (`host`, `task`).
    pub task: Option<(String, u32)>,
    /// Lines per task from the end; `None`: all.
    pub tail: Option<usize>,
    /// Only lines from this time on (nanoseconds since the epoch).
    pub since_ns: Option<i64>,
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Only lines containing this text (matched on the drover side, before queueing).
    pub grep: Option<String>,
}

/// Where a line sits in the merged log: its time, its task, and its rank
/// among that task's lines of the very same nanosecond.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub time_ns: i64,
    pub host: String,
    pub task: u32,
    pub n: u32,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}.{}", self.time_ns, self.n, self.task, self.host)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid log cursor {text:?}");
        let mut parts = text.splitn(4, '.');
        let time_ns = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let n = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let task = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let host = parts
            .next()
            .filter(|h| !h.is_empty())
            .ok_or_else(bad)?
            .to_string();
        Ok(Cursor {
            time_ns,
            host,
            task,
            n,
        })
    }
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub host: String,
    pub task: u32,
    pub stream: StreamKind,
    /// The engine's timestamp, RFC 3339 with nanoseconds.
    pub time: String,
    pub line: String,
    /// The line was longer than [`MAX_LINE`] and was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(skip)]
    pub cursor: Cursor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    Line(LogLine),
    /// A reader fell behind a fast writer: this many lines of the task were dropped.
    Dropped {
        host: String,
        task: u32,
        lines: u64,
    },
    /// Something the reader should know (a host dropped, a task was replaced).
    Note(String),
}

impl Fleet {
    /// The logs of `job`, merged, on a bounded channel; following (when
    /// asked) until `cancel` fires or the receiver is dropped.
    pub fn follow_logs(
        &self,
        engines: Engines,
        job: &str,
        query: LogQuery,
        after: Option<Cursor>,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<LogEvent> {
        self.read_logs(
            engines,
            job,
            query,
            None,
            after,
            cancel,
            TaskKey::container_name,
        )
    }

    /// The output of the containers of `tasks` (of `job`) that failed a
    /// rollout's gate (one per task, kept aside stopped), merged like
    /// [`Fleet::follow_logs`]; a task with none has no lines. Never
    /// follows: they do not run.
    pub fn failed_logs(
        &self,
        engines: Engines,
        job: &str,
        tasks: &BTreeSet<TaskKey>,
        mut query: LogQuery,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<LogEvent> {
        query.follow = false;
        self.read_logs(
            engines,
            job,
            query,
            Some(tasks),
            None,
            cancel,
            TaskKey::failed_name,
        )
    }

    /// The logs of the containers `name` gives each of `job`'s tasks.
    #[allow(clippy::too_many_arguments)]
    fn read_logs(
        &self,
        engines: Engines,
        job: &str,
        query: LogQuery,
        only: Option<&BTreeSet<TaskKey>>,
        after: Option<Cursor>,
        cancel: CancellationToken,
        name: fn(&TaskKey, &str) -> String,
    ) -> mpsc::Receiver<LogEvent> {
        let keys: Vec<TaskKey> = match self.env.jobs.get(job) {
            Some(spec) => self.task_keys(&[spec]),
            None => Vec::new(),
        };
        let keys: Vec<TaskKey> = keys
            .into_iter()
            .filter(|k| {
                query
                    .task
                    .as_ref()
                    .is_none_or(|(h, t)| &k.host == h && k.task == *t)
                    && only.is_none_or(|only| only.contains(k))
            })
            .collect();
        let (out, receiver) = mpsc::channel(QUEUE);
        let env = self.env.name.clone();
        tokio::spawn(async move {
            run(env, engines, keys, query, after, cancel, out, name).await;
        });
        receiver
    }
}

/// A task's reader: its container name and engine.
#[derive(Clone)]
struct Source {
    key: TaskKey,
    name: String,
    engine: Option<Arc<dyn Engine>>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    env: String,
    engines: Engines,
    keys: Vec<TaskKey>,
    query: LogQuery,
    after: Option<Cursor>,
    cancel: CancellationToken,
    out: mpsc::Sender<LogEvent>,
    name: fn(&TaskKey, &str) -> String,
) {
    let sources: Vec<Source> = keys
        .into_iter()
        .map(|key| Source {
            name: name(&key, &env),
            engine: engines.get(&key.host).cloned(),
            key,
        })
        .collect();
    // One note per host that is not connected, naming its tasks.
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in sources.iter().filter(|s| s.engine.is_none()) {
        missing
            .entry(s.key.host.as_str())
            .or_default()
            .push(s.key.to_string());
    }
    for (host, tasks) in missing {
        let _ = out
            .send(LogEvent::Note(format!(
                "host {host} is not connected: the logs of {} are missing",
                tasks.join(", ")
            )))
            .await;
    }
    let since = after.as_ref().map(|c| c.time_ns).max(query.since_ns);

    // History: every task's past lines, merged strictly in time order.
    let mut last: BTreeMap<(String, u32), ReadTo> = BTreeMap::new();
    if !(query.follow && query.tail == Some(0)) {
        let history = LogOptions {
            follow: false,
            tail: query.tail,
            since: since.map(|ns| ns.div_euclid(1_000_000_000)),
            stdout: query.stdout,
            stderr: query.stderr,
        };
        let mut heads = Vec::new();
        for s in sources.iter().filter(|s| s.engine.is_some()) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let (source, options, query) = (s.clone(), history.clone(), query.clone());
            tokio::spawn(async move {
                read_once(&source, options, &query, &tx).await;
            });
            heads.push(rx);
        }
        let floor = after.clone();
        if !merge_history(heads, &floor, since, &out, &mut last, &cancel).await {
            return;
        }
    }
    if !query.follow {
        return;
    }

    // Live: every task followed at once, across replacements and outages.
    let (tx, mut rx) = mpsc::channel::<Item>(QUEUE);
    let now_ns = now_ns();
    // `--tail 0 -f` with nothing to resume: only what comes from now on.
    let fresh_start = query.tail == Some(0) && after.is_none();
    for s in sources.into_iter().filter(|s| s.engine.is_some()) {
        let from = last
            .get(&(s.key.host.clone(), s.key.task))
            .cloned()
            .unwrap_or_else(|| {
                ReadTo::at(after.clone().unwrap_or(Cursor {
                    time_ns: since.unwrap_or(now_ns).max(0),
                    host: String::new(),
                    task: 0,
                    n: 0,
                }))
            });
        let (tx, query, cancel) = (tx.clone(), query.clone(), cancel.clone());
        tokio::spawn(async move { follow(s, query, from, fresh_start, tx, cancel).await });
    }
    drop(tx);
    // A short window puts lines of different tasks in time order: lines
    // wait in `order` (by cursor) with their arrival in `waiting`.
    let mut order: BinaryHeap<Reverse<(Cursor, u64)>> = BinaryHeap::new();
    let mut waiting: BTreeMap<u64, (Instant, LogLine)> = BTreeMap::new();
    let mut seq = 0u64;
    loop {
        let wait = order
            .peek()
            .and_then(|Reverse((_, id))| waiting.get(id))
            .map(|(ready_at, _)| ready_at.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = out.closed() => return,
            item = rx.recv() => match item {
                Some(Item::Event(event)) => {
                    let Ok(()) = out.send(event).await else { return };
                }
                Some(Item::Line(line)) => {
                    seq += 1;
                    order.push(Reverse((line.cursor.clone(), seq)));
                    waiting.insert(seq, (Instant::now() + REORDER, line));
                    while order.len() > QUEUE {
                        if !emit_first(&mut order, &mut waiting, &out).await {
                            return;
                        }
                    }
                }
                None if order.is_empty() => return,
                None => {}
            },
            () = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600))), if wait.is_some() => {
                while let Some(Reverse((_, id))) = order.peek() {
                    if waiting.get(id).is_some_and(|(ready_at, _)| *ready_at > Instant::now()) {
                        break;
                    }
                    if !emit_first(&mut order, &mut waiting, &out).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Sends the earliest waiting line; false if the reader went away.
async fn emit_first(
    order: &mut BinaryHeap<Reverse<(Cursor, u64)>>,
    waiting: &mut BTreeMap<u64, (Instant, LogLine)>,
    out: &mpsc::Sender<LogEvent>,
) -> bool {
    let Some(Reverse((_, id))) = order.pop() else {
        return true;
    };
    match waiting.remove(&id) {
        Some((_, line)) => out.send(LogEvent::Line(line)).await.is_ok(),
        None => true,
    }
}

enum Item {
    Line(LogLine),
    Event(LogEvent),
}

/// Merges the tasks' history streams by time; returns false if the reader went away.
async fn merge_history(
    mut heads: Vec<mpsc::Receiver<LogLine>>,
    after: &Option<Cursor>,
    since: Option<i64>,
    out: &mpsc::Sender<LogEvent>,
    last: &mut BTreeMap<(String, u32), ReadTo>,
    cancel: &CancellationToken,
) -> bool {
    let mut front: Vec<Option<LogLine>> = Vec::new();
    for head in &mut heads {
        front.push(head.recv().await);
    }
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let Some(i) = front
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
            .min_by(|a, b| a.1.cursor.cmp(&b.1.cursor))
            .map(|(i, _)| i)
        else {
            return true;
        };
        let Some(line) = front[i].take() else {
            return true;
        };
        last.entry((line.host.clone(), line.task))
            .or_insert_with(|| ReadTo::at(line.cursor.clone()))
            .advance(&line);
        let wanted = after.as_ref().is_none_or(|a| line.cursor > *a)
            && since.is_none_or(|s| line.cursor.time_ns >= s);
        // Out before the next line of its task is read: each task's lines
        // come in time order, so the earliest front is final now, and a
        // task whose next line is long in coming (an endless line being
        // skipped to its end) holds nothing back.
        if wanted && out.send(LogEvent::Line(line)).await.is_err() {
            return false;
        }
        front[i] = heads[i].recv().await;
    }
}

/// Reads one non-following request of a task into `tx`.
async fn read_once(
    source: &Source,
    options: LogOptions,
    query: &LogQuery,
    tx: &mpsc::Sender<LogLine>,
) {
    let Some(engine) = &source.engine else { return };
    let mut lines = Lines::new(&source.key);
    let mut stream = engine.logs(&source.name, options);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        for line in lines.push(chunk.stream, &chunk.bytes) {
            if matches(query, &line) && tx.send(line).await.is_err() {
                return;
            }
        }
    }
    for line in lines.finish() {
        if matches(query, &line) && tx.send(line).await.is_err() {
            return;
        }
    }
}

fn matches(query: &LogQuery, line: &LogLine) -> bool {
    query
        .grep
        .as_ref()
        .is_none_or(|g| line.line.contains(g.as_str()))
}

/// Follows one task for as long as asked: its container now, and whichever
/// container takes the task's name next.
async fn follow(
    source: Source,
    query: LogQuery,
    mut from: ReadTo,
    fresh_start: bool,
    tx: mpsc::Sender<Item>,
    cancel: CancellationToken,
) {
    let Some(engine) = source.engine.clone() else {
        return;
    };
    let mut dropped = 0u64;
    let mut following: Option<String> = None;
    let mut reported_down = false;
    loop {
        if cancel.is_cancelled() || tx.is_closed() {
            return;
        }
        let container = match engine.inspect_container(&source.name).await {
            Ok(c) => {
                if reported_down {
                    reported_down = false;
                    let _ = tx
                        .send(Item::Event(LogEvent::Note(format!(
                            "host {} answers again: following {} again",
                            source.key.host, source.key
                        ))))
                        .await;
                }
                c
            }
            Err(e) => {
                if !reported_down {
                    reported_down = true;
                    let _ = tx
                        .send(Item::Event(LogEvent::Note(format!(
                            "{}: {e}; retrying",
                            source.key
                        ))))
                        .await;
                }
                if sleep_or_cancel(RETRY, &cancel).await {
                    return;
                }
                continue;
            }
        };
        let Some(container) = container else {
            if sleep_or_cancel(Duration::from_secs(1), &cancel).await {
                return;
            }
            continue;
        };
        if following.as_ref().is_some_and(|id| *id != container.id) {
            let _ = tx
                .send(Item::Event(LogEvent::Note(format!(
                    "{} now runs in container {}: following it",
                    source.key,
                    container.short_id()
                ))))
                .await;
        }
        // The first request starts near the end of the log instead of
        // making the engine read it from the start to find `from`: the
        // window covers the moment between history and follow.
        let tail = match (&following, query.tail) {
            (Some(_), _) => None,
            (None, Some(0)) if fresh_start => Some(0),
            (None, _) => Some(FOLLOW_WINDOW),
        };
        following = Some(container.id.clone());
        let options = LogOptions {
            follow: true,
            tail,
            since: Some(from.earliest().div_euclid(1_000_000_000)),
            stdout: query.stdout,
            stderr: query.stderr,
        };
        let mut lines = Lines::new(&source.key);
        let mut stream = engine.logs(&container.id, options);
        loop {
            let chunk = tokio::select! {
                () = cancel.cancelled() => return,
                chunk = stream.next() => chunk,
            };
            let Some(Ok(chunk)) = chunk else { break };
            for line in lines.push(chunk.stream, &chunk.bytes) {
                if !from.is_new(&line) || !matches(&query, &line) {
                    continue;
                }
                from.advance(&line);
                if dropped > 0 {
                    let event = LogEvent::Dropped {
                        host: source.key.host.clone(),
                        task: source.key.task,
                        lines: dropped,
                    };
                    if tx.try_send(Item::Event(event)).is_ok() {
                        dropped = 0;
                    }
                }
                match tx.try_send(Item::Line(line)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
        // The container stopped, or the host dropped: look again shortly.
        if sleep_or_cancel(Duration::from_millis(500), &cancel).await {
            return;
        }
    }
}

/// How far a task's log has been read: the last line of each stream.
///
/// The engine stamps stdout and stderr in two copiers and writes whichever
/// comes first, so its log is in time order per stream but not across them
/// (a stderr line may precede an earlier-stamped stdout line). One position
/// for both would skip that stdout line when the log is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadTo([Cursor; 2]);

impl ReadTo {
    /// Both streams read up to `cursor`.
    fn at(cursor: Cursor) -> Self {
        ReadTo([cursor.clone(), cursor])
    }

    fn is_new(&self, line: &LogLine) -> bool {
        line.cursor > self.0[stream_index(line.stream)]
    }

    fn advance(&mut self, line: &LogLine) {
        let read = &mut self.0[stream_index(line.stream)];
        if line.cursor > *read {
            *read = line.cursor.clone();
        }
    }

    /// Where reading again must start (nanoseconds since the epoch).
    fn earliest(&self) -> i64 {
        self.0[0].time_ns.min(self.0[1].time_ns)
    }
}

fn stream_index(stream: StreamKind) -> usize {
    usize::from(stream == StreamKind::Stderr)
}

/// Sleeps; true if cancelled meanwhile.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

fn now_ns() -> i64 {
    drover_plan::time::now_nanos()
}

/// Cuts a task's output into lines: each starts with the engine's
/// timestamp; a line is cut at [`MAX_LINE`] and the rest skipped to its end.
struct Lines {
    key: TaskKey,
    buffers: [Vec<u8>; 2],
    skipping: [bool; 2],
    /// Per stream, the last timestamp and how many lines carried it.
    last: [(i64, u32); 2],
}

impl Lines {
    fn new(key: &TaskKey) -> Self {
        Lines {
            key: key.clone(),
            buffers: [Vec::new(), Vec::new()],
            skipping: [false, false],
            last: [(0, 0); 2],
        }
    }

    fn push(&mut self, stream: StreamKind, bytes: &[u8]) -> Vec<LogLine> {
        let i = stream_index(stream);
        let mut out = Vec::new();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let complete = piece.ends_with(b"\n");
            let body = if complete {
                &piece[..piece.len() - 1]
            } else {
                piece
            };
            if self.skipping[i] {
                if complete {
                    self.skipping[i] = false;
                }
                continue;
            }
            let room = (MAX_LINE + 64).saturating_sub(self.buffers[i].len());
            if body.len() > room {
                self.buffers[i].extend_from_slice(&body[..room]);
                let text = std::mem::take(&mut self.buffers[i]);
                out.push(self.line(stream, &text, true));
                self.skipping[i] = !complete;
                continue;
            }
            self.buffers[i].extend_from_slice(body);
            if complete {
                let text = std::mem::take(&mut self.buffers[i]);
                out.push(self.line(stream, &text, false));
            }
        }
        out
    }

    /// Whatever is left when the stream ends.
    fn finish(&mut self) -> Vec<LogLine> {
        let mut out = Vec::new();
        for (i, stream) in [(0, StreamKind::Stdout), (1, StreamKind::Stderr)] {
            let text = std::mem::take(&mut self.buffers[i]);
            if !text.is_empty() {
                out.push(self.line(stream, &text, false));
            }
        }
        out
    }

    fn line(&mut self, stream: StreamKind, raw: &[u8], cut: bool) -> LogLine {
        let text = String::from_utf8_lossy(raw);
        let (time, rest) = match text.split_once(' ') {
            Some((t, rest)) if t.len() >= 20 && t.as_bytes()[4] == b'-' && t.contains('T') => {
                (t.to_string(), rest)
            }
            _ => (String::new(), text.as_ref()),
        };
        let last = &mut self.last[stream_index(stream)];
        let time_ns = if time.is_empty() {
            last.0
        } else {
            parse_ns(&time).unwrap_or(last.0)
        };
        let n = if time_ns == last.0 { last.1 + 1 } else { 0 };
        *last = (time_ns, n);
        let mut line = rest.trim_end_matches('\r').to_string();
        let truncated = cut || line.len() > MAX_LINE;
        if line.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        LogLine {
            host: self.key.host.clone(),
            task: self.key.task,
            stream,
            time: if time.is_empty() {
                drover_plan::time::from_unix_secs(time_ns.div_euclid(1_000_000_000))
                    .map(drover_plan::time::format)
                    .unwrap_or_default()
            } else {
                time
            },
            line,
            truncated,
            cursor: Cursor {
                time_ns,
                host: self.key.host.clone(),
                task: self.key.task,
                n,
            },
        }
    }
}

/// Nanoseconds since the epoch of `2026-11-28T04:05:37.123456789Z`.
pub fn parse_ns(text: &str) -> Option<i64> {
    drover_plan::time::parse(text).map(drover_plan::time::unix_nanos)
}

/// `--since`: a duration ago (`10m`, `2h`) or an RFC 3339 time, as nanoseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(d) = drover_spec::units::parse_duration(text) {
        return Ok(now_ns() - i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    }
    parse_ns(text).ok_or_else(|| format!("invalid --since {text:?}: expected a duration ago (\"10m\", \"2h\") or a time (\"2026-11-28T04:05:00Z\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TaskKey {
        TaskKey::new("web", "h1", 0)
    }

    #[test]
    fn lines_keep_their_timestamps_and_order() {
        let mut lines = Lines::new(&key());
        let out = lines.push(StreamKind::Stdout, b"2026-11-28T04:05:37.000000001Z hello\n2026-11-28T04:05:37.000000001Z again\n2026-11-28T04:05:3");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].line, "hello");
        assert_eq!(out[1].cursor.n, 1, "the second line of the same nanosecond");
        assert!(out[0].cursor < out[1].cursor);
        let out = lines.push(StreamKind::Stdout, b"8.5Z split across chunks\r\n");
        assert_eq!(out[0].line, "split across chunks");
        assert_eq!(out[0].time, "2026-11-28T04:05:38.5Z");
    }

    /// The history of two tasks: each line goes out as soon as it is the
    /// earliest of the lines at hand, not when its task's next one comes
    /// (which, for a task skipping an endless line, may be never).
    #[tokio::test]
    async fn history_sends_a_line_before_its_tasks_next_one_is_read() {
        let mut lines = Lines::new(&key());
        let first = lines.push(StreamKind::Stdout, b"2026-11-28T04:05:37Z one\n");
        let mut other = Lines::new(&TaskKey::new("web", "h2", 0));
        let later = other.push(StreamKind::Stdout, b"2026-11-28T04:05:38Z two\n");
        let (tx1, rx1) = mpsc::channel(4);
        let (tx2, rx2) = mpsc::channel(4);
        tx1.send(first[0].clone()).await.unwrap();
        tx2.send(later[0].clone()).await.unwrap();
        let (out, mut received) = mpsc::channel(4);
        let merging = tokio::spawn(async move {
            let mut last = BTreeMap::new();
            merge_history(
                vec![rx1, rx2],
                &None,
                None,
                &out,
                &mut last,
                &CancellationToken::new(),
            )
            .await
        });
        let got = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .expect("the earliest line, while its task says no more");
        assert!(matches!(got, Some(LogEvent::Line(l)) if l.line == "one"));
        drop((tx1, tx2));
        assert!(merging.await.unwrap());
    }

    #[test]
    fn an_endless_line_is_cut_and_memory_stays_bounded() {
        let mut lines = Lines::new(&key());
        let mut emitted = Vec::new();
        let chunk = vec![b'x'; 4096];
        emitted.extend(lines.push(StreamKind::Stdout, b"2026-11-28T04:05:37Z "));
        for _ in 0..10_000 {
            emitted.extend(lines.push(StreamKind::Stdout, &chunk));
            assert!(lines.buffers[0].len() <= MAX_LINE + 64);
        }
        assert_eq!(emitted.len(), 1);
        assert!(emitted[0].truncated);
        assert!(emitted[0].line.len() <= MAX_LINE);
        // The rest of that line is skipped up to its end; the next one comes through.
        let out = lines.push(
            StreamKind::Stdout,
            b"tail of it\n2026-11-28T04:05:39Z next\n",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line, "next");
    }

    /// The engine may write a stderr line before a stdout line stamped
    /// earlier: reading the log again after the stderr line must still
    /// deliver that stdout line, once.
    #[test]
    fn reading_again_skips_nothing_when_streams_interleave_out_of_time_order() {
        let log: [(StreamKind, &[u8]); 3] = [
            (StreamKind::Stdout, b"2026-11-28T04:05:37.100Z line 59\n"),
            (StreamKind::Stderr, b"2026-11-28T04:05:37.300Z warn 60\n"),
            (StreamKind::Stdout, b"2026-11-28T04:05:37.200Z line 60\n"),
        ];
        let read = |upto: usize, from: &mut Option<ReadTo>| {
            let mut lines = Lines::new(&key());
            let mut got = Vec::new();
            for (stream, bytes) in &log[..upto] {
                for line in lines.push(*stream, bytes) {
                    let from = from.get_or_insert_with(|| {
                        ReadTo::at(Cursor {
                            time_ns: 0,
                            host: String::new(),
                            task: 0,
                            n: 0,
                        })
                    });
                    if from.is_new(&line) {
                        from.advance(&line);
                        got.push(line.line);
                    }
                }
            }
            got
        };
        let mut from = None;
        // The connection drops after the stderr line; the log is read again whole.
        assert_eq!(read(2, &mut from), ["line 59", "warn 60"]);
        assert_eq!(read(3, &mut from), ["line 60"]);
        assert_eq!(read(3, &mut from), Vec::<String>::new());
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            time_ns: 1_795_561_558_000_000_001,
            host: "h1.example".into(),
            task: 3,
            n: 2,
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        assert!("nonsense".parse::<Cursor>().is_err());
    }

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(
            parse_since("2026-11-28T04:05:37.5Z"),
            Ok(parse_ns("2026-11-28T04:05:37.5Z").unwrap())
        );
        let ago = parse_since("10m").unwrap();
        assert!((now_ns() - ago - 600_000_000_000).abs() < 5_000_000_000);
        assert!(parse_since("yesterday").is_err());
    }
}
