//! `GET /api/jobs/{job}/tasks/{host}/{task}/shell`: a terminal in a task,
//! over a WebSocket.
//!
//! The protocol is small. Server to browser: the terminal's output as
//! binary frames; JSON text frames `{"type":"ready",…}` when the shell runs
//! and `{"type":"exit","code":…,"reason":…}` when it ends, then a close
//! frame carrying the reason. Browser to server: keystrokes as binary
//! frames; JSON text frames `{"type":"resize","rows":R,"cols":C}` and
//! `{"type":"ping"}`.
//!
//! A shell is the most dangerous thing the dashboard does, so: the upgrade
//! is refused (403) unless the `Origin` is the dashboard's own (a page on
//! another site cannot ride the operator's cookie); logout closes the
//! session's shells within seconds; and each shell is written to drover's
//! own log (standard error of `drover web`) when it opens and when it
//! closes: who (the session's public id), which task and container, when,
//! and how it ended.
//!
//! Docker cannot end an exec, so the shell tells its PID first (in an
//! escape sequence taken out of the output) and the server hangs it up
//! when the browser leaves or the session ends: no shell lingers in a
//! container after its page is gone.
//!
//! WebSocket pings every [`PING_EVERY`] keep idle proxies (which commonly
//! cut a quiet connection after 60 s) from closing a shell nobody types in,
//! and a browser that answers nothing for [`SILENT_LIMIT`] is gone.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

use drover_engine::{Engine, ExecSession};
use drover_fleet::Connections;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::auth::{same_origin, Who};
use crate::live::{close, PING_EVERY};
use crate::Dashboard;

/// A browser that sends nothing (not even a pong) this long is gone.
const SILENT_LIMIT: Duration = Duration::from_secs(75);

/// The start of the line the shell writes first: `ESC ] 7777 ; drover-pid=PID BEL`.
const PID_MARK: &[u8] = b"\x1b]7777;drover-pid=";

/// What runs: bash where the image has it, else sh. It first says its PID
/// in an escape sequence the server takes out of the output: Docker has no
/// call to end an exec, and a shell whose connection closed would otherwise
/// run on in the container for good, so the PID is how the server hangs it
/// up when the browser goes or the session ends.
fn command() -> Vec<String> {
    vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        "printf '\\033]7777;drover-pid=%s\\007' \"$$\"; if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh".to_string(),
    ]
}

/// Takes the PID line out of the first output; `None` while it may still come.
struct PidScan {
    seen: Vec<u8>,
    done: bool,
    pid: Option<u32>,
}

impl PidScan {
    /// What of `bytes` goes to the browser now.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.done {
            return bytes.to_vec();
        }
        self.seen.extend_from_slice(bytes);
        let start = self
            .seen
            .windows(PID_MARK.len())
            .position(|w| w == PID_MARK);
        if let Some(start) = start {
            let rest = &self.seen[start + PID_MARK.len()..];
            if let Some(end) = rest.iter().position(|b| *b == 0x07) {
                self.pid = std::str::from_utf8(&rest[..end])
                    .ok()
                    .and_then(|p| p.parse().ok());
                let mut out = self.seen[..start].to_vec();
                out.extend_from_slice(&rest[end + 1..]);
                self.done = true;
                self.seen.clear();
                return out;
            }
        }
        if self.seen.len() > 256 {
            self.done = true;
            return std::mem::take(&mut self.seen);
        }
        Vec::new()
    }
}

