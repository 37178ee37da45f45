//! An engine that answers from its own state, for fast unit tests of the
//! logic above the engine (the executor, rollouts, locks) — the way youki's
//! `TestHelperSyscall` stands in for the kernel. Every behaviour that
//! touches Docker is also tested against a real engine.
//!
//! Containers move through states as a real engine's would: created,
//! running, exited. What a started container then does is set per image
//! with [`Behaviour`] (keep running, exit, crash-loop, turn healthy after a
//! few looks, never turn healthy). Every call is recorded as one line
//! (`start web.0`, `rename a b`) so tests compare sequences as strings, and
//! any call can be made to fail.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use drover_plan::{ObservedContainer, TaskConfig};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::{
    ContainerSummary, Containers, CreateOptions, DiskUsage, EngineError, EngineEvent, EngineInfo,
    EngineVersion, ExecOutput, ExecSession, FilesystemSpace, HostContainer, ImageDetails,
    ImageRemoval, ImageSummary, Images, LogOptions, LogStream, Named, PullProgress, Streams,
    System, UsageSample, VolumeSummary, Volumes,
};

/// What a container of an image does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Keeps running; healthy at once if it has a health check.
    Runs,
    /// Runs, and reports healthy only after this many inspections.
    HealthyAfter(u32),
    /// Runs, and its health check fails.
    Unhealthy,
    /// Exits with this code at the first look.
    Exits(i64),
    /// Restarts again and again.
    CrashLoops,
}

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub config: TaskConfig,
    pub state: String,
    pub exit_code: i64,
    pub restarts: i64,
    pub health: String,
    pub created: String,
    pub started_at: String,
    pub image_id: String,
    /// Names of the volumes it mounts.
    pub volumes: Vec<String>,
    looks: u32,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub containers: BTreeMap<String, FakeContainer>,
    /// Image reference (tag or ID) → image ID.
    pub images: BTreeMap<String, String>,
    /// Images a pull can find, reference → image ID.
    pub registry: BTreeMap<String, String>,
    /// Volumes on the host, name → size in bytes.
    pub volumes: BTreeMap<String, u64>,
    pub behaviours: BTreeMap<String, Behaviour>,
    /// Every call, one line each.
    pub calls: Vec<String>,
    /// Calls that fail: a line prefix (`start web.0`) and the error.
    pub failures: Vec<(String, EngineError)>,
    /// Calls that fail once, then succeed: a line prefix and the error.
    pub failures_once: Vec<(String, EngineError)>,
    next: u64,
}

pub struct FakeEngine {
    host: String,
    pub state: Mutex<FakeState>,
}

