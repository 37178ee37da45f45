//! Changing what runs, the same way from every front end. The CLI and the
//! dashboard [`Fleet::prepare`] an [`Operation`] (observe and plan: what
//! `diff` shows, plus the refusals that leave everything as it was), show
//! and confirm it their own way, then [`Fleet::execute`] carries it out:
//!
//! 1. take the jobs' locks (a job someone else holds is left alone, and
//!    named; the others go on);
//! 2. set or clear stop marks (`stop`, `start`);
//! 3. write the file (`update`), atomically, through symbolic links;
//! 4. look again, now that nobody else can change the jobs; run the
//!    `[release]` command of a job the rollout brings a new image
//!    ([`crate::release`]; not for `rollback`), and stop there if it fails;
//!    apply what is needed now;
//! 5. give the locks back;
//! 6. put the file back if nothing rolled out (the pull failed, the first
//!    task failed and was put back, or the run was interrupted first).
//!
//! So a command refused, declined or interrupted before it starts leaves
//! every file and every host as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use drover_apply::lock::{self, LockError, LockGuard};
use drover_apply::Report;
use drover_plan::ops::{plan_down, plan_restart, plan_rollback, plan_stop};
use drover_plan::{labels, Observed, Plan, Role, Scope, StopMark, ROLE_STOPPED};
use drover_registry::{RegistryClient, RegistryError};
use drover_spec::ImageRef;
use futures::future::join_all;

use crate::{list, Connections, Fleet, FleetError, ImageEdit, Run};

/// A change to what runs, as an operator asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Converge the jobs (all of them when empty) to the files.
    Up {
        jobs: Vec<String>,
    },
    /// Remove every container of the jobs.
    Down {
        jobs: Vec<String>,
    },
    /// Stop the jobs' tasks and mark them stopped.
    Stop {
        jobs: Vec<String>,
    },
    /// Clear the stop marks and converge the jobs to the files.
    Start {
        jobs: Vec<String>,
    },
    Restart {
        job: String,
        parallel: Option<u32>,
    },
    Rollback {
        job: String,
    },
    /// Roll the job out, optionally to another image, without touching the file.
    RollingUpdate {
        job: String,
        image: Option<ImageRef>,
        parallel: Option<u32>,
    },
    /// Write another image into the job's file and roll it out.
    Update {
        job: String,
        image: ImageRef,
    },
}

