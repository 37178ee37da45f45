//! Bounds on requests in flight: per host, so one host cannot take every
//! slot, and in total, so a few hundred hosts do not mean thousands of
//! sockets at once.
//!
//! Usage samples have bounds of their own. A stats request costs the engine
//! next to nothing: it waits for the engine's once-a-second collector, which
//! serves every waiting request in one pass. Under the ordinary bound, a
//! host's 30 containers would be sampled 16 at a time, a second per batch;
//! under a total below the fleet's container count, the same happens to the
//! fleet (3000 containers, 1024 at a time: three collections, about 2 s more
//! for `status` at 300 hosts). What a sample in flight costs drover is one
//! socket, so their total follows the open-file limit ([`samples_total`]).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight at once to one host.
pub const PER_HOST: usize = 16;
/// Requests in flight at once to all hosts together.
pub const TOTAL: usize = 256;
/// Usage samples (stats requests) in flight at once to one host.
pub const SAMPLES_PER_HOST: usize = 64;
/// Usage samples in flight at once to all hosts together, at most.
pub const SAMPLES_TOTAL: usize = 8192;
/// ... and at least, whatever the open-file limit.
const SAMPLES_TOTAL_MIN: usize = 256;

/// The bound on usage samples in flight to all hosts together: each holds a
/// socket until the engine's next collection, so half of what the process
/// may open (drover lifts its soft limit to the hard one at start), between
/// 256 and [`SAMPLES_TOTAL`].
pub fn samples_total() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let open_files = if known {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        0
    };
    samples_bound(open_files)
}

fn samples_bound(open_files: usize) -> usize {
    (open_files / 2).clamp(SAMPLES_TOTAL_MIN, SAMPLES_TOTAL)
}

/// The shared total bound; each engine adds its own per-host bound.
#[derive(Debug, Clone)]
pub struct Limits {
    total: Arc<Semaphore>,
    per_host: usize,
    samples_total: Arc<Semaphore>,
    samples_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(TOTAL, PER_HOST)
    }
}

impl Limits {
    pub fn new(total: usize, per_host: usize) -> Self {
        Limits {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_host: per_host.max(1),
            samples_total: Arc::new(Semaphore::new(samples_total())),
            samples_per_host: SAMPLES_PER_HOST,
        }
    }

    /// A new per-host bound, sharing this total.
    pub(crate) fn for_host(&self) -> HostLimits {
        HostLimits {
            requests: Pair {
                host: Arc::new(Semaphore::new(self.per_host)),
                total: Arc::clone(&self.total),
            },
            samples: Pair {
                host: Arc::new(Semaphore::new(self.samples_per_host)),
                total: Arc::clone(&self.samples_total),
            },
        }
    }

    /// Requests in flight now, across all hosts (for tests and benchmarks).
    pub fn in_flight(&self, total: usize) -> usize {
        total.saturating_sub(self.total.available_permits())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct HostLimits {
    requests: Pair,
    samples: Pair,
}

/// A host's own bound and the total it shares.
#[derive(Debug, Clone)]
struct Pair {
    host: Arc<Semaphore>,
    total: Arc<Semaphore>,
}

/// Held while a request is in flight.
pub(crate) struct Permit {
    _host: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl HostLimits {
    /// A slot for an ordinary request.
    pub(crate) async fn acquire(&self) -> Option<Permit> {
        self.requests.acquire().await
    }

    /// A slot for a usage sample.
    pub(crate) async fn acquire_sample(&self) -> Option<Permit> {
        self.samples.acquire().await
    }
}

impl Pair {
    /// Waits for a slot on this host, then one in the total; always in that
    /// order, so waiting can never go round in a circle.
    async fn acquire(&self) -> Option<Permit> {
        let host = Arc::clone(&self.host).acquire_owned().await.ok()?;
        let total = Arc::clone(&self.total).acquire_owned().await.ok()?;
        Some(Permit {
            _host: host,
            _total: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_cannot_take_every_slot() {
        let limits = Limits::new(4, 2);
        let a = limits.for_host();
        let b = limits.for_host();
        let _a1 = a.acquire().await;
        let _a2 = a.acquire().await;
        // Host a is at its bound; a third request waits, host b does not.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), a.acquire()).await;
        assert!(waiting.is_err());
        let b1 = tokio::time::timeout(std::time::Duration::from_millis(50), b.acquire()).await;
        assert!(b1.is_ok());
    }

    #[test]
    fn the_samples_in_flight_follow_the_open_file_limit() {
        // 300 hosts x 10 containers sampled at once where the limit allows it.
        assert_eq!(samples_bound(20_000), SAMPLES_TOTAL);
        assert_eq!(samples_bound(8_192), 4_096);
        assert_eq!(samples_bound(1_024), 512);
        assert_eq!(samples_bound(0), 256);
        assert_eq!(samples_bound(usize::MAX), SAMPLES_TOTAL);
        let limits = Limits::default();
        assert_eq!(limits.samples_total.available_permits(), samples_total());
    }

    #[tokio::test]
    async fn samples_do_not_wait_for_ordinary_requests() {
        let limits = Limits::new(4, 1);
        let host = limits.for_host();
        let _busy = host.acquire().await;
        let mut samples = Vec::new();
        for _ in 0..SAMPLES_PER_HOST {
            let sample =
                tokio::time::timeout(std::time::Duration::from_millis(50), host.acquire_sample())
                    .await;
            samples.push(sample.expect("a sample slot"));
        }
        let one_more =
            tokio::time::timeout(std::time::Duration::from_millis(50), host.acquire_sample()).await;
        assert!(one_more.is_err(), "samples have a bound of their own");
    }
}
