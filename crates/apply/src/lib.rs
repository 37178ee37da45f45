//! Apply: run plans against the engines, safely.
//!
//! [`Executor`] is the one rollout engine every command that changes what
//! runs goes through (`up`, `update`, `rolling-update`, `rollback`,
//! `restart`, `stop`, `start`, `down`): pull first, batches, health gates,
//! keep-aside and put-back, interruption. [`lock`] keeps two operators from
//! changing one job at once; [`markers`] makes the never-started containers
//! locks and stop marks are.

pub mod events;
mod executor;
pub mod gate;
pub mod lock;
pub mod markers;
pub mod watch;

pub use events::{Event, GateFailure, Outcome, Phase, Report, Restored, StepError};
pub use executor::{Deployment, Engines, Executor, RolloutPolicy};
