//! `gc`: what drover left behind on each host, found and removed.
//!
//! Rollouts keep stopped generations for `rollback`, jobs dropped from the
//! spec leave containers, replaced images stay on disk, and a container
//! removed by hand without `-v` leaves its anonymous volumes. None of it is
//! state drover needs, and all of it fills disks. `gc` reads each host (its
//! environment's containers as `observe` reads them, and every container,
//! image and volume, to know what is still in use), plans the removals as
//! plain data with a pure function ([`plan_host`], so `--dry-run` and the
//! real run list the same), and applies them: containers first, then the
//! images and volumes they held.
//!
//! It never removes a container without this environment's label, a lock, a
//! named volume (only the 64-hex names Docker gives anonymous ones), or
//! anything a remaining container uses, and it never forces a removal:
//! whatever the engine finds in use at that moment is left and reported,
//! not failed. A job whose lock is held is left alone altogether: someone
//! is changing it, or holding it still on purpose (its kept generations may
//! be what an incident needs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use drover_apply::lock::is_stale;
use drover_engine::{observe, Engine, EngineError, HostContainer, ImageSummary, VolumeSummary};
use drover_plan::views::locks;
use drover_plan::{
    belongs_to, labels, HostObservation, HostState, Observed, ObservedContainer, Role, Scope,
    TaskKey, MARKER_IMAGE, ROLE_LOCK,
};
use drover_spec::ImageRef;
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::json;

use crate::{human_bytes, Connections, Fleet};

/// Removals in flight at once on one host (the engine's own bound applies too).
const REMOVE_CONCURRENCY: usize = 8;

/// One thing `gc` removes, carrying what removing and reporting it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcStep {
    /// A container of a job the spec no longer has, or of no job at all.
    /// `stop`: it runs, and gets this long to stop gracefully.
    Orphan {
        id: String,
        name: String,
        job: Option<String>,
        stop: Option<Duration>,
    },
    /// A kept generation beyond its job's `[update] keep`.
    Generation {
        id: String,
        name: String,
        task: TaskKey,
        keep: u32,
    },
    /// One tag, in a repository this environment uses, of an image no
    /// container uses. `deletes`: it is the image's last reference, so the
    /// image (`bytes`) goes with it.
    Tag {
        reference: String,
        image_id: String,
        bytes: u64,
        deletes: bool,
    },
    /// An image with no tag that no container uses.
    Dangling { image_id: String, bytes: u64 },
    /// An anonymous volume no container uses; its size when the engine measured it.
    Volume { name: String, bytes: Option<u64> },
}

impl GcStep {
    pub fn kind(&self) -> &'static str {
        match self {
            GcStep::Orphan { .. } | GcStep::Generation { .. } => "container",
            GcStep::Tag { .. } | GcStep::Dangling { .. } => "image",
            GcStep::Volume { .. } => "volume",
        }
    }

    /// What it is called: a container or volume name, an image reference or ID.
    pub fn name(&self) -> &str {
        match self {
            GcStep::Orphan { name, .. } | GcStep::Generation { name, .. } => name,
            GcStep::Tag { reference, .. } => reference,
            GcStep::Dangling { image_id, .. } => short_id(image_id),
            GcStep::Volume { name, .. } => name,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            GcStep::Orphan { id, .. } | GcStep::Generation { id, .. } => id,
            GcStep::Tag { image_id, .. } | GcStep::Dangling { image_id, .. } => image_id,
            GcStep::Volume { name, .. } => name,
        }
    }

    /// Why it goes.
    pub fn reason(&self) -> String {
        match self {
            GcStep::Orphan { job: Some(job), .. } => format!("job {job} is not in the spec"),
            GcStep::Orphan { job: None, .. } => "belongs to no job".to_string(),
            GcStep::Generation { task, keep, .. } => {
                format!("kept generation of {task} beyond keep = {keep}")
            }
            GcStep::Tag { deletes: true, .. } => "no container uses it".to_string(),
            GcStep::Tag { deletes: false, .. } => {
                "no container uses it (another reference keeps the image)".to_string()
            }
            GcStep::Dangling { .. } => "dangling: no tag, no container uses it".to_string(),
            GcStep::Volume { .. } => "anonymous, no container uses it".to_string(),
        }
    }

    /// Space it frees, as far as known before removing it.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            GcStep::Orphan { .. } | GcStep::Generation { .. } => None,
            GcStep::Tag { bytes, deletes, .. } => Some(if *deletes { *bytes } else { 0 }),
            GcStep::Dangling { bytes, .. } => Some(*bytes),
            GcStep::Volume { bytes, .. } => *bytes,
        }
    }

    /// Identifies the step across two plans of the same host.
    fn key(&self) -> String {
        format!("{}:{}:{}", self.kind(), self.name(), self.id())
    }

    fn is_container(&self) -> bool {
        matches!(self, GcStep::Orphan { .. } | GcStep::Generation { .. })
    }
}

