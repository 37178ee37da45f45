//! A client for the Docker Registry HTTP API v2, for `drover images` and
//! `drover update`.
//!
//! Those commands answer one question for an operator: which images of this
//! job exist, and which is the newest? A registry only knows tag *names*, in
//! no useful order, so ordering needs each tag's image creation time, which
//! lives two hops away: tag → manifest (or a manifest list, then the
//! linux/amd64 manifest) → config blob → `created`. [`RegistryClient`] walks
//! that path with bounded concurrency, caches the config blobs on disk (they
//! are content-addressed, so a cached blob can never be stale), and speaks
//! the registry auth schemes real deployments use: anonymous, `Basic`, and
//! `Bearer` tokens from a token server.
//!
//! Registries are remote, sometimes hostile or misconfigured (a proxy answering
//! with an HTML page, a login portal, a closed port), so every request has a
//! timeout, every response body is read with a size limit, every digest is
//! verified before it is trusted, and every failure becomes a
//! [`RegistryError`] that says what to do — without ever echoing credentials,
//! tokens or a page of HTML.
//!
//! Credentials come from the operator's environment or the Docker client's
//! own `config.json` (see [`Credentials::lookup`]), so `docker login` is
//! enough for drover too.
//!
//! ```no_run
//! # async fn example() -> Result<(), drover_registry::RegistryError> {
//! use std::time::Duration;
//! use drover_registry::RegistryClient;
//!
//! // The repository as the registry's API names it: `drover_spec::ImageRef`
//! // splits an image reference by Docker's rules (`registry()`, `path()`).
//! let client = RegistryClient::with_credentials_from_environment(
//!     "http://127.0.0.1:5000",
//!     Duration::from_secs(10),
//! )?;
//! for tag in client.tags_newest_first("team/app").await? {
//!     println!("{} {}", tag.tag, tag.created.as_deref().unwrap_or("?"));
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod cache;
mod client;
mod credentials;
mod error;
mod http;
mod manifest;
mod order;
mod reference;
mod time;

pub use client::{RegistryClient, TAG_INFO_CONCURRENCY};
pub use credentials::{Credentials, PASSWORD_ENV, USERNAME_ENV};
pub use error::RegistryError;

use serde::Serialize;

/// What the registry knows about one tag: which image it names and when that
/// image was built.
///
/// Listing tags must not fail because one of them is broken (a manifest
/// deleted behind the tag, a foreign artifact), so a tag whose details could
/// not be read is still returned, with `error` saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagInfo {
    /// The tag, e.g. `"20151030"`.
    pub tag: String,
    /// The digest of the manifest (or manifest list) the tag names, as
    /// `docker pull` resolves it and as `RepoDigests` shows it on a host.
    pub digest: Option<String>,
    /// The digest of the image config blob (for a manifest list: of the
    /// linux/amd64 image, else of its first image). Equal to the image ID
    /// a Docker engine shows for this image.
    pub config_digest: Option<String>,
    /// The image creation time exactly as written in the config blob
    /// (RFC 3339).
    pub created: Option<String>,
    /// `created` as seconds since the Unix epoch, when it parses.
    pub created_unix: Option<i64>,
    /// Why the details of this tag could not be read.
    pub error: Option<String>,
}

impl TagInfo {
    /// A tag whose details could not be read.
    pub fn failed(tag: impl Into<String>, error: impl std::fmt::Display) -> Self {
        TagInfo {
            tag: tag.into(),
            digest: None,
            config_digest: None,
            created: None,
            created_unix: None,
            error: Some(error.to_string()),
        }
    }
}
