//! A job's timeline: each deployment of it, newest first, and what became
//! of it: running now, kept for rollback, rolled back from, or failed; and
//! each run of its `[release]` command.
//!
//! Read from what the hosts hold, as `history` is, from `history`'s own
//! generations (grouped by the deployment they came from: one command
//! stamps one time on all it creates). A kept generation newer than the
//! one its task runs was rolled back from (`rollback` brings an older one
//! back under the task's name, and keeps the newer).

use std::collections::BTreeMap;

use drover_plan::views::{history, Generation, GenerationKind};
use drover_plan::Observed;
use serde::Serialize;

/// One deployment of the job (or one failed attempt, or one release run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// RFC 3339.
    pub at: String,
    /// `deployed` (running now), `kept`, `rolled back`, `failed`, `release`.
    pub kind: &'static str,
    pub by: String,
    pub command: String,
    pub image: String,
    /// `host/task` of each task it holds; `host` for a release run.
    pub tasks: Vec<String>,
    /// Why the new containers failed (`failed`), how a release run ended
    /// (`release`), in `history`'s words.
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
    let current: BTreeMap<(String, Option<u32>), &Generation> = generations
        .iter()
        .filter(|g| g.kind == GenerationKind::Current)
        .map(|g| ((g.host.clone(), g.task), g))
        .collect();
    let mut groups: BTreeMap<(String, String, String, &'static str), Entry> = BTreeMap::new();
    for g in &generations {
        let kind = match g.kind {
            GenerationKind::Current => "deployed",
            GenerationKind::Failed => "failed",
            GenerationKind::Release => "release",
            GenerationKind::Kept
                if current
                    .get(&(g.host.clone(), g.task))
                    .is_some_and(|now| when(&now.deployed_at) < when(&g.deployed_at)) =>
            {
                "rolled back"
            }
            GenerationKind::Kept => "kept",
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
                why: g.outcome.clone(),
            });
        entry.tasks.push(match g.task {
            Some(task) => format!("{}/{task}", g.host),
            None => g.host.clone(),
        });
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
