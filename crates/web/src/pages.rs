//! The pages: one HTML shell for every route, holding no data.
//!
//! Everything a page shows (names, images, log lines) is fetched as JSON
//! and put into the page as text nodes by the script, never as markup, so a
//! container that writes `<script>` shows exactly that. The shell itself
//! carries only the environment's name, the role signed in, and, for a job
//! or task the files do not have, the CLI's words for it (status 404), all
//! escaped.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;

use crate::auth::Who;
use crate::{assets, escape_html, Dashboard};

/// `GET /`, `/jobs/{job}`, `/jobs/{job}/tasks/{host}/{task}` and its `/shell`.
pub async fn page(
    State(dashboard): State<Dashboard>,
    Extension(who): Extension<Who>,
    uri: Uri,
) -> Response {
    let fleet = dashboard.fleet();
    let env = fleet.env.name.clone();
    let missing = unknown(&dashboard, uri.path());
    let version = assets::version();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"dark light\">\n\
         <title>drover · {env}</title>\n\
         <link rel=\"icon\" href=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%232f81f7'/%3E%3Cpath d='M4 4h4a4 4 0 010 8H4z' fill='white'/%3E%3C/svg%3E\">\n\
         <link rel=\"stylesheet\" href=\"/assets/app.css?v={version}\">\n\
         </head>\n<body data-env=\"{env}\" data-role=\"{role}\"{error}>\n<div id=\"app\"></div>\n\
         <script type=\"module\" src=\"/assets/app.js?v={version}\"></script>\n</body>\n</html>\n",
        env = escape_html(&env),
        role = who.role().as_str(),
        error = missing
            .as_ref()
            .map(|why| format!(" data-error=\"{}\"", escape_html(why)))
            .unwrap_or_default(),
    );
    let status = if missing.is_some() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why the job or task a page's address names is not one to show, in the
/// CLI's words; `None` when it is (a job only the hosts still have is one).
fn unknown(dashboard: &Dashboard, path: &str) -> Option<String> {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(crate::auth::percent_decode)
        .collect();
    let fleet = dashboard.fleet();
    match parts.as_slice() {
        [jobs, job] if jobs == "jobs" => match fleet.job(job) {
            Ok(_) => None,
            Err(e) => {
                let view = dashboard.inner.hub.snapshot().view;
                let leftover = view.jobs.iter().any(|j| &j.name == job);
                (!leftover).then(|| e.to_string())
            }
        },
        [jobs, job, tasks, host, task, rest @ ..]
            if jobs == "jobs" && tasks == "tasks" && rest.len() <= 1 =>
        {
            match task.parse::<u32>() {
                Ok(n) => fleet.task(job, host, n).err().map(|e| e.to_string()),
                Err(_) => Some(format!(
                    "invalid task \"{host}/{task}\": expected HOST/N, e.g. app1/0"
                )),
            }
        }
        _ => None,
    }
}
