//! drover: a production environment as code, for a few to a few hundred
//! Docker hosts. This binary is thin: clap, the terminal, and one module
//! per command over `drover-fleet`.

mod cli;
mod commands;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // A closed stdout must not kill drover mid-change: writes then fail with
    // EPIPE, which `terminal::output` turns into an interruption.
    // SAFETY: setting one signal's disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    raise_open_files();
    // Exit 2 is `diff`'s "there are changes": a usage error is a plain failure (1).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if matches!(cli.command, Command::NotifyRetry) {
        return commands::notify_retry::run();
    }
    // Following logs moves many small lines between tasks: on one thread
    // that costs no wake-ups across threads.
    let mut builder = if matches!(cli.command, Command::Logs { .. }) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let global = &cli.global;
    let result = runtime.block_on(async {
        terminal::interrupt::install();
        match &cli.command {
            Command::Validate => commands::validate::run(global),
            Command::Diff { jobs } => commands::diff::run(global, jobs).await,
            Command::Up { jobs } => commands::up::run(global, jobs).await,
            Command::Down { jobs } => commands::down::run(global, jobs).await,
            Command::Status { jobs } => commands::status::run(global, jobs).await,
            Command::Images { job } => commands::images::run(global, job).await,
            Command::Update { job, image } => {
                commands::update::run(global, job, image.as_deref()).await
            }
            Command::RollingUpdate {
                job,
                image,
                parallel,
            } => commands::rolling_update::run(global, job, image.as_deref(), *parallel).await,
            Command::Rollback { job } => commands::rollback::run(global, job).await,
            Command::History { job } => commands::history::run(global, job).await,
            Command::Restart { job, parallel } => {
                commands::restart::run(global, job, *parallel).await
            }
            Command::Stop { jobs } => commands::stop::run(global, jobs, true).await,
            Command::Start { jobs } => commands::stop::run(global, jobs, false).await,
            Command::Lock { job, reason } => commands::lock::lock(global, job, reason).await,
            Command::Unlock { job } => commands::lock::unlock(global, job).await,
            Command::Logs {
                job,
                task,
                follow,
                tail,
                since,
                failed,
            } => {
                commands::logs::run(
                    global,
                    job,
                    task.as_deref(),
                    *follow,
                    *tail,
                    since.as_deref(),
                    *failed,
                )
                .await
            }
            Command::Run {
                job,
                image,
                keep,
                command,
            } => commands::run::run(global, job, image.as_deref(), *keep, command).await,
            Command::Exec {
                job,
                task,
                all,
                command,
            } => commands::exec::run(global, job, task.as_deref(), *all, command).await,
            Command::Gc { dry_run } => commands::gc::run(global, *dry_run).await,
            Command::Adopt {
                containers,
                dry_run,
            } => commands::adopt::run(global, containers, *dry_run).await,
            Command::Doctor => commands::doctor::run(global).await,
            Command::Watch => commands::watch::run(global).await,
            Command::Web {
                listen,
                tls_cert,
                tls_key,
                audit,
            } => {
                commands::web::run(
                    global,
                    listen,
                    tls_cert.as_deref(),
                    tls_key.as_deref(),
                    audit.as_deref(),
                )
                .await
            }
            Command::Package { job, artifact, tag } => {
                commands::package::run(global, job, artifact, tag.as_deref()).await
            }
            // Run above, before this runtime and its signal handlers.
            Command::NotifyRetry => Ok(commands::SUCCESS),
        }
    });
    // Let SSH masters and other children go before the process does.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    drover_engine::kill_ssh_masters();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    };
    match terminal::interrupt::exit_code() {
        Some(signal_code) => ExitCode::from(signal_code),
        None => code,
    }
}

/// A few hundred hosts may mean a thousand sockets at once (the bounds in
/// `drover_engine::Limits`): lift the soft limit on open files to the hard
/// one, as Go programs such as `docker` do.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
