//! Talking to Docker engines.
//!
//! What drover asks of an engine is split by API area, as the engine's own
//! API is: [`Containers`], [`Images`], [`Volumes`], [`System`] for
//! request/response calls, and [`Streams`] for what flows for as long as
//! it is read (logs, exec sessions, events). [`Engine`] is all five.
//! [`DockerEngine`] talks to a real engine over unix sockets, TCP (+TLS) or
//! SSH; [`fake::FakeEngine`] answers from its own state, for fast unit
//! tests of logic above it.
//!
//! Every request has a deadline that fits it and counts against a bound on
//! requests in flight (per host and in total), so a wedged host delays
//! nobody else. Engine status codes become meaningful [`EngineError`]s here,
//! once; nothing above this crate looks at an HTTP status or a message text.

mod convert;
mod docker;
mod error;
pub mod fake;
mod limits;
mod observe;
mod streams;
mod transport;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use drover_plan::{ImageDefaults, ObservedContainer, RunState, TaskConfig};
use futures::stream::BoxStream;

pub use convert::create_body;
pub use docker::{connect, DockerEngine};
pub use error::{short_message, EngineError};
pub use limits::Limits;
pub use observe::{adopted, observe, with_image};
pub use streams::{ExecSession, LogChunk, LogStream, StreamKind};
pub use transport::ssh::kill_all as kill_ssh_masters;
pub use transport::{check_tls_files, TlsSetupError};

/// A drover container as the engine's list call returns it: cheap, no inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    pub image: String,
    pub image_id: String,
}

/// Any container on a host, drover's or not, as far as `gc` needs to know
/// what it still uses: its image and the volumes it mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub image_id: String,
    /// Names of the volumes it mounts (not bind mounts: those are host paths).
    pub volumes: Vec<String>,
}

/// What removing an image reference did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRemoval {
    /// References removed (`repo:tag`, and digests of that repository that went with it).
    pub untagged: Vec<String>,
    /// Image IDs deleted: empty when other references keep the image.
    pub deleted: Vec<String>,
}

/// One volume on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSummary {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The engine marks it as one it made for a container ([`is_anonymous_volume`]).
    pub anonymous: bool,
    /// The engine's own mark said so (Docker 23.0 and later). Before, a
    /// 64-hex name and no labels is all there is, and a volume named so by
    /// hand looks the same: `gc` then only names it.
    pub by_mark: bool,
}

/// The label engines from 23.0 (API 1.42) put on every volume they make
/// without a name: for a container's `-v /path` or its image's `VOLUME`.
pub const ANONYMOUS_VOLUME_LABEL: &str = "com.docker.volume.anonymous";

/// Whether the engine marks a volume as anonymous, the only kind `gc` may
/// remove: a volume someone named, or labelled, holds data on purpose
/// (`docker volume create --label purpose=db-backup` with a 64-hex name
/// looks like an anonymous one by name alone). An engine that sets
/// [`ANONYMOUS_VOLUME_LABEL`] (`engine_marks`) is taken at its word; an
/// older one leaves no mark but a 64-hex name and no labels at all.
pub fn is_anonymous_volume(
    name: &str,
    labels: &BTreeMap<String, String>,
    engine_marks: bool,
) -> bool {
    if engine_marks {
        labels.contains_key(ANONYMOUS_VOLUME_LABEL)
    } else {
        labels.is_empty() && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// What single images and volumes take on disk, from the engine's disk-use
/// call: what removing each would give back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemSpace {
    /// Image ID → the bytes of the layers no other image shares, where the
    /// engine computed them. Removing the image frees these, not its whole
    /// size: shared layers stay for the other images.
    pub images: BTreeMap<String, u64>,
    /// Volume name → bytes, where the engine measured it.
    pub volumes: BTreeMap<String, u64>,
}

/// Space and inodes of the filesystem holding the engine's data root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilesystemSpace {
    pub total_bytes: u64,
    /// Available to unprivileged users, as `df` shows it.
    pub free_bytes: u64,
    pub total_inodes: u64,
    pub free_inodes: u64,
}

/// One image on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    pub labels: BTreeMap<String, String>,
}

