//! Remote hosts for real, against the hosts `scripts/remote-hosts` starts:
//! h3 behind an sshd (`ssh://`, and a port that refuses unix-socket
//! forwarding, for the `docker system dial-stdio` fallback) and h4 serving
//! the Engine API with mutual TLS (`tcp://` with `tls = {…}`).
//!
//! Each test has its own environment name and its own `TMPDIR`, where
//! drover keeps its SSH sockets: an ssh process whose command line names
//! that directory belongs to that test's drover, however many tests run.
//! The two tests that count h3's SSH logins, and the one that stops h4's
//! daemon, hold that host alone ([`alone`]); the others share it.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Once, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use drover_engine::{LogOptions, Streams};
use drover_testkit::hosts::{Hosts, RemoteHosts};
use futures::StreamExt;
use serde_json::Value;
use support::{Drover, BIN};
use tokio::io::AsyncWriteExt;

const IMAGE1: &str = "drover-test/busybox:1";

static H3: RwLock<()> = RwLock::new(());
static H4: RwLock<()> = RwLock::new(());

/// Uses the host alongside other tests.
fn shared(host: &'static RwLock<()>) -> RwLockReadGuard<'static, ()> {
    host.read().unwrap_or_else(|e| e.into_inner())
}

/// Uses the host with no other test of this file touching it.
fn alone(host: &'static RwLock<()>) -> RwLockWriteGuard<'static, ()> {
    host.write().unwrap_or_else(|e| e.into_inner())
}

fn sleeper(hosts: &str, instances: u32, seconds: u32) -> String {
    format!(
        r#"
        image = "{IMAGE1}"
        hosts = [{hosts}]
        instances = {instances}
        command = ["sleep", "{seconds}"]
        stop_timeout = "1s"
        "#
    )
}

/// `[hosts.NAME]` with an address.
fn host(name: &str, address: &str) -> String {
    format!("[hosts.{name}]\ndocker = \"{address}\"\n")
}

/// `[hosts.NAME]` with an address and TLS files.
fn tls_host(name: &str, address: &str, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "[hosts.{name}]\ndocker = \"{address}\"\ntls = {{ ca = \"{ca}\", cert = \"{cert}\", key = \"{key}\" }}\n"
    )
}

/// A test environment on the remote hosts (and h1 where a test names it),
/// whose containers are removed on drop.
struct Remote {
    dir: tempfile::TempDir,
    /// drover's `TMPDIR`: its SSH socket directories, and nothing else.
    tmp: tempfile::TempDir,
    env: String,
    hosts: RemoteHosts,
    engines: Vec<&'static str>,
}

impl Remote {
    /// `hosts` is the `[hosts.…]` part of drover.toml; `engines` the test
    /// hosts it uses ("h1", "h3", "h4"), cleaned before and after.
    fn new(env: &str, hosts: &str, engines: &[&'static str]) -> Remote {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
        std::fs::write(
            dir.path().join("drover.toml"),
            format!("name = \"{env}\"\n\n{hosts}"),
        )
        .expect("write drover.toml");
        let tmp = tempfile::Builder::new()
            .prefix("dsh")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let remote = Remote {
            dir,
            tmp,
            env: env.to_string(),
            hosts: RemoteHosts::get(),
            engines: engines.to_vec(),
        };
        remote.cleanup();
        remote
    }

    fn job(self, name: &str, toml: &str) -> Remote {
        self.set_job(name, toml);
        self
    }

    fn set_job(&self, name: &str, toml: &str) {
        drover_testkit::tree(self.dir.path(), &[(&format!("jobs/{name}.toml"), toml)]);
    }

    /// drover with the remote hosts' ssh config and this test's `TMPDIR`.
    fn drover(&self, args: &[&str]) -> Drover {
        Drover::new(BIN, self.dir.path(), args)
            .env("DROVER_SSH_CONFIG", &self.hosts.ssh_config)
            .env("TMPDIR", &self.tmp.path().to_string_lossy())
    }

    /// `drover ARGS` started in the background, stdout and stderr piped.
    fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.drover(args).command();
        cmd.stdin(Stdio::null());
        cmd.spawn().expect("run drover")
    }

    fn socket(&self, engine: &str) -> String {
        match engine {
            "h1" => Hosts::get().h1,
            other => self.hosts.socket(other).to_string(),
        }
    }

    #[track_caller]
    fn docker(&self, engine: &str, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.socket(engine))
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?} on {engine} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Names of this environment's containers on `engine`, sorted.
    fn containers(&self, engine: &str) -> Vec<String> {
        let filter = format!("label=drover.env={}", self.env);
        let out = self.docker(
            engine,
            &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        );
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    #[track_caller]
    fn state(&self, engine: &str, name: &str) -> String {
        self.docker(engine, &["inspect", "-f", "{{.State.Status}}", name])
    }

    /// Live processes whose command line names this test's `TMPDIR`:
    /// drover's ssh processes.
    fn ssh_processes(&self) -> Vec<String> {
        processes_naming(&self.tmp.path().to_string_lossy())
    }

    /// drover's SSH socket directories in this test's `TMPDIR`.
    fn socket_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = std::fs::read_dir(self.tmp.path())
            .expect("read TMPDIR")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("drover-ssh-"))
            .collect();
        dirs.sort();
        dirs
    }

    #[track_caller]
    fn assert_no_ssh_left(&self) {
        let left = self.ssh_processes();
        assert!(left.is_empty(), "ssh processes left behind: {left:#?}");
        let dirs = self.socket_dirs();
        assert!(dirs.is_empty(), "socket directories left behind: {dirs:?}");
    }

    fn cleanup(&self) {
        let filter = format!("label=drover.env={}", self.env);
        for engine in &self.engines {
            let out = Command::new("docker")
                .arg("-H")
                .arg(self.socket(engine))
                .args(["ps", "-aq", "--filter", &filter])
                .output();
            let Ok(out) = out else { continue };
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .arg("-H")
                    .arg(self.socket(engine))
                    .args(["rm", "-f", "-v", id])
                    .output();
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Command lines of live processes other than this one that contain `needle`.
fn processes_naming(needle: &str) -> Vec<String> {
    let own = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
            continue;
        }
        // A zombie's command line is empty: only processes still running match.
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            found.push(format!("{pid}: {}", line.trim()));
        }
    }
    found
}

