//! Posting to the webhook: one attempt with a deadline, what is worth
//! retrying, and the courier that empties a queue in order with exponential
//! backoff until it gives up — with one note, and never the URL.
//!
//! Messages go one at a time, in the order they were posted, so a
//! `deploy.started` never arrives after its `deploy.succeeded`. A message is
//! taken off the queue only once the webhook answered 2xx, so whatever is
//! still queued when a command ends (see [`crate::Pending`]) is exactly what
//! was not delivered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use drover_spec::units::format_duration;
use drover_spec::Webhook;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::event::one_line;
use crate::render::Redactor;

/// How long and how often delivery is tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// One POST may take this long, connection included.
    pub attempt_timeout: Duration,
    /// The pause after the first failure; it doubles after each one…
    pub first_delay: Duration,
    /// …up to this.
    pub max_delay: Duration,
    /// Failing this long without a single delivery, the courier gives up
    /// on everything queued.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempt_timeout: Duration::from_secs(10),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            give_up_after: Duration::from_secs(5 * 60),
        }
    }
}

/// Where notes about delivery go (one line each, already free of secrets).
pub type Notes = Arc<dyn Fn(&str) + Send + Sync>;

/// Notes on stderr as `warning: notify: …`. A closed stderr is no reason to
/// fail, or to panic as `eprintln!` would.
pub fn stderr_notes() -> Notes {
    Arc::new(|note: &str| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "warning: notify: {note}");
    })
}

/// One rendered message waiting to be posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// `deploy.started for web`: how notes name it.
    pub label: String,
    /// The exact body.
    pub body: String,
}

/// Messages waiting, and the state of the current run of failures.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    pub entries: VecDeque<Entry>,
    /// When the current run of failures began (`None`: the last attempt
    /// succeeded, or none was made).
    pub failing_since: Option<Instant>,
    /// The next pause after a failure.
    pub delay: Option<Duration>,
    /// Whether the overflow note was given since the queue was last empty.
    pub overflowed: bool,
}

/// More messages than any webhook outage justifies keeping: the oldest go.
pub(crate) const QUEUE_LIMIT: usize = 1000;

/// The queue a courier empties, shared with whoever posts.
pub(crate) struct Queue {
    waiting: Mutex<Waiting>,
    /// Wakes the courier when a message is posted.
    posted: Notify,
    /// How many messages wait; flushes wait for it to reach 0.
    length: watch::Sender<usize>,
}

impl Queue {
    pub fn new(waiting: Waiting) -> Queue {
        let length = waiting.entries.len();
        Queue {
            waiting: Mutex::new(waiting),
            posted: Notify::new(),
            length: watch::Sender::new(length),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message; says so (once) when the oldest had to be dropped.
    pub fn push(&self, entry: Entry, notes: &Notes) {
        let mut waiting = self.lock();
        if waiting.entries.len() >= QUEUE_LIMIT {
            waiting.entries.pop_front();
            if !waiting.overflowed {
                waiting.overflowed = true;
                notes(&format!(
                    "{QUEUE_LIMIT} messages are waiting for the webhook; the oldest are dropped"
                ));
            }
        }
        waiting.entries.push_back(entry);
        self.length.send_replace(waiting.entries.len());
        drop(waiting);
        self.posted.notify_one();
    }

    fn front(&self) -> Option<Entry> {
        self.lock().entries.front().cloned()
    }

    /// Takes the first message off (delivered, or refused for good).
    fn pop(&self) {
        let mut waiting = self.lock();
        waiting.entries.pop_front();
        if waiting.entries.is_empty() {
            waiting.overflowed = false;
        }
        self.length.send_replace(waiting.entries.len());
    }

    /// Everything queued, and the failure state, for a hand-off.
    pub fn take(&self) -> Waiting {
        let waiting = std::mem::take(&mut *self.lock());
        self.length.send_replace(0);
        waiting
    }

    /// Waits until nothing is queued.
    pub async fn drained(&self) {
        let mut length = self.length.subscribe();
        let _ = length.wait_for(|&n| n == 0).await;
    }
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Delivered,
    /// Not worth retrying: the webhook said no (400, 403, 404…).
    Refused(String),
    /// Worth another try: no answer, a 5xx, 408 or 429.
    Failed {
        why: String,
        retry_after: Option<Duration>,
    },
}

/// Posts queued messages to one webhook.
pub(crate) struct Courier {
    client: reqwest::Client,
    webhook: Webhook,
    redactor: Redactor,
    pub policy: RetryPolicy,
    notes: Notes,
}

impl Courier {
    pub fn new(
        webhook: Webhook,
        redactor: Redactor,
        policy: RetryPolicy,
        notes: Notes,
    ) -> Result<Courier, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.attempt_timeout)
            // A redirect would carry the message to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up an HTTP client: {}", cause(e)))?;
        Ok(Courier {
            client,
            webhook,
            redactor,
            policy,
            notes,
        })
    }

