//! Who may use the dashboard, and as what.
//!
//! Two secrets: `DROVER_WEB_TOKEN`, an operator's (everything: shells and
//! actions), and optionally `DROVER_WEB_VIEW_TOKEN`, a viewer's (every page
//! and stream, no shell, no action). A program presents one as
//! `Authorization: Bearer TOKEN`. A browser gets a session, whose secret
//! goes into an HttpOnly, SameSite=Strict cookie (Secure under TLS), in one
//! of three ways, none of which leaves the token in an address or the
//! history:
//!
//! - the address `drover web` prints carries a single-use login code (an
//!   operator's), exchanged for the session and replaced by a new one,
//!   which `drover web` prints in turn;
//! - the sign-in form every 401 page holds takes the token in a POST body;
//! - `?token=TOKEN` once, for scripts, redirects to the same address
//!   without it.
//!
//! Wrong credentials are slowed per client address ([`crate::throttle`]);
//! everything without a valid credential or session gets 401, pages, API,
//! streams and WebSockets alike.
//!
//! A session has a public id besides its secret: the audit record names
//! the id, never anything that would let a reader of it in. Ending a
//! session (`POST /logout`) fires its cancellation token, which every
//! stream and shell it opened is watching: they close within seconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::throttle::{Client, Throttle};
use crate::{escape_html, Dashboard, WebError};

/// Sessions kept at most; the oldest goes first beyond that.
const MAX_SESSIONS: usize = 10_000;
/// The shortest token accepted on an address beyond this machine.
pub const MIN_TOKEN_LEN: usize = 32;

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything, opens shells, takes actions.
    Operator,
    /// Sees everything; no shell, no action.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// The peer of the connection a request came on (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub struct Auth {
    operator: String,
    viewer: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The login code not used yet (an operator's), if one was issued.
    code: Mutex<Option<String>>,
    throttle: Throttle,
}

/// One browser that signed in.
#[derive(Clone)]
pub struct Session {
    /// Public: what the record names.
    pub id: String,
    pub role: Role,
    /// Fired at logout.
    pub ended: CancellationToken,
    opened: Instant,
}

/// Who a request comes from.
#[derive(Clone)]
pub enum Who {
    /// `Authorization: Bearer` with a token itself.
    Token(Role),
    Session(Session),
}

impl Who {
    /// How the record names them.
    pub fn name(&self) -> String {
        match self {
            Who::Token(_) => "bearer-token".to_string(),
            Who::Session(s) => s.id.clone(),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Who::Token(role) => *role,
            Who::Session(s) => s.role,
        }
    }

    /// Fires when what they opened must end (logout); never for a token.
    pub fn ended(&self) -> CancellationToken {
        match self {
            Who::Token(_) => CancellationToken::new(),
            Who::Session(s) => s.ended.clone(),
        }
    }

    /// A program holding a token, not a browser riding a cookie: it may
    /// leave out `Origin` (a browser always sends one where it matters).
    pub fn is_program(&self) -> bool {
        matches!(self, Who::Token(_))
    }
}

/// Refuses tokens a dashboard must not start with: one shorter than
/// [`MIN_TOKEN_LEN`] where the dashboard listens beyond loopback, and a
/// viewer's token equal to the operator's.
pub fn check_tokens(
    operator: &str,
    viewer: Option<&str>,
    listen: SocketAddr,
) -> Result<(), WebError> {
    let mut named = vec![("DROVER_WEB_TOKEN", operator)];
    if let Some(viewer) = viewer {
        named.push(("DROVER_WEB_VIEW_TOKEN", viewer));
        if viewer == operator {
            return Err(WebError::Token(
                "DROVER_WEB_VIEW_TOKEN is the same as DROVER_WEB_TOKEN: a viewer would be an operator; give the viewer a token of its own".to_string(),
            ));
        }
    }
    for (name, token) in named {
        if token.is_empty() {
            return Err(WebError::Token(format!("{name} is empty")));
        }
        if token.chars().count() < MIN_TOKEN_LEN && !listen.ip().is_loopback() {
            return Err(WebError::Token(format!(
                "{name} has {} characters, and the dashboard would listen on {listen}, beyond this machine: such a token needs at least {MIN_TOKEN_LEN} (make one with `openssl rand -hex 32`), or listen on loopback only (--listen 127.0.0.1:PORT)",
                token.chars().count()
            )));
        }
    }
    Ok(())
}