impl Operation {
    /// The command as recorded on new containers and locks.
    pub fn command(&self) -> String {
        let with = |verb: &str, jobs: &[String]| {
            std::iter::once(verb)
                .chain(jobs.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let parallel = |p: &Option<u32>| p.map(|p| format!(" --parallel {p}")).unwrap_or_default();
        match self {
            Operation::Up { jobs } => with("up", jobs),
            Operation::Down { jobs } => with("down", jobs),
            Operation::Stop { jobs } => with("stop", jobs),
            Operation::Start { jobs } => with("start", jobs),
            Operation::Restart { job, parallel: p } => format!("restart {job}{}", parallel(p)),
            Operation::Rollback { job } => format!("rollback {job}"),
            Operation::RollingUpdate {
                job,
                image,
                parallel: p,
            } => format!(
                "rolling-update {job}{}{}",
                image
                    .as_ref()
                    .map(|i| format!(" --image {i}"))
                    .unwrap_or_default(),
                parallel(p)
            ),
            Operation::Update { job, image } => format!("update {job} --image {image}"),
        }
    }

    /// What the operator is asked before it runs.
    pub fn question(&self) -> &'static str {
        match self {
            Operation::Up { .. } => "Apply these changes?",
            Operation::Down { .. } => "Remove these containers?",
            Operation::Stop { .. } => "Stop these tasks?",
            Operation::Start { .. } => "Start these tasks?",
            Operation::Restart { .. } => "Restart these tasks?",
            Operation::Rollback { .. } => "Roll back these tasks?",
            Operation::RollingUpdate { .. } => "Roll out these changes?",
            Operation::Update { .. } => "Roll out this update?",
        }
    }

    /// The jobs it names (none: `up` of everything).
    pub fn jobs(&self) -> Vec<String> {
        match self {
            Operation::Up { jobs }
            | Operation::Down { jobs }
            | Operation::Stop { jobs }
            | Operation::Start { jobs } => jobs.clone(),
            Operation::Restart { job, .. }
            | Operation::Rollback { job }
            | Operation::RollingUpdate { job, .. }
            | Operation::Update { job, .. } => vec![job.clone()],
        }
    }

    /// The images it rolls out instead of the files', by job.
    fn images(&self) -> BTreeMap<String, ImageRef> {
        match self {
            Operation::Update { job, image }
            | Operation::RollingUpdate {
                job,
                image: Some(image),
                ..
            } => BTreeMap::from([(job.clone(), image.clone())]),
            _ => BTreeMap::new(),
        }
    }

    /// `--parallel`, where given.
    fn parallel(&self) -> Option<u32> {
        match self {
            Operation::Restart { parallel, .. } | Operation::RollingUpdate { parallel, .. } => {
                *parallel
            }
            _ => None,
        }
    }

    /// Whether a job whose lock someone else holds is skipped (the others
    /// go on) rather than the whole command refused.
    fn skips_locked_jobs(&self) -> bool {
        matches!(
            self,
            Operation::Up { .. }
                | Operation::Down { .. }
                | Operation::Stop { .. }
                | Operation::Start { .. }
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command())
    }
}

/// An operation planned and checked, ready to be shown and confirmed.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub operation: Operation,
    pub plan: Plan,
    /// What does not stop it but the operator should know (a task with
    /// nothing to roll back to); each also fails the command.
    pub problems: Vec<String>,
    /// `update`: the file edit it makes once confirmed and locked.
    pub image_edit: Option<ImageEdit>,
    /// Worth saying, and no failure (a host rolls out the image it has).
    pub warnings: Vec<String>,
}

impl Prepared {
    /// Nothing to do at all: no change, no mark, no file to write.
    pub fn is_noop(&self) -> bool {
        self.plan.is_empty()
            && !matches!(
                self.operation,
                Operation::Stop { .. } | Operation::Start { .. }
            )
            && !self.image_edit.as_ref().is_some_and(|e| e.edit.changes())
    }
}

/// What happened beside each task's progress, as it happens.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The hosts changed between the plan shown and the lock: this one is
    /// applied instead.
    Replanned(Plan),
    /// Someone else holds this job's lock: it is left alone.
    LockedOut(Box<LockError>),
    /// `update` wrote the image into the file.
    Wrote(ImageEdit),
    /// Nothing rolled out, so the file is back as it was.
    PutBack(ImageEdit),
    /// Something went wrong on the way out (a lock not given back…).
    Warning(String),
    /// A release command before the rollout starts, or succeeded.
    Release(crate::ReleaseNotice),
}

/// What an executed operation did.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    /// The plan applied (looked at again once the locks were held).
    pub plan: Plan,
    pub report: Report,
    /// Jobs left alone because someone else holds their lock.
    pub locked_out: Vec<String>,
    /// `update`: the file still holds the new image although the rollout
    /// did not finish (part of it ran).
    pub file_kept_after_failure: Option<ImageEdit>,
}

impl Executed {
    /// Everything asked for was done.
    pub fn succeeded(&self) -> bool {
        self.report.succeeded()
            && self.plan.unreachable.is_empty()
            && self.locked_out.is_empty()
            && self.plan.held.is_empty()
    }
}

