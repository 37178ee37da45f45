//! The `[release]` command: run once, with the new configuration, before a
//! rollout that changes a job's image — a database migration, Heroku's
//! release phase.
//!
//! It runs as `drover run` would ([`crate::run`]), on the job's first host,
//! while the rollout holds the job's lock, and only when the rollout brings
//! an image that no task of the job runs now ([`needs_release`]): a replica
//! added, a setting changed or a task restarted runs no migration, and
//! `rollback` never runs one (a migration is not undone by running it
//! again; migrations must stay backward compatible, or be rolled back by
//! hand). Exit 0 lets the rollout go on; any other exit, its timeout (it
//! is stopped) or an interruption stops it before any task is touched.
//!
//! Each run's container is kept, stopped, as its record
//! (`ENV.JOB.HOST.release-ID`, `drover.role=release`): `history` lists it
//! with its image and how it ended, its output stays readable with `docker
//! logs`, and the newest `[update] keep` of them stay per job and host —
//! the release prunes the older ones itself, and `gc` by the same rule
//! ([`drover_plan::retention::one_offs`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use drover_engine::{Attachment, LogChunk};
use drover_plan::retention::{self, OneOff as OneOffRecord};
use drover_plan::{DesiredTask, Observed, OneOffKind, Plan, Role};
use drover_spec::{ImageRef, Release};
use tokio_util::sync::CancellationToken;

use crate::run::OneOffSpec;
use crate::{Connections, Fleet, FleetError};

/// How a release run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOutcome {
    pub job: String,
    pub host: String,
    /// The container kept as its record.
    pub container: String,
    pub image: String,
    pub command: Vec<String>,
    /// `None` when it could not be read.
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// It ran into its `[release] timeout` and was stopped.
    pub timed_out: Option<Duration>,
    pub interrupted: bool,
    pub took: Duration,
    /// The last lines of its output.
    pub last_lines: Vec<String>,
}

impl ReleaseOutcome {
    /// Exit 0 in time: the rollout may go on.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
            && self.timed_out.is_none()
            && !self.interrupted
            && !self.oom_killed
    }
}

impl fmt::Display for ReleaseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the release command of job {} ({}) on host {}",
            self.job,
            self.command.join(" "),
            self.host
        )?;
        let took = format_took(self.took);
        match (
            self.timed_out,
            self.interrupted,
            self.oom_killed,
            self.exit_code,
        ) {
            (Some(limit), _, _, _) => write!(
                f,
                " ran into its timeout ({}) and was stopped",
                drover_spec::units::format_duration(limit)
            ),
            (None, true, _, _) => write!(f, " was interrupted after {took} and stopped"),
            (None, false, true, code) => write!(
                f,
                " was killed for exceeding its memory limit after {took}{}",
                code.map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default()
            ),
            (None, false, false, Some(0)) => write!(f, " succeeded in {took}"),
            (None, false, false, Some(code)) => {
                write!(f, " failed with exit code {code} after {took}")
            }
            (None, false, false, None) => {
                write!(f, " ended after {took} with no exit code to read")
            }
        }
    }
}

fn format_took(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        drover_spec::units::format_duration(Duration::from_secs(d.as_secs()))
    }
}

/// The rollout's first task that brings `job` an image no task of the job
/// runs now — a changed tag, or the same tag naming another image on its
/// host — if any. `plan` is the rollout, `observed` what runs before it.
pub fn needs_release<'a>(
    env: &str,
    job: &str,
    plan: &'a Plan,
    observed: &Observed,
) -> Option<&'a DesiredTask> {
    // What runs now: each current container's image, by reference and ID.
    let mut running: Vec<(&str, &str)> = Vec::new();
    for (_, state) in observed.reachable() {
        for c in &state.containers {
            if matches!(c.role(env), Role::Current(ref key) | Role::Stray(ref key) if key.job == job)
            {
                running.push((c.config.image.as_str(), c.image_id.as_str()));
            }
        }
    }
    plan.changes
        .iter()
        .filter(|c| c.job == job)
        .filter_map(|c| c.step.desired())
        .find(|desired| {
            let id = observed
                .reachable()
                .find(|(host, _)| **host == desired.key.host)
                .and_then(|(_, state)| state.images.find(&desired.image.key()));
            !running.iter().any(|(image, image_id)| match id {
                Some(id) => *image_id == id,
                None => *image == desired.config.image,
            })
        })
}

/// What a rollout tells about its release, as it goes.
#[derive(Debug, Clone)]
pub enum ReleaseNotice {
    /// The release command starts on `host`.
    Starting {
        job: String,
        host: String,
        command: Vec<String>,
        image: String,
    },
    /// It succeeded; the rollout goes on.
    Succeeded(ReleaseOutcome),
}

