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

use drover_spec::ImageKey;

use crate::config::{mask, DesiredTask, HealthConfig, Settings, TaskConfig};
use crate::names::TaskKey;
use crate::observed::{belongs_to, HostObservation, HostState, Observed, ObservedContainer, Role};

/// The kinds of change the interface names (`diff --json`'s `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Replace,
    Start,
    Remove,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Start => "start",
            Action::Remove => "remove",
        })
    }
}

/// An existing container a step acts on, with what acting on it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub state: String,
    /// How long a graceful stop may take.
    pub stop_timeout: Duration,
    /// Its own health check, for gating it after a start.
    pub health: Option<HealthConfig>,
    /// What it is, as the `drover.previous` label of a container replacing it records.
    pub record: String,
}

impl ContainerRef {
    pub fn of(container: &ObservedContainer) -> Self {
        ContainerRef {
            id: container.id.clone(),
            name: container.name.clone(),
            state: container.state.clone(),
            stop_timeout: container.config.stop_timeout,
            health: container.config.health.clone(),
            record: json!({
                "config": container.config.to_record(),
                "spec": container.spec_hash(),
                "deployed_at": container.deployed_at(),
                "deployed_by": container.label(crate::names::labels::DEPLOYED_BY),
                "command": container.label(crate::names::labels::COMMAND),
            })
            .to_string(),
        }
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting")
    }
}

/// One step of a plan: exactly the data it needs, nothing that could disagree.
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
            Step::Replace { .. } | Step::Rename { .. } | Step::Restore { .. } => Action::Replace,
            Step::Start { .. } | Step::Restart { .. } => Action::Start,
            Step::Remove { .. } | Step::Stop { .. } => Action::Remove,
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

    /// Whether the step takes a running task down for a moment.
    pub fn disrupts(&self) -> bool {
        matches!(
            self,
            Step::Replace { .. } | Step::Restore { .. } | Step::Restart { .. }
        )
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
        let mut s = serializer.serialize_struct("Change", 7)?;
        s.serialize_field("job", &self.job)?;
        s.serialize_field("host", &self.host)?;
        s.serialize_field("task", &self.task)?;
        s.serialize_field("action", &self.action())?;
        s.serialize_field("step", self.step.verb())?;
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub pulls: Vec<Pull>,
    /// Hosts that could not be asked: nothing is planned for them.
    pub unreachable: Vec<UnreachableHost>,
    /// Tasks already as the spec wants them.
    pub unchanged: usize,
    /// Of those, tasks left stopped because `drover stop` stopped their job.
    pub stopped: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.pulls.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action() == action).count()
    }

    /// The jobs this plan changes anything of.
    pub fn jobs(&self) -> BTreeSet<&str> {
        self.changes.iter().map(|c| c.job.as_str()).collect()
    }
}

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
    stopped_jobs: BTreeSet<String>,
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
        stopped_jobs: BTreeSet::new(),
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
        // accounted to the host it was found on, as a stray: it can never
        // stand in for the task's own container there.
        let role = match container.role(env) {
            Role::Current(key) | Role::Kept(key) if key.host != host => Role::Stray(key),
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
                by.stopped_jobs.insert(job);
            }
            Role::Lock { .. } | Role::StopMark { .. } => {}
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
    let mut result = Plan::default();
    let mut pulls = BTreeSet::new();

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
            let stopped = by.stopped_jobs.contains(&want.key.job);
            if stopped && !found.current.is_some_and(|c| c.is_running()) {
                // `drover stop` left the job stopped here: `up` leaves it
                // alone (no create, replace or start) until `drover start`.
                let misnamed = found.current.is_none() && !found.strays.is_empty();
                if !misnamed {
                    result.unchanged += 1;
                    result.stopped += 1;
                    continue;
                }
            }
            let image_id = state.images.find(&image_key(&want.config.image));
            let (changes, unchanged) = plan_task(env, want, &found, image_id, stopped);
            for change in changes {
                if let Some(desired) = change.step.desired() {
                    if image_id.is_none() {
                        let key = image_key(&desired.config.image);
                        pulls.insert(Pull {
                            host: host.clone(),
                            image: desired.config.image.clone(),
                            pullable: !matches!(key, ImageKey::Id(_)),
                        });
                    }
                }
                result.changes.push(change);
            }
            if unchanged {
                result.unchanged += 1;
                if stopped {
                    result.stopped += 1;
                }
            }
        }

        // Whatever is left is claimed by no task of the spec. Kept generations
        // of such tasks are left for `gc`.
        for (key, found) in by.tasks {
            let reason = if desired
                .iter()
                .any(|d| d.key.job == key.job && d.key.host == key.host)
            {
                "task beyond the job's instances".to_string()
            } else if desired.iter().any(|d| d.key.job == key.job) {
                format!("job {} no longer runs on host {host}", key.job)
            } else {
                "not in the spec".to_string()
            };
            for container in found.current.iter().chain(&found.strays) {
                result
                    .changes
                    .push(removal(&key.job, host, Some(key.task), container, &reason));
            }
        }
        for container in by.unknown {
            result.changes.push(removal(
                container.job().unwrap_or("?"),
                host,
                None,
                container,
                "no task label",
            ));
        }
    }

    // Two host entries sharing an engine both see a container no host claims:
    // remove it once.
    let mut removed = BTreeSet::new();
    result.changes.retain(|c| match &c.step {
        Step::Remove { current } => removed.insert(current.id.clone()),
        _ => true,
    });

    result.pulls = pulls.into_iter().collect();
    result.changes.sort_by(|a, b| {
        (&a.job, &a.host, a.task, a.action()).cmp(&(&b.job, &b.host, b.task, b.action()))
    });
    result
}

