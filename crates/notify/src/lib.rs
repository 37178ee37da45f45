//! Telling the team: deploy results and incidents posted to a webhook.
//!
//! - [`event`]: the fourteen event kinds, their classes, one event as data;
//! - [`render`]: an event as the body a webhook receives (`slack` or `json`),
//!   secrets masked;
//! - [`tracker`]: what `drover watch` sees, turned into one message per
//!   incident, rate-limited per job — pure, the clock passed in;
//! - [`Notifier`]: posting that never waits, a courier retrying with
//!   backoff, and a deadline: a hung or failing webhook never fails a deploy
//!   nor holds it up more than the budget given to [`Notifier::finish`];
//! - [`handoff`]: what a command could not deliver in time, retried by a
//!   detached `drover notify-retry` for a few minutes more.

mod deliver;
pub mod event;
pub mod handoff;
mod notifier;
pub mod render;
pub mod time;
pub mod tracker;

pub use deliver::{stderr_notes, Notes, RetryPolicy};
pub use event::{Deploy, Event, EventKind};
pub use handoff::{retry_from, HandOff, Pending, RETRY_COMMAND};
pub use notifier::{Notifier, Options, HAND_OFF_RESERVE};
pub use render::Sender;
pub use tracker::{Fact, Rules, Tracker};
