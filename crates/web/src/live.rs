//! `GET /api/live`: the overview's snapshots, pushed over a WebSocket.
//!
//! A WebSocket rather than SSE: over plain HTTP/1.1 a browser keeps at most
//! six connections to one origin, and an operator with a dozen tabs open
//! would see the seventh hang. WebSockets are not counted against that
//! limit. The feed only ever sends the newest snapshot: a viewer that
//! cannot keep up skips versions, it never queues them.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::auth::{same_origin, Who};
use crate::Dashboard;

/// A WebSocket ping this often keeps idle proxies from closing the feed.
pub const PING_EVERY: Duration = Duration::from_secs(20);

pub async fn live(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let authority = uri.authority().map(|a| a.as_str());
    if !same_origin(
        &headers,
        authority,
        dashboard.secure(),
        matches!(who, Who::Token),
    ) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(move |socket| feed(socket, dashboard, who))
}

async fn feed(mut socket: WebSocket, dashboard: Dashboard, who: Who) {
    let mut viewer = dashboard.inner.hub.subscribe();
    let ended = who.ended();
    let shutdown = dashboard.inner.shutdown.clone();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut fresh = true;
    loop {
        if fresh {
            let json = viewer.updates.borrow_and_update().json.clone();
            if socket.send(Message::Text(json)).await.is_err() {
                return;
            }
            fresh = false;
        }
        tokio::select! {
            changed = viewer.updates.changed() => {
                if changed.is_err() {
                    return;
                }
                fresh = true;
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(b"drover".as_slice().into())).await.is_err() {
                    return;
                }
            }
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            () = ended.cancelled() => {
                close(&mut socket, 4001, "session ended").await;
                return;
            }
            () = shutdown.cancelled() => {
                close(&mut socket, 1001, "the dashboard is stopping").await;
                return;
            }
        }
    }
}

/// Sends a close frame with `code` and `reason`.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
