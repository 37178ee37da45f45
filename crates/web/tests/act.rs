//! The dashboard as an on-call engineer uses it, over HTTP against the
//! suite's real engines: signing in (a single-use login address, the
//! form, `?token=`), wrong tokens slowed per address, the viewer's role,
//! actions planned, confirmed and run as the CLI runs them, their
//! progress and audit record, each job's diff count at a glance, a change
//! made from the CLI showing on the job's feed, a task's page, `/metrics`,
//! and an unknown job or task refused in the CLI's words everywhere.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const SLEEPER: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1", "h2"]
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;

/// Three tasks on h1, replaced one at a time.
const TRIO: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
instances = 3
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;

/// The CLI's error, without `error: ` and the newline.
fn cli_error(c: &drover_testkit::hosts::Cluster, args: &[&str]) -> String {
    let out = c.drover(args).status(1).stderr_has("error: ").run();
    out.stderr
        .trim_end()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("an error: {}", out.stderr))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_jobs_and_tasks_are_404_in_the_cli_words_everywhere() {
    let c = cluster("w-404", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let no_task = cli_error(&c, &["logs", "app", "--task", "h1/7"]);
    assert_eq!(no_task, "job app has no task h1/7 (its tasks: h1/0, h2/0)");
    let no_job = cli_error(&c, &["logs", "nope"]);
    assert!(
        no_job.starts_with("unknown job \"nope\" (jobs in "),
        "{no_job}"
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    for (path, want) in [
        ("/api/jobs/app/logs?task=h1/7", &no_task),
        ("/api/jobs/app/logs/download?task=h1/7", &no_task),
        ("/api/jobs/nope/logs", &no_job),
        ("/api/jobs/nope/logs/download", &no_job),
        ("/api/jobs/nope", &no_job),
        ("/api/jobs/nope/images", &no_job),
        ("/api/jobs/nope/restart/plan", &no_job),
    ] {
        let r = web.get(path, &auth).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], want.as_str(), "{path}");
    }
    let origin = web.origin();
    let post = request(
        web.addr,
        "POST",
        "/api/jobs/nope/restart",
        &[("authorization", &bearer), ("origin", &origin)],
        Vec::new(),
    )
    .await;
    assert_eq!(post.status, 404, "{}", post.body);
    assert_eq!(post.json()["error"], no_job.as_str());
    let post = request(
        web.addr,
        "POST",
        "/api/jobs/app/explode",
        &[("authorization", &bearer), ("origin", &origin)],
        Vec::new(),
    )
    .await;
    assert_eq!(post.status, 404);
    assert_eq!(
        post.json()["error"],
        "unknown action \"explode\" (actions: restart, stop, start, rollback, up)"
    );
    // Pages: 404, the words in the page for the script to show.
    for (path, want) in [("/jobs/app/tasks/h1/7", &no_task), ("/jobs/nope", &no_job)] {
        let r = web.get(path, &auth).await;
        assert_eq!(r.status, 404, "{path}");
        let escaped = want.replace('"', "&quot;");
        assert!(
            r.body.contains(&format!("data-error=\"{escaped}\"")),
            "{path}: {}",
            r.body
        );
    }
    assert_eq!(web.get("/jobs/app/tasks/h2/0", &auth).await.status, 200);
    // The shell's WebSocket: refused before the upgrade.
    assert_eq!(
        websocket(web.addr, "/api/jobs/app/tasks/h1/7/shell", &auth)
            .await
            .err(),
        Some(404)
    );
    // The live socket: the subscription gets the error, in the same words.
    let mut ws = websocket(web.addr, "/api/live", &auth).await.expect("live");
    subscribe(
        &mut ws,
        json!({"op": "sub", "id": 7, "topic": "logs", "job": "app", "task": "h1/7"}),
    )
    .await;
    let e = next_of(&mut ws, "error", Duration::from_secs(10))
        .await
        .expect("an error");
    assert_eq!(e["id"], 7);
    assert_eq!(e["status"], 404);
    assert_eq!(e["error"], no_task.as_str());
    subscribe(
        &mut ws,
        json!({"op": "sub", "id": 8, "topic": "task", "job": "app", "host": "h1", "task": 7}),
    )
    .await;
    let e = next_of(&mut ws, "error", Duration::from_secs(10))
        .await
        .expect("an error");
    assert_eq!(
        (e["id"].clone(), e["error"].clone()),
        (json!(8), json!(no_task))
    );
    subscribe(
        &mut ws,
        json!({"op": "sub", "id": 9, "topic": "job", "job": "nope"}),
    )
    .await;
    let e = next_of(&mut ws, "error", Duration::from_secs(10))
        .await
        .expect("an error");
    assert_eq!(
        (e["id"].clone(), e["error"].clone()),
        (json!(9), json!(no_job))
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_address_signs_in_once_and_a_new_one_is_told() {
    let c = cluster("w-code", "", &[("app", SLEEPER)]);
    let web = Web::start(c.path()).await;
    let address = web.login_address();
    let path = address
        .strip_prefix(&format!("http://{}", web.addr))
        .expect("the dashboard's own address")
        .to_string();
    assert!(path.starts_with("/?code="), "{address}");
    assert!(!address.contains(TOKEN), "the token is not in the address");
    let r = web.get(&format!("/jobs/app{}", &path[1..]), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/jobs/app"));
    let cookie = r.header("set-cookie").expect("a cookie");
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    assert_eq!(
        web.get("/api/status", &[("cookie", &session)]).await.status,
        200
    );
    // Once only.
    let again = web.get(&path, &[("accept", "text/html")]).await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("was used already"), "{}", again.body);
    // A browser already signed in just loses the code from its address.
    let tidy = web.get(&path, &[("cookie", &session)]).await;
    assert_eq!(
        (tidy.status, tidy.header("location")),
        (303, Some("/".to_string()))
    );
    // The operator is told a new address, and it works.
    let told = web.log().join("\n");
    let fresh = told
        .split_whitespace()
        .find(|w| w.contains("?code="))
        .unwrap_or_else(|| panic!("a new address: {told}"))
        .to_string();
    assert_ne!(fresh, address);
    let fresh_path = fresh
        .strip_prefix(&format!("http://{}", web.addr))
        .unwrap_or_default();
    assert_eq!(web.get(fresh_path, &[]).await.status, 303);
    // The form: a viewer's token in a POST body, from the dashboard's own page.
    let origin = web.origin();
    let form = format!("token={VIEW_TOKEN}&next=%2Fjobs%2Fapp");
    let r = request(
        web.addr,
        "POST",
        "/login",
        &[
            ("origin", &origin),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/jobs/app"));
    let viewer = r.header("set-cookie").expect("a cookie");
    let viewer = viewer.split(';').next().unwrap_or_default();
    let page = web.get("/", &[("cookie", viewer)]).await;
    assert!(page.body.contains("data-role=\"viewer\""), "{}", page.body);
    // Not from another site's page.
    let r = request(
        web.addr,
        "POST",
        "/login",
        &[
            ("origin", "http://evil.example"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.into_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    let logins = web.audited("login");
    let via: Vec<(&str, &str)> = logins
        .iter()
        .map(|l| {
            (
                l["via"].as_str().unwrap_or(""),
                l["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        via,
        [
            ("code", "operator"),
            ("code", "operator"),
            ("form", "viewer")
        ]
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_slowed_per_address_and_others_are_not() {
    let c = cluster("w-throttle", "", &[("app", SLEEPER)]);
    let web = Web::start(c.path()).await;
    let cookie = web.login().await;
    let guesser = Ipv4Addr::new(127, 0, 0, 2);
    let other = Ipv4Addr::new(127, 0, 0, 3);
    // A guesser hammering: a few answers, then 429s that say how long to wait.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..300 {
        let wrong = format!("Bearer guess-{i}");
        let r = request_from(
            guesser,
            web.addr,
            "GET",
            "/api/status",
            &[("authorization", &wrong)],
        )
        .await;
        if r.status == 429 {
            assert!(r
                .header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
        }
        statuses.push(r.status);
    }
    let looked_at = statuses.iter().filter(|s| **s == 401).count();
    eprintln!(
        "300 wrong tokens in {:?}: {looked_at} looked at",
        started.elapsed()
    );
    assert!((5..=8).contains(&looked_at), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    // Even the right token from that address waits now (no oracle)…
    let right = format!("Bearer {TOKEN}");
    let r = request_from(
        guesser,
        web.addr,
        "GET",
        "/api/status",
        &[("authorization", &right)],
    )
    .await;
    assert_eq!(r.status, 429);
    // …but another address is not touched, and a browser signed in goes on.
    let r = request_from(
        other,
        web.addr,
        "GET",
        "/api/status",
        &[("authorization", &right)],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request_from(
        guesser,
        web.addr,
        "GET",
        "/api/status",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, 200);
    // The record says who failed, and when they were paused; never the guesses.
    let failed = web.audited("login.failed");
    assert_eq!(failed.len(), looked_at);
    assert!(failed.iter().all(|f| f["address"] == "127.0.0.2"));
    assert!(!web.audited("login.paused").is_empty());
    assert!(!web.audit().iter().any(|l| l.to_string().contains("guess-")));
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_everything_but_opens_no_shell_and_takes_no_action() {
    let c = cluster("w-viewer", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let cookie = web.login_viewer().await;
    let origin = web.origin();
    let viewer = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    for path in [
        "/",
        "/jobs/app",
        "/jobs/app/tasks/h1/0",
        "/api/status",
        "/api/jobs/app",
        "/metrics",
    ] {
        let r = web.get(path, &viewer).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let mut ws = live(web.addr, &viewer).await;
    let hello = next_of(&mut ws, "hello", Duration::from_secs(5))
        .await
        .expect("hello");
    assert_eq!(hello["role"], "viewer");
    assert!(next_overview(&mut ws, Duration::from_secs(10))
        .await
        .is_some());
    assert_eq!(
        websocket(web.addr, "/api/jobs/app/tasks/h1/0/shell", &viewer)
            .await
            .err(),
        Some(403)
    );
    let bearer = format!("Bearer {VIEW_TOKEN}");
    assert_eq!(
        websocket(
            web.addr,
            "/api/jobs/app/tasks/h1/0/shell",
            &[("authorization", &bearer)]
        )
        .await
        .err(),
        Some(403)
    );
    for action in ["restart", "stop", "start", "rollback", "up"] {
        let path = format!("/api/jobs/app/{action}");
        let r = request(web.addr, "POST", &path, &viewer, Vec::new()).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.json()["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("a viewer takes no action")));
        let r = web.get(&format!("{path}/plan"), &viewer).await;
        assert_eq!(r.status, 403, "{path}/plan");
    }
    // Nothing was touched.
    assert!(web.audited("action.start").is_empty());
    assert!(web
        .audited("shell.refused")
        .iter()
        .all(|r| r["by"]["role"] == "viewer"));
    web.stop().await;
}

/// Reads a change's progress (`GET /api/changes/{id}`) until it finishes.
async fn progress(web: &Web, id: &str) -> Vec<Value> {
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = open(
        web.addr,
        "GET",
        &format!("/api/changes/{id}"),
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    let mut sse = Sse::new(body);
    let mut lines = Vec::new();
    while let Some(event) = sse.next(Duration::from_secs(60)).await {
        let line = event.json();
        let end = line["kind"] == "finished";
        lines.push(line);
        if end {
            return lines;
        }
    }
    panic!("the change did not finish: {lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_is_planned_confirmed_and_run_as_the_cli_runs_it() {
    let c = cluster("w-act", "", &[("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let cookie = web.login().await;
    let origin = web.origin();
    let operator = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let started = |name: &str| c.inspect("h1", name, "{{.State.StartedAt}}");
    let names = ["w-act.trio.h1.0", "w-act.trio.h1.1", "w-act.trio.h1.2"];
    let before: Vec<String> = names.iter().map(|n| started(n)).collect();

    // Refused: another site's page, or a browser that sends no Origin.
    for headers in [
        vec![
            ("cookie", cookie.as_str()),
            ("origin", "http://evil.example"),
        ],
        vec![("cookie", cookie.as_str())],
    ] {
        let r = request(
            web.addr,
            "POST",
            "/api/jobs/trio/restart",
            &headers,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
    }
    // The plan: what `drover restart trio` shows, and a fingerprint.
    let plan = web.get("/api/jobs/trio/restart/plan", &operator).await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan = plan.json();
    assert_eq!(plan["command"], "drover restart trio");
    assert_eq!(plan["question"], "Restart these tasks?");
    assert_eq!(plan["summary"], "restart h1/0, h1/1, h1/2");
    let fingerprint = plan["fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_string();
    let again = web
        .get("/api/jobs/trio/restart/plan", &operator)
        .await
        .json();
    assert_eq!(
        again["fingerprint"],
        fingerprint.as_str(),
        "a plan is stable while nothing changes"
    );
    // A plan that changed meanwhile is shown again, not applied.
    let stale = json!({"fingerprint": "0000000000000000"})
        .to_string()
        .into_bytes();
    let r = request(web.addr, "POST", "/api/jobs/trio/restart", &operator, stale).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["plan"]["fingerprint"], fingerprint.as_str());
    assert_eq!(
        before,
        names.iter().map(|n| started(n)).collect::<Vec<_>>(),
        "nothing restarted"
    );
    // Confirmed: 202, a change id, progress as events.
    let body = json!({"fingerprint": fingerprint}).to_string().into_bytes();
    let r = request(web.addr, "POST", "/api/jobs/trio/restart", &operator, body).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["change"]
        .as_str()
        .expect("a change id")
        .to_string();
    assert_eq!(r.json()["progress"], format!("/api/changes/{id}"));
    // While it runs, another is refused.
    let r = request(
        web.addr,
        "POST",
        "/api/jobs/trio/restart",
        &operator,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let lines = progress(&web, &id).await;
    let end = lines.last().expect("an end");
    assert_eq!(end["result"], "succeeded", "{lines:#?}");
    assert_eq!(lines[0]["kind"], "started");
    let done: Vec<String> = lines
        .iter()
        .filter(|l| l["kind"] == "event" && l["event"]["event"] == "done")
        .map(|l| {
            format!(
                "{}/{}",
                l["event"]["host"].as_str().unwrap_or(""),
                l["event"]["task"]
            )
        })
        .collect();
    assert_eq!(done.len(), 3, "each task's progress: {lines:#?}");
    // One batch at a time: each task started after the one before passed its gate.
    let after: Vec<String> = names.iter().map(|n| started(n)).collect();
    let mut times: Vec<_> = after
        .iter()
        .map(|t| drover_plan::time::parse(t).expect("a start time"))
        .collect();
    times.sort();
    for (was, now) in before.iter().zip(&after) {
        assert_ne!(was, now, "restarted");
    }
    for pair in times.windows(2) {
        let gap = drover_plan::time::since(pair[1], pair[0]);
        assert!(
            gap >= Duration::from_millis(1900),
            "one at a time, gated: {after:?}"
        );
    }
    // The record: who, what, the plan, the result.
    let start = &web.audited("action.start")[0];
    let end = &web.audited("action.end")[0];
    assert_eq!(start["by"]["role"], "operator");
    assert_eq!(start["action"], "restart");
    assert_eq!(start["plan"], "restart h1/0, h1/1, h1/2");
    assert_eq!(end["result"], "succeeded");
    assert_eq!(end["change"], id.as_str());

    // A lock someone else holds: refused with its holder, not retried.
    c.drover(&["lock", "trio", "--reason", "db migration"])
        .run();
    let plan = web
        .get("/api/jobs/trio/restart/plan", &operator)
        .await
        .json();
    assert!(
        plan["locked"]
            .as_str()
            .is_some_and(|l| l.contains("db migration")),
        "{plan}"
    );
    let r = request(
        web.addr,
        "POST",
        "/api/jobs/trio/restart",
        &operator,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let v = r.json();
    assert_eq!(v["lock"]["reason"], "db migration");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("job trio is locked by ")),
        "{v}"
    );
    c.drover(&["unlock", "trio"]).run();

    // stop, then restart is refused as the CLI refuses it, then start.
    let r = request(
        web.addr,
        "POST",
        "/api/jobs/trio/stop",
        &operator,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let lines = progress(&web, r.json()["change"].as_str().unwrap_or_default()).await;
    assert_eq!(
        lines.last().map(|l| l["result"].clone()),
        Some(json!("succeeded")),
        "{lines:#?}"
    );
    let refused = request(
        web.addr,
        "POST",
        "/api/jobs/trio/restart",
        &operator,
        Vec::new(),
    )
    .await;
    assert_eq!(refused.status, 409);
    let cli = cli_error(&c, &["restart", "trio", "--yes"]);
    assert_eq!(refused.json()["error"], cli.as_str());
    let r = request(
        web.addr,
        "POST",
        "/api/jobs/trio/start",
        &operator,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let lines = progress(&web, r.json()["change"].as_str().unwrap_or_default()).await;
    assert_eq!(
        lines.last().map(|l| l["result"].clone()),
        Some(json!("succeeded")),
        "{lines:#?}"
    );
    // Nothing left to do: up answers so, and changes nothing.
    let r = request(web.addr, "POST", "/api/jobs/trio/up", &operator, Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["noop"], true);
    web.stop().await;
}

/// The first overview for which `check` holds (within 20 s).
async fn wait_for(ws: &mut Ws, want: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o = next_overview(ws, Duration::from_secs(10))
            .await
            .expect("overviews");
        if check(&o) {
            return o;
        }
        assert!(tokio::time::Instant::now() < deadline, "{want}: {o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_shows_its_diff_count_lock_and_stop_at_a_glance() {
    let c = cluster("w-glance", "", &[("app", SLEEPER), ("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut ws = live(web.addr, &[("authorization", &bearer)]).await;
    let glance = |o: &Value, job: &str| {
        o["jobs"]
            .as_array()
            .and_then(|j| j.iter().find(|j| j["name"] == job))
            .map(|j| j["glance"].clone())
            .unwrap_or(Value::Null)
    };
    wait_for(&mut ws, "both in sync", |o| {
        glance(o, "app")["changes"] == 0 && glance(o, "trio")["changes"] == 0
    })
    .await;
    // Memory changed by hand: what diff counts, the overview counts.
    c.docker(
        "h1",
        &[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "64m",
            "w-glance.trio.h1.1",
        ],
    );
    c.docker("h2", &["stop", "-t", "1", "w-glance.app.h2.0"]);
    let o = wait_for(&mut ws, "the drift shows", |o| {
        glance(o, "trio")["changes"] == 1 && glance(o, "app")["changes"] == 1
    })
    .await;
    let diff = c.drover(&["--json", "diff"]).status(2).run().json();
    let count = |job: &str| {
        diff["changes"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["job"] == job).count())
    };
    assert_eq!((count("trio"), count("app")), (1, 1), "{diff}");
    assert!(glance(&o, "trio")["last_deploy"].is_string());
    // Locked and stopped.
    c.drover(&["lock", "trio", "--reason", "hands off"]).run();
    c.drover(&["stop", "app", "--yes"]).run();
    let o = wait_for(&mut ws, "locked and stopped", |o| {
        glance(o, "trio")["locks"][0]["reason"] == "hands off"
            && glance(o, "app")["stop_marks"]
                .as_array()
                .is_some_and(|m| m.len() == 2)
    })
    .await;
    assert_eq!(
        glance(&o, "app")["changes"],
        0,
        "a stopped job is as drover stop left it: {o}"
    );
    c.drover(&["unlock", "trio"]).run();
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_from_the_cli_shows_on_the_job_feed_as_it_happens() {
    let c = cluster("w-cli", "", &[("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut ws = websocket(web.addr, "/api/live", &[("authorization", &bearer)])
        .await
        .expect("live");
    subscribe(
        &mut ws,
        json!({"op": "sub", "id": 1, "topic": "job", "job": "trio"}),
    )
    .await;
    let first = next_of(&mut ws, "job", Duration::from_secs(15))
        .await
        .expect("the job");
    assert_eq!(first["tasks"].as_array().map(Vec::len), Some(3));
    let dir = c.path().to_path_buf();
    let cli = tokio::task::spawn_blocking(move || {
        std::process::Command::new(drover_testkit::binary::drover())
            .args(["-C", &dir.to_string_lossy(), "restart", "trio", "--yes"])
            .output()
    });
    let mut saw_lock = false;
    let mut restarted = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while restarted.len() < 3 || !saw_lock {
        let m = next_of(&mut ws, "job", Duration::from_secs(10))
            .await
            .expect("updates");
        saw_lock |= m["job"]["locks"].as_array().is_some_and(|l| !l.is_empty());
        for a in m["activity"].as_array().into_iter().flatten() {
            if a["action"] == "start" && a["what"] == "task" {
                restarted.insert(a["task"].to_string());
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
    }
    let out = cli.await.expect("joined").expect("drover ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_feed_has_restarts_exit_code_health_output_and_usage() {
    let job = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
command = ["sh", "-c", "sleep 3600"]
stop_timeout = "1s"
restart = "no"
health = { cmd = ["sh", "-c", "echo checked-ok"], interval = "1s" }
"#;
    let c = cluster("w-taskfeed", "", &[("app", job)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let mut ws = websocket(web.addr, "/api/live", &[("authorization", &bearer)])
        .await
        .expect("live");
    subscribe(
        &mut ws,
        json!({"op": "sub", "id": 3, "topic": "task", "job": "app", "host": "h1", "task": 0}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut points = 0;
    let mut health = String::new();
    while points < 2 || health.is_empty() {
        let m = next_of(&mut ws, "task", Duration::from_secs(15)).await;
        if let Some(m) = m.filter(|m| m["reading"] == false) {
            assert_eq!(m["task"]["restarts"], 0, "{m}");
            if m["task"]["health"] == "healthy" {
                health = m["detail"]["health_output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        if let Some(u) = next_of(&mut ws, "usage", Duration::from_secs(3)).await {
            points = u["series"]["points"]
                .as_array()
                .map_or(0, Vec::len)
                .max(points);
            assert_eq!(u["series"]["step"], 10);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "points {points}, health {health:?}"
        );
    }
    assert!(health.contains("checked-ok"), "{health}");
    // Killed by hand: the last exit code and why, in status's words.
    c.docker("h1", &["kill", "-s", "KILL", "w-taskfeed.app.h1.0"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = next_of(&mut ws, "task", Duration::from_secs(10))
            .await
            .expect("updates");
        if m["task"]["exit_code"] == 137 {
            assert_eq!(m["task"]["failing"], "exited (code 137)", "{m}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
    }
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_match_status_json() {
    let c = cluster("w-metrics", "", &[("app", SLEEPER), ("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    c.docker("h2", &["stop", "-t", "1", "w-metrics.app.h2.0"]);
    let web = Web::start(c.path()).await;
    // Without the token: 401.
    assert_eq!(web.get("/metrics", &[]).await.status, 401);
    let first = web.bearer("/metrics").await;
    assert_eq!(first.status, 200);
    assert!(first
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    // Once the sampler has read usage, and the drift is counted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let t = std::time::Instant::now();
    let text = web.bearer("/metrics").await.body;
    let took = t.elapsed();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format");
    let status = c.drover(&["--json", "status"]).run().json();
    let value = |name: &str, job: &str, host: &str, task: &str| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.get("job") == Some(job)
                    && s.labels.get("host") == Some(host)
                    && s.labels.get("task") == Some(task)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let rows = status.as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let (job, host) = (
            row["job"].as_str().unwrap_or(""),
            row["host"].as_str().unwrap_or(""),
        );
        let task = row["task"].to_string();
        let running = row["state"] == "running";
        assert_eq!(
            value("drover_task_up", job, host, &task),
            Some(if running { 1.0 } else { 0.0 }),
            "{row}"
        );
        assert_eq!(
            value("drover_task_restarts", job, host, &task),
            row["restarts"].as_f64(),
            "{row}"
        );
        let state = scrape.samples.iter().find(|s| {
            s.metric == "drover_task_state"
                && s.labels.get("job") == Some(job)
                && s.labels.get("task") == Some(task.as_str())
                && s.labels.get("host") == Some(host)
        });
        assert_eq!(
            state.and_then(|s| s.labels.get("state")),
            row["state"].as_str(),
            "{row}"
        );
        let memory = value("drover_task_memory_bytes", job, host, &task);
        match row["memory_bytes"].as_f64() {
            // Measured a moment apart: the same order of size.
            Some(cli) => {
                let web = memory.expect("memory of a running task");
                assert!(
                    web > 0.0 && (web / cli) > 0.5 && (web / cli) < 2.0,
                    "{web} vs {cli}"
                );
            }
            None => assert_eq!(memory, None, "{row}"),
        }
        assert_eq!(
            value("drover_task_cpu_percent", job, host, &task).is_some(),
            running,
            "{row}"
        );
    }
    let host_up = |host: &str| {
        scrape.samples.iter().any(|s| {
            s.metric == "drover_host_up"
                && s.labels.get("host") == Some(host)
                && matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0)
        })
    };
    assert!(host_up("h1") && host_up("h2"));
    let job_value = |name: &str, job: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("job") == Some(job))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
    };
    let diff = c.drover(&["--json", "diff"]).status(2).run().json();
    let drift = diff["changes"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["job"] == "app").count());
    assert_eq!(job_value("drover_job_drift", "app"), Some(drift as f64));
    assert_eq!(job_value("drover_job_drift", "trio"), Some(0.0));
    let history = c.drover(&["--json", "history", "trio"]).run().json();
    let deployed = history[0]["deployed_at"]
        .as_str()
        .and_then(drover_plan::time::parse)
        .map(|t| t.as_second() as f64);
    assert_eq!(
        job_value("drover_job_last_deploy_timestamp_seconds", "trio"),
        deployed
    );
    eprintln!("a warm scrape of 5 tasks took {took:?}");
    assert!(took < Duration::from_millis(50), "{took:?}");
    web.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_given_another_address_is_read_there() {
    let c = cluster("w-readdress", "", &[("app", SLEEPER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let bearer = format!("Bearer {TOKEN}");
    let name_on = |o: &Value, host: &str| -> Option<String> {
        o["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["host"] == host && t["task"] == 0)?["name"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        web.bearer("/api/status").await.json()[0]["name"],
        "w-readdress.app.h1.0"
    );
    // drover.toml now says h1 is at h2's address: the dashboard asks there.
    let hosts = drover_testkit::hosts::Hosts::get();
    std::fs::write(
        c.path().join("drover.toml"),
        format!(
            "name = \"w-readdress\"\n\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n",
            hosts.h2, hosts.h2
        ),
    )
    .expect("rewrite drover.toml");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = web.bearer("/api/status").await.json();
        let h1 = rows
            .as_array()
            .and_then(|r| r.iter().find(|t| t["host"] == "h1"))
            .cloned();
        // h2's container, labelled for h2, is no task of h1: h1's task is missing there.
        if h1.as_ref().is_some_and(|t| t["state"] == "missing") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut ws = live(web.addr, &[("authorization", &bearer)]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o = next_overview(&mut ws, Duration::from_secs(10))
            .await
            .expect("overviews");
        if name_on(&o, "h1").is_none() && o["hosts"][0]["state"] == "up" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{o}");
    }
    web.stop().await;
}

#[test]
fn a_short_token_beyond_loopback_is_refused_at_start() {
    let c = cluster("w-short", "", &[("app", SLEEPER)]);
    let out = c
        .drover(&["web", "--listen", "0.0.0.0:0"])
        .env("DROVER_WEB_TOKEN", "hunter2")
        .status(1)
        .stderr_has(
            "error: DROVER_WEB_TOKEN has 7 characters, and the dashboard would listen on 0.0.0.0:",
        )
        .run();
    assert!(
        out.stderr.trim_end().ends_with(", beyond this machine: such a token needs at least 32 (make one with `openssl rand -hex 32`), or listen on loopback only (--listen 127.0.0.1:PORT)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "the token is not printed");
    c.drover(&["web", "--listen", "0.0.0.0:0"])
        .env("DROVER_WEB_TOKEN", &"x".repeat(40))
        .env("DROVER_WEB_VIEW_TOKEN", "peek")
        .status(1)
        .stderr_has("error: DROVER_WEB_VIEW_TOKEN has 4 characters")
        .run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_deployed_rolled_back_and_failed_generations() {
    let one = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;
    let c = cluster("w-timeline", "", &[("app", one)]);
    c.drover(&["up", "--yes"]).run();
    c.set_job("app", &one.replace("busybox:1", "busybox:2"));
    c.drover(&["up", "--yes"]).run();
    c.drover(&["rollback", "app", "--yes"]).run();
    // A new generation that cannot start: kept aside as `.failed`.
    c.set_job(
        "app",
        &one.replace("[\"sleep\", \"3600\"]", "[\"/no/such/binary\"]"),
    );
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has("FAILED")
        .run();
    let web = Web::start(c.path()).await;
    let v = web.bearer("/api/jobs/app").await.json();
    let timeline = v["timeline"].as_array().expect("a timeline").clone();
    let kinds: Vec<(String, String)> = timeline
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["image"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("failed".to_string(), "drover-test/busybox:1".to_string()),
            (
                "rolled back".to_string(),
                "drover-test/busybox:2".to_string()
            ),
            ("deployed".to_string(), "drover-test/busybox:1".to_string()),
        ],
        "{timeline:#?}"
    );
    assert_eq!(timeline[0]["tasks"], json!(["h1/0"]));
    assert!(
        timeline[0]["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("exited (code 127)")),
        "{timeline:#?}"
    );
    assert_eq!(timeline[2]["command"], "up");
    web.stop().await;
}
