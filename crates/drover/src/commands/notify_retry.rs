//! `drover notify-retry` (hidden): what a command could not post within its
//! 2 s, posted by a process that outlives it.
//!
//! A changing command hands its undelivered notifications to this process
//! (see `drover_notify::handoff`): the messages arrive on standard input,
//! it retries them for a few minutes with backoff, and exits. It runs in its
//! own process group and ignores the terminal's signals, so closing the
//! terminal or pressing Ctrl-C after the command ended does not lose them.

use std::io::Write;
use std::process::ExitCode;

pub fn run() -> ExitCode {
    // SAFETY: setting signal dispositions before any thread starts.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        // Writing its one note to the terminal from the background must not stop it.
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
    }
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            runtime.block_on(drover_notify::retry_from(
                std::io::stdin(),
                drover_notify::stderr_notes(),
            ))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(1)
        }
    }
}
