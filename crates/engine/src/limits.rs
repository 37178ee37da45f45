//! Bounds on requests in flight: per host, so one host cannot take every
//! slot, and in total, so a few hundred hosts do not mean thousands of
//! sockets at once.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight at once to one host.
pub const PER_HOST: usize = 16;
/// Requests in flight at once to all hosts together.
pub const TOTAL: usize = 256;

/// The shared total bound; each engine adds its own per-host bound.
#[derive(Debug, Clone)]
pub struct Limits {
    total: Arc<Semaphore>,
    per_host: usize,
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
        }
    }

    /// A new per-host bound, sharing this total.
    pub(crate) fn for_host(&self) -> HostLimits {
        HostLimits {
            host: Arc::new(Semaphore::new(self.per_host)),
            total: Arc::clone(&self.total),
        }
    }

    /// Requests in flight now, across all hosts (for tests and benchmarks).
    pub fn in_flight(&self, total: usize) -> usize {
        total.saturating_sub(self.total.available_permits())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct HostLimits {
    host: Arc<Semaphore>,
    total: Arc<Semaphore>,
}

/// Held while a request is in flight.
pub(crate) struct Permit {
    _host: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl HostLimits {
    /// Waits for a slot on this host, then one in the total; always in that
    /// order, so waiting can never go round in a circle.
    pub(crate) async fn acquire(&self) -> Option<Permit> {
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
}