/// As the CLI and the dashboard say it, after `release: `.
impl fmt::Display for ReleaseNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseNotice::Starting {
                job,
                host,
                command,
                image,
            } => write!(
                f,
                "running `{}` of job {job} on host {host} with {image} before the rollout",
                command.join(" ")
            ),
            ReleaseNotice::Succeeded(outcome) => write!(f, "{outcome}; rolling out"),
        }
    }
}

impl Fleet {
    /// Runs `job`'s release command once, as `drover run` would, with
    /// `task`'s configuration (the new one) on `task`'s host, within the
    /// release's timeout; keeps its container as the record and prunes
    /// older records beyond `[update] keep`. `output` gets its output as
    /// it comes. An engine failure (the host unreachable, the image not
    /// pullable) is an error; a failed run is an outcome.
    pub async fn release(
        &self,
        connections: &Connections,
        task: &DesiredTask,
        release: &Release,
        recorded: &str,
        cancel: &CancellationToken,
        output: &mut (dyn FnMut(&LogChunk) + Send),
    ) -> Result<ReleaseOutcome, FleetError> {
        let spec = OneOffSpec {
            kind: OneOffKind::Release,
            command: release.command.clone(),
            attachment: Attachment::default(),
            recorded: recorded.to_string(),
            timeout: Some(release.timeout),
        };
        let one_off = self
            .start_one_off(connections, task, &spec, &|_| {})
            .await?;
        let (host, container, image) = (
            one_off.host.clone(),
            one_off.name.clone(),
            one_off.image.clone(),
        );
        let ended = one_off
            .finish(output, Some(release.timeout), cancel, true)
            .await;
        self.prune_releases(connections, &task.key.job, &host).await;
        Ok(ReleaseOutcome {
            job: task.key.job.clone(),
            host,
            container,
            image,
            command: release.command.clone(),
            exit_code: ended.exit_code,
            oom_killed: ended.oom_killed,
            timed_out: ended.timed_out.then_some(release.timeout),
            interrupted: ended.interrupted,
            took: ended.took,
            // Quoted when it fails: never with a secret it printed.
            last_lines: ended
                .last_lines
                .iter()
                .map(|l| task.config.mask_secrets(l))
                .collect(),
        })
    }

    /// Removes `job`'s release records on `host` beyond `[update] keep`.
    async fn prune_releases(&self, connections: &Connections, job: &str, host: &str) {
        let (Some(engine), Some(spec)) = (connections.engines.get(host), self.env.jobs.get(job))
        else {
            return;
        };
        let Ok(list) = engine.list_containers(&self.env.name).await else {
            return;
        };
        let records: Vec<OneOffRecord> = list
            .iter()
            .filter(|c| {
                matches!(
                    drover_plan::role_of(&self.env.name, &c.name, &c.labels, None),
                    Role::OneOff { kind: OneOffKind::Release, job: ref j, host: ref h } if j == job && h == host
                )
            })
            .map(|c| OneOffRecord {
                id: &c.id,
                kind: OneOffKind::Release,
                created: c
                    .labels
                    .get(drover_plan::labels::DEPLOYED_AT)
                    .and_then(|at| drover_plan::time::parse(at)),
                state: c.state,
                holder_gone: false,
            })
            .collect();
        for removal in retention::one_offs(&records, spec.update.keep) {
            let _ = engine.remove_container(removal.id).await;
        }
    }

