use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::ImageRow;

use crate::cli::Global;
use crate::terminal::table::Table;
use crate::{out, outln};

pub async fn run(global: &Global, job: &str) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.job(job)?;
    let connections = fleet.connect_all().await;
    let report = fleet.images(&connections, job).await?;
    for (host, address, error) in &report.unreachable {
        eprintln!("host {host} ({address}) is unreachable: {error}");
    }
    if let Some(error) = &report.registry_error {
        eprintln!("the registry could not be read: {error} (the hosts' own tags are listed)");
    }
    if global.json {
        outln!("{}", serde_json::to_string(&report.rows)?);
    } else if report.rows.is_empty() {
        outln!(
            "no tags of {} in the registry or on any host",
            report.repository
        );
    } else {
        out!("{}", table(&report.rows));
    }
    Ok(
        if report.registry_error.is_some() || !report.unreachable.is_empty() {
            super::failure()
        } else {
            super::SUCCESS
        },
    )
}

/// `YYYY-MM-DD HH:MM` of an RFC 3339 time.
pub fn when(created: Option<&str>) -> String {
    created
        .and_then(|c| c.get(..16))
        .map_or_else(|| "-".to_string(), |c| c.replace('T', " "))
}

fn table(rows: &[ImageRow]) -> String {
    let mut table = Table::new(["TAG", "CREATED", "REGISTRY", "HOSTS", "RUNNING"]);
    for row in rows {
        let tag = if row.in_spec {
            format!("{} (spec)", row.tag)
        } else {
            row.tag.clone()
        };
        let registry = match (&row.error, row.in_registry) {
            (Some(_), _) => "unreadable".to_string(),
            (None, true) => "yes".to_string(),
            (None, false) => "-".to_string(),
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(",")
            }
        };
        table.row(
            [
                tag,
                when(row.created.as_deref()),
                registry,
                list(&row.hosts),
                list(&row.running),
            ],
            None,
        );
    }
    table.to_string()
}
