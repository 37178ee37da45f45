//! An [`Event`] addressed (environment, stage, who posts it) and rendered as
//! the body a webhook receives: `{"text": …}` for chat, or the interface's
//! event object. Every secret the notifier knows — the webhook URL itself,
//! the values of `secret_env` — is masked in whatever text goes out.

use drover_plan::MASK;
use drover_spec::{NotifyFormat, Webhook};
use serde::Serialize;

use crate::event::Event;
use crate::time::rfc3339;

/// What every notification carries besides its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The environment's `name`.
    pub env: String,
    /// `-e STAGE`, so suggested commands read the same overlay.
    pub stage: Option<String>,
    /// `user@machine` of whoever runs drover (the deploying operator, or
    /// the machine running `drover watch`).
    pub by: String,
}

/// The interface's notification object, keys in its order.
#[derive(Serialize)]
struct Payload<'a> {
    event: &'static str,
    env: &'a str,
    job: Option<&'a str>,
    host: Option<&'a str>,
    task: Option<u32>,
    time: String,
    message: String,
    by: &'a str,
    commit: Option<&'a str>,
}

#[derive(Serialize)]
struct Slack {
    text: String,
}

/// The exact body posted for `event`.
pub fn body(event: &Event, sender: &Sender, format: NotifyFormat, redactor: &Redactor) -> String {
    let text = match format {
        NotifyFormat::Slack => serde_json::to_string(&Slack {
            text: redactor.apply(&slack_text(event, sender)),
        }),
        NotifyFormat::Json => serde_json::to_string(&Payload {
            event: event.kind.as_str(),
            env: &sender.env,
            job: event.job.as_deref(),
            host: event.host.as_deref(),
            task: event.task,
            time: rfc3339(event.time),
            message: redactor.apply(&message(event, sender)),
            by: &sender.by,
            commit: event.commit.as_deref(),
        }),
    };
    // Serializing strings and numbers into a string cannot fail; an empty
    // object would still be a valid body if it somehow did.
    text.unwrap_or_else(|_| "{}".to_string())
}

/// The JSON object's `message`: the summary and what to run next.
pub fn message(event: &Event, sender: &Sender) -> String {
    match &event.next {
        Some(next) => format!("{}; run {}", event.summary, command(next, sender)),
        None => event.summary.clone(),
    }
}

/// The chat line: environment, summary, and the next command as code.
/// `&`, `<` and `>` are escaped as Slack requires, so no text from a task (a
/// health check's output) can become a link or an `@channel` mention.
pub fn slack_text(event: &Event, sender: &Sender) -> String {
    let line = match &event.next {
        Some(next) => format!(
            "[{}] {}; run `{}`",
            sender.env,
            event.summary,
            command(next, sender)
        ),
        None => format!("[{}] {}", sender.env, event.summary),
    };
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `drover [-e STAGE] ARGS…`, quoted for a shell where needed.
pub fn command(args: &[String], sender: &Sender) -> String {
    let stage = sender
        .stage
        .iter()
        .flat_map(|stage| ["-e".to_string(), stage.clone()]);
    std::iter::once("drover".to_string())
        .chain(stage)
        .chain(args.iter().cloned())
        .map(|arg| quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Masks every secret in a text with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
}

impl Redactor {
    /// The webhook (whole, and its path, which is usually the token) and
    /// the given secret values.
    pub fn new<'a>(webhook: &'a Webhook, secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let url = webhook.expose();
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .filter(|path| path.len() > 1);
        Redactor::of([url].into_iter().chain(path).chain(secrets))
    }

    /// The given values alone (where there is no webhook to hide).
    pub fn of<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut values: Vec<String> = secrets
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), MASK);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Deploy;
    use std::time::{Duration, SystemTime};

    fn sender(stage: Option<&str>) -> Sender {
        Sender {
            env: "prod".into(),
            stage: stage.map(str::to_string),
            by: "alice@laptop".into(),
        }
    }

    fn webhook() -> Webhook {
        "https://chat.example/hooks/T0KEN".parse().unwrap()
    }

    #[test]
    fn commands_carry_the_stage_and_are_quoted_for_a_shell() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(
                &args(&["logs", "web", "--task", "a/0"]),
                &sender(Some("staging"))
            ),
            "drover -e staging logs web --task a/0"
        );
        assert_eq!(
            command(
                &args(&["update", "web", "--image", "reg:5000/web@sha256:ab"]),
                &sender(None)
            ),
            "drover update web --image reg:5000/web@sha256:ab"
        );
        assert_eq!(
            command(&args(&["x y", "it's"]), &sender(None)),
            "drover 'x y' 'it'\\''s'"
        );
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let mut event = Event::deploy(
            Deploy::Failed,
            "web",
            None,
            "alice@laptop",
            None,
            "check said <!channel> & <http://evil|click>",
            SystemTime::UNIX_EPOCH,
        );
        event.next = None;
        assert_eq!(
            slack_text(&event, &sender(None)),
            "[prod] web: deploy by alice@laptop failed: check said &lt;!channel&gt; &amp; &lt;http://evil|click&gt;"
        );
    }

    #[test]
    fn both_formats_whole() {
        let event = Event::deploy(
            Deploy::Succeeded,
            "web",
            Some("reg/web:2"),
            "alice@laptop",
            Some("abc1234"),
            "4 tasks replaced",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_446_174_764),
        );
        let redactor = Redactor::new(&webhook(), []);
        assert_eq!(
            body(&event, &sender(None), NotifyFormat::Slack, &redactor),
            r#"{"text":"[prod] web: deploy by alice@laptop succeeded (reg/web:2, commit abc1234): 4 tasks replaced; run `drover history web`"}"#
        );
        assert_eq!(
            body(&event, &sender(None), NotifyFormat::Json, &redactor),
            r#"{"event":"deploy.succeeded","env":"prod","job":"web","host":null,"task":null,"time":"2015-10-30T03:12:44Z","message":"web: deploy by alice@laptop succeeded (reg/web:2, commit abc1234): 4 tasks replaced; run drover history web","by":"alice@laptop","commit":"abc1234"}"#
        );
    }

    #[test]
    fn secrets_and_the_webhook_are_masked() {
        let redactor = Redactor::new(&webhook(), ["hunter2", "hunter2-long", ""]);
        assert_eq!(
            redactor.apply(
                "pw hunter2-long, hunter2, https://chat.example/hooks/T0KEN and /hooks/T0KEN"
            ),
            "pw ***, ***, *** and ***"
        );
        assert_eq!(redactor.apply("nothing here"), "nothing here");
    }
}
