//! One file per command: parse → fleet call → render.

pub mod adopt;
pub mod change;
pub mod diff;
pub mod doctor;
pub mod down;
pub mod exec;
pub mod gc;
pub mod history;
pub mod images;
pub mod lock;
pub mod logs;
pub mod notify_retry;
pub mod package;
pub mod restart;
pub mod rollback;
pub mod rolling_update;
pub mod run;
pub mod status;
pub mod stop;
pub mod up;
pub mod update;
pub mod validate;
pub mod watch;
pub mod web;

use std::process::ExitCode;

/// Exit 0: success (for `diff`: no changes).
pub const SUCCESS: ExitCode = ExitCode::SUCCESS;
/// Exit 1: failure, including partial failure such as an unreachable host.
pub fn failure() -> ExitCode {
    ExitCode::from(1)
}
/// Exit 2: `diff` found changes.
pub fn changes() -> ExitCode {
    ExitCode::from(2)
}

/// Loads the environment the global flags name.
pub fn load(global: &crate::cli::Global) -> anyhow::Result<drover_fleet::Fleet> {
    Ok(drover_fleet::Fleet::load(
        global.dir.as_deref(),
        global.stage.as_deref(),
        &global.hosts,
    )?)
}
