//! A Docker engine simulator at the socket level: one process serving many
//! engines, each on its own unix socket, answering the Engine API calls
//! drover makes with the JSON a real engine 20.10 (API 1.41) gives, after a
//! realistic latency.
//!
//! It exists to measure drover at a scale no test machine can host as real
//! engines (`bench/scale`: 300 hosts × 10 tasks), and to let tests and
//! benchmarks of the dashboard run against a thousand tasks. drover cannot
//! tell it from an engine for the calls it makes: it connects, negotiates
//! the API version, lists, inspects, creates, starts, stops, renames and
//! removes containers, samples stats, reads logs, execs, imports its marker
//! image, pulls from the registry the simulation holds, and follows the
//! event stream its rollout gate and dashboard listen to.
//!
//! Each engine keeps its state in memory ([`engine`]): containers with
//! labels, names, state, health (a container with a health check turns
//! healthy after its interval), restart counts and logs; images and
//! volumes. What an image's containers do is part of the image
//! ([`config::Behaviour`]): crash after a while, fail their health check,
//! ignore SIGTERM. Latency is set per call ([`config::Latencies`]) with a
//! seeded jitter; stats wait for the engine's once-a-second collector, as
//! real ones do. The `engine-sim` binary serves a simulation from the
//! command line; [`Simulator`] runs one inside a test.

pub mod api;
pub mod clock;
pub mod config;
pub mod engine;
pub mod shapes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{Behaviour, Call, ImageSpec, Latencies, SimConfig};

use engine::{Engine, Registry};

/// Binds every engine's socket, calls `ready` with their paths, and serves
/// until `shutdown` completes; then removes the sockets.
pub async fn serve(
    config: SimConfig,
    ready: impl FnOnce(&[PathBuf]),
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let mut registry = Registry::default();
    for spec in config.images.iter().chain(&config.registry) {
        registry
            .images
            .entry(spec.reference.clone())
            .or_insert_with(|| spec.clone());
    }
    let registry = Arc::new(registry);
    std::fs::create_dir_all(&config.dir)?;
    let trace = match &config.trace {
        Some(path) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
                })?,
        ))),
        None => None,
    };
    let mut paths = Vec::with_capacity(config.hosts);
    let mut servers = Vec::with_capacity(config.hosts);
    for i in 1..=config.hosts {
        let path = config.socket(i);
        remove_stale_socket(&path)?;
        let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        let engine = Arc::new(Engine::new(
            i,
            Arc::clone(&config),
            Arc::clone(&registry),
            trace.clone(),
        ));
        servers.push((engine, listener));
        paths.push(path);
    }
    let tasks: Vec<_> = servers
        .into_iter()
        .map(|(engine, listener)| tokio::spawn(api::accept_loop(engine, listener)))
        .collect();
    ready(&paths);
    shutdown.await;
    for task in &tasks {
        task.abort();
    }
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// A socket left by an earlier run is replaced; any other file is not.
fn remove_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

/// A simulation running on its own thread, for tests: stopped on drop.
pub struct Simulator {
    pub sockets: Vec<PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Simulator {
    /// Starts `config`'s engines and returns once they listen.
    pub fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_in(config, None)
    }

    /// `hosts` engines in a fresh temporary directory, with the default
    /// images and no latency: answers as fast as the machine gives them.
    pub fn quick(hosts: usize) -> std::io::Result<Simulator> {
        let dir = tempfile::Builder::new()
            .prefix("engsim")
            .tempdir_in("/tmp")?;
        let mut config = SimConfig::new(hosts, dir.path());
        config.latency = Latencies::none();
        Simulator::start_in(config, Some(dir))
    }

    fn start_in(config: SimConfig, dir: Option<tempfile::TempDir>) -> std::io::Result<Simulator> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let threads = config.threads.max(1);
        let failed = ready_tx.clone();
        let thread = std::thread::Builder::new()
            .name("engine-sim".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = failed.send(Err(e));
                        return;
                    }
                };
                let served = runtime.block_on(serve(
                    config,
                    |paths| {
                        let _ = ready_tx.send(Ok(paths.to_vec()));
                    },
                    async {
                        let _ = stop_rx.await;
                    },
                ));
                if let Err(e) = served {
                    let _ = failed.send(Err(e));
                }
            })?;
        let sockets = ready_rx.recv().map_err(|_| {
            std::io::Error::other("the simulator thread ended before it was ready")
        })??;
        Ok(Simulator {
            sockets,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// `unix://…` of engine `i` (1-based), for a host's `docker` in drover.toml.
    pub fn address(&self, i: usize) -> String {
        format!("unix://{}", self.sockets[i - 1].display())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
