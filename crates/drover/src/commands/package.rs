use std::process::ExitCode;

use anyhow::{bail, Result};
use drover_fleet::PackageNote;

use crate::cli::Global;
use crate::outln;

/// Builds the job's image from `base` + the artifact + `command` on one
/// host, pushes it, and prints the reference. Changes no task and no file.
pub async fn run(
    global: &Global,
    job: &str,
    artifact: &std::path::Path,
    tag: Option<&str>,
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let spec = fleet.job(job)?;
    if global.hosts.len() > 1 {
        bail!("package builds on one host: give --host once");
    }
    let host = global
        .hosts
        .first()
        .cloned()
        .or_else(|| spec.hosts.first().cloned());
    let Some(host) = host else {
        bail!("job {job} lists no hosts to build on: pass --host NAME");
    };
    let connections = fleet.connect(&[host.clone()].into_iter().collect()).await;
    let json = global.json;
    let notes = |note: PackageNote<'_>| match note {
        PackageNote::Stage(stage) if !json => eprintln!("drover: {stage}"),
        PackageNote::Stage(_) => {}
        PackageNote::Warning(warning) => eprintln!("warning: {warning}"),
    };
    let packaged = fleet
        .package(&connections, job, artifact, tag, Some(&host), &notes)
        .await?;
    if json {
        outln!(
            "{}",
            serde_json::json!({"reference": packaged.reference, "image_id": packaged.image_id, "digest": packaged.digest, "host": packaged.host, "sockets_left_out": packaged.sockets_left_out.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()})
        );
    } else {
        eprintln!(
            "drover: pushed {} ({}); roll it out with: drover update {job} --image {}",
            packaged.reference, packaged.digest, packaged.reference
        );
        outln!("{}", packaged.reference);
    }
    Ok(super::SUCCESS)
}
