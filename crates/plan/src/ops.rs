//! Plans for the commands that act on a job as it runs rather than
//! converging it to the spec: `down`, `rollback`, `restart`, `stop`, `start`.
//! Each is a [`Plan`] like `up`'s, run by the same executor.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::{DesiredTask, Secrets, TaskConfig};
use crate::names::{labels, OneOffKind, TaskKey};
use crate::observed::{belongs_to, HostObservation, Observed, ObservedContainer, Role};
use crate::plan::{serves, Change, ContainerRef, Phase, Plan, Step, UnreachableHost};
use crate::state::RunState;
use crate::time::{self, Timestamp};

fn unreachable(observed: &Observed) -> Vec<UnreachableHost> {
    observed
        .hosts
        .iter()
        .filter_map(|(host, o)| match o {
            HostObservation::Unreachable { address, error } => Some(UnreachableHost {
                host: host.clone(),
                address: address.clone(),
                error: error.clone(),
            }),
            HostObservation::Reachable(_) => None,
        })
        .collect()
}

/// Every container of `jobs` on each reachable host, with its role.
fn containers_of<'a>(
    env: &str,
    jobs: &'a BTreeSet<String>,
    observed: &'a Observed,
    known_hosts: &'a BTreeSet<String>,
) -> impl Iterator<Item = (&'a String, &'a ObservedContainer, Role)> + 'a {
    let env = env.to_string();
    observed.reachable().flat_map(move |(host, state)| {
        let env = env.clone();
        state
            .containers
            .iter()
            .filter(move |c| {
                c.job().is_some_and(|j| jobs.contains(j)) && belongs_to(c, host, known_hosts)
            })
            .map(move |c| (host, c, c.role(&env)))
    })
}

fn change(
    job: &str,
    host: &str,
    task: Option<u32>,
    step: Step,
    phase: Phase,
    reason: &str,
) -> Change {
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task,
        step,
        phase,
        reason: reason.to_string(),
        fields: Vec::new(),
    }
}

/// A step that takes `current` down: in the rollout if it serves, at once if not.
fn disrupting(current: &ObservedContainer, now: Timestamp) -> Phase {
    if serves(current, now) {
        Phase::Rollout
    } else {
        Phase::Now
    }
}

/// `down`: remove every container of the jobs (tasks, strays, kept and
/// failed generations, stop marks), on every host, at once: taking the job
/// down is what was asked. Locks stay: `down` holds them.
pub fn plan_down(
    env: &str,
    jobs: &BTreeSet<String>,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
) -> Plan {
    let mut plan = Plan {
        unreachable: unreachable(observed),
        ..Plan::default()
    };
    // Two host entries sharing an engine see the same containers: each goes once.
    let mut seen = BTreeSet::new();
    for (host, c, role) in containers_of(env, jobs, observed, known_hosts) {
        if !seen.insert(c.id.clone()) {
            continue;
        }
        let reason = match role {
            Role::Lock { .. } => continue,
            Role::Kept(_) => "kept generation",
            Role::Failed(_) => "failed generation",
            Role::StopMark { .. } => "stop mark",
            Role::OneOff {
                kind: OneOffKind::Run,
                ..
            } => "one-off run",
            Role::OneOff {
                kind: OneOffKind::Release,
                ..
            } => "release run",
            _ => "down",
        };
        plan.changes.push(change(
            c.job().unwrap_or("?"),
            host,
            c.task(),
            Step::Remove {
                current: ContainerRef::of(c),
            },
            Phase::Now,
            reason,
        ));
    }
    sort(&mut plan);
    plan
}

fn sort(plan: &mut Plan) {
    plan.changes.sort_by(|a, b| {
        (&a.job, &a.host, a.task, &a.reason).cmp(&(&b.job, &b.host, b.task, &b.reason))
    });
}

/// The task containers (own name) of `jobs`, by task.
fn current_tasks<'a>(
    env: &str,
    jobs: &'a BTreeSet<String>,
    observed: &'a Observed,
    known_hosts: &'a BTreeSet<String>,
) -> BTreeMap<TaskKey, &'a ObservedContainer> {
    containers_of(env, jobs, observed, known_hosts)
        .filter_map(|(host, c, role)| match role {
            // A leftover labelled for a host no longer in the environment is not a task here.
            Role::Current(key) if &key.host == host => Some((key, c)),
            _ => None,
        })
        .collect()
}

/// A step for each task whose container `wants` it, the others unchanged.
fn each_task(
    env: &str,
    jobs: &BTreeSet<String>,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
    wants: impl Fn(&ObservedContainer) -> bool,
    step: impl Fn(&ObservedContainer) -> (Step, Phase),
    reason: &str,
) -> Plan {
    let mut plan = Plan {
        unreachable: unreachable(observed),
        ..Plan::default()
    };
    for (key, c) in current_tasks(env, jobs, observed, known_hosts) {
        if wants(c) {
            let (step, phase) = step(c);
            plan.changes.push(change(
                &key.job,
                &key.host,
                Some(key.task),
                step,
                phase,
                reason,
            ));
        } else {
            plan.unchanged += 1;
        }
    }
    sort(&mut plan);
    plan
}

/// `restart`: every running task restarted in place; those that serve
/// batch by batch, those failing at once.
pub fn plan_restart(
    env: &str,
    jobs: &BTreeSet<String>,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
) -> Plan {
    each_task(
        env,
        jobs,
        observed,
        known_hosts,
        ObservedContainer::is_running,
        |c| {
            (
                Step::Restart {
                    current: ContainerRef::of(c),
                },
                disrupting(c, observed.at),
            )
        },
        "restart",
    )
}

