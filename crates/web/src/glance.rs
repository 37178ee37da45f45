//! Each job at a glance: in sync, N changes, locked, stopped; and when it
//! was last deployed.
//!
//! "N changes" is what `drover diff JOB` would list now: the planner's own
//! [`drover_plan::plan`] over the live view the hub keeps (which holds what
//! `observe` would read: the containers inspected, their images' own
//! settings, the host's tags), so the count costs no engine call and
//! agrees with `diff` by construction. Changes a `drover stop` holds back
//! count too, as they do for `diff`.

use std::collections::{BTreeMap, BTreeSet};

use drover_plan::views::LockInfo;
use drover_plan::{DesiredTask, Observed, Plan, Role, Scope, StopMark};
use serde::Serialize;

/// One job, at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Glance {
    /// Changes `drover diff JOB` lists now (held ones included); `None`
    /// while the hosts are being read or the files cannot be rendered.
    pub changes: Option<usize>,
    /// Of those, held back by `drover stop`.
    pub held: usize,
    /// The hosts where `drover stop` stopped it.
    pub stop_marks: Vec<StopMark>,
    /// Who holds its lock, where.
    pub locks: Vec<LockInfo>,
    /// Its hosts that could not be read: its changes there are unknown.
    pub unreachable: Vec<String>,
    /// Why the changes cannot be told (a secret missing…).
    pub error: Option<String>,
    /// The newest deployment of its running generations (RFC 3339).
    pub last_deploy: Option<String>,
}

impl Glance {
    /// `in sync`, `3 changes`, …: what the overview shows first.
    pub fn summary(&self) -> String {
        match self.changes {
            None => "checking".to_string(),
            Some(0) => "in sync".to_string(),
            Some(1) => "1 change".to_string(),
            Some(n) => format!("{n} changes"),
        }
    }
}

/// Every job's glance: the spec's jobs and those only the hosts still have.
/// `desired` is every job's rendered tasks (or why they cannot be), the
/// observation the hub's; `reading` names hosts not read yet.
pub fn glances(
    env: &str,
    jobs: &BTreeMap<String, Vec<String>>,
    desired: Result<&[DesiredTask], &str>,
    observed: &Observed,
    reading: &BTreeSet<String>,
    known_hosts: &BTreeSet<String>,
    locks: &BTreeMap<String, Vec<LockInfo>>,
) -> BTreeMap<String, Glance> {
    let plan = desired
        .ok()
        .map(|desired| drover_plan::plan(env, desired, observed, &Scope::All, known_hosts));
    let mut names: BTreeSet<String> = jobs.keys().cloned().collect();
    if let Some(plan) = &plan {
        names.extend(plan.changes.iter().map(|c| c.job.clone()));
    }
    let unreachable: BTreeSet<&str> = plan
        .as_ref()
        .map(|p| p.unreachable.iter().map(|u| u.host.as_str()).collect())
        .unwrap_or_default();
    let last = last_deploys(env, observed);
    names
        .into_iter()
        .map(|job| {
            let hosts = jobs.get(&job).cloned().unwrap_or_default();
            let mut glance = Glance {
                locks: locks.get(&job).cloned().unwrap_or_default(),
                unreachable: hosts
                    .iter()
                    .filter(|h| unreachable.contains(h.as_str()) && !reading.contains(*h))
                    .cloned()
                    .collect(),
                last_deploy: last.get(&job).map(|t| drover_plan::time::format(*t)),
                ..Glance::default()
            };
            match (&plan, desired) {
                (_, Err(why)) => glance.error = Some(why.to_string()),
                (Some(plan), _) if !hosts.iter().any(|h| reading.contains(h)) => {
                    count(plan, &job, &mut glance);
                }
                _ => {}
            }
            (job, glance)
        })
        .collect()
}

fn count(plan: &Plan, job: &str, glance: &mut Glance) {
    let changes = plan.changes.iter().filter(|c| c.job == job).count();
    glance.held = plan.held.iter().filter(|c| c.job == job).count();
    glance.changes = Some(changes + glance.held);
    glance.stop_marks = plan.stop_marks_of(job).cloned().collect();
}

/// When each job's running generations were deployed, the newest.
fn last_deploys(env: &str, observed: &Observed) -> BTreeMap<String, drover_plan::time::Timestamp> {
    let mut last: BTreeMap<String, drover_plan::time::Timestamp> = BTreeMap::new();
    for (_, state) in observed.reachable() {
        for c in &state.containers {
            let Role::Current(key) = c.role(env) else {
                continue;
            };
            if let Some(at) = c.deployed_at() {
                let entry = last.entry(key.job).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let mut g = Glance::default();
        assert_eq!(g.summary(), "checking");
        g.changes = Some(0);
        assert_eq!(g.summary(), "in sync");
        g.changes = Some(1);
        assert_eq!(g.summary(), "1 change");
        g.changes = Some(4);
        assert_eq!(g.summary(), "4 changes");
    }
}
