//! `gc`: what drover left behind on each host, found and removed.
//!
//! Rollouts keep stopped generations for `rollback`, jobs dropped from the
//! spec leave containers, replaced images stay on disk, and a container
//! removed by hand without `-v` leaves its anonymous volumes. None of it is
//! state drover needs, and all of it fills disks. `gc` reads each host (its
//! environment's containers as `observe` reads them, and every container,
//! image and volume, to know what is still in use), asks the registry about
//! the images it would remove, plans the removals as plain data with a pure
//! function ([`plan_host`], so `--dry-run` and the real run list the same),
//! and applies them: containers first, then the images and volumes they held.
//!
//! Nothing goes unless it is provably this environment's leftover:
//!
//! - a container only with this environment's `drover.env` label (or
//!   adopted by it, `drover adopt`), and never a lock; kept generations as
//!   [`drover_plan::retention`] says, the one rule the executor's pruning
//!   after a rollout also asks (an adopted generation kept aside carries no
//!   label the executor lists, so `gc` is what removes it); an adoption
//!   record once none of the containers it names is left; one-off
//!   containers (`drover run`'s left behind, release records beyond keep)
//!   as [`drover_plan::retention::one_offs`] says, the rule a release
//!   prunes its records by;
//! - an image tag only in a repository this environment uses, when no
//!   container of any kind on the host uses the image, and the registry
//!   still holds that tag as this very image (so it can be pulled again);
//!   an untagged image only by a digest of such a repository that the
//!   registry still holds. A locally built image, or one of another
//!   registry, is someone else's to remove;
//! - a volume only when the engine marks it anonymous
//!   ([`drover_engine::is_anonymous_volume`]: a name alone proves nothing),
//!   (an engine before Docker 23.0 marks none: [`unproven_volumes`] then
//!   only names them)
//!   and no container mounts it.
//!
//! The space reported is what the disk gets back: an image's own layers
//! (the engine's unique size), not the layers other images share, and
//! nothing for a tag whose image another reference keeps.
//!
//! It never forces a removal: whatever the engine finds in use at that
//! moment is left and reported, not failed. A job whose lock is held is
//! left alone altogether: someone is changing it, or holding it still on
//! purpose (its kept generations may be what an incident needs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use drover_apply::lock::is_stale;
use drover_engine::{observe, Engine, EngineError, HostContainer, ImageSummary, VolumeSummary};
use drover_plan::retention::{self, Expired, Generation, OneOff};
use drover_plan::views::locks;
use drover_plan::{
    belongs_to, labels, Adoption, HostObservation, HostState, Observed, ObservedContainer,
    OneOffKind, Role, Scope, TaskKey, MARKER_IMAGE, ROLE_LOCK,
};
use drover_registry::{RegistryClient, TAG_INFO_CONCURRENCY};
use drover_spec::ImageRef;
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::json;

use crate::{human_bytes, Connections, Fleet};

/// Removals in flight at once on one host (the engine's own bound applies too).
const REMOVE_CONCURRENCY: usize = 8;
/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// An adoption record (`drover adopt`) none of whose containers exists any more.
    SpentRecord {
        id: String,
        name: String,
        job: String,
    },
    /// A set-aside generation that retention says goes.
    Generation {
        id: String,
        name: String,
        task: TaskKey,
        why: Expired,
    },
    /// A one-off container of a job (`drover run`, a release record) that
    /// retention says goes. `stop`: it runs, and gets this long to stop.
    OneOff {
        id: String,
        name: String,
        job: String,
        kind: OneOffKind,
        why: Expired,
        stop: Option<Duration>,
    },
    /// One tag, in a repository this environment uses, of an image no
    /// container uses, that the registry still holds. `deletes`: it is the
    /// image's last reference, so the image goes with it, freeing `bytes`
    /// (its own layers, when the engine measured them).
    Tag {
        reference: String,
        image_id: String,
        bytes: Option<u64>,
        deletes: bool,
    },
    /// An image with no tag that no container uses, known only by digests
    /// of this environment's repositories, one of which the registry holds.
    Dangling {
        image_id: String,
        bytes: Option<u64>,
    },
    /// An anonymous volume no container uses; its size when the engine measured it.
    Volume { name: String, bytes: Option<u64> },
}