/// How a host's image list is searched for a spec's image reference.
pub fn image_key(image: &str) -> ImageKey {
    match image.parse::<drover_spec::ImageRef>() {
        Ok(r) => r.key(),
        Err(_) => ImageKey::Tag(image.to_string()),
    }
}

/// The changes for one task, and whether it is as the spec wants it.
fn plan_task(
    env: &str,
    want: &DesiredTask,
    found: &TaskContainers<'_>,
    image_id: Option<&str>,
    stopped: bool,
) -> (Vec<Change>, bool) {
    let change = |step: Step, reason: String, fields: Vec<FieldChange>| Change {
        job: want.key.job.clone(),
        host: want.key.host.clone(),
        task: Some(want.key.task),
        step,
        reason,
        fields,
    };
    let own_name = want.container_name(env);

    // The task's container: the one under its name; else the stray most
    // like the spec; else a kept generation of exactly this spec.
    let (current, extras): (Option<&ObservedContainer>, Vec<&ObservedContainer>) =
        match found.current {
            Some(current) => (Some(current), found.strays.clone()),
            None => match best(&found.strays, want) {
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
                        .max_by(|a, b| a.deployed_at().cmp(b.deployed_at())),
                    Vec::new(),
                ),
            },
        };

    let mut changes: Vec<Change> = extras
        .iter()
        .map(|extra| {
            change(
                Step::Remove {
                    current: ContainerRef::of(extra),
                },
                "duplicate container for the task".to_string(),
                Vec::new(),
            )
        })
        .collect();

    let Some(current) = current else {
        changes.push(change(
            Step::Create {
                desired: want.clone(),
            },
            "missing".to_string(),
            creation_fields(&want.config),
        ));
        return (changes, false);
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
    let hash_differs = current.spec_hash() != Some(want.spec_hash.as_str());
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

    let planned = if matches!(current.state.as_str(), "dead" | "removing") {
        Some(change(
            Step::Replace {
                current: current_ref,
                desired: want.clone(),
            },
            current.state.clone(),
            fields,
        ))
    } else if !fields.is_empty() {
        let reason = if fields.len() == 1 && fields[0].path == "image_id" {
            "tag now names another image".to_string()
        } else if hash_differs {
            "spec changed".to_string()
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
            reason,
            fields,
        ))
    } else if misnamed {
        let start = !current.is_running() && !stopped;
        let reason = if found.current.is_none() && found.strays.iter().all(|s| s.id != current.id) {
            "kept generation of this spec".to_string()
        } else {
            "renamed".to_string()
        };
        Some(change(
            Step::Rename {
                current: current_ref,
                to: own_name.clone(),
                start,
            },
            reason,
            vec![rename_field()],
        ))
    } else if current.state == "paused" {
        Some(change(
            Step::Start {
                current: current_ref,
            },
            "paused".to_string(),
            Vec::new(),
        ))
    } else if !current.is_running() && !stopped {
        let reason = match current.state.as_str() {
            "exited" if current.oom_killed => {
                format!("killed for memory (exit code {})", current.exit_code)
            }
            "exited" => format!("exited (code {})", current.exit_code),
            "created" => "created but never started".to_string(),
            other => other.to_string(),
        };
        Some(change(
            Step::Start {
                current: current_ref,
            },
            reason,
            Vec::new(),
        ))
    } else {
        None
    };
    let unchanged = planned.is_none();
    changes.extend(planned);
    (changes, unchanged)
}

/// Of several containers for one task, the one most like the spec.
fn best<'a>(
    candidates: &[&'a ObservedContainer],
    want: &DesiredTask,
) -> Option<&'a ObservedContainer> {
    candidates
        .iter()
        .max_by_key(|c| {
            (
                c.spec_hash() == Some(want.spec_hash.as_str()),
                c.is_running(),
                c.created.clone(),
            )
        })
        .copied()
}

fn removal(
    job: &str,
    host: &str,
    task: Option<u32>,
    container: &ObservedContainer,
    reason: &str,
) -> Change {
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task,
        step: Step::Remove {
            current: ContainerRef::of(container),
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
