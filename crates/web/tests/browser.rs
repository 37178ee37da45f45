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

    /// Runs `script` as an async WebDriver script: it calls `arguments[0]` with its result.
    async fn js_async(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/async",
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

    /// Opens a new tab and switches to it; returns its handle.
    async fn new_tab(&self) -> String {
        let v = self
            .session("POST", "/window/new", json!({"type": "tab"}))
            .await;
        let handle = v["handle"].as_str().expect("a tab").to_string();
        self.switch(&handle).await;
        handle
    }

    async fn switch(&self, handle: &str) {
        self.session("POST", "/window", json!({ "handle": handle }))
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
    // Not a timing measurement (the machine may be busy): a view that drew
    // every row would take seconds per scroll, a virtual one a few ms.
    assert!(
        big["p95"].as_f64().is_some_and(|ms| ms < 100.0),
        "a scroll draws in a few frames at most: {big}"
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
    assert!(
        web.audited("shell.close")
            .iter()
            .any(|r| r["exit_code"] == 7),
        "{:?}",
        web.audit()
    );
    web.stop().await;
}

/// `drover web` itself, started as an operator would (with `--audit`),
/// its login address read from what it prints.
struct DroverWeb {
    child: Child,
    /// `http://127.0.0.1:PORT/?code=…`.
    login: String,
    base: String,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DroverWeb {
    fn start(dir: &std::path::Path, audit: &std::path::Path) -> DroverWeb {
        use std::io::BufRead;
        let mut child = Command::new(drover_testkit::binary::drover())
            .args([
                "-C",
                &dir.to_string_lossy(),
                "web",
                "--listen",
                "127.0.0.1:0",
                "--audit",
            ])
            .arg(audit)
            .env("DROVER_WEB_TOKEN", TOKEN)
            .env("DROVER_WEB_VIEW_TOKEN", VIEW_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drover web starts");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&lines);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("drover web: {line}");
                if let Some(url) = line.split_whitespace().find(|w| w.contains("?code=")) {
                    let _ = tx.send(url.to_string());
                }
                if let Ok(mut l) = kept.lock() {
                    l.push(line);
                }
            }
        });
        let login = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("drover web prints a login address");
        let base = login
            .split("?code=")
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        DroverWeb {
            child,
            login,
            base,
            stderr: lines,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Two SIGTERMs at once, as an impatient init system sends them.
    fn stop_twice(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.stderr()
    }
}

impl Drop for DroverWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// The page's viewport: `width`×`height`, as a phone (touch, mobile
    /// layout) when `mobile`, through the DevTools protocol.
    async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        let v = self
            .call(
                "POST",
                &format!("/session/{}/goog/cdp/execute", self.session),
                Some(
                    json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
                    }}),
                ),
            )
            .await
            .expect("devtools answers");
        assert!(v["value"].get("error").is_none(), "{v}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Wider than the viewport (a page a phone must scroll sideways)?
    async fn overflows(&self) -> Value {
        self.js("return {scroll: document.documentElement.scrollWidth, view: window.innerWidth}")
            .await
    }
}

const CHATTY_TEN: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1", "h2"]
instances = 5
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"line $i of $DROVER_HOST/$DROVER_TASK\"; sleep 0.3; done"]
stop_timeout = "1s"
restart = "no"
"#;

const TRIO: &str = r#"
image = "drover-test/busybox:1"
hosts = ["h1"]
instances = 3
command = ["sh", "-c", "while true; do echo working; dd if=/dev/zero bs=64k count=200 2>/dev/null | md5sum >/dev/null; sleep 1; done"]
stop_timeout = "1s"
restart = "no"
"#;

