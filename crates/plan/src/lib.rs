//! The pure middle of every command: what should run ([`DesiredTask`]), what
//! does run ([`Observed`]), and the [`Plan`] between them.
//!
//! No I/O, no async, no Docker: `diff` is observe + [`plan()`] + the plan's
//! `Display`; `up` runs the same plan. Tests build `Observed` by hand.

mod config;
mod observed;
mod plan;
mod render;

pub use config::{
    labels, mask, render_job, DesiredTask, HealthConfig, MissingSecret, Secrets, TaskConfig, MASK,
};
pub use observed::{normalize_image_ref, HostObservation, HostState, Observed, ObservedContainer};
pub use plan::{
    field_changes, plan, Action, Change, ContainerRef, FieldChange, Plan, Pull, Scope,
    UnreachableHost,
};
pub use render::task_name;
