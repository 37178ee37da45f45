//! The pages: one HTML shell for every route, holding no data.
//!
//! Everything a page shows (names, images, log lines) is fetched as JSON
//! and put into the page as text nodes by the script, never as markup, so a
//! container that writes `<script>` shows exactly that. The shell itself
//! carries only the environment's name, escaped.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

use crate::{assets, escape_html, Dashboard};

/// `GET /`, `/jobs/{job}`, `/jobs/{job}/tasks/{host}/{task}` and its `/shell`.
pub async fn page(State(dashboard): State<Dashboard>) -> Response {
    let env = dashboard.fleet().env.name.clone();
    let version = assets::version();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"dark light\">\n\
         <title>drover · {env}</title>\n\
         <link rel=\"icon\" href=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%232f81f7'/%3E%3Cpath d='M4 4h4a4 4 0 010 8H4z' fill='white'/%3E%3C/svg%3E\">\n\
         <link rel=\"stylesheet\" href=\"/assets/app.css?v={version}\">\n\
         </head>\n<body data-env=\"{env}\">\n<div id=\"app\"></div>\n\
         <script type=\"module\" src=\"/assets/app.js?v={version}\"></script>\n</body>\n</html>\n",
        env = escape_html(&env),
    );
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
