//! The Engine API over HTTP/1.1 on a unix socket: routes, query strings,
//! the engine's headers and error bodies, and the streams (events, logs,
//! stats, pulls, exec sessions over an upgraded connection).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::clock;
use super::config::Call;
use super::engine::{Answer, ApiError, Container, Engine, Event, LogLine};
use super::shapes;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// Serves `engine` on `listener` until the task is dropped.
pub async fn accept_loop(engine: Arc<Engine>, listener: UnixListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let engine = Arc::clone(&engine);
                async move { Ok::<_, Infallible>(handle(engine, request).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.title_case_headers(true).header_read_timeout(None);
            // A client that goes away mid-request is its own business.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn streamed(frames: impl futures::Stream<Item = Bytes> + Send + Sync + 'static) -> Body {
    BodyExt::boxed(StreamBody::new(
        frames.map(|b| Ok::<_, std::io::Error>(Frame::data(b))),
    ))
}

fn response(status: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    json_bytes_response(status, serde_json::to_vec(value).unwrap_or_default())
}

fn json_bytes_response(status: u16, mut bytes: Vec<u8>) -> Response<Body> {
    bytes.push(b'\n');
    let mut r = response(status, full(bytes));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn empty(status: u16) -> Response<Body> {
    response(status, full(Bytes::new()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status, &json!({ "message": e.message }))
}

fn json_stream(
    frames: impl futures::Stream<Item = Bytes> + Send + Sync + 'static,
) -> Response<Body> {
    let mut r = response(200, streamed(frames));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Every answer carries the engine's own headers.
fn engine_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        header::HeaderValue::from_static(shapes::API_VERSION),
    );
    h.insert(
        "Docker-Experimental",
        header::HeaderValue::from_static("false"),
    );
    h.insert("Ostype", header::HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        header::HeaderValue::from_static("Docker/20.10.24+dfsg1 (linux)"),
    );
    r
}

/// A query string's pairs, decoded, repeats kept.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or_default();
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// As the engine reads a boolean: absent, empty, `0`, `no`, `false`, `none` are false.
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    fn flag_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(_) => self.flag(key),
        }
    }
}

/// The `filters` parameter: `{"label":["a=b"]}` (or the older `{"label":{"a=b":true}}`).
#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(text: Option<&str>) -> Answer<Filters> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(Filters::default());
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::new(400, format!("invalid filter '{text}': {e}")))?;
        let mut out = BTreeMap::new();
        for (key, values) in value.as_object().into_iter().flatten() {
            let list: Vec<String> = match values {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            out.insert(key.clone(), list);
        }
        Ok(Filters(out))
    }

    /// Every key given matches one of its values (`test` decides a match).
    fn all(&self, mut test: impl FnMut(&str, &str) -> bool) -> bool {
        self.0
            .iter()
            .all(|(key, values)| values.is_empty() || values.iter().any(|v| test(key, v)))
    }
}

fn label_matches(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(wanted),
    }
}

fn container_matches(c: &Container, filters: &Filters) -> bool {
    filters.all(|key, value| match key {
        "label" => label_matches(&c.labels, value),
        "name" => c.name.contains(value.trim_start_matches('/')),
        "id" => c.id.starts_with(value),
        "status" => c.state_string() == value,
        "ancestor" => {
            c.image_id == value || c.config.get("Image").and_then(Value::as_str) == Some(value)
        }
        _ => true,
    })
}

fn event_matches(e: &Event, filters: &Filters) -> bool {
    filters.all(|key, value| match key {
        "type" => e.kind == value,
        // `health_status` matches `health_status: healthy`, `exec_start` matches `exec_start: sh `.
        "event" => e.action == value || e.action.split(':').next() == Some(value),
        "label" => label_matches(&e.attributes, value),
        "container" => {
            e.kind == "container"
                && (e.actor.starts_with(value)
                    || e.attributes.get("name").is_some_and(|n| n == value))
        }
        "image" => e.attributes.get("image").is_some_and(|i| i == value),
        _ => true,
    })
}

/// `/v1.41/containers/json` → (`Some("1.41")`, `/containers/json`).
fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return (Some(version), &rest[end..]);
        }
    }
    (None, path)
}

