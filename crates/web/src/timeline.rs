//! A job's timeline: each deployment of it, newest first, and what became
//! of it: running now, kept for rollback, rolled back from, or failed.
//!
//! Read from what the hosts hold, as `history` is: the generations
//! `history` lists (the task's container and its kept ones, grouped by the
//! deployment they came from: one command stamps one time on all it
//! creates), and the `.failed` containers a rollout set aside when a new
//! container failed its gate. A kept generation newer than the one its
//! task runs was rolled back from (`rollback` brings an older one back
//! under the task's name, and keeps the newer).

use std::collections::BTreeMap;

use drover_plan::views::{history, Generation};
use drover_plan::{Observed, Role};
use serde::Serialize;

/// One deployment of the job (or one failed attempt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// RFC 3339.
    pub at: String,
    /// `deployed` (running now), `kept`, `rolled back`, `failed`.
    pub kind: &'static str,
    pub by: String,
    pub command: String,
    pub image: String,
    /// `host/task` of each task it holds.
    pub tasks: Vec<String>,
    /// Why the new containers failed (`failed` only), in `status`'s words.
    pub why: Option<String>,
}

/// The timeline of `job`, newest first.
pub fn timeline(
    env: &str,
    job: &str,
    observed: &Observed,
    known_hosts: &std::collections::BTreeSet<String>,
) -> Vec<Entry> {
    let generations = history(env, job, observed, known_hosts);
    // What each task runs now, and when that was deployed.
    let current: BTreeMap<(String, u32), &Generation> = generations
        .iter()
        .filter(|g| g.current)
        .map(|g| ((g.host.clone(), g.task), g))
        .collect();
    let mut groups: BTreeMap<(String, String, String, &'static str), Entry> = BTreeMap::new();
    for g in &generations {
        let kind = if g.current {
            "deployed"
        } else if current
            .get(&(g.host.clone(), g.task))
            .is_some_and(|now| when(&now.deployed_at) < when(&g.deployed_at))
        {
            "rolled back"
        } else {
            "kept"
        };
        let entry = groups
            .entry((
                g.deployed_at.clone(),
                g.command.clone(),
                g.image.clone(),
                kind,
            ))
            .or_insert_with(|| Entry {
                at: g.deployed_at.clone(),
                kind,
                by: g.deployed_by.clone(),
                command: g.command.clone(),
                image: g.image.clone(),
                tasks: Vec::new(),
                why: None,
            });
        entry.tasks.push(format!("{}/{}", g.host, g.task));
    }
    for (host, state) in observed.reachable() {
        for c in &state.containers {
            let Role::Failed(key) = c.role(env) else {
                continue;
            };
            if key.job != job || !drover_plan::belongs_to(c, host, known_hosts) {
                continue;
            }
            let at = c
                .deployed_at()
                .map(drover_plan::time::format)
                .unwrap_or_default();
            let command = c
                .label(drover_plan::labels::COMMAND)
                .unwrap_or("unknown")
                .to_string();
            let entry = groups
                .entry((
                    at.clone(),
                    command.clone(),
                    c.config.image.clone(),
                    "failed",
                ))
                .or_insert_with(|| Entry {
                    at,
                    kind: "failed",
                    by: c
                        .label(drover_plan::labels::DEPLOYED_BY)
                        .unwrap_or("unknown")
                        .to_string(),
                    command,
                    image: c.config.image.clone(),
                    tasks: Vec::new(),
                    why: c.failing(observed.at).map(|f| f.to_string()),
                });
            entry.tasks.push(format!("{host}/{}", key.task));
        }
    }
    let mut entries: Vec<Entry> = groups.into_values().collect();
    for entry in &mut entries {
        entry.tasks.sort();
    }
    // Newest first; at one time, what failed before what was kept.
    entries.sort_by(|a, b| {
        when(&b.at)
            .cmp(&when(&a.at))
            .then_with(|| a.kind.cmp(b.kind))
    });
    entries
}

fn when(text: &str) -> Option<drover_plan::time::Timestamp> {
    drover_plan::time::parse(text)
}
