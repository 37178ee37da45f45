//! `plan(desired, observed) -> Plan`: pure, so `diff` and `up` agree by construction.
//!
//! For each task the planner looks at every container labelled for it on
//! its host: the one under the task's own name, strays under other names
//! (renamed by hand, left by an interrupted run) and kept generations. It
//! decides one [`Step`] per task, or none, and lists what each host must
//! pull first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::config::{mask, DesiredTask, HealthConfig, Settings, TaskConfig, IDENTITY_ENV};
use crate::names::{labels, TaskKey};
use crate::observed::{belongs_to, HostObservation, HostState, Observed, ObservedContainer, Role};
use crate::state::{Failing, Health, RunState};
use crate::time::Timestamp;

/// The kinds of change the interface names (`diff --json`'s `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Replace,
    Rename,
    Start,
    Stop,
    Restart,
    Remove,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Rename => "rename",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Remove => "remove",
        })
    }
}

/// When a change may run within its job's rollout. The planner decides it,
/// so a plan has a shape in which no more than `[update] parallel` serving
/// tasks of a job are ever down at once, whatever the executor meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Takes down nothing that serves (a new task, a stopped or failing
    /// one, a rename, a container that does not run): all at once.
    Now,
    /// Takes a serving task down for a moment (replace, roll back,
    /// restart): `parallel` at a time, `delay` apart, each gated, undone
    /// on failure.
    Rollout,
    /// Takes a serving container away for good (a task the spec no longer
    /// has, a duplicate): only once every other change of its job has
    /// passed its gate, `parallel` at a time; never after a failure.
    Retire,
}

/// An existing container a step acts on, with what acting on it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub state: RunState,
    /// How long a graceful stop may take.
    pub stop_timeout: Duration,
    /// Its own health check, for gating it after a start.
    pub health: Option<HealthConfig>,
    /// When its last health check ended, as observed: a verdict from then
    /// is stale once it is started again or unpaused.
    pub health_at: Option<Timestamp>,
    /// What it is, as the `drover.previous` label of a container replacing it records.
    pub record: String,
    /// The task it was made for, from its labels.
    pub task: Option<TaskKey>,
}

impl ContainerRef {
    pub fn of(container: &ObservedContainer) -> Self {
        ContainerRef {
            id: container.id.clone(),
            name: container.name.clone(),
            state: container.state(),
            stop_timeout: container.config.stop_timeout,
            health: container.config.health.clone(),
            health_at: container.runs.health_at,
            record: json!({
                "config": container.config.to_record(),
                "spec": container.spec_hash(),
                "deployed_at": container.deployed_at().map(crate::time::format),
                "deployed_by": container.label(crate::names::labels::DEPLOYED_BY),
                "command": container.label(crate::names::labels::COMMAND),
            })
            .to_string(),
            task: container.task_key(),
        }
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Up as the engine counts it: a stop must wait for it.
    pub fn is_running(&self) -> bool {
        self.state.is_up()
    }
}

/// One step of a plan: exactly the data it needs, nothing that could disagree.
// A plan holds one step per task changed: boxing the larger variants would
// save little and cost a pointer chase on every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A task without a container: create and start it.
    Create { desired: DesiredTask },
    /// Stop the current container and set it aside (kept for rollback),
    /// then create and start the desired one under the task's name.
    Replace {
        current: ContainerRef,
        desired: DesiredTask,
    },
    /// Start (or unpause) the task's stopped container.
    Start { current: ContainerRef },
    /// Give a container its task's name back, and start it if it is not running.
    Rename {
        current: ContainerRef,
        to: String,
        start: bool,
    },
    /// Stop and remove a container.
    Remove { current: ContainerRef },
    /// Roll back: set the current container aside and bring a kept
    /// generation back under the task's name.
    Restore {
        current: Option<ContainerRef>,
        target: ContainerRef,
    },
    /// Restart in place (same container), gated like a start.
    Restart { current: ContainerRef },
    /// Stop without removing (`drover stop`).
    Stop { current: ContainerRef },
}

