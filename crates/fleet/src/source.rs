//! The environment as the files say it now.
//!
//! A CLI run loads the files once; the dashboard and `drover watch` stay up
//! for days while the operator edits jobs in git. So the files are looked at again (a
//! `stat` of each, at most every couple of seconds) and re-read when any of
//! them changed. A change that does not load keeps the last good
//! environment and shows why on every page, as `drover validate` would.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::Fleet;

/// How often the files are looked at, at most.
const CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct FleetSource {
    state: Mutex<State>,
}

struct State {
    fleet: Arc<Fleet>,
    fingerprint: Vec<(PathBuf, Option<SystemTime>, u64)>,
    checked: Instant,
    /// Why the files as they are now do not load.
    error: Option<String>,
    /// Bumped on each successful reload.
    generation: u64,
}

impl FleetSource {
    pub fn new(fleet: Fleet) -> FleetSource {
        let fingerprint = fingerprint(&fleet.env.dir, fleet.env.stage.as_deref());
        FleetSource {
            state: Mutex::new(State {
                fleet: Arc::new(fleet),
                fingerprint,
                checked: Instant::now(),
                error: None,
                generation: 0,
            }),
        }
    }

    /// The environment, re-read first when its files changed.
    pub fn current(&self) -> Arc<Fleet> {
        let Ok(mut state) = self.state.lock() else {
            // A panic elsewhere poisoned the lock; the data is still whole.
            return self.fallback();
        };
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let dir = state.fleet.env.dir.clone();
            let stage = state.fleet.env.stage.clone();
            let now = fingerprint(&dir, stage.as_deref());
            if now != state.fingerprint {
                state.fingerprint = now;
                let hosts: Vec<String> = state.fleet.only_hosts.iter().cloned().collect();
                match Fleet::load(Some(&dir), stage.as_deref(), &hosts) {
                    Ok(fleet) => {
                        state.fleet = Arc::new(fleet);
                        state.error = None;
                        state.generation += 1;
                    }
                    Err(e) => state.error = Some(e.to_string()),
                }
            }
        }
        Arc::clone(&state.fleet)
    }

    fn fallback(&self) -> Arc<Fleet> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&state.fleet)
    }

    /// Why the files do not load as they are now (the last good ones are used).
    pub fn error(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.error.clone()
    }

    /// Changes each time the environment is re-read.
    pub fn generation(&self) -> u64 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.generation
    }
}

/// Size and modification time of every file the environment is read from.
fn fingerprint(dir: &Path, stage: Option<&str>) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut paths = vec![dir.join("drover.toml"), dir.join("secrets.env")];
    if let Some(stage) = stage {
        paths.push(dir.join(format!("drover.{stage}.toml")));
    }
    let jobs = dir.join("jobs");
    paths.push(jobs.clone());
    if let Ok(entries) = std::fs::read_dir(&jobs) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        paths.extend(files);
    }
    paths
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (path, modified, len)
        })
        .collect()
}