impl Auth {
    pub fn new(operator: String, viewer: Option<String>) -> Auth {
        Auth {
            operator,
            viewer: viewer.filter(|v| !v.is_empty()),
            sessions: Mutex::new(HashMap::new()),
            code: Mutex::new(None),
            throttle: Throttle::new(),
        }
    }

    pub fn sessions(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    /// [`check_tokens`] for a dashboard listening on `listen`.
    pub fn check(&self, listen: SocketAddr) -> Result<(), WebError> {
        check_tokens(&self.operator, self.viewer.as_deref(), listen)
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The role a token grants, if it is one of this dashboard's.
    fn role_of(&self, candidate: &str) -> Option<Role> {
        // Both compared, whatever the first gives: no timing tells which.
        let operator = !self.operator.is_empty()
            && constant_time_eq(candidate.as_bytes(), self.operator.as_bytes());
        let viewer = self
            .viewer
            .as_ref()
            .is_some_and(|v| constant_time_eq(candidate.as_bytes(), v.as_bytes()));
        if operator {
            Some(Role::Operator)
        } else if viewer {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    /// A new single-use login code (an operator's); the one before it no
    /// longer works.
    pub fn issue_code(&self) -> Result<String, WebError> {
        let code = random_hex(16)?;
        let mut slot = self.code.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(code.clone());
        Ok(code)
    }

    /// Uses up the login code, if `candidate` is it.
    fn take_code(&self, candidate: &str) -> bool {
        let mut slot = self.code.lock().unwrap_or_else(|e| e.into_inner());
        let matches = slot
            .as_ref()
            .is_some_and(|code| constant_time_eq(candidate.as_bytes(), code.as_bytes()));
        if matches {
            *slot = None;
        }
        matches
    }

    fn open(&self, role: Role) -> Result<(String, Session), WebError> {
        let secret = random_hex(32)?;
        let session = Session {
            id: format!("s-{}", random_hex(4)?),
            role,
            ended: CancellationToken::new(),
            opened: Instant::now(),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(k, _)| k.clone())
            {
                if let Some(s) = sessions.remove(&oldest) {
                    s.ended.cancel();
                }
            }
        }
        sessions.insert(secret.clone(), session.clone());
        Ok((secret, session))
    }

    fn find(&self, secret: &str) -> Option<Session> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(secret).cloned()
    }

    fn close(&self, secret: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.remove(secret)?;
        session.ended.cancel();
        Some(session)
    }

    /// The session whose cookie these headers carry.
    fn session(&self, headers: &HeaderMap, cookie_name: &str) -> Option<(Session, String)> {
        let secret = cookie(headers, cookie_name)?;
        let session = self.find(&secret)?;
        Some((session, secret))
    }
}

/// How a credential was presented, for the record.
#[derive(Clone, Copy)]
enum Via {
    Code,
    Token,
    Form,
    Bearer,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Code => "code",
            Via::Token => "token",
            Via::Form => "form",
            Via::Bearer => "bearer",
        }
    }
}

/// The client's address, from the accept loop.
fn client_of(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ClientAddr>().map(|c| c.0)
}

fn bucket(address: Option<SocketAddr>) -> Client {
    address.map_or(Client::from(std::net::IpAddr::from([0u8; 4])), |a| {
        Client::from(a.ip())
    })
}