impl Step {
    /// The interface's name for this kind of change.
    pub fn action(&self) -> Action {
        match self {
            Step::Create { .. } => Action::Create,
            Step::Replace { .. } | Step::Restore { .. } => Action::Replace,
            Step::Rename { .. } => Action::Rename,
            Step::Start { .. } => Action::Start,
            Step::Restart { .. } => Action::Restart,
            Step::Stop { .. } => Action::Stop,
            Step::Remove { .. } => Action::Remove,
        }
    }

    /// The word shown to an operator.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Replace { .. } => "replace",
            Step::Start { .. } => "start",
            Step::Rename { .. } => "rename",
            Step::Remove { .. } => "remove",
            Step::Restore { .. } => "rollback",
            Step::Restart { .. } => "restart",
            Step::Stop { .. } => "stop",
        }
    }

    /// The existing container it acts on, if any.
    pub fn container(&self) -> Option<&ContainerRef> {
        match self {
            Step::Create { .. } => None,
            Step::Replace { current, .. }
            | Step::Start { current }
            | Step::Rename { current, .. }
            | Step::Remove { current }
            | Step::Restart { current }
            | Step::Stop { current } => Some(current),
            Step::Restore { current, target } => current.as_ref().or(Some(target)),
        }
    }

    pub fn desired(&self) -> Option<&DesiredTask> {
        match self {
            Step::Create { desired } | Step::Replace { desired, .. } => Some(desired),
            _ => None,
        }
    }
}

/// One field that differs; values are as shown to the operator (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// What will happen to one task (or to a container no task claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub job: String,
    pub host: String,
    /// `None` only for a container whose task label is not a number.
    pub task: Option<u32>,
    pub step: Step,
    /// When it may run within its job's rollout.
    pub phase: Phase,
    /// Why, in a few words: "missing", "exited (code 1)", "spec changed"…
    pub reason: String,
    pub fields: Vec<FieldChange>,
}

impl Change {
    pub fn action(&self) -> Action {
        self.step.action()
    }

    /// `job host/task`, the name a task goes by everywhere.
    pub fn name(&self) -> String {
        match self.task {
            Some(task) => format!("{} {}/{}", self.job, self.host, task),
            None => format!("{} {}/?", self.job, self.host),
        }
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Change", 8)?;
        s.serialize_field("job", &self.job)?;
        s.serialize_field("host", &self.host)?;
        s.serialize_field("task", &self.task)?;
        s.serialize_field("action", &self.action())?;
        s.serialize_field("step", self.step.verb())?;
        s.serialize_field("phase", &self.phase)?;
        s.serialize_field("reason", &self.reason)?;
        s.serialize_field(
            "container",
            &self
                .step
                .container()
                .map(|c| json!({"id": c.id, "name": c.name})),
        )?;
        s.serialize_field("fields", &self.fields)?;
        s.end()
    }
}

/// An image a host lacks, pulled before anything there changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pull {
    pub host: String,
    pub image: String,
    /// An image ID cannot be pulled: the host must get it some other way.
    pub pullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreachableHost {
    pub host: String,
    pub address: String,
    pub error: String,
}

/// A job stopped by `drover stop` on a host: who stopped it, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopMark {
    pub job: String,
    pub host: String,
    pub by: Option<String>,
    pub at: Option<String>,
}

impl StopMark {
    pub(crate) fn of(container: &ObservedContainer, job: &str, host: &str) -> Self {
        StopMark {
            job: job.to_string(),
            host: host.to_string(),
            by: container.label(labels::DEPLOYED_BY).map(str::to_string),
            at: container.label(labels::DEPLOYED_AT).map(str::to_string),
        }
    }
}

