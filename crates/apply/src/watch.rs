//! One subscription to each host's engine events for a whole run, shared by
//! every gate waiting on that host: a gate wakes the moment the engine says
//! something about its container, and a hundred gates on one host cost one
//! stream, not a hundred (an SSH host served through `dial-stdio` has only
//! a few sessions to give).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use drover_engine::Engine;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Container IDs the events concern, as they come.
pub type Wakeups = broadcast::Receiver<String>;

/// Events buffered per subscriber; one that falls further behind just looks again.
const BUFFER: usize = 1024;

pub struct Watch {
    env: String,
    /// A weak sender per host: the feeding task holds the only strong one, so
    /// when the engine's stream ends, every gate hears it (and polls instead).
    hubs: Mutex<BTreeMap<String, Hub>>,
}

/// A host's subscription: how to join it, and the task feeding it.
type Hub = (broadcast::WeakSender<String>, JoinHandle<()>);

impl Watch {
    pub fn new(env: &str) -> Self {
        Watch {
            env: env.to_string(),
            hubs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Wake-ups for `host`, starting its subscription if there is none.
    pub fn subscribe(&self, host: &str, engine: &Arc<dyn Engine>) -> Option<Wakeups> {
        let mut hubs = self.hubs.lock().ok()?;
        if let Some(sender) = hubs.get(host).and_then(|(weak, _)| weak.upgrade()) {
            return Some(sender.subscribe());
        }
        let (feed, receiver) = broadcast::channel(BUFFER);
        let weak = feed.downgrade();
        let mut events = engine.events(&self.env);
        let task = tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                let _ = feed.send(event.container);
            }
        });
        hubs.insert(host.to_string(), (weak, task));
        Some(receiver)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(hubs) = self.hubs.lock() {
            for (_, task) in hubs.values() {
                task.abort();
            }
        }
    }
}