fn version_number(v: &str) -> (u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

async fn handle(engine: Arc<Engine>, request: Request<Incoming>) -> Response<Body> {
    let (came, started) = (SystemTime::now(), Instant::now());
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let answer = engine_headers(
        route(&engine, request)
            .await
            .unwrap_or_else(|e| error_response(&e)),
    );
    engine.trace(
        came,
        started.elapsed(),
        &method,
        &path,
        answer.status().as_u16(),
    );
    answer
}

async fn read_body(request: Request<Incoming>) -> Answer<Bytes> {
    request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ApiError::new(400, format!("reading the request body: {e}")))
}

fn body_json(bytes: &[u8]) -> Answer<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::new(400, e.to_string()))
}

async fn route(engine: &Arc<Engine>, mut request: Request<Incoming>) -> Answer<Response<Body>> {
    let method = request.method().clone();
    let uri_path = request.uri().path().to_string();
    let query = Query(parse_query(request.uri().query().unwrap_or_default()));
    let (version, path) = split_version(&uri_path);
    if let Some(v) = version {
        let wanted = version_number(v);
        if wanted > version_number(shapes::API_VERSION) {
            return Err(ApiError::new(
                400,
                format!(
                    "client version {v} is too new. Maximum supported API version is {}",
                    shapes::API_VERSION
                ),
            ));
        }
        if wanted < version_number(shapes::MIN_API_VERSION) {
            return Err(ApiError::new(
                400,
                format!("client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version", shapes::MIN_API_VERSION),
            ));
        }
    }
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = &method;
    match segments.as_slice() {
        ["_ping"] if m == Method::GET || m == Method::HEAD => {
            engine.delay(Call::Ping).await;
            let mut r = response(200, full(if m == Method::HEAD { "" } else { "OK" }));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            h.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
            Ok(r)
        }
        ["version"] if m == Method::GET => {
            engine.delay(Call::Version).await;
            Ok(json_response(200, &shapes::version()))
        }
        ["info"] if m == Method::GET => {
            engine.delay(Call::Info).await;
            let st = engine.lock();
            Ok(json_response(200, &shapes::info(engine, &st)))
        }
        ["system", "df"] if m == Method::GET => {
            engine.delay(Call::Df).await;
            let st = engine.lock();
            Ok(json_response(200, &shapes::disk_usage(engine, &st)))
        }
        ["events"] if m == Method::GET => events(engine, &query).await,
        ["containers", "json"] if m == Method::GET => list(engine, &query).await,
        ["containers", "create"] if m == Method::POST => {
            let name = query
                .get("name")
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            let body = body_json(&read_body(request).await?)?;
            engine.delay(Call::Create).await;
            let id = engine.create(name.as_deref(), &body)?;
            Ok(json_response(201, &json!({"Id": id, "Warnings": []})))
        }
        ["containers", id, "json"] if m == Method::GET => {
            engine.delay(Call::Inspect).await;
            let st = engine.lock();
            let c = st.find(id)?;
            Ok(json_bytes_response(200, shapes::inspect(c, engine, &st)))
        }
        ["containers", id, "start"] if m == Method::POST => {
            engine.delay(Call::Start).await;
            Ok(empty(if engine.start(id)? { 204 } else { 304 }))
        }
        ["containers", id, "stop"] if m == Method::POST => {
            let t = query.get("t").and_then(|t| t.parse().ok());
            Ok(empty(if engine.stop(id, t).await? { 204 } else { 304 }))
        }
        ["containers", id, "restart"] if m == Method::POST => {
            let t = query.get("t").and_then(|t| t.parse().ok());
            engine.stop(id, t).await?;
            engine.delay(Call::Start).await;
            engine.start(id)?;
            Ok(empty(204))
        }
        ["containers", id, "kill"] if m == Method::POST => {
            engine.delay(Call::Kill).await;
            engine.kill(
                id,
                query
                    .get("signal")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("KILL"),
            )?;
            Ok(empty(204))
        }
        ["containers", id, action @ ("pause" | "unpause")] if m == Method::POST => {
            engine.delay(Call::Pause).await;
            engine.pause(id, *action == "pause")?;
            Ok(empty(204))
        }
        ["containers", id, "rename"] if m == Method::POST => {
            engine.delay(Call::Rename).await;
            engine.rename(id, query.get("name").unwrap_or_default())?;
            Ok(empty(204))
        }
        ["containers", id] if m == Method::DELETE => {
            engine.delay(Call::Remove).await;
            engine.remove(id, query.flag("force"), query.flag("v"))?;
            Ok(empty(204))
        }
        ["containers", id, "stats"] if m == Method::GET => stats(engine, id, &query).await,
        ["containers", id, "logs"] if m == Method::GET => logs(engine, id, &query).await,
        ["containers", id, "exec"] if m == Method::POST => {
            let id = id.to_string();
            let body = body_json(&read_body(request).await?)?;
            engine.delay(Call::Exec).await;
            let strings = |key: &str| -> Vec<String> {
                body[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let exec = engine.exec_create(
                &id,
                strings("Cmd"),
                body["Tty"].as_bool().unwrap_or(false),
                strings("Env"),
            )?;
            Ok(json_response(201, &json!({ "Id": exec })))
        }
        ["exec", id, "start"] if m == Method::POST => {
            let id = id.to_string();
            let upgrade = request.headers().contains_key(header::UPGRADE);
            let on_upgrade = hyper::upgrade::on(&mut request);
            let body = body_json(&read_body(request).await?)?;
            engine.delay(Call::Exec).await;
            exec_start(engine, &id, &body, upgrade.then_some(on_upgrade))
        }
        ["exec", id, "json"] if m == Method::GET => {
            engine.delay(Call::Inspect).await;
            let st = engine.lock();
            let e = st
                .execs
                .get(*id)
                .ok_or_else(|| ApiError::new(404, format!("No such exec instance: {id}")))?;
            Ok(json_response(
                200,
                &json!({
                    "ID": e.id, "Running": e.running, "ExitCode": e.exit_code,
                    "ProcessConfig": {"tty": e.tty, "entrypoint": e.cmd.first(), "arguments": e.cmd.get(1..).unwrap_or_default(), "privileged": false},
                    "OpenStdin": true, "OpenStderr": true, "OpenStdout": true, "CanRemove": false,
                    "ContainerID": e.container, "DetachKeys": "", "Pid": e.pid,
                }),
            ))
        }
        ["exec", id, "resize"] if m == Method::POST => {
            let st = engine.lock();
            if !st.execs.contains_key(*id) {
                return Err(ApiError::new(404, format!("No such exec instance: {id}")));
            }
            Ok(empty(201))
        }
        ["images", "json"] if m == Method::GET => {
            engine.delay(Call::ImageList).await;
            let st = engine.lock();
            let mut images: Vec<_> = st.images.values().collect();
            images.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
            let list: Vec<Value> = images
                .iter()
                .map(|i| shapes::image_summary(i, -1))
                .collect();
            Ok(json_response(200, &json!(list)))
        }
        ["images", "create"] if m == Method::POST => {
            if query.get("fromSrc").is_some() {
                let body = read_body(request).await?;
                import(engine, &query, &body).await
            } else {
                pull(engine, &query).await
            }
        }
        ["images", name @ .., "json"] if m == Method::GET && !name.is_empty() => {
            let name = name.join("/");
            engine.delay(Call::ImageInspect).await;
            let st = engine.lock();
            let image = st.find_image(&name).ok_or_else(|| {
                ApiError::new(404, format!("no such image: {name}: No such image: {name}"))
            })?;
            Ok(json_response(200, &shapes::image_inspect(image)))
        }
        ["images", name @ .., "tag"] if m == Method::POST && !name.is_empty() => {
            let name = name.join("/");
            engine.delay(Call::ImageInspect).await;
            let repo = query.get("repo").unwrap_or_default();
            let tag = query
                .get("tag")
                .filter(|t| !t.is_empty())
                .unwrap_or("latest");
            engine.tag(&name, &format!("{repo}:{tag}"))?;
            Ok(empty(201))
        }
        ["images", name @ ..] if m == Method::DELETE && !name.is_empty() => {
            let name = name.join("/");
            engine.delay(Call::ImageRemove).await;
            let out = engine.remove_image(&name, query.flag("force"))?;
            Ok(json_response(200, &json!(out)))
        }
        ["volumes"] if m == Method::GET => {
            engine.delay(Call::Volumes).await;
            let st = engine.lock();
            Ok(json_response(200, &shapes::volumes(&st)))
        }
        ["volumes", name] if m == Method::GET => {
            engine.delay(Call::Volumes).await;
            let st = engine.lock();
            let volume = st
                .volumes
                .get(*name)
                .ok_or_else(|| ApiError::new(404, format!("get {name}: no such volume")))?;
            Ok(json_response(200, &shapes::volume(volume)))
        }
        // What `docker inspect NAME` tries after a container and an image.
        ["networks", name] if m == Method::GET => {
            engine.delay(Call::Inspect).await;
            let network = shapes::network(engine, name)
                .ok_or_else(|| ApiError::new(404, format!("network {name} not found")))?;
            Ok(json_response(200, &network))
        }
        ["plugins", name, "json"] if m == Method::GET => {
            Err(ApiError::new(404, format!("plugin \"{name}\" not found")))
        }
        ["volumes", name] if m == Method::DELETE => {
            engine.delay(Call::Volumes).await;
            engine.remove_volume(name)?;
            Ok(empty(204))
        }
        _ => {
            eprintln!(
                "engine-sim: {}: not simulated: {method} {uri_path}",
                engine.name
            );
            Err(ApiError::new(
                404,
                format!("engine-sim does not simulate {method} {path}"),
            ))
        }
    }
}

async fn list(engine: &Arc<Engine>, query: &Query) -> Answer<Response<Body>> {
    let filters = Filters::parse(query.get("filters"))?;
    let all = query.flag("all");
    engine.delay(Call::List).await;
    let st = engine.lock();
    let now = SystemTime::now();
    let mut containers: Vec<&Container> = st
        .containers
        .values()
        .filter(|c| (all || c.running) && container_matches(c, &filters))
        .collect();
    containers.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let list: Vec<Value> = containers
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|c| shapes::list_entry(c, engine, now))
        .collect();
    Ok(json_response(200, &json!(list)))
}

/// `since`/`until` of the events call: Unix seconds (with a fraction) or RFC 3339.
fn event_time(text: Option<&str>) -> Answer<Option<SystemTime>> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => clock::parse_unix(t)
            .map(Some)
            .ok_or_else(|| ApiError::new(400, format!("invalid time: {t}"))),
    }
}

