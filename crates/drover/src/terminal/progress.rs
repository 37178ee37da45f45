//! Progress of a rollout: on a terminal a live line per task (pulling,
//! stopping, starting, waiting for health, done, rolled back); elsewhere
//! plain timestamped lines; with `--json` one JSON object per event.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use drover_apply::{Event, Phase};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Global;
use crate::outln;

enum Mode {
    Live(MultiProgress),
    Lines,
    Json,
}

pub struct Progress {
    mode: Mode,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// The last phase printed per subject, so waiting ticks print once.
    last: Mutex<BTreeMap<String, String>>,
}

impl Progress {
    pub fn new(global: &Global) -> Self {
        let mode = if global.json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
            Mode::Live(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr_with_hz(10),
            ))
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            bars: Mutex::new(BTreeMap::new()),
            last: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn event(&self, event: &Event) {
        let subject = event.subject();
        match &self.mode {
            Mode::Json => {
                let mut value = serde_json::to_value(event).unwrap_or_default();
                value["time"] = serde_json::json!(drover_fleet::now_rfc3339());
                outln!("{value}");
            }
            Mode::Lines => {
                let text = event.phase.to_string();
                let kind = match &event.phase {
                    Phase::Waiting { .. } => "waiting".to_string(),
                    _ => text.clone(),
                };
                if let Ok(mut last) = self.last.lock() {
                    if last.get(&subject) == Some(&kind) {
                        return;
                    }
                    last.insert(subject.clone(), kind);
                }
                outln!("{} {subject}: {text}", clock());
            }
            Mode::Live(multi) => {
                let Ok(mut bars) = self.bars.lock() else {
                    return;
                };
                let bar = bars.entry(subject.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:30} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(subject.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                let text = event.phase.to_string();
                match &event.phase {
                    Phase::Done { .. } | Phase::Pulled { .. } => {
                        bar.finish_with_message(format!("✓ {text}"))
                    }
                    Phase::Failed { .. } => bar.finish_with_message(format!("✗ {text}")),
                    Phase::RolledBack { .. } => bar.finish_with_message(format!("↶ {text}")),
                    Phase::Skipped { .. } | Phase::Interrupted { .. } => {
                        bar.finish_with_message(format!("- {text}"))
                    }
                    _ => bar.set_message(text),
                }
            }
        }
    }

    /// Ends the live view, so what follows prints below it.
    pub fn finish(&self) {
        if let Mode::Live(multi) = &self.mode {
            if let Ok(bars) = self.bars.lock() {
                for bar in bars.values() {
                    if !bar.is_finished() {
                        bar.abandon();
                    }
                }
            }
            let _ = multi.clear();
        }
    }
}

/// `HH:MM:SS` UTC, for plain progress lines.
fn clock() -> String {
    let now = drover_fleet::now_rfc3339();
    now.get(11..19).unwrap_or("").to_string()
}
