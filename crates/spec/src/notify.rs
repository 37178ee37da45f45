//! `[notify]` in drover.toml: where deploy results and incidents are posted.
//!
//! The webhook URL is a secret: whoever holds it can post into the team's
//! channel, and chat services revoke a URL they find published. So it is
//! its own type, [`Webhook`], whose `Debug` and `Display` show at most
//! `scheme://host/…`, and no error about it quotes it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use crate::load::Loader;
use crate::source::Loc;

/// `[notify]` as written (in drover.toml, or replaced whole by the stage's).
#[derive(Debug, Default, Clone, Deserialize)]
// Deserialized only as a table: see `tables_only!` in crate::raw.
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawNotify {
    pub webhook: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Where and how notifications are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub webhook: Webhook,
    pub format: NotifyFormat,
    /// Never empty: `events = []` means no `[notify]` at all.
    pub events: BTreeSet<NotifyClass>,
}

impl Notify {
    pub fn wants(&self, class: NotifyClass) -> bool {
        self.events.contains(&class)
    }
}

/// What the webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NotifyFormat {
    /// `{"text": "…"}`: Slack's incoming webhooks, and Mattermost's and
    /// Rocket.Chat's, which take Slack's format. The default: a chat channel
    /// is where most teams want these.
    #[default]
    Slack,
    /// The event object itself, for scripts and alerting pipelines.
    Json,
}

impl FromStr for NotifyFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "slack" => Ok(NotifyFormat::Slack),
            "json" => Ok(NotifyFormat::Json),
            _ => Err(format!(
                "invalid notify format {text:?}: expected \"slack\" ({{\"text\": …}}, which Slack, Mattermost and Rocket.Chat take) or \"json\" (the event object)"
            )),
        }
    }
}

impl fmt::Display for NotifyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotifyFormat::Slack => "slack",
            NotifyFormat::Json => "json",
        })
    }
}

/// The two kinds of news, chosen with `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyClass {
    /// `deploy.*`: what a changing command did, from whichever machine ran it.
    Deploy,
    /// Everything `drover watch` notices: task and host incidents and their
    /// recoveries, drift, low disk, a new image.
    Incident,
}

impl NotifyClass {
    pub const ALL: [NotifyClass; 2] = [NotifyClass::Deploy, NotifyClass::Incident];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyClass::Deploy => "deploy",
            NotifyClass::Incident => "incident",
        }
    }
}

impl FromStr for NotifyClass {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        NotifyClass::ALL
            .into_iter()
            .find(|class| class.as_str() == text)
            .ok_or_else(|| {
                format!("unknown notify event class {text:?}: expected \"deploy\" or \"incident\"")
            })
    }
}

impl fmt::Display for NotifyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Said after every error about a webhook, instead of its value.
const NOT_SHOWN: &str = "(the value is not shown: a webhook URL is a secret)";

/// An `http://` or `https://` URL to POST to. Printing it shows only
/// `scheme://host[:port]/…`; [`Webhook::expose`] gives the whole URL to the
/// one place that sends to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    url: String,
    shown: String,
}

impl Webhook {
    /// The whole URL, for sending. Never print it.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// `https://chat.example/…`: what messages may say about it.
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl FromStr for Webhook {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "invalid webhook: a URL has no spaces or control characters {NOT_SHOWN}"
            ));
        }
        let url = url::Url::parse(text).map_err(|e| {
            format!("invalid webhook: {e}: expected an http:// or https:// URL {NOT_SHOWN}")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid webhook: expected an http:// or https:// URL, found a {}: URL {NOT_SHOWN}",
                url.scheme()
            ));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host,
            _ => return Err(format!("invalid webhook: the URL has no host {NOT_SHOWN}")),
        };
        let shown = match url.port() {
            Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
            None => format!("{}://{host}/…", url.scheme()),
        };
        Ok(Webhook {
            url: url.to_string(),
            shown,
        })
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Webhook").field(&self.shown).finish()
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Loader {
    /// `[notify]`, checked; `None` when it is invalid or says `events = []`.
    pub(crate) fn notify(&mut self, file: usize, raw: Spanned<RawNotify>) -> Option<Notify> {
        let table = Loc {
            file,
            span: raw.span(),
        };
        let raw = raw.into_inner();
        let at = |value: &Spanned<String>| Loc {
            file,
            span: value.span(),
        };
        let errors_before = self.diagnostics.len();

        let format = match &raw.format {
            Some(format) => format.get_ref().parse().unwrap_or_else(|message| {
                self.error(&at(format), message);
                NotifyFormat::default()
            }),
            None => NotifyFormat::default(),
        };

        let mut events = BTreeSet::new();
        match &raw.events {
            Some(list) => {
                for class in list.get_ref() {
                    match class.get_ref().parse::<NotifyClass>() {
                        Ok(c) if !events.insert(c) => self.error(
                            &at(class),
                            format!("{:?} is listed twice in events", class.get_ref()),
                        ),
                        Ok(_) => {}
                        Err(message) => self.error(&at(class), message),
                    }
                }
            }
            None => events.extend(NotifyClass::ALL),
        }
        let posts_nothing = raw.events.as_ref().is_some_and(|l| l.get_ref().is_empty());

        let webhook = match &raw.webhook {
            Some(url) => url
                .get_ref()
                .parse::<Webhook>()
                .map_err(|message| self.error(&at(url), message))
                .ok(),
            None if posts_nothing => None,
            None => {
                self.error(
                    &table,
                    "[notify] needs `webhook`, the URL to post to (or `events = []` to post nothing)",
                );
                None
            }
        };

        if posts_nothing || self.diagnostics.len() > errors_before {
            return None;
        }
        Some(Notify {
            webhook: webhook?,
            format,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_prints_only_scheme_and_host() {
        let hook: Webhook = "https://hooks.slack.com/services/T0/B1/S3CRET"
            .parse()
            .unwrap();
        assert_eq!(hook.to_string(), "https://hooks.slack.com/…");
        assert_eq!(
            format!("{hook:?}"),
            "Webhook(\"https://hooks.slack.com/…\")"
        );
        assert_eq!(
            hook.expose(),
            "https://hooks.slack.com/services/T0/B1/S3CRET"
        );
        let hook: Webhook = "http://user:pw@127.0.0.1:9000/x?token=S3CRET"
            .parse()
            .unwrap();
        assert_eq!(hook.redacted(), "http://127.0.0.1:9000/…");
    }

    #[test]
    fn a_bad_webhook_is_refused_without_its_value() {
        for bad in [
            "chat.example/hooks/S3CRET",
            "ftp://chat.example/S3CRET",
            "https://",
            "https://chat.example/S3CRET x",
            "https://chat.example:99999/S3CRET",
            "mailto:S3CRET@example.com",
            "",
        ] {
            let message = bad.parse::<Webhook>().unwrap_err();
            assert!(!message.contains("S3CRET"), "{bad}: {message}");
            assert!(message.starts_with("invalid webhook: "), "{message}");
            assert!(message.ends_with(NOT_SHOWN), "{message}");
        }
    }

    #[test]
    fn formats_and_classes_parse_and_print_as_written() {
        for text in ["slack", "json"] {
            assert_eq!(text.parse::<NotifyFormat>().unwrap().to_string(), text);
        }
        for text in ["deploy", "incident"] {
            assert_eq!(text.parse::<NotifyClass>().unwrap().to_string(), text);
        }
        assert!("Slack".parse::<NotifyFormat>().is_err());
        assert!("incidents".parse::<NotifyClass>().is_err());
    }
}