impl fmt::Display for StopMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} is stopped by `drover stop` on host {}",
            self.job, self.host
        )?;
        match (&self.by, &self.at) {
            (Some(by), Some(at)) => write!(f, " ({by}, {at})"),
            (Some(by), None) => write!(f, " ({by})"),
            (None, Some(at)) => write!(f, " ({at})"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub pulls: Vec<Pull>,
    /// Hosts that could not be asked: nothing is planned for them.
    pub unreachable: Vec<UnreachableHost>,
    /// Changes the files ask for but a stop mark holds back: `drover start`
    /// applies them. The hosts are not as the files say, so `diff` counts them.
    pub held: Vec<Change>,
    /// The stop marks of the jobs in scope.
    pub stop_marks: Vec<StopMark>,
    /// Tasks already as the spec wants them.
    pub unchanged: usize,
    /// Of those, tasks left stopped because `drover stop` stopped their job.
    pub stopped: usize,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.pulls.is_empty()
    }

    /// The hosts run what the files say: nothing to do and nothing held.
    pub fn converged(&self) -> bool {
        self.is_empty() && self.held.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action() == action).count()
    }

    /// Whether `other` does the same: the same steps on the same containers
    /// with the same fields (a container's health ticking on between two
    /// looks is no difference).
    pub fn same_as(&self, other: &Plan) -> bool {
        let steps = |plan: &Plan| -> Vec<StepIdentity> {
            plan.changes
                .iter()
                .map(|c| {
                    (
                        c.job.clone(),
                        c.host.clone(),
                        c.task,
                        c.step.verb(),
                        c.step.container().map(|r| r.id.clone()),
                        c.fields.clone(),
                    )
                })
                .collect()
        };
        steps(self) == steps(other) && self.pulls == other.pulls
    }

    /// The jobs this plan changes anything of.
    pub fn jobs(&self) -> BTreeSet<&str> {
        self.changes.iter().map(|c| c.job.as_str()).collect()
    }

    /// The stop marks of `job`.
    pub fn stop_marks_of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a StopMark> + 'a {
        self.stop_marks.iter().filter(move |m| m.job == job)
    }

    /// Drops every change of `job` (a job whose lock is held by someone else).
    pub fn without_job(mut self, job: &str) -> Plan {
        self.changes.retain(|c| c.job != job);
        self.held.retain(|c| c.job != job);
        let hosts: BTreeSet<(String, String)> = self
            .changes
            .iter()
            .filter_map(|c| Some((c.host.clone(), c.step.desired()?.config.image.clone())))
            .collect();
        self.pulls
            .retain(|p| hosts.contains(&(p.host.clone(), p.image.clone())));
        self
    }
}

/// What a change does, to which container, with which fields: what two
/// plans must share to do the same.
type StepIdentity = (
    String,
    String,
    Option<u32>,
    &'static str,
    Option<String>,
    Vec<FieldChange>,
);

/// What is in scope: jobs whose containers may be changed.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The whole environment: containers of jobs no longer in the spec are removed too.
    All,
    /// Only these jobs, on every host of the environment.
    Jobs(BTreeSet<String>),
}

impl Scope {
    pub fn covers(&self, job: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Jobs(jobs) => jobs.contains(job),
        }
    }
}

/// The containers of one task on its host, sorted by what they are.
#[derive(Default)]
struct TaskContainers<'a> {
    current: Option<&'a ObservedContainer>,
    strays: Vec<&'a ObservedContainer>,
    kept: Vec<&'a ObservedContainer>,
}

/// The observed containers of the jobs in `scope` on one host, by task.
struct HostContainers<'a> {
    tasks: BTreeMap<TaskKey, TaskContainers<'a>>,
    /// Containers with drover's label but no task to speak of.
    unknown: Vec<&'a ObservedContainer>,
    /// Jobs stopped by `drover stop` on this host.
    stop_marks: BTreeMap<String, StopMark>,
}