/// An image's own configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDetails {
    pub id: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// Its entrypoint, user, workdir and labels.
    pub defaults: ImageDefaults,
    /// Where its `VOLUME`s are: a container of it gets an anonymous volume at each.
    pub volumes: Vec<String>,
    /// Its `STOPSIGNAL`, if it sets one.
    pub stop_signal: Option<String>,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: String,
}

/// One reading of a running container's memory and CPU counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageSample {
    pub memory_bytes: u64,
    /// Cumulative CPU time of the container, nanoseconds.
    pub cpu_total_ns: u64,
    /// Cumulative CPU time of the whole host, nanoseconds.
    pub system_total_ns: u64,
    pub online_cpus: u32,
}

impl UsageSample {
    /// CPU use between two samples, in percent of one CPU (as `docker stats`).
    pub fn cpu_percent_since(&self, earlier: &UsageSample) -> f64 {
        let cpu = self.cpu_total_ns.saturating_sub(earlier.cpu_total_ns) as f64;
        let system = self.system_total_ns.saturating_sub(earlier.system_total_ns) as f64;
        if system <= 0.0 {
            return 0.0;
        }
        cpu / system * f64::from(self.online_cpus.max(1)) * 100.0
    }
}

/// The engine version of a host, as `doctor` and errors report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
}

/// What `doctor` reads of a host's engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineInfo {
    pub name: String,
    pub data_root: String,
    pub log_driver: String,
    pub containers: i64,
    pub images: i64,
}

/// Space used on a host, by kind, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: i64,
    pub containers: i64,
    pub volumes: i64,
    pub build_cache: i64,
}

/// One line of progress from a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullProgress {
    pub status: String,
    pub current: i64,
    pub total: i64,
}

/// A container no drover environment manages, as `drover adopt` reads it:
/// what drover compares, and what else it was started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandRun {
    /// Its image's env, command and defaults are left empty, as
    /// [`Containers::inspect_container`] leaves them.
    pub container: ObservedContainer,
    /// The settings it runs with that no job key expresses.
    pub foreign: Vec<Foreign>,
    /// Paths of its anonymous volumes (`Config.Volumes`): its image's
    /// `VOLUME`s, and any `-v /path` it was started with.
    pub anonymous_volumes: Vec<String>,
    /// Its stop signal (`Config.StopSignal`: its image's, or `--stop-signal`).
    pub stop_signal: Option<String>,
}

/// A setting a container runs with that no job key expresses, so that a
/// container made from a job file would run without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// In `docker run`'s words: `--network container:db`, `--volumes-from a`.
    pub setting: String,
    /// Why no job key says it.
    pub why: String,
}

/// The options of a create request beyond the task's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    pub labels: BTreeMap<String, String>,
}

/// How a one-off container's process meets the client attached to it
/// (`docker run -i -t`): with a terminal, and with its stdin open to the
/// client (closed when the client lets go, as `-i` does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attachment {
    pub tty: bool,
    pub stdin: bool,
}

/// An exec's result, for commands whose output is small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The host behind an engine, for messages.
pub trait Named {
    /// The host's name in drover.toml.
    fn host(&self) -> &str;
    /// The address it is reached at.
    fn address(&self) -> &str;
}

