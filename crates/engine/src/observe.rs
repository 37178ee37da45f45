//! Observe: one host's drover containers and images, as plain data.
//!
//! One list call for containers and one for images, then every container in
//! scope and every distinct image it runs is inspected at once (bounded by
//! the engine's request limits), since `diff` must see configuration the
//! list call does not carry (env, memory, restart policy…).

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use drover_plan::time;
use drover_plan::{labels, Adoption, HostState, ImageIndex, ObservedContainer, Scope};
use futures::{stream, StreamExt, TryStreamExt};

use crate::convert::env_map;
use crate::{ContainerSummary, Engine, EngineError, ImageDetails};

/// Inspects in flight at once per host; the engine's own bound applies too.
const INSPECT_CONCURRENCY: usize = 32;

/// Reads the host's containers of environment `env` whose job `scope`
/// covers (the others are not inspected), and the host's images.
pub async fn observe(
    engine: &dyn Engine,
    env: &str,
    scope: &Scope,
) -> Result<HostState, EngineError> {
    let (summaries, images) = tokio::try_join!(engine.list_containers(env), engine.list_images())?;
    let summaries: Vec<ContainerSummary> = summaries
        .into_iter()
        .filter(|s| match (s.labels.get(labels::JOB), scope) {
            (_, Scope::All) => true,
            (Some(job), scope) => scope.covers(job),
            (None, _) => false,
        })
        .collect();

    let ids: Vec<String> = summaries.iter().map(|s| s.id.clone()).collect();
    let mut containers: Vec<_> = stream::iter(ids)
        .map(|id| async move { engine.inspect_container(&id).await })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_filter_map(|c| async move { Ok(c) })
        .try_collect()
        .await?;
    containers.extend(adopted(engine, env, &summaries).await?);
    containers.sort_by(|a, b| a.name.cmp(&b.name));

    let image_ids: BTreeSet<String> = containers.iter().map(|c| c.image_id.clone()).collect();
    let details: BTreeMap<String, _> = stream::iter(image_ids)
        .map(|id| async move { engine.inspect_image(&id).await.map(|d| (id, d)) })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_filter_map(|(id, d)| async move { Ok(d.map(|d| (id, d))) })
        .try_collect()
        .await?;
    for container in &mut containers {
        if let Some(image) = details.get(&container.image_id) {
            with_image(container, image);
        }
    }

    last_exit_codes(engine, env, &mut containers).await;

    let mut index = ImageIndex::default();
    for image in &images {
        index.add(&image.id, &image.repo_tags, &image.repo_digests);
    }
    Ok(HostState {
        containers,
        images: index,
    })
}

/// The containers that the adoption records among `summaries` (this
/// environment's, as listed) name, inspected and taken as their tasks.
/// `drover adopt` cannot relabel a running container, so the list call
/// does not find them; each is asked for by ID. One the record names that
/// is gone, or that carries an environment's label after all, is left out.
pub async fn adopted(
    engine: &dyn Engine,
    env: &str,
    summaries: &[ContainerSummary],
) -> Result<Vec<ObservedContainer>, EngineError> {
    let mut records: BTreeMap<String, Adoption> = BTreeMap::new();
    for summary in summaries {
        for (id, adoption) in Adoption::from_record(env, &summary.labels) {
            records.entry(id).or_insert(adoption);
        }
    }
    stream::iter(records)
        .map(|(id, adoption)| async move {
            let found = engine.inspect_container(&id).await?;
            Ok::<_, EngineError>(found.filter(|c| !c.labels.contains_key(labels::ENV)).map(
                |mut c| {
                    c.adopt(adoption);
                    c
                },
            ))
        })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_filter_map(|c| async move { Ok(c) })
        .try_collect()
        .await
}

/// Gives `container` what its image sets (env, command, entrypoint, user,
/// workdir, labels), so `diff` tells the image's own settings from
/// drover's. [`observe`] does it for what it reads; a reader that inspects
/// containers one at a time (the dashboard's live view) does it too.
pub fn with_image(container: &mut ObservedContainer, image: &ImageDetails) {
    container.image_env = env_map(&image.env);
    container.image_cmd.clone_from(&image.cmd);
    container.image_defaults.clone_from(&image.defaults);
}

/// How far back a restarted container's last `die` event is looked for.
const LAST_EXIT_LOOKBACK: Duration = Duration::from_secs(300);

/// A running container that restarted has no exit code in `inspect` (the
/// engine resets it at each start): take it from its last `die` event, so a
/// crash loop shows why everywhere. One events call per host, and only when
/// some container needs it; without an answer the code stays unknown.
async fn last_exit_codes(engine: &dyn Engine, env: &str, containers: &mut [ObservedContainer]) {
    let needing = containers
        .iter()
        .filter(|c| c.runs.state.is_up() && c.runs.restarts > 0 && c.runs.exit_code.is_none());
    let Some(since) = needing.filter_map(|c| c.runs.started_at).min() else {
        return;
    };
    let since = time::unix_secs(time::before(since, LAST_EXIT_LOOKBACK));
    let Ok(events) = engine.past_events(env, "die", since).await else {
        return;
    };
    let mut last: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for event in &events {
        let Some(code) = event.labels.get("exitCode").and_then(|c| c.parse().ok()) else {
            continue;
        };
        let entry = last
            .entry(event.container.as_str())
            .or_insert((i64::MIN, code));
        if event.time_nano >= entry.0 {
            *entry = (event.time_nano, code);
        }
    }
    for c in containers.iter_mut() {
        if c.runs.state.is_up() && c.runs.restarts > 0 && c.runs.exit_code.is_none() {
            c.runs.exit_code = last.get(c.id.as_str()).map(|(_, code)| *code);
        }
    }
}
