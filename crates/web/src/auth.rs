//! Who may use the dashboard: whoever has the token.
//!
//! A client presents it as `Authorization: Bearer TOKEN`, or opens any page
//! with `?token=TOKEN` once: that starts a session, whose secret goes into
//! an HttpOnly, SameSite=Strict cookie (Secure under TLS), and redirects to
//! the same address without the token, so it leaves the address bar and the
//! history. Everything else gets 401, pages, API, streams and WebSockets
//! alike.
//!
//! A session has a public id besides its secret: the record of shells names
//! the id, never anything that would let a reader of the log in. Ending a
//! session (`POST /logout`) fires its cancellation token, which every
//! stream and shell it opened is watching: they close within seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::{Dashboard, WebError};

/// Sessions kept at most; the oldest goes first beyond that.
const MAX_SESSIONS: usize = 10_000;

pub struct Auth {
    token: String,
    sessions: Mutex<HashMap<String, Session>>,
}

/// One browser that opened the dashboard with the token.
#[derive(Clone)]
pub struct Session {
    /// Public: what the record names.
    pub id: String,
    /// Fired at logout.
    pub ended: CancellationToken,
    opened: Instant,
}

/// Who a request comes from.
#[derive(Clone)]
pub enum Who {
    /// `Authorization: Bearer` with the token itself.
    Token,
    Session(Session),
}

impl Who {
    /// How the record names them.
    pub fn name(&self) -> String {
        match self {
            Who::Token => "bearer-token".to_string(),
            Who::Session(s) => s.id.clone(),
        }
    }

    /// Fires when what they opened must end (logout); never for the token.
    pub fn ended(&self) -> CancellationToken {
        match self {
            Who::Token => CancellationToken::new(),
            Who::Session(s) => s.ended.clone(),
        }
    }
}

impl Auth {
    pub fn new(token: String) -> Auth {
        Auth {
            token,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn sessions(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    fn is_token(&self, candidate: &str) -> bool {
        !self.token.is_empty() && constant_time_eq(candidate.as_bytes(), self.token.as_bytes())
    }

    fn open(&self) -> Result<(String, Session), WebError> {
        let secret = random_hex(32)?;
        let session = Session {
            id: format!("s-{}", random_hex(4)?),
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

    /// Who presents these headers, if anyone valid.
    fn who(&self, headers: &HeaderMap, cookie_name: &str) -> Option<(Who, Option<String>)> {
        if let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(token) = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
            {
                if self.is_token(token.trim()) {
                    return Some((Who::Token, None));
                }
            }
        }
        let secret = cookie(headers, cookie_name)?;
        let session = self.find(&secret)?;
        Some((Who::Session(session), Some(secret)))
    }
}

/// The middleware in front of every route.
pub async fn require(
    State(dashboard): State<Dashboard>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &dashboard.inner.auth;
    if let Some(token) = query_value(request.uri().query(), "token") {
        if !auth.is_token(&token) {
            return unauthorized(
                request.headers(),
                "the token in the address is not this dashboard's",
            );
        }
        if request.method() != Method::GET {
            return unauthorized(
                request.headers(),
                "a token in the address only opens a page",
            );
        }
        let (secret, session) = match auth.open() {
            Ok(opened) => opened,
            Err(e) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
            }
        };
        dashboard.log(&format!("login session={} at={}", session.id, crate::now()));
        let target = without_query_key(request.uri().path(), request.uri().query(), "token");
        let cookie = format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Strict{}",
            dashboard.cookie_name(),
            if dashboard.secure() { "; Secure" } else { "" }
        );
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        if let (Ok(location), Ok(cookie)) = (
            HeaderValue::from_str(&target),
            HeaderValue::from_str(&cookie),
        ) {
            headers.insert(header::LOCATION, location);
            headers.insert(header::SET_COOKIE, cookie);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    match auth.who(request.headers(), dashboard.cookie_name()) {
        Some((who, secret)) => {
            request.extensions_mut().insert(who);
            if let Some(secret) = secret {
                request.extensions_mut().insert(SessionSecret(secret));
            }
            let mut response = next.run(request).await;
            security_headers(response.headers_mut());
            response
        }
        None => unauthorized(request.headers(), "open the address `drover web` printed (it carries the token), or send Authorization: Bearer TOKEN"),
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
    who: axum::Extension<Who>,
    secret: Option<axum::Extension<SessionSecret>>,
) -> Response {
    if !same_origin(
        &headers,
        uri.authority().map(|a| a.as_str()),
        dashboard.secure(),
        true,
    ) {
        return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
    }
    if let (Who::Session(_), Some(secret)) = (&who.0, secret) {
        if let Some(session) = dashboard.inner.auth.close(&secret.0 .0) {
            dashboard.log(&format!(
                "logout session={} at={}",
                session.id,
                crate::now()
            ));
        }
    }
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        dashboard.cookie_name(),
        if dashboard.secure() { "; Secure" } else { "" }
    );
    let mut response = Html(page(
        "signed out",
        "This browser's session has ended and its shells are closed. Open the address <code>drover web</code> printed to sign in again.",
    ))
    .into_response();
    if let Ok(clear) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    security_headers(response.headers_mut());
    response
}

/// Whether the request's `Origin` is the dashboard itself. A browser always
/// sends one with a WebSocket upgrade; a request without one comes from a
/// program, which is let through only when `missing_ok`.
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

fn unauthorized(headers: &HeaderMap, why: &str) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if wants_html {
        (
            StatusCode::UNAUTHORIZED,
            Html(page("401: not signed in", &crate::escape_html(why))),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": why })),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"drover\""),
    );
    security_headers(headers);
    response
}

/// A page of the server's own (401, signed out): no script, no data.
fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>drover · {title}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;background:#0f1115;color:#d6dae0;display:grid;place-items:center;height:100vh;margin:0}}\
         main{{max-width:34em;padding:2em;border:1px solid #2a2f3a;border-radius:8px;background:#161a21}}h1{{font-size:1.2em;margin:0 0 .5em}}code{{color:#8fc1ff}}</style>\
         </head><body><main><h1>{title}</h1><p>{body_html}</p></main></body></html>"
    )
}

/// Headers every answer carries: no framing, no sniffing, no referrer (the
/// first address carried the token), scripts from this origin only.
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
        HeaderValue::from_static("no-referrer"),
    );
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

/// `path?query` without `key`.
fn without_query_key(path: &str, query: Option<&str>, key: &str) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| percent_decode(pair.split('=').next().unwrap_or("")) != key)
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
        assert_eq!(without_query_key("/", Some("token=abc"), "token"), "/");
        assert_eq!(
            without_query_key("/jobs/web", Some("tail=5&token=abc&x=%20"), "token"),
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
    fn tokens_compare_whole() {
        let auth = Auth::new("secret".into());
        assert!(auth.is_token("secret"));
        assert!(!auth.is_token("secre"));
        assert!(!auth.is_token(""));
        assert!(!Auth::new(String::new()).is_token(""));
    }
}
