//! The one handle a command or a long-running process posts through.
//!
//! Posting never waits: [`Notifier::post`] renders the message and queues
//! it, and a courier task delivers in the background while the command goes
//! on with its work. A command ends with [`Notifier::finish`], which waits
//! at most the budget it is given (2 s: the interface's limit on how long a
//! webhook may hold up a deploy) and returns what is still undelivered as a
//! [`Pending`], to be handed to a process that outlives the command. `drover
//! watch` and `drover web` keep one notifier for their whole run; its
//! courier keeps retrying by the same rule.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use drover_spec::{Environment, Notify, NotifyClass, NotifyFormat};
use tokio::task::JoinHandle;

use crate::deliver::{stderr_notes, Courier, Entry, Notes, Queue, RetryPolicy, Waiting};
use crate::event::{Deploy, Event};
use crate::handoff::Pending;
use crate::render::{body, Redactor, Sender};

/// Part of a [`Notifier::finish`] budget kept for handing the rest off.
pub const HAND_OFF_RESERVE: Duration = Duration::from_millis(200);

/// What a notifier needs beyond `[notify]`.
#[derive(Clone)]
pub struct Options {
    /// `user@machine` of whoever runs drover.
    pub by: String,
    /// Values masked in every message: the `secret_env` values the command holds.
    pub secrets: Vec<String>,
    pub retry: RetryPolicy,
    pub notes: Notes,
}

impl Options {
    pub fn new(by: impl Into<String>) -> Options {
        Options {
            by: by.into(),
            secrets: Vec::new(),
            retry: RetryPolicy::default(),
            notes: stderr_notes(),
        }
    }

    pub fn secrets<S: AsRef<str>>(mut self, values: impl IntoIterator<Item = S>) -> Options {
        self.secrets
            .extend(values.into_iter().map(|v| v.as_ref().to_string()));
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Options {
        self.retry = retry;
        self
    }

    pub fn notes(mut self, notes: Notes) -> Options {
        self.notes = notes;
        self
    }
}

/// Posts events to the environment's webhook; a no-op without `[notify]`.
/// Clones share one queue.
#[derive(Clone)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    sender: Sender,
    format: NotifyFormat,
    classes: BTreeSet<NotifyClass>,
    redactor: Redactor,
    courier: Arc<Courier>,
    queue: Arc<Queue>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// A notifier that posts nothing.
    pub fn disabled() -> Notifier {
        Notifier { inner: None }
    }

    /// The environment's `[notify]`, or a disabled notifier without one.
    pub fn from_env(env: &Environment, options: Options) -> Notifier {
        match &env.notify {
            Some(notify) => Notifier::new(notify, &env.name, env.stage.as_deref(), options),
            None => Notifier::disabled(),
        }
    }

    pub fn new(notify: &Notify, env: &str, stage: Option<&str>, options: Options) -> Notifier {
        let redactor = Redactor::new(&notify.webhook, options.secrets.iter().map(String::as_str));
        let courier = match Courier::new(
            notify.webhook.clone(),
            redactor.clone(),
            options.retry,
            options.notes.clone(),
        ) {
            Ok(courier) => courier,
            Err(message) => {
                (options.notes)(&format!("{message}; nothing will be posted"));
                return Notifier::disabled();
            }
        };
        Notifier {
            inner: Some(Arc::new(Inner {
                sender: Sender {
                    env: env.to_string(),
                    stage: stage.map(str::to_string),
                    by: options.by,
                },
                format: notify.format,
                classes: notify.events.clone(),
                redactor,
                courier: Arc::new(courier),
                queue: Arc::new(Queue::new(Waiting::default())),
                worker: Mutex::new(None),
            })),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` for delivery, unless `[notify] events` leaves its
    /// class out. Returns at once.
    pub fn post(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        if !inner.classes.contains(&event.kind.class()) {
            return;
        }
        let entry = Entry {
            label: label(&event),
            body: body(&event, &inner.sender, inner.format, &inner.redactor),
        };
        inner.queue.push(entry, &inner.courier_notes());
        inner.ensure_worker();
    }

    /// Posts a `deploy.*` event for `job`, by this notifier's operator, now.
    pub fn deploy(
        &self,
        outcome: Deploy,
        job: &str,
        image: Option<&str>,
        commit: Option<&str>,
        summary: &str,
    ) {
        self.post_deploy(outcome, job, image, commit, summary, None);
    }

    /// `deploy.failed` for a deploy that stopped before its rollout (its
    /// release command failed): no task has a failed container to read, so
    /// the next command is `history` (which lists the release run), and
    /// `summary` says where its output is.
    pub fn deploy_stopped(
        &self,
        job: &str,
        image: Option<&str>,
        commit: Option<&str>,
        summary: &str,
    ) {
        let next = vec!["history".to_string(), job.to_string()];
        self.post_deploy(Deploy::Failed, job, image, commit, summary, Some(next));
    }

    fn post_deploy(
        &self,
        outcome: Deploy,
        job: &str,
        image: Option<&str>,
        commit: Option<&str>,
        summary: &str,
        next: Option<Vec<String>>,
    ) {
        let Some(inner) = &self.inner else {
            return;
        };
        let mut event = Event::deploy(
            outcome,
            job,
            image,
            &inner.sender.by,
            commit,
            summary,
            SystemTime::now(),
        );
        if next.is_some() {
            event.next = next;
        }
        self.post(event);
    }

    /// Messages not yet delivered.
    pub fn waiting(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.queue.lock().entries.len())
    }

    /// Waits until everything posted is delivered, or `budget` (less
    /// [`HAND_OFF_RESERVE`]) is spent, then stops delivering and returns what
    /// is left — the message in flight included, so nothing is lost.
    pub async fn finish(self, budget: Duration) -> Pending {
        let Some(inner) = self.inner else {
            return Pending::empty();
        };
        inner.ensure_worker();
        let wait = budget.saturating_sub(HAND_OFF_RESERVE);
        let _ = tokio::time::timeout(wait, inner.queue.drained()).await;
        let worker = inner
            .worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(worker) = worker {
            worker.abort();
            let _ = tokio::time::timeout(HAND_OFF_RESERVE / 2, worker).await;
        }
        Pending::new(Arc::clone(&inner.courier), inner.queue.take())
    }
}

impl Inner {
    fn courier_notes(&self) -> Notes {
        let courier = Arc::clone(&self.courier);
        Arc::new(move |note: &str| courier.note(note))
    }

    /// Starts the courier if it is not running and a runtime is at hand
    /// (without one, messages wait for [`Notifier::finish`]).
    fn ensure_worker(&self) {
        let mut worker = self
            .worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if worker.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let courier = Arc::clone(&self.courier);
        let queue = Arc::clone(&self.queue);
        *worker = Some(runtime.spawn(async move { courier.run(&queue, false).await }));
    }
}

/// `deploy.started for web`, `task.crash_loop for web a/0`, `disk.low for host app1`.
fn label(event: &Event) -> String {
    let subject = match (&event.job, &event.host, event.task) {
        (Some(job), Some(host), Some(task)) => format!("{job} {host}/{task}"),
        (Some(job), _, _) => job.clone(),
        (None, Some(host), _) => format!("host {host}"),
        (None, None, _) => "the environment".to_string(),
    };
    format!("{} for {subject}", event.kind)
}