fn classify<'a>(
    env: &str,
    host: &str,
    state: &'a HostState,
    scope: &Scope,
    known_hosts: &BTreeSet<String>,
) -> HostContainers<'a> {
    let mut by = HostContainers {
        tasks: BTreeMap::new(),
        unknown: Vec::new(),
        stop_marks: BTreeMap::new(),
    };
    for container in &state.containers {
        if !belongs_to(container, host, known_hosts) {
            continue;
        }
        if !container.job().is_some_and(|j| scope.covers(j)) {
            if container.job().is_none() && matches!(scope, Scope::All) {
                by.unknown.push(container);
            }
            continue;
        }
        // A container labelled for a host no longer in the environment is
        // accounted to the host it was found on: a task's container as a
        // stray (it can never stand in for the task's own container there),
        // a kept generation as one of that task's (stopped, it serves
        // nobody; its spec never matches the renamed host's, so none stands in).
        let role = match container.role(env) {
            Role::Current(key) if key.host != host => Role::Stray(key),
            role => role,
        };
        match role {
            Role::Current(key) => {
                let entry = by.tasks.entry(relabel(key, host)).or_default();
                // Two host entries sharing an engine cannot both hold a name; keep the first.
                if entry.current.is_none() {
                    entry.current = Some(container);
                } else {
                    entry.strays.push(container);
                }
            }
            Role::Stray(key) => by
                .tasks
                .entry(relabel(key, host))
                .or_default()
                .strays
                .push(container),
            Role::Kept(key) => by
                .tasks
                .entry(relabel(key, host))
                .or_default()
                .kept
                .push(container),
            Role::StopMark {
                job,
                host: mark_host,
            } if mark_host == host => {
                by.stop_marks
                    .insert(job.clone(), StopMark::of(container, &job, host));
            }
            // The evidence of a failed rollout is `gc`'s to remove, not `up`'s.
            // One-offs (`drover run`, release runs) are no task's: `gc` removes them.
            Role::Failed(_)
            | Role::Lock { .. }
            | Role::StopMark { .. }
            | Role::AdoptionRecord { .. }
            | Role::OneOff { .. } => {}
            Role::Unknown => by.unknown.push(container),
        }
    }
    by
}

/// A container labelled for a host no longer in the environment is
/// accounted to the host it was found on.
fn relabel(mut key: TaskKey, host: &str) -> TaskKey {
    key.host = host.to_string();
    key
}

/// Whether a container serves: up, and failing in no way.
pub fn serves(container: &ObservedContainer, now: Timestamp) -> bool {
    container.is_running() && container.failing(now).is_none()
}

/// Compares the desired tasks with what runs on each observed host.
///
/// `known_hosts` are the environment's host names: a container whose
/// `drover.host` label names another of them belongs to that host's pass.
pub fn plan(
    env: &str,
    desired: &[DesiredTask],
    observed: &Observed,
    scope: &Scope,
    known_hosts: &BTreeSet<String>,
) -> Plan {
    let now = observed.at;
    let mut result = Plan::default();
    let mut pulls = BTreeSet::new();

    // Jobs with a task on a host that could not be looked at (unreachable,
    // or left out by `--host`): nothing can be created or seen there.
    let unseen: BTreeSet<&str> = desired
        .iter()
        .filter(|d| {
            !matches!(
                observed.hosts.get(&d.key.host),
                Some(HostObservation::Reachable(_))
            )
        })
        .map(|d| d.key.job.as_str())
        .collect();

    for (host, observation) in &observed.hosts {
        let state = match observation {
            HostObservation::Reachable(state) => state,
            HostObservation::Unreachable { address, error } => {
                result.unreachable.push(UnreachableHost {
                    host: host.clone(),
                    address: address.clone(),
                    error: error.clone(),
                });
                continue;
            }
        };
        let mut by = classify(env, host, state, scope, known_hosts);

        for want in desired.iter().filter(|d| &d.key.host == host) {
            let found = by.tasks.remove(&want.key).unwrap_or_default();
            let mark = by.stop_marks.get(&want.key.job);
            let image_id = state.images.find(&want.image.key());
            let planned = plan_task(env, want, &found, image_id, mark, now);
            for change in &planned.changes {
                if change.step.desired().is_some() && image_id.is_none() {
                    pulls.insert(Pull {
                        host: host.clone(),
                        image: want.image.to_string(),
                        pullable: !want.image.is_id(),
                    });
                }
            }
            result.changes.extend(planned.changes);
            result.held.extend(planned.held);
            if planned.unchanged {
                result.unchanged += 1;
                if mark.is_some() {
                    result.stopped += 1;
                }
            }
        }

        // Whatever is left is claimed by no task of the spec. Kept generations
        // of such tasks are left for `gc`.
        for (key, found) in by.tasks {
            let here = desired
                .iter()
                .any(|d| d.key.job == key.job && d.key.host == key.host);
            let moved = !here && desired.iter().any(|d| d.key.job == key.job);
            let reason = if here {
                "task beyond the job's instances".to_string()
            } else if moved {
                format!("job {} no longer runs on host {host}", key.job)
            } else {
                "not in the spec".to_string()
            };
            for container in found.current.iter().chain(&found.strays) {
                let change = removal(&key.job, host, Some(key.task), container, &reason, now);
                // A serving task of a job moved to other hosts goes only
                // once its replacements there passed their gates: where a
                // host of the job cannot be seen, it stays.
                if moved && change.phase == Phase::Retire && unseen.contains(key.job.as_str()) {
                    continue;
                }
                result.changes.push(change);
            }
        }
        for container in by.unknown {
            result.changes.push(removal(
                container.job().unwrap_or("?"),
                host,
                None,
                container,
                "no task label",
                now,
            ));
        }
        result.stop_marks.extend(by.stop_marks.into_values());
    }

    // Two host entries sharing an engine both see a container no host claims:
    // remove it once.
    let mut removed = BTreeSet::new();
    result.changes.retain(|c| match &c.step {
        Step::Remove { current } => removed.insert(current.id.clone()),
        _ => true,
    });

    result.pulls = pulls.into_iter().collect();
    let order = |c: &Change| (c.job.clone(), c.host.clone(), c.task, c.action());
    result.changes.sort_by_key(order);
    result.held.sort_by_key(order);
    result
}

