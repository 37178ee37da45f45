//! `drover web`: the dashboard an operator keeps open all day.
//!
//! It is a thin HTTP face over `drover-fleet`, the same pipeline the CLI
//! runs: `/api/status` is `Fleet::status`, the job page's diff is
//! `Fleet::plan_up` printed by the CLI's own renderer, logs come from
//! `Fleet::follow_logs`, the shell from `Fleet::open_exec`, and an action
//! is `Fleet::prepare` then `Fleet::execute`. What this
//! crate adds is what a long-lived server needs and a CLI run does not:
//!
//! - [`hub`]: one event subscription and one stats sampler per host, shared
//!   by every open overview, so ten tabs cost the engines what one does;
//! - [`auth`]: two roles (operator, viewer), single-use login codes,
//!   sessions, failed logins slowed per address ([`throttle`]), and the
//!   origin check that keep a shell server from being anyone's shell server;
//! - [`audit`]: logins, shells and actions as JSON lines;
//! - `channel`: one WebSocket per tab carrying every live thing the page
//!   shows (overview, a job, a task, its logs, a change's progress), so
//!   twenty tabs stream where six event streams would stall over HTTP/1.1;
//! - `actions`: restart, stop, start, rollback and up from a job's page,
//!   shown as a plan first and run through `Fleet::prepare` and
//!   `Fleet::execute`, the CLI's own orchestration;
//! - [`metrics`]: the view as Prometheus text, from memory;
//! - [`serve`]: the accept loop (plain or TLS) that stops cleanly, shaped
//!   like mini-redis's `server::run(listener, shutdown)` so tests start it
//!   on port 0 and stop it when they are done.
//!
//! The browser side (`ui/`) is plain TypeScript bundled by esbuild at build
//! time and compiled into the binary ([`assets`]): the binary alone serves
//! the page.

mod actions;
mod api;
mod assets;
pub mod audit;
pub mod auth;
mod changes;
mod channel;
mod error;
pub mod glance;
pub mod hub;
mod logs;
pub mod metrics;
mod pages;
mod pool;
pub mod samples;
mod serve;
mod shell;
mod source;
pub mod throttle;
mod timeline;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use drover_fleet::Fleet;
use tokio_util::sync::CancellationToken;

pub use auth::{check_tokens, Role};
pub use error::WebError;
pub use serve::{run, tls_config};

use crate::audit::Audit;
use crate::auth::Auth;
use crate::changes::Changes;
use crate::hub::Hub;
use crate::pool::Pool;
use crate::source::FleetSource;

/// Where the dashboard writes a line: its audit record, or what it has to
/// tell the operator who started it.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How the dashboard is set up.
pub struct Options {
    /// The operator's secret (`DROVER_WEB_TOKEN`): everything, shells and actions.
    pub token: String,
    /// The viewer's secret (`DROVER_WEB_VIEW_TOKEN`): every page, no shell, no action.
    pub view_token: Option<String>,
    /// Serve HTTPS with this configuration (and mark the session cookie `Secure`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// What the operator who started it is told (a new login address);
    /// `None`: standard error.
    pub log: Option<LogSink>,
    /// The audit record (JSON lines: logins, shells, actions); `None`:
    /// standard error.
    pub audit: Option<LogSink>,
}

/// The dashboard's shared state: cheap to clone, one per server.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<FleetSource>,
    pool: Pool,
    hub: Arc<Hub>,
    auth: Auth,
    changes: Arc<Changes>,
    tls: Option<Arc<rustls::ServerConfig>>,
    log: LogSink,
    audit: Audit,
    /// Where the changes started here announce their deploys (`[notify]`
    /// as the dashboard started): one for the server's whole run.
    notifier: drover_notify::Notifier,
    /// Fired when the server stops: every stream and shell ends, and the
    /// changes in flight are interrupted (steps in flight finish or are undone).
    shutdown: CancellationToken,
    /// `drover_session_PORT`: cookies are not kept apart by port, two
    /// dashboards on one machine must not overwrite each other's.
    cookie_name: OnceLock<String>,
    /// `http://127.0.0.1:7070/`: what a login address starts with.
    base_url: OnceLock<String>,
}