impl Fleet {
    /// Observes and plans `operation`: what `diff` would show for it, and
    /// the refusals that leave everything as it was (an unknown job, a job
    /// stopped by `drover stop` for a command that would run it, a tag the
    /// registry does not have).
    pub async fn prepare(
        &self,
        connections: &Connections,
        operation: Operation,
    ) -> Result<Prepared, FleetError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut image_edit = None;
        let plan = match &operation {
            Operation::Up { jobs } => {
                self.jobs(jobs)?;
                self.plan_up(connections, jobs).await?.0
            }
            Operation::Down { jobs } => {
                let plan = self.plan_for(connections, &operation, &[]).await?;
                // A job neither in the spec nor on any host is a typo, not a no-op.
                let unknown: Vec<&String> = jobs
                    .iter()
                    .filter(|n| {
                        !self.env.jobs.contains_key(*n)
                            && !plan.changes.iter().any(|c| &c.job == *n)
                    })
                    .collect();
                if !unknown.is_empty() {
                    return Err(FleetError::Other(format!(
                        "unknown job {} (jobs in {}: {}), and no host has containers of it",
                        list(unknown.iter().map(|n| format!("{n:?}"))),
                        self.env.dir.join("jobs").display(),
                        list(self.env.jobs.keys())
                    )));
                }
                plan
            }
            Operation::Stop { jobs } | Operation::Start { jobs } => {
                self.jobs(jobs)?;
                self.plan_for(connections, &operation, &[]).await?
            }
            Operation::Restart { job, .. } => {
                self.job(job)?;
                self.refuse_stopped(connections, job).await?;
                self.plan_for(connections, &operation, &[]).await?
            }
            Operation::Rollback { job } => {
                self.job(job)?;
                self.refuse_stopped(connections, job).await?;
                let (plan, no_previous) = self.plan_rollback(connections, job).await?;
                problems.extend(
                    no_previous
                        .into_iter()
                        .map(|p| format!("{}: {}", p.task, p.why)),
                );
                if plan.changes.is_empty() && plan.unreachable.is_empty() {
                    return Err(FleetError::Other(format!(
                        "job {job} has nothing to roll back to"
                    )));
                }
                plan
            }
            Operation::RollingUpdate { job, image, .. } => {
                let spec = self.job(job)?;
                self.refuse_stopped(connections, job).await?;
                let target = image.clone().unwrap_or_else(|| spec.image.clone());
                warnings = self.refresh_image(connections, job, &target).await?;
                self.plan_for(connections, &operation, &[]).await?
            }
            Operation::Update { job, image } => {
                self.job(job)?;
                self.refuse_stopped(connections, job).await?;
                self.check_image_exists(connections, job, image).await?;
                image_edit = Some(self.image_edit(job, image)?);
                self.plan_for(connections, &operation, &[]).await?
            }
        };
        Ok(Prepared {
            operation,
            plan,
            problems,
            image_edit,
            warnings,
        })
    }

    /// Carries out a prepared (and confirmed) operation: locks, marks, the
    /// file, a fresh plan, the rollout, the locks back, the file back if
    /// nothing rolled out.
    pub async fn execute(
        &self,
        connections: &Connections,
        prepared: &Prepared,
        run: &Run<'_>,
    ) -> Result<Executed, FleetError> {
        let operation = &prepared.operation;
        let mut jobs: BTreeSet<String> = prepared
            .plan
            .jobs()
            .into_iter()
            .map(str::to_string)
            .collect();
        jobs.extend(operation.jobs());
        let holder = crate::holder(&operation.command(), "", true);

        let mut guards: Vec<LockGuard> = Vec::new();
        let mut locked_out = Vec::new();
        for job in &jobs {
            let hosts = self.lock_hosts(connections, job, Some(&prepared.plan));
            match lock::acquire(&self.env.name, job, &hosts, &holder).await {
                Ok(guard) => guards.push(guard),
                Err(e @ LockError::Held { .. }) if operation.skips_locked_jobs() => {
                    (run.notices)(&Notice::LockedOut(Box::new(e)));
                    locked_out.push(job.clone());
                }
                Err(e) => {
                    release(guards, run).await;
                    return Err(e.into());
                }
            }
        }

        let result = self
            .execute_locked(connections, prepared, &locked_out, run)
            .await;
        release(guards, run).await;
        let (plan, report, file_kept_after_failure) = result?;
        Ok(Executed {
            plan,
            report,
            locked_out,
            file_kept_after_failure,
        })
    }

    async fn execute_locked(
        &self,
        connections: &Connections,
        prepared: &Prepared,
        locked_out: &[String],
        run: &Run<'_>,
    ) -> Result<(Plan, Report, Option<ImageEdit>), FleetError> {
        let operation = &prepared.operation;
        let free: Vec<String> = operation
            .jobs()
            .into_iter()
            .filter(|j| !locked_out.contains(j))
            .collect();
        match operation {
            Operation::Stop { .. } => {
                for job in &free {
                    let hosts = self.lock_hosts(connections, job, Some(&prepared.plan));
                    if let Some((host, e)) = self.mark_stopped(&hosts, job).await.first() {
                        return Err(FleetError::Other(format!(
                            "cannot mark job {job} stopped on host {host}: {e}; nothing was stopped"
                        )));
                    }
                }
            }
            Operation::Start { .. } => {
                for job in &free {
                    if let Some((host, e)) = self.unmark_stopped(connections, job).await.first() {
                        return Err(FleetError::Other(format!(
                            "cannot clear the stop mark of job {job} on host {host}: {e}; nothing was started"
                        )));
                    }
                }
            }
            _ => {}
        }
        let edit = prepared
            .image_edit
            .as_ref()
            .filter(|e| e.edit.changes() && locked_out.is_empty());
        if let Some(edit) = edit {
            edit.edit.write()?;
            (run.notices)(&Notice::Wrote(edit.clone()));
        }

        // Now that nobody else can change these jobs, look again: apply
        // what is needed now, not what was needed before the lock.
        let fresh = match self.plan_for(connections, operation, locked_out).await {
            Ok(plan) => plan,
            Err(e) => {
                if let Some(edit) = edit {
                    self.put_back(edit, run);
                }
                return Err(e);
            }
        };
        let shown = locked_out
            .iter()
            .fold(prepared.plan.clone(), |plan, job| plan.without_job(job));
        // Compared by what they do: a health check that ran in between
        // changes what was observed, not the plan.
        if !fresh.same_as(&shown) {
            (run.notices)(&Notice::Replanned(fresh.clone()));
        }
        // The team hears of the deploy from its start, its migration included.
        let announced = self.announce_start(operation, &fresh, run);
        // A migration runs before the new image does, never on the way back.
        if !matches!(operation, Operation::Rollback { .. }) {
            let released = self
                .release_before(
                    connections,
                    &fresh,
                    &operation.images(),
                    &operation.command(),
                    &run.cancel,
                    &|notice| (run.notices)(&Notice::Release(notice)),
                )
                .await;
            if let Err(e) = released {
                announce_refused(operation, &announced, &e, run);
                if let Some(edit) = edit {
                    self.put_back(edit, run);
                }
                return Err(e);
            }
        }
        let parallel = operation.parallel().or(run.parallel);
        let report = self
            .apply(
                connections,
                &fresh,
                &Run {
                    parallel,
                    ..run.clone()
                },
            )
            .await;
        announce_end(operation, &announced, &report, run);

        let mut kept = None;
        if let Some(edit) = edit {
            let job = operation.jobs().into_iter().next().unwrap_or_default();
            let rolled = fresh
                .changes
                .iter()
                .filter(|c| c.job == job && c.step.desired().is_some())
                .count();
            let rolled_out = report.outcomes.iter().any(|o| {
                o.job == job && o.result.is_ok() && matches!(o.step.as_str(), "create" | "replace")
            });
            if rolled > 0 && !rolled_out {
                self.put_back(edit, run);
            } else if !report.succeeded() {
                kept = Some(edit.clone());
            }
        }
        Ok((fresh, report, kept))
    }

    /// Posts `deploy.started` for each job the plan changes; returns them
    /// with the image each rolls out.
    fn announce_start(
        &self,
        operation: &Operation,
        plan: &Plan,
        run: &Run<'_>,
    ) -> Vec<(String, Option<String>)> {
        let mut jobs: Vec<(String, Option<String>)> = plan
            .jobs()
            .into_iter()
            .map(|job| (job.to_string(), self.deployed_image(operation, plan, job)))
            .collect();
        jobs.dedup();
        for (job, image) in &jobs {
            run.notifier.deploy(
                drover_notify::Deploy::Started,
                job,
                image.as_deref(),
                run.deployment.commit.as_deref(),
                &operation.command(),
            );
        }
        jobs
    }

    /// The image a job runs once `plan` is applied: the one its new
    /// containers get, else the spec's.
    fn deployed_image(&self, operation: &Operation, plan: &Plan, job: &str) -> Option<String> {
        plan.changes
            .iter()
            .filter(|c| c.job == job)
            .find_map(|c| c.step.desired().map(|d| d.config.image.clone()))
            .or_else(|| match operation {
                Operation::Down { .. } => None,
                _ => self.env.jobs.get(job).map(|j| j.image.to_string()),
            })
    }

    fn put_back(&self, edit: &ImageEdit, run: &Run<'_>) {
        match edit.edit.undo() {
            Ok(()) => (run.notices)(&Notice::PutBack(edit.clone())),
            Err(e) => (run.notices)(&Notice::Warning(format!(
                "could not put {} back: {e}; it says image = {:?}, the hosts run {:?}",
                edit.origin.file, edit.new, edit.old
            ))),
        }
    }

    /// The plan of `operation` as the hosts are now, leaving out `skip`.
    async fn plan_for(
        &self,
        connections: &Connections,
        operation: &Operation,
        skip: &[String],
    ) -> Result<Plan, FleetError> {
        let known = self.known_hosts();
        let keep = |jobs: &[String]| -> Vec<String> {
            jobs.iter().filter(|j| !skip.contains(j)).cloned().collect()
        };
        let plan = match operation {
            Operation::Up { jobs } if jobs.is_empty() => self.plan_up(connections, jobs).await?.0,
            Operation::Up { jobs } => {
                let jobs = keep(jobs);
                if jobs.is_empty() {
                    Plan::default()
                } else {
                    self.plan_up(connections, &jobs).await?.0
                }
            }
            Operation::Start { jobs } => {
                let jobs = keep(jobs);
                if jobs.is_empty() {
                    return Ok(Plan::default());
                }
                // Planned as if the stop marks were gone: `start` clears
                // them, then converges the jobs to the files.
                let (desired, observed) = self
                    .desired_and_observed(connections, &jobs, &BTreeMap::new())
                    .await?;
                let observed = without_stop_marks(observed, &self.env.name, &jobs);
                drover_plan::plan(
                    &self.env.name,
                    &desired,
                    &observed,
                    &Fleet::scope(&jobs),
                    &known,
                )
            }
            Operation::Down { jobs } => {
                let jobs: BTreeSet<String> = keep(jobs).into_iter().collect();
                let observed = self.observe(connections, &Scope::Jobs(jobs.clone())).await;
                plan_down(&self.env.name, &jobs, &observed, &known)
            }
            Operation::Stop { jobs } => {
                let jobs: BTreeSet<String> = keep(jobs).into_iter().collect();
                let observed = self.observe(connections, &Scope::Jobs(jobs.clone())).await;
                plan_stop(&self.env.name, &jobs, &observed, &known)
            }
            Operation::Restart { job, .. } => {
                let jobs = BTreeSet::from([job.clone()]);
                let observed = self.observe(connections, &Scope::Jobs(jobs.clone())).await;
                plan_restart(&self.env.name, &jobs, &observed, &known)
            }
            Operation::Rollback { job } => self.plan_rollback(connections, job).await?.0,
            Operation::RollingUpdate { job, image, .. } => {
                let images = image.iter().map(|i| (job.clone(), i.clone())).collect();
                self.plan_with(connections, std::slice::from_ref(job), &images)
                    .await?
                    .0
            }
            Operation::Update { job, image } => {
                let images = BTreeMap::from([(job.clone(), image.clone())]);
                self.plan_with(connections, std::slice::from_ref(job), &images)
                    .await?
                    .0
            }
        };
        // Whatever the plan holds of a job left alone goes.
        Ok(skip.iter().fold(plan, |plan, job| plan.without_job(job)))
    }

    async fn plan_rollback(
        &self,
        connections: &Connections,
        job: &str,
    ) -> Result<(Plan, Vec<drover_plan::ops::NoPrevious>), FleetError> {
        let spec = self.job(job)?;
        let secrets = self.secrets(&[spec])?;
        let observed = self
            .observe(connections, &Fleet::scope(&[job.to_string()]))
            .await;
        Ok(plan_rollback(
            &self.env.name,
            job,
            &observed,
            &self.known_hosts(),
            &secrets,
        ))
    }

    /// The stop marks of `job` on the hosts.
    pub async fn stop_marks(&self, connections: &Connections, job: &str) -> Vec<StopMark> {
        let observed = self
            .observe(connections, &Fleet::scope(&[job.to_string()]))
            .await;
        drover_plan::views::stop_marks(&self.env.name, &observed, &self.known_hosts(), job)
    }

    /// A command that would run `job`'s tasks is refused while `drover
    /// stop` holds it: `drover start` is the one way back.
    async fn refuse_stopped(&self, connections: &Connections, job: &str) -> Result<(), FleetError> {
        let marks = self.stop_marks(connections, job).await;
        match marks.first() {
            None => Ok(()),
            Some(mark) => Err(FleetError::Other(format!(
                "{mark}{}: run `drover start {job}` first (it applies what the files say), then this again; nothing was changed",
                if marks.len() > 1 {
                    format!(" and on {} other host(s)", marks.len() - 1)
                } else {
                    String::new()
                }
            ))),
        }
    }

    /// `rolling-update`: a tag may have moved in the registry, so fetch it
    /// on the job's hosts before planning; nothing is touched if that fails
    /// where no host has it. Returns what is worth a warning.
    async fn refresh_image(
        &self,
        connections: &Connections,
        job: &str,
        image: &ImageRef,
    ) -> Result<Vec<String>, FleetError> {
        if image.is_id() {
            return Ok(Vec::new());
        }
        let spec = self.job(job)?;
        let pulls = spec
            .hosts
            .iter()
            .filter_map(|h| connections.engines.get(h).map(|e| (h, e)))
            .map(|(host, engine)| async move {
                let pulled = engine.pull_image(image.as_str(), &|_| {}).await;
                let has = pulled.is_ok()
                    || matches!(engine.inspect_image(image.as_str()).await, Ok(Some(_)));
                (host, pulled, has)
            });
        let mut missing = Vec::new();
        let mut warnings = Vec::new();
        for (host, pulled, has) in join_all(pulls).await {
            if let Err(e) = pulled {
                if has {
                    warnings.push(format!(
                        "{e}; rolling out the {image} host {host} already has"
                    ));
                } else {
                    missing.push(format!("{host}: {e}"));
                }
            }
        }
        if missing.is_empty() {
            Ok(warnings)
        } else {
            Err(FleetError::Other(format!(
                "image {image} could not be pulled everywhere ({}); no task was touched",
                missing.join("; ")
            )))
        }
    }

    /// `update --image`: a tag the registry does not have (and no host
    /// has) is refused before anything is written.
    async fn check_image_exists(
        &self,
        connections: &Connections,
        job: &str,
        image: &ImageRef,
    ) -> Result<(), FleetError> {
        let on_a_host =
            join_all(connections.engines.values().map(|e| async move {
                matches!(e.inspect_image(image.as_str()).await, Ok(Some(_)))
            }))
            .await
            .into_iter()
            .any(|has| has);
        if on_a_host || image.is_id() {
            return Ok(());
        }
        let (Some(registry), Some(tag), Some(host), Some(path)) = (
            &self.env.registry,
            image.tag(),
            image.registry(),
            image.path(),
        ) else {
            return Ok(());
        };
        let Ok(client) = RegistryClient::with_credentials_from_environment(
            &registry.url,
            crate::images::REGISTRY_TIMEOUT,
        ) else {
            return Ok(());
        };
        // Only a registry that is the image's own can say it lacks the tag.
        if host != client.registry_host() {
            return Ok(());
        }
        match client.tag_info(path, tag).await {
            Ok(_) => Ok(()),
            Err(e @ (RegistryError::ManifestNotFound { .. } | RegistryError::RepositoryNotFound { .. })) => {
                Err(FleetError::Other(format!(
                    "{e}, and no host has {image}: `drover images {job}` lists the tags there are; nothing was changed"
                )))
            }
            // The pull before the rollout says more, and touches nothing if it fails.
            Err(_) => Ok(()),
        }
    }
}

