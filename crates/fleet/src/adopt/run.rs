//! The engine half of `drover adopt`: read every host, decide with the
//! pure half what the files say, check them with the spec's own loader
//! and plan them against what runs ([`Fleet::adoption_plan`], which
//! changes nothing), then take the containers over
//! ([`Fleet::adopt`]): the secrets file, `[defaults]`, each job's file,
//! its adoption record on each host, and the renames.
//!
//! A job is taken over whole or not at all: when a record or a rename
//! fails, what was done for that job is undone (its file removed, its
//! records removed, its containers given their names back). Nothing is
//! ever restarted, stopped or recreated.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_apply::markers::create_marker;
use drover_engine::{with_image, Engine, EngineError, HostContainer};
use drover_plan::{
    adoption_name, labels, plan, render_job, Adoption, HostObservation, HostState, ImageIndex,
    Observed, Plan, Scope, Secret, Secrets, ROLE_ADOPTED,
};
use drover_spec::{Environment, SpecError};
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    common, group, inherited, job_name, merge_secrets, render_job_file, shape, subtract, unique,
    with_defaults, without, Found, Keys, Member, Untouched,
};
use crate::secrets::{parse_secrets, secrets_file};
use crate::{Connections, Fleet, FleetError};

/// Inspects in flight at once per host.
const INSPECT_CONCURRENCY: usize = 32;
/// Renames in flight at once per host and job.
const RENAME_CONCURRENCY: usize = 16;
/// Jobs taken over at once.
const JOB_CONCURRENCY: usize = 8;

/// One task of an adopted job: the container it is, and its names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdoptedTask {
    pub host: String,
    pub task: u32,
    pub id: String,
    /// The name it runs under now.
    pub from: String,
    /// Its task's name, `ENV.JOB.HOST.TASK`.
    pub to: String,
}

/// A job `adopt` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdoptedJob {
    pub job: String,
    /// `jobs/JOB.toml`.
    pub file: String,
    /// The file's text (no secret values: those are in the secrets file).
    pub text: String,
    pub tasks: Vec<AdoptedTask>,
    /// Its secret variables' names.
    pub secrets: BTreeSet<String>,
}

/// Values appended to the secrets file.
#[derive(Debug, Clone)]
pub struct SecretsEdit {
    pub file: PathBuf,
    /// The file does not exist yet: it is created, readable by its owner only.
    pub create: bool,
    pub names: Vec<String>,
    /// The lines appended, values and all: never shown.
    appended: Secret,
}

/// Everything `adopt` would do, decided before anything is done.
#[derive(Debug, Clone)]
pub struct AdoptionPlan {
    pub jobs: Vec<AdoptedJob>,
    /// Keys every adopted job says alike, set in `[defaults]` instead
    /// (only where that changes no job the environment has).
    pub lifted: Keys,
    /// drover.toml's new text, when something is lifted.
    pub drover_toml: Option<String>,
    pub secrets: Option<SecretsEdit>,
    /// Containers left as they are, and why.
    pub untouched: Vec<Untouched>,
    /// What the next `up` will change of the adopted jobs: the plan of
    /// their files against the containers as adopted.
    pub next_up: Plan,
    /// Hosts that could not be read: name and why.
    pub unreachable: Vec<(String, String)>,
    /// When the plan was made (RFC 3339), as the files' comments say.
    pub at: String,
}

impl AdoptionPlan {
    /// Nothing to adopt.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// What taking the containers over did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Adopted {
    /// Jobs taken over.
    pub jobs: Vec<String>,
    /// Jobs that could not be, with why; what was done for them is undone.
    pub failed: Vec<(String, String)>,
    /// Files written (relative to the environment directory, or the
    /// secrets file's path).
    pub wrote: Vec<String>,
    /// What the operator should know of what was written (a secrets file
    /// git tracks).
    pub warnings: Vec<String>,
}

/// What one host holds for `adopt`.
#[derive(Default)]
struct HostRead {
    found: Vec<Found>,
    idle: Vec<Untouched>,
    index: ImageIndex,
    /// Every container's name there, with its ID.
    names: BTreeMap<String, String>,
}

