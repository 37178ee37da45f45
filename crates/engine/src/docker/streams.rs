//! Streams: logs, exec sessions, events. These hold no request slot while
//! they flow (they may flow for hours); opening one does.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    AttachContainerOptions, EventsOptions, ResizeContainerTTYOptions, WaitContainerOptions,
};
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::DockerEngine;
use crate::{
    EngineError, EngineEvent, ExecSession, LogChunk, LogOptions, LogStream, StreamKind, Streams,
};

/// Most events [`Streams::past_events`] returns.
const MAX_PAST_EVENTS: usize = 1000;

/// An exec session's output piece, as bollard framed it.
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

/// The log body as it arrives, cut into stdout and stderr pieces; a broken
/// connection ends it with an error.
fn body_chunks(body: Incoming, demux: Demux, host: String, address: String) -> LogStream {
    stream::unfold(Some((body, demux)), move |state| {
        let (host, address) = (host.clone(), address.clone());
        async move {
            let (mut body, mut demux) = state?;
            loop {
                match body.frame().await {
                    None => return None,
                    Some(Err(e)) => {
                        let e = EngineError::from_bollard(io_error(e), &host, &address);
                        return Some((vec![Err(e)], None));
                    }
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        let chunks = demux.push(data);
                        if !chunks.is_empty() {
                            return Some((
                                chunks.into_iter().map(Ok).collect(),
                                Some((body, demux)),
                            ));
                        }
                    }
                }
            }
        }
    })
    .flat_map(stream::iter)
    .boxed()
}

fn io_error(e: impl std::fmt::Display) -> bollard::errors::Error {
    bollard::errors::Error::IOError {
        err: std::io::Error::other(e.to_string()),
    }
}

/// Splits the engine's log body into stdout and stderr pieces. It holds at
/// most a frame header: a payload passes on as it arrives, however long the
/// frame (and a terminal's raw stream passes on whole), so no line that
/// never ends can grow a buffer here.
#[derive(Debug)]
struct Demux {
    tty: bool,
    header: Vec<u8>,
    /// The stream of the frame being read (`None`: stdin, not passed on).
    stream: Option<StreamKind>,
    /// Payload bytes of that frame still to come.
    left: usize,
}

impl Demux {
    fn new(tty: bool) -> Self {
        Demux {
            tty,
            header: Vec::with_capacity(8),
            stream: None,
            left: 0,
        }
    }

    fn push(&mut self, mut data: Bytes) -> Vec<LogChunk> {
        if self.tty {
            return vec![LogChunk {
                stream: StreamKind::Stdout,
                bytes: data,
            }];
        }
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.left == 0 {
                let take = (8 - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data.split_to(take));
                if self.header.len() < 8 {
                    break;
                }
                self.stream = match self.header[0] {
                    1 => Some(StreamKind::Stdout),
                    2 => Some(StreamKind::Stderr),
                    _ => None,
                };
                let len = [
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ];
                self.left = u32::from_be_bytes(len) as usize;
                self.header.clear();
                continue;
            }
            let piece = data.split_to(self.left.min(data.len()));
            self.left -= piece.len();
            if let Some(stream) = self.stream {
                out.push(LogChunk {
                    stream,
                    bytes: piece,
                });
            }
        }
        out
    }
}

#[async_trait]
impl Streams for DockerEngine {
    fn logs(&self, id: &str, options: LogOptions) -> LogStream {
        let mut query = vec![
            format!("follow={}", options.follow),
            format!("stdout={}", options.stdout),
            format!("stderr={}", options.stderr),
            "timestamps=true".to_string(),
            format!(
                "tail={}",
                options
                    .tail
                    .map_or_else(|| "all".to_string(), |t| t.to_string())
            ),
        ];
        if let Some(since) = options.since.filter(|s| *s > 0) {
            query.push(format!("since={since}"));
        }
        // Container names and IDs need no escaping in a path.
        let uri = format!(
            "{}/v{}.{}/containers/{id}/logs?{}",
            self.base,
            self.api.0,
            self.api.1,
            query.join("&")
        );
        let (docker, raw, id) = (self.docker.clone(), Arc::clone(&self.raw), id.to_string());
        let (host, address, timeout) = (self.host.clone(), self.address.clone(), self.timeout);
        let opened = async move {
            let err = |e| EngineError::from_bollard(e, &host, &address);
            let timed_out = |what: &str| EngineError::Timeout {
                host: host.clone(),
                address: address.clone(),
                what: what.to_string(),
                after: timeout,
            };
            // A container with a terminal logs one raw stream; the others
            // frame stdout and stderr (as `docker logs` decides too).
            let tty = match tokio::time::timeout(timeout, docker.inspect_container(&id, None)).await
            {
                Ok(Ok(c)) => c.config.and_then(|c| c.tty).unwrap_or(false),
                Ok(Err(e)) => return Err(err(e)),
                Err(_) => return Err(timed_out("read the container's log settings")),
            };
            let request = http::Request::get(uri)
                .body(bollard::body_full(Bytes::new()))
                .map_err(|e| err(io_error(e)))?;
            let response = match tokio::time::timeout(timeout, raw(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return Err(err(e)),
                Err(_) => return Err(timed_out("open the container's log")),
            };
            let status = response.status().as_u16();
            if status >= 400 {
                let body = tokio::time::timeout(timeout, response.into_body().collect())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(err(bollard::errors::Error::DockerResponseServerError {
                    status_code: status,
                    message,
                }));
            }
            Ok((response.into_body(), Demux::new(tty), host, address))
        };
        stream::once(opened)
            .flat_map(|opened| match opened {
                Err(e) => stream::iter(vec![Err(e)]).boxed(),
                Ok((body, demux, host, address)) => body_chunks(body, demux, host, address),
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

    /// No label filter: the engine cannot say "labelled for `env` or named
    /// `ENV.…`", so [`EngineEvent::concerns`] is applied here, as events
    /// arrive (what that costs is said there).
    fn events(&self, env: &str) -> BoxStream<'static, Result<EngineEvent, EngineError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                crate::CONTAINER_ACTIONS.map(str::to_string).to_vec(),
            ),
        ]);
        let options = EventsOptions {
            since: None,
            until: None,
            filters: Some(filters),
        };
        let (host, address, env) = (self.host.clone(), self.address.clone(), env.to_string());
        self.docker
            .events(Some(options))
            .map(move |item| {
                item.map(engine_event)
                    .map_err(|e| EngineError::from_bollard(e, &host, &address))
            })
            .filter(move |item| {
                futures::future::ready(item.as_ref().map_or(true, |e| e.concerns(&env)))
            })
            .boxed()
    }