/// `stop`: every running or paused container of the jobs' tasks stopped
/// (not removed), at once: stopping the job is what was asked. That
/// includes one under another name or labelled for a host since renamed:
/// the job is stopped wherever it runs. The command also leaves a stop
/// mark per job and host, so `up` keeps them stopped.
pub fn plan_stop(
    env: &str,
    jobs: &BTreeSet<String>,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
) -> Plan {
    let mut plan = Plan {
        unreachable: unreachable(observed),
        ..Plan::default()
    };
    let mut seen = BTreeSet::new();
    for (host, c, role) in containers_of(env, jobs, observed, known_hosts) {
        if !matches!(role, Role::Current(_) | Role::Stray(_)) || !seen.insert(c.id.clone()) {
            continue;
        }
        if c.is_running() || c.state() == RunState::Paused {
            plan.changes.push(change(
                c.job().unwrap_or("?"),
                host,
                c.task(),
                Step::Stop {
                    current: ContainerRef::of(c),
                },
                Phase::Now,
                "stop",
            ));
        } else {
            plan.unchanged += 1;
        }
    }
    sort(&mut plan);
    plan
}

/// Why a task cannot be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoPrevious {
    pub task: TaskKey,
    pub why: String,
}

/// `rollback`: every task of `job` back to the generation before its
/// current one: its kept container if it still exists (a restart, no pull),
/// else recreated from the configuration recorded on the current container.
pub fn plan_rollback(
    env: &str,
    job: &str,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
    secrets: &Secrets,
) -> (Plan, Vec<NoPrevious>) {
    let jobs = BTreeSet::from([job.to_string()]);
    let mut plan = Plan {
        unreachable: unreachable(observed),
        ..Plan::default()
    };
    let mut problems = Vec::new();
    let mut kept: BTreeMap<TaskKey, Vec<&ObservedContainer>> = BTreeMap::new();
    let mut current: BTreeMap<TaskKey, &ObservedContainer> = BTreeMap::new();
    for (host, c, role) in containers_of(env, &jobs, observed, known_hosts) {
        match role {
            Role::Current(key) if &key.host == host => {
                current.insert(key, c);
            }
            Role::Kept(key) if &key.host == host => {
                kept.entry(key).or_default().push(c);
            }
            _ => {}
        }
    }
    let tasks: BTreeSet<TaskKey> = current.keys().chain(kept.keys()).cloned().collect();
    for key in tasks {
        let now = current.get(&key).copied();
        let now_at = now.and_then(ObservedContainer::deployed_at);
        // The generation the current one replaced: what served just before
        // it (after a rollback and a new deployment, not the generation
        // rolled back from, though it was deployed later). Without that
        // record, the newest kept generation deployed before the current one.
        let candidates = kept.get(&key).into_iter().flatten().copied();
        let replaced = now
            .and_then(ObservedContainer::replaces)
            .and_then(|id| candidates.clone().find(|k| k.id == id));
        let target = replaced.or_else(|| {
            candidates
                .filter(|k| now.is_none() || k.deployed_at() < now_at)
                .max_by_key(|k| k.deployed_at())
        });
        let task = Some(key.task);
        let phase = now.map_or(Phase::Now, |c| disrupting(c, observed.at));
        match (target, now) {
            (Some(target), now) => plan.changes.push(change(
                &key.job,
                &key.host,
                task,
                Step::Restore {
                    current: now.map(ContainerRef::of),
                    target: ContainerRef::of(target),
                },
                phase,
                &format!(
                    "back to {} ({})",
                    target.config.image,
                    target
                        .deployed_at()
                        .map_or_else(|| "deployed at an unknown time".to_string(), time::format)
                ),
            )),
            (None, Some(now)) => match recorded_previous(&key, now, secrets) {
                Ok(desired) => {
                    let reason = format!(
                        "back to {} (recreated from its record)",
                        desired.config.image
                    );
                    plan.changes.push(change(
                        &key.job,
                        &key.host,
                        task,
                        Step::Replace {
                            current: ContainerRef::of(now),
                            desired,
                        },
                        phase,
                        &reason,
                    ));
                }
                Err(why) => problems.push(NoPrevious {
                    task: key.clone(),
                    why,
                }),
            },
            (None, None) => {}
        }
    }
    sort(&mut plan);
    (plan, problems)
}

/// The generation recorded in a container's [`labels::PREVIOUS`] label.
fn recorded_previous(
    key: &TaskKey,
    current: &ObservedContainer,
    secrets: &Secrets,
) -> Result<DesiredTask, String> {
    let text = current
        .label(labels::PREVIOUS)
        .ok_or_else(|| "no previous generation: nothing was kept and nothing recorded (it was created by its first deployment)".to_string())?;
    let record: Value = serde_json::from_str(text)
        .map_err(|e| format!("the recorded previous generation is unreadable: {e}"))?;
    let config = TaskConfig::from_record(&record["config"], secrets)?;
    let spec_hash = record["spec"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| config.hash());
    let image = config
        .image
        .parse()
        .map_err(|e| format!("the recorded previous generation names an unreadable image: {e}"))?;
    Ok(DesiredTask {
        key: key.clone(),
        image,
        config,
        spec_hash,
    })
}
