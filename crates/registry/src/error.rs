//! Every way talking to a registry can fail, as one enum.
//!
//! The messages are written for the operator who runs `drover images` and
//! sees nothing else: each names the registry (or token server, or file)
//! involved and, where there is one, the fix. Anything quoted from a server
//! is cut to its first line and about 200 characters by the code that builds
//! these, and no variant carries a credential or a token.

use std::path::PathBuf;
use std::time::Duration;

/// An error from the registry client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// `[registry] url` is not something we can talk to.
    #[error("invalid registry url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A repository name or tag that the registry API cannot carry.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The HTTP client could not be set up (TLS roots, for instance).
    #[error("cannot set up the http client: {0}")]
    Client(String),

    /// No answer: connection refused, DNS failure, TLS failure, reset.
    #[error("cannot reach registry {url}: {cause}")]
    Unreachable { url: String, cause: String },

    /// The server took longer than the client's timeout.
    #[error("registry {url} did not answer within {}", humanize(*.timeout))]
    Timeout { url: String, timeout: Duration },

    /// The token server named by the registry could not be reached.
    #[error("cannot reach token server {realm} (named by registry {registry}): {cause}")]
    TokenServerUnreachable {
        registry: String,
        realm: String,
        cause: String,
    },

    /// The token server answered, but not with a token.
    #[error("token server {realm} (named by registry {registry}) failed: {reason}")]
    TokenServer {
        registry: String,
        realm: String,
        reason: String,
    },

    /// The registry wants credentials and we have none.
    #[error(
        "registry {registry} requires credentials to read {repository}: set \
         DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD, or run `docker login {registry}`"
    )]
    CredentialsRequired {
        registry: String,
        repository: String,
    },

    /// The registry (or its token server) refused our credentials.
    #[error(
        "registry {registry} rejected the credentials from {source_name}: check them, \
         or run `docker login {registry}` again"
    )]
    CredentialsRejected {
        registry: String,
        source_name: String,
    },

    /// Not allowed to pull this repository (403, or a token without the
    /// pull scope).
    #[error("registry {registry} denied pull access to {repository} for {who}{}", detail(.message))]
    AccessDenied {
        registry: String,
        repository: String,
        /// "the credentials from …" or "anonymous requests".
        who: String,
        message: String,
    },

    /// The registry asks for an authentication scheme we do not speak.
    #[error("registry {registry} asks for unsupported authentication {challenge:?}")]
    UnsupportedAuth { registry: String, challenge: String },

    /// 404 for the repository itself.
    #[error("repository {repository} not found on registry {registry}")]
    RepositoryNotFound {
        registry: String,
        repository: String,
    },

    /// 404 for a tag or a manifest digest.
    #[error("{} {reference} not found in repository {repository} on registry {registry}", if .reference.contains(':') { "manifest" } else { "tag" })]
    ManifestNotFound {
        registry: String,
        repository: String,
        reference: String,
    },

    /// 404 for a blob a manifest refers to.
    #[error("blob {digest} of {repository} not found on registry {registry}")]
    BlobNotFound {
        registry: String,
        repository: String,
        digest: String,
    },

    /// Something answered, but it does not speak the registry API.
    #[error("{url} answered {status} without the Docker Registry API: is {registry} a docker registry (check [registry] url)?")]
    NotARegistry {
        registry: String,
        url: String,
        status: String,
    },

    /// Any other unsuccessful status.
    #[error("registry {registry} answered {status} for {url}{}", detail(.message))]
    Status {
        registry: String,
        url: String,
        status: String,
        message: String,
    },

    /// A body larger than we are willing to hold in memory.
    #[error("{what} from {url} is larger than the {} limit", bytes(*.limit))]
    TooLarge {
        what: &'static str,
        url: String,
        limit: usize,
    },

    /// A body that is not the JSON the API promises.
    #[error("invalid {what} from {url}: {cause}{}", if *.registry_api { "" } else { " (the server does not look like a docker registry: check [registry] url)" })]
    InvalidJson {
        what: &'static str,
        url: String,
        cause: String,
        registry_api: bool,
    },

    /// Content whose sha256 is not the digest it was asked for by.
    #[error("registry {registry} sent content for {digest} whose digest is {actual}: refusing to use it")]
    DigestMismatch {
        registry: String,
        digest: String,
        actual: String,
    },

    /// A digest that is not `algorithm:hex`.
    #[error("registry {registry} sent an invalid digest {digest:?}")]
    InvalidDigest { registry: String, digest: String },

    /// A manifest drover cannot read (schema 1, an unknown artifact type).
    #[error(
        "{repository}:{reference} on registry {registry} has an unsupported manifest: {reason}"
    )]
    UnsupportedManifest {
        registry: String,
        repository: String,
        reference: String,
        reason: String,
    },

    /// Pagination that does not end or points elsewhere.
    #[error("registry {registry} sent a bad tag list page link {link:?}: {reason}")]
    BadPagination {
        registry: String,
        link: String,
        reason: &'static str,
    },

    /// `DROVER_REGISTRY_USERNAME` without `DROVER_REGISTRY_PASSWORD` or the reverse.
    #[error("{set} is set but {missing} is not: set both, or neither to use docker's credentials")]
    IncompleteEnvCredentials {
        set: &'static str,
        missing: &'static str,
    },

    /// The Docker client's config.json cannot be read or parsed.
    #[error("cannot read docker config {}: {cause}", .path.display())]
    DockerConfig { path: PathBuf, cause: String },

    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} failed for {host}: {cause}")]
    CredentialHelper {
        helper: String,
        host: String,
        cause: String,
    },
}

