//! `drover web`: load the environment, check the tokens against the address
//! it listens on, print a single-use login address, serve the dashboard
//! until Ctrl-C or SIGTERM, then stop cleanly (streams and shells are told
//! why; changes started from the dashboard wind down as the CLI's do).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::cli::Global;
use crate::terminal::interrupt;

pub async fn run(
    global: &Global,
    listen: &str,
    tls_cert: Option<&std::path::Path>,
    tls_key: Option<&std::path::Path>,
    audit: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(drover_web::tls_config(cert, key)?),
        _ => None,
    };
    let token = match std::env::var("DROVER_WEB_TOKEN") {
        Ok(token) if !token.trim().is_empty() => token.trim().to_string(),
        _ => drover_web::generate_token()?,
    };
    let view_token = std::env::var("DROVER_WEB_VIEW_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let audit = match audit {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the audit file {}", path.display()))?;
            let file = Mutex::new(file);
            let shown = path.display().to_string();
            Some(Arc::new(move |line: &str| {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                    eprintln!("drover web: cannot append to the audit file {shown}: {e}; the record: {line}");
                }
            }) as drover_web::LogSink)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    drover_web::check_tokens(&token, view_token.as_deref(), address)?;
    let env = fleet.env.name.clone();
    let base = drover_web::login_base(address, tls.is_some());
    let plain = tls.is_none();
    let dashboard = drover_web::Dashboard::new(
        fleet,
        drover_web::Options {
            token,
            view_token,
            tls,
            log: None,
            audit,
        },
    );
    if !address.ip().is_loopback() {
        eprintln!("drover web: listening on {address}, beyond this machine: anyone who can reach it and has the operator's token gets a shell in every task{}", if plain { " (and tokens cross the network in the clear: use --tls-cert/--tls-key)" } else { "" });
    }
    // The first Ctrl-C stops the server gracefully; a second one aborts.
    let running = dashboard.clone();
    interrupt::serving(Box::new(move || running.changes_running()));
    // The address signs one browser in once; a new one is printed when it is used.
    let login = dashboard.login_address(&base)?;
    eprintln!("drover web: environment {env}, open {login}");
    let shutdown = interrupt::token();
    let notifier = dashboard.notifier();
    // With [notify], the dashboard also watches for incidents, as `drover watch` does.
    let watcher = super::watch::beside(dashboard.source(), shutdown.clone());
    drover_web::run(
        listener,
        async move { shutdown.cancelled().await },
        dashboard,
    )
    .await?;
    // What the changes made here had still to tell the team gets the 2 s a
    // command gets; the rest is retried by a detached process.
    notifier
        .finish(std::time::Duration::from_secs(2))
        .await
        .hand_off(&drover_notify::HandOff::this_binary());
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    eprintln!("drover web: stopped");
    Ok(super::SUCCESS)
}