impl fmt::Display for GcStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())?;
        match self {
            GcStep::Orphan { id, .. } | GcStep::Generation { id, .. } => {
                write!(f, " ({}, {})", short_id(id), self.reason())
            }
            GcStep::Tag { image_id, .. } => {
                write!(f, " ({}, {})", short_id(image_id), self.reason())?;
                match self.bytes() {
                    Some(b) if b > 0 => write!(f, " {}", human_bytes(b)),
                    _ => Ok(()),
                }
            }
            GcStep::Dangling { bytes, .. } => {
                write!(f, " ({}) {}", self.reason(), human_bytes(*bytes))
            }
            GcStep::Volume { bytes, .. } => {
                write!(f, " ({})", self.reason())?;
                match bytes {
                    Some(b) => write!(f, " {}", human_bytes(*b)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What became of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcOutcome {
    /// `--dry-run`, or not confirmed yet.
    Planned,
    /// Removed; `bytes` it freed (0 when another reference kept the image).
    Removed {
        bytes: u64,
    },
    /// The engine found it in use at the moment of removal, or it changed
    /// since it was listed: left as it is.
    Left {
        reason: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcItem {
    pub step: GcStep,
    pub outcome: GcOutcome,
}

impl Serialize for GcItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (status, detail, bytes) = match &self.outcome {
            GcOutcome::Planned => ("planned", None, self.step.bytes()),
            GcOutcome::Removed { bytes } => ("removed", None, Some(*bytes)),
            GcOutcome::Left { reason } => ("left", Some(reason.as_str()), Some(0)),
            GcOutcome::Failed { error } => ("failed", Some(error.as_str()), Some(0)),
        };
        let mut s = serializer.serialize_struct("GcItem", 7)?;
        s.serialize_field("kind", self.step.kind())?;
        s.serialize_field("name", self.step.name())?;
        s.serialize_field("id", self.step.id())?;
        s.serialize_field("reason", &self.step.reason())?;
        s.serialize_field("status", status)?;
        s.serialize_field("bytes", &bytes)?;
        s.serialize_field("detail", &detail)?;
        s.end()
    }
}

/// One host's part of `gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGc {
    pub host: String,
    pub address: String,
    /// Why the host could not be read (the whole message, naming host and address).
    pub error: Option<String>,
    pub items: Vec<GcItem>,
    /// What was left alone on purpose, and why (a locked job).
    pub notes: Vec<String>,
}

impl HostGc {
    /// Space freed (or, planned, to be freed), in bytes, as far as known.
    pub fn reclaimed_bytes(&self) -> u64 {
        self.items
            .iter()
            .map(|i| match &i.outcome {
                GcOutcome::Planned => i.step.bytes().unwrap_or(0),
                GcOutcome::Removed { bytes } => *bytes,
                GcOutcome::Left { .. } | GcOutcome::Failed { .. } => 0,
            })
            .sum()
    }

    pub fn failures(&self) -> impl Iterator<Item = &GcItem> {
        self.items
            .iter()
            .filter(|i| matches!(i.outcome, GcOutcome::Failed { .. }))
    }
}

impl Serialize for HostGc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json!({
            "host": self.host,
            "address": self.address,
            "reachable": self.error.is_none(),
            "error": self.error,
            "items": self.items,
            "notes": self.notes,
            "reclaimed_bytes": self.reclaimed_bytes(),
        })
        .serialize(serializer)
    }
}

/// `gc` over every host this run may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub hosts: Vec<HostGc>,
}

