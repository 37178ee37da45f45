//! The pure middle of every command: what should run ([`DesiredTask`]), what
//! does run ([`Observed`]), and the [`Plan`] between them.
//!
//! No I/O, no async, no Docker: `diff` is observe + [`plan()`] + the plan's
//! `Display`; `up` runs the same plan. `down`, `rollback`, `restart`,
//! `stop` and `start` plan in [`ops`]; `status` and `history` read
//! through [`views`]. Tests build `Observed` by hand.

mod config;
mod names;
mod observed;
pub mod ops;
mod plan;
mod render;
pub mod retention;
pub mod state;
pub mod time;
pub mod views;

pub use config::{
    identity_env, mask, mask_values, render_job, secret_names_label, DesiredTask, EnvValue,
    HealthConfig, MissingSecret, Resources, Secret, Secrets, Settings, TaskConfig, IDENTITY_ENV,
    MASK,
};
pub use names::{
    adoption_name, labels, lock_name, stop_mark_name, OneOffKind, TaskKey, MARKER_IMAGE,
    ROLE_ADOPTED, ROLE_LOCK, ROLE_RELEASE, ROLE_RUN, ROLE_STOPPED,
};
pub use observed::{
    belongs_to, role_of, Adoption, HostObservation, HostState, ImageDefaults, ImageIndex, Observed,
    ObservedContainer, Role,
};
pub use plan::{
    field_changes, plan, serves, Action, Change, ContainerRef, FieldChange, Phase, Plan, Pull,
    Scope, Step, StopMark, UnreachableHost,
};
pub use state::{Failing, Health, RunState, Runs};
