//! One-off containers of a job: `drover run` and the `[release]` command.
//!
//! Both run a command once in a container made from the job's own
//! configuration — rendered by the same [`drover_plan::render_job`] the
//! planner uses (image, env, secrets, volumes, host files, network,
//! limits), then with the command replaced, no restart policy and no health
//! check. Such a container is named `ENV.JOB.HOST.run-ID` (or
//! `release-ID`) and labelled with its role, so `status`, `diff` and `up`
//! pass it by and `gc` knows what it is ([`drover_plan::retention::one_offs`]).
//! Its labels record who started it, from which process (a one-off whose
//! drover is gone is left behind), and for a release its timeout.
//!
//! [`Fleet::start_one_off`] pulls the image if the host lacks it, creates
//! the container, attaches to it before it starts (so no output is lost)
//! and starts it; [`OneOff::finish`] streams its output as it comes until
//! it ends, a deadline passes or the run is cancelled — then stops it,
//! reads its exit code and removes it unless asked to keep it. `drover run`
//! ([`Fleet::run_once`]), the release before a rollout ([`Fleet::release`])
//! and the dashboard all go through these two.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_engine::{Attachment, CreateOptions, Engine, EngineError, LogChunk, LogStream};
use drover_plan::{labels, render_job, DesiredTask, OneOffKind, TaskConfig};
use drover_spec::ImageRef;
use futures::StreamExt;
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use crate::{list, now_rfc3339, Connections, Fleet, FleetError};

/// Lines of a one-off's output kept for its report.
pub const LAST_LINES: usize = 20;
/// Longest line kept for the report; the rest is cut.
const MAX_LINE: usize = 2048;

/// What to run once, and how.
#[derive(Debug, Clone)]
pub struct OneOffSpec {
    pub kind: OneOffKind,
    /// The command (replacing the job's; the job's entrypoint stays, as
    /// with `docker run IMAGE CMD`).
    pub command: Vec<String>,
    pub attachment: Attachment,
    /// The drover command recorded on the container (`run web`, `update web --image …`).
    pub recorded: String,
    /// A release's `[release] timeout`, recorded so `history` can tell a run
    /// stopped at it.
    pub timeout: Option<Duration>,
}

/// What `drover run` asks for.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    pub job: &'a str,
    /// One of the job's hosts; `None`: its first this run may touch.
    pub host: Option<&'a str>,
    /// Instead of the job's image.
    pub image: Option<&'a ImageRef>,
    pub command: &'a [String],
    pub attachment: Attachment,
}

/// A one-off container, started, its stdio attached.
pub struct OneOff {
    pub job: String,
    pub host: String,
    pub name: String,
    pub id: String,
    pub image: String,
    pub kind: OneOffKind,
    /// How long a graceful stop may take (the job's `stop_timeout`).
    pub stop_timeout: Duration,
    output: LogStream,
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    engine: Arc<dyn Engine>,
    started: Instant,
}

/// How a one-off run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// `None` when it could not be read (the host went away).
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// It was still running at the deadline, and was stopped.
    pub timed_out: bool,
    /// The run was cancelled (Ctrl-C), and the container stopped.
    pub interrupted: bool,
    /// Still on the host (`--keep`, a release record, or its removal failed).
    pub kept: bool,
    pub took: Duration,
    /// The last lines of its output (stdout and stderr together).
    pub last_lines: Vec<String>,
    /// What went wrong on the way out (a stop or removal the engine refused).
    pub warnings: Vec<String>,
}

/// A handle to resize a one-off's terminal while [`OneOff::finish`] runs.
#[derive(Clone)]
pub struct Terminal {
    engine: Arc<dyn Engine>,
    id: String,
}

impl Terminal {
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.engine.resize_tty(&self.id, rows, cols).await
    }
}