/// The middleware in front of every route but `/login`.
pub async fn require(
    State(dashboard): State<Dashboard>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &dashboard.inner.auth;
    let address = client_of(&request);
    let session = auth.session(request.headers(), dashboard.cookie_name());
    let code = query_value(request.uri().query(), "code");
    let token = query_value(request.uri().query(), "token");
    if code.is_some() || token.is_some() {
        if request.method() != Method::GET {
            return unauthorized(
                request.headers(),
                "a token or login code in the address only opens a page",
                "/",
            );
        }
        let target = without_query_keys(
            request.uri().path(),
            request.uri().query(),
            &["code", "token"],
        );
        let (via, role) = match (&code, &token) {
            (Some(code), _) => {
                if auth.take_code(code) {
                    (Via::Code, Some(Role::Operator))
                } else if session.is_some() {
                    // An old printed address opened again by a browser
                    // already signed in: nothing to do but tidy it.
                    return see_other(&target, None);
                } else {
                    (Via::Code, None)
                }
            }
            (None, Some(token)) => {
                if let Err(wait) = auth.throttle.check(bucket(address), Instant::now()) {
                    return too_many(request.headers(), wait);
                }
                (Via::Token, auth.role_of(token))
            }
            (None, None) => return see_other(&target, None),
        };
        return match role {
            Some(role) => sign_in(&dashboard, role, via, address, &target),
            None => {
                let why = match via {
                    Via::Code => "this login code was used already, or is not this dashboard's: each printed address signs in once (drover web prints a new one when it is used); sign in with the token below",
                    _ => "the token in the address is not this dashboard's",
                };
                refused(&dashboard, via, address, request.headers(), why, &target)
            }
        };
    }
    if let Some(bearer) = bearer(request.headers()) {
        if let Err(wait) = auth.throttle.check(bucket(address), Instant::now()) {
            return too_many(request.headers(), wait);
        }
        return match auth.role_of(&bearer) {
            Some(role) => {
                request.extensions_mut().insert(Who::Token(role));
                let mut response = next.run(request).await;
                security_headers(response.headers_mut());
                response
            }
            None => refused(
                &dashboard,
                Via::Bearer,
                address,
                request.headers(),
                "the bearer token is not this dashboard's",
                "/",
            ),
        };
    }
    match session {
        Some((session, secret)) => {
            request.extensions_mut().insert(Who::Session(session));
            request.extensions_mut().insert(SessionSecret(secret));
            let mut response = next.run(request).await;
            security_headers(response.headers_mut());
            response
        }
        None => {
            let here = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            unauthorized(
                request.headers(),
                "open the address `drover web` printed, sign in with a token below, or send Authorization: Bearer TOKEN",
                &here,
            )
        }
    }
}

/// A credential that was wrong: counted against the address, recorded
/// (while the address is not paused), 401.
fn refused(
    dashboard: &Dashboard,
    via: Via,
    address: Option<SocketAddr>,
    headers: &HeaderMap,
    why: &str,
    next: &str,
) -> Response {
    let pause = dashboard
        .inner
        .auth
        .throttle
        .failed(bucket(address), Instant::now());
    let ip = address.map(|a| a.ip().to_string());
    dashboard.audit().record(
        "login.failed",
        json!({"via": via.as_str(), "address": ip, "why": why}),
    );
    if let Some(pause) = pause {
        dashboard.audit().record(
            "login.paused",
            json!({"address": ip, "seconds": pause.as_secs()}),
        );
    }
    unauthorized(headers, why, next)
}

/// Opens a session of `role`, records it, sets its cookie and sends the
/// browser to `target`.
fn sign_in(
    dashboard: &Dashboard,
    role: Role,
    via: Via,
    address: Option<SocketAddr>,
    target: &str,
) -> Response {
    let auth = &dashboard.inner.auth;
    let (secret, session) = match auth.open(role) {
        Ok(opened) => opened,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    auth.throttle.succeeded(bucket(address));
    let ip = address.map(|a| a.ip().to_string());
    dashboard.audit().record(
        "login",
        json!({"role": role.as_str(), "via": via.as_str(), "session": session.id, "address": ip}),
    );
    if matches!(via, Via::Code) {
        dashboard.announce_login_code(&format!(
            "the login address was used ({} session {} from {}); a new one",
            role.as_str(),
            session.id,
            ip.as_deref().unwrap_or("an unknown address")
        ));
    }
    let cookie = format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Strict{}",
        dashboard.cookie_name(),
        if dashboard.secure() { "; Secure" } else { "" }
    );
    see_other(target, Some(&cookie))
}

fn see_other(target: &str, cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(target) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(headers);
    response
}

