//! One file per command; each is observe → plan → apply, or a part of it.

pub mod diff;
pub mod down;
pub mod status;
pub mod up;
pub mod validate;

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