/// The changes of one task.
struct TaskPlan {
    changes: Vec<Change>,
    /// What a stop mark holds back.
    held: Vec<Change>,
    /// The task is as the spec wants it (stopped, under a stop mark).
    unchanged: bool,
}

/// The changes for one task: at most one step for the task itself, plus the
/// removal of any duplicate container of it.
fn plan_task(
    env: &str,
    want: &DesiredTask,
    found: &TaskContainers<'_>,
    image_id: Option<&str>,
    mark: Option<&StopMark>,
    now: Timestamp,
) -> TaskPlan {
    let change = |step: Step, phase: Phase, reason: String, fields: Vec<FieldChange>| Change {
        job: want.key.job.clone(),
        host: want.key.host.clone(),
        task: Some(want.key.task),
        step,
        phase,
        reason,
        fields,
    };
    let own_name = want.container_name(env);

    // The task's container: the one under its name; else the stray most
    // like the spec; else a kept generation of exactly this spec.
    let (current, extras): (Option<&ObservedContainer>, Vec<&ObservedContainer>) =
        match found.current {
            Some(current) => (Some(current), found.strays.clone()),
            None => match best(&found.strays, want, now) {
                Some(pick) => (
                    Some(pick),
                    found
                        .strays
                        .iter()
                        .copied()
                        .filter(|c| c.id != pick.id)
                        .collect(),
                ),
                None => (
                    found
                        .kept
                        .iter()
                        .copied()
                        .filter(|k| k.spec_hash() == Some(want.spec_hash.as_str()))
                        .max_by_key(|k| k.deployed_at()),
                    Vec::new(),
                ),
            },
        };

    // A duplicate that serves goes only once the task itself is sound.
    let mut changes: Vec<Change> = extras
        .iter()
        .map(|extra| {
            change(
                Step::Remove {
                    current: ContainerRef::of(extra),
                },
                if serves(extra, now) {
                    Phase::Retire
                } else {
                    Phase::Now
                },
                "duplicate container for the task".to_string(),
                Vec::new(),
            )
        })
        .collect();
    let mut held = Vec::new();

    let Some(current) = current else {
        let create = change(
            Step::Create {
                desired: want.clone(),
            },
            Phase::Now,
            "missing".to_string(),
            creation_fields(&want.config),
        );
        match mark {
            Some(_) => held.push(create),
            None => changes.push(create),
        }
        return TaskPlan {
            changes,
            held,
            unchanged: false,
        };
    };
    let current_ref = ContainerRef::of(current);
    let misnamed = current.name != own_name;
    let mut fields = field_changes(&want.config, current);
    if let Some(image_id) = image_id {
        if current.image_id != image_id && !fields.iter().any(|f| f.path == "image") {
            fields.push(FieldChange {
                path: "image_id".to_string(),
                old: json!(short(&current.image_id)),
                new: json!(short(image_id)),
            });
        }
    }
    // An adopted container has no hash: its fields are all there is to compare.
    let hash_differs =
        current.adopted.is_none() && current.spec_hash() != Some(want.spec_hash.as_str());
    if hash_differs && fields.is_empty() {
        fields.push(FieldChange {
            path: "spec".to_string(),
            old: current.spec_hash().map_or(Value::Null, |h| json!(h)),
            new: json!(want.spec_hash),
        });
    }
    let rename_field = || FieldChange {
        path: "name".to_string(),
        old: json!(current.name),
        new: json!(own_name),
    };
    let failing = current.failing(now);
    // Replacing or restarting a task that does not serve takes nothing down.
    let disrupts = if serves(current, now) {
        Phase::Rollout
    } else {
        Phase::Now
    };

    let planned = if current.state().is_broken() {
        Some(change(
            Step::Replace {
                current: current_ref,
                desired: want.clone(),
            },
            Phase::Now,
            current.state().to_string(),
            fields,
        ))
    } else if !fields.is_empty() {
        let reason = if fields.len() == 1 && fields[0].path == "image_id" {
            "tag now names another image".to_string()
        } else if hash_differs {
            "spec changed".to_string()
        } else if current.adopted.is_some() {
            "adopted: it runs otherwise than its file says".to_string()
        } else {
            "changed on the host".to_string()
        };
        if misnamed {
            fields.push(rename_field());
        }
        Some(change(
            Step::Replace {
                current: current_ref,
                desired: want.clone(),
            },
            disrupts,
            reason,
            fields,
        ))
    } else if misnamed {
        // A rename takes nothing down; under a stop mark it starts nothing.
        let start = !current.is_running() && mark.is_none();
        let reason = if found.current.is_none() && found.strays.iter().all(|s| s.id != current.id) {
            "kept generation of this spec".to_string()
        } else {
            "renamed".to_string()
        };
        changes.push(change(
            Step::Rename {
                current: current_ref,
                to: own_name.clone(),
                start,
            },
            Phase::Now,
            reason,
            vec![rename_field()],
        ));
        return TaskPlan {
            changes,
            held,
            unchanged: false,
        };
    } else if let Some(mark) = mark {
        // Stopped by `drover stop`: stopped is as specified; running is drift.
        if current.is_running() || current.state() == RunState::Paused {
            Some(change(
                Step::Stop {
                    current: current_ref,
                },
                Phase::Now,
                format!(
                    "{}, but {mark}: `drover start {}` runs it",
                    current.state(),
                    want.key.job
                ),
                Vec::new(),
            ))
        } else {
            None
        }
    } else {
        match failing {
            // Running but not proven: its health check has not passed since
            // it started (an interrupted rollout left it so, or it was
            // restarted). Nothing else of the job is taken down until it
            // passes: a start (a no-op on a running container) and its gate.
            None if current.state() == RunState::Running
                && current.runs.health == Health::Starting =>
            {
                Some(change(
                    Step::Start {
                        current: current_ref,
                    },
                    Phase::Now,
                    "running, but its health check has not passed since it started".to_string(),
                    Vec::new(),
                ))
            }
            None => None,
            Some(why @ (Failing::CrashLoop { .. } | Failing::Unhealthy { .. })) => Some(change(
                Step::Restart {
                    current: current_ref,
                },
                Phase::Now,
                why.to_string(),
                Vec::new(),
            )),
            Some(why) => Some(change(
                Step::Start {
                    current: current_ref,
                },
                Phase::Now,
                why.to_string(),
                Vec::new(),
            )),
        }
    };
    let unchanged = planned.is_none();
    match (planned, mark) {
        // A stop mark holds back whatever would run the task; a task found
        // running under it (started by hand, or an interrupted `stop`) is
        // stopped now, whatever else waits for `drover start`.
        (Some(planned), Some(mark)) if !matches!(planned.step, Step::Stop { .. }) => {
            if current.is_running() || current.state() == RunState::Paused {
                changes.push(change(
                    Step::Stop {
                        current: ContainerRef::of(current),
                    },
                    Phase::Now,
                    format!(
                        "{}, but {mark}: `drover start {}` runs it",
                        current.state(),
                        want.key.job
                    ),
                    Vec::new(),
                ));
            }
            held.push(planned)
        }
        (Some(planned), _) => changes.push(planned),
        (None, _) => {}
    }
    TaskPlan {
        changes,
        held,
        unchanged,
    }
}

