use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use drover_engine::StreamKind;
use futures::future::join_all;
use futures::StreamExt;

use crate::cli::Global;
use crate::terminal::{interrupt, raw};
use crate::{out, outln};

/// With no command an interactive shell (bash where the image has it).
const SHELL: &str = "command -v bash >/dev/null 2>&1 && exec bash || exec sh";

/// Runs a command in a task (or every task with `--all`); the exit code is the command's.
pub async fn run(
    global: &Global,
    job: &str,
    task: Option<&str>,
    all: bool,
    command: &[String],
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let spec = fleet.job(job)?;
    let connections = fleet.connect_job(spec).await;
    for error in connections.unreachable.values() {
        eprintln!("{error}");
    }
    if all {
        if command.is_empty() {
            bail!("--all runs one command on every task: give it after --, e.g. `drover exec {job} --all -- uptime`");
        }
        let tasks = fleet.running_tasks(&connections, job).await?;
        if tasks.is_empty() {
            bail!("job {job} has no running task (see `drover status {job}`)");
        }
        return run_all(global, &connections, tasks, command).await;
    }
    if global.json {
        // Machine output: the command's output and exit code as one object.
        if command.is_empty() {
            bail!("an interactive shell has no JSON form: give a command after --, e.g. `drover exec {job} --json -- ls /`");
        }
        let picked = fleet.pick_task(&connections, job, task).await?;
        return run_all(global, &connections, vec![picked], command).await;
    }
    let interactive = command.is_empty();
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive && !tty {
        bail!("an interactive shell needs a terminal: give a command after --, e.g. `drover exec {job} -- ls /`");
    }
    let cmd: Vec<String> = if interactive {
        vec!["sh".to_string(), "-c".to_string(), SHELL.to_string()]
    } else {
        command.to_vec()
    };
    let picked_note = fleet.pick_task(&connections, job, task).await?.note;
    let mut shell = fleet.open_exec(&connections, job, task, &cmd, tty).await?;
    if let Some(note) = picked_note {
        eprintln!("drover: running {note}");
    }

    // The terminal is ours until the command ends: raw, and restored on every way out.
    let _raw = if tty {
        Some(raw::RawMode::enter().context("cannot put the terminal in raw mode")?)
    } else {
        None
    };
    if tty {
        if let Some((rows, cols)) = raw::window_size() {
            let _ = shell.resize(rows, cols).await;
        }
    }
    let input = std::mem::replace(&mut shell.session.input, Box::pin(tokio::io::sink()));
    let stdin_task = tokio::spawn(raw::forward_stdin(input));
    let mut resize =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let cancel = interrupt::token();
    loop {
        tokio::select! {
            chunk = shell.session.output.next() => match chunk {
                Some(Ok(chunk)) => {
                    if chunk.stream == StreamKind::Stderr && !tty {
                        let mut err = std::io::stderr().lock();
                        let _ = err.write_all(&chunk.bytes);
                        let _ = err.flush();
                    } else {
                        out!("{}", String::from_utf8_lossy(&chunk.bytes));
                    }
                }
                Some(Err(e)) => {
                    drop(_raw);
                    bail!("the session with {} broke off: {e}", shell.task);
                }
                None => break,
            },
            Some(()) = async { match resize.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                if let Some((rows, cols)) = raw::window_size() {
                    let _ = shell.resize(rows, cols).await;
                }
            }
            () = cancel.cancelled() => break,
        }
    }
    stdin_task.abort();
    drop(_raw);
    let code = match shell.exit_code().await {
        Ok(Some(code)) => code,
        Ok(None) => {
            eprintln!(
                "drover: the command in {} is still running; it was left to end on its own",
                shell.task
            );
            1
        }
        Err(e) => {
            eprintln!("drover: cannot read the exit code: {e}");
            1
        }
    };
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// `--all`: the command on every running task at once, output prefixed like
/// logs (with `--json`: an array of `{host, task, exit_code, stdout, stderr,
/// error}`); the worst exit code.
async fn run_all(
    global: &Global,
    connections: &drover_fleet::Connections,
    tasks: Vec<drover_fleet::Picked>,
    command: &[String],
) -> Result<ExitCode> {
    let width = tasks
        .iter()
        .map(|p| format!("{}/{}", p.task.host, p.task.task).len())
        .max()
        .unwrap_or(4);
    let runs = tasks
        .iter()
        .map(|p| async move { (p, p.engine.exec_output(&p.container, command).await) });
    // A host that could not be reached ran nothing: that is a failure too
    // (it was named on stderr when connecting).
    let mut worst = i64::from(!connections.unreachable.is_empty());
    let mut results = Vec::new();
    for (p, result) in join_all(runs).await {
        let name = format!("{}/{}", p.task.host, p.task.task);
        match result {
            Ok(output) => {
                let stdout = String::from_utf8_lossy(&output.stdout);
                let stderr = String::from_utf8_lossy(&output.stderr);
                if global.json {
                    results.push(serde_json::json!({
                        "host": p.task.host, "task": p.task.task, "exit_code": output.exit_code,
                        "stdout": stdout, "stderr": stderr, "error": null,
                    }));
                } else {
                    for line in stdout.lines() {
                        outln!("{name:<width$} | {line}");
                    }
                    for line in stderr.lines() {
                        outln!("{name:<width$} ! {line}");
                    }
                    if output.exit_code != 0 {
                        eprintln!("drover: {name}: exit code {}", output.exit_code);
                    }
                }
                worst = worst.max(output.exit_code);
            }
            Err(e) => {
                if global.json {
                    results.push(serde_json::json!({
                        "host": p.task.host, "task": p.task.task, "exit_code": null,
                        "stdout": "", "stderr": "", "error": e.to_string(),
                    }));
                }
                eprintln!("drover: {name}: {e}");
                worst = worst.max(1);
            }
        }
    }
    if global.json {
        outln!("{}", serde_json::Value::Array(results));
    }
    Ok(ExitCode::from(
        u8::try_from(worst.clamp(0, 255)).unwrap_or(1),
    ))
}