    async fn attach(&self, id: &str) -> Result<ExecSession, EngineError> {
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let attached = self
            .call(
                "attach to the container",
                self.timeout,
                self.docker.attach_container(id, Some(options)),
            )
            .await?;
        let (host, address) = (self.host.clone(), self.address.clone());
        let output = attached
            .output
            .filter_map(move |item| {
                futures::future::ready(match item {
                    Ok(o) => chunk(o).map(Ok),
                    Err(e) => Some(Err(EngineError::from_bollard(e, &host, &address))),
                })
            })
            .boxed();
        Ok(ExecSession {
            exec_id: id.to_string(),
            output,
            input: attached.input,
        })
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, EngineError> {
        // `not-running` answers at once for a container already stopped,
        // so a process that ended before this request is not waited for.
        let options = WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut answers = self.docker.wait_container(id, Some(options));
        match answers.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard turns a non-zero exit into an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.err(e)),
            None => Err(EngineError::Other(format!(
                "host {}: the engine closed the wait for container {id} without an exit code",
                self.host
            ))),
        }
    }

    async fn resize_tty(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let options = ResizeContainerTTYOptions {
            h: i32::from(rows),
            w: i32::from(cols),
        };
        self.call(
            "resize the container's terminal",
            self.timeout,
            self.docker.resize_container_tty(id, options),
        )
        .await
    }

    async fn past_events(
        &self,
        env: &str,
        action: &str,
        since: i64,
    ) -> Result<Vec<EngineEvent>, EngineError> {
        // Filtered here, as the streams are ([`EngineEvent::concerns`]).
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec![action.to_string()]),
        ]);
        // To the nanosecond, as the engine takes it: a whole second would
        // leave out what happened in the current one (a crash loop's last
        // exit, a moment ago).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or_else(
                |_| "0".to_string(),
                |d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
            );
        let options = EventsOptions {
            since: Some(since.to_string()),
            until: Some(now),
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
            let event = engine_event(message);
            if event.concerns(env) {
                events.push(event);
            }
        }
        Ok(events)
    }
}

/// An engine's event message as drover reads it.
fn engine_event(message: bollard::models::EventMessage) -> EngineEvent {
    let actor = message.actor.unwrap_or_default();
    EngineEvent {
        container: actor.id.unwrap_or_default(),
        action: message.action.unwrap_or_default(),
        labels: actor.attributes.unwrap_or_default().into_iter().collect(),
        time_nano: message.time_nano.unwrap_or(0),
    }
}

#[cfg(test)]
mod demux_tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn pieces(chunks: Vec<LogChunk>) -> Vec<(StreamKind, String)> {
        chunks
            .into_iter()
            .map(|c| (c.stream, String::from_utf8_lossy(&c.bytes).into_owned()))
            .collect()
    }

    #[test]
    fn frames_split_anywhere_come_out_in_order_by_stream() {
        let mut body = frame(1, b"out 1\n");
        body.extend(frame(2, b"err 1\n"));
        body.extend(frame(0, b"stdin is never passed on"));
        body.extend(frame(1, b""));
        body.extend(frame(1, b"out 2\n"));
        // Every way of cutting the body in two gives the same text per stream.
        for cut in 0..=body.len() {
            let mut demux = Demux::new(false);
            let mut got = pieces(demux.push(Bytes::copy_from_slice(&body[..cut])));
            got.extend(pieces(demux.push(Bytes::copy_from_slice(&body[cut..]))));
            let text = |kind| {
                got.iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, t)| t.as_str())
                    .collect::<String>()
            };
            assert_eq!(text(StreamKind::Stdout), "out 1\nout 2\n", "cut at {cut}");
            assert_eq!(text(StreamKind::Stderr), "err 1\n", "cut at {cut}");
            assert!(demux.header.len() < 8 && demux.left == 0);
        }
    }

    #[test]
    fn a_long_frame_passes_on_as_it_arrives() {
        let payload = vec![b'x'; 100_000];
        let body = frame(1, &payload);
        let mut demux = Demux::new(false);
        let first = demux.push(Bytes::copy_from_slice(&body[..4096]));
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].bytes.len(),
            4096 - 8,
            "no waiting for the frame's end"
        );
        assert_eq!(demux.left, 100_000 - (4096 - 8));
    }

    #[test]
    fn a_terminal_stream_passes_on_whole() {
        let mut demux = Demux::new(true);
        let got = pieces(demux.push(Bytes::from_static(b"\x01progress\r")));
        assert_eq!(got, [(StreamKind::Stdout, "\u{1}progress\r".to_string())]);
    }
}