/// `GET /login`: the sign-in form.
pub async fn login_page(uri: axum::http::Uri) -> Response {
    let next = query_value(uri.query(), "next").unwrap_or_else(|| "/".to_string());
    let mut response = Html(page("sign in", "", &safe_next(&next))).into_response();
    security_headers(response.headers_mut());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /login` (a form: `token`, `next`): a session for the token's role.
pub async fn login(
    State(dashboard): State<Dashboard>,
    client: Option<Extension<ClientAddr>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let address = client.map(|c| c.0 .0);
    let form = String::from_utf8_lossy(&body);
    let next = safe_next(&query_value(Some(&form), "next").unwrap_or_else(|| "/".to_string()));
    if !same_origin(
        &headers,
        uri.authority().map(|a| a.as_str()),
        dashboard.secure(),
        false,
    ) {
        return forbidden("a sign-in must come from the dashboard's own page (its Origin)");
    }
    let auth = &dashboard.inner.auth;
    if let Err(wait) = auth.throttle.check(bucket(address), Instant::now()) {
        return too_many(&headers, wait);
    }
    let token = query_value(Some(&form), "token").unwrap_or_default();
    match auth.role_of(token.trim()) {
        Some(role) => sign_in(&dashboard, role, Via::Form, address, &next),
        None => refused(
            &dashboard,
            Via::Form,
            address,
            &headers,
            "that token is not this dashboard's",
            &next,
        ),
    }
}

/// Only a path of this dashboard: `/…`, never `//host`.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The session cookie's value, kept for logout.
#[derive(Clone)]
pub struct SessionSecret(String);

/// `POST /logout`: ends the session and everything it opened.
pub async fn logout(
    State(dashboard): State<Dashboard>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    who: Extension<Who>,
    secret: Option<Extension<SessionSecret>>,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    if !same_origin(
        &headers,
        uri.authority().map(|a| a.as_str()),
        dashboard.secure(),
        true,
    ) {
        return forbidden("cross-origin request refused");
    }
    if let (Who::Session(_), Some(secret)) = (&who.0, secret) {
        if let Some(session) = dashboard.inner.auth.close(&secret.0 .0) {
            dashboard.audit().record(
                "logout",
                json!({
                    "role": session.role.as_str(),
                    "session": session.id,
                    "address": client.map(|c| c.0 .0.ip().to_string()),
                }),
            );
        }
    }
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        dashboard.cookie_name(),
        if dashboard.secure() { "; Secure" } else { "" }
    );
    let mut response = Html(page(
        "signed out",
        "This browser's session has ended and its shells are closed.",
        "/",
    ))
    .into_response();
    if let Ok(clear) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    security_headers(response.headers_mut());
    response
}

/// Whether the request's `Origin` is the dashboard itself. A browser always
/// sends one with a WebSocket upgrade and a POST; a request without one
/// comes from a program, which is let through only when `missing_ok`.
pub fn same_origin(
    headers: &HeaderMap,
    authority: Option<&str>,
    secure: bool,
    missing_ok: bool,
) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return missing_ok;
    };
    // HTTP/1.1 names the host in `Host`, HTTP/2 in the request's authority.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    let Some(host) = host else {
        return false;
    };
    let scheme = if secure { "https" } else { "http" };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// 403 with `{"error": why}`.
pub fn forbidden(why: &str) -> Response {
    crate::api::error(StatusCode::FORBIDDEN, why)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn unauthorized(headers: &HeaderMap, why: &str, next: &str) -> Response {
    let mut response = if wants_html(headers) {
        (
            StatusCode::UNAUTHORIZED,
            Html(page(
                "401: not signed in",
                &escape_html(why),
                &safe_next(next),
            )),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": why })),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"drover\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(headers);
    response
}

/// 429 with `Retry-After`: this address failed too often lately.
fn too_many(headers: &HeaderMap, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let why =
        format!("too many wrong tokens or login codes from this address: try again in {secs} s");
    let mut response = if wants_html(headers) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            Html(page("429: slow down", &escape_html(&why), "/")),
        )
            .into_response()
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "error": why })),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        headers.insert(header::RETRY_AFTER, v);
    }
    security_headers(headers);
    response
}