/// Posts how each announced job's deploy ended, with a one-line account.
fn announce_end(
    operation: &Operation,
    jobs: &[(String, Option<String>)],
    report: &Report,
    run: &Run<'_>,
) {
    for (job, image) in jobs {
        let outcomes: Vec<&drover_apply::Outcome> =
            report.outcomes.iter().filter(|o| &o.job == job).collect();
        let done = outcomes.iter().filter(|o| o.result.is_ok()).count();
        let failure = outcomes.iter().find_map(|o| match &o.result {
            Err(e) if e.counts() && !matches!(e, drover_apply::StepError::RolledBack { .. }) => {
                Some(format!("{}: {e}", o.subject()))
            }
            _ => None,
        });
        let rolled_back = outcomes.iter().any(|o| {
            matches!(
                &o.result,
                Err(drover_apply::StepError::RolledBack { .. })
                    | Err(drover_apply::StepError::Gate {
                        restored: drover_apply::Restored::Previous,
                        ..
                    })
            )
        });
        let (outcome, summary) = match (&failure, report.interrupted) {
            (Some(why), _) if rolled_back => (
                drover_notify::Deploy::RolledBack,
                format!(
                    "{}: {why}; the previous version runs again",
                    operation.command()
                ),
            ),
            (Some(why), _) => (
                drover_notify::Deploy::Failed,
                format!("{}: {why}", operation.command()),
            ),
            (None, true) => (
                drover_notify::Deploy::Failed,
                format!(
                    "{}: interrupted after {done} of {} step(s)",
                    operation.command(),
                    outcomes.len()
                ),
            ),
            (None, false) => (
                drover_notify::Deploy::Succeeded,
                format!("{}: {done} step(s) done", operation.command()),
            ),
        };
        run.notifier.deploy(
            outcome,
            job,
            image.as_deref(),
            run.deployment.commit.as_deref(),
            &summary,
        );
    }
}