    /// Before a rollout of `plan` (the locks held): runs the release
    /// command of each job that has one and to which `plan` brings a new
    /// image. Stops at the first that does not succeed, as an error: no
    /// task has been touched.
    pub(crate) async fn release_before(
        &self,
        connections: &Connections,
        plan: &Plan,
        images: &BTreeMap<String, ImageRef>,
        recorded: &str,
        cancel: &CancellationToken,
        notices: &(dyn Fn(ReleaseNotice) + Sync),
    ) -> Result<(), FleetError> {
        for job in plan.jobs() {
            let Some(release) = self.env.jobs.get(job).and_then(|j| j.release.clone()) else {
                continue;
            };
            let names = [job.to_string()];
            let observed = self.observe(connections, &Fleet::scope(&names)).await;
            if needs_release(&self.env.name, job, plan, &observed).is_none() {
                continue;
            }
            // The new configuration, on the job's first host.
            let task = self.one_off_task(job, None, images.get(job))?;
            notices(ReleaseNotice::Starting {
                job: job.to_string(),
                host: task.key.host.clone(),
                command: release.command.clone(),
                image: task.config.image.clone(),
            });
            let outcome = self
                .release(connections, &task, &release, recorded, cancel, &mut |_| {})
                .await
                .map_err(|e| {
                    FleetError::Other(format!(
                        "cannot run the release command of job {job}: {e}; no task was touched"
                    ))
                })?;
            if !outcome.succeeded() {
                return Err(FleetError::Release(Box::new(outcome)));
            }
            notices(ReleaseNotice::Succeeded(outcome));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_engine::fake::FakeEngine;
    use drover_engine::observe;
    use drover_plan::{HostObservation, Scope};

    /// `web` as its file says with `image` and `instances`, the tasks `up`
    /// made of it with `running` on a fake h1, and the plan between them.
    async fn rollout(image: &str, instances: u32, running: &str, ids: &[(&str, &str)]) -> bool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        std::fs::write(
            dir.path().join("drover.toml"),
            "name = \"prod\"\n[hosts.h1]\ndocker = \"unix:///nonexistent.sock\"\n",
        )
        .unwrap();
        let write = |image: &str, instances: u32| {
            std::fs::write(
                dir.path().join("jobs/web.toml"),
                format!("image = \"{image}\"\nhosts = [\"h1\"]\ninstances = {instances}\n[release]\ncommand = [\"migrate\"]\n"),
            )
            .unwrap();
            Fleet::load(Some(dir.path()), None, &[]).unwrap()
        };
        let mut engine = FakeEngine::new("h1");
        for (reference, id) in ids {
            engine = engine.with_image(reference, id);
        }
        let before = write(running, 1);
        for task in
            drover_plan::render_job(&before.env, before.job("web").unwrap(), &BTreeMap::new())
                .unwrap()
        {
            engine.insert(
                &task.container_name("prod"),
                task.config.clone(),
                task.labels("prod"),
                "running",
            );
        }
        let after = write(image, instances);
        let desired =
            drover_plan::render_job(&after.env, after.job("web").unwrap(), &BTreeMap::new())
                .unwrap();
        let state = observe(&engine, "prod", &Scope::All).await.unwrap();
        let observed = Observed {
            hosts: BTreeMap::from([("h1".to_string(), HostObservation::Reachable(state))]),
            at: drover_plan::time::now(),
        };
        let plan = drover_plan::plan(
            "prod",
            &desired,
            &observed,
            &Scope::All,
            &after.known_hosts(),
        );
        assert!(!plan.changes.is_empty(), "a rollout to look at");
        needs_release("prod", "web", &plan, &observed).is_some()
    }

    #[tokio::test]
    async fn a_release_runs_only_for_an_image_no_task_runs_now() {
        let ids = [("app:1", "sha256:aaaa"), ("app:2", "sha256:bbbb")];
        assert!(rollout("app:2", 1, "app:1", &ids).await, "a new tag");
        assert!(
            !rollout("app:1", 2, "app:1", &ids).await,
            "one more task of the image that runs"
        );
        // The tag names another image on the host now (pushed again, pulled).
        assert!(rollout_repushed().await, "the same tag, another image");
    }

    /// The task runs `app:1` as image `sha256:aaaa`; the host's `app:1` is now `sha256:cccc`.
    async fn rollout_repushed() -> bool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        std::fs::write(
            dir.path().join("drover.toml"),
            "name = \"prod\"\n[hosts.h1]\ndocker = \"unix:///nonexistent.sock\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("jobs/web.toml"),
            "image = \"app:1\"\nhosts = [\"h1\"]\n[release]\ncommand = [\"migrate\"]\n",
        )
        .unwrap();
        let fleet = Fleet::load(Some(dir.path()), None, &[]).unwrap();
        let engine = FakeEngine::new("h1").with_image("app:1", "sha256:aaaa");
        let desired =
            drover_plan::render_job(&fleet.env, fleet.job("web").unwrap(), &BTreeMap::new())
                .unwrap();
        engine.insert(
            &desired[0].container_name("prod"),
            desired[0].config.clone(),
            desired[0].labels("prod"),
            "running",
        );
        let engine = engine.with_image("app:1", "sha256:cccc");
        let state = observe(&engine, "prod", &Scope::All).await.unwrap();
        let observed = Observed {
            hosts: BTreeMap::from([("h1".to_string(), HostObservation::Reachable(state))]),
            at: drover_plan::time::now(),
        };
        let plan = drover_plan::plan(
            "prod",
            &desired,
            &observed,
            &Scope::All,
            &fleet.known_hosts(),
        );
        assert!(!plan.changes.is_empty(), "{plan}");
        needs_release("prod", "web", &plan, &observed).is_some()
    }
}
