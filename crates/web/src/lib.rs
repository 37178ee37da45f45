//! `drover web`: the dashboard an operator keeps open all day.
//!
//! It is a thin HTTP face over `drover-fleet`, the same pipeline the CLI
//! runs: `/api/status` is `Fleet::status`, the job page's diff is
//! `Fleet::plan_up` printed by the CLI's own renderer, logs come from
//! `Fleet::follow_logs` and the shell from `Fleet::open_exec`. What this
//! crate adds is what a long-lived server needs and a CLI run does not:
//!
//! - [`hub`]: one event subscription and one stats sampler per host, shared
//!   by every open overview, so ten tabs cost the engines what one does;
//! - [`auth`]: the token, sessions, and the origin check that keep a shell
//!   server from being anyone's shell server;
//! - [`serve`]: the accept loop (plain or TLS) that stops cleanly, shaped
//!   like mini-redis's `server::run(listener, shutdown)` so tests start it
//!   on port 0 and stop it when they are done.
//!
//! The browser side (`ui/`) is plain TypeScript bundled by esbuild at build
//! time and compiled into the binary ([`assets`]): the binary alone serves
//! the page.

mod api;
mod assets;
pub mod auth;
mod error;
pub mod hub;
mod live;
mod logs;
mod pages;
mod pool;
mod serve;
mod shell;
mod source;

use std::sync::{Arc, OnceLock};

use drover_fleet::Fleet;
use tokio_util::sync::CancellationToken;

pub use error::WebError;
pub use serve::{run, tls_config};

use crate::auth::Auth;
use crate::hub::Hub;
use crate::pool::Pool;
use crate::source::FleetSource;

/// Where the dashboard writes its own record (logins, logouts, shell
/// sessions): one line per event.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How the dashboard is set up.
pub struct Options {
    /// The secret a client presents (`Authorization: Bearer`, or `?token=` once).
    pub token: String,
    /// Serve HTTPS with this configuration (and mark the session cookie `Secure`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where the record of sessions and shells goes; `None`: standard error.
    pub log: Option<LogSink>,
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
    tls: Option<Arc<rustls::ServerConfig>>,
    log: LogSink,
    /// Fired when the server stops: every stream and shell ends.
    shutdown: CancellationToken,
    /// `drover_session_PORT`: cookies are not kept apart by port, two
    /// dashboards on one machine must not overwrite each other's.
    cookie_name: OnceLock<String>,
}

impl Dashboard {
    /// A dashboard over `fleet`, whose files it re-reads when they change.
    pub fn new(fleet: Fleet, options: Options) -> Dashboard {
        let log = options
            .log
            .unwrap_or_else(|| Arc::new(|line: &str| eprintln!("drover web: {line}")) as LogSink);
        let shutdown = CancellationToken::new();
        let source = Arc::new(FleetSource::new(fleet));
        let pool = Pool::new(Arc::clone(&source));
        let hub = Hub::new(Arc::clone(&source), pool.clone(), shutdown.clone());
        Dashboard {
            inner: Arc::new(Inner {
                source,
                pool,
                hub,
                auth: Auth::new(options.token),
                tls: options.tls,
                log,
                shutdown,
                cookie_name: OnceLock::new(),
            }),
        }
    }

    /// The environment as its files say now, shared with the incident
    /// watcher `drover web` runs beside the dashboard.
    pub fn source(&self) -> Arc<FleetSource> {
        Arc::clone(&self.inner.source)
    }

    /// The live overview, for tests and benchmarks that look at how many
    /// viewers share it.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Sessions opened and still valid.
    pub fn sessions(&self) -> usize {
        self.inner.auth.sessions()
    }

    fn fleet(&self) -> Arc<Fleet> {
        self.inner.source.current()
    }

    fn log(&self, line: &str) {
        (self.inner.log)(line);
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
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
    }
}