impl Fleet {
    /// Reads the hosts and decides what `adopt` would write and take over;
    /// changes nothing. `only`: container names or ID prefixes to adopt
    /// (empty: every container no environment manages).
    pub async fn adoption_plan(
        &self,
        connections: &Connections,
        only: &[String],
    ) -> Result<AdoptionPlan, FleetError> {
        let at = crate::now_rfc3339();
        let at = at.split('.').next().map_or(at.clone(), |s| format!("{s}Z"));
        let mut unreachable: Vec<(String, String)> = connections
            .unreachable
            .iter()
            .map(|(h, e)| (h.clone(), e.to_string()))
            .collect();
        let reads = connections.engines.iter().map(|(host, engine)| async move {
            (host.clone(), read_host(host, engine.as_ref(), only).await)
        });
        let mut hosts: BTreeMap<String, HostRead> = BTreeMap::new();
        for (host, read) in join_all(reads).await {
            match read {
                Ok(read) => {
                    hosts.insert(host, read);
                }
                Err(e) => unreachable.push((host, e.to_string())),
            }
        }
        if !only.is_empty() {
            let seen: Vec<&str> = hosts
                .values()
                .flat_map(|r| {
                    r.found
                        .iter()
                        .map(|f| f.run.container.name.as_str())
                        .chain(r.idle.iter().map(|u| u.container.as_str()))
                })
                .collect();
            let ids: Vec<&str> = hosts
                .values()
                .flat_map(|r| r.found.iter().map(|f| f.run.container.id.as_str()))
                .collect();
            let missing: Vec<&String> = only
                .iter()
                .filter(|o| {
                    !seen.contains(&o.as_str()) && !ids.iter().any(|id| id.starts_with(o.as_str()))
                })
                .collect();
            if !missing.is_empty() && unreachable.is_empty() {
                return Err(FleetError::Other(format!(
                    "no container {} that no environment manages on the hosts ({})",
                    crate::list(missing.iter().map(|m| format!("{m:?}"))),
                    crate::list(hosts.keys())
                )));
            }
        }

        // Two host entries sharing an engine see the same containers: the first takes each.
        let mut claimed = BTreeSet::new();
        let mut untouched: Vec<Untouched> = Vec::new();
        let mut shaped = Vec::new();
        for read in hosts.values() {
            untouched.extend(read.idle.iter().cloned());
            for found in &read.found {
                if !claimed.insert(found.run.container.id.clone()) {
                    continue;
                }
                match shape(found, &read.index) {
                    Ok(shape) => shaped.push((found, shape)),
                    Err(reasons) => untouched.push(Untouched::of(found, reasons)),
                }
            }
        }

        // Jobs, named; a name a file already has is an error naming both.
        let mut groups = group(shaped);
        groups.sort_by(|a, b| {
            (
                a.members.first().map(|m| &m.name),
                &a.shape.image.to_string(),
            )
                .cmp(&(
                    b.members.first().map(|m| &m.name),
                    &b.shape.image.to_string(),
                ))
        });
        let mut taken = BTreeSet::new();
        let mut named = Vec::new();
        let mut clashes = Vec::new();
        for g in groups {
            let names: Vec<&str> = g.members.iter().map(|m| m.name.as_str()).collect();
            let name = unique(&job_name(&names, &g.shape.image), &taken);
            taken.insert(name.clone());
            let file = format!("jobs/{name}.toml");
            if self.env.jobs.contains_key(&name) || self.env.dir.join(&file).exists() {
                clashes.push(format!(
                    "{file} exists: the containers {} would be adopted as job {name}; rename them (docker rename) or the existing job, or adopt other containers by name",
                    describe(&g.members)
                ));
            }
            named.push((name, g));
        }
        if !clashes.is_empty() {
            return Err(FleetError::Other(clashes.join("\n")));
        }

        // A task's name must be free on its host (or be the container's own).
        let mut ready = Vec::new();
        for (name, g) in named {
            let busy: Vec<String> = g
                .members
                .iter()
                .filter_map(|m| {
                    let to = drover_plan::TaskKey::new(&name, &m.host, m.task)
                        .container_name(&self.env.name);
                    let holder = hosts.get(&m.host)?.names.get(&to)?;
                    (holder != &m.id).then(|| {
                        format!(
                            "{to} on {} is another container's name ({})",
                            m.host,
                            short(holder)
                        )
                    })
                })
                .collect();
            if busy.is_empty() {
                ready.push((name, g));
            } else {
                untouched.extend(untouched_members(&g.members, &hosts, &busy.join("; ")));
            }
        }

        // One value per secret name across every job, as the secrets file holds.
        let mut secret_values: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut kept = Vec::new();
        for (name, g) in ready {
            let conflict = g.shape.secrets.iter().find_map(|(k, v)| {
                secret_values
                    .get(k)
                    .filter(|(held, _)| held != v)
                    .map(|(_, job)| format!("secret {k} has another value in job {job}: the secrets file holds one value per name"))
            });
            match conflict {
                Some(why) => untouched.extend(untouched_members(&g.members, &hosts, &why)),
                None => {
                    for (k, v) in &g.shape.secrets {
                        secret_values.insert(k.clone(), (v.clone(), name.clone()));
                    }
                    kept.push((name, g));
                }
            }
        }

        // What a job inherits, from a job that says nothing but its image.
        let first_host = self.hosts().into_iter().next().unwrap_or_default();
        let inherit = self.inherited(&first_host, &taken)?;
        let own: Vec<(String, super::Group, Keys)> = kept
            .into_iter()
            .map(|(name, g)| {
                let keys = subtract(&g.shape.keys, &inherit);
                (name, g, keys)
            })
            .collect();

        let drover_toml_text =
            std::fs::read_to_string(self.env.dir.join("drover.toml")).map_err(|source| {
                SpecError::Io {
                    path: self.env.dir.join("drover.toml"),
                    source,
                }
            })?;
        let mut own = own;
        let (env, lifted, files) = loop {
            let lifted = if self.env.stage.is_some() {
                Keys::new()
            } else {
                self.liftable(&own, &drover_toml_text, &at)?
            };
            let files = files_for(&own, &lifted, &at);
            let overlay = overlay(&files, &drover_toml_text, &lifted)?;
            match drover_spec::load_with(&self.env.dir, self.env.stage.as_deref(), &overlay) {
                Ok(env) => break (env, lifted, files),
                Err(SpecError::Invalid(diagnostics)) => {
                    // A job whose file would not validate is not adopted; the rest are.
                    let bad: BTreeMap<String, String> = diagnostics
                        .iter()
                        .filter(|d| files.iter().any(|(_, f, _)| f == &d.file))
                        .map(|d| (d.file.clone(), d.message.clone()))
                        .collect();
                    if bad.is_empty() {
                        return Err(SpecError::Invalid(diagnostics).into());
                    }
                    let before = own.len();
                    own.retain(|(name, g, _)| match bad.get(&format!("jobs/{name}.toml")) {
                        Some(message) => {
                            untouched.extend(untouched_members(
                                &g.members,
                                &hosts,
                                &format!("its job file would not validate: {message}"),
                            ));
                            false
                        }
                        None => true,
                    });
                    if own.len() == before {
                        return Err(SpecError::Invalid(diagnostics).into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };

        let mut secrets = Secrets::new();
        let mut new_secrets = BTreeMap::new();
        for (_, g, _) in &own {
            for (k, v) in &g.shape.secrets {
                secrets.insert(k.clone(), Secret::new(v.clone()));
                new_secrets.insert(k.clone(), v.clone());
            }
        }
        let secrets_edit = self.secrets_edit(&new_secrets)?;

        let jobs: Vec<AdoptedJob> = own
            .iter()
            .zip(&files)
            .map(|((name, g, _), (_, file, text))| AdoptedJob {
                job: name.clone(),
                file: file.clone(),
                text: text.clone(),
                tasks: g
                    .members
                    .iter()
                    .map(|m| AdoptedTask {
                        host: m.host.clone(),
                        task: m.task,
                        id: m.id.clone(),
                        from: m.name.clone(),
                        to: drover_plan::TaskKey::new(name, &m.host, m.task)
                            .container_name(&self.env.name),
                    })
                    .collect(),
                secrets: g.shape.secrets.keys().cloned().collect(),
            })
            .collect();

        let next_up = self.after_adoption(&env, &jobs, &hosts, &secrets)?;
        untouched.sort_by(|a, b| (&a.host, &a.container).cmp(&(&b.host, &b.container)));
        unreachable.sort();
        Ok(AdoptionPlan {
            drover_toml: (!lifted.is_empty())
                .then(|| with_defaults(&drover_toml_text, &lifted))
                .transpose()
                .map_err(FleetError::Other)?,
            jobs,
            lifted,
            secrets: secrets_edit,
            untouched,
            next_up,
            unreachable,
            at,
        })
    }

    /// What a job saying only its image and one host inherits, in keys.
    fn inherited(&self, host: &str, taken: &BTreeSet<String>) -> Result<Keys, FleetError> {
        let probe = unique("drover-adopt-probe", taken);
        let probe = unique(
            &probe,
            &self.env.jobs.keys().cloned().collect::<BTreeSet<_>>(),
        );
        let files = BTreeMap::from([(
            format!("jobs/{probe}.toml"),
            format!(
                "image = \"drover-internal/probe:1\"\nhosts = [{}]\n",
                super::inline(&toml::Value::String(host.to_string()))
            ),
        )]);
        let env = drover_spec::load_with(&self.env.dir, self.env.stage.as_deref(), &files)?;
        let job = env
            .jobs
            .get(&probe)
            .ok_or_else(|| FleetError::Other("the defaults could not be read".to_string()))?;
        Ok(inherited(job))
    }

    /// The keys `[defaults]` can say for every adopted job, that change no
    /// job the environment has (nor any adopted one): each is tried alone,
    /// then all that passed together.
    fn liftable(
        &self,
        own: &[(String, super::Group, Keys)],
        drover_toml: &str,
        at: &str,
    ) -> Result<Keys, FleetError> {
        let keys: Vec<&Keys> = own.iter().map(|(_, _, k)| k).collect();
        let candidates = common(&keys);
        if candidates.is_empty() {
            return Ok(Keys::new());
        }
        let baseline = {
            let files = files_for(own, &Keys::new(), at);
            drover_spec::load_with(
                &self.env.dir,
                self.env.stage.as_deref(),
                &overlay(&files, drover_toml, &Keys::new())?,
            )
        };
        let Ok(baseline) = baseline else {
            // Not valid without lifting either: the caller's loop sorts that out.
            return Ok(Keys::new());
        };
        let unchanged = |lifted: &Keys| -> bool {
            let files = files_for(own, lifted, at);
            let Ok(overlay) = overlay(&files, drover_toml, lifted) else {
                return false;
            };
            match drover_spec::load_with(&self.env.dir, self.env.stage.as_deref(), &overlay) {
                Ok(env) => same_jobs(&baseline, &env),
                Err(_) => false,
            }
        };
        let mut passed = Keys::new();
        for (key, value) in &candidates {
            let one = Keys::from([(key.clone(), value.clone())]);
            if unchanged(&one) {
                passed.insert(key.clone(), value.clone());
            }
        }
        if passed.is_empty() || unchanged(&passed) {
            Ok(passed)
        } else {
            Ok(Keys::new())
        }
    }

    /// The secrets file's edit: new values appended, a value it holds
    /// already under another value an error.
    fn secrets_edit(
        &self,
        new: &BTreeMap<String, String>,
    ) -> Result<Option<SecretsEdit>, FleetError> {
        if new.is_empty() {
            return Ok(None);
        }
        let file = secrets_file(&self.env.dir);
        let create = !file.exists();
        let existing = if create {
            BTreeMap::new()
        } else {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                FleetError::Secrets(format!("cannot read secrets file {}: {e}", file.display()))
            })?;
            parse_secrets(&text).map_err(|(line, e)| {
                FleetError::Secrets(format!("{}:{line}: {e}", file.display()))
            })?
        };
        let shown = file.display().to_string();
        let appended = merge_secrets(&existing, new, &shown).map_err(FleetError::Secrets)?;
        if appended.is_empty() {
            return Ok(None);
        }
        Ok(Some(SecretsEdit {
            names: new
                .keys()
                .filter(|k| !existing.contains_key(*k))
                .cloned()
                .collect(),
            file,
            create,
            appended: Secret::new(appended),
        }))
    }

    /// The plan of the adopted jobs' files against their containers as
    /// adopted: renamed to their tasks' names, recorded.
    fn after_adoption(
        &self,
        env: &Environment,
        jobs: &[AdoptedJob],
        hosts: &BTreeMap<String, HostRead>,
        secrets: &Secrets,
    ) -> Result<Plan, FleetError> {
        let mut desired = Vec::new();
        for job in jobs {
            if let Some(spec) = env.jobs.get(&job.job) {
                desired.extend(render_job(env, spec, secrets)?);
            }
        }
        let mut observed = Observed {
            hosts: BTreeMap::new(),
            at: drover_plan::time::now(),
        };
        for (host, read) in hosts {
            let mut state = HostState {
                containers: Vec::new(),
                images: read.index.clone(),
            };
            for job in jobs {
                for task in job.tasks.iter().filter(|t| &t.host == host) {
                    let Some(found) = read.found.iter().find(|f| f.run.container.id == task.id)
                    else {
                        continue;
                    };
                    let mut container = found.run.container.clone();
                    container.name.clone_from(&task.to);
                    container.adopt(Adoption {
                        env: self.env.name.clone(),
                        key: drover_plan::TaskKey::new(&job.job, host, task.task),
                        by: None,
                        at: None,
                        secrets: job.secrets.clone(),
                    });
                    state.containers.push(container);
                }
            }
            observed
                .hosts
                .insert(host.clone(), HostObservation::Reachable(state));
        }
        let names: BTreeSet<String> = jobs.iter().map(|j| j.job.clone()).collect();
        Ok(plan(
            &self.env.name,
            &desired,
            &observed,
            &Scope::Jobs(names),
            &self.known_hosts(),
        ))
    }

    /// Takes the containers over as `plan` says: the secrets file, then
    /// drover.toml, then each job's file, its records and its renames.
    /// `cancel` (Ctrl-C) lets the job under way finish and starts no other.
    pub async fn adopt(
        &self,
        connections: &Connections,
        plan: &AdoptionPlan,
        by: &str,
        cancel: &CancellationToken,
    ) -> Result<Adopted, FleetError> {
        let mut done = Adopted::default();
        if let Some(edit) = &plan.secrets {
            append_secrets(edit)?;
            done.wrote.push(edit.file.display().to_string());
            match crate::commit::keep_out_of_git(&edit.file) {
                Some(Ok(ignore)) => done.wrote.push(ignore),
                Some(Err(warning)) => done.warnings.push(warning),
                None => {}
            }
        }
        if let Some(text) = &plan.drover_toml {
            let path = self.env.dir.join("drover.toml");
            std::fs::write(&path, text).map_err(|e| {
                FleetError::Other(format!("cannot write {}: {}", path.display(), e))
            })?;
            done.wrote.push("drover.toml".to_string());
        }
        // Jobs are independent: several at once, each whole or not at all.
        let outcomes: Vec<(&AdoptedJob, Result<(), String>)> = stream::iter(&plan.jobs)
            .map(|job| async move {
                if cancel.is_cancelled() {
                    let why = "interrupted before it began: nothing was done for it";
                    return (job, Err(why.to_string()));
                }
                (job, self.adopt_job(connections, job, by, &plan.at).await)
            })
            .buffer_unordered(JOB_CONCURRENCY)
            .collect()
            .await;
        for (job, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    done.jobs.push(job.job.clone());
                    done.wrote.push(job.file.clone());
                }
                Err(why) => done.failed.push((job.job.clone(), why)),
            }
        }
        done.jobs.sort();
        done.wrote.sort();
        done.failed.sort();
        Ok(done)
    }