impl RegistryError {
    /// The registry answered that it holds no such repository, tag or manifest.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::RepositoryNotFound { .. } | RegistryError::ManifestNotFound { .. }
        )
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn bytes(limit: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if limit >= MIB && limit.is_multiple_of(MIB) {
        format!("{} MiB", limit / MIB)
    } else {
        format!("{limit} bytes")
    }
}

pub(crate) fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Cuts text from a server to something that fits in one error line: the
/// first non-empty line, control characters dropped, at most `MAX` chars.
pub(crate) fn one_line(text: &str) -> String {
    const MAX: usize = 200;
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    // Control characters and bytes that were not UTF-8 (binary answers) are dropped.
    let printable = |c: &char| !c.is_control() && *c != '\u{fffd}';
    let mut out: String = line.chars().filter(printable).take(MAX).collect();
    if line.chars().filter(printable).count() > MAX {
        out.push('…');
    }
    out
}

/// Lowercases the first letter of an OS or library message, so it reads as
/// the tail of our own sentence.
pub(crate) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if !chars.clone().next().is_some_and(char::is_uppercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_takes_the_first_line_and_caps_it() {
        assert_eq!(one_line("\n  first line \nsecond"), "first line");
        let long = "x".repeat(500);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), 201);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(one_line("a\u{fffd}\u{fffd}b"), "ab");
    }

    #[test]
    fn lower_first_keeps_acronyms() {
        assert_eq!(lower_first("Connection refused"), "connection refused");
        assert_eq!(lower_first("TLS handshake"), "TLS handshake");
        assert_eq!(lower_first(""), "");
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let errors = [
            RegistryError::CredentialsRequired {
                registry: "reg:5000".into(),
                repository: "team/app".into(),
            },
            RegistryError::Timeout {
                url: "http://reg:5000".into(),
                timeout: Duration::from_millis(1500),
            },
            RegistryError::TooLarge {
                what: "tag list",
                url: "http://reg:5000/v2/a/tags/list".into(),
                limit: 16 * 1024 * 1024,
            },
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(char::is_lowercase), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        assert_eq!(
            RegistryError::Timeout {
                url: "http://reg:5000".into(),
                timeout: Duration::from_millis(1500),
            }
            .to_string(),
            "registry http://reg:5000 did not answer within 1500ms"
        );
    }
}