impl GcReport {
    pub fn is_empty(&self) -> bool {
        self.hosts.iter().all(|h| h.items.is_empty())
    }

    /// No host unreachable, no removal failed.
    pub fn succeeded(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.error.is_none() && h.failures().next().is_none())
    }
}

/// What the plan needs to know of the spec.
#[derive(Debug, Clone, Default)]
pub struct GcSpec {
    pub env: String,
    /// Every job of the spec: its `[update] keep` and its image.
    pub jobs: BTreeMap<String, (u32, ImageRef)>,
    pub known_hosts: BTreeSet<String>,
    /// Jobs whose lock is held (and not stale), with who holds it.
    pub locked: BTreeMap<String, String>,
}

/// What `gc` reads of one host.
#[derive(Debug, Clone, Default)]
pub struct HostRead {
    /// This environment's containers, inspected, and the image index.
    pub state: HostState,
    /// Every container on the host, whatever its labels.
    pub all: Vec<HostContainer>,
    pub images: Vec<ImageSummary>,
    pub volumes: Vec<VolumeSummary>,
}

/// The removals on `host`, and what is left alone on purpose. `primary`:
/// this host entry is the first of those sharing its engine; only it
/// removes images, volumes and containers no host entry claims.
pub fn plan_host(
    spec: &GcSpec,
    host: &str,
    primary: bool,
    read: &HostRead,
) -> (Vec<GcStep>, Vec<String>) {
    let mut steps = Vec::new();
    let mut notes = BTreeSet::new();
    let mut kept: BTreeMap<TaskKey, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &read.state.containers {
        if !belongs_to(c, host, &spec.known_hosts)
            || (!primary && c.host_label() != Some(host))
            || c.label(labels::ENV) != Some(spec.env.as_str())
            // Never a lock, whatever else its labels say.
            || c.label(labels::ROLE) == Some(ROLE_LOCK)
        {
            continue;
        }
        if let Some(holder) = c.job().and_then(|j| spec.locked.get(j)) {
            notes.insert(format!(
                "job {} is locked ({holder}): its containers are left alone; run gc again once it is unlocked",
                c.job().unwrap_or_default()
            ));
            continue;
        }
        let job = c.job().filter(|j| spec.jobs.contains_key(*j));
        match (job, c.role(&spec.env)) {
            (None, _) => steps.push(GcStep::Orphan {
                id: c.id.clone(),
                name: c.name.clone(),
                job: c.job().map(str::to_string),
                stop: c.is_running().then_some(c.config.stop_timeout),
            }),
            (Some(_), Role::Kept(key)) => kept.entry(key).or_default().push(c),
            // Strays and unknown containers of a job in the spec are `up`'s to settle.
            (Some(_), _) => {}
        }
    }
    for (task, mut generations) in kept {
        let keep = spec.jobs.get(&task.job).map_or(0, |(keep, _)| *keep);
        generations.sort_by(|a, b| b.deployed_at().cmp(a.deployed_at()));
        for c in generations.into_iter().skip(keep as usize) {
            // A running kept generation is in the middle of something: leave it.
            if !c.is_running() {
                steps.push(GcStep::Generation {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    task: task.clone(),
                    keep,
                });
            }
        }
    }
    if primary {
        let removed: BTreeSet<&str> = steps.iter().map(GcStep::id).collect();
        let remaining: Vec<&HostContainer> = read
            .all
            .iter()
            .filter(|c| !removed.contains(c.id.as_str()))
            .collect();
        steps.extend(image_steps(spec, read, &remaining));
        steps.extend(volume_steps(read, &remaining));
    }
    (steps, notes.into_iter().collect())
}