    /// One job: its file, its record on each host, its renames; undone on failure.
    async fn adopt_job(
        &self,
        connections: &Connections,
        job: &AdoptedJob,
        by: &str,
        at: &str,
    ) -> Result<(), String> {
        let path = self.env.dir.join(&job.file);
        write_new(&path, &job.text)?;
        let mut records: Vec<(Arc<dyn Engine>, String)> = Vec::new();
        let mut renamed: Vec<(Arc<dyn Engine>, &AdoptedTask)> = Vec::new();
        let result = async {
            let mut by_host: BTreeMap<&str, Vec<&AdoptedTask>> = BTreeMap::new();
            for task in &job.tasks {
                by_host.entry(task.host.as_str()).or_default().push(task);
            }
            for (host, tasks) in &by_host {
                let engine = connections
                    .engines
                    .get(*host)
                    .ok_or_else(|| format!("host {host} is not connected"))?;
                let ids: BTreeMap<String, u32> =
                    tasks.iter().map(|t| (t.id.clone(), t.task)).collect();
                let mut record =
                    Adoption::record(&self.env.name, &job.job, host, &ids, &job.secrets);
                record.insert(labels::DEPLOYED_BY.to_string(), by.to_string());
                record.insert(labels::DEPLOYED_AT.to_string(), at.to_string());
                let name = adoption_name(&self.env.name, &job.job, host);
                let id = create_marker(engine.as_ref(), &name, record)
                    .await
                    .map_err(|e| format!("cannot record the adoption on host {host}: {e}"))?;
                records.push((Arc::clone(engine), id));
                let results: Vec<(&AdoptedTask, Result<(), EngineError>)> =
                    stream::iter(tasks.iter().copied())
                        .map(|task| {
                            let engine = Arc::clone(engine);
                            async move {
                                let result = if task.from == task.to {
                                    Ok(())
                                } else {
                                    engine.rename_container(&task.id, &task.to).await
                                };
                                (task, result)
                            }
                        })
                        .buffer_unordered(RENAME_CONCURRENCY)
                        .collect()
                        .await;
                let mut failure = None;
                for (task, result) in results {
                    match result {
                        Ok(()) => renamed.push((Arc::clone(engine), task)),
                        Err(e) => {
                            failure.get_or_insert(format!(
                                "cannot rename {} on host {host} to {}: {e}",
                                task.from, task.to
                            ));
                        }
                    }
                }
                if let Some(failure) = failure {
                    return Err(failure);
                }
            }
            Ok(())
        }
        .await;
        if let Err(why) = result {
            // Undo: names back, records gone, the file gone.
            for (engine, task) in renamed {
                if task.from != task.to {
                    let _ = engine.rename_container(&task.id, &task.from).await;
                }
            }
            for (engine, id) in records {
                let _ = engine.remove_container(&id).await;
            }
            let _ = std::fs::remove_file(&path);
            return Err(why);
        }
        Ok(())
    }
}