/// Live (not zombie) children of `parent`.
fn children_of(parent: i32) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // PID (COMM) STATE PPID …; COMM may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) && state != "Z" {
            count += 1;
        }
    }
    count
}

/// The most `probe` returned while it was sampled every few milliseconds.
struct Peak {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Peak {
    fn sample(probe: impl Fn() -> usize + Send + 'static) -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::SeqCst) {
                peak = peak.max(probe());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(probe())
        });
        Peak { stop, thread }
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("sampler")
    }
}

/// What sshd logged from `offset` on.
fn log_since(path: &std::path::Path, offset: usize) -> String {
    let text = std::fs::read(path).expect("read the sshd log");
    String::from_utf8_lossy(&text[offset.min(text.len())..]).into_owned()
}

fn log_len(path: &std::path::Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize)
}

/// Waits for `child` to exit, for at most `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for drover") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("drover did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines of `child`'s stdout as they come, each with when it came.
fn lines_of(child: &mut Child) -> mpsc::Receiver<(Instant, String)> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    receive
}

fn interrupt(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to a child this test started and has not reaped.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

/// The tasks of `status --json`, checked to run with memory and CPU read.
#[track_caller]
fn assert_all_running_with_usage(status: &Value, tasks: usize) {
    let list = status.as_array().expect("status --json is an array");
    assert_eq!(list.len(), tasks, "{status:#}");
    for task in list {
        assert_eq!(task["state"], "running", "{task:#}");
        assert!(
            task["memory_bytes"].as_u64().is_some_and(|m| m > 0),
            "memory read: {task:#}"
        );
        assert!(task["cpu_percent"].as_f64().is_some(), "CPU read: {task:#}");
    }
}

// ---------------------------------------------------------------------------
// SSH

#[test]
fn up_diff_status_and_down_work_over_ssh() {
    let _h3 = shared(&H3);
    let hosts = RemoteHosts::get();
    let r = Remote::new("r-ssh", &host("h3", &hosts.ssh), &["h3"])
        .job("web", &sleeper("\"h3\"", 2, 3600));
    r.drover(&["up", "--yes"])
        .stdout_has("Plan: 2 to create; 0 task(s) unchanged.")
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert_eq!(r.containers("h3"), ["r-ssh.web.h3.0", "r-ssh.web.h3.1"]);
    assert_eq!(r.state("h3", "r-ssh.web.h3.0"), "running");
    r.assert_no_ssh_left();

    r.drover(&["diff"])
        .stdout("No changes: 2 task(s) as specified.\n")
        .run();
    let status = r.drover(&["status", "--json"]).run();
    assert_all_running_with_usage(&status.json(), 2);
    r.assert_no_ssh_left();

    r.drover(&["down", "web", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert!(r.containers("h3").is_empty());
    r.assert_no_ssh_left();
}

/// Counts sshd's connections while `drover ARGS` runs: the most it served
/// at once, and the logins its log records in that time.
fn logins_during(r: &Remote, args: &[&str]) -> (usize, usize, support::Output) {
    let log = r.hosts.sshd_log();
    let offset = log_len(&log);
    let sshd = r.hosts.sshd_pid;
    let peak = Peak::sample(move || children_of(sshd));
    let out = r.drover(args).run();
    let most = peak.finish();
    let logins = log_since(&log, offset)
        .matches("Accepted publickey for root")
        .count();
    (most, logins, out)
}

#[test]
fn one_command_opens_one_ssh_connection() {
    let _h3 = alone(&H3);
    let hosts = RemoteHosts::get();
    let r = Remote::new("r-one", &host("h3", &hosts.ssh), &["h3"])
        .job("web", &sleeper("\"h3\"", 6, 3600));
    let (most, logins, _) = logins_during(&r, &["up", "--yes"]);
    assert_eq!(
        (most, logins),
        (1, 1),
        "(connections at once, logins) of up"
    );

    // status: a list, then an inspect and a stats request per task, at once.
    let started = Instant::now();
    let (most, logins, status) = logins_during(&r, &["status", "--json"]);
    assert_all_running_with_usage(&status.json(), 6);
    assert_eq!(
        (most, logins),
        (1, 1),
        "(connections at once, logins) of status, which took {:?}",
        started.elapsed()
    );
    let (most, logins, _) = logins_during(&r, &["down", "web", "--yes"]);
    assert_eq!(
        (most, logins),
        (1, 1),
        "(connections at once, logins) of down"
    );
    r.assert_no_ssh_left();
}

#[test]
fn a_host_that_refuses_forwarding_is_served_through_dial_stdio() {
    let _h3 = alone(&H3);
    let hosts = RemoteHosts::get();
    let tasks = 10;
    let r = Remote::new("r-stdio", &host("h3", &hosts.ssh_nofwd), &["h3"])
        .job("web", &sleeper("\"h3\"", tasks, 3600));
    let log = hosts.sshd_log();
    let offset = log_len(&log);
    r.drover(&["up", "--yes"])
        .stdout_has("Done: 10 step(s) applied.")
        .run();
    assert_eq!(r.containers("h3").len(), 10);
    let said = log_since(&log, offset);
    assert_eq!(
        said.matches("refused streamlocal port forward").count(),
        1,
        "the forwarding was tried once and refused:\n{said}"
    );
    r.drover(&["diff"])
        .stdout("No changes: 10 task(s) as specified.\n")
        .run();

    // status asks for more at once than sshd's default MaxSessions (10)
    // allows on one connection: the sessions stay below it.
    let tmp = r.tmp.path().to_string_lossy().into_owned();
    let sessions = Peak::sample(move || {
        processes_naming(&tmp)
            .iter()
            .filter(|p| p.contains("dial-stdio"))
            .count()
    });
    let (most, logins, status) = logins_during(&r, &["status", "--json"]);
    let most_sessions = sessions.finish();
    assert_all_running_with_usage(&status.json(), 10);
    assert_eq!((most, logins), (1, 1), "(connections at once, logins)");
    assert!(
        (1..=8).contains(&most_sessions),
        "dial-stdio sessions at once: {most_sessions}"
    );

    r.drover(&["down", "web", "--yes"])
        .stdout_has("Done: 10 step(s) applied.")
        .run();
    assert!(r.containers("h3").is_empty());
    r.assert_no_ssh_left();
}

#[test]
fn an_ssh_login_that_fails_names_the_host_and_says_why() {
    let _h3 = shared(&H3);
    let hosts = RemoteHosts::get();
    let r = Remote::new("r-sshfail", &host("h3", &hosts.ssh), &["h3"])
        .job("web", &sleeper("\"h3\"", 1, 3600));
    let keys = r.tmp.path();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(keys.join("stranger"))
        .status()
        .expect("run ssh-keygen");
    assert!(made.success());
    std::fs::write(keys.join("no_known_hosts"), "").expect("write known_hosts");
    let config = |name: &str, key: &str, known_hosts: &str| {
        let path = keys.join(name);
        std::fs::write(
            &path,
            format!(
                "Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
            ),
        )
        .expect("write ssh config");
        path.to_string_lossy().into_owned()
    };
    let known_hosts = hosts.dir.join("ssh/known_hosts");
    let right_key = hosts.dir.join("ssh/id_ed25519");

    let wrong_key = config(
        "wrong-key",
        &keys.join("stranger").to_string_lossy(),
        &known_hosts.to_string_lossy(),
    );
    r.drover(&["status"])
        .env("DROVER_SSH_CONFIG", &wrong_key)
        .status(1)
        .stderr(&format!(
            "host h3 ({}) is unreachable: ssh: root@127.0.0.1: Permission denied (publickey). (drover runs ssh in batch mode: the key must be in ssh-agent, or an IdentityFile without a passphrase)\n",
            hosts.ssh
        ))
        .stdout_has("web h3/0  -          -      unreachable")
        .run();

    let unknown_host = config(
        "unknown-host",
        &right_key.to_string_lossy(),
        &keys.join("no_known_hosts").to_string_lossy(),
    );
    let port = hosts.ssh.rsplit(':').next().expect("port");
    r.drover(&["diff"])
        .env("DROVER_SSH_CONFIG", &unknown_host)
        .status(1)
        .stdout_has(&format!(
            "! host h3 ({}) is unreachable: ssh: host key verification failed: [127.0.0.1]:{port} is not in known_hosts (ssh to it once by hand to check and accept its key)\n",
            hosts.ssh
        ))
        .run();
    r.assert_no_ssh_left();
}

#[test]
fn a_host_where_no_engine_answers_says_what_was_tried() {
    let _h3 = shared(&H3);
    let hosts = RemoteHosts::get();
    let r = Remote::new("r-noengine", &host("h3", &hosts.ssh_nofwd), &["h3"])
        .job("web", &sleeper("\"h3\"", 1, 3600));
    // An `ssh` first on PATH whose `docker system dial-stdio` asks a socket
    // that does not exist: a host whose engine is not where docker looks.
    let bin = r.tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let wrapper = bin.join("ssh");
    std::fs::write(
        &wrapper,
        "#!/bin/bash\n\
         a=(\"$@\"); n=${#a[@]}\n\
         if ((n >= 3)) && [[ ${a[n-3]} == docker && ${a[n-2]} == system && ${a[n-1]} == dial-stdio ]]; then\n\
         \x20   a=(\"${a[@]:0:n-3}\" docker -H unix:///nonexistent.sock system dial-stdio)\n\
         fi\n\
         exec /usr/bin/ssh \"${a[@]}\"\n",
    )
    .expect("write the ssh wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    r.drover(&["status"])
        .env("PATH", &path)
        .status(1)
        .stderr(&format!(
            "host h3 ({}) is unreachable: the SSH connection works, but it reaches no Docker engine: the host refuses to forward /var/run/docker.sock, and `docker system dial-stdio` there failed: failed to open the raw stream connection: dial unix /nonexistent.sock: connect: no such file or directory\n",
            hosts.ssh_nofwd
        ))
        .run();
    r.assert_no_ssh_left();
}

#[test]
fn ctrl_c_leaves_no_ssh_process_behind() {
    let _h3 = shared(&H3);
    let hosts = RemoteHosts::get();
    // All tasks replaced in one batch, so the interrupted `up` is short.
    let job = |seconds: u32| format!("{}[update]\nparallel = 3\n", sleeper("\"h3\"", 3, seconds));
    let r = Remote::new("r-int", &host("h3", &hosts.ssh), &["h3"]).job("web", &job(3600));
    r.drover(&["up", "--yes"]).run();

    // Reading (status waits for usage samples): the first Ctrl-C ends drover at once.
    let mut status = r.spawn(&["status"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.ssh_processes().is_empty() {
        assert!(Instant::now() < deadline, "no ssh process appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&status);
    let exit = wait_for(&mut status, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(130), "status was still running");
    let left = r.ssh_processes();
    assert!(left.is_empty(), "after Ctrl-C: {left:#?}");
    // The next run removes what the interrupted one had no time to.
    r.drover(&["diff"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
    r.assert_no_ssh_left();

    // Changing: steps in flight finish first, over the same connection.
    r.set_job("web", &job(3601));
    let mut up = r.spawn(&["up", "--yes"]);
    let lines = lines_of(&mut up);
    let first = lines
        .iter()
        .find(|(_, line)| line.contains("web h3/"))
        .expect("a progress line");
    interrupt(&up);
    let exit = wait_for(&mut up, Duration::from_secs(60));
    let rest: Vec<String> = lines.iter().map(|(_, l)| l).collect();
    assert_eq!(exit.code(), Some(130), "after {first:?}: {rest:#?}");
    r.assert_no_ssh_left();
    r.drover(&["up", "--yes"]).run();
    r.drover(&["diff"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
    r.assert_no_ssh_left();
}

#[test]
fn a_stale_control_socket_is_replaced_and_its_master_stopped() {
    let _h3 = shared(&H3);
    let hosts = RemoteHosts::get();
    let r = Remote::new("r-stale", &host("h3", &hosts.ssh), &["h3"])
        .job("web", &sleeper("\"h3\"", 1, 3600));
    // A drover that died without cleaning up: its pid is gone, its master runs on.
    let mut gone = Command::new("true").spawn().expect("run true");
    let dead_pid = gone.id();
    gone.wait().expect("wait");
    let stale = r.tmp.path().join(format!("drover-ssh-{dead_pid}-0"));
    std::fs::create_dir(&stale).expect("stale dir");
    let port = hosts.ssh.rsplit(':').next().expect("port");
    let mut master = Command::new("ssh")
        .arg("-F")
        .arg(&hosts.ssh_config)
        .args(["-o", "ControlMaster=yes", "-N", "-p", port])
        .arg("-o")
        .arg(format!("ControlPath={}/m", stale.display()))
        .arg("root@127.0.0.1")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run ssh");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stale.join("m").exists() {
        assert!(Instant::now() < deadline, "the stale master did not start");
        std::thread::sleep(Duration::from_millis(10));
    }

    r.drover(&["diff"])
        .status(2)
        .stdout_has("+ create  web h3/0  (missing)")
        .run();
    let deadline = Instant::now() + Duration::from_secs(5);
    while master.try_wait().expect("wait for ssh").is_none() {
        if Instant::now() > deadline {
            let _ = master.kill();
            panic!("the stale master still runs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    r.assert_no_ssh_left();
}

// ---------------------------------------------------------------------------
// TLS

#[test]
fn up_diff_status_and_down_work_over_mutual_tls() {
    let _h4 = shared(&H4);
    let hosts = RemoteHosts::get();
    // Paths relative to the environment directory.
    let r = Remote::new(
        "r-tls",
        &tls_host(
            "h4",
            &hosts.tls,
            "certs/ca.pem",
            "certs/cert.pem",
            "certs/key.pem",
        ),
        &["h4"],
    )
    .job("web", &sleeper("\"h4\"", 2, 3600));
    let certs = r.dir.path().join("certs");
    std::fs::create_dir(&certs).expect("certs dir");
    for (from, to) in [
        (&hosts.tls_ca, "ca.pem"),
        (&hosts.tls_cert, "cert.pem"),
        (&hosts.tls_key, "key.pem"),
    ] {
        std::fs::copy(from, certs.join(to)).expect("copy a certificate");
    }
    r.drover(&["up", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert_eq!(r.containers("h4"), ["r-tls.web.h4.0", "r-tls.web.h4.1"]);
    r.drover(&["diff"])
        .stdout("No changes: 2 task(s) as specified.\n")
        .run();
    let status = r.drover(&["status", "--json"]).run();
    assert_all_running_with_usage(&status.json(), 2);
    r.drover(&["down", "web", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert!(r.containers("h4").is_empty());
}

/// A name is verified against the certificate's DNS names (and sent as
/// SNI); an address, as everywhere else here, against its IP addresses.
#[test]
fn an_engine_named_by_dns_name_is_verified_against_its_dns_names() {
    let _h4 = shared(&H4);
    let hosts = RemoteHosts::get();
    let by_name = hosts.tls.replace("127.0.0.1", "localhost");
    let entry = tls_host(
        "h4",
        &by_name,
        &hosts.tls_ca,
        &hosts.tls_cert,
        &hosts.tls_key,
    );
    let r = Remote::new("r-tls-name", &entry, &["h4"]).job("web", &sleeper("\"h4\"", 1, 3600));
    r.drover(&["diff"])
        .status(2)
        .stdout_has("+ create  web h4/0  (missing)")
        .run();
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let _h4 = shared(&H4);
    let hosts = RemoteHosts::get();
    let entry = tls_host(
        "h4",
        &hosts.tls,
        &hosts.tls_ca,
        &hosts.tls_other_cert,
        &hosts.tls_other_key,
    );
    let r = Remote::new("r-tls-client", &entry, &["h4"]).job("web", &sleeper("\"h4\"", 1, 3600));
    r.drover(&["diff"])
        .status(1)
        .stdout_has(&format!(
            "! host h4 ({}) is unreachable: TLS: the engine refused drover's client certificate (tls.cert): it is not signed by a CA the engine trusts (its --tlscacert), or not meant for client authentication\n",
            hosts.tls
        ))
        .run();
}

#[test]
fn an_engine_certificate_from_an_untrusted_ca_is_refused() {
    let _h4 = shared(&H4);
    let hosts = RemoteHosts::get();
    let entry = tls_host(
        "h4",
        &hosts.tls,
        &hosts.tls_other_ca,
        &hosts.tls_cert,
        &hosts.tls_key,
    );
    let r = Remote::new("r-tls-server", &entry, &["h4"]).job("web", &sleeper("\"h4\"", 1, 3600));
    r.drover(&["status"])
        .status(1)
        .stderr(&format!(
            "host h4 ({}) is unreachable: TLS: the engine's certificate is not signed by the CA drover trusts for this host (tls.ca)\n",
            hosts.tls
        ))
        .run();
}

#[test]
fn tls_and_plain_tcp_mixed_up_say_so() {
    let _h4 = shared(&H4);
    let hosts = RemoteHosts::get();
    let registry = format!("tcp://{}", Hosts::get().registry);
    let entries = format!(
        "{}{}",
        host("h4", &hosts.tls),
        tls_host(
            "web1",
            &registry,
            &hosts.tls_ca,
            &hosts.tls_cert,
            &hosts.tls_key
        ),
    );
    let r = Remote::new("r-tls-mixed", &entries, &["h4"])
        .job("web", &sleeper("\"h4\", \"web1\"", 1, 3600));
    r.drover(&["status"])
        .status(1)
        .stderr(&format!(
            "host h4 ({}) is unreachable: the engine speaks TLS on this port: add `tls = {{ ca = ..., cert = ..., key = ... }}` to [hosts.h4]\n\
             host web1 ({registry}) is unreachable: TLS: the other end does not speak TLS (a plain tcp:// engine, or another service on this port?)\n",
            hosts.tls
        ))
        .run();
}

// ---------------------------------------------------------------------------
// Streams through the transports, at the engine's interface

/// The engine reads `DROVER_SSH_CONFIG` from its own process: set once, to
/// the value every drover this file runs gets too.
fn ssh_config_for_this_process(hosts: &RemoteHosts) {
    static SET: Once = Once::new();
    SET.call_once(|| std::env::set_var("DROVER_SSH_CONFIG", &hosts.ssh_config));
}

fn engine_host(name: &str, address: &str, tls: Option<drover_spec::TlsFiles>) -> drover_spec::Host {
    drover_spec::Host {
        name: name.to_string(),
        docker: address.parse().expect("a docker address"),
        tls,
        timeout: Duration::from_secs(10),
        insecure: false,
        pull_stall: Duration::from_secs(60),
    }
}

/// A followed log yields lines as they are written, and an exec session's
/// upgraded connection carries stdin and stdout both ways, over SSH
/// forwarding, SSH dial-stdio and TLS alike.
#[test]
fn logs_follow_and_exec_sessions_stream_over_ssh_and_tls() {
    let (_h3, _h4) = (shared(&H3), shared(&H4));
    let hosts = RemoteHosts::get();
    ssh_config_for_this_process(&hosts);
    let r = Remote::new("r-streams", "", &["h3", "h4"]);
    let tls = drover_spec::TlsFiles {
        ca: hosts.tls_ca.clone().into(),
        cert: hosts.tls_cert.clone().into(),
        key: hosts.tls_key.clone().into(),
        place: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (engine, host) in [
        ("h3", engine_host("h3", &hosts.ssh, None)),
        ("h3", engine_host("h3-stdio", &hosts.ssh_nofwd, None)),
        ("h4", engine_host("h4", &hosts.tls, Some(tls.clone()))),
    ] {
        let name = format!("r-streams.{}", host.name);
        let id = r.docker(
            engine,
            &[
                "run",
                "-d",
                "--network",
                "none",
                "--label",
                "drover.env=r-streams",
                "--name",
                &name,
                IMAGE1,
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            ],
        );
        runtime.block_on(async {
            let engine = drover_engine::connect(&host, &drover_engine::Limits::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let options = LogOptions {
                follow: true,
                tail: Some(0),
                since: None,
                stdout: true,
                stderr: true,
            };
            let mut logs = engine.logs(&id, options);
            let mut seen = String::new();
            let followed = tokio::time::timeout(Duration::from_secs(15), async {
                while seen.matches("tick").count() < 5 {
                    match logs.next().await {
                        Some(Ok(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk.bytes)),
                        other => panic!("{}: the log stream ended: {other:?}", host.name),
                    }
                }
            })
            .await;
            assert!(followed.is_ok(), "{}: followed only {seen:?}", host.name);
            drop(logs);

            let cat = ["cat".to_string()];
            let mut session = engine
                .exec_session(&id, &cat, false)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", host.name));
            session
                .input
                .write_all(b"there and back\n")
                .await
                .expect("write stdin");
            session.input.shutdown().await.expect("close stdin");
            let mut echoed = String::new();
            let drained = tokio::time::timeout(Duration::from_secs(15), async {
                while let Some(Ok(chunk)) = session.output.next().await {
                    echoed.push_str(&String::from_utf8_lossy(&chunk.bytes));
                }
            })
            .await;
            assert!(
                drained.is_ok(),
                "{}: the exec did not end: {echoed:?}",
                host.name
            );
            assert_eq!(echoed, "there and back\n", "{}", host.name);
            let mut code = None;
            for _ in 0..50 {
                code = engine
                    .exec_exit_code(&session.exec_id)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", host.name));
                if code.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(code, Some(0), "{}", host.name);
        });
    }
}

// ---------------------------------------------------------------------------
// A daemon that stops answering

/// Stops a process (`SIGSTOP`) until dropped.
struct Frozen(i32);

impl Frozen {
    fn stop(pid: i32) -> Frozen {
        // SAFETY: stops the test host's dockerd; `Drop` resumes it.
        unsafe {
            libc::kill(pid, libc::SIGSTOP);
        }
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: resumes the process `stop` stopped.
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

#[test]
fn a_host_whose_daemon_stops_mid_up_is_named_and_converges_when_back() {
    let (_h3, _h4) = (shared(&H3), alone(&H4));
    let hosts = RemoteHosts::get();
    let entries = format!(
        "{}{}{}timeout = \"3s\"\n",
        host("h1", &Hosts::get().h1),
        host("h3", &hosts.ssh),
        tls_host(
            "h4",
            &hosts.tls,
            &hosts.tls_ca,
            &hosts.tls_cert,
            &hosts.tls_key
        ),
    );
    let r = Remote::new("r-stop", &entries, &["h1", "h3", "h4"])
        .job("web", &sleeper("\"h1\", \"h3\", \"h4\"", 1, 3600));
    let dockerd = hosts.dockerd_pid("h4");

    let mut up = r.spawn(&["up", "--yes"]);
    let lines = lines_of(&mut up);
    let mut seen = Vec::new();
    let mut frozen = None;
    let mut stopped_at = Instant::now();
    let mut h4_failed_at = None;
    for (at, line) in lines.iter() {
        if frozen.is_none() && line.contains(": creating") {
            frozen = Some(Frozen::stop(dockerd));
            stopped_at = Instant::now();
        }
        if line.contains("web h4/0: FAILED") {
            h4_failed_at.get_or_insert(at);
        }
        seen.push(line);
    }
    let exit = wait_for(&mut up, Duration::from_secs(60));
    let exited_after = stopped_at.elapsed();
    let mut stderr = String::new();
    if let Some(mut err) = up.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    drop(frozen);
    let out = format!("{}\n--- stderr:\n{stderr}", seen.join("\n"));
    assert_eq!(exit.code(), Some(1), "{out}");
    assert!(out.contains("web h1/0: done: created"), "{out}");
    assert!(out.contains("web h3/0: done: created"), "{out}");
    assert!(out.contains("FAILED web h4/0 (create): "), "{out}");
    assert!(
        out.contains(&format!("host h4 ({}): ", hosts.tls)),
        "the dead host is named with its address: {out}"
    );
    let failed_after = h4_failed_at.map(|at| at.duration_since(stopped_at));
    // h4's step fails on its first request after the stop, once the host's
    // timeout (3s; twice that for a create) has passed; releasing the job's
    // lock there then waits three times the timeout before giving up.
    assert!(
        failed_after.is_some_and(|d| d < Duration::from_secs(10)),
        "h4 failed after {failed_after:?}:\n{out}"
    );
    assert!(
        exited_after < Duration::from_secs(25),
        "drover exited {exited_after:?} after h4 stopped:\n{out}"
    );
    assert_eq!(r.state("h1", "r-stop.web.h1.0"), "running");
    assert_eq!(r.state("h3", "r-stop.web.h3.0"), "running");

    // Back: up converges it (the engine may show the container its create
    // left only once it is fully back: the re-plan under the lock then
    // says so on stderr).
    r.drover(&["up", "--yes"]).any_stderr().run();
    r.drover(&["diff"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
    assert_eq!(r.state("h4", "r-stop.web.h4.0"), "running");
    eprintln!(
        "h4 stopped: its step failed after {failed_after:?}, drover exited after {exited_after:?}"
    );
}
