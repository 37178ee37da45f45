use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use drover_fleet::{Fleet, Operation};
use drover_spec::ImageRef;

use super::change::execute;
use crate::cli::Global;

/// Pick a tag (or take `--image`), show the diff and where the file
/// changes, confirm; then, under the job's lock, write the file and roll it
/// out. A refusal, a decline or Ctrl-C before that leaves the file as it was.
pub async fn run(global: &Global, job: &str, image: Option<&str>) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.job(job)?;
    let image: ImageRef = match image {
        Some(image) => image
            .parse()
            .map_err(anyhow::Error::msg)
            .context("--image")?,
        None => pick(global, &fleet, job).await?,
    };
    let connections = fleet.connect_all().await;
    let prepared = fleet
        .prepare(
            &connections,
            Operation::Update {
                job: job.to_string(),
                image,
            },
        )
        .await?;
    execute(global, &fleet, &connections, prepared).await
}

/// The interactive picker over `drover images JOB`, filtered as you type.
async fn pick(global: &Global, fleet: &Fleet, job: &str) -> Result<ImageRef> {
    if !std::io::stdin().is_terminal() || global.json {
        bail!(
            "no terminal to pick an image on: pass --image REF (`drover images {job}` lists them)"
        );
    }
    let connections = fleet.connect_all().await;
    let report = fleet.images(&connections, job).await?;
    if let Some(error) = &report.registry_error {
        eprintln!("the registry could not be read: {error} (offering the hosts' own tags)");
    }
    if report.rows.is_empty() {
        bail!(
            "no tags of {} in the registry or on any host",
            report.repository
        );
    }
    let options: Vec<String> = report
        .rows
        .iter()
        .map(|r| {
            let mut line = format!(
                "{:<24} {}",
                r.tag,
                super::images::when(r.created.as_deref())
            );
            if !r.running.is_empty() {
                line.push_str(&format!("  running on {}", r.running.join(",")));
            } else if !r.hosts.is_empty() {
                line.push_str(&format!("  on {}", r.hosts.join(",")));
            }
            if r.in_spec {
                line.push_str("  (spec)");
            }
            line
        })
        .collect();
    // Filter on the tag as typed (a substring), not fuzzily across the whole line.
    let tags: Vec<String> = report.rows.iter().map(|r| r.tag.to_lowercase()).collect();
    let scorer = |input: &str, _: &String, _: &str, index: usize| -> Option<i64> {
        let input = input.trim().to_lowercase();
        let tag = tags.get(index)?;
        tag.find(&input)
            .map(|at| -(at as i64) - (index as i64) * 1000)
    };
    let chosen = inquire::Select::new(
        &format!("Image for {job} ({}):", report.repository),
        options,
    )
    .with_page_size(15)
    .with_scorer(&scorer)
    .with_help_message("type to filter, ↑↓ to move, enter to pick, esc to cancel")
    .raw_prompt()
    .context("no image picked")?;
    let row = &report.rows[chosen.index];
    row.reference.parse().map_err(anyhow::Error::msg)
}