impl GcStep {
    pub fn kind(&self) -> &'static str {
        match self {
            GcStep::Orphan { .. }
            | GcStep::Generation { .. }
            | GcStep::SpentRecord { .. }
            | GcStep::OneOff { .. } => "container",
            GcStep::Tag { .. } | GcStep::Dangling { .. } => "image",
            GcStep::Volume { .. } => "volume",
        }
    }

    /// What it is called: a container or volume name, an image reference or ID.
    pub fn name(&self) -> &str {
        match self {
            GcStep::Orphan { name, .. }
            | GcStep::Generation { name, .. }
            | GcStep::SpentRecord { name, .. }
            | GcStep::OneOff { name, .. } => name,
            GcStep::Tag { reference, .. } => reference,
            GcStep::Dangling { image_id, .. } => short_id(image_id),
            GcStep::Volume { name, .. } => name,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            GcStep::Orphan { id, .. }
            | GcStep::Generation { id, .. }
            | GcStep::SpentRecord { id, .. }
            | GcStep::OneOff { id, .. } => id,
            GcStep::Tag { image_id, .. } | GcStep::Dangling { image_id, .. } => image_id,
            GcStep::Volume { name, .. } => name,
        }
    }

    /// Why it goes.
    pub fn reason(&self) -> String {
        match self {
            GcStep::Orphan { job: Some(job), .. } => format!("job {job} is not in the spec"),
            GcStep::Orphan { job: None, .. } => "belongs to no job".to_string(),
            GcStep::SpentRecord { job, .. } => {
                format!("adoption record of job {job}: none of its containers exists any more")
            }
            GcStep::Generation {
                task,
                why: why @ Expired::BeyondKeep { .. },
                ..
            } => format!("kept generation of {task} {why}"),
            GcStep::Generation {
                task,
                why: why @ Expired::OlderFailure { .. },
                ..
            } => format!("failed generation of {task}, {why}"),
            GcStep::Generation { task, why, .. } => format!("generation of {task}: {why}"),
            GcStep::OneOff { job, kind, why, .. } => format!("{kind} of job {job}: {why}"),
            GcStep::Tag { deletes: true, .. } => {
                "no container uses it, the registry has it".to_string()
            }
            GcStep::Tag { deletes: false, .. } => {
                "no container uses it, the registry has it (another reference keeps the image)"
                    .to_string()
            }
            GcStep::Dangling { .. } => {
                "dangling: no tag, no container uses it, the registry has it".to_string()
            }
            GcStep::Volume { .. } => "anonymous, no container uses it".to_string(),
        }
    }

    /// Space it frees, as far as known before removing it.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            GcStep::Orphan { .. }
            | GcStep::Generation { .. }
            | GcStep::SpentRecord { .. }
            | GcStep::OneOff { .. } => None,
            GcStep::Tag { bytes, deletes, .. } => {
                if *deletes {
                    *bytes
                } else {
                    Some(0)
                }
            }
            GcStep::Dangling { bytes, .. } => *bytes,
            GcStep::Volume { bytes, .. } => *bytes,
        }
    }

    /// Identifies the step across two plans of the same host.
    fn key(&self) -> String {
        format!("{}:{}:{}", self.kind(), self.name(), self.id())
    }

    fn is_container(&self) -> bool {
        matches!(
            self,
            GcStep::Orphan { .. }
                | GcStep::Generation { .. }
                | GcStep::SpentRecord { .. }
                | GcStep::OneOff { .. }
        )
    }
}

impl fmt::Display for GcStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())?;
        match self {
            GcStep::Orphan { id, .. }
            | GcStep::Generation { id, .. }
            | GcStep::SpentRecord { id, .. }
            | GcStep::OneOff { id, .. } => {
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
                write!(f, " ({})", self.reason())?;
                match bytes {
                    Some(b) => write!(f, " {}", human_bytes(*b)),
                    None => Ok(()),
                }
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

/// What the registry says of one reference a host lists (`reg:5000/app:1`,
/// `reg:5000/app@sha256:…`), asked once per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InRegistry {
    /// It holds it: the manifest's digest, and for a tag the image ID (the
    /// config digest) the tag names there now.
    Holds {
        digest: String,
        image_id: Option<String>,
    },
    /// It answered that it holds no such tag or manifest.
    Missing,
    /// It could not be asked; why, in words for a note.
    Unknown(String),
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
    /// The registry's answers, by reference as the engine lists it. A
    /// reference with no answer yet is a [`HostPlan::questions`] entry.
    pub registry: BTreeMap<String, InRegistry>,
    /// One-off containers (by ID) whose drover process is provably gone.
    pub abandoned: BTreeSet<String>,
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

/// One host's removals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPlan {
    pub steps: Vec<GcStep>,
    /// What is left alone on purpose, and why.
    pub notes: Vec<String>,
    /// References the registry must be asked about before their images can
    /// be planned; none once [`GcSpec::registry`] answers them all.
    pub questions: BTreeSet<String>,
}

/// The removals on `host`, and what is left alone on purpose. `primary`:
/// this host entry is the first of those sharing its engine; only it
/// removes images, volumes and containers no host entry claims.
pub fn plan_host(spec: &GcSpec, host: &str, primary: bool, read: &HostRead) -> HostPlan {
    let mut steps = Vec::new();
    let mut notes = BTreeSet::new();
    let mut kept: BTreeMap<TaskKey, Vec<&ObservedContainer>> = BTreeMap::new();
    let mut one_offs: BTreeMap<(String, String), Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &read.state.containers {
        if !belongs_to(c, host, &spec.known_hosts)
            || (!primary && c.host_label() != Some(host))
            || c.env() != Some(spec.env.as_str())
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
            // Kept generations, and the evidence of failed rollouts.
            (Some(_), Role::Kept(key) | Role::Failed(key)) => kept.entry(key).or_default().push(c),
            (Some(job), Role::AdoptionRecord { .. }) => {
                let recorded: Vec<String> = Adoption::from_record(&spec.env, &c.labels)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                if !recorded
                    .iter()
                    .any(|id| read.all.iter().any(|other| &other.id == id))
                {
                    steps.push(GcStep::SpentRecord {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        job: job.to_string(),
                    });
                }
            }
            (Some(_), Role::OneOff { job, host, .. }) => {
                one_offs.entry((job, host)).or_default().push(c);
            }
            // Strays and unknown containers of a job in the spec are `up`'s to settle.
            (Some(_), _) => {}
        }
    }
    for (task, containers) in kept {
        let keep = spec.jobs.get(&task.job).map_or(0, |(keep, _)| *keep);
        let (aside, failed): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = containers
            .iter()
            .partition(|c| matches!(c.role(&spec.env), Role::Kept(_)));
        let current = read
            .state
            .containers
            .iter()
            .find(|c| c.role(&spec.env) == Role::Current(task.clone()));
        let ranks = retention::succession(
            current.and_then(ObservedContainer::replaces),
            aside.iter().map(|c| (c.id.as_str(), c.replaces())),
        );
        let kept_generations: Vec<Generation> = aside
            .iter()
            .map(|c| generation(c, ranks.get(c.id.as_str()).copied()))
            .collect();
        let failed_generations: Vec<Generation> =
            failed.iter().map(|c| generation(c, None)).collect();
        for removal in retention::expired(&kept_generations, &failed_generations, keep) {
            if let Some(c) = containers.iter().find(|c| c.id == removal.id) {
                steps.push(GcStep::Generation {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    task: task.clone(),
                    why: removal.why,
                });
            }
        }
    }
    for ((job, _), containers) in one_offs {
        let keep = spec.jobs.get(&job).map_or(0, |(keep, _)| *keep);
        let records: Vec<OneOff> = containers
            .iter()
            .filter_map(|c| match c.role(&spec.env) {
                Role::OneOff { kind, .. } => Some(OneOff {
                    id: &c.id,
                    kind,
                    created: c.deployed_at(),
                    state: c.state(),
                    holder_gone: spec.abandoned.contains(&c.id),
                }),
                _ => None,
            })
            .collect();
        for removal in retention::one_offs(&records, keep) {
            let Some(c) = containers.iter().find(|c| c.id == removal.id) else {
                continue;
            };
            let Role::OneOff { kind, .. } = c.role(&spec.env) else {
                continue;
            };
            steps.push(GcStep::OneOff {
                id: c.id.clone(),
                name: c.name.clone(),
                job: job.clone(),
                kind,
                why: removal.why,
                stop: c.is_running().then_some(c.config.stop_timeout),
            });
        }
    }
    let mut questions = BTreeSet::new();
    if primary {
        let removed: BTreeSet<&str> = steps.iter().map(GcStep::id).collect();
        let remaining: Vec<&HostContainer> = read
            .all
            .iter()
            .filter(|c| !removed.contains(c.id.as_str()))
            .collect();
        let images = image_steps(spec, read, &remaining);
        steps.extend(images.steps);
        questions = images.questions;
        notes.extend(images.unknown.into_iter().map(|(why, count)| {
            format!(
                "{count} unused image reference(s) of this environment's repositories left: {why}"
            )
        }));
        steps.extend(volume_steps(read, &remaining));
    }
    HostPlan {
        steps,
        notes: notes.into_iter().collect(),
        questions,
    }
}