/// The number of log lines a task page holds, and how old the newest is (ms).
const LINES: &str = "const d = window.drover && window.drover.logs; if (!d) return null; \
    const n = d.store.length; if (!n) return {n: 0, age: null}; \
    return {n, age: Date.now() - d.store.get(n - 1).time};";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_task_pages_stream_at_once_and_an_operator_restarts_a_job_from_the_page() {
    let c = cluster("w-tabs", "", &[("chatty", CHATTY_TEN), ("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    let audit_dir = tempfile::tempdir().expect("a directory for the audit file");
    let audit = audit_dir.path().join("audit.jsonl");
    let web = DroverWeb::start(c.path(), &audit);
    assert!(
        !web.login.contains(TOKEN),
        "the token is never in the address"
    );
    let browser = Browser::start().await;
    let base = web.base.clone();

    // The printed address signs in once; the code leaves the address bar.
    browser.go(&web.login).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('tr.task .pill.st-ok').length >= 13",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        browser.js("return location.href").await,
        json!(format!("{base}/"))
    );
    assert_eq!(
        browser
            .js("return document.querySelector('.role').textContent")
            .await,
        json!("operator")
    );
    browser
        .wait_for(
            "both jobs in sync",
            "const s = [...document.querySelectorAll('a.sync')].map(a => a.textContent); return s.length === 2 && s.every(t => t === 'in sync')",
            Duration::from_secs(20),
        )
        .await;
    // Ten task pages at once, each in its own tab.
    let mut tabs = Vec::new();
    for host in ["h1", "h2"] {
        for task in 0..5 {
            let handle = browser.new_tab().await;
            browser
                .go(&format!("{base}/jobs/chatty/tasks/{host}/{task}"))
                .await;
            tabs.push((handle, format!("{host}/{task}")));
        }
    }
    for (handle, task) in &tabs {
        browser.switch(handle).await;
        browser
            .wait_for(
                &format!("lines in {task}"),
                &format!("const l = (function(){{ {LINES} }})(); return !!l && l.n > 0 && document.querySelector('.logview').innerText.includes('of {task}')"),
                Duration::from_secs(30),
            )
            .await;
    }
    let mut before = Vec::new();
    for (handle, _) in &tabs {
        browser.switch(handle).await;
        before.push(
            browser
                .js(&format!("return (function(){{ {LINES} }})()"))
                .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for ((handle, task), was) in tabs.iter().zip(&before) {
        browser.switch(handle).await;
        let now = browser
            .js(&format!("return (function(){{ {LINES} }})()"))
            .await;
        assert!(
            now["n"].as_u64() > was["n"].as_u64(),
            "{task} received new lines within 2 s: {was} then {now}"
        );
        assert!(
            now["age"].as_f64().is_some_and(|ms| ms < 2000.0),
            "{task}'s newest line is under 2 s old: {now}"
        );
        let state = browser
            .js("return document.querySelector('.link').className")
            .await;
        assert_eq!(state, json!("link live"), "{task}");
    }
    eprintln!("ten task pages: {before:?}");
    let task_tab = tabs[0].0.clone();

    // A shell, from one of them.
    browser.switch(&task_tab).await;
    browser
        .go(&format!("{base}/jobs/chatty/tasks/h1/0/shell"))
        .await;
    browser
        .wait_for(
            "the shell",
            "const p = document.querySelector('.page-head .pill'); return !!p && p.textContent === 'connected'",
            Duration::from_secs(20),
        )
        .await;
    browser
        .type_into(
            ".xterm-helper-textarea",
            "echo drover-$((6*7)); exit 7\u{E007}",
        )
        .await;
    browser
        .wait_for(
            "the shell's end",
            "const b = document.querySelector('.shell-end'); return !!b && !b.hidden && b.textContent.includes('exited with code 7')",
            Duration::from_secs(20),
        )
        .await;

    // The job page: restart, shown as a plan first, then confirmed.
    let names = ["w-tabs.trio.h1.0", "w-tabs.trio.h1.1", "w-tabs.trio.h1.2"];
    let started = |c: &drover_testkit::hosts::Cluster| -> Vec<String> {
        names
            .iter()
            .map(|n| c.inspect("h1", n, "{{.State.StartedAt}}"))
            .collect()
    };
    let before = started(&c);
    browser.go(&format!("{base}/jobs/trio")).await;
    browser
        .wait_for(
            "the job's tasks",
            "return document.querySelectorAll('tr.task .pill.st-ok').length === 3",
            Duration::from_secs(20),
        )
        .await;
    browser.viewport(1400, 900, false).await;
    browser.click("button.action[data-action='restart']").await;
    browser
        .wait_for(
            "the plan",
            "const d = document.querySelector('.dialog pre.plan'); return !!d && d.textContent.includes('restart') && !!document.querySelector('.dialog .confirm')",
            Duration::from_secs(20),
        )
        .await;
    let plan = browser
        .js("return document.querySelector('.dialog pre.plan').textContent")
        .await;
    assert!(
        plan.as_str()
            .is_some_and(|p| p.lines().filter(|l| l.starts_with("> restart")).count() == 3),
        "a step per task: {plan}"
    );
    browser.screenshot("plan-1400.png").await;
    assert_eq!(
        before,
        started(&c),
        "nothing restarts before the confirmation"
    );
    browser.click(".dialog .confirm").await;
    // While it runs, each task's progress shows; start times change one at a time.
    let mut seen_changed: Vec<usize> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = started(&c);
        let changed = now.iter().zip(&before).filter(|(a, b)| a != b).count();
        if seen_changed.last() != Some(&changed) {
            seen_changed.push(changed);
        }
        let finished = browser
            .js("const p = document.querySelector('.change .change-head .pill'); return !!p && p.textContent")
            .await;
        if finished == json!("succeeded") && changed == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restart finishes: {finished}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        seen_changed.windows(2).all(|w| w[1] == w[0] + 1) && seen_changed.last() == Some(&3),
        "one batch at a time: {seen_changed:?}"
    );
    let rows = browser
        .js("return [...document.querySelectorAll('.change .progress-row')].map(r => [r.dataset.task, r.querySelector('.step').textContent])")
        .await;
    let rows = rows.as_array().expect("progress rows").clone();
    assert_eq!(rows.len(), 3, "a row per task: {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r[1].as_str().is_some_and(|s| s.starts_with("done"))),
        "{rows:?}"
    );
    let after = started(&c);
    let mut times: Vec<_> = after
        .iter()
        .map(|t| drover_plan::time::parse(t).expect("a time"))
        .collect();
    times.sort();
    for pair in times.windows(2) {
        assert!(
            drover_plan::time::since(pair[1], pair[0]) >= Duration::from_millis(1900),
            "each start waited for the one before to pass its gate: {after:?}"
        );
    }
    // The engines' own account shows too (the page's activity list).
    browser
        .wait_for(
            "the activity",
            "return document.querySelectorAll('ol.activity li.act-start').length >= 3",
            Duration::from_secs(10),
        )
        .await;
    browser
        .wait_for(
            "the timeline",
            "return document.querySelectorAll('ol.timeline li.tl-deployed').length >= 1",
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot("job-1400.png").await;

    // Another site's page cannot make it act: the session cookie is not
    // sent, and the server answers no change.
    browser.go("data:text/html,<p>another site</p>").await;
    let foreign = browser
        .js_async(&format!(
            "const done = arguments[0]; fetch('{base}/api/jobs/trio/restart', {{method: 'POST', mode: 'no-cors', credentials: 'include', body: '{{}}'}}).then(() => done('sent'), e => done(String(e)));"
        ))
        .await;
    eprintln!("a POST from another origin: {foreign}");

    // The overview and a task page at desktop and phone widths.
    browser.go(&format!("{base}/")).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('tr.task').length >= 13",
            Duration::from_secs(20),
        )
        .await;
    browser.screenshot("overview-1400.png").await;
    browser.go(&format!("{base}/jobs/trio/tasks/h1/1")).await;
    browser
        .wait_for(
            "the charts",
            "const v = document.querySelector('.chart-mem .chart-value'); return !!v && /iB$/.test(v.textContent)",
            Duration::from_secs(40),
        )
        .await;
    let glance = browser
        .js("return document.querySelector('.task-glance').innerText")
        .await;
    assert!(
        glance
            .as_str()
            .is_some_and(|g| g.contains("restarts") && g.contains("last exit code")),
        "{glance}"
    );
    browser.screenshot("task-1400.png").await;
    browser.viewport(390, 844, true).await;
    assert_eq!(browser.js("return window.innerWidth").await, json!(390));
    let o = browser.overflows().await;
    assert!(
        o["scroll"].as_u64() <= o["view"].as_u64(),
        "the task page fits a phone: {o}"
    );
    let crumbs = browser
        .js("const a = document.querySelector('.crumbs').getBoundingClientRect(); const b = document.querySelector('.top .right').getBoundingClientRect(); return {crumbs: a.right, live: b.left, top: a.top, ltop: b.top}")
        .await;
    assert!(
        crumbs["crumbs"].as_f64() <= crumbs["live"].as_f64(),
        "the breadcrumb stops before the live indicator: {crumbs}"
    );
    browser.screenshot("task-390.png").await;
    browser.go(&format!("{base}/")).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('tr.task').length >= 13",
            Duration::from_secs(20),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let o = browser.overflows().await;
    assert!(
        o["scroll"].as_u64() <= o["view"].as_u64(),
        "no sideways scrolling on a phone: {o}"
    );
    let cards = browser
        .js("const r = document.querySelector('tr.task'); return getComputedStyle(r).display")
        .await;
    assert_eq!(cards, json!("flex"), "a task is a card at phone width");
    browser.screenshot("overview-390.png").await;
    browser.go(&format!("{base}/jobs/trio")).await;
    browser
        .wait_for("the job page", "return document.querySelectorAll('tr.task').length === 3 && document.querySelectorAll('ol.timeline li').length > 0", Duration::from_secs(20))
        .await;
    let o = browser.overflows().await;
    assert!(
        o["scroll"].as_u64() <= o["view"].as_u64(),
        "the job page fits a phone: {o}"
    );
    browser.screenshot("job-390.png").await;
    browser.quit().await;

    // The audit file: the login, the shell, the action; and no second action.
    let stderr = web.stop_twice();
    let record: Vec<Value> = std::fs::read_to_string(&audit)
        .expect("the audit file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON lines ({e}): {l}")))
        .collect();
    let of = |event: &str| {
        record
            .iter()
            .filter(|r| r["event"] == event)
            .cloned()
            .collect::<Vec<_>>()
    };
    let login = &of("login")[0];
    assert_eq!(
        (
            login["role"].clone(),
            login["via"].clone(),
            login["address"].clone()
        ),
        (json!("operator"), json!("code"), json!("127.0.0.1"))
    );
    let session = login["session"].clone();
    let open = &of("shell.open")[0];
    let close = &of("shell.close")[0];
    assert_eq!(open["task"], "chatty h1/0");
    assert_eq!(open["by"]["session"], session);
    assert_eq!(close["exit_code"], 7);
    assert!(close["start"].is_string() && close["end"].is_string());
    let starts = of("action.start");
    assert_eq!(
        starts.len(),
        1,
        "one action, none from the other site: {record:#?}"
    );
    assert_eq!(starts[0]["action"], "restart");
    assert_eq!(starts[0]["by"]["session"], session);
    assert_eq!(starts[0]["plan"], "restart h1/0, h1/1, h1/2");
    assert_eq!(of("action.end")[0]["result"], "succeeded");
    assert!(!std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains(TOKEN));
    // Two SIGTERMs: it stops, and says nothing of repairs (nothing was changing).
    assert!(stderr.contains("stopping"), "{stderr}");
    assert!(!stderr.contains("repair"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_the_overview_but_no_shell_and_no_action() {
    let c = cluster("w-look", "", &[("trio", TRIO)]);
    c.drover(&["up", "--yes"]).run();
    let web = Web::start(c.path()).await;
    let browser = Browser::start().await;
    let base = format!("http://{}", web.addr);
    // Signed in with the form: the token goes in a POST body, never an address.
    browser.go(&format!("{base}/jobs/trio")).await;
    browser.type_into("input[name='token']", VIEW_TOKEN).await;
    browser.click("form[action='/login'] button").await;
    browser
        .wait_for(
            "the job page",
            "return document.querySelectorAll('tr.task .pill.st-ok').length === 3",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        browser.js("return location.pathname").await,
        json!("/jobs/trio")
    );
    assert_eq!(
        browser
            .js("return document.querySelector('.role').textContent")
            .await,
        json!("viewer")
    );
    let buttons = browser
        .js("return document.querySelectorAll('button.action').length")
        .await;
    assert_eq!(buttons, json!(0), "no action offered");
    let shells = browser
        .js("return document.querySelectorAll('a.act[href$=\"/shell\"]').length")
        .await;
    assert_eq!(shells, json!(0), "no shell offered");
    // Asked anyway, from the page itself: 403, for every action and the shell.
    let statuses = browser
        .js_async(
            "const done = arguments[0]; \
             Promise.all(['restart', 'stop', 'start', 'rollback', 'up'].map(a => \
               fetch('/api/jobs/trio/' + a, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'}).then(r => r.status))) \
             .then(done, e => done(String(e)));",
        )
        .await;
    assert_eq!(statuses, json!([403, 403, 403, 403, 403]));
    let plan = browser
        .js_async("const done = arguments[0]; fetch('/api/jobs/trio/restart/plan').then(r => done(r.status), e => done(String(e)));")
        .await;
    assert_eq!(plan, json!(403));
    let socket = browser
        .js_async(
            "const done = arguments[0]; const ws = new WebSocket('ws://' + location.host + '/api/jobs/trio/tasks/h1/0/shell'); \
             ws.onopen = () => done('open'); ws.onclose = e => done('closed ' + e.code);",
        )
        .await;
    assert_eq!(socket, json!("closed 1006"), "the upgrade was refused");
    let refused = web.audited("shell.refused");
    assert!(
        refused.iter().any(|r| r["by"]["role"] == "viewer"
            && r["why"]
                .as_str()
                .is_some_and(|w| w.starts_with("a viewer opens no shell"))),
        "{refused:?}"
    );
    browser
        .go(&format!("{base}/jobs/trio/tasks/h1/0/shell"))
        .await;
    browser
        .wait_for(
            "the shell page says why",
            "const b = document.querySelector('.shell-end'); return !!b && !b.hidden && b.textContent.startsWith('a viewer opens no shell')",
            Duration::from_secs(10),
        )
        .await;
    // The overview, everything visible.
    browser.go(&format!("{base}/")).await;
    browser
        .wait_for(
            "the overview",
            "return document.querySelectorAll('tr.task .pill.st-ok').length === 3 && document.querySelector('a.sync').textContent === 'in sync'",
            Duration::from_secs(20),
        )
        .await;
    assert!(web.audited("action.start").is_empty());
    assert_eq!(web.audited("login")[0]["role"], "viewer");
    browser.quit().await;
    web.stop().await;
}
