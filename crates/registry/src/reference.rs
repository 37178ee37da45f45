//! Image references and the names inside them.
//!
//! A job's `image` is a Docker reference (`reg:5000/team/app:1`), while the
//! registry API wants a host, a repository and a tag apart. The split must
//! follow Docker's own rules exactly — otherwise `drover images` would ask a
//! different registry than the one `docker pull` uses. Names are also
//! validated before they go into a URL path, so a stray `..` or `?` in a
//! spec cannot make the client ask for something else.

use crate::RegistryError;

/// The registry Docker uses when a reference names none.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// Splits an image reference into (registry host, repository, tag or digest).
///
/// `"127.0.0.1:5000/team/app:1"` → `("127.0.0.1:5000", "team/app", Some("1"))`;
/// `"app"` → `("docker.io", "library/app", None)`. As in Docker, the first
/// path component is a registry host only if it contains `.` or `:`, is
/// `localhost`, or has an uppercase letter; `index.docker.io` is `docker.io`;
/// official images get `library/`. A reference with both a tag and a digest
/// (`app:1@sha256:…`) yields the digest, since that is what Docker pulls.
pub fn split_reference(reference: &str) -> (String, String, Option<String>) {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_string())),
        None => (reference, None),
    };
    let last_component_start = name.rfind('/').map_or(0, |slash| slash + 1);
    let (name, tag) = match name[last_component_start..].rfind(':') {
        Some(colon) => {
            let colon = last_component_start + colon;
            (&name[..colon], Some(name[colon + 1..].to_string()))
        }
        None => (name, None),
    };
    let (host, repository) = match name.split_once('/') {
        Some((first, rest)) if is_host(first) => (first.to_string(), rest.to_string()),
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let host = if host == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        host
    };
    let repository = if host == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    (host, repository, digest.or(tag))
}

fn is_host(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

/// Checks a repository name against the distribution spec's grammar:
/// `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or `-`s.
pub(crate) fn validate_repository(repository: &str) -> Result<(), RegistryError> {
    let invalid = |reason| RegistryError::InvalidName {
        what: "repository name",
        value: repository.to_string(),
        reason,
    };
    if repository.is_empty() {
        return Err(invalid("it is empty"));
    }
    if repository.len() > 255 {
        return Err(invalid("it is longer than 255 characters"));
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(invalid(
                "each /-separated part must be lowercase letters and digits, \
                 joined by '.', '_', '__' or '-'",
            ));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn validate_tag(tag: &str) -> Result<(), RegistryError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let valid = tag.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what: "tag",
            value: tag.to_string(),
            reason:
                "a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
        })
    }
}

/// A content digest, `algorithm:encoded`, checked well enough to be safe in
/// a URL path and a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    text: String,
}

impl Digest {
    pub(crate) fn parse(text: &str) -> Option<Digest> {
        let (algorithm, encoded) = text.split_once(':')?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'+' | b'.' | b'_' | b'-')
            });
        let encoded_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        let sha256_ok = algorithm != "sha256"
            || (encoded.len() == 64
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        (algorithm_ok && encoded_ok && sha256_ok).then(|| Digest {
            text: text.to_string(),
        })
    }

    /// The hex part of a sha256 digest; `None` for other algorithms, which
    /// this client passes through without verifying.
    pub(crate) fn sha256_hex(&self) -> Option<&str> {
        self.text.strip_prefix("sha256:")
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(reference: &str) -> (String, String, Option<String>) {
        split_reference(reference)
    }

    fn parts(
        host: &str,
        repository: &str,
        reference: Option<&str>,
    ) -> (String, String, Option<String>) {
        (
            host.to_string(),
            repository.to_string(),
            reference.map(str::to_string),
        )
    }

    #[test]
    fn split_reference_follows_docker_rules() {
        assert_eq!(
            split("127.0.0.1:5000/team/app:1"),
            parts("127.0.0.1:5000", "team/app", Some("1"))
        );
        assert_eq!(split("app"), parts("docker.io", "library/app", None));
        assert_eq!(
            split("app:latest"),
            parts("docker.io", "library/app", Some("latest"))
        );
        assert_eq!(
            split("team/app:2"),
            parts("docker.io", "team/app", Some("2"))
        );
        assert_eq!(split("localhost/app"), parts("localhost", "app", None));
        assert_eq!(
            split("localhost:5000/app:v1"),
            parts("localhost:5000", "app", Some("v1"))
        );
        assert_eq!(
            split("reg.example/base/jre8:20151030"),
            parts("reg.example", "base/jre8", Some("20151030"))
        );
        assert_eq!(
            split("registry.example:5000/coding-mart"),
            parts("registry.example:5000", "coding-mart", None)
        );
        assert_eq!(
            split("index.docker.io/nginx"),
            parts("docker.io", "library/nginx", None)
        );
        assert_eq!(
            split("docker.io/nginx:1.25"),
            parts("docker.io", "library/nginx", Some("1.25"))
        );
        assert_eq!(split("Registry/app"), parts("Registry", "app", None));
        assert_eq!(
            split("[::1]:5000/app:3"),
            parts("[::1]:5000", "app", Some("3"))
        );
    }

    #[test]
    fn split_reference_prefers_the_digest() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            split(&format!("reg:5000/app@{digest}")),
            parts("reg:5000", "app", Some(digest))
        );
        assert_eq!(
            split(&format!("reg:5000/app:1@{digest}")),
            parts("reg:5000", "app", Some(digest))
        );
    }

    #[test]
    fn split_reference_never_panics_on_odd_input() {
        for input in ["", ":", "/", "@", "a/", "/a", "a:", "a@", "::/::", "ü/ö:ä"] {
            let _ = split(input);
        }
    }

    #[test]
    fn repository_names_are_validated() {
        for good in ["app", "team/app", "a-b/c__d/e.f/g_h", "a---b", "0/1"] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "", "App", "team/", "/app", "a/../b", "a//b", "a?b", "a b", "-a", "a.", "a___b", "a.-b",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_validated() {
        for good in ["1", "latest", "v1.2.3-rc_1", "_x", &"a".repeat(128)] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a?b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_are_validated() {
        let good = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            Digest::parse(good).and_then(|d| d.sha256_hex().map(str::to_string)),
            Some(good[7..].to_string())
        );
        assert!(Digest::parse("sha512:abc").is_some_and(|d| d.sha256_hex().is_none()));
        for bad in [
            "sha256:abc",
            "sha256:../../etc/passwd",
            "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "nocolon",
            ":abc",
            "sha256:",
            "sha512:a/b",
        ] {
            assert!(Digest::parse(bad).is_none(), "{bad}");
        }
    }
}