impl FakeEngine {
    pub fn new(host: &str) -> Self {
        FakeEngine {
            host: host.to_string(),
            state: Mutex::new(FakeState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An image present on the host.
    pub fn with_image(self, reference: &str, id: &str) -> Self {
        self.lock()
            .images
            .insert(reference.to_string(), id.to_string());
        self
    }

    /// An image a pull can fetch.
    pub fn with_registry_image(self, reference: &str, id: &str) -> Self {
        self.lock()
            .registry
            .insert(reference.to_string(), id.to_string());
        self
    }

    pub fn with_behaviour(self, image: &str, behaviour: Behaviour) -> Self {
        self.lock().behaviours.insert(image.to_string(), behaviour);
        self
    }

    /// Makes every call whose line starts with `prefix` fail with `error`.
    pub fn fail(&self, prefix: &str, error: EngineError) {
        self.lock().failures.push((prefix.to_string(), error));
    }

    /// Makes the next call whose line starts with `prefix` fail with
    /// `error`; later ones succeed (a start that fails for the new container
    /// but not for the old one put back under the same name).
    pub fn fail_once(&self, prefix: &str, error: EngineError) {
        self.lock().failures_once.push((prefix.to_string(), error));
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// `(name, state)` of every container, sorted by name.
    pub fn containers(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> = self
            .lock()
            .containers
            .values()
            .map(|c| (c.name.clone(), c.state.clone()))
            .collect();
        list.sort();
        list
    }

    pub fn container(&self, name: &str) -> Option<FakeContainer> {
        self.lock()
            .containers
            .values()
            .find(|c| c.name == name)
            .cloned()
    }

    /// Puts a container in place as if created and started earlier.
    pub fn insert(
        &self,
        name: &str,
        config: TaskConfig,
        labels: BTreeMap<String, String>,
        state: &str,
    ) -> String {
        let mut s = self.lock();
        let id = s.new_id();
        let image_id = s
            .images
            .get(&config.image)
            .cloned()
            .unwrap_or_else(|| config.image.clone());
        let created = format!("2026-01-01T00:00:{:02}Z", s.next % 60);
        s.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name: name.to_string(),
                labels,
                health: if config.health.is_some() && state == "running" {
                    "healthy".to_string()
                } else {
                    String::new()
                },
                config,
                state: state.to_string(),
                exit_code: 0,
                restarts: 0,
                created: created.clone(),
                started_at: created,
                image_id,
                volumes: Vec::new(),
                looks: 0,
            },
        );
        id
    }
}

impl FakeState {
    /// A new container ID. Like Docker's, IDs differ in their first 12
    /// digits, so short IDs (and the kept names made of them) never collide.
    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("{:016x}", self.next.wrapping_mul(0x9e37_79b9_7f4a_7c15)).repeat(4)
    }

    /// Records `line`; fails if a failure was set for it.
    fn call(&mut self, line: String) -> Result<(), EngineError> {
        self.calls.push(line.clone());
        if let Some(i) = self
            .failures_once
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix.as_str()))
        {
            return Err(self.failures_once.remove(i).1);
        }
        match self
            .failures
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
        {
            Some((_, error)) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn find(&mut self, id_or_name: &str) -> Option<&mut FakeContainer> {
        self.containers
            .values_mut()
            .find(|c| c.id == id_or_name || c.name == id_or_name)
    }

    fn name_of(&self, id: &str) -> String {
        self.containers
            .get(id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    }
}

impl Named for FakeEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> &str {
        "fake://"
    }
}

fn not_found(what: &str) -> EngineError {
    EngineError::NotFound(format!("no such container: {what}"))
}

#[async_trait]
impl Containers for FakeEngine {
    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        let mut s = self.lock();
        s.call("list".to_string())?;
        Ok(s.containers
            .values()
            .filter(|c| c.labels.get(drover_plan::labels::ENV).map(String::as_str) == Some(env))
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                state: c.state.clone(),
                image: c.config.image.clone(),
                image_id: c.image_id.clone(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("inspect {name}"))?;
        let behaviours = s.behaviours.clone();
        let Some(c) = s.find(id) else { return Ok(None) };
        if c.state == "running" || c.state == "restarting" {
            c.looks += 1;
            match behaviours
                .get(&c.config.image)
                .copied()
                .unwrap_or(Behaviour::Runs)
            {
                Behaviour::Runs => {
                    if c.config.health.is_some() {
                        c.health = "healthy".to_string();
                    }
                }
                Behaviour::HealthyAfter(n) => {
                    c.health = if c.looks > n { "healthy" } else { "starting" }.to_string();
                }
                Behaviour::Unhealthy => c.health = "unhealthy".to_string(),
                Behaviour::Exits(code) => {
                    c.state = "exited".to_string();
                    c.exit_code = code;
                }
                Behaviour::CrashLoops => {
                    c.state = "restarting".to_string();
                    c.restarts += 1;
                    c.exit_code = 1;
                }
            }
        }
        Ok(Some(ObservedContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c.labels.clone(),
            state: c.state.clone(),
            exit_code: c.exit_code,
            oom_killed: false,
            error: String::new(),
            health: c.health.clone(),
            health_output: if c.health == "unhealthy" {
                "check failed".to_string()
            } else {
                String::new()
            },
            started_at: c.started_at.clone(),
            finished_at: String::new(),
            created: c.created.clone(),
            restarts: c.restarts,
            image_id: c.image_id.clone(),
            config: c.config.clone(),
            image_env: BTreeMap::new(),
            image_cmd: None,
            image_defaults: Default::default(),
        }))
    }