async fn events(engine: &Arc<Engine>, query: &Query) -> Answer<Response<Body>> {
    let filters = Filters::parse(query.get("filters"))?;
    let since = event_time(query.get("since"))?;
    let until = event_time(query.get("until"))?;
    engine.delay(Call::Events).await;
    // Subscribed before the past is read: nothing falls between the two.
    let live = engine.subscribe_events();
    let past: VecDeque<Arc<Event>> = match since {
        Some(since) => engine
            .lock()
            .past
            .iter()
            .filter(|e| e.time >= since && until.is_none_or(|u| e.time <= u))
            .cloned()
            .collect(),
        None => VecDeque::new(),
    };
    let seen: HashSet<usize> = past.iter().map(|e| Arc::as_ptr(e) as usize).collect();
    let past: VecDeque<Arc<Event>> = past
        .into_iter()
        .filter(|e| event_matches(e, &filters))
        .collect();
    let now = SystemTime::now();
    let deadline = until.map(|u| Instant::now() + u.duration_since(now).unwrap_or_default());
    let ended = until.is_some_and(|u| u <= now);
    let state = (past, seen, live, filters, deadline, ended);
    let frames = stream::unfold(state, |mut s| async move {
        let (past, seen, live, filters, deadline, ended) = &mut s;
        if let Some(e) = past.pop_front() {
            let json = e.json.clone();
            return Some((json, s));
        }
        if *ended {
            return None;
        }
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(*d, live.recv()).await {
                    Ok(next) => next,
                    Err(_) => return None,
                },
                None => live.recv().await,
            };
            match next {
                Ok(e) if seen.remove(&(Arc::as_ptr(&e) as usize)) => continue,
                Ok(e) if event_matches(&e, filters) => {
                    let json = e.json.clone();
                    return Some((json, s));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(json_stream(frames))
}

async fn stats(engine: &Arc<Engine>, id: &str, query: &Query) -> Answer<Response<Body>> {
    let stream_mode = query.flag_or("stream", true);
    let one_shot = query.flag("one-shot");
    engine.delay(Call::Stats).await;
    let id = engine.lock().resolve(id)?;
    let tick =
        |engine: &Arc<Engine>| tokio::time::sleep_until(engine.next_collection(Instant::now()));
    let sample = |engine: &Arc<Engine>, id: &str| engine.sample(id, Instant::now());
    let current = sample(engine, &id)
        .ok_or_else(|| ApiError::new(404, format!("No such container: {id}")))?;
    if !stream_mode {
        if !current.running {
            return Ok(json_response(200, &shapes::stats(&id, &current, None)));
        }
        // The collector reads every container once a second; a read waits for it
        // (twice without one-shot: the first reading only primes the CPU delta).
        tick(engine).await;
        let first = sample(engine, &id);
        let (pre, now) = if one_shot {
            (None, first)
        } else {
            tick(engine).await;
            (first, sample(engine, &id))
        };
        let now = now.ok_or_else(|| ApiError::new(404, format!("No such container: {id}")))?;
        return Ok(json_response(200, &shapes::stats(&id, &now, pre.as_ref())));
    }
    let engine = Arc::clone(engine);
    let frames = stream::unfold(None, move |pre| {
        let (engine, id) = (Arc::clone(&engine), id.clone());
        async move {
            tokio::time::sleep_until(engine.next_collection(Instant::now())).await;
            let now = engine.sample(&id, Instant::now())?;
            let mut line =
                serde_json::to_vec(&shapes::stats(&id, &now, pre.as_ref())).unwrap_or_default();
            line.push(b'\n');
            Some((Bytes::from(line), Some(now)))
        }
    });
    Ok(json_stream(frames))
}

/// One log line as the engine sends it: framed with its stream unless the
/// container has a terminal, with its timestamp when asked.
fn log_frame(line: &LogLine, tty: bool, timestamps: bool) -> Bytes {
    let mut payload = Vec::with_capacity(line.text.len() + 40);
    if timestamps {
        payload.extend_from_slice(clock::rfc3339(line.time).as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&line.text);
    if tty {
        return Bytes::from(payload);
    }
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&[line.stream, 0, 0, 0]);
    frame.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

async fn logs(engine: &Arc<Engine>, what: &str, query: &Query) -> Answer<Response<Body>> {
    let follow = query.flag("follow");
    let (stdout, stderr) = (query.flag("stdout"), query.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::new(
            400,
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let timestamps = query.flag("timestamps");
    let since = event_time(query.get("since"))?;
    let until = event_time(query.get("until"))?;
    let tail = query.get("tail").and_then(|t| t.parse::<usize>().ok());
    engine.delay(Call::Logs).await;
    let live = engine.subscribe_logs();
    let events = engine.subscribe_events();
    let (id, backlog, tty, running, last_seq) = {
        let st = engine.lock();
        let c = st.find(what)?;
        let driver = c.host_config["LogConfig"]["Type"]
            .as_str()
            .unwrap_or_default();
        if driver == "none" || driver == "syslog" {
            return Err(ApiError::new(
                501,
                "configured logging driver does not support reading",
            ));
        }
        let wanted = |l: &&LogLine| {
            (l.stream == 1 && stdout || l.stream == 2 && stderr)
                && since.is_none_or(|s| l.time >= s)
                && until.is_none_or(|u| l.time <= u)
        };
        let lines: Vec<LogLine> = c.log.iter().filter(wanted).cloned().collect();
        let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
        let last_seq = c.log.back().map(|l| l.seq);
        (
            c.id.clone(),
            lines[skip..].to_vec(),
            c.tty,
            c.running,
            last_seq,
        )
    };
    let backlog: VecDeque<Bytes> = backlog
        .iter()
        .map(|l| log_frame(l, tty, timestamps))
        .collect();
    let follow = follow && running;
    let frames = stream::iter(backlog);
    if !follow {
        return Ok(response(200, streamed(frames)));
    }
    let state = (live, events, id, last_seq);
    let followed = stream::unfold(state, move |mut s| async move {
        let (live, events, id, last_seq) = &mut s;
        loop {
            tokio::select! {
                line = live.recv() => match line {
                    Ok(l) if l.container == *id && last_seq.is_none_or(|seq| l.seq > seq)
                        && (l.stream == 1 && stdout || l.stream == 2 && stderr) => {
                        let frame = log_frame(&l, tty, timestamps);
                        return Some((frame, s));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
                event = events.recv() => match event {
                    Ok(e) if e.actor == *id && (e.action == "die" || e.action == "destroy") => return None,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    });
    Ok(response(200, streamed(frames.chain(followed))))
}

async fn pull(engine: &Arc<Engine>, query: &Query) -> Answer<Response<Body>> {
    let image = query.get("fromImage").unwrap_or_default();
    let reference = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.starts_with("sha256:") => format!("{image}@{tag}"),
        Some(tag) => format!("{image}:{tag}"),
        None => image.to_string(),
    };
    if reference.is_empty() {
        return Err(ApiError::new(400, "image name is required"));
    }
    let (fresh, pulled) = engine.pull(&reference)?;
    let reference = super::config::normalize_reference(&reference);
    let tag = reference.rsplit(':').next().unwrap_or("latest").to_string();
    let digest = pulled
        .repo_digests
        .first()
        .and_then(|d| d.split('@').nth(1))
        .unwrap_or_default()
        .to_string();
    let layer: String = pulled
        .id
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    let line = |v: Value| {
        let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
        bytes.extend_from_slice(b"\r\n");
        Bytes::from(bytes)
    };
    let mut lines = vec![line(
        json!({"status": format!("Pulling from {}", super::engine::repository(&reference)), "id": tag}),
    )];
    if fresh {
        let size = pulled.size;
        lines.push(line(
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": layer}),
        ));
        for part in 1..=4 {
            let current = size * part / 4;
            lines.push(line(json!({"status": "Downloading", "progressDetail": {"current": current, "total": size}, "progress": format!("{current}/{size}"), "id": layer})));
        }
        lines.push(line(
            json!({"status": "Download complete", "progressDetail": {}, "id": layer}),
        ));
        lines.push(line(json!({"status": "Extracting", "progressDetail": {"current": size, "total": size}, "id": layer})));
        lines.push(line(
            json!({"status": "Pull complete", "progressDetail": {}, "id": layer}),
        ));
    }
    lines.push(line(json!({"status": format!("Digest: {digest}")})));
    lines.push(line(json!({"status": if fresh {
        format!("Status: Downloaded newer image for {reference}")
    } else {
        format!("Status: Image is up to date for {reference}")
    }})));
    // The pull's time is spread over its progress lines.
    let total = if fresh {
        engine.config.latency.get(Call::Pull)
    } else {
        engine.config.latency.get(Call::ImageInspect) * 4
    };
    let step = total / u32::try_from(lines.len()).unwrap_or(1).max(1);
    let frames = stream::iter(lines).then(move |l| async move {
        tokio::time::sleep(step).await;
        l
    });
    Ok(json_stream(frames))
}

async fn import(engine: &Arc<Engine>, query: &Query, tar: &[u8]) -> Answer<Response<Body>> {
    let repo = query.get("repo").unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError::new(
            400,
            "engine-sim imports only into a named repository (repo=…)",
        ));
    }
    let tag = query
        .get("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest");
    let mut labels = BTreeMap::new();
    for change in query.all("changes") {
        if let Some(label) = change.strip_prefix("LABEL ") {
            for item in label.split_whitespace() {
                if let Some((k, v)) = item.split_once('=') {
                    labels.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
    }
    engine.delay(Call::Import).await;
    let id = engine.import(&format!("{repo}:{tag}"), tar, labels);
    let mut line = serde_json::to_vec(&json!({ "status": id })).unwrap_or_default();
    line.extend_from_slice(b"\r\n");
    Ok(json_stream(stream::iter([Bytes::from(line)])))
}

fn exec_start(
    engine: &Arc<Engine>,
    exec_id: &str,
    body: &Value,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Answer<Response<Body>> {
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let (exec, env, hostname) = engine.exec_start(exec_id)?;
    let engine = Arc::clone(engine);
    let tty = exec.tty;
    let env: Vec<String> = env.into_iter().chain(exec.env.clone()).collect();
    if detach {
        tokio::spawn(async move {
            let code = run_command(
                &exec.cmd,
                &env,
                &hostname,
                tty,
                None::<&mut tokio::io::Empty>,
                &mut tokio::io::sink(),
            )
            .await;
            engine.exec_finished(&exec.id, code);
        });
        return Ok(empty(200));
    }
    let Some(upgrade) = upgrade else {
        // A client that does not upgrade gets the output as the body.
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let code = run_command(
                &exec.cmd,
                &env,
                &hostname,
                tty,
                None::<&mut tokio::io::Empty>,
                &mut writer,
            )
            .await;
            engine.exec_finished(&exec.id, code);
        });
        let frames = stream::unfold(reader, |mut reader| async move {
            let mut buf = vec![0u8; 16 * 1024];
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Bytes::from(buf), reader))
                }
            }
        });
        let mut r = response(200, streamed(frames));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/vnd.docker.raw-stream"),
        );
        return Ok(r);
    };
    tokio::spawn(async move {
        let code = match upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let (mut read, mut write) = tokio::io::split(io);
                let code =
                    run_command(&exec.cmd, &env, &hostname, tty, Some(&mut read), &mut write).await;
                let _ = write.shutdown().await;
                code
            }
            Err(_) => 137,
        };
        engine.exec_finished(&exec.id, code);
    });
    let mut r = empty(101);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, header::HeaderValue::from_static("tcp"));
    Ok(r)
}

async fn write_out(
    out: &mut (impl AsyncWrite + Unpin),
    tty: bool,
    stream: u8,
    text: &[u8],
) -> bool {
    if text.is_empty() {
        return true;
    }
    let result = if tty {
        let text = String::from_utf8_lossy(text).replace('\n', "\r\n");
        out.write_all(text.as_bytes()).await
    } else {
        let mut frame = vec![stream, 0, 0, 0];
        frame.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
        frame.extend_from_slice(text);
        out.write_all(&frame).await
    };
    result.is_ok() && out.flush().await.is_ok()
}

/// What a few commands print and exit with: enough for `exec`, `doctor`'s
/// probes and an interactive shell; anything else exits 0 silently from a
/// shell (`sh -c …`), or is not found on its own.
fn one_command(argv: &[&str], env: &[String], hostname: &str) -> (Vec<u8>, Vec<u8>, i64) {
    let Some((name, args)) = argv.split_first() else {
        return (Vec::new(), Vec::new(), 0);
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    match name {
        "echo" => (format!("{}\n", args.join(" ")).into_bytes(), Vec::new(), 0),
        "true" | ":" => (Vec::new(), Vec::new(), 0),
        "false" => (Vec::new(), Vec::new(), 1),
        "exit" => (
            Vec::new(),
            Vec::new(),
            args.first().and_then(|c| c.parse().ok()).unwrap_or(0),
        ),
        "env" => (
            env.iter()
                .map(|e| format!("{e}\n"))
                .collect::<String>()
                .into_bytes(),
            Vec::new(),
            0,
        ),
        "hostname" => (format!("{hostname}\n").into_bytes(), Vec::new(), 0),
        "sleep" | "cat" | "ls" | "ps" | "kill" | "wget" | "test" => (Vec::new(), Vec::new(), 0),
        other => (
            Vec::new(),
            format!("sh: {other}: not found\n").into_bytes(),
            127,
        ),
    }
}

/// Runs an exec's command against `output`, reading `input` for an
/// interactive shell; returns the exit code.
async fn run_command<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    cmd: &[String],
    env: &[String],
    hostname: &str,
    tty: bool,
    input: Option<&mut R>,
    output: &mut W,
) -> i64 {
    let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let shell = matches!(
        argv.first().map(|n| n.rsplit('/').next().unwrap_or(n)),
        Some("sh" | "bash" | "ash")
    );
    match (shell, argv.get(1).copied()) {
        (true, Some("-c")) => {
            let script = argv.get(2).copied().unwrap_or_default();
            let mut code = 0;
            for part in script
                .split([';', '\n'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let words: Vec<&str> = part.split_whitespace().collect();
                let (out, err, c) = match words.first() {
                    Some(&("echo" | "exit" | "true" | "false" | "env" | "hostname")) => {
                        one_command(&words, env, hostname)
                    }
                    _ => (Vec::new(), Vec::new(), 0),
                };
                if !write_out(output, tty, 1, &out).await || !write_out(output, tty, 2, &err).await
                {
                    return code;
                }
                code = c;
                if words.first() == Some(&"exit") {
                    break;
                }
            }
            code
        }
        (true, None) => {
            let Some(input) = input else { return 0 };
            interactive(env, hostname, tty, input, output).await
        }
        _ if argv.first().map(|n| n.rsplit('/').next().unwrap_or(n)) == Some("sleep") => {
            let secs: f64 = argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0))).await;
            0
        }
        _ => {
            let (out, err, code) = one_command(&argv, env, hostname);
            if code == 127 {
                let message = format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{}\": executable file not found in $PATH: unknown\r\n",
                    argv.first().copied().unwrap_or_default()
                );
                write_out(output, tty, 1, message.as_bytes()).await;
                return 126;
            }
            write_out(output, tty, 1, &out).await;
            write_out(output, tty, 2, &err).await;
            code
        }
    }
}

