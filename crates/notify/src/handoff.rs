//! What a command could not deliver within its budget, and the process that
//! keeps trying after the command has exited.
//!
//! A CLI command may not wait minutes for a webhook, and its process ends
//! when the command does. So the undelivered messages are written to an
//! unnamed temporary file (mode 0600, unlinked: nothing is left on disk, and
//! no other user can read the webhook URL in it) that becomes the standard
//! input of `drover notify-retry`, started in its own process group so the
//! terminal's Ctrl-C does not reach it. It retries by the same rule as the
//! command would have, then exits. Nothing goes on its command line or in
//! its environment, where `ps` would show it.
//!
//! The retrier never inherits a pipe: a command whose stderr is read by CI
//! or by `| tee` must end when the command does, not when the retrier does.
//! It reports on stderr only when that is a terminal; otherwise the command
//! says at hand-off that messages are still being retried.

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use drover_spec::units::format_duration;
use drover_spec::Webhook;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::deliver::{Courier, Entry, Notes, Queue, RetryPolicy, Waiting};
use crate::render::Redactor;

/// The hidden subcommand that retries handed-off messages: `drover notify-retry`.
pub const RETRY_COMMAND: &str = "notify-retry";

/// The largest hand-off read: a thousand messages fit many times over.
const DOCUMENT_LIMIT: u64 = 64 << 20;

/// Messages a command could not deliver in time.
pub struct Pending {
    courier: Option<Arc<Courier>>,
    waiting: Waiting,
}

/// Who takes over what a command could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOff {
    /// Nobody: what is left is dropped, with a note.
    Nobody,
    /// A program that reads the messages on its standard input, as
    /// [`retry_from`] does.
    Process {
        program: PathBuf,
        args: Vec<OsString>,
    },
}

impl HandOff {
    /// `drover notify-retry`, from the binary running now.
    pub fn this_binary() -> HandOff {
        match std::env::current_exe() {
            Ok(program) => HandOff::Process {
                program,
                args: vec![RETRY_COMMAND.into()],
            },
            Err(_) => HandOff::Nobody,
        }
    }
}

/// The hand-off file: everything the retrier needs.
#[derive(Serialize, Deserialize)]
struct Document {
    webhook: String,
    retry: RetryPolicy,
    /// How long deliveries have been failing, when they have.
    failing_for: Option<Duration>,
    delay: Option<Duration>,
    entries: Vec<Entry>,
}

impl Pending {
    pub(crate) fn empty() -> Pending {
        Pending {
            courier: None,
            waiting: Waiting::default(),
        }
    }

    pub(crate) fn new(courier: Arc<Courier>, waiting: Waiting) -> Pending {
        Pending {
            courier: Some(courier),
            waiting,
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.entries.is_empty()
    }

    /// The exact bodies still to post, in order.
    pub fn bodies(&self) -> Vec<&str> {
        self.waiting
            .entries
            .iter()
            .map(|e| e.body.as_str())
            .collect()
    }

    /// Delivers what is pending here, by the retry rule, and returns when
    /// all of it is delivered or given up on.
    pub async fn deliver(mut self) {
        let Some(courier) = self.courier.clone() else {
            return;
        };
        let queue = Queue::new(std::mem::take(&mut self.waiting));
        courier.run(&queue, true).await;
    }

    /// Hands what is pending to `to`, without waiting for it.
    pub fn hand_off(mut self, to: &HandOff) {
        let Some(courier) = self.courier.clone() else {
            return;
        };
        let HandOff::Process { program, args } = to else {
            // Dropped, with the note that says so.
            return;
        };
        let count = match self.len() {
            0 => return,
            1 => "1 message".to_string(),
            n => format!("{n} messages"),
        };
        let document = self.document(&courier);
        self.waiting = Waiting::default();
        let terminal = std::io::stderr().is_terminal();
        match spawn(program, args, &document, terminal) {
            Ok(()) if terminal => {}
            Ok(()) => courier.note(&format!(
                "{count} not yet posted to {}; retrying in the background for up to {}",
                courier.webhook(),
                format_duration(courier.policy.give_up_after)
            )),
            Err(e) => courier.note(&format!(
                "{count} not posted to {}: cannot retry in the background: {e}",
                courier.webhook()
            )),
        }
    }

    fn document(&self, courier: &Courier) -> Vec<u8> {
        let document = Document {
            webhook: courier.webhook().expose().to_string(),
            retry: courier.policy.clone(),
            failing_for: self.waiting.failing_since.map(|t| t.elapsed()),
            delay: self.waiting.delay,
            entries: self.waiting.entries.iter().cloned().collect(),
        };
        serde_json::to_vec(&document).unwrap_or_default()
    }
}

/// Pending messages nobody took over are lost: say so.
impl Drop for Pending {
    fn drop(&mut self) {
        let (Some(courier), count) = (&self.courier, self.len()) else {
            return;
        };
        let count = match count {
            0 => return,
            1 => "1 message".to_string(),
            n => format!("{n} messages"),
        };
        courier.note(&format!(
            "{count} not posted to {}: the command ended before the webhook answered",
            courier.webhook()
        ));
    }
}

/// Starts `program` detached, the document as its standard input.
fn spawn(
    program: &PathBuf,
    args: &[OsString],
    document: &[u8],
    report_on_stderr: bool,
) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;

    let mut file = tempfile::tempfile()?;
    file.write_all(document)?;
    file.seek(SeekFrom::Start(0))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::from(file))
        .stdout(Stdio::null())
        .stderr(if report_on_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .current_dir("/")
        // Its own process group: Ctrl-C at the terminal is not for it.
        .process_group(0);
    let mut child = command.spawn()?;
    // Reaped if this process outlives it; otherwise init takes it over.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// The retrier's side: reads a hand-off document and delivers it by the
/// retry rule; returns when everything is delivered or given up on.
pub async fn retry_from(input: impl Read, notes: Notes) -> Result<(), String> {
    let mut text = String::new();
    input
        .take(DOCUMENT_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the messages to retry: {e}"))?;
    // serde's messages may quote a value, and a value here may be the webhook.
    let document: Document = serde_json::from_str(&text).map_err(|e| {
        format!(
            "cannot read the messages to retry: not a hand-off document (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let webhook: Webhook = document.webhook.parse()?;
    let courier = Courier::new(
        webhook.clone(),
        Redactor::new(&webhook, []),
        document.retry,
        notes,
    )?;
    let now = Instant::now();
    let queue = Queue::new(Waiting {
        entries: document.entries.into(),
        failing_since: document.failing_for.and_then(|d| now.checked_sub(d)),
        delay: document.delay,
        overflowed: false,
    });
    courier.run(&queue, true).await;
    Ok(())
}
