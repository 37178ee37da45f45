//! The environment as the files say it now: the dashboard's, and the
//! incident watcher's it starts ([`drover_fleet::FleetSource`]).

pub use drover_fleet::FleetSource;