/// Hangs up the shell `pid` in `container` (as closing a terminal does),
/// and kills it if it is still there a moment later.
async fn hang_up(engine: &dyn Engine, container: &str, exec_id: &str, pid: u32) {
    let signal = |name: &str| {
        vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!("kill -{name} {pid} 2>/dev/null; true"),
        ]
    };
    let _ = engine.exec_output(container, &signal("HUP")).await;
    for _ in 0..15 {
        if !matches!(engine.exec_exit_code(exec_id).await, Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = engine.exec_output(container, &signal("KILL")).await;
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { rows: u16, cols: u16 },
    Input { data: String },
    Ping,
}

pub async fn shell(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    Path((job, host, task)): Path<(String, String, u32)>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let authority = uri.authority().map(|a| a.as_str());
    if !same_origin(
        &headers,
        authority,
        dashboard.secure(),
        matches!(who, Who::Token),
    ) {
        dashboard.log(&format!(
            "shell refused session={} task={job}/{host}/{task} why=cross-origin origin={:?}",
            who.name(),
            headers
                .get(axum::http::header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .unwrap_or("")
        ));
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(move |socket| session(socket, dashboard, who, job, host, task))
}

/// How a shell ended.
enum End {
    /// The shell's process ended.
    Exited,
    /// The engine's side of the stream broke.
    Broken(String),
    /// The browser closed, or went silent.
    Browser(&'static str),
    /// Logout.
    SessionEnded,
    Shutdown,
}

async fn session(
    mut socket: WebSocket,
    dashboard: Dashboard,
    who: Who,
    job: String,
    host: String,
    task: u32,
) {
    let started = crate::now();
    let name = format!("{job}/{host}/{task}");
    let fleet = dashboard.fleet();
    let mut connections = Connections::default();
    let engine = match dashboard.inner.pool.get(&host).await {
        Ok(engine) => {
            connections
                .engines
                .insert(host.clone(), Arc::clone(&engine));
            Some(engine)
        }
        Err(e) => {
            connections.unreachable.insert(host.clone(), e);
            None
        }
    };
    let picked = format!("{host}/{task}");
    let opened = match engine {
        Some(engine) => fleet
            .open_exec(&connections, &job, Some(&picked), &command(), true)
            .await
            .map(|shell| (shell, engine))
            .map_err(|e| e.to_string()),
        None => Err(connections
            .unreachable
            .get(&host)
            .map_or_else(|| format!("host {host} is unreachable"), |e| e.to_string())),
    };
    let (shell, engine) = match opened {
        Ok(opened) => opened,
        Err(why) => {
            dashboard.log(&format!(
                "shell refused session={} task={name} at={started} why={why:?}",
                who.name()
            ));
            let _ = socket
                .send(Message::Text(
                    json!({"type": "error", "message": why}).to_string().into(),
                ))
                .await;
            close(&mut socket, 1011, &why).await;
            return;
        }
    };
    // The session's halves are driven here; the engine answers the rest
    // (resize, exit code), so nothing borrowed is held across an await.
    let container_id = shell.container;
    let ExecSession {
        exec_id,
        mut output,
        mut input,
    } = shell.session;
    let container: String = container_id.chars().take(12).collect();
    let exec: String = exec_id.chars().take(12).collect();
    dashboard.log(&format!(
        "shell open session={} task={name} container={container} exec={exec} at={started}",
        who.name()
    ));
    let ready = json!({
        "type": "ready",
        "task": name,
        "container": container,
    });
    let _ = socket.send(Message::Text(ready.to_string().into())).await;

    let ended = who.ended();
    let shutdown = dashboard.inner.shutdown.clone();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut heard = Instant::now();
    let mut scan = PidScan {
        seen: Vec::new(),
        done: false,
        pid: None,
    };
    let end = loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => {
                    let bytes = scan.feed(&chunk.bytes);
                    if !bytes.is_empty() && socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break End::Browser("the browser went away");
                    }
                }
                Some(Err(e)) => break End::Broken(e.to_string()),
                None => break End::Exited,
            },
            message = socket.recv() => {
                heard = Instant::now();
                match message {
                    Some(Ok(Message::Binary(bytes))) => {
                        if input.write_all(&bytes).await.is_err() {
                            break End::Broken("the shell's input closed".to_string());
                        }
                        let _ = input.flush().await;
                    }
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                        Ok(Control::Resize { rows, cols }) => {
                            if rows > 0 && cols > 0 {
                                let _ = engine.resize_exec(&exec_id, rows, cols).await;
                            }
                        }
                        Ok(Control::Input { data }) => {
                            if input.write_all(data.as_bytes()).await.is_err() {
                                break End::Broken("the shell's input closed".to_string());
                            }
                            let _ = input.flush().await;
                        }
                        Ok(Control::Ping) => {
                            let pong = json!({"type": "pong"}).to_string();
                            let _ = socket.send(Message::Text(pong.into())).await;
                        }
                        Err(_) => {}
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        break End::Browser("the browser closed the terminal");
                    }
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_LIMIT {
                    break End::Browser("the browser stopped answering");
                }
                if socket.send(Message::Ping(b"drover".as_slice().into())).await.is_err() {
                    break End::Browser("the browser went away");
                }
            }
            () = ended.cancelled() => break End::SessionEnded,
            () = shutdown.cancelled() => break End::Shutdown,
        }
    };
    // Closing the shell's input and its connection ends the process (it
    // gets end-of-file and a hangup on its terminal).
    let _ = input.shutdown().await;
    drop(input);
    drop(output);
    if !matches!(end, End::Exited) {
        if let Some(pid) = scan.pid {
            hang_up(engine.as_ref(), &container_id, &exec_id, pid).await;
        }
    }
    let code = exit_code(engine.as_ref(), &exec_id).await;
    let reason = match &end {
        End::Exited => {
            // A shell killed by a signal may be a container on its way down:
            // give the engine a moment to say so before blaming the shell.
            let looks = if code.is_none_or(|c| c > 128) { 10 } else { 1 };
            let mut running = true;
            for look in 0..looks {
                running = matches!(
                    engine.inspect_container(&container_id).await,
                    Ok(Some(c)) if c.state() == drover_plan::RunState::Running
                );
                if !running || look + 1 == looks {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            if !running {
                "the container stopped".to_string()
            } else {
                match code {
                    Some(code) => format!("the shell exited with code {code}"),
                    None => "the shell ended".to_string(),
                }
            }
        }
        End::Broken(why) => format!("the connection to the engine broke: {why}"),
        End::Browser(why) => (*why).to_string(),
        End::SessionEnded => "session ended (signed out)".to_string(),
        End::Shutdown => "the dashboard is stopping".to_string(),
    };
    let finished = crate::now();
    dashboard.log(&format!(
        "shell close session={} task={name} container={container} exec={exec} start={started} end={finished} exit={} reason={reason:?}",
        who.name(),
        code.map_or_else(|| "none".to_string(), |c| c.to_string())
    ));
    if !matches!(end, End::Browser(_)) {
        let exit = json!({"type": "exit", "code": code, "reason": reason});
        let _ = socket.send(Message::Text(exit.to_string().into())).await;
        let close_code = match end {
            End::SessionEnded => 4001,
            End::Shutdown => 1001,
            End::Broken(_) => 1011,
            _ => 1000,
        };
        close(&mut socket, close_code, &reason).await;
    }
}

/// The exit code, once the engine has it (it may lag the stream's end).
async fn exit_code(engine: &dyn Engine, exec_id: &str) -> Option<i64> {
    for _ in 0..20 {
        match engine.exec_exit_code(exec_id).await {
            Ok(Some(code)) => return Some(code),
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_line_is_taken_out_of_the_output() {
        let mut scan = PidScan {
            seen: Vec::new(),
            done: false,
            pid: None,
        };
        assert_eq!(scan.feed(b"\x1b]7777;drov"), b"");
        assert_eq!(scan.feed(b"er-pid=42\x07/ # "), b"/ # ");
        assert_eq!(scan.pid, Some(42));
        assert_eq!(
            scan.feed(b"\x1b]7777;drover-pid=9\x07"),
            b"\x1b]7777;drover-pid=9\x07"
        );
        let mut other = PidScan {
            seen: Vec::new(),
            done: false,
            pid: None,
        };
        let long = vec![b'x'; 300];
        assert_eq!(other.feed(&long), long);
        assert_eq!(other.pid, None);
    }
}