/// A page of the server's own (401, signed out, sign in): no script, and a
/// sign-in form that posts the token (never into an address).
fn page(title: &str, body_html: &str, next: &str) -> String {
    let message = if body_html.is_empty() {
        String::new()
    } else {
        format!("<p>{body_html}</p>")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>drover · {title}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;background:#0f1115;color:#d6dae0;display:grid;place-items:center;min-height:100vh;margin:0}}\
         main{{max-width:34em;margin:1em;padding:1.5em 2em;border:1px solid #2a2f3a;border-radius:8px;background:#161a21}}h1{{font-size:1.2em;margin:0 0 .5em}}code{{color:#8fc1ff}}\
         form{{display:flex;gap:.5em;flex-wrap:wrap;margin-top:1em}}input{{flex:1;min-width:12em;font:inherit;padding:.3em .6em;background:#1d222b;color:inherit;border:1px solid #2a2f3a;border-radius:5px}}\
         button{{font:inherit;padding:.3em .9em;background:#1d222b;color:inherit;border:1px solid #5aa2ff;border-radius:5px;cursor:pointer}}</style>\
         </head><body><main><h1>{title}</h1>{message}\
         <form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" autocomplete=\"current-password\" placeholder=\"DROVER_WEB_TOKEN or DROVER_WEB_VIEW_TOKEN\" aria-label=\"token\" required>\
         <input type=\"hidden\" name=\"next\" value=\"{next}\"><button type=\"submit\">sign in</button></form></main></body></html>",
        next = escape_html(next),
    )
}

/// Headers every answer carries: no framing, no sniffing, no referrer to
/// other sites (an address may carry a login code; `same-origin` rather
/// than `no-referrer`, under which a browser sends `Origin: null` with the
/// sign-in form's POST), scripts from this origin only.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// `Authorization: Bearer TOKEN`'s token.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The decoded value of `key` in a query string.
pub fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
        .next()
}

/// `path?query` without `keys`.
fn without_query_keys(path: &str, query: Option<&str>, keys: &[&str]) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            !keys.contains(&percent_decode(pair.split('=').next().unwrap_or("")).as_str())
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// `%41` → `A`, `+` → space; bad escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `bytes` random bytes, hex.
pub fn random_hex(bytes: usize) -> Result<String, WebError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| WebError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_handling() {
        assert_eq!(
            query_value(Some("a=1&token=x%2By&b"), "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_value(Some("a=1"), "token"), None);
        assert_eq!(without_query_keys("/", Some("token=abc"), &["token"]), "/");
        assert_eq!(
            without_query_keys(
                "/jobs/web",
                Some("tail=5&code=abc&x=%20"),
                &["code", "token"]
            ),
            "/jobs/web?tail=5&x=%20"
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a%20b+c"), "a b c");
    }

    #[test]
    fn origins() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7070"));
        assert!(same_origin(&headers, None, false, true));
        assert!(!same_origin(&headers, None, false, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7070"),
        );
        assert!(same_origin(&headers, None, false, false));
        assert!(!same_origin(&headers, None, true, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers, None, false, true));
    }

    #[test]
    fn tokens_compare_whole_and_give_their_role() {
        let auth = Auth::new("secret".into(), Some("looker".into()));
        assert_eq!(auth.role_of("secret"), Some(Role::Operator));
        assert_eq!(auth.role_of("looker"), Some(Role::Viewer));
        assert_eq!(auth.role_of("secre"), None);
        assert_eq!(auth.role_of(""), None);
        assert_eq!(
            Auth::new(String::new(), Some(String::new())).role_of(""),
            None
        );
    }

    #[test]
    fn a_login_code_works_once() {
        let auth = Auth::new("t".repeat(40), None);
        let first = auth.issue_code().unwrap_or_default();
        let second = auth.issue_code().unwrap_or_default();
        assert_eq!(second.len(), 32);
        assert!(!auth.take_code(&first), "a code replaced is gone");
        assert!(!auth.take_code(""));
        assert!(auth.take_code(&second));
        assert!(!auth.take_code(&second), "single use");
    }

    #[test]
    fn short_tokens_only_on_loopback() {
        let loopback: SocketAddr = ([127, 0, 0, 1], 7070).into();
        let v6_loopback: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, 7070).into();
        let everywhere: SocketAddr = ([0, 0, 0, 0], 7070).into();
        let lan: SocketAddr = ([10, 1, 2, 3], 7070).into();
        assert!(check_tokens("a", None, loopback).is_ok());
        assert!(check_tokens("a", None, v6_loopback).is_ok());
        let long = "x".repeat(32);
        assert!(check_tokens(&long, None, everywhere).is_ok());
        let e = check_tokens("a", None, everywhere)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "DROVER_WEB_TOKEN has 1 characters, and the dashboard would listen on 0.0.0.0:7070, beyond this machine: such a token needs at least 32 (make one with `openssl rand -hex 32`), or listen on loopback only (--listen 127.0.0.1:PORT)");
        let e = check_tokens(&long, Some("short"), lan)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("DROVER_WEB_VIEW_TOKEN has 5 characters"),
            "{e}"
        );
        assert!(check_tokens(&long, Some(&long), loopback).is_err());
        assert!(check_tokens("", None, loopback).is_err());
    }

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(safe_next("/jobs/web?x=1"), "/jobs/web?x=1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn bearer_scheme_is_case_blind() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("BEARER abc "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