    async fn create_container(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
    ) -> Result<String, EngineError> {
        let mut s = self.lock();
        s.call(format!("create {name}"))?;
        if s.containers.values().any(|c| c.name == name) {
            return Err(EngineError::Conflict(format!(
                "the container name \"/{name}\" is already in use"
            )));
        }
        let Some(image_id) = s.images.get(&config.image).cloned() else {
            return Err(EngineError::NotFound(format!(
                "no such image: {}",
                config.image
            )));
        };
        let id = s.new_id();
        let created = format!("2026-01-01T00:01:{:02}Z", s.next % 60);
        s.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name: name.to_string(),
                labels: options.labels.clone(),
                config: config.clone(),
                state: "created".to_string(),
                exit_code: 0,
                restarts: 0,
                health: String::new(),
                created,
                started_at: "0001-01-01T00:00:00Z".to_string(),
                image_id,
                volumes: Vec::new(),
                looks: 0,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("start {name}"))?;
        let c = s.find(id).ok_or_else(|| not_found(id))?;
        if c.state != "running" {
            c.state = "running".to_string();
            c.looks = 0;
            c.health = if c.config.health.is_some() {
                "starting".to_string()
            } else {
                String::new()
            };
            c.started_at = "2026-01-01T00:02:00Z".to_string();
        }
        Ok(())
    }

    async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("unpause {name}"))?;
        let c = s.find(id).ok_or_else(|| not_found(id))?;
        c.state = "running".to_string();
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<(), EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("stop {name}"))?;
        let c = s.find(id).ok_or_else(|| not_found(id))?;
        if c.state != "created" {
            c.state = "exited".to_string();
        }
        c.health = String::new();
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("remove {name}"))?;
        let key = s
            .containers
            .iter()
            .find(|(k, c)| *k == id || c.name == id)
            .map(|(k, _)| k.clone());
        if let Some(key) = key {
            s.containers.remove(&key);
        }
        Ok(())
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        let old = s.name_of(id);
        s.call(format!("rename {old} {name}"))?;
        if s.containers.values().any(|c| c.name == name && c.id != id) {
            return Err(EngineError::Conflict(format!(
                "the container name \"/{name}\" is already in use"
            )));
        }
        let c = s.find(id).ok_or_else(|| not_found(id))?;
        c.name = name.to_string();
        Ok(())
    }

    async fn usage(&self, id: &str) -> Result<UsageSample, EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("stats {name}"))?;
        Ok(UsageSample {
            memory_bytes: 1 << 20,
            cpu_total_ns: 0,
            system_total_ns: 0,
            online_cpus: 1,
        })
    }

    async fn logs_tail(&self, id: &str, _lines: usize) -> Result<Vec<String>, EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("logs {name}"))?;
        Ok(vec![format!("last words of {name}")])
    }

    async fn exec_output(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, EngineError> {
        let mut s = self.lock();
        let name = s.name_of(id);
        s.call(format!("exec {name} {}", cmd.join(" ")))?;
        Ok(ExecOutput::default())
    }

    async fn list_all_containers(&self) -> Result<Vec<HostContainer>, EngineError> {
        let mut s = self.lock();
        s.call("list-all".to_string())?;
        Ok(s.containers
            .values()
            .map(|c| HostContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
                state: c.state.clone(),
                image_id: c.image_id.clone(),
                volumes: c.volumes.clone(),
            })
            .collect())
    }
}

#[async_trait]
impl Images for FakeEngine {
    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        let mut s = self.lock();
        s.call("images".to_string())?;
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (reference, id) in &s.images {
            by_id.entry(id.clone()).or_default().push(reference.clone());
        }
        Ok(by_id
            .into_iter()
            .map(|(id, tags)| ImageSummary {
                repo_tags: tags
                    .into_iter()
                    .filter(|t| !t.starts_with("sha256:"))
                    .collect(),
                id,
                repo_digests: Vec::new(),
                created: 0,
                size: 0,
                labels: BTreeMap::new(),
            })
            .collect())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError> {
        let mut s = self.lock();
        s.call(format!("inspect-image {reference}"))?;
        let id = s
            .images
            .get(reference)
            .cloned()
            .or_else(|| s.images.values().find(|id| *id == reference).cloned());
        Ok(id.map(|id| ImageDetails {
            id,
            ..ImageDetails::default()
        }))
    }