impl OneOff {
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The writer to its stdin, when it was created with one open; the
    /// caller feeds it from wherever its input comes (and drops it at EOF).
    pub fn take_input(&mut self) -> Option<Pin<Box<dyn AsyncWrite + Send>>> {
        self.input.take()
    }

    pub fn terminal(&self) -> Terminal {
        Terminal {
            engine: Arc::clone(&self.engine),
            id: self.id.clone(),
        }
    }

    /// Passes its output to `output` as it comes, until it ends, `deadline`
    /// passes or `cancel` fires (then it is stopped gracefully, within its
    /// stop timeout); reads how it ended; removes it unless `keep`.
    pub async fn finish(
        mut self,
        output: &mut (dyn FnMut(&LogChunk) + Send),
        deadline: Option<Duration>,
        cancel: &CancellationToken,
        keep: bool,
    ) -> Ended {
        let mut last = LastLines::default();
        let until = deadline.map(|d| tokio::time::Instant::from_std(self.started) + d);
        let mut timed_out = false;
        let mut interrupted = false;
        let mut warnings = Vec::new();
        let over = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(over);
        loop {
            tokio::select! {
                chunk = self.output.next() => match chunk {
                    Some(Ok(chunk)) => {
                        last.push(&chunk.bytes);
                        output(&chunk);
                    }
                    // The stream ends with the process (or the connection).
                    Some(Err(_)) | None => break,
                },
                () = cancel.cancelled() => {
                    interrupted = true;
                    break;
                }
                () = &mut over => {
                    timed_out = true;
                    break;
                }
            }
        }
        // The output ends when the process does; wait for the engine to
        // say so, still within the deadline and the cancellation.
        let waited = if timed_out || interrupted {
            None
        } else {
            tokio::select! {
                code = self.engine.wait_exit(&self.id) => Some(code),
                () = cancel.cancelled() => {
                    interrupted = true;
                    None
                }
                () = &mut over => {
                    timed_out = true;
                    None
                }
            }
        };
        if timed_out || interrupted {
            if let Err(e) = self
                .engine
                .stop_container(&self.id, self.stop_timeout)
                .await
            {
                warnings.push(format!("could not stop {}: {e}", self.name));
            }
        }
        let took = self.started.elapsed();
        let (mut exit_code, mut oom_killed) = (None, false);
        if let Some(Ok(code)) = waited {
            exit_code = Some(code);
        }
        if let Ok(Some(c)) = self.engine.inspect_container(&self.id).await {
            if !c.is_running() {
                exit_code = c.runs.exit_code.or(exit_code);
                oom_killed = c.runs.oom_killed;
            }
        }
        if let Some(Err(e)) = waited {
            if exit_code.is_none() {
                warnings.push(format!(
                    "could not read the exit code of {}: {e}",
                    self.name
                ));
            }
        }
        let mut kept = true;
        if !keep {
            match self.engine.remove_container(&self.id).await {
                Ok(()) => kept = false,
                Err(e) => warnings.push(format!(
                    "could not remove {}: {e}; `drover gc` removes it",
                    self.name
                )),
            }
        }
        Ended {
            exit_code,
            oom_killed,
            timed_out,
            interrupted,
            kept,
            took,
            last_lines: last.finish(),
            warnings,
        }
    }
}

/// The last lines of a stream of bytes, each at most [`MAX_LINE`] long.
#[derive(Default)]
struct LastLines {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl LastLines {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' | b'\r' => self.end_line(),
                _ if self.partial.len() < MAX_LINE => self.partial.push(b),
                _ => {}
            }
        }
    }

    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial)
            .trim_end()
            .to_string();
        self.partial.clear();
        if line.is_empty() {
            return;
        }
        if self.lines.len() == LAST_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn finish(mut self) -> Vec<String> {
        self.end_line();
        self.lines.into()
    }
}