/// Of several containers for one task, the one most like the spec.
fn best<'a>(
    candidates: &[&'a ObservedContainer],
    want: &DesiredTask,
    now: Timestamp,
) -> Option<&'a ObservedContainer> {
    candidates
        .iter()
        .max_by_key(|c| {
            (
                serves(c, now),
                c.spec_hash() == Some(want.spec_hash.as_str()),
                c.is_running(),
                c.created,
            )
        })
        .copied()
}

/// A container no task claims: removed, and if it serves, only once the
/// rest of its job's changes have passed.
fn removal(
    job: &str,
    host: &str,
    task: Option<u32>,
    container: &ObservedContainer,
    reason: &str,
    now: Timestamp,
) -> Change {
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task,
        step: Step::Remove {
            current: ContainerRef::of(container),
        },
        phase: if serves(container, now) {
            Phase::Retire
        } else {
            Phase::Now
        },
        reason: reason.to_string(),
        fields: Vec::new(),
    }
}

fn creation_fields(config: &TaskConfig) -> Vec<FieldChange> {
    config
        .fields()
        .into_iter()
        .map(|(path, value)| {
            let secret = config.is_secret_field(&path);
            FieldChange {
                new: mask(Some(&value), secret),
                old: Value::Null,
                path,
            }
        })
        .collect()
}

