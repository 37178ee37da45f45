//! How a plan reads to an operator: what `diff` prints and `up` asks about.

use std::fmt::{self, Write as _};

use serde_json::Value;

use crate::plan::{Action, Change, Plan};

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
            let _ = writeln!(
                out,
                "{} pull    {} on {}",
                paint(CYAN, "↓"),
                pull.image,
                pull.host
            );
        }
        for change in &self.changes {
            let (sign, code) = match change.action {
                Action::Create => ("+", GREEN),
                Action::Replace => ("~", YELLOW),
                Action::Start => (">", CYAN),
                Action::Remove => ("-", RED),
            };
            let _ = write!(
                out,
                "{} {:<7} {}",
                paint(code, sign),
                paint(code, &change.action.to_string()),
                paint(BOLD, &task_name(change))
            );
            match &change.container {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "  ({}, {})",
                        c.id.get(..12).unwrap_or(&c.id),
                        change.reason
                    );
                }
                None => {
                    let _ = writeln!(out, "  ({})", change.reason);
                }
            }
            for field in &change.fields {
                // A new task's identity variables, empty lists and unset values say nothing.
                if change.action == Action::Create
                    && (field.path.starts_with("env.DROVER_")
                        || field.new == Value::Array(Vec::new())
                        || field.new.is_null())
                {
                    continue;
                }
                let _ = match (&field.old, &field.new) {
                    (Value::Null, new) if change.action == Action::Create => {
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
        let counts: Vec<String> = [
            Action::Create,
            Action::Replace,
            Action::Start,
            Action::Remove,
        ]
        .into_iter()
        .filter_map(|a| match self.count(a) {
            0 => None,
            n => Some(format!("{n} to {a}")),
        })
        .collect();
        if counts.is_empty() {
            let _ = writeln!(out, "No changes: {} task(s) as specified.", self.unchanged);
        } else {
            let _ = writeln!(
                out,
                "Plan: {}; {} task(s) unchanged.",
                counts.join(", "),
                self.unchanged
            );
        }
        out
    }
}

/// `job host/task`, the name a task goes by everywhere.
pub fn task_name(change: &Change) -> String {
    match change.task {
        Some(task) => format!("{} {}/{}", change.job, change.host, task),
        None => format!("{} {}/?", change.job, change.host),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}