impl Fleet {
    /// The host a one-off of `job` runs on: `host` if the job runs there,
    /// else the job's first host this run may touch.
    pub fn one_off_host(&self, job: &str, host: Option<&str>) -> Result<String, FleetError> {
        let spec = self.job(job)?;
        match host {
            Some(host) if spec.hosts.iter().any(|h| h == host) => Ok(host.to_string()),
            Some(host) => Err(FleetError::Other(format!(
                "job {job} does not run on host {host} (its hosts, in {}: {})",
                spec.file,
                list(&spec.hosts)
            ))),
            None => {
                let allowed = self.hosts();
                spec.hosts
                    .iter()
                    .find(|h| allowed.contains(*h))
                    .cloned()
                    .ok_or_else(|| {
                        FleetError::Other(format!(
                            "job {job} runs on none of the hosts given to --host (its hosts: {})",
                            list(&spec.hosts)
                        ))
                    })
            }
        }
    }

    /// The configuration a one-off of `job` gets on `host` (see
    /// [`Fleet::one_off_host`]), with `image` instead of the job's, as
    /// [`render_job`] renders it for the planner: the job's first task on
    /// that host.
    pub fn one_off_task(
        &self,
        job: &str,
        host: Option<&str>,
        image: Option<&ImageRef>,
    ) -> Result<DesiredTask, FleetError> {
        let host = self.one_off_host(job, host)?;
        let mut spec = self.job(job)?.clone();
        if let Some(image) = image {
            spec.image = image.clone();
        }
        let secrets = self.secrets(&[&spec])?;
        render_job(&self.env, &spec, &secrets)?
            .into_iter()
            .find(|t| t.key.host == host)
            .ok_or_else(|| FleetError::Other(format!("job {job} has no task on host {host}")))
    }

    /// `drover run`: starts the command once in a container of the job, on
    /// its host (or its first), with its image (or another).
    pub async fn run_once(
        &self,
        connections: &Connections,
        request: &RunRequest<'_>,
        notes: &(dyn Fn(&str) + Sync),
    ) -> Result<OneOff, FleetError> {
        let job = request.job;
        if request.command.is_empty() {
            return Err(FleetError::Other(format!(
                "drover run needs the command to run after --, e.g. `drover run {job} -- sh`"
            )));
        }
        let task = self.one_off_task(job, request.host, request.image)?;
        let mut recorded = format!("run {job}");
        if let Some(image) = request.image {
            recorded.push_str(&format!(" --image {image}"));
        }
        let spec = OneOffSpec {
            kind: OneOffKind::Run,
            command: request.command.to_vec(),
            attachment: request.attachment,
            recorded,
            timeout: None,
        };
        self.start_one_off(connections, &task, &spec, notes).await
    }