/// A set-aside container as the retention rule reads it.
fn generation(c: &ObservedContainer, rank: Option<usize>) -> Generation<'_> {
    Generation {
        id: &c.id,
        rank,
        deployed_at: c.deployed_at(),
        state: c.state(),
    }
}

#[derive(Default)]
struct ImagePlan {
    steps: Vec<GcStep>,
    questions: BTreeSet<String>,
    /// Why the registry could not be asked → how many references that left.
    unknown: BTreeMap<String, usize>,
}

impl ImagePlan {
    /// The registry's answer for `reference`, or a question for it.
    fn answer<'s>(&mut self, spec: &'s GcSpec, reference: &str) -> Option<&'s InRegistry> {
        let answer = spec.registry.get(reference);
        match answer {
            None => {
                self.questions.insert(reference.to_string());
            }
            Some(InRegistry::Unknown(why)) => {
                *self.unknown.entry(why.clone()).or_default() += 1;
            }
            Some(_) => {}
        }
        answer
    }
}

/// Tags in this environment's repositories of images no container uses,
/// that the registry holds as the same image; untagged images known by
/// such repositories' digests that the registry holds.
fn image_steps(spec: &GcSpec, read: &HostRead, remaining: &[&HostContainer]) -> ImagePlan {
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
    let ours = |reference: &str| repository(reference).is_some_and(|r| repositories.contains(&r));

    let mut images: Vec<&ImageSummary> = read.images.iter().collect();
    images.sort_by(|a, b| a.id.cmp(&b.id));
    let mut plan = ImagePlan::default();
    for image in images {
        if protected.contains(image.id.as_str()) {
            continue;
        }
        let tags: Vec<&String> = image
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .collect();
        let digests: Vec<&String> = image
            .repo_digests
            .iter()
            .filter(|d| d.as_str() != "<none>@<none>")
            .collect();
        if tags.is_empty() {
            // Known only by digests, all of them ours: removing it by ID
            // takes every one of them, so none may be someone else's.
            if digests.is_empty() || !digests.iter().all(|d| ours(d)) {
                continue;
            }
            let mut held = false;
            for digest in &digests {
                held |= matches!(plan.answer(spec, digest), Some(InRegistry::Holds { .. }));
            }
            if held {
                plan.steps.push(GcStep::Dangling {
                    image_id: image.id.clone(),
                    bytes: None,
                });
            }
            continue;
        }
        let mut removable: Vec<&String> = Vec::new();
        for tag in tags.iter().copied().filter(|t| ours(t)) {
            // The tag pulled again gives back this image: its manifest is
            // one this image was pulled or pushed as, or its config is this image.
            let same_image = match plan.answer(spec, tag) {
                Some(InRegistry::Holds { digest, image_id }) => {
                    let by_digest = repository(tag).map(|r| format!("{r}@{digest}"));
                    image_id.as_deref() == Some(image.id.as_str())
                        || by_digest.is_some_and(|d| digests.iter().any(|own| **own == d))
                }
                _ => false,
            };
            if same_image {
                removable.push(tag);
            }
        }
        if removable.is_empty() {
            continue;
        }
        let removable_repositories: BTreeSet<String> =
            removable.iter().filter_map(|t| repository(t)).collect();
        // Untagging a repository's last tag also drops its digests; a
        // digest of another repository keeps the image (dangling).
        let deletes_at_last = removable.len() == tags.len()
            && digests
                .iter()
                .all(|d| repository(d).is_some_and(|r| removable_repositories.contains(&r)));
        let last = removable.len() - 1;
        for (i, tag) in removable.into_iter().enumerate() {
            plan.steps.push(GcStep::Tag {
                reference: tag.clone(),
                image_id: image.id.clone(),
                bytes: None,
                deletes: deletes_at_last && i == last,
            });
        }
    }
    plan
}

