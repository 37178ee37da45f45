//! Everything about the terminal: output that survives a closed pipe,
//! Ctrl-C, colours, prompts, progress, tables. Commands print through here.

pub mod interrupt;
pub mod output;
pub mod progress;
pub mod raw;
pub mod table;

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context as _, Result};

use crate::cli::Global;

/// Whether to use colours on stdout.
pub fn color(global: &Global) -> bool {
    !global.no_color
        && !global.json
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::stdout().is_terminal()
}

/// Asks before changing anything: on a terminal, a y/N question; without
/// one, only `--yes` lets a change through.
pub fn confirm(global: &Global, question: &str) -> Result<bool> {
    if global.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("not changing anything without confirmation: there is no terminal to ask on; pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

pub const RED: &str = "\x1b[31m";
pub const GREEN: &str = "\x1b[32m";
pub const YELLOW: &str = "\x1b[33m";
pub const RESET: &str = "\x1b[0m";

/// `text` in `code` when `color`.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}