/// Containers: list, inspect, create, start, stop, remove, rename, stats, logs.
#[async_trait]
pub trait Containers: Named + Send + Sync {
    /// All containers (running or not) labelled `drover.env=ENV`.
    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError>;
    /// `None` when the container no longer exists. The image's env and
    /// command are left empty: [`observe`] reads each image once.
    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError>;
    /// Creates (does not start) a container under `name`; returns its ID.
    async fn create_container(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
    ) -> Result<String, EngineError>;
    /// Starts a created or stopped container; one already running is fine.
    async fn start_container(&self, id: &str) -> Result<(), EngineError>;
    async fn unpause_container(&self, id: &str) -> Result<(), EngineError>;
    /// Stops gracefully: SIGTERM, then SIGKILL after `timeout`. The request
    /// waits that long plus a margin; a stopped container is fine.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), EngineError>;
    /// Removes a container (killing it if it runs) and its anonymous volumes,
    /// so no leftovers pile up. A container already gone is fine.
    async fn remove_container(&self, id: &str) -> Result<(), EngineError>;
    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError>;
    /// One sample of memory and CPU counters (one-shot where the engine has it).
    async fn usage(&self, id: &str) -> Result<UsageSample, EngineError>;
    /// The last `lines` lines of output, stdout and stderr interleaved.
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, EngineError>;
    /// Runs a command in a running container and collects its (small) output.
    async fn exec_output(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, EngineError>;
    /// Every container on the host, whatever its labels, running or not.
    async fn list_all_containers(&self) -> Result<Vec<HostContainer>, EngineError>;
    /// A container as `drover adopt` reads it; `None` when it no longer exists.
    async fn inspect_hand_run(&self, id: &str) -> Result<Option<HandRun>, EngineError>;
    /// Creates (does not start) a one-off container, as
    /// [`Containers::create_container`], its process attached as `attachment` says.
    async fn create_attached(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
        attachment: Attachment,
    ) -> Result<String, EngineError>;
}

/// Images: list, inspect, pull, import, remove.
#[async_trait]
pub trait Images: Named + Send + Sync {
    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError>;
    /// `None` when the host has no such image.
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError>;
    /// Pulls; fails when the registry refuses or progress stalls for too long.
    async fn pull_image(
        &self,
        reference: &str,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<(), EngineError>;
    /// Makes an image from a root filesystem tar (`docker import`), no registry needed.
    async fn import_image(&self, reference: &str, rootfs_tar: Vec<u8>) -> Result<(), EngineError>;
    async fn remove_image(&self, id: &str) -> Result<(), EngineError>;
    /// Removes one reference (`repo:tag`, or an ID), never forcing: the
    /// image itself goes only with its last reference, and an image a
    /// container uses is refused ([`EngineError::Conflict`]). One already
    /// gone is fine (nothing removed).
    async fn remove_image_reference(&self, reference: &str) -> Result<ImageRemoval, EngineError>;
    /// Writes the image (and its parents) as a `docker save` tar to `to`.
    async fn export_image(&self, reference: &str, to: &std::path::Path) -> Result<(), EngineError>;
    /// Loads a `docker save` tar from `from` (`docker load`).
    async fn load_image(&self, from: &std::path::Path) -> Result<(), EngineError>;
    /// Gives the image `id` the name `reference` (`REPOSITORY:TAG`), as `docker tag`.
    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError>;
    /// Pushes `reference` to its registry; returns the manifest digest.
    async fn push_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<String, EngineError>;
}

/// Credentials an engine presents to a registry on drover's behalf.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Volumes: list, remove, sizes.
#[async_trait]
pub trait Volumes: Named + Send + Sync {
    async fn list_volumes(&self) -> Result<Vec<VolumeSummary>, EngineError>;
    /// Removes a volume no container uses; one in use is refused
    /// ([`EngineError::Conflict`]), one already gone is fine.
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
}

/// The engine itself: version, info, disk use.
#[async_trait]
pub trait System: Named + Send + Sync {
    async fn version(&self) -> Result<EngineVersion, EngineError>;
    async fn info(&self) -> Result<EngineInfo, EngineError>;
    async fn disk_usage(&self) -> Result<DiskUsage, EngineError>;
    /// The space of each image and volume, as far as the engine reports it
    /// (its disk-use call walks every volume, so this can take a while).
    async fn item_space(&self) -> Result<ItemSpace, EngineError>;
    /// Space and inodes of the filesystem at `data_root` (from [`System::info`]),
    /// where drover can read them: an engine on a unix socket of this
    /// machine whose data root this machine sees. `None` otherwise.
    async fn data_root_space(
        &self,
        data_root: &str,
    ) -> Result<Option<FilesystemSpace>, EngineError>;
}

/// What flows for as long as it is read.
#[async_trait]
pub trait Streams: Named + Send + Sync {
    /// A container's output; `follow` keeps it open until the container stops.
    fn logs(&self, id: &str, options: LogOptions) -> LogStream;
    /// An interactive exec session (with a tty when asked).
    async fn exec_session(
        &self,
        id: &str,
        cmd: &[String],
        tty: bool,
    ) -> Result<ExecSession, EngineError>;
    async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), EngineError>;
    /// The exit code of a finished exec, `None` while it runs.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, EngineError>;
    /// The engine's container events of [`CONTAINER_ACTIONS`] about the
    /// containers of environment `env`, adopted ones included
    /// ([`EngineEvent::concerns`]).
    fn events(&self, env: &str) -> BoxStream<'static, Result<EngineEvent, EngineError>>;
    /// The stdio of a created (not yet started) container, so that nothing
    /// it writes once started is missed: its output, and a writer to its
    /// stdin when [`Attachment::stdin`] was asked at create.
    async fn attach(&self, id: &str) -> Result<ExecSession, EngineError>;
    /// Waits, for as long as it takes, until the container is not running,
    /// and returns its exit code (a container already stopped answers at once).
    async fn wait_exit(&self, id: &str) -> Result<i64, EngineError>;
    /// The size of a one-off container's terminal.
    async fn resize_tty(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError>;
    /// Container events of environment `env` ([`EngineEvent::concerns`])
    /// with this `action` (`oom`, `die`…) that already happened since
    /// `since` (Unix seconds), as far as the engine still holds them (it
    /// keeps only its recent events).
    async fn past_events(
        &self,
        env: &str,
        action: &str,
        since: i64,
    ) -> Result<Vec<EngineEvent>, EngineError>;
}

/// How much of a container's output to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// `None`: everything.
    pub tail: Option<usize>,
    /// Unix seconds; only output from then on.
    pub since: Option<i64>,
    pub stdout: bool,
    pub stderr: bool,
}

/// One container event, reduced to what drover acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    pub container: String,
    /// `create`, `start`, `die`, `stop`, `destroy`, `health_status: healthy`…
    pub action: String,
    /// The container's labels and the event's own attributes (`name`,
    /// `image`, `exitCode`, `signal`, `oldName`…), as the engine sends them.
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the Unix epoch.
    pub time_nano: i64,
}