/// Tags of unused images in this environment's repositories, and dangling images.
fn image_steps(spec: &GcSpec, read: &HostRead, remaining: &[&HostContainer]) -> Vec<GcStep> {
    let mut protected: BTreeSet<&str> = remaining.iter().map(|c| c.image_id.as_str()).collect();
    for (_, image) in spec.jobs.values() {
        if let Some(id) = read.state.images.find(&image.key()) {
            protected.insert(id);
        }
    }
    let marker = read.state.images.tags.get(MARKER_IMAGE).map(String::as_str);
    protected.extend(marker);
    let marker_repository = repository(MARKER_IMAGE);
    let repositories: BTreeSet<String> = spec
        .jobs
        .values()
        .filter_map(|(_, image)| image.repository().map(str::to_string))
        .chain(
            read.state
                .containers
                .iter()
                .filter_map(|c| repository(&c.config.image)),
        )
        .filter(|r| Some(r) != marker_repository.as_ref())
        .collect();

    let mut images: Vec<&ImageSummary> = read.images.iter().collect();
    images.sort_by(|a, b| a.id.cmp(&b.id));
    let mut steps = Vec::new();
    for image in images {
        if protected.contains(image.id.as_str()) {
            continue;
        }
        let tags: Vec<&String> = image
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .collect();
        let bytes = u64::try_from(image.size).unwrap_or(0);
        if tags.is_empty() {
            steps.push(GcStep::Dangling {
                image_id: image.id.clone(),
                bytes,
            });
            continue;
        }
        let ours: Vec<&String> = tags
            .iter()
            .copied()
            .filter(|t| repository(t).is_some_and(|r| repositories.contains(&r)))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let our_repositories: BTreeSet<String> =
            ours.iter().filter_map(|t| repository(t)).collect();
        // Untagging a repository's last tag also drops its digests; a digest
        // of another repository keeps the image (dangling, for the next gc).
        let deletes_at_last = ours.len() == tags.len()
            && image
                .repo_digests
                .iter()
                .filter(|d| d.as_str() != "<none>@<none>")
                .all(|d| repository(d).is_some_and(|r| our_repositories.contains(&r)));
        let last = ours.len() - 1;
        for (i, tag) in ours.into_iter().enumerate() {
            steps.push(GcStep::Tag {
                reference: tag.clone(),
                image_id: image.id.clone(),
                bytes,
                deletes: deletes_at_last && i == last,
            });
        }
    }
    steps
}

/// Anonymous volumes no remaining container mounts.
fn volume_steps(read: &HostRead, remaining: &[&HostContainer]) -> Vec<GcStep> {
    let in_use: BTreeSet<&str> = remaining
        .iter()
        .flat_map(|c| c.volumes.iter().map(String::as_str))
        .collect();
    let mut names: Vec<&str> = read
        .volumes
        .iter()
        .map(|v| v.name.as_str())
        .filter(|name| is_anonymous(name) && !in_use.contains(name))
        .collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| GcStep::Volume {
            name: name.to_string(),
            bytes: None,
        })
        .collect()
}

