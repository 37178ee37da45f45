//! Engines connected once and kept.
//!
//! A CLI run connects, works and exits; the dashboard serves for days, so it
//! keeps one client per host for every page, stream and shell, and connects
//! again only after a host was found unreachable, or when `drover.toml`
//! (re-read while the dashboard runs) gives the host another address or
//! other certificates: a client is kept under the host's whole entry, not
//! its name alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_engine::{Engine, EngineError};
use drover_fleet::Connections;
use drover_spec::Host;
use futures::future::join_all;

use crate::source::FleetSource;

/// A client, and the entry of drover.toml it was made from.
type Made = (Host, Arc<dyn Engine>);
/// A connect that failed: when, to which entry, why.
type Failed = (Instant, Host, EngineError);

#[derive(Clone)]
pub struct Pool {
    source: Arc<FleetSource>,
    /// Each host's client, with the entry of drover.toml it was made from.
    engines: Arc<Mutex<BTreeMap<String, Made>>>,
    /// One connect at a time per host: a page and the hub asking together
    /// share the attempt.
    connecting: Arc<Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Hosts that just failed to connect, and why: a page does not wait a
    /// host's whole timeout again within [`RETRY_AFTER`].
    failed: Arc<Mutex<BTreeMap<String, Failed>>>,
}

/// How long a failed connect is answered from memory.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Pool {
    pub fn new(source: Arc<FleetSource>) -> Pool {
        Pool {
            source,
            engines: Arc::default(),
            connecting: Arc::default(),
            failed: Arc::default(),
        }
    }

    /// The client of `host`, if it was made from the entry drover.toml has now.
    fn cached(&self, host: &str) -> Option<Arc<dyn Engine>> {
        let entry = self.source.current().env.hosts.get(host).cloned()?;
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        match engines.get(host) {
            Some((made_from, engine)) if *made_from == entry => Some(Arc::clone(engine)),
            Some(_) => {
                // The entry changed (another address, other certificates):
                // the old client goes, the next use connects anew.
                engines.remove(host);
                None
            }
            None => None,
        }
    }

    /// The engine of `host`, connecting when there is none yet.
    pub async fn get(&self, host: &str) -> Result<Arc<dyn Engine>, EngineError> {
        if let Some(engine) = self.cached(host) {
            return Ok(engine);
        }
        let gate = {
            let mut connecting = self.connecting.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(connecting.entry(host.to_string()).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(engine) = self.cached(host) {
            return Ok(engine);
        }
        let fleet = self.source.current();
        let Some(entry) = fleet.env.hosts.get(host).cloned() else {
            return Err(EngineError::Other(format!(
                "host {host} is not in the environment"
            )));
        };
        {
            let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, made_from, error)) = failed.get(host) {
                if *made_from == entry && at.elapsed() < RETRY_AFTER {
                    return Err(error.clone());
                }
            }
        }
        let hosts = BTreeSet::from([host.to_string()]);
        let mut connections = fleet.connect(&hosts).await;
        if let Some(error) = connections.unreachable.remove(host) {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.insert(host.to_string(), (Instant::now(), entry, error.clone()));
            return Err(error);
        }
        let Some(engine) = connections.engines.remove(host) else {
            return Err(EngineError::Other(format!(
                "host {host} is not in the environment"
            )));
        };
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        engines.insert(host.to_string(), (entry, Arc::clone(&engine)));
        Ok(engine)
    }

    /// Drops `host`'s client: the next use connects again.
    pub fn forget(&self, host: &str) {
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        engines.remove(host);
    }

    /// Every host of the environment, connected (at once) where possible.
    pub async fn connections(&self) -> Connections {
        let hosts = self.source.current().hosts();
        let attempts = hosts.into_iter().map(|host| async move {
            let result = self.get(&host).await;
            (host, result)
        });
        let mut connections = Connections::default();
        for (host, result) in join_all(attempts).await {
            match result {
                Ok(engine) => {
                    connections.engines.insert(host, engine);
                }
                Err(error) => {
                    connections.unreachable.insert(host, error);
                }
            }
        }
        connections
    }

    /// After a call failed because `host` is unreachable: connect anew next time.
    pub fn failed(&self, host: &str, error: &EngineError) {
        if error.is_unreachable() {
            self.forget(host);
        }
    }
}
