//! Streams: logs, exec sessions, events. These hold no request slot while
//! they flow (they may flow for hours); opening one does.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{EventsOptions, LogsOptions};
use drover_plan::labels;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::DockerEngine;
use crate::{
    EngineError, EngineEvent, ExecSession, LogChunk, LogOptions, LogStream, StreamKind, Streams,
};

/// Most events [`Streams::past_events`] returns.
const MAX_PAST_EVENTS: usize = 1000;

fn chunk(output: LogOutput) -> Option<LogChunk> {
    match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => Some(LogChunk {
            stream: StreamKind::Stdout,
            bytes: message,
        }),
        LogOutput::StdErr { message } => Some(LogChunk {
            stream: StreamKind::Stderr,
            bytes: message,
        }),
        LogOutput::StdIn { .. } => None,
    }
}

#[async_trait]
impl Streams for DockerEngine {
    fn logs(&self, id: &str, options: LogOptions) -> LogStream {
        let query = LogsOptions {
            follow: options.follow,
            stdout: options.stdout,
            stderr: options.stderr,
            since: options
                .since
                .and_then(|s| i32::try_from(s).ok())
                .unwrap_or(0),
            until: 0,
            timestamps: true,
            tail: options
                .tail
                .map_or_else(|| "all".to_string(), |t| t.to_string()),
        };
        let (host, address) = (self.host.clone(), self.address.clone());
        self.docker
            .logs(id, Some(query))
            .filter_map(move |item| {
                let mapped = match item {
                    Ok(output) => chunk(output).map(Ok),
                    Err(e) => Some(Err(EngineError::from_bollard(e, &host, &address))),
                };
                futures::future::ready(mapped)
            })
            .boxed()
    }

    async fn exec_session(
        &self,
        id: &str,
        cmd: &[String],
        tty: bool,
    ) -> Result<ExecSession, EngineError> {
        let create = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            cmd: Some(cmd.to_vec()),
            env: Some(vec!["TERM=xterm-256color".to_string()]),
            ..Default::default()
        };
        let exec = self
            .call(
                "create an exec session",
                self.timeout,
                self.docker.create_exec(id, create),
            )
            .await?;
        let start = StartExecOptions {
            detach: false,
            tty,
            output_capacity: Some(64 * 1024),
        };
        let started = self
            .call(
                "start an exec session",
                self.timeout,
                self.docker.start_exec(&exec.id, Some(start)),
            )
            .await?;
        match started {
            StartExecResults::Attached { output, input } => {
                let (host, address) = (self.host.clone(), self.address.clone());
                let output = output
                    .filter_map(move |item| {
                        futures::future::ready(match item {
                            Ok(o) => chunk(o).map(Ok),
                            Err(e) => Some(Err(EngineError::from_bollard(e, &host, &address))),
                        })
                    })
                    .boxed();
                Ok(ExecSession {
                    exec_id: exec.id,
                    output,
                    input,
                })
            }
            StartExecResults::Detached => Err(EngineError::Other(
                "the exec session started detached".to_string(),
            )),
        }
    }

    async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let options = ResizeExecOptions {
            height: rows,
            width: cols,
        };
        self.call(
            "resize an exec session",
            self.timeout,
            self.docker.resize_exec(exec_id, options),
        )
        .await
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, EngineError> {
        let inspect = self
            .call(
                "inspect an exec session",
                self.timeout,
                self.docker.inspect_exec(exec_id),
            )
            .await?;
        Ok(if inspect.running.unwrap_or(false) {
            None
        } else {
            inspect.exit_code
        })
    }

    fn events(&self, env: &str) -> BoxStream<'static, Result<EngineEvent, EngineError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![format!("{}={env}", labels::ENV)]),
        ]);
        let options = EventsOptions {
            since: None,
            until: None,
            filters: Some(filters),
        };
        let (host, address) = (self.host.clone(), self.address.clone());
        self.docker
            .events(Some(options))
            .map(move |item| {
                let message = item.map_err(|e| EngineError::from_bollard(e, &host, &address))?;
                let actor = message.actor.unwrap_or_default();
                Ok(EngineEvent {
                    container: actor.id.unwrap_or_default(),
                    action: message.action.unwrap_or_default(),
                    labels: actor.attributes.unwrap_or_default().into_iter().collect(),
                    time_nano: message.time_nano.unwrap_or(0),
                })
            })
            .boxed()
    }

    async fn past_events(
        &self,
        env: &str,
        action: &str,
        since: i64,
    ) -> Result<Vec<EngineEvent>, EngineError> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec![action.to_string()]),
            ("label".to_string(), vec![format!("{}={env}", labels::ENV)]),
        ]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let options = EventsOptions {
            since: Some(since.to_string()),
            until: Some(now.to_string()),
            filters: Some(filters),
        };
        // The engine closes the list at `until` by its own clock: one behind
        // drover's would hold it open, so what arrived by the deadline is the answer.
        let _permit = self.limits.acquire().await;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut stream = self.docker.events(Some(options));
        let mut events = Vec::new();
        while events.len() < MAX_PAST_EVENTS {
            let message = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(message)) => message.map_err(|e| self.err(e))?,
                Ok(None) | Err(_) => break,
            };
            let actor = message.actor.unwrap_or_default();
            events.push(EngineEvent {
                container: actor.id.unwrap_or_default(),
                action: message.action.unwrap_or_default(),
                labels: actor.attributes.unwrap_or_default().into_iter().collect(),
                time_nano: message.time_nano.unwrap_or(0),
            });
        }
        Ok(events)
    }
}
