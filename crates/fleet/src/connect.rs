//! Connecting to every host at once, and observing them all at once: a
//! slow or dead host costs its own deadline and delays nobody else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use drover_apply::Engines;
use drover_engine::{connect, observe, Engine, EngineError};
use drover_plan::{HostObservation, Observed, Scope};
use futures::future::join_all;

use drover_spec::{Diagnostic, SpecError};

use crate::{Fleet, FleetError};

/// Hosts connected to, and the ones that could not be reached.
#[derive(Default)]
pub struct Connections {
    pub engines: Engines,
    pub unreachable: BTreeMap<String, EngineError>,
}

impl Fleet {
    /// Connects to `hosts`, all at once.
    pub async fn connect(&self, hosts: &BTreeSet<String>) -> Connections {
        let attempts = hosts
            .iter()
            .filter_map(|name| self.env.hosts.get(name))
            .map(|host| async move {
                (
                    host.name.clone(),
                    connect(host, &self.limits)
                        .await
                        .map(|e| Arc::new(e) as Arc<dyn Engine>),
                )
            });
        let mut connections = Connections::default();
        for (name, result) in join_all(attempts).await {
            match result {
                Ok(engine) => {
                    connections.engines.insert(name, engine);
                }
                Err(e) => {
                    connections.unreachable.insert(name, e);
                }
            }
        }
        connections
    }

    /// Connects to the hosts `job` runs on (that this run may touch).
    pub async fn connect_job(&self, job: &drover_spec::Job) -> Connections {
        let allowed = self.hosts();
        let hosts: BTreeSet<String> = job
            .hosts
            .iter()
            .filter(|h| allowed.contains(*h))
            .cloned()
            .collect();
        self.connect(&hosts).await
    }

    /// Connects to every host this run may touch.
    pub async fn connect_all(&self) -> Connections {
        self.connect(&self.hosts()).await
    }

    /// Reads every connected host at once; a host that fails to answer is
    /// recorded as unreachable, with why.
    pub async fn observe(&self, connections: &Connections, scope: &Scope) -> Observed {
        let env = self.env.name.as_str();
        let at = drover_plan::time::now();
        let reads = connections.engines.iter().map(|(name, engine)| async move {
            let observation = match observe(engine.as_ref(), env, scope).await {
                Ok(state) => HostObservation::Reachable(state),
                Err(e) => HostObservation::Unreachable {
                    address: engine.address().to_string(),
                    error: reason(&e),
                },
            };
            (name.clone(), observation)
        });
        let mut hosts: BTreeMap<String, HostObservation> =
            join_all(reads).await.into_iter().collect();
        for (name, error) in &connections.unreachable {
            let address = self
                .env
                .hosts
                .get(name)
                .map(|h| h.docker.to_string())
                .unwrap_or_default();
            hosts.insert(
                name.clone(),
                HostObservation::Unreachable {
                    address,
                    error: reason(error),
                },
            );
        }
        Observed { hosts, at }
    }
}

/// Why a host could not be read, without repeating its name and address.
fn reason(error: &EngineError) -> String {
    match error {
        EngineError::Unreachable { reason, .. } => reason.clone(),
        EngineError::Timeout { what, after, .. } => {
            format!("{what} got no answer within {}s", after.as_secs_f64())
        }
        other => other.to_string(),
    }
}

impl Fleet {
    /// The client certificates of every `tls` host, read as connecting
    /// reads them: a file that is no certificate or key (or a key that is
    /// not the certificate's) is an error at the host's `tls`, before any
    /// host is asked.
    pub fn check_tls(&self) -> Result<(), FleetError> {
        let problems: Vec<Diagnostic> = self
            .env
            .hosts
            .values()
            .filter_map(|host| {
                let tls = host.tls.as_ref()?;
                let why = drover_engine::check_tls_files(tls).err()?;
                let message = format!("tls of host {}: {why}", host.name);
                Some(match &tls.place {
                    Some(place) => place.error(message),
                    None => Diagnostic::whole_file(self.env.hosts_file.clone(), message),
                })
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FleetError::Spec(SpecError::Invalid(problems)))
        }
    }
}