/// `file`, `text`… of each job: the keys it says itself, its image,
/// hosts and instances first.
fn files_for(
    own: &[(String, super::Group, Keys)],
    lifted: &Keys,
    at: &str,
) -> Vec<(String, String, String)> {
    own.iter()
        .map(|(name, g, keys)| {
            let mut keys = without(keys, lifted);
            keys.insert(
                "image".to_string(),
                toml::Value::String(g.shape.image.to_string()),
            );
            keys.insert(
                "hosts".to_string(),
                toml::Value::Array(g.hosts().into_iter().map(toml::Value::String).collect()),
            );
            if g.instances != 1 {
                keys.insert(
                    "instances".to_string(),
                    toml::Value::Integer(i64::from(g.instances)),
                );
            }
            let file = format!("jobs/{name}.toml");
            (
                name.clone(),
                file,
                render_job_file(name, &g.members, &keys, at),
            )
        })
        .collect()
}

/// The files as the loader is to see them.
fn overlay(
    files: &[(String, String, String)],
    drover_toml: &str,
    lifted: &Keys,
) -> Result<BTreeMap<String, String>, FleetError> {
    let mut overlay: BTreeMap<String, String> = files
        .iter()
        .map(|(_, file, text)| (file.clone(), text.clone()))
        .collect();
    if !lifted.is_empty() {
        overlay.insert(
            "drover.toml".to_string(),
            with_defaults(drover_toml, lifted).map_err(FleetError::Other)?,
        );
    }
    Ok(overlay)
}

