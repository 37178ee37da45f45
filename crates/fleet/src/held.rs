//! The usage samples `status` took last, held for its next run.
//!
//! CPU needs two samples, and the engine answers a sample only at its next
//! one-second collector tick: two samples cost two ticks. A run within
//! [`HELD_FOR`] of the last one measures CPU from the sample it held to the
//! one it takes, one tick. The file is a cache, not state: without it (first
//! run, deleted, unwritable) `status` takes two samples.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drover_engine::UsageSample;
use serde::{Deserialize, Serialize};

/// How long a held sample still counts: CPU from it is the load of at most
/// the last minute, still the current load.
pub const HELD_FOR: Duration = Duration::from_secs(60);

/// At most this many samples are held (the file stays small).
const MAX_HELD: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    /// When drover took it, milliseconds since the epoch.
    at_ms: u64,
    cpu_total_ns: u64,
    system_total_ns: u64,
}

/// Samples by full container ID.
#[derive(Debug, Default)]
pub struct HeldUsage {
    path: Option<PathBuf>,
    held: BTreeMap<String, Held>,
}

impl HeldUsage {
    /// The samples held in `$XDG_CACHE_HOME/drover/usage.json` (or
    /// `~/.cache/…`); none when there is no such file or it cannot be read.
    pub fn load() -> Self {
        Self::load_from(default_path())
    }

    fn load_from(path: Option<PathBuf>) -> Self {
        let now = now_ms();
        let held: BTreeMap<String, Held> = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let held = held.into_iter().filter(|(_, h)| is_fresh(h, now)).collect();
        HeldUsage { path, held }
    }

    /// The held sample of container `id` that CPU can be measured from
    /// against `now`: fresh, from an earlier tick, and of the same run of the
    /// container (its counter did not start again).
    pub fn earlier(&self, id: &str, now: &UsageSample) -> Option<UsageSample> {
        let h = self.held.get(id)?;
        let usable = is_fresh(h, now_ms())
            && h.system_total_ns < now.system_total_ns
            && h.cpu_total_ns <= now.cpu_total_ns;
        usable.then_some(UsageSample {
            memory_bytes: 0,
            cpu_total_ns: h.cpu_total_ns,
            system_total_ns: h.system_total_ns,
            online_cpus: now.online_cpus,
        })
    }

    pub fn hold(&mut self, id: &str, sample: &UsageSample) {
        self.held.insert(
            id.to_string(),
            Held {
                at_ms: now_ms(),
                cpu_total_ns: sample.cpu_total_ns,
                system_total_ns: sample.system_total_ns,
            },
        );
    }

    /// Writes the held samples (with what other runs held meanwhile, newest
    /// first); trouble writing only costs the next run a tick.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let now = now_ms();
        let mut all = Self::load_from(Some(path.clone())).held;
        for (id, h) in &self.held {
            let keep = all.get(id).is_none_or(|other| other.at_ms <= h.at_ms);
            if keep && is_fresh(h, now) {
                all.insert(id.clone(), *h);
            }
        }
        if all.len() > MAX_HELD {
            let mut by_age: Vec<(u64, String)> =
                all.iter().map(|(id, h)| (h.at_ms, id.clone())).collect();
            by_age.sort_unstable();
            for (_, id) in by_age.iter().take(all.len() - MAX_HELD) {
                all.remove(id);
            }
        }
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let Ok(text) = serde_json::to_vec(&all) else {
            return;
        };
        // Another run may write at the same moment: each writes its own file
        // and renames it into place, so a reader sees one whole file.
        let tmp = dir.join(format!(".usage.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("drover").join("usage.json"))
}

fn is_fresh(h: &Held, now_ms: u64) -> bool {
    now_ms.saturating_sub(h.at_ms) <= HELD_FOR.as_millis() as u64 && h.at_ms <= now_ms + 5_000
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: u64, system: u64) -> UsageSample {
        UsageSample {
            memory_bytes: 1,
            cpu_total_ns: cpu,
            system_total_ns: system,
            online_cpus: 2,
        }
    }

    #[test]
    fn a_held_sample_serves_the_next_run_until_it_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drover").join("usage.json");
        let mut held = HeldUsage::load_from(Some(path.clone()));
        held.hold("abc", &sample(1_000, 10_000));
        held.save();

        let held = HeldUsage::load_from(Some(path.clone()));
        let now = sample(2_000, 12_000);
        let earlier = held.earlier("abc", &now).expect("held");
        assert_eq!(
            (earlier.cpu_total_ns, earlier.system_total_ns),
            (1_000, 10_000)
        );
        assert!((now.cpu_percent_since(&earlier) - 100.0).abs() < 1e-9);
        assert!(held.earlier("other", &now).is_none());
        // Same tick, or a container whose counter started again: not usable.
        assert!(held.earlier("abc", &sample(1_000, 10_000)).is_none());
        assert!(held.earlier("abc", &sample(10, 12_000)).is_none());

        // A stale sample is dropped when read.
        let stale = BTreeMap::from([(
            "abc".to_string(),
            Held {
                at_ms: now_ms() - HELD_FOR.as_millis() as u64 - 1_000,
                cpu_total_ns: 1,
                system_total_ns: 1,
            },
        )]);
        std::fs::write(&path, serde_json::to_vec(&stale).unwrap()).unwrap();
        assert!(HeldUsage::load_from(Some(path.clone()))
            .earlier("abc", &now)
            .is_none());
    }

    #[test]
    fn saving_keeps_what_another_run_held_and_survives_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.json");
        std::fs::write(&path, b"not json").unwrap();
        let mut first = HeldUsage::load_from(Some(path.clone()));
        let mut second = HeldUsage::load_from(Some(path.clone()));
        first.hold("a", &sample(1, 1));
        second.hold("b", &sample(1, 1));
        first.save();
        second.save();
        let both = HeldUsage::load_from(Some(path.clone()));
        assert_eq!(both.held.keys().collect::<Vec<_>>(), ["a", "b"]);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