    pub fn webhook(&self) -> &Webhook {
        &self.webhook
    }

    pub fn note(&self, text: &str) {
        (self.notes)(&self.redactor.apply(text));
    }

    /// Posts what `queue` holds, in order, until it is empty; when
    /// `until_empty` is false, waits for more instead of returning.
    pub async fn run(&self, queue: &Queue, until_empty: bool) {
        loop {
            let posted = queue.posted.notified();
            let Some(entry) = queue.front() else {
                if until_empty {
                    return;
                }
                posted.await;
                continue;
            };
            match self.attempt(&entry.body).await {
                Attempt::Delivered => {
                    queue.pop();
                    let mut waiting = queue.lock();
                    waiting.failing_since = None;
                    waiting.delay = None;
                }
                Attempt::Refused(why) => {
                    queue.pop();
                    self.note(&format!(
                        "the webhook {} refused {}: {why}; not retried",
                        self.webhook, entry.label
                    ));
                }
                Attempt::Failed { why, retry_after } => {
                    let pause = {
                        let mut waiting = queue.lock();
                        let failing_since = *waiting.failing_since.get_or_insert_with(Instant::now);
                        if failing_since.elapsed() >= self.policy.give_up_after {
                            None
                        } else {
                            let delay = waiting.delay.unwrap_or(self.policy.first_delay);
                            waiting.delay = Some((delay * 2).min(self.policy.max_delay));
                            Some(
                                delay.max(
                                    retry_after.unwrap_or_default().min(self.policy.max_delay),
                                ),
                            )
                        }
                    };
                    match pause {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => self.give_up(queue, &why),
                    }
                }
            }
        }
    }

    /// Drops everything queued, with one note.
    fn give_up(&self, queue: &Queue, why: &str) {
        let waiting = queue.take();
        let count = waiting.entries.len();
        let Some(first) = waiting.entries.front() else {
            return;
        };
        let others = match count {
            1 => String::new(),
            2 => " and 1 more message".to_string(),
            n => format!(" and {} more messages", n - 1),
        };
        self.note(&format!(
            "gave up posting {}{others} to {} after {} of failures: {why}",
            first.label,
            self.webhook,
            format_duration(self.policy.give_up_after)
        ));
    }

    async fn attempt(&self, body: &str) -> Attempt {
        let sent = self
            .client
            .post(self.webhook.expose())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(self.policy.attempt_timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Attempt::Failed {
                    why: format!(
                        "no answer within {}",
                        format_duration(self.policy.attempt_timeout)
                    ),
                    retry_after: None,
                }
            }
            Err(e) => {
                return Attempt::Failed {
                    why: cause(e),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let said = tokio::time::timeout(Duration::from_secs(1), response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|text| one_line(&text, 100))
            .filter(|text| !text.is_empty() && !text.starts_with('<'));
        let mut why = match status.canonical_reason() {
            Some(reason) => format!("{} {reason}", status.as_u16()),
            None => status.as_u16().to_string(),
        };
        if let Some(said) = said {
            why.push_str(&format!(" ({said})"));
        }
        if status.is_redirection() {
            why.push_str(": webhooks are not followed across redirects; write the final URL in [notify] webhook");
        }
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        if retry {
            Attempt::Failed { why, retry_after }
        } else {
            Attempt::Refused(why)
        }
    }
}

/// The most specific message in an error's chain ("connection refused"),
/// which, unlike reqwest's own ("error sending request for url (…)"),
/// does not quote the URL.
fn cause(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut innermost: &dyn std::error::Error = &error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let text = innermost.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "the request failed".to_string(),
    }
}