/// Volumes the engine marks anonymous that no remaining container mounts.
fn volume_steps(read: &HostRead, remaining: &[&HostContainer]) -> Vec<GcStep> {
    let in_use: BTreeSet<&str> = remaining
        .iter()
        .flat_map(|c| c.volumes.iter().map(String::as_str))
        .collect();
    let mut names: Vec<&str> = read
        .volumes
        .iter()
        .filter(|v| v.anonymous && !in_use.contains(v.name.as_str()))
        .map(|v| v.name.as_str())
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

/// Takes out of `steps` the volumes an engine before Docker 23.0 cannot
/// prove anonymous: it marks none, and a volume with a 64-hex name and no
/// labels may have been named by hand, data and all (even one the engine
/// measures at 0 bytes may hold empty marker files). A note names each and
/// how to remove it by hand. One that a container this gc removes mounts
/// stays listed: the engine removes that container's anonymous volumes
/// with it (`docker rm -v`), knowing which they are.
fn unproven_volumes(host: &str, read: &HostRead, steps: &mut Vec<GcStep>) -> Vec<String> {
    let removed: BTreeSet<&str> = steps
        .iter()
        .filter(|s| s.is_container())
        .map(GcStep::id)
        .collect();
    let going_with_a_container: BTreeSet<&str> = read
        .all
        .iter()
        .filter(|c| removed.contains(c.id.as_str()))
        .flat_map(|c| c.volumes.iter().map(String::as_str))
        .collect();
    let unproven: BTreeSet<String> = read
        .volumes
        .iter()
        .filter(|v| v.anonymous && !v.by_mark && !going_with_a_container.contains(v.name.as_str()))
        .map(|v| v.name.clone())
        .collect();
    let mut notes = Vec::new();
    steps.retain(|step| match step {
        GcStep::Volume { name, bytes } if unproven.contains(name.as_str()) => {
            let held = match bytes {
                Some(n) => format!(" ({})", crate::human_bytes(*n)),
                None => String::new(),
            };
            notes.push(format!(
                "volume {name}{held}: no container uses it and it has no name or label, but this engine (before Docker 23.0) does not mark the volumes it makes for containers, so it may be one named by hand: left alone; if it is a leftover, `docker volume rm {name}` on host {host}"
            ));
            false
        }
        _ => true,
    });
    notes
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
            at: drover_plan::time::now(),
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
        let mut spec = GcSpec {
            env: env.to_string(),
            jobs: self
                .env
                .jobs
                .iter()
                .map(|(name, job)| (name.clone(), (job.update.keep, job.image.clone())))
                .collect(),
            known_hosts: self.known_hosts(),
            locked,
            registry: BTreeMap::new(),
            abandoned: abandoned(&observed, env),
        };

        // Host entries sharing one engine: the first of them (by name) also
        // takes what no entry claims, and the images and volumes.
        let mut seen_addresses = BTreeSet::new();
        let mut readable = Vec::new();
        let mut hosts = Vec::new();
        for (host, read) in reads {
            let address = address_of(self, &host);
            match read {
                Ok(read) => {
                    let primary = seen_addresses.insert(address.clone());
                    readable.push((host, address, primary, read));
                }
                Err(e) => hosts.push(HostGc {
                    error: Some(host_error(&host, &address, &e)),
                    host,
                    address,
                    items: Vec::new(),
                    notes: Vec::new(),
                }),
            }
        }
        // What the registry must be asked before images can be planned,
        // each reference once for all hosts.
        let questions = readable
            .iter()
            .flat_map(|(host, _, primary, read)| plan_host(&spec, host, *primary, read).questions)
            .collect();
        spec.registry = self.ask_registry(questions).await;
        let spec = &spec;
        let planned = join_all(readable.into_iter().map(|(host, address, primary, read)| {
            let engine = connections.engines.get(&host).cloned();
            async move {
                let HostPlan {
                    mut steps,
                    mut notes,
                    ..
                } = plan_host(spec, &host, primary, &read);
                if let Some(engine) = engine {
                    measure(engine.as_ref(), &mut steps).await;
                }
                notes.extend(unproven_volumes(&host, &read, &mut steps));
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
        }))
        .await;
        hosts.extend(planned);
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

impl Fleet {
    /// What drover.toml's `[registry]` says of each reference. One of
    /// another registry is not asked: drover has credentials for its own
    /// registry only, and another's answer proves nothing drover relies on.
    async fn ask_registry(&self, references: BTreeSet<String>) -> BTreeMap<String, InRegistry> {
        if references.is_empty() {
            return BTreeMap::new();
        }
        let client = match &self.env.registry {
            None => Err(
                "drover.toml has no [registry] to ask whether an image can be pulled again"
                    .to_string(),
            ),
            Some(registry) => {
                RegistryClient::with_credentials_from_environment(&registry.url, REGISTRY_TIMEOUT)
                    .map_err(|e| format!("registry {} could not be asked: {e}", registry.url))
            }
        };
        let client = &client;
        stream::iter(references)
            .map(|reference| async move {
                let answer = match client {
                    Ok(client) => ask(client, &reference).await,
                    Err(why) => InRegistry::Unknown(why.clone()),
                };
                (reference, answer)
            })
            .buffer_unordered(TAG_INFO_CONCURRENCY)
            .collect()
            .await
    }
}

/// Whether the registry holds `reference` (a tag or a digest, as a host
/// lists it), and as which image.
async fn ask(client: &RegistryClient, reference: &str) -> InRegistry {
    // As the host lists it: parsed here, by the one grammar of references.
    let Ok(image) = reference.parse::<drover_spec::ImageRef>() else {
        return InRegistry::Unknown(format!(
            "{reference} is not an image reference drover reads"
        ));
    };
    let (Some(host), Some(repository)) = (image.registry(), image.path()) else {
        return InRegistry::Unknown(format!("{reference} names no repository"));
    };
    let name = image.digest().or(image.tag()).map(str::to_string);
    if host != client.registry_host() {
        return InRegistry::Unknown(format!(
            "in registry {host}, and drover asks only its [registry] ({}) whether an image can be pulled again",
            client.registry_host()
        ));
    }
    let Some(name) = name else {
        return InRegistry::Unknown(format!("{reference} names no tag or digest"));
    };
    let answer = if name.contains(':') {
        client.find_manifest(repository, &name).await.map(|found| {
            found.map_or(InRegistry::Missing, |digest| InRegistry::Holds {
                digest,
                image_id: None,
            })
        })
    } else {
        match client.tag_info(repository, &name).await {
            Ok(info) => Ok(match info.digest {
                Some(digest) => InRegistry::Holds {
                    digest,
                    image_id: info.config_digest,
                },
                None => InRegistry::Missing,
            }),
            Err(e) if e.is_not_found() => Ok(InRegistry::Missing),
            Err(e) => Err(e),
        }
    };
    answer
        .unwrap_or_else(|e| InRegistry::Unknown(format!("registry {host} could not be asked: {e}")))
}

/// The one-off containers whose drover process is provably gone, by the
/// rule a stale lock is told by ([`is_stale`]): its process, on this machine, no longer runs.
fn abandoned(observed: &Observed, env: &str) -> BTreeSet<String> {
    observed
        .reachable()
        .flat_map(|(_, state)| &state.containers)
        .filter_map(|c| match c.role(env) {
            Role::OneOff { job, host, .. } => is_stale(
                &drover_plan::views::LockInfo::from_container(c, &job, &host),
            )
            .then(|| c.id.clone()),
            _ => None,
        })
        .collect()
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

/// Fills in what removing each image and volume gives back, where the
/// engine measured it; without it the removals still go ahead, their size
/// unknown.
async fn measure(engine: &dyn Engine, steps: &mut [GcStep]) {
    let sized = |s: &GcStep| {
        matches!(
            s,
            GcStep::Tag { deletes: true, .. } | GcStep::Dangling { .. } | GcStep::Volume { .. }
        )
    };
    if !steps.iter().any(sized) {
        return;
    }
    let Ok(space) = engine.item_space().await else {
        return;
    };
    for step in steps {
        match step {
            GcStep::Tag {
                image_id, bytes, ..
            }
            | GcStep::Dangling { image_id, bytes } => {
                *bytes = space.images.get(image_id.as_str()).copied();
            }
            GcStep::Volume { name, bytes } => {
                *bytes = space.volumes.get(name.as_str()).copied();
            }
            GcStep::Orphan { .. }
            | GcStep::Generation { .. }
            | GcStep::SpentRecord { .. }
            | GcStep::OneOff { .. } => {}
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
        GcStep::Orphan { id, stop, .. } | GcStep::OneOff { id, stop, .. } => {
            if let Some(timeout) = stop {
                // A graceful stop first; the removal kills whatever is left.
                let _ = engine.stop_container(id, *timeout).await;
            }
            engine.remove_container(id).await.map(|()| 0)
        }
        GcStep::Generation { id, .. } | GcStep::SpentRecord { id, .. } => {
            engine.remove_container(id).await.map(|()| 0)
        }
        // Space is freed only when the image itself goes.
        GcStep::Tag {
            reference, bytes, ..
        } => engine.remove_image_reference(reference).await.map(|r| {
            if r.deleted.is_empty() {
                0
            } else {
                bytes.unwrap_or(0)
            }
        }),
        GcStep::Dangling { image_id, bytes } => {
            engine.remove_image_reference(image_id).await.map(|r| {
                if r.deleted.is_empty() {
                    0
                } else {
                    bytes.unwrap_or(0)
                }
            })
        }
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
            runs: drover_plan::Runs {
                state: state.parse().unwrap_or_default(),
                ..drover_plan::Runs::default()
            },
            error: String::new(),
            created: None,
            image_id: format!("sha256:{id}"),
            config: config("reg:5000/app:3"),
            image_env: BTreeMap::new(),
            image_cmd: None,
            image_defaults: Default::default(),
            adopted: None,
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
            registry: BTreeMap::new(),
            abandoned: BTreeSet::new(),
        }
    }

    fn host_container(c: &ObservedContainer) -> HostContainer {
        HostContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c.labels.clone(),
            state: c.state().to_string(),
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
            task(
                "c0",
                "prod.web.h1.0",
                "web",
                "2026-01-04T00:00:00Z",
                "running",
            ),
            task(
                "k1",
                "prod.web.h1.0.kept-k1",
                "web",
                "2026-01-03T00:00:00Z",
                "exited",
            ),
            task(
                "k2",
                "prod.web.h1.0.kept-k2",
                "web",
                "2026-01-02T00:00:00Z",
                "exited",
            ),
            task(
                "k3",
                "prod.web.h1.0.kept-k3",
                "web",
                "2026-01-01T00:00:00Z",
                "exited",
            ),
        ]);
        let plan = plan_host(&spec(1), "h1", true, &read);
        assert_eq!(
            names(&plan.steps),
            [
                "container prod.web.h1.0.kept-k2 (k2, kept generation of web h1/0 beyond keep = 1)",
                "container prod.web.h1.0.kept-k3 (k3, kept generation of web h1/0 beyond keep = 1)",
            ]
        );
        assert!(plan.notes.is_empty() && plan.questions.is_empty());
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
            task(
                "g1",
                "prod.gone.h1.0",
                "gone",
                "2026-01-01T00:00:00Z",
                "running",
            ),
            lock,
            other_env,
            container("u1", "stray", &[(labels::ENV, ENV)], "exited"),
        ]);
        let steps = plan_host(&spec(3), "h1", true, &read).steps;
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
            "2026-01-01T00:00:00Z",
            "exited",
        )]);
        let plan = plan_host(&spec, "h1", true, &read);
        assert!(plan.steps.is_empty());
        assert_eq!(
            plan.notes,
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

    fn image_with_digests(id: &str, tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            ..image(id, tags, 1000)
        }
    }

    /// A manifest digest, `sha256:` and 64 times `n`.
    fn dg(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    fn holds(digest: &str, image_id: Option<&str>) -> InRegistry {
        InRegistry::Holds {
            digest: digest.to_string(),
            image_id: image_id.map(str::to_string),
        }
    }

    fn volume(name: &str, anonymous: bool) -> VolumeSummary {
        VolumeSummary {
            name: name.to_string(),
            anonymous,
            ..Default::default()
        }
    }

    /// Plans as the fleet does: once for the questions, then with every
    /// question answered from `registry` (unanswered: not asked, unknown).
    fn plan_answered(
        mut spec: GcSpec,
        read: &HostRead,
        registry: &[(&str, InRegistry)],
    ) -> HostPlan {
        let questions = plan_host(&spec, "h1", true, read).questions;
        let registry: BTreeMap<&str, &InRegistry> = registry.iter().map(|(r, a)| (*r, a)).collect();
        spec.registry = questions
            .into_iter()
            .map(|q| {
                let answer = registry
                    .get(q.as_str())
                    .map_or(InRegistry::Unknown("not asked".to_string()), |a| {
                        (*a).clone()
                    });
                (q, answer)
            })
            .collect();
        let plan = plan_host(&spec, "h1", true, read);
        assert!(plan.questions.is_empty(), "{:?}", plan.questions);
        plan
    }

    #[test]
    fn only_tags_the_registry_holds_as_the_same_image_go() {
        let mut read = read(vec![task(
            "c0",
            "prod.web.h1.0",
            "web",
            "2026-01-01T00:00:00Z",
            "running",
        )]);
        read.images = vec![
            // Used by the running task: never asked about.
            image_with_digests(
                "sha256:c0",
                &["reg:5000/app:2"],
                &[&format!("reg:5000/app@{}", dg('2'))],
            ),
            // Pulled: the registry holds the tag as this image's manifest.
            image_with_digests(
                "sha256:old",
                &["reg:5000/app:1"],
                &[&format!("reg:5000/app@{}", dg('1'))],
            ),
            // Built or tagged here, never pushed: the registry lacks it.
            image("sha256:local", &["reg:5000/app:local"], 50),
            // Re-pushed since: the registry's tag is another image now.
            image_with_digests(
                "sha256:stale",
                &["reg:5000/app:0"],
                &[&format!("reg:5000/app@{}", dg('0'))],
            ),
            // Loaded, not pulled: no digest, but the registry's config is this image.
            image("sha256:loaded", &["reg:5000/app:9"], 50),
            // One tag the registry holds, one it lacks: only the first goes, freeing nothing.
            image_with_digests(
                "sha256:two",
                &["reg:5000/app:5", "reg:5000/app:mine"],
                &[&format!("reg:5000/app@{}", dg('5'))],
            ),
            image("sha256:foreign", &["postgres:16"], 1000),
            image("sha256:spec", &["reg:5000/app:3"], 3),
        ];
        read.state
            .images
            .add("sha256:spec", &["reg:5000/app:3".to_string()], &[]);
        let plan = plan_answered(
            spec(3),
            &read,
            &[
                ("reg:5000/app:1", holds(&dg('1'), Some("sha256:other"))),
                ("reg:5000/app:local", InRegistry::Missing),
                ("reg:5000/app:0", holds("sha256:dnew", Some("sha256:new"))),
                ("reg:5000/app:9", holds(&dg('9'), Some("sha256:loaded"))),
                ("reg:5000/app:5", holds(&dg('5'), None)),
                ("reg:5000/app:mine", InRegistry::Missing),
            ],
        );
        assert_eq!(
            names(&plan.steps),
            [
                "image reg:5000/app:9 (loaded, no container uses it, the registry has it)",
                "image reg:5000/app:1 (old, no container uses it, the registry has it)",
                "image reg:5000/app:5 (two, no container uses it, the registry has it (another reference keeps the image))",
            ]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn the_registry_is_asked_before_any_image_goes_and_an_unknown_answer_keeps_it() {
        let mut read = read(Vec::new());
        read.images = vec![
            image_with_digests(
                "sha256:old",
                &["reg:5000/app:1"],
                &[&format!("reg:5000/app@{}", dg('1'))],
            ),
            image("sha256:foreign", &["postgres:16"], 1000),
        ];
        let first = plan_host(&spec(3), "h1", true, &read);
        assert!(first.steps.is_empty());
        assert_eq!(
            first.questions,
            BTreeSet::from(["reg:5000/app:1".to_string()]),
            "only this environment's repositories are asked about"
        );
        let plan = plan_answered(spec(3), &read, &[]);
        assert!(plan.steps.is_empty());
        assert_eq!(
            plan.notes,
            ["1 unused image reference(s) of this environment's repositories left: not asked"]
        );
    }

    #[test]
    fn an_untagged_image_goes_only_by_a_digest_of_ours_the_registry_holds() {
        let mut read = read(Vec::new());
        read.images = vec![
            // Lost its tag to a newer pull of the same tag.
            image_with_digests(
                "sha256:a-repulled",
                &[],
                &[&format!("reg:5000/app@{}", dg('1'))],
            ),
            // Built or committed here: nothing says whose it is.
            image("sha256:b-built", &["<none>:<none>"], 7),
            // Also known in another repository.
            image_with_digests(
                "sha256:c-shared",
                &[],
                &[
                    &format!("reg:5000/app@{}", dg('2')),
                    &format!("other/x@{}", dg('3')),
                ],
            ),
            // The registry no longer has it: it could not be pulled again.
            image_with_digests(
                "sha256:d-gone",
                &[],
                &[&format!("reg:5000/app@{}", dg('4'))],
            ),
        ];
        let plan = plan_answered(
            spec(3),
            &read,
            &[
                (&format!("reg:5000/app@{}", dg('1')), holds(&dg('1'), None)),
                (&format!("reg:5000/app@{}", dg('4')), InRegistry::Missing),
            ],
        );
        assert_eq!(
            names(&plan.steps),
            ["image a-repulled (dangling: no tag, no container uses it, the registry has it)"]
        );
    }

    #[test]
    fn an_image_any_container_uses_stays_whoever_it_belongs_to() {
        let mut read = read(Vec::new());
        // Another environment's container, and a container drover never made.
        read.all = vec![
            HostContainer {
                id: "x1".to_string(),
                image_id: "sha256:theirs".to_string(),
                labels: BTreeMap::from([(labels::ENV.to_string(), "staging".to_string())]),
                ..Default::default()
            },
            HostContainer {
                id: "x2".to_string(),
                image_id: "sha256:handmade".to_string(),
                ..Default::default()
            },
        ];
        read.images = vec![
            image_with_digests(
                "sha256:theirs",
                &["reg:5000/app:1"],
                &[&format!("reg:5000/app@{}", dg('1'))],
            ),
            image_with_digests(
                "sha256:handmade",
                &[],
                &[&format!("reg:5000/app@{}", dg('2'))],
            ),
        ];
        let plan = plan_host(&spec(3), "h1", true, &read);
        assert!(plan.steps.is_empty() && plan.questions.is_empty());
    }

    #[test]
    fn only_volumes_the_engine_marks_anonymous_go() {
        let mut read = read(Vec::new());
        read.volumes = vec![
            volume(&"a".repeat(64), true),
            // `docker volume create --label purpose=db-backup <64 hex>`.
            volume(&"e1e5".repeat(16), false),
            volume("pgdata", false),
        ];
        let plan = plan_host(&spec(3), "h1", true, &read);
        assert_eq!(
            names(&plan.steps),
            [format!(
                "volume {} (anonymous, no container uses it)",
                "a".repeat(64)
            )]
        );
        // Not the host entry that covers images and volumes: none of it.
        assert!(plan_host(&spec(3), "h1", false, &read).steps.is_empty());
    }

    #[test]
    fn a_restarting_or_running_kept_generation_stays() {
        let read = read(vec![
            task(
                "c0",
                "prod.web.h1.0",
                "web",
                "2026-01-04T00:00:00Z",
                "running",
            ),
            task(
                "k1",
                "prod.web.h1.0.kept-k1",
                "web",
                "2026-01-03T00:00:00Z",
                "exited",
            ),
            task(
                "k2",
                "prod.web.h1.0.kept-k2",
                "web",
                "2026-01-02T00:00:00Z",
                "restarting",
            ),
            task(
                "k3",
                "prod.web.h1.0.kept-k3",
                "web",
                "2026-01-01T00:00:00Z",
                "running",
            ),
            task("k4", "prod.web.h1.0.kept-k4", "web", "2025-12-31", "exited"),
        ]);
        let plan = plan_host(&spec(0), "h1", true, &read);
        assert_eq!(
            names(&plan.steps),
            [
                "container prod.web.h1.0.kept-k1 (k1, kept generation of web h1/0 beyond keep = 0)",
                "container prod.web.h1.0.kept-k4 (k4, kept generation of web h1/0 beyond keep = 0)",
            ]
        );
    }

    #[test]
    fn what_a_removed_container_used_goes_with_it() {
        let mut gone = task(
            "g1",
            "prod.gone.h1.0",
            "gone",
            "2026-01-01T00:00:00Z",
            "exited",
        );
        gone.config.image = "reg:5000/gone:1".to_string();
        gone.image_id = "sha256:goneimg".to_string();
        let mut read = read(vec![gone]);
        read.all[0].volumes = vec!["b".repeat(64)];
        read.images = vec![image_with_digests(
            "sha256:goneimg",
            &["reg:5000/gone:1"],
            &[&format!("reg:5000/gone@{}", dg('9'))],
        )];
        read.volumes = vec![volume(&"b".repeat(64), true)];
        let plan = plan_answered(
            spec(3),
            &read,
            &[("reg:5000/gone:1", holds(&dg('9'), None))],
        );
        assert_eq!(
            plan.steps.iter().map(GcStep::kind).collect::<Vec<_>>(),
            ["container", "image", "volume"]
        );
        assert!(matches!(plan.steps[1], GcStep::Tag { deletes: true, .. }));
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
                bytes: Some(1),
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

    #[tokio::test]
    async fn a_removed_container_takes_its_anonymous_volumes_as_docker_rm_v_does() {
        let engine = drover_engine::fake::FakeEngine::new("h1");
        let anonymous = "a".repeat(64);
        let id = engine.insert("web", config("reg:5000/app:1"), BTreeMap::new(), "exited");
        {
            let mut state = engine.state.lock().unwrap();
            state.volumes.insert(anonymous.clone(), 1);
            state.volumes.insert("named".to_string(), 1);
            let c = state.containers.get_mut(&id).unwrap();
            c.volumes = vec![anonymous.clone(), "named".to_string()];
        }
        let mut items = vec![GcItem {
            step: GcStep::Generation {
                id: id.clone(),
                name: "web".to_string(),
                task: TaskKey::new("web", "h1", 0),
                why: Expired::BeyondKeep { keep: 0 },
            },
            outcome: GcOutcome::Planned,
        }];
        apply_host(&engine, &mut items).await;
        assert_eq!(items[0].outcome, GcOutcome::Removed { bytes: 0 });
        let left: Vec<String> = engine
            .state
            .lock()
            .unwrap()
            .volumes
            .keys()
            .cloned()
            .collect();
        assert_eq!(left, ["named"]);
    }

    #[test]
    fn space_counts_only_what_the_disk_gets_back() {
        let tag = |reference: &str, bytes: u64, deletes: bool| GcStep::Tag {
            reference: reference.to_string(),
            image_id: format!("sha256:{reference}"),
            bytes: Some(bytes),
            deletes,
        };
        let host = HostGc {
            host: "h1".to_string(),
            address: String::new(),
            error: None,
            items: [
                // Another reference keeps the image: nothing freed.
                tag("reg:5000/app:1", 500, false),
                tag("reg:5000/app:2", 300, true),
                GcStep::Dangling {
                    image_id: "sha256:x".to_string(),
                    bytes: None,
                },
                GcStep::Volume {
                    name: "v".to_string(),
                    bytes: Some(7),
                },
            ]
            .into_iter()
            .map(|step| GcItem {
                step,
                outcome: GcOutcome::Planned,
            })
            .collect(),
            notes: Vec::new(),
        };
        assert_eq!(host.reclaimed_bytes(), 307);
    }

    fn one_off(id: &str, kind: OneOffKind, at: &str, state: &str) -> ObservedContainer {
        container(
            id,
            &kind.container_name(ENV, "web", "h1", id),
            &[
                (labels::ENV, ENV),
                (labels::JOB, "web"),
                (labels::HOST, "h1"),
                (labels::ROLE, kind.role()),
                (labels::DEPLOYED_AT, at),
            ],
            state,
        )
    }

    #[test]
    fn one_offs_left_behind_and_release_records_beyond_keep_go() {
        let read = read(vec![
            one_off("r1", OneOffKind::Run, "2026-01-01T00:00:00Z", "exited"),
            one_off("r2", OneOffKind::Run, "2026-01-02T00:00:00Z", "running"),
            one_off("r3", OneOffKind::Run, "2026-01-03T00:00:00Z", "running"),
            one_off("m1", OneOffKind::Release, "2026-01-01T00:00:00Z", "exited"),
            one_off("m2", OneOffKind::Release, "2026-01-02T00:00:00Z", "exited"),
            one_off("m3", OneOffKind::Release, "2026-01-03T00:00:00Z", "exited"),
        ]);
        let mut spec = spec(2);
        // r3's drover is gone; r2's still waits for it.
        spec.abandoned.insert("r3".to_string());
        let plan = plan_host(&spec, "h1", true, &read);
        assert_eq!(
            names(&plan.steps),
            [
                "container prod.web.h1.run-r3 (r3, one-off run of job web: the drover process that started it is gone)",
                "container prod.web.h1.run-r1 (r1, one-off run of job web: it has ended)",
                "container prod.web.h1.release-m1 (m1, release run of job web: beyond keep = 2)",
            ]
        );
        assert!(
            matches!(plan.steps[0], GcStep::OneOff { stop: Some(_), .. }),
            "a running one is stopped first"
        );
        // A job gone from the spec takes its one-offs with it, as orphans.
        let mut gone = spec.clone();
        gone.jobs.clear();
        assert_eq!(plan_host(&gone, "h1", true, &read).steps.len(), 6);
    }
}
