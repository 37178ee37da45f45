//! Running a command in a task: the task picked (by `HOST/N`, else the
//! first healthy one), and an exec session with or without a terminal, for
//! `drover exec` and the dashboard's shell alike.

use drover_plan::{Health, RunState};
use std::sync::Arc;

use drover_engine::{Engine, EngineError, ExecSession};
use drover_plan::views::{status_rows, Presence};
use drover_plan::TaskKey;

use crate::{list, Connections, Fleet, FleetError};

/// An exec session in a task.
pub struct Shell {
    pub task: TaskKey,
    /// The container's short ID.
    pub container: String,
    pub session: ExecSession,
    engine: Arc<dyn Engine>,
}

impl Shell {
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.engine
            .resize_exec(&self.session.exec_id, rows, cols)
            .await
    }

    /// The command's exit code, once it has ended.
    pub async fn exit_code(&self) -> Result<Option<i64>, EngineError> {
        self.engine.exec_exit_code(&self.session.exec_id).await
    }

    /// Whether the task's container still runs.
    pub async fn container_running(&self) -> bool {
        matches!(self.engine.inspect_container(&self.container).await, Ok(Some(c)) if c.state() == RunState::Running)
    }
}

/// A running task picked to run something in.
pub struct Picked {
    pub task: TaskKey,
    pub container: String,
    pub engine: Arc<dyn Engine>,
    /// Said when drover chose among several tasks.
    pub note: Option<String>,
}

/// `HOST/N`.
pub fn parse_task(text: &str) -> Result<(String, u32), FleetError> {
    match text.rsplit_once('/') {
        Some((host, n)) if !host.is_empty() => {
            n.parse().map(|n| (host.to_string(), n)).map_err(|_| {
                FleetError::Other(format!(
                    "invalid task {text:?}: expected HOST/N, e.g. app1/0"
                ))
            })
        }
        _ => Err(FleetError::Other(format!(
            "invalid task {text:?}: expected HOST/N, e.g. app1/0"
        ))),
    }
}

impl Fleet {
    /// The running tasks of `job`, healthiest first, with their engines.
    pub async fn running_tasks(
        &self,
        connections: &Connections,
        job: &str,
    ) -> Result<Vec<Picked>, FleetError> {
        let spec = self.job(job)?;
        let keys = self.task_keys(&[spec]);
        let scope = Fleet::scope(&[job.to_string()]);
        let observed = self.observe(connections, &scope).await;
        let mut found = Vec::new();
        for row in status_rows(
            &self.env.name,
            &keys,
            &observed,
            &scope,
            &self.known_hosts(),
        ) {
            let (Some(c), Presence::Found, Some(task)) = (row.container, row.presence, row.task)
            else {
                continue;
            };
            if c.state() != RunState::Running || !row.in_spec {
                continue;
            }
            let Some(engine) = connections.engines.get(&row.host) else {
                continue;
            };
            let rank = match c.runs.health {
                Health::Healthy => 0,
                Health::None => 1,
                _ => 2,
            };
            found.push((
                rank,
                Picked {
                    task: TaskKey::new(job, &row.host, task),
                    container: c.id.clone(),
                    engine: Arc::clone(engine),
                    note: None,
                },
            ));
        }
        found.sort_by(|a, b| (a.0, &a.1.task).cmp(&(b.0, &b.1.task)));
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    /// The task `task` (`HOST/N`) of `job`, or the first healthy one.
    pub async fn pick_task(
        &self,
        connections: &Connections,
        job: &str,
        task: Option<&str>,
    ) -> Result<Picked, FleetError> {
        let running = self.running_tasks(connections, job).await?;
        match task {
            Some(text) => {
                let (host, n) = parse_task(text)?;
                running
                    .into_iter()
                    .find(|p| p.task.host == host && p.task.task == n)
                    .ok_or_else(|| {
                        let known = self
                            .env
                            .jobs
                            .get(job)
                            .map(|j| {
                                j.tasks()
                                    .map(|(h, t)| format!("{h}/{t}"))
                                    .collect::<Vec<_>>()
                            })
                            .unwrap_or_default();
                        if known.contains(&text.to_string()) {
                            FleetError::Other(format!(
                                "task {job} {text} is not running (see `drover status {job}`)"
                            ))
                        } else {
                            FleetError::Other(format!(
                                "job {job} has no task {text} (its tasks: {})",
                                list(&known)
                            ))
                        }
                    })
            }
            None => {
                let count = running.len();
                let mut first = running.into_iter().next().ok_or_else(|| {
                    FleetError::Other(format!(
                        "job {job} has no running task (see `drover status {job}`)"
                    ))
                })?;
                if count > 1 {
                    first.note = Some(format!("in {} (the first healthy of {count} running tasks; pick another with --task HOST/N)", first.task));
                }
                Ok(first)
            }
        }
    }

    /// Starts `cmd` in a task of `job`, with a terminal when `tty`.
    pub async fn open_exec(
        &self,
        connections: &Connections,
        job: &str,
        task: Option<&str>,
        cmd: &[String],
        tty: bool,
    ) -> Result<Shell, FleetError> {
        let picked = self.pick_task(connections, job, task).await?;
        let session = picked
            .engine
            .exec_session(&picked.container, cmd, tty)
            .await
            .map_err(|e| {
                FleetError::Other(format!("cannot run a command in {}: {e}", picked.task))
            })?;
        Ok(Shell {
            task: picked.task,
            container: picked.container,
            session,
            engine: picked.engine,
        })
    }
}
