//! The names the registry API carries: a repository and a tag, validated
//! before they go into a URL path, so a stray `..` or `?` cannot make the
//! client ask for something else. Splitting an image reference into its
//! registry, repository and tag is `drover_spec::ImageRef`'s, by Docker's
//! rules, once.

use crate::RegistryError;

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