/// Posts `deploy.failed` for each announced job when the change stopped
/// before its rollout (a release command failed): no task was touched.
fn announce_refused(
    operation: &Operation,
    jobs: &[(String, Option<String>)],
    error: &FleetError,
    run: &Run<'_>,
) {
    let why = match error {
        FleetError::Release(outcome) => format!(
            "{outcome}; no task was touched; its output: `docker logs {}` on host {}",
            outcome.container, outcome.host
        ),
        other => format!("{other}; no task was touched"),
    };
    for (job, image) in jobs {
        run.notifier.deploy_stopped(
            job,
            image.as_deref(),
            run.deployment.commit.as_deref(),
            &format!("{}: {why}", operation.command()),
        );
    }
}

/// Gives back every lock, noting those that could not be.
async fn release(guards: Vec<LockGuard>, run: &Run<'_>) {
    for guard in guards {
        let job = guard.job.clone();
        for (host, e) in guard.release().await {
            (run.notices)(&Notice::Warning(format!(
                "could not release the lock of job {job} on host {host}: {e}; run `drover unlock {job}`"
            )));
        }
    }
}

/// `observed` without the stop marks of `jobs`.
fn without_stop_marks(mut observed: Observed, env: &str, jobs: &[String]) -> Observed {
    for observation in observed.hosts.values_mut() {
        if let drover_plan::HostObservation::Reachable(state) = observation {
            state.containers.retain(|c| {
                !(matches!(c.role(env), Role::StopMark { ref job, .. } if jobs.contains(job))
                    && c.label(labels::ROLE) == Some(ROLE_STOPPED))
            });
        }
    }
    observed
}
