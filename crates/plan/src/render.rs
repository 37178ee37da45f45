//! How a plan reads to an operator: what `diff` prints and `up` asks about.

use std::fmt::{self, Write as _};

use serde_json::Value;

use crate::plan::{Plan, Step};

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl Plan {
    /// The plan as text; `color` adds ANSI colors for a terminal.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &'static str, text: &str| {
            if color {
                format!("{code}{text}{RESET}")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        for unreachable in &self.unreachable {
            let _ = writeln!(
                out,
                "{} host {} ({}) is unreachable: {}",
                paint(RED, "!"),
                unreachable.host,
                unreachable.address,
                unreachable.error
            );
        }
        for pull in &self.pulls {
            let note = if pull.pullable {
                String::new()
            } else {
                " (an image ID cannot be pulled: load the image on the host, or name it by tag)"
                    .to_string()
            };
            let _ = writeln!(
                out,
                "{} pull    {} on {}{note}",
                paint(CYAN, "↓"),
                pull.image,
                pull.host
            );
        }
        let marks: std::collections::BTreeSet<&str> =
            self.held.iter().map(|c| c.job.as_str()).collect();
        for job in marks {
            for mark in self.stop_marks_of(job) {
                let _ = writeln!(
                    out,
                    "{} held    {mark}: `drover start {job}` applies what the files say",
                    paint(YELLOW, "‖"),
                );
            }
        }
        for change in self.changes.iter().chain(&self.held) {
            let held = self.held.contains(change);
            let (sign, code) = match change.step {
                Step::Create { .. } => ("+", GREEN),
                Step::Replace { .. } | Step::Rename { .. } | Step::Restore { .. } => ("~", YELLOW),
                Step::Start { .. } | Step::Restart { .. } => (">", CYAN),
                Step::Remove { .. } | Step::Stop { .. } => ("-", RED),
            };
            let (sign, code) = if held { ("‖", YELLOW) } else { (sign, code) };
            let _ = write!(
                out,
                "{} {:<7} {}",
                paint(code, sign),
                paint(code, change.step.verb()),
                paint(BOLD, &change.name())
            );
            if held {
                out.push_str(" (held)");
            }
            match change.step.container() {
                Some(c) => {
                    let _ = writeln!(out, "  ({}, {})", c.short_id(), change.reason);
                }
                None => {
                    let _ = writeln!(out, "  ({})", change.reason);
                }
            }
            let creating = matches!(change.step, Step::Create { .. });
            for field in &change.fields {
                // A new task's identity variables, empty lists and unset values say nothing.
                if creating
                    && (field.path.starts_with("env.DROVER_")
                        || field.new == Value::Array(Vec::new())
                        || field.new.is_null())
                {
                    continue;
                }
                let _ = match (&field.old, &field.new) {
                    (Value::Null, new) if creating => {
                        writeln!(out, "    {}: {}", field.path, show(new))
                    }
                    (old, new) => writeln!(
                        out,
                        "    {}: {} => {}",
                        field.path,
                        paint(RED, &show(old)),
                        paint(GREEN, &show(new))
                    ),
                };
            }
        }
        // Counted by what is done (`restart`, `stop`, `rename`…), not by the
        // interface's four actions, which fold those into start/remove/replace.
        let counts: Vec<String> = [
            ("create", "create"),
            ("replace", "replace"),
            ("rename", "rename"),
            ("rollback", "roll back"),
            ("start", "start"),
            ("restart", "restart"),
            ("stop", "stop"),
            ("remove", "remove"),
        ]
        .into_iter()
        .filter_map(|(verb, words)| {
            match self
                .changes
                .iter()
                .filter(|c| c.step.verb() == verb)
                .count()
            {
                0 => None,
                n => Some(format!("{n} to {words}")),
            }
        })
        .collect();
        let stopped = if self.stopped > 0 {
            format!(" ({} stopped by `drover stop`)", self.stopped)
        } else {
            String::new()
        };
        let held = if self.held.is_empty() {
            String::new()
        } else {
            format!(
                "; {} held by `drover stop` (`drover start` applies them)",
                self.held.len()
            )
        };
        if counts.is_empty() && self.held.is_empty() {
            let _ = writeln!(
                out,
                "No changes: {} task(s) as specified{stopped}.",
                self.unchanged
            );
        } else if counts.is_empty() {
            let _ = writeln!(
                out,
                "No changes to apply{held}; {} task(s) unchanged{stopped}.",
                self.unchanged
            );
        } else {
            let _ = writeln!(
                out,
                "Plan: {}{held}; {} task(s) unchanged{stopped}.",
                counts.join(", "),
                self.unchanged
            );
        }
        out
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}
