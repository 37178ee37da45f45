use std::time::Duration;

use bollard::errors::Error as BollardError;

/// What went wrong talking to an engine, in terms drover acts on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The engine could not be reached at all.
    #[error("host {host} ({address}) is unreachable: {reason}")]
    Unreachable {
        host: String,
        address: String,
        reason: String,
    },
    /// A request got no answer within its deadline.
    #[error("host {host} ({address}): {what} got no answer within {} (the engine may be overloaded or wedged)", seconds(*.after))]
    Timeout {
        host: String,
        address: String,
        what: String,
        after: Duration,
    },
    /// 404: the container or image does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: e.g. a container name already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A bind source (a `host_files` path) is missing on the host.
    #[error("host file {path} does not exist on host {host} ({address}): create it there or drop it from host_files")]
    MissingHostFile {
        host: String,
        address: String,
        path: String,
    },
    /// A pull the registry refused, or whose progress stalled.
    #[error("host {host}: pulling {image} failed: {reason}")]
    Pull {
        host: String,
        image: String,
        reason: String,
    },
    /// A push the registry refused, or whose progress stalled.
    #[error("host {host}: pushing {image} failed: {reason}")]
    Push {
        host: String,
        image: String,
        reason: String,
    },
    /// Any other status the engine answered with.
    #[error("engine error {status}: {message}")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Other(String),
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl EngineError {
    /// Maps bollard's error for a request to `host` at `address`.
    pub(crate) fn from_bollard(err: BollardError, host: &str, address: &str) -> Self {
        let unreachable = |reason: String| EngineError::Unreachable {
            host: host.to_string(),
            address: address.to_string(),
            reason,
        };
        match err {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => {
                let message = short_message(&message);
                if let Some(path) = message.split("bind source path does not exist: ").nth(1) {
                    return EngineError::MissingHostFile {
                        host: host.to_string(),
                        address: address.to_string(),
                        path: path.trim().to_string(),
                    };
                }
                match status_code {
                    404 => EngineError::NotFound(message),
                    409 => EngineError::Conflict(message),
                    status => EngineError::Api { status, message },
                }
            }
            BollardError::SocketNotFoundError(path) => unreachable(format!("no socket at {path}")),
            BollardError::IOError { err } => unreachable(short_message(&err.to_string())),
            BollardError::HyperLegacyError { err } => unreachable(root_cause(&err)),
            BollardError::JsonDataError { message, .. } => EngineError::Other(format!(
                "the engine's answer is not what a Docker engine sends: {}",
                short_message(&message)
            )),
            BollardError::JsonSerdeError { err } => EngineError::Other(format!(
                "the engine's answer is not what a Docker engine sends: {}",
                short_message(&err.to_string())
            )),
            other => EngineError::Other(short_message(&other.to_string())),
        }
    }

    /// Whether the host itself failed (as opposed to one request).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. } | EngineError::Timeout { .. }
        )
    }
}

/// The innermost message of an error chain: "connection refused", not "client error (Connect)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    short_message(&current.to_string())
}

/// Longest engine message drover repeats. Long ones (an OCI runtime's
/// "error during container init: … : operation not permitted") keep their
/// start and their end: the cause is usually last.
const MAX_MESSAGE: usize = 600;

/// Longest excerpt of an answer that is not an engine's (a web page, binary data).
const MAX_EXCERPT: usize = 60;

/// An engine's message as drover repeats it: one line of printable text,
/// short. Something else answering in place of an engine (a web server, a
/// proxy, a TLS port, a binary protocol) is named as such, with at most a
/// short printable excerpt: its page's title, or its first words.
pub fn short_message(message: &str) -> String {
    let text = message.trim();
    // Rust's I/O errors end in "(os error 111)": the words before say it all.
    let text = match text.find(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    if is_html(text) {
        let title = text
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(title, _)| title.trim().to_string())
            .filter(|title| !title.is_empty());
        let body = title.unwrap_or_else(|| strip_tags(text));
        return format!(
            "an HTML page, not a Docker engine answer: {}",
            excerpt(&body)
        );
    }
    if is_binary(text) {
        return format!(
            "an answer that is not text (binary data), not a Docker engine answer: {}",
            excerpt(text)
        );
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    cut_middle(&printable(line), MAX_MESSAGE)
}

/// At most about `max` characters: the first third and the last two
/// thirds, with `…` between them when cut.
fn cut_middle(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max / 3).collect();
    let tail: String = text.chars().skip(count - (max - max / 3)).collect();
    format!("{head} … {tail}")
}

