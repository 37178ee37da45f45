use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::logs::{parse_since, LogEvent, LogQuery};
use drover_fleet::parse_task;
use drover_plan::views::status_rows;
use drover_plan::TaskKey;

use crate::cli::Global;
use crate::terminal::{self, interrupt, output};

/// Colours for task prefixes on a terminal, in turn.
const PALETTE: [&str; 6] = [
    "\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[33m", "\x1b[96m",
];

/// Bytes of output gathered into one write at most.
const BATCH: usize = 64 * 1024;

/// Every task's lines, merged by time, each prefixed `host/task` (`|` for
/// stdout, `!` for stderr); `-f` keeps following; `--failed` reads the
/// containers the last failed rollout kept aside instead.
pub async fn run(
    global: &Global,
    job: &str,
    task: Option<&str>,
    follow: bool,
    tail: Option<usize>,
    since: Option<&str>,
    failed: bool,
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let spec = fleet.job(job)?;
    let task = task.map(parse_task).transpose()?;
    if let Some((host, n)) = &task {
        fleet.task(job, host, *n)?;
    }
    let since_ns = since
        .map(parse_since)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // The job's secret values never go out, even where a task printed them:
    // each one drover can read (its environment, the secrets file), even
    // when another has no value here.
    let names: BTreeSet<&str> = spec.secret_env.iter().map(String::as_str).collect();
    let secrets = drover_fleet::load_secrets(&fleet.env.dir, &names).unwrap_or_default();
    let masked = |text: &str| drover_plan::mask_values(text, secrets.values().map(|s| s.expose()));
    let connections = fleet.connect_job(spec).await;
    for error in connections.unreachable.values() {
        eprintln!("{error}");
    }
    let color = terminal::color(global);
    let tasks: Vec<String> = spec.tasks().map(|(h, t)| format!("{h}/{t}")).collect();
    let width = tasks.iter().map(String::len).max().unwrap_or(4);
    let query = LogQuery {
        task,
        tail,
        since_ns,
        follow,
        stdout: true,
        stderr: true,
        grep: None,
    };
    let mut events = if failed {
        let tasks = say_failed(&fleet, &connections, job, query.task.as_ref()).await;
        if tasks.is_empty() {
            return Ok(if connections.unreachable.is_empty() {
                super::SUCCESS
            } else {
                super::failure()
            });
        }
        fleet.failed_logs(
            connections.engines.clone(),
            job,
            &tasks,
            query,
            interrupt::token(),
        )
    } else {
        fleet.follow_logs(
            connections.engines.clone(),
            job,
            query,
            None,
            interrupt::token(),
        )
    };
    // Lines that are already waiting go out in one write: a fast task is
    // not slowed to one system call per line.
    let mut batch = String::new();
    while let Some(first) = events.recv().await {
        let mut next = Some(first);
        while let Some(event) = next {
            match event {
                LogEvent::Line(line) => {
                    let mut line = line;
                    if !secrets.is_empty() {
                        line.line = masked(&line.line);
                    }
                    if global.json {
                        batch.push_str(&serde_json::to_string(&line)?);
                    } else {
                        let name = format!("{}/{}", line.host, line.task);
                        let mark = if line.stream == drover_engine::StreamKind::Stderr {
                            '!'
                        } else {
                            '|'
                        };
                        let cut = if line.truncated { " …[cut]" } else { "" };
                        if color {
                            let i =
                                tasks.iter().position(|t| *t == name).unwrap_or(0) % PALETTE.len();
                            let _ = write!(
                                batch,
                                "{}{name:<width$}{} {mark} {}{cut}",
                                PALETTE[i],
                                terminal::RESET,
                                line.line
                            );
                        } else {
                            let _ = write!(batch, "{name:<width$} {mark} {}{cut}", line.line);
                        }
                    }
                    batch.push('\n');
                }
                LogEvent::Dropped { host, task, lines } => {
                    output::write_out(&std::mem::take(&mut batch));
                    eprintln!("drover: {lines} line(s) of {host}/{task} dropped: they came faster than they could be written out");
                }
                LogEvent::Note(note) => {
                    output::write_out(&std::mem::take(&mut batch));
                    eprintln!("drover: {note}");
                }
            }
            next = if batch.len() < BATCH {
                events.try_recv().ok()
            } else {
                None
            };
        }
        output::write_out(&std::mem::take(&mut batch));
        if output::closed() {
            break;
        }
    }
    Ok(if connections.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}

/// Names, on stderr, each container the job's last failed rollout kept
/// aside (of `task`, or of every task) and why it failed; returns their
/// tasks, none if there is none. The last rollout is the newest stamp: one
/// command stamps one time on every container it creates, so a task's
/// failure from an earlier rollout is not mixed in.
async fn say_failed(
    fleet: &drover_fleet::Fleet,
    connections: &drover_fleet::Connections,
    job: &str,
    task: Option<&(String, u32)>,
) -> BTreeSet<TaskKey> {
    let scope = drover_fleet::Fleet::scope(&[job.to_string()]);
    let observed = fleet.observe(connections, &scope).await;
    let keys = match fleet.env.jobs.get(job) {
        Some(spec) => fleet.task_keys(&[spec]),
        None => Vec::new(),
    };
    let rows = status_rows(
        &fleet.env.name,
        &keys,
        &observed,
        &scope,
        &fleet.known_hosts(),
    );
    let found: Vec<(TaskKey, &drover_plan::ObservedContainer)> = rows
        .iter()
        .filter_map(|row| {
            let (c, n) = (row.failed?, row.task?);
            task.is_none_or(|(h, t)| *h == row.host && *t == n)
                .then(|| (TaskKey::new(job, &row.host, n), c))
        })
        .collect();
    let last = found.iter().filter_map(|(_, c)| c.deployed_at()).max();
    let mut tasks = BTreeSet::new();
    for (key, c) in found {
        if c.deployed_at() != last {
            continue;
        }
        eprintln!(
            "drover: {}/{}: {} ({}, {} by {}, {}): {}",
            key.host,
            key.task,
            c.name,
            c.config.image,
            c.deployed_at()
                .map(drover_plan::time::format)
                .unwrap_or_else(|| "at an unknown time".to_string()),
            c.label(drover_plan::labels::DEPLOYED_BY)
                .unwrap_or("unknown"),
            c.label(drover_plan::labels::COMMAND)
                .unwrap_or("unknown command"),
            drover_plan::views::failed_reason(c)
        );
        tasks.insert(key);
    }
    if tasks.is_empty() {
        let which = task.map_or_else(
            || format!("job {job}"),
            |(h, t)| format!("task {job} {h}/{t}"),
        );
        eprintln!("drover: {which} has no failed container on the hosts: no rollout failed its gate since the last one was removed");
    }
    tasks
}
