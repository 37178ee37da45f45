use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use drover_engine::Usage;
use drover_plan::{HostObservation, ObservedContainer};
use futures::future::join_all;
use serde::Serialize;

use crate::cli::Global;
use crate::context::Context;
use crate::table::Table;

/// One task as `status` reports it.
#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub job: String,
    pub host: String,
    pub task: Option<u32>,
    pub container: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    /// The engine's state, `missing` when the task has no container, or
    /// `unreachable` when its host could not be asked.
    pub state: String,
    pub health: Option<String>,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub restarts: Option<i64>,
    pub memory_bytes: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// Whether a task of the spec (false: a container no task claims any more).
    pub in_spec: bool,
}

pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let ctx = Context::load(global)?;
    let jobs = ctx.jobs(names)?;
    let hosts = ctx.hosts_for(if names.is_empty() { None } else { Some(&jobs) });
    let scope = ctx.scope(names);
    let desired = ctx.desired_without_secrets(&jobs, &hosts);
    let connections = ctx.connect(&hosts).await;
    let observed = ctx.observe(&connections, &scope).await;

    let mut rows: Vec<(TaskStatus, Option<&ObservedContainer>)> = Vec::new();
    let mut unreachable = false;
    for (host, observation) in &observed.hosts {
        let wanted: BTreeSet<(&str, u32)> = desired
            .iter()
            .filter(|(_, h, _)| h == host)
            .map(|(j, _, t)| (j.as_str(), *t))
            .collect();
        match observation {
            HostObservation::Reachable(state) => {
                let mut seen = BTreeSet::new();
                for c in &state.containers {
                    let Some(job) = c.job() else { continue };
                    let label_host = c.host_label().unwrap_or_default();
                    if !scope.covers(job)
                        || (label_host != host && ctx.env.hosts.contains_key(label_host))
                    {
                        continue;
                    }
                    let in_spec = c.task().is_some_and(|t| wanted.contains(&(job, t)));
                    if in_spec {
                        seen.insert((job, c.task().unwrap_or_default()));
                    }
                    rows.push((container_row(host, job, c, in_spec), Some(c)));
                }
                for (job, task) in wanted.difference(&seen) {
                    rows.push((placeholder(job, host, *task, "missing"), None));
                }
            }
            HostObservation::Unreachable { address, error } => {
                unreachable = true;
                eprintln!("host {host} ({address}) is unreachable: {error}");
                for (job, task) in &wanted {
                    rows.push((placeholder(job, host, *task, "unreachable"), None));
                }
            }
        }
    }

    // Every stats request of every host at once: each waits for the engine's next sample.
    let usages = join_all(rows.iter().map(|(row, container)| {
        let engine = connections.engines.get(&row.host).cloned();
        async move {
            match (engine, container) {
                (Some(engine), Some(c)) if c.state == "running" => engine.usage(&c.id).await.ok(),
                _ => None,
            }
        }
    }))
    .await;
    let mut rows: Vec<TaskStatus> = rows
        .into_iter()
        .zip(usages)
        .map(|((mut row, _), usage): ((TaskStatus, _), Option<Usage>)| {
            if let Some(usage) = usage {
                row.memory_bytes = Some(usage.memory_bytes);
                row.cpu_percent = Some((usage.cpu_percent * 100.0).round() / 100.0);
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.job, &a.host, a.task).cmp(&(&b.job, &b.host, b.task)));

    if global.json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        print_table(&rows, ctx.color());
    }
    // A missing task is reported, not a failure of `status`; a host it could not read is.
    Ok(if unreachable {
        super::failure()
    } else {
        super::SUCCESS
    })
}

fn container_row(host: &str, job: &str, c: &ObservedContainer, in_spec: bool) -> TaskStatus {
    TaskStatus {
        job: job.to_string(),
        host: host.to_string(),
        task: c.task(),
        container: Some(c.short_id().to_string()),
        name: Some(c.name.clone()),
        image: Some(c.config.image.clone()),
        state: c.state.clone(),
        health: Some(c.health.clone()).filter(|h| !h.is_empty()),
        started_at: Some(c.started_at.clone()).filter(|_| c.is_running()),
        uptime_seconds: if c.is_running() {
            uptime(&c.started_at)
        } else {
            None
        },
        restarts: Some(c.restarts),
        memory_bytes: None,
        cpu_percent: None,
        in_spec,
    }
}

fn placeholder(job: &str, host: &str, task: u32, state: &str) -> TaskStatus {
    TaskStatus {
        job: job.to_string(),
        host: host.to_string(),
        task: Some(task),
        container: None,
        name: None,
        image: None,
        state: state.to_string(),
        health: None,
        started_at: None,
        uptime_seconds: None,
        restarts: None,
        memory_bytes: None,
        cpu_percent: None,
        in_spec: true,
    }
}

fn print_table(rows: &[TaskStatus], color: bool) {
    let mut table = Table::new([
        "TASK",
        "CONTAINER",
        "IMAGE",
        "STATE",
        "HEALTH",
        "UPTIME",
        "RESTARTS",
        "MEMORY",
        "CPU",
    ]);
    for row in rows {
        let task = match row.task {
            Some(t) => format!("{} {}/{}", row.job, row.host, t),
            None => format!("{} {}/?", row.job, row.host),
        };
        let state = if row.in_spec {
            row.state.clone()
        } else {
            format!("{} (not in spec)", row.state)
        };
        let dash = || "-".to_string();
        let state_color = match row.state.as_str() {
            "running" if row.in_spec => "\x1b[32m",
            "running" => "\x1b[33m",
            _ => "\x1b[31m",
        };
        table.row(
            [
                task,
                row.container.clone().unwrap_or_else(dash),
                row.image.clone().unwrap_or_else(dash),
                state,
                row.health.clone().unwrap_or_else(dash),
                row.uptime_seconds.map_or_else(dash, human_duration),
                row.restarts.map_or_else(dash, |r| r.to_string()),
                row.memory_bytes.map_or_else(dash, human_bytes),
                row.cpu_percent.map_or_else(dash, |c| format!("{c:.1}%")),
            ],
            if color { Some((3, state_color)) } else { None },
        );
    }
    print!("{table}");
}

/// Seconds since an RFC 3339 time as Docker writes it (`2026-11-24T23:05:58.123Z`).
fn uptime(started_at: &str) -> Option<u64> {
    let started = parse_rfc3339(started_at)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(now.saturating_sub(started))
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+', '.']).next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_docker_writes_it() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-24T23:05:58.123456789Z"),
            Some(1_795_561_558)
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(3 << 20), "3.0MiB");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(3661), "1h1m");
    }
}
