//! HTTP plumbing shared by every call: bounded body reads, `Link` headers,
//! and turning transport failures and error bodies into short messages.
//!
//! A registry is a server we do not control. These helpers make sure that a
//! response can cost at most a fixed amount of memory, and that whatever a
//! server says — a JSON error, a plain-text line, a 5 MB login page — reaches
//! the operator as one short line.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Response;
use serde::Deserialize;

use crate::error::{lower_first, one_line};
use crate::RegistryError;

/// The header every distribution-compatible registry sets on every answer.
pub(crate) const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// How much of an error body is read to find a message in it.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Reads a whole body, failing as soon as it passes `limit` bytes (before
/// reading anything when `Content-Length` already says so).
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
    what: &'static str,
    registry_url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, RegistryError> {
    let url = response.url().to_string();
    let too_large = || RegistryError::TooLarge {
        what,
        url: url.clone(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|error| transport_error(&error, registry_url, timeout))?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

/// Reads at most `limit` bytes of a body and drops the rest; for error
/// bodies, where only a message is wanted and failure to read is no error.
pub(crate) async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

/// A failed send or body read, as an error naming `url`.
pub(crate) fn transport_error(
    error: &reqwest::Error,
    url: &str,
    timeout: Duration,
) -> RegistryError {
    if error.is_timeout() {
        return RegistryError::Timeout {
            url: url.to_string(),
            timeout,
        };
    }
    RegistryError::Unreachable {
        url: url.to_string(),
        cause: transport_cause(error),
    }
}

/// The most specific message in an error's source chain: "connection
/// refused (os error 111)" rather than "error sending request for url …".
pub(crate) fn transport_cause(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let cause = one_line(&innermost.to_string());
    let cause = lower_first(&cause);
    // A TLS client talking to a plain-HTTP port sees garbage as the first
    // record; say what that usually means.
    if cause.contains("InvalidContentType") || cause.contains("corrupt message") {
        format!("{cause} (is it a plain-http registry? then write http:// in [registry] url)")
    } else {
        cause
    }
}

/// `"404 Not Found"`.
pub(crate) fn status_text(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// What an error response says, reduced to codes and one line.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    /// Registry error codes such as `NAME_UNKNOWN`, when the body is the
    /// registry's JSON error format.
    pub(crate) codes: Vec<String>,
    /// A message fit for an error line (may be empty).
    pub(crate) message: String,
    /// Whether the answer carried the registry API version header.
    pub(crate) registry_api: bool,
}

#[derive(Deserialize)]
struct RegistryErrors {
    errors: Vec<RegistryErrorEntry>,
}

#[derive(Deserialize)]
struct RegistryErrorEntry {
    code: Option<String>,
    message: Option<String>,
}

/// Reads an error response's body (at most 64 KiB) into an [`ErrorBody`].
pub(crate) async fn error_body(response: Response) -> ErrorBody {
    let headers = response.headers().clone();
    let body = read_prefix(response, ERROR_BODY_LIMIT).await;
    summarize_error(&headers, &body)
}

pub(crate) fn summarize_error(headers: &HeaderMap, body: &[u8]) -> ErrorBody {
    let registry_api = headers.contains_key(API_VERSION_HEADER);
    if let Ok(parsed) = serde_json::from_slice::<RegistryErrors>(body) {
        let codes: Vec<String> = parsed
            .errors
            .iter()
            .filter_map(|e| e.code.clone())
            .collect();
        let message = parsed
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(text), None) | (None, Some(text)) => text.clone(),
                (None, None) => String::new(),
            })
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return ErrorBody {
            registry_api: registry_api || !codes.is_empty(),
            codes,
            message: one_line(&message),
        };
    }
    let text = String::from_utf8_lossy(body);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let message = if content_type.contains("html") || text.trim_start().starts_with('<') {
        // Never an HTML page in an error; its title, if it has one, says enough.
        html_title(&text)
            .map(|title| one_line(&title))
            .unwrap_or_default()
    } else if body.contains(&0) || std::str::from_utf8(body).is_err_and(|e| e.error_len().is_some())
    {
        // Binary data is no message: its bytes would only garble the line
        // (a character cut at the end of the prefix read is not binary).
        "(binary data, not a registry's answer)".to_string()
    } else {
        one_line(&text)
    };
    ErrorBody {
        codes: Vec::new(),
        message,
        registry_api,
    }
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let start = start + lower[start..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = html.get(start..end)?.trim();
    (!title.is_empty() && !title.contains('<')).then(|| title.to_string())
}

/// The target of the `rel="next"` link in a `Link` header, if any:
/// `</v2/app/tags/list?last=b&n=100>; rel="next"` → `/v2/app/tags/list?last=b&n=100`.
pub(crate) fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        // The parameters run until the next link, which starts after a
        // comma outside quotes.
        let mut in_quotes = false;
        let params_end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map_or(rest.len(), |(index, _)| index);
        let params = &rest[..params_end];
        rest = &rest[params_end..];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_link(r#"</v2/team/app/tags/list?last=tag099&n=100>; rel="next""#).as_deref(),
            Some("/v2/team/app/tags/list?last=tag099&n=100")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?n=2&last=b>;rel=next"#).as_deref(),
            Some("https://r.example/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"</prev?a=1,2>; rel="prev", </next?x=1>; title="a, b"; rel="next""#)
                .as_deref(),
            Some("/next?x=1")
        );
        assert_eq!(next_link(r#"</a>; rel="first last""#), None);
        assert_eq!(next_link(r#"</a>; rel="prev next""#).as_deref(), Some("/a"));
    }

    #[test]
    fn no_next_link_in_junk() {
        for junk in [
            "",
            "<",
            ">",
            "<a",
            "rel=next",
            "<a>; rel",
            "<a>; foo=next",
            ",,,",
            "<ü>; rel=\"prev\"",
        ] {
            assert_eq!(next_link(junk), None, "{junk}");
        }
    }

    fn headers(content_type: &str, registry: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        if registry {
            headers.insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        }
        headers
    }

    #[test]
    fn summarizes_registry_json_errors() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        let summary = summarize_error(&headers("application/json", true), body);
        assert_eq!(summary.codes, ["NAME_UNKNOWN"]);
        assert_eq!(
            summary.message,
            "NAME_UNKNOWN: repository name not known to registry"
        );
        assert!(summary.registry_api);
    }

    #[test]
    fn never_quotes_html() {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>noise</p>".repeat(1000)
        );
        let summary = summarize_error(&headers("text/html; charset=utf-8", false), page.as_bytes());
        assert_eq!(summary.message, "502 Bad Gateway");
        assert!(!summary.registry_api);
        let untitled = summarize_error(&headers("", false), b"  <html><body>hello</body></html>");
        assert_eq!(untitled.message, "");
    }

    #[test]
    fn plain_text_is_cut_to_one_line() {
        let body = format!("first line\n{}", "second ".repeat(100));
        let summary = summarize_error(&headers("text/plain", false), body.as_bytes());
        assert_eq!(summary.message, "first line");
        let long = "y".repeat(10_000);
        let binary: Vec<u8> = (0u8..=255).cycle().take(5000).collect();
        let summary = summarize_error(&headers("application/octet-stream", false), &binary);
        assert_eq!(summary.message, "(binary data, not a registry's answer)");
        let summary = summarize_error(&headers("text/plain", false), long.as_bytes());
        assert!(summary.message.chars().count() <= 201);
    }
}