    async fn pull_image(
        &self,
        reference: &str,
        _progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("pull {reference}"))?;
        match s.registry.get(reference).cloned() {
            Some(id) => {
                s.images.insert(reference.to_string(), id);
                Ok(())
            }
            None => Err(EngineError::Pull {
                host: self.host.clone(),
                image: reference.to_string(),
                reason: "manifest unknown".to_string(),
            }),
        }
    }

    async fn import_image(&self, reference: &str, _rootfs_tar: Vec<u8>) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("import {reference}"))?;
        s.next += 1;
        let id = format!("sha256:{:064x}", s.next);
        s.images.insert(reference.to_string(), id);
        Ok(())
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-image {id}"))?;
        s.images.retain(|_, v| v != id);
        Ok(())
    }

    async fn remove_image_reference(&self, reference: &str) -> Result<ImageRemoval, EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-image {reference}"))?;
        let id = match s.images.get(reference) {
            Some(id) => id.clone(),
            None if s.images.values().any(|id| id == reference) => reference.to_string(),
            None => return Ok(ImageRemoval::default()),
        };
        if s.containers.values().any(|c| c.image_id == id) {
            return Err(EngineError::Conflict(format!(
                "unable to remove {reference} (must force): a container is using its image"
            )));
        }
        let untagged = if reference == id {
            let refs: Vec<String> = s
                .images
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect();
            s.images.retain(|_, v| *v != id);
            refs
        } else {
            s.images.remove(reference);
            vec![reference.to_string()]
        };
        let deleted = if s.images.values().any(|v| *v == id) {
            Vec::new()
        } else {
            vec![id]
        };
        Ok(ImageRemoval { untagged, deleted })
    }

    async fn export_image(
        &self,
        reference: &str,
        _to: &std::path::Path,
    ) -> Result<(), EngineError> {
        self.lock().call(format!("export {reference}"))
    }

    async fn load_image(&self, _from: &std::path::Path) -> Result<(), EngineError> {
        self.lock().call("load".to_string())
    }

    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("tag {id} {reference}"))?;
        let id = match s.images.get(id) {
            Some(id) => id.clone(),
            None if s.images.values().any(|known| known == id) => id.to_string(),
            None => return Err(EngineError::NotFound(format!("no such image: {id}"))),
        };
        s.images.insert(reference.to_string(), id);
        Ok(())
    }

    async fn push_image(
        &self,
        reference: &str,
        _auth: Option<&crate::RegistryAuth>,
        _progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<String, EngineError> {
        self.lock().call(format!("push {reference}"))?;
        Ok(format!("sha256:{:064x}", 1))
    }
}

#[async_trait]
impl Volumes for FakeEngine {
    async fn list_volumes(&self) -> Result<Vec<VolumeSummary>, EngineError> {
        let mut s = self.lock();
        s.call("volumes".to_string())?;
        Ok(s.volumes
            .keys()
            .map(|name| VolumeSummary {
                name: name.clone(),
                driver: "local".to_string(),
                labels: BTreeMap::new(),
            })
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut s = self.lock();
        s.call(format!("remove-volume {name}"))?;
        if s.containers
            .values()
            .any(|c| c.volumes.iter().any(|v| v == name))
        {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use"
            )));
        }
        s.volumes.remove(name);
        Ok(())
    }

    async fn volume_sizes(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        let mut s = self.lock();
        s.call("volume-sizes".to_string())?;
        Ok(s.volumes.clone())
    }
}

#[async_trait]
impl System for FakeEngine {
    async fn version(&self) -> Result<EngineVersion, EngineError> {
        self.lock().call("version".to_string())?;
        Ok(EngineVersion {
            version: "20.10.24".to_string(),
            api_version: "1.41".to_string(),
        })
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.lock().call("info".to_string())?;
        Ok(EngineInfo {
            name: self.host.clone(),
            data_root: "/var/lib/docker".to_string(),
            log_driver: "json-file".to_string(),
            containers: 0,
            images: 0,
        })
    }

    async fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        self.lock().call("df".to_string())?;
        Ok(DiskUsage::default())
    }

    async fn data_root_space(
        &self,
        _data_root: &str,
    ) -> Result<Option<FilesystemSpace>, EngineError> {
        self.lock().call("statvfs".to_string())?;
        Ok(None)
    }
}

#[async_trait]
impl Streams for FakeEngine {
    fn logs(&self, _id: &str, _options: LogOptions) -> LogStream {
        futures::stream::empty().boxed()
    }

    async fn exec_session(
        &self,
        _id: &str,
        _cmd: &[String],
        _tty: bool,
    ) -> Result<ExecSession, EngineError> {
        Err(EngineError::Other(
            "the fake engine has no exec sessions".to_string(),
        ))
    }

    async fn resize_exec(&self, _exec_id: &str, _rows: u16, _cols: u16) -> Result<(), EngineError> {
        Ok(())
    }

    async fn exec_exit_code(&self, _exec_id: &str) -> Result<Option<i64>, EngineError> {
        Ok(Some(0))
    }

    /// The fake has no event stream: it ends at once, and watchers fall back to looking.
    fn events(&self, _env: &str) -> BoxStream<'static, Result<EngineEvent, EngineError>> {
        futures::stream::empty().boxed()
    }

    async fn past_events(
        &self,
        _env: &str,
        action: &str,
        _since: i64,
    ) -> Result<Vec<EngineEvent>, EngineError> {
        self.lock().call(format!("past-events {action}"))?;
        Ok(Vec::new())
    }
}