/// The container actions the event streams carry ([`Streams::events`]):
/// what changes a container or how it runs. Not the `exec_*` events a
/// health check makes at every interval (a host of a few hundred tasks
/// with checks would flood every follower), nor `attach`, `resize`,
/// `top`, `copy` and the like, which change nothing. `health_status`
/// matches `health_status: healthy` and `health_status: unhealthy`.
pub const CONTAINER_ACTIONS: [&str; 13] = [
    "create",
    "start",
    "restart",
    "die",
    "kill",
    "oom",
    "stop",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "update",
    "health_status",
];

impl EngineEvent {
    /// Whether this event is about a container of environment `env`: one
    /// labelled for it, or one named `ENV.…`. The second is what covers the
    /// containers `drover adopt` took over: a running container can be
    /// renamed but not relabelled, so they carry none of drover's labels
    /// but their task's name (a rename's old name counts too: a task's
    /// container renamed away by hand is news). Which task such a
    /// container is, only its adoption record says
    /// ([`drover_plan::role_of`] takes it); a container named so by
    /// someone else is let through and means nothing there.
    ///
    /// Since no engine filter says "this label or that name", the streams
    /// ask the engine for its container events of [`CONTAINER_ACTIONS`]
    /// and apply this rule as they arrive. On a host that also runs many
    /// containers that are not drover's, what that costs is their
    /// lifecycle events (a create, start, die…, a few hundred bytes each,
    /// read and dropped): their health checks' `exec_*` events, the only
    /// ones that come by the second, are filtered out by the engine.
    pub fn concerns(&self, env: &str) -> bool {
        if self
            .labels
            .get(drover_plan::labels::ENV)
            .map(String::as_str)
            == Some(env)
        {
            return true;
        }
        let named = |key: &str| {
            self.labels.get(key).is_some_and(|name| {
                name.trim_start_matches('/')
                    .strip_prefix(env)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
        };
        named("name") || named("oldName")
    }
}

/// Everything drover asks of an engine.
pub trait Engine: Containers + Images + Volumes + System + Streams {}

impl<T: Containers + Images + Volumes + System + Streams> Engine for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engine_s_own_mark_makes_a_volume_anonymous() {
        let hex = "e1e5".repeat(16);
        let none = BTreeMap::new();
        let labelled = BTreeMap::from([("purpose".to_string(), "db-backup".to_string())]);
        let marked = BTreeMap::from([(ANONYMOUS_VOLUME_LABEL.to_string(), String::new())]);
        // An engine that marks its anonymous volumes: only the mark counts.
        assert!(is_anonymous_volume(&hex, &marked, true));
        assert!(!is_anonymous_volume(&hex, &none, true));
        assert!(!is_anonymous_volume(&hex, &labelled, true));
        // An older engine: a 64-hex name and no labels at all.
        assert!(is_anonymous_volume(&hex, &none, false));
        assert!(!is_anonymous_volume(&hex, &labelled, false));
        assert!(!is_anonymous_volume("pgdata", &none, false));
        assert!(!is_anonymous_volume(&hex[..63], &none, false));
    }

    fn event(action: &str, attributes: &[(&str, &str)]) -> EngineEvent {
        EngineEvent {
            container: "c0ffee".to_string(),
            action: action.to_string(),
            labels: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time_nano: 0,
        }
    }

    #[test]
    fn an_event_concerns_an_environment_by_its_label_or_by_a_name_of_its_own() {
        let env_label = drover_plan::labels::ENV;
        // drover's own container, whatever its name.
        assert!(event("die", &[(env_label, "prod"), ("name", "x")]).concerns("prod"));
        assert!(!event("die", &[(env_label, "staging"), ("name", "x")]).concerns("prod"));
        // An adopted container: its own labels only, the task's name.
        let adopted = event("die", &[("team", "ops"), ("name", "prod.web.h1.0")]);
        assert!(adopted.concerns("prod"));
        assert!(!adopted.concerns("prod2") && !adopted.concerns("pro"));
        // Renamed away from the task's name by hand.
        let renamed = event(
            "rename",
            &[("name", "web-old"), ("oldName", "/prod.web.h1.0")],
        );
        assert!(renamed.concerns("prod"));
        // Anybody else's.
        assert!(!event("start", &[("name", "postgres")]).concerns("prod"));
        assert!(!event("start", &[("name", "prod")]).concerns("prod"));
        assert!(!event("start", &[]).concerns("prod"));
    }

    #[tokio::test]
    async fn the_fake_s_stream_carries_an_adopted_container_s_events_and_no_exec() {
        let engine = fake::FakeEngine::new("h1").with_event_feed();
        let config = TaskConfig {
            image: "busybox:1".to_string(),
            command: None,
            env: BTreeMap::new(),
            volumes: Vec::new(),
            host_files: Vec::new(),
            memory: None,
            resources: drover_plan::Resources::default(),
            network: "bridge".to_string(),
            init: false,
            restart: "no".to_string(),
            stop_timeout: Duration::ZERO,
            log_driver: "json-file".to_string(),
            log_options: BTreeMap::new(),
            health: None,
            settings: Default::default(),
        };
        let labelled = BTreeMap::from([(drover_plan::labels::ENV.to_string(), "prod".to_string())]);
        engine.insert("prod.web.h1.0", config.clone(), labelled, "running");
        engine.insert("prod.api.h1.0", config.clone(), BTreeMap::new(), "running");
        engine.insert("postgres", config, BTreeMap::new(), "running");
        let mut events = engine.events("prod");
        for name in ["prod.web.h1.0", "prod.api.h1.0", "postgres"] {
            assert!(engine.emit(name, "exec_start: sh -c true", &[]));
            assert!(engine.emit(name, "die", &[]));
        }
        let mut got = Vec::new();
        for _ in 0..2 {
            let e = futures::StreamExt::next(&mut events)
                .await
                .unwrap()
                .unwrap();
            got.push((e.labels["name"].clone(), e.action));
        }
        assert_eq!(
            got,
            [
                ("prod.web.h1.0".to_string(), "die".to_string()),
                ("prod.api.h1.0".to_string(), "die".to_string())
            ]
        );
        drop(engine);
        assert!(futures::StreamExt::next(&mut events).await.is_none());
    }
}