impl Dashboard {
    /// A dashboard over `fleet`, whose files it re-reads when they change.
    pub fn new(fleet: Fleet, options: Options) -> Dashboard {
        let stderr = |prefix: &'static str| {
            Arc::new(move |line: &str| eprintln!("{prefix}{line}")) as LogSink
        };
        let log = options.log.unwrap_or_else(|| stderr("drover web: "));
        let audit = Audit::new(options.audit.unwrap_or_else(|| stderr("")));
        let shutdown = CancellationToken::new();
        let notifier = drover_notify::Notifier::from_env(
            &fleet.env,
            drover_notify::Options::new(drover_apply::lock::operator()),
        );
        let source = Arc::new(FleetSource::new(fleet));
        let pool = Pool::new(Arc::clone(&source));
        let hub = Hub::new(Arc::clone(&source), pool.clone(), shutdown.clone());
        Dashboard {
            inner: Arc::new(Inner {
                source,
                pool,
                hub,
                auth: Auth::new(options.token, options.view_token),
                changes: Arc::new(Changes::default()),
                tls: options.tls,
                log,
                audit,
                notifier,
                shutdown,
                cookie_name: OnceLock::new(),
                base_url: OnceLock::new(),
            }),
        }
    }

    /// The environment as its files say now, shared with the incident
    /// watcher `drover web` runs beside the dashboard.
    pub fn source(&self) -> Arc<FleetSource> {
        Arc::clone(&self.inner.source)
    }

    /// The live view, for tests and benchmarks that look at how many
    /// viewers share it.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Sessions opened and still valid.
    pub fn sessions(&self) -> usize {
        self.inner.auth.sessions()
    }

    /// What the changes started here post to `[notify]`: once the server
    /// stopped, its owner gives what is undelivered a last moment and hands
    /// the rest off, as a CLI command does.
    pub fn notifier(&self) -> drover_notify::Notifier {
        self.inner.notifier.clone()
    }

    /// Changes started from the dashboard that have not finished.
    pub fn changes_running(&self) -> usize {
        self.inner.changes.running()
    }

    /// A new single-use login address (an operator's), replacing the one
    /// before; `base` is where the dashboard is reached ([`login_base`]).
    pub fn login_address(&self, base: &str) -> Result<String, WebError> {
        let code = self.inner.auth.issue_code()?;
        Ok(format!("{base}?code={code}"))
    }

    /// After a login address was used: a new one, told to the operator.
    fn announce_login_code(&self, why: &str) {
        let Some(base) = self.inner.base_url.get() else {
            return;
        };
        match self.login_address(base) {
            Ok(address) => self.log(&format!("{why}: {address}")),
            Err(e) => self.log(&format!("{why}, and no new one can be made: {e}")),
        }
    }

    fn fleet(&self) -> Arc<Fleet> {
        self.inner.source.current()
    }

    fn log(&self, line: &str) {
        (self.inner.log)(line);
    }

    fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    fn secure(&self) -> bool {
        self.inner.tls.is_some()
    }

    fn cookie_name(&self) -> &str {
        self.inner
            .cookie_name
            .get()
            .map_or("drover_session", String::as_str)
    }
}

/// The address a browser opens to reach a dashboard listening on `listen`
/// (an unspecified address is reached on loopback): `http://127.0.0.1:7070/`.
pub fn login_base(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = if listen.ip().is_unspecified() {
        if listen.is_ipv6() {
            "[::1]".to_string()
        } else {
            "127.0.0.1".to_string()
        }
    } else if listen.is_ipv6() {
        format!("[{}]", listen.ip())
    } else {
        listen.ip().to_string()
    };
    format!("{scheme}://{host}:{}/", listen.port())
}

/// A token for a dashboard started without `DROVER_WEB_TOKEN`: 32 random
/// bytes, hex.
pub fn generate_token() -> Result<String, WebError> {
    auth::random_hex(32)
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, for the few places the
/// server writes HTML itself.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Now, RFC 3339 UTC with nanoseconds.
fn now() -> String {
    drover_fleet::now_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_bases() {
        assert_eq!(
            login_base(([0, 0, 0, 0], 7070).into(), false),
            "http://127.0.0.1:7070/"
        );
        assert_eq!(
            login_base(([10, 0, 0, 5], 443).into(), true),
            "https://10.0.0.5:443/"
        );
        assert_eq!(
            login_base((std::net::Ipv6Addr::UNSPECIFIED, 80).into(), false),
            "http://[::1]:80/"
        );
        assert_eq!(
            login_base((std::net::Ipv6Addr::LOCALHOST, 80).into(), false),
            "http://[::1]:80/"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
    }
}
