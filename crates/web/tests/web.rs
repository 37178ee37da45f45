//! The dashboard against the suite's real Docker engines: the token on
//! every route, the session cookie, `/api/status` as `status --json`, logs
//! that resume where they left off, shells that refuse other origins and
//! close at logout, and one engine subscription however many tabs look.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Numbered lines on stdout (with markup in them) and stderr, 20 a second.
const COUNTER: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"seq $i <script>alert(1)</script>\"; echo \"err $i\" >&2; sleep 0.05; done"]
stop_timeout = "1s"
restart = "no"
"#;

const SLEEPER: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1", "h2"]
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;

fn seq(event: &SseEvent) -> u64 {
    let line = event.json()["line"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_token() {
    let c = cluster("w-auth", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let http_routes = [
        "/",
        "/jobs/app",
        "/jobs/app/tasks/h1/0",
        "/jobs/app/tasks/h1/0/shell",
        "/assets/app.js",
        "/assets/app.css",
        "/api/status",
        "/api/jobs/app",
        "/api/jobs/app/images",
        "/api/jobs/app/logs?tail=1",
        "/api/jobs/app/logs/download",
        "/no/such/page",
    ];
    let bearer = format!("Bearer {TOKEN}");
    for route in http_routes {
        let r = web.get(route, &[]).await;
        assert_eq!(r.status, 401, "{route} without a token: {}", r.body);
        let r = web
            .get(route, &[("cookie", "drover_session_1=forged")])
            .await;
        assert_eq!(r.status, 401, "{route} with a forged cookie");
        let r = web.get(route, &[("authorization", &bearer)]).await;
        let want = if route == "/no/such/page" { 404 } else { 200 };
        assert_eq!(r.status, want, "{route} with the token: {}", r.body);
    }
    // A page without a token says what to do, as a page with a sign-in form.
    let r = web.get("/", &[("accept", "text/html")]).await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("drover web"), "{}", r.body);
    assert!(
        r.body.contains("<form method=\"post\" action=\"/login\">"),
        "{}",
        r.body
    );

    let r = request(web.addr, "POST", "/logout", &[], Vec::new()).await;
    assert_eq!(r.status, 401, "logout without a session");

    let origin = web.origin();
    for path in ["/api/live", "/api/jobs/app/tasks/h1/0/shell"] {
        assert_eq!(
            websocket(web.addr, path, &[("origin", &origin)])
                .await
                .err(),
            Some(401),
            "{path} without a token"
        );
        let ws = websocket(web.addr, path, &[("authorization", &bearer)]).await;
        assert!(ws.is_ok(), "{path} with the token");
    }
    // A wrong token opens nothing; after a few, the address waits (429).
    for route in http_routes {
        let r = web
            .get(route, &[("authorization", "Bearer not-the-token")])
            .await;
        assert!(
            r.status == 401 || r.status == 429 && r.header("retry-after").is_some(),
            "{route} with a wrong token: {} {}",
            r.status,
            r.body
        );
    }
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_address_becomes_a_session_cookie() {
    let c = cluster("w-cookie", "", &[("app", SLEEPER)]);
    let web = Web::start(c.path()).await;
    let r = web
        .get(&format!("/jobs/app?tail=5&token={TOKEN}&x=%20y"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/jobs/app?tail=5&x=%20y")
    );
    let cookie = r.header("set-cookie").expect("a cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure without TLS: {cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    let r = web.get("/jobs/app", &[("cookie", &session)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("/assets/app.js"), "{}", r.body);
    let r = web.get("/api/jobs/app", &[("cookie", &session)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A wrong token in the address opens nothing.
    let r = web.get("/?token=wrong", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    // The login is in the audit record, by role, session id and address, never the token.
    let logins = web.audited("login");
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["role"], "operator");
    assert_eq!(logins[0]["via"], "token");
    assert_eq!(logins[0]["address"], "127.0.0.1");
    assert!(logins[0]["session"]
        .as_str()
        .is_some_and(|s| s.starts_with("s-")));
    let failed = web.audited("login.failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let record = web
        .audit()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !record.contains(TOKEN),
        "the token is never recorded: {record}"
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_status_is_what_status_json_prints() {
    let c = cluster("w-status", "", &[("app", SLEEPER), ("one", COUNTER)]);
    c.drover(&["up", "--yes"]).run();
    // A task stopped by hand, so not every row is alike.
    c.docker("h2", &["stop", "-t", "1", "w-status.app.h2.0"]);
    let web = Web::start(c.path()).await;
    let api = web.bearer("/api/status").await;
    assert_eq!(api.status, 200);
    assert_eq!(
        api.header("content-type").as_deref(),
        Some("application/json")
    );
    let cli = c.drover(&["--json", "status"]).run().json();
    let strip = |v: &Value| -> Vec<Value> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|row| {
                let mut row = row.clone();
                let obj = row.as_object_mut().expect("an object");
                // Measured at different moments.
                for key in ["memory_bytes", "cpu_percent", "uptime_seconds"] {
                    let present = obj.get(key).is_some_and(|v| !v.is_null());
                    obj.insert(key.to_string(), Value::Bool(present));
                }
                row
            })
            .collect()
    };
    let (api_rows, cli_rows) = (strip(&api.json()), strip(&cli));
    assert_eq!(api_rows.len(), 3);
    assert_eq!(api_rows, cli_rows);
    let stopped = api_rows
        .iter()
        .find(|r| r["host"] == "h2")
        .expect("the h2 task");
    assert_eq!(stopped["state"], "exited");
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_resume_after_the_last_event_id_with_no_gap_and_no_duplicate() {
    let c = cluster("w-logs", "", &[("count", COUNTER)]);
    c.drover(&["up", "--yes"]).run();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let path = "/api/jobs/count/logs?tail=5&follow=true&task=h1/0&stream=stdout";
    let (status, headers, body) = open(
        web.addr,
        "GET",
        path,
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));
    let mut sse = Sse::new(body);
    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 15 {
        let event = sse
            .next(Duration::from_secs(10))
            .await
            .expect("lines keep coming");
        assert_eq!(event.event, None, "only lines: {event:?}");
        let data = event.json();
        assert_eq!(data["host"], "h1");
        assert_eq!(data["task"], 0);
        assert_eq!(data["stream"], "stdout");
        assert!(data["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        // What the container wrote, markup and all, as a JSON string.
        assert!(data["line"]
            .as_str()
            .is_some_and(|l| l.ends_with("<script>alert(1)</script>")));
        seen.push(seq(&event));
        last_id = event.id.expect("every line has an id");
    }
    for pair in seen.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "consecutive: {seen:?}");
    }
    drop(sse);
    // The container goes on writing while the client is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _, body) = open(
        web.addr,
        "GET",
        path,
        &[("authorization", &bearer), ("last-event-id", &last_id)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    let mut sse = Sse::new(body);
    let mut next = *seen.last().unwrap_or(&0);
    // More than the tail of 5 were written meanwhile: all of them come.
    for _ in 0..60 {
        let event = sse.next(Duration::from_secs(10)).await.expect("resumed");
        let n = seq(&event);
        assert_eq!(n, next + 1, "resumes right after {next}, got {n}");
        next = n;
    }
    drop(sse);

    // Filters apply on the server: stderr only, and only lines with the text.
    let r = web
        .get(
            "/api/jobs/count/logs?stream=stderr&grep=err%2017",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, 200);
    let mut lines = 0;
    for block in r.body.split("\n\n") {
        if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
            let v: Value = serde_json::from_str(data).expect("JSON data");
            if v.get("line").is_some() {
                lines += 1;
                assert_eq!(v["stream"], "stderr");
                assert!(
                    v["line"].as_str().is_some_and(|l| l.contains("err 17")),
                    "{v}"
                );
            }
        }
    }
    assert!(
        lines >= 1,
        "the filter keeps the matching lines: {}",
        r.body
    );
    assert!(
        r.body.contains("event: end"),
        "a log that does not follow ends: {}",
        r.body
    );

    // The download is the whole log as text.
    let r = web
        .get(
            "/api/jobs/count/logs/download?task=h1/0&stream=stdout",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.contains("attachment") && d.contains("w-logs-count-h1-0.log")));
    let first = r.body.lines().next().unwrap_or_default();
    assert!(first.contains(" h1/0 stdout seq 1 <script>"), "{first}");
    assert!(r.body.lines().count() as u64 >= next, "every line so far");

    let r = web
        .get(
            "/api/jobs/count/logs?task=nonsense",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = web
        .get("/api/jobs/nope/logs", &[("authorization", &bearer)])
        .await;
    assert_eq!(r.status, 404);
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_websocket_is_refused() {
    let c = cluster("w-origin", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let cookie = web.login().await;
    for path in ["/api/jobs/app/tasks/h1/0/shell", "/api/live"] {
        for evil in ["http://evil.example", "null", "https://127.0.0.1:1"] {
            let refused = websocket(web.addr, path, &[("cookie", &cookie), ("origin", evil)]).await;
            assert_eq!(refused.err(), Some(403), "{path} from {evil}");
        }
        // A browser always sends an Origin: with the cookie, none is refused too.
        let refused = websocket(web.addr, path, &[("cookie", &cookie)]).await;
        assert_eq!(refused.err(), Some(403), "{path} with no Origin");
        let origin = web.origin();
        let ok = websocket(web.addr, path, &[("cookie", &cookie), ("origin", &origin)]).await;
        assert!(ok.is_ok(), "{path} from the dashboard itself");
    }
    assert!(web.audited("shell.refused").iter().any(|r| r["why"]
        .as_str()
        .is_some_and(|w| w.contains("cross-origin"))));
    web.stop().await;
}

async fn next_text(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Output of the shell until `needle` shows (or the wait runs out).
async fn read_until(ws: &mut Ws, needle: &str, wait: Duration) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = String::new();
    while !out.contains(needle) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => out.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_sessions_shells_within_seconds() {
    let c = cluster("w-logout", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let cookie = web.login().await;
    let origin = web.origin();
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let mut shell = websocket(web.addr, "/api/jobs/app/tasks/h1/0/shell", &headers)
        .await
        .expect("a shell");
    let ready = next_text(&mut shell, Duration::from_secs(10))
        .await
        .expect("ready");
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["task"], "app h1/0");
    shell
        .send(Message::Binary(b"echo one-$((40+2))\n".to_vec().into()))
        .await
        .expect("send");
    let out = read_until(&mut shell, "one-42", Duration::from_secs(10)).await;
    assert!(out.contains("one-42"), "{out:?}");
    let mut live = websocket(web.addr, "/api/live", &headers)
        .await
        .expect("live feed");

    let r = request(web.addr, "POST", "/logout", &headers, Vec::new()).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    let started = std::time::Instant::now();
    let exit = next_text(&mut shell, Duration::from_secs(5))
        .await
        .expect("told why");
    assert_eq!(exit["type"], "exit");
    assert_eq!(exit["reason"], "session ended (signed out)");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match shell.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the shell closes");
    assert_eq!(closed, Some(4001));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The live feed of that session ends too.
    let live_closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match live.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the live feed closes");
    assert_eq!(live_closed, Some(4001));
    // The shell's process in the container is gone too.
    let gone = eventually(Duration::from_secs(5), || {
        let ps = c.docker("h1", &["exec", "w-logout.app.h1.0", "ps", "-o", "pid,args"]);
        !ps.lines().any(|l| l.trim_end().ends_with(" sh"))
    })
    .await;
    assert!(gone, "the shell process ended");
    // The cookie opens nothing any more.
    assert_eq!(web.get("/", &[("cookie", &cookie)]).await.status, 401);
    assert_eq!(
        websocket(web.addr, "/api/jobs/app/tasks/h1/0/shell", &headers)
            .await
            .err(),
        Some(401)
    );
    // The record: who, which task, start, end, how it ended.
    let open = web.audited("shell.open");
    let close = web.audited("shell.close");
    let (open, close) = (&open[0], &close[0]);
    let session = open["by"]["session"].as_str().expect("the session's id");
    assert!(session.starts_with("s-"), "{open}");
    assert_eq!(open["by"]["role"], "operator");
    assert_eq!(close["by"]["session"], session, "{close}");
    assert_eq!(close["task"], "app h1/0");
    assert!(
        close["start"].is_string() && close["end"].is_string(),
        "{close}"
    );
    // 128 + SIGHUP: the shell was hung up, as a closed terminal does.
    assert_eq!(close["exit_code"], 129, "{close}");
    assert!(
        close["reason"]
            .as_str()
            .is_some_and(|r| r.contains("signed out")),
        "{close}"
    );
    assert!(web
        .audited("logout")
        .iter()
        .any(|l| l["session"] == session));
    let record = web
        .audit()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!record.contains(TOKEN));
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_says_how_it_ended() {
    let c = cluster("w-exit", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let path = "/api/jobs/app/tasks/h1/0/shell";
    let mut shell = websocket(web.addr, path, &[("authorization", &bearer)])
        .await
        .expect("a shell");
    assert_eq!(
        next_text(&mut shell, Duration::from_secs(10))
            .await
            .expect("ready")["type"],
        "ready"
    );
    shell
        .send(Message::Text(
            r#"{"type":"resize","rows":33,"cols":101}"#.into(),
        ))
        .await
        .expect("resize");
    tokio::time::sleep(Duration::from_millis(300)).await;
    shell
        .send(Message::Binary(b"stty size\n".to_vec().into()))
        .await
        .expect("send");
    let out = read_until(&mut shell, "33 101", Duration::from_secs(10)).await;
    assert!(
        out.contains("33 101"),
        "the terminal has the browser's size: {out:?}"
    );
    shell
        .send(Message::Binary(b"exit 3\n".to_vec().into()))
        .await
        .expect("send");
    let exit = loop {
        let m = next_text(&mut shell, Duration::from_secs(10))
            .await
            .expect("the end");
        if m["type"] == "exit" {
            break m;
        }
    };
    assert_eq!(exit["code"], 3);
    assert_eq!(exit["reason"], "the shell exited with code 3");

    // A stopped container: the shell ends, and the page is told why.
    let mut shell = websocket(web.addr, path, &[("authorization", &bearer)])
        .await
        .expect("a shell");
    assert_eq!(
        next_text(&mut shell, Duration::from_secs(10))
            .await
            .expect("ready")["type"],
        "ready"
    );
    c.docker("h1", &["stop", "-t", "1", "w-exit.app.h1.0"]);
    let exit = loop {
        let m = next_text(&mut shell, Duration::from_secs(15))
            .await
            .expect("the end");
        if m["type"] == "exit" {
            break m;
        }
    };
    assert_eq!(exit["reason"], "the container stopped");
    // And a task that does not run cannot be opened.
    let mut shell = websocket(web.addr, path, &[("authorization", &bearer)])
        .await
        .expect("upgrade");
    let error = next_text(&mut shell, Duration::from_secs(10))
        .await
        .expect("an error");
    assert_eq!(error["type"], "error");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("not running")),
        "{error}"
    );
    assert!(
        web.audited("shell.close")
            .iter()
            .any(|r| r["exit_code"] == 3),
        "{:?}",
        web.audit()
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_open_overviews_cost_the_engine_what_one_does() {
    let hosts = drover_testkit::hosts::Hosts::get();
    let proxy = drover_testkit::proxy::CountingProxy::start(&hosts.h1);
    let extra = format!("[hosts.counted]\ndocker = \"{}\"\n", proxy.address());
    let job = r#"
image = "drover-test/busybox:1"
hosts = ["counted"]
instances = 3
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;
    let c = cluster("w-count", &extra, &[("app", job)]);
    c.drover(&["up", "--yes", "--host", "counted"]).run();
    // Only the counted host, so every engine call of the dashboard passes the proxy.
    std::fs::write(
        c.path().join("drover.toml"),
        format!("name = \"w-count\"\n{extra}"),
    )
    .expect("rewrite drover.toml");
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let running = |snapshot: &Value| {
        snapshot["tasks"].as_array().is_some_and(|t| {
            t.len() == 3
                && t.iter()
                    .all(|t| t["state"] == "running" && !t["memory_bytes"].is_null())
        })
    };
    proxy.reset();
    let mut first = live(web.addr, &[("authorization", &bearer)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = next_overview(&mut first, Duration::from_secs(5))
            .await
            .expect("snapshots");
        if running(&s) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the overview fills: {s}"
        );
    }
    let count = |needle: &str| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    };
    assert_eq!(
        count("/events"),
        1,
        "one event subscription: {:#?}",
        proxy.requests()
    );
    assert_eq!(
        count("/containers/json"),
        1,
        "one list: {:#?}",
        proxy.requests()
    );

    // Keep reading so the feed is a real viewer.
    let drain =
        |mut ws: Ws| tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    let first = drain(first);
    let window = Duration::from_secs(6);
    proxy.reset();
    tokio::time::sleep(window).await;
    let one = proxy.requests();

    let mut others = Vec::new();
    for _ in 0..9 {
        let ws = live(web.addr, &[("authorization", &bearer)]).await;
        others.push(drain(ws));
    }
    // Ten pages also load the shell page (no engine call) and run a status.
    proxy.reset();
    tokio::time::sleep(window).await;
    let ten = proxy.requests();
    assert_eq!(web.dashboard.hub().viewers(), 10);
    assert_eq!(
        web.dashboard.hub().subscriptions(),
        1,
        "still one subscription"
    );
    let stats = |r: &[String]| r.iter().filter(|l| l.contains("/stats")).count();
    let calls_one = one.len();
    let calls_ten = ten.len();
    eprintln!("engine calls in {window:?}: one overview {calls_one}, ten overviews {calls_ten}");
    assert!(stats(&one) >= 3, "the sampler reads usage: {one:#?}");
    assert!(
        calls_ten <= calls_one + 3,
        "ten overviews cost more than one: {calls_one} vs {calls_ten}\n{one:#?}\n{ten:#?}"
    );
    assert!(
        !ten.iter()
            .any(|r| r.contains("/events") || r.contains("/containers/json")),
        "{ten:#?}"
    );

    // Changes arrive by event: a stopped task shows without listing again.
    proxy.reset();
    c.docker("h1", &["stop", "-t", "1", "w-count.app.counted.1"]);
    let mut watcher = live(web.addr, &[("authorization", &bearer)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = next_overview(&mut watcher, Duration::from_secs(5))
            .await
            .expect("snapshots");
        let stopped = s["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["task"] == 1 && t["state"] == "exited"));
        if stopped {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stop shows: {s}"
        );
    }
    assert_eq!(
        count("/containers/json"),
        0,
        "no re-list: {:#?}",
        proxy.requests()
    );
    assert!(
        count("/json") >= 1,
        "the container the event named is inspected"
    );
    drop(watcher);

    // Nobody looking: after the linger, no engine calls at all.
    first.abort();
    for o in others {
        o.abort();
    }
    assert!(
        eventually(Duration::from_secs(15), || !web
            .dashboard
            .hub()
            .is_watching())
        .await,
        "the watchers stop when nobody looks"
    );
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(proxy.count(), 0, "idle: {:#?}", proxy.requests());
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_shows_the_diff_history_and_lock() {
    let c = cluster("w-job", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    c.drover(&["lock", "app", "--reason", "db migration <b>now</b>"])
        .run();
    // A change by hand that `diff` must report.
    c.set_job("app", &SLEEPER.replace("3600", "3601"));
    let web = Web::start(c.path()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = web.bearer("/api/jobs/app").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let text = v["diff"]["text"]
        .as_str()
        .expect("the diff, as the CLI prints it");
    let cli = c
        .drover(&["--no-color", "diff", "app"])
        .status(2)
        .run()
        .stdout;
    assert_eq!(text, cli, "the CLI's renderer, plain for machines");
    let ansi = v["diff"]["ansi"]
        .as_str()
        .expect("the page's coloured copy");
    assert_eq!(strip_ansi(ansi), cli);
    assert!(ansi.contains("\u{1b}["), "in colour");
    assert_eq!(v["diff"]["empty"], false);
    assert_eq!(v["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["locks"][0]["reason"], "db migration <b>now</b>");
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["job"]["instances"], 1);
    let r = web.bearer("/api/jobs/nope").await;
    assert_eq!(r.status, 404);
    c.drover(&["unlock", "app"]).run();
    web.stop().await;
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_cleanly_and_says_so() {
    let c = cluster("w-stop", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut shell = websocket(
        web.addr,
        "/api/jobs/app/tasks/h1/0/shell",
        &[("authorization", &bearer)],
    )
    .await
    .expect("a shell");
    assert_eq!(
        next_text(&mut shell, Duration::from_secs(10))
            .await
            .expect("ready")["type"],
        "ready"
    );
    let (_, _, body) = open(
        web.addr,
        "GET",
        "/api/jobs/app/logs?follow=true",
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await;
    let mut sse = Sse::new(body);
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(web.stop());
    let exit = next_text(&mut shell, Duration::from_secs(5))
        .await
        .expect("told why");
    assert_eq!(exit["reason"], "the dashboard is stopping");
    let end = loop {
        let e = sse
            .next(Duration::from_secs(5))
            .await
            .expect("the stream ends with a reason");
        if e.event.as_deref() == Some("end") {
            break e;
        }
    };
    assert_eq!(end.json()["reason"], "the dashboard is stopping");
    stopping.await.expect("stopped");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_cookie_is_secure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A CA and a certificate it signed for 127.0.0.1.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.path().join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "cert.pem",
    ]);
    let ca = dir.path().join("ca.pem");
    let c = cluster("w-tls", "", &[("app", SLEEPER)]);
    let tls = drover_web::tls_config(&cert, &key).expect("the certificate loads");
    let web = Web::start_with(c.path(), Some(tls)).await;

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for der in rustls_pki_types::CertificateDer::pem_file_iter(&ca).expect("pem") {
        roots.add(der.expect("a certificate")).expect("trusted");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(web.addr)
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(format!("/?token={TOKEN}"))
        .header("host", web.addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("answer");
    assert_eq!(res.status().as_u16(), 303);
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP to the TLS port gets nothing.
    let plain = tokio::time::timeout(Duration::from_secs(15), async {
        let stream = tokio::net::TcpStream::connect(web.addr).await.ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .uri("/")
            .header("host", "x")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        sender.send_request(req).await.ok()
    })
    .await
    .ok()
    .flatten();
    assert!(plain.is_none(), "plain HTTP is not served under TLS");
    assert!(
        drover_web::tls_config(&key, &key).is_err(),
        "a key is not a certificate"
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_stream_is_followed_by_a_relist_then_a_new_subscription() {
    let hosts = drover_testkit::hosts::Hosts::get();
    let proxy = drover_testkit::proxy::CountingProxy::start(&hosts.h1);
    let extra = format!("[hosts.counted]\ndocker = \"{}\"\n", proxy.address());
    let job = SLEEPER.replace("[\"h1\", \"h2\"]", "[\"counted\"]");
    let c = cluster("w-resync", &extra, &[("app", &job)]);
    c.drover(&["up", "--yes", "--host", "counted"]).run();
    std::fs::write(
        c.path().join("drover.toml"),
        format!("name = \"w-resync\"\n{extra}"),
    )
    .expect("rewrite drover.toml");
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut feed = live(web.addr, &[("authorization", &bearer)]).await;
    let state = |s: &Value| {
        s["tasks"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let host = |s: &Value| {
        s["hosts"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    loop {
        let s = next_overview(&mut feed, Duration::from_secs(10))
            .await
            .expect("snapshots");
        if state(&s) == "running" && host(&s) == "up" {
            break;
        }
    }
    proxy.reset();
    proxy.sever();
    // While the stream is down the task stops: only a re-list can tell.
    c.docker("h1", &["stop", "-t", "1", "w-resync.app.counted.0"]);
    let mut saw_resync = false;
    loop {
        let s = next_overview(&mut feed, Duration::from_secs(15))
            .await
            .expect("snapshots");
        saw_resync |= host(&s) == "resyncing";
        if host(&s) == "up" && state(&s) == "exited" {
            break;
        }
    }
    let requests = proxy.requests();
    let at = |needle: &str| requests.iter().position(|r| r.contains(needle));
    let (events, list) = (at("/events"), at("/containers/json"));
    assert!(events.is_some() && list.is_some(), "{requests:#?}");
    assert!(
        events < list,
        "subscribed again before listing, so nothing is missed: {requests:#?}"
    );
    assert!(
        saw_resync || requests.len() > 1,
        "the overview said it was resyncing"
    );
    assert_eq!(web.dashboard.hub().subscriptions(), 2);
    web.stop().await;
}

/// A container `drover adopt` took over carries none of drover's labels
/// (a running container can be renamed, not relabelled): the live view
/// follows it all the same, by its task's name and the adoption record,
/// without waiting for a re-read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_task_stopped_by_hand_shows_at_once() {
    let c = cluster("w-adopted", "", &[]);
    let _ = c.docker_raw("h1", &["rm", "-f", "wadw-app"]);
    let id = c.docker(
        "h1",
        &[
            "run",
            "-d",
            "--name",
            "wadw-app",
            "drover-test/busybox:1",
            "sleep",
            "3600",
        ],
    );
    /// Removes the hand-run container however the test ends (the
    /// cluster removes only what carries the environment's label).
    struct Removed<'a>(&'a drover_testkit::hosts::Cluster, String);
    impl Drop for Removed<'_> {
        fn drop(&mut self) {
            let _ = self.0.docker_raw("h1", &["rm", "-f", "-v", &self.1]);
        }
    }
    let _removed = Removed(&c, id);
    c.drover(&["adopt", "--yes", "wadw-app"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut feed = live(web.addr, &[("authorization", &bearer)]).await;
    let state = |s: &Value| {
        s["tasks"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    loop {
        let s = next_overview(&mut feed, Duration::from_secs(10))
            .await
            .expect("snapshots");
        if state(&s) == "running" {
            break;
        }
    }
    c.docker("h1", &["stop", "-t", "1", "w-adopted.wadw-app.h1.0"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let s = next_overview(&mut feed, left)
            .await
            .expect("the stop shows within 10 s, without a re-read");
        if state(&s) == "exited" {
            assert_eq!(s["tasks"][0]["job"], "wadw-app", "{s}");
            break;
        }
    }
    assert_eq!(
        web.dashboard.hub().subscriptions(),
        2,
        "one per host (h1, h2): no re-read"
    );
    let activity = web.dashboard.hub().activity("wadw-app");
    assert!(
        activity
            .iter()
            .any(|a| a.action == "die" && a.host == "h1" && a.task == Some(0)),
        "{activity:?}"
    );
    web.stop().await;
}
