use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use drover_spec::ImageRef;
use futures::future::join_all;

use super::change::{execute, Change};
use crate::cli::Global;
use crate::outln;

async fn has_image(connections: &drover_fleet::Connections, host: &str, image: &ImageRef) -> bool {
    match connections.engines.get(host) {
        Some(engine) => matches!(engine.inspect_image(image.as_str()).await, Ok(Some(_))),
        None => false,
    }
}

/// The rollout alone: refresh the job's image on its hosts, then replace its
/// tasks batch by batch, optionally to another image without touching the file.
pub async fn run(
    global: &Global,
    job: &str,
    image: Option<&str>,
    parallel: Option<u32>,
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let spec = fleet.job(job)?;
    let mut images = BTreeMap::new();
    if let Some(image) = image {
        let image: ImageRef = image
            .parse()
            .map_err(anyhow::Error::msg)
            .context("--image")?;
        images.insert(job.to_string(), image);
    }
    let target = images.get(job).unwrap_or(&spec.image).clone();
    let connections = fleet.connect_all().await;

    // A tag may have moved in the registry: fetch it before comparing, so
    // the rollout takes what the tag names now. Nothing is touched if that fails.
    if !target.is_id() {
        let pulls = spec
            .hosts
            .iter()
            .filter_map(|h| connections.engines.get(h).map(|e| (h, e)))
            .map(|(host, engine)| {
                let target = target.to_string();
                async move { (host, engine.pull_image(&target, &|_| {}).await) }
            });
        let mut failed = false;
        for (host, result) in join_all(pulls).await {
            match result {
                Ok(()) if !global.json => outln!("{host}: pulled {target}"),
                Ok(()) => {}
                // A host that has the image rolls out what it has.
                Err(e) if has_image(&connections, host, &target).await => {
                    eprintln!("warning: {e}; rolling out the {target} host {host} already has");
                }
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        if failed {
            bail!("no task was touched: the image could not be pulled everywhere");
        }
    }

    let names = [job.to_string()];
    let (plan, _) = fleet.plan_with(&connections, &names, &images).await?;
    let command = match image {
        Some(image) => format!("rolling-update {job} --image {image}"),
        None => format!("rolling-update {job}"),
    };
    let mut change = Change::new(command, "Roll out these changes?");
    change.parallel = parallel;
    execute(global, &fleet, &connections, plan, change, async || {
        Ok(fleet.plan_with(&connections, &names, &images).await?.0)
    })
    .await
}
