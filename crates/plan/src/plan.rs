//! `plan(desired, observed) -> Plan`: pure, so `diff` and `up` agree by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{mask, DesiredTask, TaskConfig};
use crate::observed::{normalize_image_ref, HostObservation, Observed, ObservedContainer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

/// One field that differs; values are as shown to the operator (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// What `up` will do to one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub job: String,
    pub host: String,
    /// `None` only for a container whose task label is not a number.
    pub task: Option<u32>,
    pub action: Action,
    /// Why, in a few words: "missing", "exited (code 1)", "changed", "not in the spec"…
    pub reason: String,
    /// The existing container this acts on (replace, start, remove).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
    pub fields: Vec<FieldChange>,
    /// What to create (create, replace).
    #[serde(skip)]
    pub desired: Option<DesiredTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub state: String,
    #[serde(skip)]
    pub stop_timeout_secs: u64,
}

/// An image a host lacks, pulled before anything else changes there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pull {
    pub host: String,
    pub image: String,
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
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.pulls.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// What is in scope: jobs whose orphans may be removed.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The whole environment: containers of jobs no longer in the spec are removed too.
    All,
    /// Only these jobs.
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

/// Compares the desired tasks with what runs on each observed host.
///
/// `known_hosts` are the environment's host names: a container whose
/// `drover.host` label names another of them belongs to that host's pass
/// (two host entries may share an engine) and is left alone here.
pub fn plan(
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

        // This host's containers, by (job, task).
        let mut by_task: BTreeMap<(String, Option<u32>), Vec<&ObservedContainer>> = BTreeMap::new();
        for container in &state.containers {
            let label_host = container.host_label().unwrap_or_default();
            if label_host != host && known_hosts.contains(label_host) {
                continue;
            }
            let Some(job) = container.job() else { continue };
            if !scope.covers(job) {
                continue;
            }
            by_task
                .entry((job.to_string(), container.task()))
                .or_default()
                .push(container);
        }

        for want in desired.iter().filter(|d| &d.host == host) {
            let candidates = by_task
                .remove(&(want.job.clone(), Some(want.task)))
                .unwrap_or_default();
            let image_id = state.images.get(&normalize_image_ref(&want.config.image));
            let keeper = pick_keeper(&candidates, want);
            for extra in candidates
                .iter()
                .filter(|c| Some(c.id.as_str()) != keeper.map(|k| k.id.as_str()))
            {
                result.changes.push(removal(
                    &want.job,
                    host,
                    extra,
                    "duplicate container for the task",
                ));
            }
            let change = match keeper {
                None => Some(Change {
                    job: want.job.clone(),
                    host: host.clone(),
                    task: Some(want.task),
                    action: Action::Create,
                    reason: "missing".to_string(),
                    container: None,
                    fields: creation_fields(&want.config),
                    desired: Some(want.clone()),
                }),
                Some(current) => compare(want, current, image_id.map(String::as_str)),
            };
            match change {
                Some(change) => {
                    if matches!(change.action, Action::Create | Action::Replace)
                        && image_id.is_none()
                    {
                        pulls.insert(Pull {
                            host: host.clone(),
                            image: want.config.image.clone(),
                        });
                    }
                    result.changes.push(change);
                }
                None => result.unchanged += 1,
            }
        }

        // Whatever is left is claimed by no task of the spec.
        for ((job, _), containers) in by_task {
            for container in containers {
                result
                    .changes
                    .push(removal(&job, host, container, "not in the spec"));
            }
        }
    }

    // Two host entries sharing an engine both see a container no host claims:
    // remove it once.
    let mut removed = BTreeSet::new();
    result.changes.retain(|c| match (&c.action, &c.container) {
        (Action::Remove, Some(container)) => removed.insert(container.id.clone()),
        _ => true,
    });

    result.pulls = pulls.into_iter().collect();
    result.changes.sort_by(|a, b| {
        (&a.job, &a.host, a.task, a.action).cmp(&(&b.job, &b.host, b.task, b.action))
    });
    result
}

/// Of several containers for one task, keep the one most like the spec.
fn pick_keeper<'a>(
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

fn removal(job: &str, host: &str, container: &ObservedContainer, reason: &str) -> Change {
    Change {
        job: job.to_string(),
        host: host.to_string(),
        task: container.task(),
        action: Action::Remove,
        reason: reason.to_string(),
        container: Some(container_ref(container)),
        fields: Vec::new(),
        desired: None,
    }
}

fn container_ref(container: &ObservedContainer) -> ContainerRef {
    ContainerRef {
        id: container.id.clone(),
        name: container.name.clone(),
        state: container.state.clone(),
        stop_timeout_secs: container.config.stop_timeout_secs,
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
    actual
        .env
        .retain(|k, v| want.env.contains_key(k) || current.image_env.get(k) != Some(v));
    // Without a command of its own, the job runs the image's.
    let mut want = want.clone();
    if want.command.is_none() {
        want.command.clone_from(&current.image_cmd);
    }
    if actual.command.is_none() {
        actual.command.clone_from(&current.image_cmd);
    }

    let old: BTreeMap<String, Value> = actual.fields().into_iter().collect();
    let new: Vec<(String, Value)> = want.fields();
    let mut changes = Vec::new();
    for (path, new_value) in &new {
        let old_value = old.get(path);
        if old_value != Some(new_value) {
            let secret = want.is_secret_field(path);
            changes.push(FieldChange {
                path: path.clone(),
                old: mask(old_value, secret),
                new: mask(Some(new_value), secret),
            });
        }
    }
    let new_paths: BTreeSet<&String> = new.iter().map(|(p, _)| p).collect();
    for (path, old_value) in &old {
        if !new_paths.contains(path) {
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

fn compare(
    want: &DesiredTask,
    current: &ObservedContainer,
    image_id: Option<&str>,
) -> Option<Change> {
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

    let (action, reason) = if matches!(current.state.as_str(), "dead" | "removing") {
        (Action::Replace, current.state.clone())
    } else if !fields.is_empty() {
        let reason = if fields.iter().any(|f| f.path == "image_id") && fields.len() == 1 {
            "tag now names another image".to_string()
        } else if hash_differs {
            "spec changed".to_string()
        } else {
            "changed on the host".to_string()
        };
        (Action::Replace, reason)
    } else if current.state == "paused" {
        (Action::Start, "paused".to_string())
    } else if !current.is_running() {
        let reason = match current.state.as_str() {
            "exited" => format!("exited (code {})", current.exit_code),
            other => other.to_string(),
        };
        (Action::Start, reason)
    } else {
        return None;
    };
    Some(Change {
        job: want.job.clone(),
        host: want.host.clone(),
        task: Some(want.task),
        action,
        reason,
        container: Some(container_ref(current)),
        fields,
        desired: Some(want.clone()),
    })
}

fn short(image_id: &str) -> &str {
    let id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    id.get(..12).unwrap_or(id)
}