/// An HTML page, by how it starts (not by a tag somewhere inside).
fn is_html(text: &str) -> bool {
    let head: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype")
        || head.starts_with("<html")
        || head.starts_with("<!--")
        || head.starts_with("<head")
        || head.starts_with("<body")
}

/// Binary data (decoded lossily: `U+FFFD` where bytes were not UTF-8):
/// a NUL, or more than one character in ten that is not text.
fn is_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut odd = 0usize;
    for c in text.chars().take(1024) {
        if c == '\0' {
            return true;
        }
        total += 1;
        if is_unprintable(c) {
            odd += 1;
        }
    }
    odd * 10 > total
}

fn is_unprintable(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{fffd}'
}

/// `text` with every control or undecodable character dropped and runs of
/// whitespace made one space.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !is_unprintable(*c))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A short printable excerpt of a foreign answer, quoted.
fn excerpt(text: &str) -> String {
    let text = printable(text);
    if text.is_empty() {
        "(nothing printable)".to_string()
    } else {
        format!("{:?}", cut(&text, MAX_EXCERPT))
    }
}

/// At most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_become_one_short_line() {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "x".repeat(5000)
        );
        assert_eq!(
            short_message(&page),
            "an HTML page, not a Docker engine answer: \"502 Bad Gateway\""
        );
        let long = "y".repeat(1000);
        assert!(short_message(&long).chars().count() <= MAX_MESSAGE + 3);
        assert_eq!(short_message("first\nsecond"), "first");
        // The cause of an OCI runtime's failure comes last: it stays.
        let runtime = format!(
            "OCI runtime create failed: runc create failed: unable to start container process: {} error setting rlimit type 7: operation not permitted: unknown",
            "error during container init: ".repeat(40)
        );
        let said = short_message(&runtime);
        assert!(said.starts_with("OCI runtime create failed"), "{said}");
        assert!(
            said.ends_with("type 7: operation not permitted: unknown"),
            "{said}"
        );
        assert!(said.contains(" … "), "{said}");
    }

    #[test]
    fn foreign_bodies_are_quoted_short_and_printable() {
        // A page with no title: its first words, cut short.
        let page = format!("<html><body><p>{}</p></body></html>", "word ".repeat(100));
        let said = short_message(&page);
        assert!(
            said.starts_with("an HTML page, not a Docker engine answer: \"word word"),
            "{said}"
        );
        assert!(said.chars().count() < 120, "{said}");
        // Binary bytes, decoded lossily as bollard does: no control characters, short.
        let bytes: Vec<u8> = (0u8..=255).cycle().take(4000).collect();
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for text in [lossy.clone(), format!("0000{lossy}<html>")] {
            let said = short_message(&text);
            assert!(
                said.starts_with(
                    "an answer that is not text (binary data), not a Docker engine answer: "
                ),
                "{said}"
            );
            assert!(
                !said.chars().any(|c| c.is_control() || c == '\u{fffd}'),
                "{said:?}"
            );
            assert!(said.chars().count() < 150, "{said}");
        }
        // Control characters in an engine's own message are dropped.
        assert_eq!(
            short_message("no such\u{1b}[31m image"),
            "no such[31m image"
        );
    }

    #[test]
    fn timeouts_state_the_real_duration() {
        let e = EngineError::Timeout {
            host: "h1".into(),
            address: "unix:///x".into(),
            what: "list containers".into(),
            after: Duration::from_secs(10),
        };
        assert!(e.to_string().contains("within 10s"), "{e}");
    }
}