/// Every job of `before` is the same in `after` (which may have more).
fn same_jobs(before: &Environment, after: &Environment) -> bool {
    before
        .jobs
        .iter()
        .all(|(name, job)| after.jobs.get(name) == Some(job))
}

/// `web (h1), web (h2)`.
fn describe(members: &[Member]) -> String {
    crate::list(members.iter().map(|m| format!("{} ({})", m.name, m.host)))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The members of a group left alone, each with `why`.
fn untouched_members(
    members: &[Member],
    hosts: &BTreeMap<String, HostRead>,
    why: &str,
) -> Vec<Untouched> {
    members
        .iter()
        .filter_map(|m| {
            let found = hosts
                .get(&m.host)?
                .found
                .iter()
                .find(|f| f.run.container.id == m.id)?;
            Some(Untouched::of(found, vec![why.to_string()]))
        })
        .collect()
}

/// Whether `c` is asked for by `only` (a name, or an ID prefix).
fn wanted(c: &HostContainer, only: &[String]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| &c.name == o || (!o.is_empty() && c.id.starts_with(o.as_str())))
}

/// Every container on a host that no environment manages and no
/// environment adopted, inspected with its image.
async fn read_host(
    host: &str,
    engine: &dyn Engine,
    only: &[String],
) -> Result<HostRead, EngineError> {
    let (all, images) = tokio::try_join!(engine.list_all_containers(), engine.list_images())?;
    let adopted: BTreeSet<&str> = all
        .iter()
        .filter(|c| c.labels.get(labels::ROLE).map(String::as_str) == Some(ROLE_ADOPTED))
        .flat_map(|c| {
            c.labels
                .keys()
                .filter_map(|k| k.strip_prefix(labels::ADOPTED_PREFIX))
        })
        .collect();
    let mut read = HostRead {
        names: all.iter().map(|c| (c.name.clone(), c.id.clone())).collect(),
        ..HostRead::default()
    };
    for image in &images {
        read.index
            .add(&image.id, &image.repo_tags, &image.repo_digests);
    }
    let mut candidates = Vec::new();
    for c in all.iter().filter(|c| {
        !c.labels.contains_key(labels::ENV) && !adopted.contains(c.id.as_str()) && wanted(c, only)
    }) {
        if matches!(c.state.as_str(), "running" | "restarting" | "paused") {
            candidates.push(c.id.clone());
        } else {
            read.idle.push(Untouched {
                host: host.to_string(),
                container: c.name.clone(),
                id: short(&c.id).to_string(),
                reasons: vec![format!(
                    "it does not run ({}): adopting it would start it at the next `up`; start it by hand first to adopt it",
                    if c.state.is_empty() { "unknown state" } else { c.state.as_str() }
                )],
                idle: true,
            });
        }
    }
    let runs: Vec<_> = stream::iter(candidates)
        .map(|id| async move { engine.inspect_hand_run(&id).await })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let runs: Vec<_> = runs.into_iter().flatten().collect();
    let image_ids: BTreeSet<String> = runs.iter().map(|r| r.container.image_id.clone()).collect();
    let details: BTreeMap<String, drover_engine::ImageDetails> = stream::iter(image_ids)
        .map(|id| async move { engine.inspect_image(&id).await.map(|d| (id, d)) })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(id, d)| d.map(|d| (id, d)))
        .collect();
    for mut run in runs {
        let image = details
            .get(&run.container.image_id)
            .cloned()
            .unwrap_or_default();
        with_image(&mut run.container, &image);
        read.found.push(Found {
            host: host.to_string(),
            run,
            image,
        });
    }
    read.found.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(read)
}

/// Writes `text` to a file that must not exist yet.
fn write_new(path: &Path, text: &str) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} exists now: it is left as it is", path.display())
            }
            _ => format!("cannot write {}: {e}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Appends the new values to the secrets file, creating it readable and
/// writable by its owner only.
fn append_secrets(edit: &SecretsEdit) -> Result<(), FleetError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        FleetError::Secrets(format!(
            "cannot write secrets file {}: {e}",
            edit.file.display()
        ))
    };
    let mut options = std::fs::OpenOptions::new();
    options.append(true).mode(0o600);
    if edit.create {
        options.create_new(true);
    }
    let mut file = options.open(&edit.file).map_err(fail)?;
    // A file that does not end its last line would join ours to it.
    let needs_newline = !edit.create
        && std::fs::read(&edit.file)
            .map(|bytes| bytes.last().is_some_and(|b| *b != b'\n'))
            .unwrap_or(false);
    if needs_newline {
        file.write_all(b"\n").map_err(fail)?;
    }
    file.write_all(edit.appended.expose().as_bytes())
        .map_err(fail)
}
