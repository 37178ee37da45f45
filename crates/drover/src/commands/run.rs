//! `drover run JOB [--host NAME] [--image REF] [--keep] -- CMD…`: a one-off
//! container with the job's configuration; its output streamed, its exit
//! code passed back. The terminal is this file's: raw mode and its size for
//! a terminal, stdin forwarded, Ctrl-C. The container is the fleet's
//! ([`drover_fleet::run`]).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use drover_engine::{Attachment, LogChunk, StreamKind};
use drover_fleet::{ReleaseNotice, RunRequest};
use drover_spec::ImageRef;

use crate::cli::Global;
use crate::terminal::{interrupt, output, raw};

pub async fn run(
    global: &Global,
    job: &str,
    image: Option<&str>,
    keep: bool,
    command: &[String],
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    if global.hosts.len() > 1 {
        bail!(
            "drover run runs the command on one host: give --host once (it was given {})",
            drover_fleet::list(&global.hosts)
        );
    }
    let image = image
        .map(|text| {
            text.parse::<ImageRef>()
                .map_err(|e| anyhow::anyhow!("invalid --image {text:?}: {e}"))
        })
        .transpose()?;
    let host = fleet.one_off_host(job, global.hosts.first().map(String::as_str))?;
    let connections = fleet.connect(&BTreeSet::from([host.clone()])).await;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let attachment = Attachment { tty, stdin: true };
    let notes = |note: &str| eprintln!("drover: {note}");
    let request = RunRequest {
        job,
        host: Some(&host),
        image: image.as_ref(),
        command,
        attachment,
    };
    let mut one_off = fleet.run_once(&connections, &request, &notes).await?;
    // From here on the first Ctrl-C stops and removes the container.
    interrupt::changing();
    let name = one_off.name.clone();

    // The terminal is the command's until it ends: raw, and restored on every way out.
    let raw_mode = if tty {
        Some(raw::RawMode::enter().context("cannot put the terminal in raw mode")?)
    } else {
        None
    };
    let terminal = one_off.terminal();
    let resizer = tty.then(|| {
        tokio::spawn(async move {
            if let Some((rows, cols)) = raw::window_size() {
                let _ = terminal.resize(rows, cols).await;
            }
            let Ok(mut changes) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while changes.recv().await.is_some() {
                if let Some((rows, cols)) = raw::window_size() {
                    let _ = terminal.resize(rows, cols).await;
                }
            }
        })
    });
    let forwarder = one_off
        .take_input()
        .map(|input| tokio::spawn(raw::forward_stdin(input)));

    let mut print = |chunk: &LogChunk| {
        if chunk.stream == StreamKind::Stderr {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&chunk.bytes);
            let _ = err.flush();
        } else {
            output::write_bytes(&chunk.bytes);
        }
    };
    let ended = one_off
        .finish(&mut print, None, &interrupt::token(), keep)
        .await;
    for task in [forwarder, resizer].into_iter().flatten() {
        task.abort();
    }
    drop(raw_mode);

    for warning in &ended.warnings {
        eprintln!("warning: {warning}");
    }
    if ended.interrupted {
        let what = if ended.kept {
            "stopped"
        } else {
            "stopped and removed"
        };
        eprintln!("drover: interrupted: {what} {name} on host {host}");
    }
    if ended.oom_killed {
        eprintln!("drover: the command was killed for exceeding the job's memory limit");
    }
    if keep && ended.kept {
        eprintln!("drover: kept {name} on host {host} (`drover gc` removes it)");
    }
    let code = match ended.exit_code {
        Some(code) => code,
        None => {
            eprintln!("drover: the command's exit code could not be read");
            1
        }
    };
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// What a rollout says about its release command, on stderr.
pub fn say_release(notice: &ReleaseNotice) {
    eprintln!("release: {notice}");
}
