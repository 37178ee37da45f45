//! drover: a production environment as code, for a few to a few hundred
//! Docker hosts. This binary is thin: clap, then one module per command.

mod cli;
mod commands;
mod context;
mod table;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Like any Unix filter: a closed pipe (`drover status | head`) ends the
    // process quietly instead of making every print fail.
    // SAFETY: restoring the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let global = &cli.global;
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Validate => commands::validate::run(global),
            Command::Diff { jobs } => commands::diff::run(global, jobs).await,
            Command::Up { jobs } => commands::up::run(global, jobs).await,
            Command::Down { jobs } => commands::down::run(global, jobs).await,
            Command::Status { jobs } => commands::status::run(global, jobs).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
