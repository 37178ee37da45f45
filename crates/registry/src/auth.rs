//! Reading what a registry says about authentication.
//!
//! A registry never tells a client up front how to log in: it answers 401
//! with a `WWW-Authenticate` challenge, either `Basic` (send the password on
//! every request) or `Bearer` (fetch a short-lived token from the token
//! server it names, for a scope such as `repository:team/app:pull`). This
//! module parses those challenges and the token server's answer; the client
//! decides what to send.

use serde::Deserialize;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        /// `invalid_token` or `insufficient_scope`, when the registry says why.
        error: Option<String>,
    },
    /// A scheme this client does not speak, kept for the error message.
    Other(String),
}

/// Parses every challenge in one `WWW-Authenticate` value, e.g.
/// `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"`.
///
/// RFC 7235 allows several challenges in one header, separated by commas
/// like the parameters themselves: a token that is not followed by `=`
/// starts a new challenge.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut raw: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let token_len = rest
            .find(|c: char| c == ',' || c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        if token_len == 0 {
            // A stray '=' or the like: skip one character and go on.
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str();
            continue;
        }
        let token = &rest[..token_len];
        let after = rest[token_len..].trim_start_matches([' ', '\t']);
        if let Some(value_start) = after.strip_prefix('=') {
            // `name=value`: a parameter of the current challenge.
            let value_start = value_start.trim_start_matches([' ', '\t']);
            let (value, remaining) = read_value(value_start);
            if let Some((_, params)) = raw.last_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
            rest = remaining;
        } else {
            // A scheme name: a new challenge.
            raw.push((token.to_string(), Vec::new()));
            rest = after;
        }
    }
    raw.into_iter()
        .map(|(scheme, params)| {
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            };
            if scheme.eq_ignore_ascii_case("basic") {
                Challenge::Basic
            } else if scheme.eq_ignore_ascii_case("bearer") {
                match get("realm") {
                    Some(realm) => Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                        error: get("error"),
                    },
                    None => Challenge::Other(scheme),
                }
            } else {
                Challenge::Other(scheme)
            }
        })
        .collect()
}

/// Reads a token or a quoted string (with `\` escapes); returns it and the
/// text after it.
fn read_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => return (value, &quoted[index + 1..]),
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(text.len());
        (text[..end].to_string(), &text[end..])
    }
}

/// Picks the challenge to answer: a usable `Bearer` first (it does not send
/// the password to the registry on every request), then `Basic`.
pub(crate) fn preferred(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| challenges.iter().find(|c| matches!(c, Challenge::Basic)))
}

/// A token server's answer. Docker's token servers send `token`, OAuth2
/// ones `access_token`; either will do.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, and for how many seconds it is valid. The spec says a
    /// token without `expires_in` lasts 60 seconds, and none less.
    pub(crate) fn into_token(self) -> Option<(String, u64)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        // Capped at a day, so a hostile answer cannot overflow a deadline.
        Some((token, self.expires_in.unwrap_or(60).clamp(60, 86_400)))
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_string(),
            service: service.map(str::to_string),
            scope: scope.map(str::to_string),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn parses_a_distribution_bearer_challenge() {
        let header = r#"Bearer realm="http://127.0.0.1:9000/token",service="test-registry",scope="repository:team/app:pull""#;
        assert_eq!(
            parse_challenges(header),
            [bearer(
                "http://127.0.0.1:9000/token",
                Some("test-registry"),
                Some("repository:team/app:pull"),
                None
            )]
        );
    }

    #[test]
    fn parses_insufficient_scope_and_docker_hub_forms() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull",error="insufficient_scope""#;
        assert_eq!(
            parse_challenges(header),
            [bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/nginx:pull"),
                Some("insufficient_scope")
            )]
        );
        // Unquoted values, spaces around '=', odd case, no scope.
        assert_eq!(
            parse_challenges("bearer Realm = https://a/token , service=reg"),
            [bearer("https://a/token", Some("reg"), None, None)]
        );
    }

    #[test]
    fn parses_basic_and_several_challenges() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            [Challenge::Basic]
        );
        assert_eq!(parse_challenges("Basic"), [Challenge::Basic]);
        let both = parse_challenges(
            r#"Basic realm="x, y", Bearer realm="https://a/token",scope="repository:a:pull""#,
        );
        assert_eq!(
            both,
            [
                Challenge::Basic,
                bearer("https://a/token", None, Some("repository:a:pull"), None)
            ]
        );
        assert!(matches!(preferred(&both), Some(Challenge::Bearer { .. })));
    }

    #[test]
    fn quoted_strings_keep_escapes_and_commas() {
        assert_eq!(
            parse_challenges(r#"Bearer realm="https://a/t?x=1,2",service="a \"b\"""#),
            [bearer("https://a/t?x=1,2", Some("a \"b\""), None, None)]
        );
    }

    #[test]
    fn unknown_or_broken_challenges_are_not_usable() {
        assert_eq!(
            parse_challenges(r#"Negotiate abc"#),
            [
                Challenge::Other("Negotiate".into()),
                Challenge::Other("abc".into())
            ]
        );
        assert_eq!(
            parse_challenges(r#"Bearer service="no-realm""#),
            [Challenge::Other("Bearer".into())]
        );
        assert_eq!(preferred(&parse_challenges("Negotiate")), None);
        for junk in [
            "",
            "=",
            ",,,",
            "\"",
            "Bearer realm=\"unterminated",
            "=x=y",
            "ü=ö",
        ] {
            let _ = parse_challenges(junk);
        }
    }

    #[test]
    fn token_responses_accept_token_or_access_token() {
        let parse = |json: &str| {
            serde_json::from_str::<TokenResponse>(json)
                .ok()
                .and_then(TokenResponse::into_token)
        };
        assert_eq!(
            parse(r#"{"token":"t1","expires_in":300}"#),
            Some(("t1".into(), 300))
        );
        assert_eq!(parse(r#"{"access_token":"t2"}"#), Some(("t2".into(), 60)));
        assert_eq!(
            parse(r#"{"token":"","access_token":"t3"}"#),
            Some(("t3".into(), 60))
        );
        assert_eq!(parse(r#"{"details":"nope"}"#), None);
        assert_eq!(
            parse(r#"{"token":"t4","expires_in":18446744073709551615}"#),
            Some(("t4".into(), 86_400))
        );
        let debug = format!(
            "{:?}",
            serde_json::from_str::<TokenResponse>(r#"{"token":"secret-token"}"#).ok()
        );
        assert!(!debug.contains("secret-token"), "{debug}");
    }
}
