//! `drover watch`: stay running, watch every host, post incidents to
//! `[notify]` ([`drover_fleet::watch`]). Each message posted is also a
//! line on stdout (the JSON object with `--json`); notes about the watcher
//! itself go to stderr. Ctrl-C or SIGTERM stop it; what is not delivered
//! by then goes to `drover notify-retry`.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use drover_fleet::watch::{self, Sink, WatchOptions};
use drover_fleet::FleetSource;
use drover_notify::render::{self, Redactor, Sender};
use drover_notify::{HandOff, Notifier, Options};
use drover_spec::NotifyFormat;

use crate::cli::Global;
use crate::outln;
use crate::terminal::interrupt;

/// The secret values at hand, masked in whatever is posted (a watcher
/// needs none: without them a task's drift is judged by its container).
fn secrets_at_hand(fleet: &drover_fleet::Fleet) -> Vec<String> {
    let names: BTreeSet<&str> = fleet
        .env
        .jobs
        .values()
        .flat_map(|j| j.secret_env.iter().map(String::as_str))
        .collect();
    drover_fleet::load_secrets(&fleet.env.dir, &names)
        .map(|s| s.values().map(|v| v.expose().to_string()).collect())
        .unwrap_or_default()
}

/// `drover web`'s watcher, when `[notify]` posts incidents: started beside
/// the dashboard on its files, stopped with it (what is not delivered by
/// then goes to `drover notify-retry`).
pub fn beside(
    source: Arc<FleetSource>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let fleet = source.current();
    let secrets = secrets_at_hand(&fleet);
    let notifier = Notifier::from_env(
        &fleet.env,
        Options::new(drover_apply::lock::operator()).secrets(&secrets),
    );
    let incidents = fleet
        .env
        .notify
        .as_ref()
        .is_some_and(|n| n.events.contains(&drover_spec::NotifyClass::Incident));
    if !notifier.is_enabled() || !incidents {
        return None;
    }
    eprintln!("drover web: watching the hosts for incidents, posted to [notify]");
    let sink = Sink {
        posted: Arc::new(|event: &drover_notify::Event| {
            eprintln!("drover web: posted {} ({})", event.kind, event.summary);
        }),
        note: Arc::new(|note: &str| eprintln!("drover web: watch: {note}")),
    };
    Some(tokio::spawn(async move {
        watch::run(
            source,
            notifier.clone(),
            WatchOptions::default(),
            sink,
            shutdown,
        )
        .await;
        let pending = notifier.finish(Duration::from_secs(2)).await;
        if !pending.is_empty() {
            pending.hand_off(&HandOff::this_binary());
        }
    }))
}

pub async fn run(global: &Global) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let by = drover_apply::lock::operator();
    let secrets = secrets_at_hand(&fleet);
    let notifier = Notifier::from_env(&fleet.env, Options::new(&by).secrets(&secrets));
    if !notifier.is_enabled() {
        eprintln!("drover watch: drover.toml has no [notify] (or it posts no incidents): incidents are printed here only");
    }
    let sender = Sender {
        env: fleet.env.name.clone(),
        stage: fleet.env.stage.clone(),
        by,
    };
    let values = secrets.iter().map(String::as_str);
    let redactor = match &fleet.env.notify {
        Some(notify) => Redactor::new(&notify.webhook, values),
        None => Redactor::of(values),
    };
    let json = global.json;
    let posted = move |event: &drover_notify::Event| {
        let line = if json {
            render::body(event, &sender, NotifyFormat::Json, &redactor)
        } else {
            redactor.apply(&format!(
                "{} {} {}",
                drover_notify::time::rfc3339(event.time),
                event.kind,
                render::message(event, &sender)
            ))
        };
        outln!("{line}");
    };
    let sink = Sink {
        posted: Arc::new(posted),
        note: Arc::new(|note: &str| eprintln!("drover watch: {note}")),
    };
    let hosts = fleet.hosts().len();
    let env = fleet.env.name.clone();
    eprintln!("drover watch: environment {env}, watching {hosts} host(s); Ctrl-C stops");
    // The first signal stops the watcher cleanly; that is how it ends.
    interrupt::serving(Box::new(|| 0));
    let cancel = interrupt::token();
    watch::run(
        Arc::new(FleetSource::new(fleet)),
        notifier.clone(),
        WatchOptions::default(),
        sink,
        cancel,
    )
    .await;
    let pending = notifier.finish(Duration::from_secs(2)).await;
    if !pending.is_empty() {
        eprintln!(
            "drover watch: {} message(s) not delivered yet are retried in the background",
            pending.len()
        );
        pending.hand_off(&HandOff::this_binary());
    }
    eprintln!("drover watch: stopped");
    Ok(super::SUCCESS)
}
