//! `[release]`: a command run once, with the new configuration, before a
//! rollout that changes a job's image — a database migration, Heroku's
//! release phase. Set in a job, its profile or `[defaults]`, and merged key
//! by key like `[health]`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::load::Loader;
use crate::merge::{pick_in, tables, Layer};
use crate::source::Loc;
use crate::units::duration_at_most;

/// Default `[release] timeout`: long enough for a real migration, short
/// enough that a hung one does not hold the job's lock for hours.
pub const DEFAULT_RELEASE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A release that may take longer is a bug, not a policy.
const MAX_RELEASE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Clone, Deserialize)]
// Deserialized only as a table: see `tables_only!` in crate::raw.
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawRelease {
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub timeout: Option<Spanned<String>>,
}

/// The release command of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Never empty.
    pub command: Vec<String>,
    /// Past it, the command is stopped and the rollout does not happen.
    pub timeout: Duration,
}

impl Loader {
    pub(crate) fn release(&mut self, layers: &[Layer<'_>]) -> Option<Release> {
        let releases = tables(layers, |j| j.release.as_ref());
        let (first_file, first) = *releases.first()?;
        let command = match pick_in(&releases, |r| r.command.as_ref()) {
            Some((loc, command)) => {
                if command.is_empty() {
                    self.error(&loc, "release command must not be empty: name the program to run, e.g. [\"bin/migrate\"]");
                }
                self.strings_without_nul(command, loc.file, "release command")
            }
            None => {
                self.error(
                    &Loc {
                        file: first_file,
                        span: first.span(),
                    },
                    "[release] needs `command`, the command to run before the rollout",
                );
                Vec::new()
            }
        };
        let picked = pick_in(&releases, |r| r.timeout.as_ref());
        let timeout = match &picked {
            Some((loc, text)) => {
                match duration_at_most("release timeout", text, MAX_RELEASE_TIMEOUT) {
                    Ok(timeout) if timeout.is_zero() => {
                        self.error(loc, "release timeout must be above 0");
                        timeout
                    }
                    Ok(timeout) => timeout,
                    Err(message) => {
                        self.error(loc, message);
                        DEFAULT_RELEASE_TIMEOUT
                    }
                }
            }
            None => DEFAULT_RELEASE_TIMEOUT,
        };
        Some(Release { command, timeout })
    }
}
