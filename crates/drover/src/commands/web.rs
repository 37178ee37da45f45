//! `drover web`: load the environment, serve the dashboard until Ctrl-C or
//! SIGTERM, then stop cleanly (streams and shells are told why).

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::Global;
use crate::terminal::interrupt;

pub async fn run(
    global: &Global,
    listen: &str,
    tls_cert: Option<&std::path::Path>,
    tls_key: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(drover_web::tls_config(cert, key)?),
        _ => None,
    };
    let (token, generated) = match std::env::var("DROVER_WEB_TOKEN") {
        Ok(token) if !token.trim().is_empty() => (token.trim().to_string(), false),
        _ => (drover_web::generate_token()?, true),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if address.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if address.is_ipv6() {
        format!("[{}]", address.ip())
    } else {
        address.ip().to_string()
    };
    let env = fleet.env.name.clone();
    let dashboard = drover_web::Dashboard::new(
        fleet,
        drover_web::Options {
            token: token.clone(),
            tls,
            log: None,
        },
    );
    if !address.ip().is_loopback() {
        eprintln!("drover web: listening on {address}, beyond this machine: anyone who can reach it and has the token gets a shell in every task{}", if scheme == "http" { " (and the token crosses the network in the clear: use --tls-cert/--tls-key)" } else { "" });
    }
    // The first Ctrl-C stops the server gracefully; a second one aborts.
    interrupt::serving();
    let url = format!("{scheme}://{host}:{}/", address.port());
    // A token of the operator's own is printed only to a terminal, not
    // into a service's log; a generated one must be printed to be usable.
    if generated || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("drover web: environment {env}, open {url}?token={token}");
    } else {
        eprintln!("drover web: environment {env}, open {url}?token=$DROVER_WEB_TOKEN");
    }
    let shutdown = interrupt::token();
    // With [notify], the dashboard also watches for incidents, as `drover watch` does.
    let watcher = super::watch::beside(dashboard.source(), shutdown.clone());
    drover_web::run(
        listener,
        async move { shutdown.cancelled().await },
        dashboard,
    )
    .await?;
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    eprintln!("drover web: stopped");
    Ok(super::SUCCESS)
}
