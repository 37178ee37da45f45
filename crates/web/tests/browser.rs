//! A real browser on the dashboard: headless Chromium, driven through
//! chromedriver's WebDriver HTTP API, opens it with the token, sees the
//! jobs, reads a task's live logs (markup from the container stays text),
//! opens a shell, runs a command, resizes the window and sees the
//! terminal's size follow. It saves screenshots of the overview, the logs
//! and the shell under `target/web-screenshots/` for a person to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/install-deps`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use support::*;

const CHATTY: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1", "h2"]
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"hello from $DROVER_HOST/$DROVER_TASK <script>window.__pwned=1</script> $i\"; echo \"warning $i\" >&2; sleep 0.2; done"]
stop_timeout = "1s"
restart = "no"
"#;

const WORKER: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
instances = 2
command = ["sleep", "3600"]
stop_timeout = "1s"
restart = "no"
"#;

/// chromedriver and the browser session it drives; both end on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A test that failed half-way never ended its session: end the
        // browser it started (found by its own profile directory).
        let mark = format!("--user-data-dir={}", self._profile.path().display());
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mark) {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
}

impl Browser {
    async fn start() -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("port").port()
        };
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (install Debian's chromium-driver: scripts/install-deps)");
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let ready = eventually_async(Duration::from_secs(15), || async {
            let r = browser.call("GET", "/status", None).await;
            r.is_some_and(|v| v["value"]["ready"] == true)
        })
        .await;
        assert!(ready, "chromedriver answers");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1360,860",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let v = browser
            .call("POST", "/session", Some(caps))
            .await
            .expect("a browser session");
        browser.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        drop(stream);
        let r = request(
            addr,
            method,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await;
        serde_json::from_str(&r.body).ok()
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        let full = format!("/session/{}{path}", self.session);
        let body = if method == "GET" || method == "DELETE" {
            None
        } else {
            Some(body)
        };
        let v = self
            .call(method, &full, body)
            .await
            .expect("webdriver answers");
        if v["value"].get("error").is_some() {
            panic!("webdriver {method} {path}: {v}");
        }
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.session("POST", "/url", json!({ "url": url })).await;
    }

    async fn js(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .session(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.session("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Waits until `script` returns true.
    async fn wait_for(&self, what: &str, script: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let text = self.js("return document.body.innerText").await;
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let v = self.session("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 png"))
            .expect("a png");
        let path = artefacts().join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    async fn resize(&self, width: u32, height: u32) {
        self.session(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    async fn quit(&self) {
        let _ = self
            .call("DELETE", &format!("/session/{}", self.session), None)
            .await;
    }
}

async fn eventually_async<F, Fut>(wait: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The terminal's text and size, from the page's xterm.
const TERMINAL: &str = "const t = window.drover && window.drover.term; if (!t) return null; \
    const b = t.buffer.active; const lines = []; \
    for (let i = 0; i < b.length; i++) { const l = b.getLine(i); if (l) lines.push(l.translateToString(true)); } \
    return {text: lines.join('\\n'), rows: t.rows, cols: t.cols};";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_jobs_logs_and_a_working_shell() {
    let c = cluster("w-browser", "", &[("chatty", CHATTY), ("worker", WORKER)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let browser = Browser::start().await;
    let base = format!("http://{}", web.addr);

    // Opened with the token: it leaves the address, the jobs show.
    browser.go(&format!("{base}/?token={TOKEN}")).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('tr.task .pill.st-ok').length >= 4",
            Duration::from_secs(20),
        )
        .await;
    let url = browser.js("return location.href").await;
    assert_eq!(url, json!(format!("{base}/")), "the token left the address");
    let text = browser.js("return document.body.innerText").await;
    let text = text.as_str().unwrap_or_default();
    for want in [
        "chatty",
        "worker",
        "h1",
        "h2",
        "running",
        "4/4 tasks running",
    ] {
        assert!(text.contains(want), "the overview shows {want}:\n{text}");
    }
    // Memory and CPU arrive from the sampler.
    browser
        .wait_for(
            "usage",
            "const cells = [...document.querySelectorAll('td.c-memory')]; return cells.length >= 4 && cells.every(td => /iB$/.test(td.textContent))",
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot("overview.png").await;

    // A task's logs: a line the container wrote, markup shown as text.
    browser.click("a[href='/jobs/chatty/tasks/h1/0']").await;
    browser
        .wait_for(
            "a log line",
            "const v = document.querySelector('.logview'); return !!v && v.innerText.includes('hello from h1/0 <script>window.__pwned=1</script>')",
            Duration::from_secs(20),
        )
        .await;
    let pwned = browser
        .js("return window.__pwned === undefined && document.querySelectorAll('.logview script').length === 0")
        .await;
    assert_eq!(
        pwned,
        Value::Bool(true),
        "a container's <script> is text, not code"
    );
    browser
        .wait_for(
            "stderr lines marked",
            "return document.querySelectorAll('.log-row.err').length > 0",
            Duration::from_secs(10),
        )
        .await;
    // Filtered on the server: only stderr.
    browser
        .js("const s = document.querySelectorAll('.toolbar select')[1]; s.value = 'stderr'; s.dispatchEvent(new Event('change')); return true")
        .await;
    browser
        .wait_for(
            "only stderr",
            "const rows = [...document.querySelectorAll('.log-row:not([hidden]) .log-text')].map(r => r.textContent); return rows.length > 3 && rows.every(t => t.startsWith('warning '))",
            Duration::from_secs(15),
        )
        .await;
    browser
        .js("const s = document.querySelectorAll('.toolbar select')[1]; s.value = ''; s.dispatchEvent(new Event('change')); return true")
        .await;
    browser
        .wait_for(
            "both streams again",
            "return document.querySelector('.logview').innerText.includes('hello from h1/0')",
            Duration::from_secs(15),
        )
        .await;
    browser.screenshot("logs.png").await;

    // A million lines: kept without DOM, and a scroll still draws in a frame.
    let big = browser
        .js(
            "const d = window.drover.logs; d.view.paused = true; \
             const t0 = performance.now(); \
             for (let i = 0; i < 1000000; i++) d.store.push(Date.now(), 'h1/0', i % 7 ? 0 : 1, 'synthetic line ' + i); \
             const push = performance.now() - t0; \
             d.view.paused = false; d.view.follow = false; d.view.refresh(); d.view.layout(); \
             const frames = []; \
             for (let k = 1; k <= 40; k++) { \
               const t = performance.now(); \
               d.view.el.scrollTop = d.view.el.scrollHeight * k / 41; d.view.draw(); \
               frames.push(performance.now() - t); } \
             frames.sort((a, b) => a - b); \
             return {push, length: d.store.length, rows: document.querySelectorAll('.log-row').length, \
                     p95: frames[Math.floor(frames.length * 0.95)], \
                     shown: [...document.querySelectorAll('.log-row:not([hidden]) .log-text')].map(r => r.textContent).slice(0, 3)};",
        )
        .await;
    eprintln!("a million lines in the log view: {big}");
    assert!(
        big["length"].as_u64().is_some_and(|n| n > 1_000_000),
        "{big}"
    );
    assert!(
        big["rows"].as_u64().is_some_and(|n| n < 200),
        "only the visible rows exist: {big}"
    );
    assert!(
        big["p95"].as_f64().is_some_and(|ms| ms < 16.0),
        "a scroll draws within a frame: {big}"
    );
    assert!(
        big["shown"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("synthetic line ")),
        "the view shows the lines scrolled to: {big}"
    );
    browser.go(&format!("{base}/jobs/chatty/tasks/h1/0")).await;
    browser
        .wait_for(
            "the task page again",
            "const v = document.querySelector('.logview'); return !!v && v.innerText.includes('hello from h1/0')",
            Duration::from_secs(20),
        )
        .await;

    // The shell: a command runs, and the terminal follows the window's size.
    browser
        .click("a[href='/jobs/chatty/tasks/h1/0/shell']")
        .await;
    browser
        .wait_for(
            "the shell",
            "const p = document.querySelector('.page-head .pill'); return !!p && p.textContent === 'connected'",
            Duration::from_secs(20),
        )
        .await;
    browser
        .type_into(".xterm-helper-textarea", "echo drover-$((6*7))\u{E007}")
        .await;
    browser
        .wait_for(
            "drover-42",
            &format!("const t = (function(){{ {TERMINAL} }})(); return !!t && t.text.split('\\n').some(l => l.trim() === 'drover-42')"),
            Duration::from_secs(15),
        )
        .await;
    let stty = |before: &str| {
        format!(
            "const t = (function(){{ {TERMINAL} }})(); if (!t) return false; \
             const want = t.rows + ' ' + t.cols; const lines = t.text.split('\\n').map(l => l.trim()); \
             return lines.filter(l => l === want).length > 0 && want !== '{before}'"
        )
    };
    browser
        .type_into(".xterm-helper-textarea", "stty size\u{E007}")
        .await;
    browser
        .wait_for("stty size", &stty(""), Duration::from_secs(15))
        .await;
    let first = browser
        .js(&format!("return (function(){{ {TERMINAL} }})()"))
        .await;
    let first_size = format!("{} {}", first["rows"], first["cols"]);
    browser.resize(980, 620).await;
    browser
        .wait_for(
            "the terminal to fit the smaller window",
            &format!("const t = (function(){{ {TERMINAL} }})(); return !!t && (t.rows + ' ' + t.cols) !== '{first_size}'"),
            Duration::from_secs(10),
        )
        .await;
    browser
        .type_into(".xterm-helper-textarea", "clear; stty size\u{E007}")
        .await;
    browser
        .wait_for(
            "stty size to follow",
            &stty(&first_size),
            Duration::from_secs(15),
        )
        .await;
    browser.resize(1360, 860).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser
        .type_into(
            ".xterm-helper-textarea",
            "echo drover-$((6*7)); ls /\u{E007}",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    browser.screenshot("shell.png").await;

    // Leaving the shell with `exit` says how it ended.
    browser
        .type_into(".xterm-helper-textarea", "exit 7\u{E007}")
        .await;
    browser
        .wait_for(
            "the reason",
            "const b = document.querySelector('.shell-end'); return !!b && !b.hidden && b.textContent.includes('exited with code 7')",
            Duration::from_secs(15),
        )
        .await;
    browser.quit().await;
    let log = web.log().join("\n");
    assert!(
        log.contains("shell close") && log.contains("exit=7"),
        "{log}"
    );
    web.stop().await;
}