    /// Starts a one-off of `task`'s job on its host, with `task`'s
    /// configuration and `spec`'s command: pulls the image if the host
    /// lacks it, creates, attaches, starts. Nothing is left on the host
    /// when this fails.
    pub async fn start_one_off(
        &self,
        connections: &Connections,
        task: &DesiredTask,
        spec: &OneOffSpec,
        notes: &(dyn Fn(&str) + Sync),
    ) -> Result<OneOff, FleetError> {
        let (job, host) = (&task.key.job, &task.key.host);
        let engine = match (
            connections.engines.get(host),
            connections.unreachable.get(host),
        ) {
            (Some(engine), _) => Arc::clone(engine),
            (None, Some(error)) => return Err(FleetError::Other(error.to_string())),
            (None, None) => return Err(FleetError::Other(format!("host {host} is not connected"))),
        };
        let image = task.config.image.clone();
        let present = engine
            .inspect_image(&image)
            .await
            .map_err(|e| {
                FleetError::Other(format!("cannot look for image {image} on host {host}: {e}"))
            })?
            .is_some();
        if !present {
            if task.image.is_id() {
                return Err(FleetError::Other(format!(
                    "image {image} is not on host {host} and an image ID cannot be pulled: load it there (docker load) or name it by tag"
                )));
            }
            notes(&format!("pulling {image} on host {host}"));
            engine.pull_image(&image, &|_| {}).await.map_err(|e| {
                FleetError::Other(format!("{e}; the image is needed to run the command"))
            })?;
        }
        let config = one_off_config(&task.config, &spec.command);
        let labels = one_off_labels(&self.env.name, task, spec);
        let options = CreateOptions { labels };
        let mut attempt = 0;
        let (name, id) = loop {
            let name = spec
                .kind
                .container_name(&self.env.name, job, host, &one_off_id(attempt));
            match engine
                .create_attached(&name, &config, &options, spec.attachment)
                .await
            {
                Ok(id) => break (name, id),
                // Two runs in the same instant: another ID.
                Err(EngineError::Conflict(_)) if attempt < 3 => attempt += 1,
                Err(e) => {
                    return Err(FleetError::Other(format!(
                        "cannot create the container for the command on host {host}: {e}"
                    )))
                }
            }
        };
        let session = match engine.attach(&id).await {
            Ok(session) => session,
            Err(e) => {
                let _ = engine.remove_container(&id).await;
                return Err(FleetError::Other(format!(
                    "cannot attach to {name} on host {host}: {e}"
                )));
            }
        };
        let started = Instant::now();
        if let Err(e) = engine.start_container(&id).await {
            let _ = engine.remove_container(&id).await;
            return Err(FleetError::Other(format!(
                "cannot start the command on host {host}: {e}"
            )));
        }
        Ok(OneOff {
            job: job.clone(),
            host: host.clone(),
            name,
            id,
            image,
            kind: spec.kind,
            stop_timeout: config.stop_timeout,
            output: session.output,
            input: spec.attachment.stdin.then_some(session.input),
            engine,
            started,
        })
    }
}

/// The task's configuration with `command`, run once: no restart policy
/// (it is never restarted) and no health check (nothing gates it).
pub fn one_off_config(config: &TaskConfig, command: &[String]) -> TaskConfig {
    let mut config = config.clone();
    config.command = Some(command.to_vec());
    config.restart = "no".to_string();
    config.health = None;
    config
}

/// A one-off's labels: the environment, job and host, its role, who
/// started it from which process, the names of the secrets it holds, and a
/// release's timeout. No `drover.task` and no `drover.spec`: it is no task's.
pub fn one_off_labels(
    env: &str,
    task: &DesiredTask,
    spec: &OneOffSpec,
) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = task
        .labels(env)
        .into_iter()
        .filter(|(k, _)| k != labels::TASK && k != labels::SPEC)
        .collect();
    map.insert(labels::ROLE.to_string(), spec.kind.role().to_string());
    map.insert(
        labels::DEPLOYED_BY.to_string(),
        drover_apply::lock::operator(),
    );
    map.insert(labels::DEPLOYED_AT.to_string(), now_rfc3339());
    map.insert(labels::COMMAND.to_string(), spec.recorded.clone());
    map.insert(labels::PID.to_string(), std::process::id().to_string());
    if let Some(timeout) = spec.timeout {
        map.insert(labels::TIMEOUT.to_string(), timeout.as_millis().to_string());
    }
    map
}

/// A short ID for a one-off's name: the time and this process, in hex.
fn one_off_id(attempt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ u64::from(attempt);
    format!("{:08x}", (mixed ^ (mixed >> 29)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_kept_whole_and_bounded() {
        let mut last = LastLines::default();
        for i in 0..30 {
            last.push(format!("line {i}\n").as_bytes());
        }
        last.push(b"progress 10%\rprogress 20%\r\nno newline at the end");
        let lines = last.finish();
        assert_eq!(lines.len(), LAST_LINES);
        assert_eq!(
            &lines[LAST_LINES - 3..],
            ["progress 10%", "progress 20%", "no newline at the end"]
        );
        let mut long = LastLines::default();
        long.push(&vec![b'x'; 10_000]);
        assert_eq!(long.finish()[0].len(), MAX_LINE);
    }
}