/// The 64 hex digits Docker names a volume it makes for a container.
pub fn is_anonymous(volume: &str) -> bool {
    volume.len() == 64 && volume.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The repository of a reference, as the engine lists it.
fn repository(reference: &str) -> Option<String> {
    reference
        .parse::<ImageRef>()
        .ok()?
        .repository()
        .map(str::to_string)
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// A host that could not be read, as one message naming it and its address.
fn host_error(host: &str, address: &str, error: &EngineError) -> String {
    if error.is_unreachable() {
        error.to_string()
    } else {
        format!("host {host} ({address}) could not be read: {error}")
    }
}

async fn read_host(engine: &dyn Engine, env: &str) -> Result<HostRead, EngineError> {
    let (state, all, images, volumes) = tokio::try_join!(
        observe(engine, env, &Scope::All),
        engine.list_all_containers(),
        engine.list_images(),
        engine.list_volumes(),
    )?;
    Ok(HostRead {
        state,
        all,
        images,
        volumes,
    })
}

impl Fleet {
    /// Reads every host this run may touch and plans what `gc` removes
    /// there; changes nothing.
    pub async fn gc_plan(&self, connections: &Connections) -> GcReport {
        let env = self.env.name.as_str();
        let reads = join_all(connections.engines.iter().map(|(host, engine)| async move {
            (host.clone(), read_host(engine.as_ref(), env).await)
        }))
        .await;

        let observed = Observed {
            hosts: reads
                .iter()
                .filter_map(|(host, read)| {
                    let read = read.as_ref().ok()?;
                    Some((host.clone(), HostObservation::Reachable(read.state.clone())))
                })
                .collect(),
        };
        let locked = locks(&observed, env, &self.known_hosts())
            .into_iter()
            .filter_map(|(job, held)| {
                let live = held.into_iter().find(|l| !is_stale(l))?;
                let why = if live.reason.is_empty() {
                    live.command
                } else {
                    live.reason
                };
                Some((job, format!("by {} since {}: {why}", live.by, live.at)))
            })
            .collect();
        let spec = GcSpec {
            env: env.to_string(),
            jobs: self
                .env
                .jobs
                .iter()
                .map(|(name, job)| (name.clone(), (job.update.keep, job.image.clone())))
                .collect(),
            known_hosts: self.known_hosts(),
            locked,
        };

        // Host entries sharing one engine: the first of them (by name) also
        // takes what no entry claims, and the images and volumes.
        let mut seen_addresses = BTreeSet::new();
        let mut hosts = Vec::new();
        for (host, read) in reads {
            let address = address_of(self, &host);
            let host_gc = match read {
                Ok(read) => {
                    let primary = seen_addresses.insert(address.clone());
                    let (mut steps, notes) = plan_host(&spec, &host, primary, &read);
                    if let Some(engine) = connections.engines.get(&host) {
                        measure_volumes(engine.as_ref(), &mut steps).await;
                    }
                    HostGc {
                        host,
                        address,
                        error: None,
                        items: steps
                            .into_iter()
                            .map(|step| GcItem {
                                step,
                                outcome: GcOutcome::Planned,
                            })
                            .collect(),
                        notes,
                    }
                }
                Err(e) => HostGc {
                    error: Some(host_error(&host, &address, &e)),
                    host,
                    address,
                    items: Vec::new(),
                    notes: Vec::new(),
                },
            };
            hosts.push(host_gc);
        }
        for (host, error) in &connections.unreachable {
            hosts.push(HostGc {
                host: host.clone(),
                address: address_of(self, host),
                error: Some(host_error(host, &address_of(self, host), error)),
                items: Vec::new(),
                notes: Vec::new(),
            });
        }
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        GcReport { hosts }
    }

    /// Removes what `confirmed` listed and a fresh look still finds
    /// removable: nothing that was not shown, nothing that changed since.
    pub async fn gc_apply(&self, connections: &Connections, confirmed: &GcReport) -> GcReport {
        let mut fresh = self.gc_plan(connections).await;
        let wanted: BTreeMap<&str, BTreeSet<String>> = confirmed
            .hosts
            .iter()
            .map(|h| {
                (
                    h.host.as_str(),
                    h.items.iter().map(|i| i.step.key()).collect(),
                )
            })
            .collect();
        let applied = fresh.hosts.iter_mut().map(|host_gc| {
            let wanted = wanted
                .get(host_gc.host.as_str())
                .cloned()
                .unwrap_or_default();
            let engine = connections.engines.get(&host_gc.host).cloned();
            async move {
                let fresh_keys: BTreeSet<String> =
                    host_gc.items.iter().map(|i| i.step.key()).collect();
                host_gc.items.retain(|i| wanted.contains(&i.step.key()));
                // Listed before, gone or changed since: say so, touch nothing.
                let confirmed_items = confirmed
                    .hosts
                    .iter()
                    .find(|h| h.host == host_gc.host)
                    .map(|h| h.items.clone())
                    .unwrap_or_default();
                for item in confirmed_items {
                    if !fresh_keys.contains(&item.step.key()) {
                        host_gc.items.push(GcItem {
                            step: item.step,
                            outcome: GcOutcome::Left {
                                reason: "changed since it was listed".to_string(),
                            },
                        });
                    }
                }
                if let Some(engine) = engine {
                    apply_host(engine.as_ref(), &mut host_gc.items).await;
                }
            }
        });
        join_all(applied).await;
        fresh
    }
}

/// The address `host` is reached at, as drover.toml gives it.
fn address_of(fleet: &Fleet, host: &str) -> String {
    fleet
        .env
        .hosts
        .get(host)
        .map(|h| h.docker.to_string())
        .unwrap_or_default()
}

/// Fills in volume sizes where the engine has them; without them the
/// removals still go ahead, their size unknown.
async fn measure_volumes(engine: &dyn Engine, steps: &mut [GcStep]) {
    if !steps.iter().any(|s| matches!(s, GcStep::Volume { .. })) {
        return;
    }
    let Ok(sizes) = engine.volume_sizes().await else {
        return;
    };
    for step in steps {
        if let GcStep::Volume { name, bytes } = step {
            *bytes = sizes.get(name.as_str()).copied();
        }
    }
}

/// Containers first (their anonymous volumes go with them), then images,
/// then volumes; each removal's outcome recorded in its item.
async fn apply_host(engine: &dyn Engine, items: &mut [GcItem]) {
    let (containers, rest): (Vec<&mut GcItem>, Vec<&mut GcItem>) = items
        .iter_mut()
        .filter(|i| i.outcome == GcOutcome::Planned)
        .partition(|i| i.step.is_container());
    stream::iter(containers)
        .for_each_concurrent(REMOVE_CONCURRENCY, |item| async move {
            item.outcome = remove(engine, &item.step).await;
        })
        .await;
    // In order: an image's last tag is removed after its others.
    for item in rest {
        item.outcome = remove(engine, &item.step).await;
    }
}

async fn remove(engine: &dyn Engine, step: &GcStep) -> GcOutcome {
    let result = match step {
        GcStep::Orphan { id, stop, .. } => {
            if let Some(timeout) = stop {
                // A graceful stop first; the removal kills whatever is left.
                let _ = engine.stop_container(id, *timeout).await;
            }
            engine.remove_container(id).await.map(|()| 0)
        }
        GcStep::Generation { id, .. } => engine.remove_container(id).await.map(|()| 0),
        GcStep::Tag {
            reference, bytes, ..
        } => engine.remove_image_reference(reference).await.map(|r| {
            if r.deleted.is_empty() {
                0
            } else {
                *bytes
            }
        }),
        GcStep::Dangling { image_id, bytes } => engine
            .remove_image_reference(image_id)
            .await
            .map(|r| if r.deleted.is_empty() { 0 } else { *bytes }),
        GcStep::Volume { name, bytes } => engine
            .remove_volume(name)
            .await
            .map(|()| bytes.unwrap_or(0)),
    };
    match result {
        Ok(bytes) => GcOutcome::Removed { bytes },
        Err(EngineError::Conflict(message)) => GcOutcome::Left {
            reason: format!("the engine refused: {message}"),
        },
        Err(e) => GcOutcome::Failed {
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_plan::{Resources, TaskConfig};

    const ENV: &str = "prod";

    fn config(image: &str) -> TaskConfig {
        TaskConfig {
            image: image.to_string(),
            command: None,
            env: BTreeMap::new(),
            volumes: Vec::new(),
            host_files: Vec::new(),
            memory: None,
            resources: Resources::default(),
            network: "host".to_string(),
            init: true,
            restart: "unless-stopped".to_string(),
            stop_timeout: Duration::from_secs(10),
            log_driver: "local".to_string(),
            log_options: BTreeMap::new(),
            health: None,
            settings: Default::default(),
        }
    }

    fn container(id: &str, name: &str, labels: &[(&str, &str)], state: &str) -> ObservedContainer {
        ObservedContainer {
            id: id.to_string(),
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state: state.to_string(),
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            health: String::new(),
            health_output: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            created: String::new(),
            restarts: 0,
            image_id: format!("sha256:{id}"),
            config: config("reg:5000/app:3"),
            image_env: BTreeMap::new(),
            image_cmd: None,
            image_defaults: Default::default(),
        }
    }

    fn task(id: &str, name: &str, job: &str, at: &str, state: &str) -> ObservedContainer {
        container(
            id,
            name,
            &[
                (labels::ENV, ENV),
                (labels::JOB, job),
                (labels::HOST, "h1"),
                (labels::TASK, "0"),
                (labels::DEPLOYED_AT, at),
            ],
            state,
        )
    }

    fn spec(keep: u32) -> GcSpec {
        GcSpec {
            env: ENV.to_string(),
            jobs: BTreeMap::from([("web".to_string(), (keep, "reg:5000/app:3".parse().unwrap()))]),
            known_hosts: BTreeSet::from(["h1".to_string()]),
            locked: BTreeMap::new(),
        }
    }

    fn host_container(c: &ObservedContainer) -> HostContainer {
        HostContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c.labels.clone(),
            state: c.state.clone(),
            image_id: c.image_id.clone(),
            volumes: Vec::new(),
        }
    }

    fn read(containers: Vec<ObservedContainer>) -> HostRead {
        let all = containers.iter().map(host_container).collect();
        HostRead {
            state: HostState {
                containers,
                images: Default::default(),
            },
            all,
            images: Vec::new(),
            volumes: Vec::new(),
        }
    }

    fn names(steps: &[GcStep]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generations_beyond_keep_go_newest_first_kept() {
        let read = read(vec![
            task("c0", "prod.web.h1.0", "web", "2026-01-04", "running"),
            task("k1", "prod.web.h1.0.kept-k1", "web", "2026-01-03", "exited"),
            task("k2", "prod.web.h1.0.kept-k2", "web", "2026-01-02", "exited"),
            task("k3", "prod.web.h1.0.kept-k3", "web", "2026-01-01", "exited"),
        ]);
        let (steps, notes) = plan_host(&spec(1), "h1", true, &read);
        assert_eq!(
            names(&steps),
            [
                "container prod.web.h1.0.kept-k2 (k2, kept generation of web h1/0 beyond keep = 1)",
                "container prod.web.h1.0.kept-k3 (k3, kept generation of web h1/0 beyond keep = 1)",
            ]
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn containers_of_jobs_gone_go_but_never_a_lock_or_another_environment() {
        let lock = container(
            "l1",
            "prod.gone.h1.lock",
            &[
                (labels::ENV, ENV),
                (labels::JOB, "gone"),
                (labels::HOST, "h1"),
                (labels::ROLE, ROLE_LOCK),
            ],
            "created",
        );
        let other_env = container(
            "o1",
            "staging.gone.h1.0",
            &[(labels::ENV, "staging"), (labels::JOB, "gone")],
            "exited",
        );
        let read = read(vec![
            task("g1", "prod.gone.h1.0", "gone", "2026-01-01", "running"),
            lock,
            other_env,
            container("u1", "stray", &[(labels::ENV, ENV)], "exited"),
        ]);
        let (steps, _) = plan_host(&spec(3), "h1", true, &read);
        assert_eq!(
            names(&steps),
            [
                "container prod.gone.h1.0 (g1, job gone is not in the spec)",
                "container stray (u1, belongs to no job)",
            ]
        );
        assert!(matches!(&steps[0], GcStep::Orphan { stop: Some(_), .. }));
    }

    #[test]
    fn a_locked_job_is_left_alone() {
        let mut spec = spec(0);
        spec.locked
            .insert("web".to_string(), "by a@b since t: x".to_string());
        let read = read(vec![task(
            "k1",
            "prod.web.h1.0.kept-k1",
            "web",
            "2026-01-01",
            "exited",
        )]);
        let (steps, notes) = plan_host(&spec, "h1", true, &read);
        assert!(steps.is_empty());
        assert_eq!(
            notes,
            ["job web is locked (by a@b since t: x): its containers are left alone; run gc again once it is unlocked"]
        );
    }

    fn image(id: &str, tags: &[&str], size: i64) -> ImageSummary {
        ImageSummary {
            id: id.to_string(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: Vec::new(),
            created: 0,
            size,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn unused_tags_of_our_repositories_and_dangling_images_go() {
        let mut read = read(vec![task(
            "c0",
            "prod.web.h1.0",
            "web",
            "2026-01-01",
            "running",
        )]);
        read.images = vec![
            image("sha256:c0", &["reg:5000/app:2"], 10),
            image("sha256:old", &["reg:5000/app:1"], 100),
            image("sha256:two", &["reg:5000/app:0", "other/x:1"], 50),
            image("sha256:foreign", &["postgres:16"], 1000),
            image("sha256:dangling", &["<none>:<none>"], 7),
            image("sha256:spec", &["reg:5000/app:3"], 3),
            image("sha256:marker", &[MARKER_IMAGE], 1),
        ];
        read.state
            .images
            .add("sha256:spec", &["reg:5000/app:3".to_string()], &[]);
        read.state
            .images
            .add("sha256:marker", &[MARKER_IMAGE.to_string()], &[]);
        read.volumes = vec![
            VolumeSummary {
                name: "a".repeat(64),
                ..Default::default()
            },
            VolumeSummary {
                name: "pgdata".to_string(),
                ..Default::default()
            },
        ];
        let (steps, _) = plan_host(&spec(3), "h1", true, &read);
        assert_eq!(
            names(&steps),
            [
                "image dangling (dangling: no tag, no container uses it) 7B".to_string(),
                "image reg:5000/app:1 (old, no container uses it) 100B".to_string(),
                "image reg:5000/app:0 (two, no container uses it (another reference keeps the image))".to_string(),
                format!("volume {} (anonymous, no container uses it)", "a".repeat(64)),
            ]
        );
        // Not the host entry that covers images: none of it.
        let (steps, _) = plan_host(&spec(3), "h1", false, &read);
        assert!(steps.is_empty());
    }

    #[test]
    fn what_a_removed_container_used_goes_with_it() {
        let mut gone = task("g1", "prod.gone.h1.0", "gone", "2026-01-01", "exited");
        gone.config.image = "reg:5000/gone:1".to_string();
        gone.image_id = "sha256:goneimg".to_string();
        let mut read = read(vec![gone]);
        read.all[0].volumes = vec!["b".repeat(64)];
        read.images = vec![image("sha256:goneimg", &["reg:5000/gone:1"], 5)];
        read.volumes = vec![VolumeSummary {
            name: "b".repeat(64),
            ..Default::default()
        }];
        let (steps, _) = plan_host(&spec(3), "h1", true, &read);
        assert_eq!(
            steps.iter().map(GcStep::kind).collect::<Vec<_>>(),
            ["container", "image", "volume"]
        );
    }

    #[tokio::test]
    async fn removals_in_use_are_left_not_failed() {
        let engine =
            drover_engine::fake::FakeEngine::new("h1").with_image("reg:5000/app:1", "sha256:a");
        engine.insert(
            "someone",
            config("reg:5000/app:1"),
            BTreeMap::new(),
            "running",
        );
        let mut items = vec![GcItem {
            step: GcStep::Tag {
                reference: "reg:5000/app:1".to_string(),
                image_id: "sha256:a".to_string(),
                bytes: 1,
                deletes: true,
            },
            outcome: GcOutcome::Planned,
        }];
        apply_host(&engine, &mut items).await;
        assert!(
            matches!(&items[0].outcome, GcOutcome::Left { reason } if reason.contains("a container is using its image")),
            "{:?}",
            items[0].outcome
        );
    }
}