/// A shell reading lines: echoes them on a terminal, runs each with
/// [`one_command`], ends at `exit` or the end of input.
async fn interactive<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    env: &[String],
    hostname: &str,
    tty: bool,
    input: &mut R,
    output: &mut W,
) -> i64 {
    let prompt = if tty { "/ # " } else { "" };
    if !write_out(output, tty, 1, prompt.as_bytes()).await {
        return 0;
    }
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    let mut code = 0;
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) | Err(_) => return code,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if tty && b != b'\r' && b != b'\n' {
                write_out(output, tty, 1, &[b]).await;
            }
            if b != b'\r' && b != b'\n' {
                line.push(b);
                continue;
            }
            if tty {
                write_out(output, tty, 1, b"\n").await;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() {
                write_out(output, tty, 1, prompt.as_bytes()).await;
                continue;
            }
            let (out, err, c) = one_command(&words, env, hostname);
            code = c;
            if words[0] == "exit" {
                return code;
            }
            write_out(output, tty, 1, &out).await;
            write_out(output, tty, 2, &err).await;
            write_out(output, tty, 1, prompt.as_bytes()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_the_engine_reads_them() {
        let q = Query(parse_query("all=1&filters=%7B%22label%22%3A%5B%22drover.env%3Dx%22%5D%7D&changes=LABEL+a%3Db&changes=X&t="));
        assert_eq!(q.get("filters"), Some(r#"{"label":["drover.env=x"]}"#));
        assert_eq!(q.all("changes"), ["LABEL a=b", "X"]);
        assert!(q.flag("all") && !q.flag("t") && !q.flag("missing"));
        assert!(q.flag_or("stream", true));
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%2"), "%2");
    }

    #[test]
    fn filters_take_both_shapes() {
        let labels = BTreeMap::from([("drover.env".to_string(), "x".to_string())]);
        let f = Filters::parse(Some(r#"{"label":["drover.env=x"]}"#)).unwrap();
        assert!(f.all(|k, v| k == "label" && label_matches(&labels, v)));
        let f = Filters::parse(Some(r#"{"label":{"drover.env=y":true}}"#)).unwrap();
        assert!(!f.all(|k, v| k == "label" && label_matches(&labels, v)));
        assert_eq!(Filters::parse(Some("{")).unwrap_err().status, 400);
    }

    #[test]
    fn versioned_paths_split() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(
            split_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
    }
}