/// The fields in which `current` differs from `want`, reading the container's
/// config in the light of its image (the image's own env and command are not drift).
pub fn field_changes(want: &TaskConfig, current: &ObservedContainer) -> Vec<FieldChange> {
    let mut actual = current.config.clone();
    // The image's own variables are not drift, unless the job sets them too.
    actual.env.retain(|k, v| {
        want.env.contains_key(k) || current.image_env.get(k).map(String::as_str) != Some(v.expose())
    });
    // Without a command of its own, the job runs the image's (which the
    // engine drops for an entrypoint of the job's own).
    let mut want = want.clone();
    // Nor are drover's identity variables missing from an adopted container,
    // which lacks drover's labels too: its first replacement gets both.
    if current.adopted.is_some() {
        want.env
            .retain(|k, _| !IDENTITY_ENV.contains(&k.as_str()) || actual.env.contains_key(k));
    }
    let image_cmd = match &want.settings.entrypoint {
        Some(entrypoint) if !entrypoint.is_empty() => &None,
        _ => &current.image_cmd,
    };
    if want.command.is_none() {
        want.command.clone_from(image_cmd);
    }
    if actual.command.is_none() {
        actual.command.clone_from(image_cmd);
    }
    // Nor is what the image or the engine gives for a key the job leaves unset.
    Settings::settle_unset(
        &mut want.settings,
        &mut actual.settings,
        &current.image_defaults,
    );
    // A host without swap accounting reports -1 whatever was asked: not drift.
    if actual.resources.memory_swap == -1 {
        actual.resources.memory_swap = want.resources.memory_swap;
    }

    let old: BTreeMap<String, Value> = actual.fields().into_iter().collect();
    let new: Vec<(String, Value)> = want.fields();
    let mut changes = Vec::new();
    for (path, new_value) in &new {
        let old_value = old.get(path).filter(|v| !v.is_null());
        let new_shown = Some(new_value).filter(|v| !v.is_null());
        if old_value != new_shown {
            let secret = want.is_secret_field(path) || actual.is_secret_field(path);
            changes.push(FieldChange {
                path: path.clone(),
                old: mask(old_value, secret),
                new: mask(new_shown, secret),
            });
        }
    }
    let new_paths: BTreeSet<&String> = new.iter().map(|(p, _)| p).collect();
    for (path, old_value) in &old {
        if !new_paths.contains(path) && !old_value.is_null() {
            let secret = want.is_secret_field(path) || actual.is_secret_field(path);
            changes.push(FieldChange {
                path: path.clone(),
                old: mask(Some(old_value), secret),
                new: Value::Null,
            });
        }
    }
    changes
}

pub(crate) fn short(image_id: &str) -> &str {
    let id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    id.get(..12).unwrap_or(id)
}
