//! `ssh://[USER@]HOST[:PORT]` through the system `ssh`, so `~/.ssh/config`,
//! agents, jump hosts and `known_hosts` work as the operator expects
//! (`DROVER_SSH_CONFIG` names another config file, as `ssh -F` would).
//! drover's own options come first on the command line, so they win over
//! the configuration: batch mode (drover owns the terminal; a prompt would
//! hang), errors only (so ssh's last line says why it failed), and its own
//! control socket.
//!
//! One SSH connection per host and command: an `ssh` ControlMaster that
//! forwards a local unix socket to the remote `/var/run/docker.sock`. The
//! unix transport then works unchanged, and every request and stream of
//! the command (the pooled client's connections, a followed log, the
//! upgraded connection of an exec session) is one channel of that one
//! connection. Both sockets live in a 0700 directory of drover's own,
//! `drover-ssh-PID-N` under `$TMPDIR` (or `/tmp` when `$TMPDIR` is long): a
//! unix socket path must fit in 108 bytes, and ssh first binds its control
//! socket under a name 17 bytes longer than `ControlPath`.
//!
//! Whether an engine answers is probed with `/_ping` on the forwarded
//! socket. A connection ssh closes without an answer means the server
//! refused the channel (sshd's `AllowStreamLocalForwarding no`, or no
//! socket at that path): drover then serves the local socket itself and
//! runs `docker system dial-stdio` on the host for each connection, as a
//! session of the same master (`ProxyCommand=false`: were the master gone,
//! the session fails rather than logging in again). Sessions are scarce
//! (sshd's `MaxSessions`, 10 by default, counts them per connection), so at
//! most [`DIAL_STDIO_SESSIONS`] run at once, more connections wait for one,
//! and none is kept idle. A probe that gets no answer at all is an engine
//! that does not answer, which no fallback would change.
//!
//! No ssh process outlives drover. Each runs in its own process group, so a
//! Ctrl-C on the terminal is drover's to handle (it lets steps in flight
//! finish) and not ssh's. Each gets `SIGTERM` when the thread that started
//! it ends (`PR_SET_PDEATHSIG` follows the thread, not the process: ssh is
//! started from the connecting task, on the main thread or a runtime
//! worker, which live as long as drover, never from a blocking-pool thread
//! that ends when idle). A dropped [`Tunnel`] stops and reaps its master,
//! and [`kill_all`] stops and reaps whatever is left on exits that skip
//! destructors. Each process makes its own directory, so a control socket
//! is never shared; directories of drover processes that ended without
//! cleaning up (an exit on Ctrl-C, a `SIGKILL`) are removed on the next
//! start, after stopping a master that might still listen on one.

use std::collections::VecDeque;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::ClientVersion;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// The engine socket on the remote host.
const REMOTE_SOCKET: &str = "/var/run/docker.sock";
/// Directory names start with this, then the owning pid.
const DIR_PREFIX: &str = "drover-ssh-";
/// The longest `$TMPDIR` used for the sockets: with the directory name, the
/// socket names and ssh's 17-byte temporary suffix, paths stay under 108 bytes.
const MAX_BASE_LEN: usize = 40;
/// `docker system dial-stdio` sessions at once, below sshd's default `MaxSessions` (10).
pub const DIAL_STDIO_SESSIONS: usize = 8;
/// How long a stopped ssh gets to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Lines of ssh's complaints kept for an error message.
const KEPT_LINES: usize = 8;
const PING: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";

/// PIDs of running ssh processes this process started, for [`kill_all`].
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Stops and reaps every ssh process this process started: for exits that
/// skip destructors (a second Ctrl-C, an abort), and as a last sweep.
pub fn kill_all() {
    let pids: Vec<i32> = match CHILDREN.lock() {
        Ok(mut list) => list.drain(..).collect(),
        Err(_) => return,
    };
    for pid in &pids {
        signal(*pid, libc::SIGTERM);
    }
    let left = reap(pids, STOP_GRACE);
    for pid in &left {
        signal(*pid, libc::SIGKILL);
    }
    reap(left, STOP_GRACE);
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: signals a child process this process started and has not reaped.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Waits up to `grace` for `pids` (children of this process) to exit, and
/// reaps them; returns the ones still running.
fn reap(mut pids: Vec<i32>, grace: Duration) -> Vec<i32> {
    let deadline = Instant::now() + grace;
    loop {
        pids.retain(|pid| {
            let mut status = 0;
            // SAFETY: only collects the exit status of our own child; -1 (ECHILD) means already reaped.
            unsafe { libc::waitpid(*pid, &mut status, libc::WNOHANG) == 0 }
        });
        if pids.is_empty() || Instant::now() >= deadline {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Keeps a running ssh where [`kill_all`] finds it, until dropped (before
/// the process is reaped, so a pid another process may reuse is never signalled).
struct Registered(i32);

impl Registered {
    fn new(child: &Child) -> Option<Registered> {
        let pid = i32::try_from(child.id()?).ok()?;
        CHILDREN.lock().ok()?.push(pid);
        Some(Registered(pid))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut list) = CHILDREN.lock() {
            list.retain(|p| *p != self.0);
        }
    }
}

/// What ssh said on stderr, its last lines only.
#[derive(Clone, Default)]
struct Complaints(Arc<Mutex<VecDeque<String>>>);

impl Complaints {
    async fn collect(self, stream: impl AsyncRead + Unpin) {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            self.note(line);
        }
    }

    fn note(&self, line: String) {
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .map(|kept| kept.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// The ControlMaster: stopped (`SIGTERM`, so ssh says goodbye to the
/// server) and reaped when dropped.
struct Master {
    child: Child,
    registered: Option<Registered>,
}

impl Drop for Master {
    fn drop(&mut self) {
        self.registered.take();
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Ignores SIGTERM: kill_on_drop sends SIGKILL, and tokio reaps it.
    }
}

/// A live SSH connection to one host, and the local socket it serves.
pub struct Tunnel {
    dir: PathBuf,
    socket: PathBuf,
    /// Serves the socket through `docker system dial-stdio` sessions.
    relay: Option<JoinHandle<()>>,
    master: Option<Master>,
}

impl Tunnel {
    /// The engine behind the tunnel, over the unix transport.
    pub fn connection(
        &self,
        timeout_secs: u64,
        version: &ClientVersion,
    ) -> Result<super::Connection, bollard::errors::Error> {
        // An idle connection would hold one of the few dial-stdio sessions.
        let keep_idle = self.relay.is_none();
        super::unix_with(
            &self.socket.to_string_lossy(),
            keep_idle,
            timeout_secs,
            version,
        )
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        self.master.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where and as whom to log in, and the master's control socket.
#[derive(Clone)]
struct Target {
    user: Option<String>,
    host: String,
    port: u16,
    control: PathBuf,
}

impl Target {
    /// `ssh` with drover's options ahead of the user's configuration.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        if let Some(config) = std::env::var_os("DROVER_SSH_CONFIG") {
            cmd.arg("-F").arg(config);
        }
        cmd.args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]);
        if self.port != 22 {
            cmd.arg("-p").arg(self.port.to_string());
        }
        if let Some(user) = &self.user {
            cmd.arg("-l").arg(user);
        }
        cmd.arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .kill_on_drop(true)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd
    }
}

/// Opens the master connection to `host` and makes sure an engine answers
/// behind it, within about `timeout` for each stage. The error is the reason
/// only; the caller names the host.
pub async fn open(
    user: Option<&str>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Tunnel, String> {
    sweep_stale();
    let dir = private_dir()
        .map_err(|e| format!("cannot make a private directory for the SSH connection: {e}"))?;
    let target = Target {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        control: dir.join("m"),
    };
    let socket = dir.join("d.sock");
    let mut tunnel = Tunnel {
        dir,
        socket: socket.clone(),
        relay: None,
        master: None,
    };

    let mut cmd = target.ssh();
    cmd.args([
        "-o",
        "ControlMaster=yes",
        "-o",
        "ControlPersist=no",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "StreamLocalBindUnlink=yes",
        "-o",
        "ExitOnForwardFailure=yes",
    ])
    .arg("-o")
    .arg(format!("ConnectTimeout={}", timeout.as_secs().max(1)))
    .arg("-N")
    .arg("-L")
    .arg(format!("{}:{REMOTE_SOCKET}", socket.display()))
    // The host is never an option, whatever it starts with.
    .arg("--")
    .arg(host)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e} (is OpenSSH's client installed?)"))?;
    let complaints = Complaints::default();
    let reader = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(complaints.clone().collect(stderr)));
    let registered = Registered::new(&child);
    let master = tunnel.master.insert(Master { child, registered });

    // Up when both the control socket and the forwarded socket exist.
    let allowed = timeout + Duration::from_secs(2);
    let deadline = Instant::now() + allowed;
    while !(target.control.exists() && socket.exists()) {
        if let Ok(Some(status)) = master.child.try_wait() {
            if let Some(reader) = reader {
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            return Err(ssh_failure(&complaints.text(), status.code()));
        }
        if Instant::now() > deadline {
            return Err(format!("ssh: no connection within {}s", allowed.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    match probe(&socket, timeout).await {
        Probe::Answered => return Ok(tunnel),
        Probe::Silent => return Err(silent(timeout)),
        Probe::Refused => {}
    }
    // The server refused the channel: serve the socket with dial-stdio sessions.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let failure = Complaints::default();
    tunnel.relay = Some(tokio::spawn(relay(listener, target, failure.clone())));
    match probe(&socket, timeout).await {
        Probe::Answered => Ok(tunnel),
        Probe::Silent => Err(silent(timeout)),
        Probe::Refused => {
            let said = failure.text();
            let why = said
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("it ended without a word");
            Err(format!(
                "the SSH connection works, but it reaches no Docker engine: the host refuses to forward {REMOTE_SOCKET}, and `docker system dial-stdio` there failed: {}",
                crate::short_message(why)
            ))
        }
    }
}

fn silent(timeout: Duration) -> String {
    format!(
        "the SSH connection works, but the Docker engine at {REMOTE_SOCKET} does not answer within {}s",
        timeout.as_secs_f64()
    )
}

/// What a `/_ping` on the local socket found.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// An HTTP answer: something serves the socket (whether a Docker
    /// engine, the version request tells).
    Answered,
    /// Closed with no answer: the channel was refused.
    Refused,
    /// Nothing within the timeout.
    Silent,
}

async fn probe(socket: &Path, timeout: Duration) -> Probe {
    let attempt = async {
        let Ok(mut stream) = UnixStream::connect(socket).await else {
            return Probe::Refused;
        };
        if stream.write_all(PING).await.is_err() {
            return Probe::Refused;
        }
        let mut head = Vec::new();
        let mut buf = [0u8; 64];
        while head.len() < 5 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        if head.starts_with(b"HTTP/") {
            Probe::Answered
        } else {
            Probe::Refused
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Probe::Silent)
}

/// Serves each connection to `listener` with a dial-stdio session, at most
/// [`DIAL_STDIO_SESSIONS`] at once. Aborting it ends every session.
async fn relay(listener: UnixListener, target: Target, failure: Complaints) {
    let slots = Arc::new(Semaphore::new(DIAL_STDIO_SESSIONS));
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((conn, _)) = accepted else { break };
                let (slots, target, failure) = (Arc::clone(&slots), target.clone(), failure.clone());
                sessions.spawn(async move {
                    if let Ok(_slot) = slots.acquire_owned().await {
                        dial_stdio(conn, &target, &failure).await;
                    }
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// Pipes one local connection through `docker system dial-stdio` on the
/// host; what the session says on stderr goes to `failure`.
async fn dial_stdio(mut conn: UnixStream, target: &Target, failure: &Complaints) {
    let mut cmd = target.ssh();
    cmd.args([
        "-o",
        "ControlMaster=no",
        "-o",
        "ProxyCommand=false",
        "-o",
        "RemoteCommand=none",
        "-T",
        "--",
    ])
    .arg(&target.host)
    .args(["docker", "system", "dial-stdio"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            failure.note(format!("cannot run ssh: {e}"));
            return;
        }
    };
    let registered = Registered::new(&child);
    let (Some(stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let said = tokio::spawn(failure.clone().collect(stderr));
    let (mut read, mut write) = conn.split();
    let upstream = async {
        let mut stdin = stdin;
        let _ = tokio::io::copy(&mut read, &mut stdin).await;
        // A pipe's shutdown is a no-op: only closing it tells ssh (and so
        // dial-stdio, and the engine) that the client is done writing.
        drop(stdin);
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut stdout, &mut write).await;
        // Whatever the session said is recorded before the client sees the end.
        let _ = tokio::time::timeout(STOP_GRACE, said).await;
        let _ = write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
    // Both directions are closed: the session ends by itself now.
    drop(registered);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// ssh's own words for why it failed, without its noise, and what to do
/// where ssh does not say.
fn ssh_failure(stderr: &str, code: Option<i32>) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim().trim_matches('@').trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let Some(last) = lines.last() else {
        return format!(
            "ssh exited with code {}",
            code.map_or("?".to_string(), |c| c.to_string())
        );
    };
    let between = |line: &str, start: &str, end: &str| -> Option<String> {
        let rest = line.split_once(start)?.1;
        Some(rest.split_once(end)?.0.to_string())
    };
    let unknown = lines
        .iter()
        .find_map(|l| between(l, "host key is known for ", " and you"));
    let changed = lines
        .iter()
        .find_map(|l| between(l, "Host key for ", " has changed"));
    let text = if let Some(host) = unknown {
        format!("host key verification failed: {host} is not in known_hosts (ssh to it once by hand to check and accept its key)")
    } else if let Some(host) = changed {
        format!("host key verification failed: the key of {host} has CHANGED since it was recorded in known_hosts (a reinstalled host, or someone in between): check it, then update known_hosts")
    } else if last.contains("Permission denied") {
        format!("{last} (drover runs ssh in batch mode: the key must be in ssh-agent, or an IdentityFile without a passphrase)")
    } else if last.starts_with("Host key verification failed") && lines.len() > 1 {
        format!(
            "host key verification failed: {}",
            lines[lines.len() - 2].trim_end_matches('.')
        )
    } else {
        last.strip_prefix("ssh: ").unwrap_or(last).to_string()
    };
    format!("ssh: {}", crate::short_message(&text))
}

/// A new 0700 directory for this process's sockets, with a short path.
fn private_dir() -> std::io::Result<PathBuf> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base_dir().join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
    // Left by an earlier process that had this pid.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if tmp.as_os_str().len() <= MAX_BASE_LEN {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Removes the socket directories of drover processes that no longer run,
/// stopping a master still listening on one (its drover was killed and the
/// parent-death signal did not reach it).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else {
        return;
    };
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        let ours = entry.metadata().map(|m| m.uid()).ok() == Some(uid);
        if alive || !ours {
            continue;
        }
        let control = entry.path().join("m");
        let listening = std::fs::symlink_metadata(&control)
            .is_ok_and(|m| m.file_type().is_socket())
            && std::os::unix::net::UnixStream::connect(&control).is_ok();
        if listening {
            let mut exit = std::process::Command::new("ssh");
            if let Some(config) = std::env::var_os("DROVER_SSH_CONFIG") {
                exit.arg("-F").arg(config);
            }
            let _ = exit
                .args(["-o", "BatchMode=yes", "-o"])
                .arg(format!("ControlPath={}", control.display()))
                .args(["-O", "exit", "drover-stale-master"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose server answers each connection with `answer` (or
    /// nothing), and holds it open when `hold`.
    async fn server(path: &Path, answer: Option<&'static [u8]>, hold: bool) {
        let listener = UnixListener::bind(path).expect("bind");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                if let Some(answer) = answer {
                    let mut buf = [0u8; 256];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(answer).await;
                }
                if hold {
                    held.push(conn);
                }
            }
        });
    }

    #[tokio::test]
    async fn a_probe_tells_an_answer_from_a_refusal_and_from_silence() {
        let dir = private_dir().expect("dir");
        let wait = Duration::from_millis(300);
        let answers = dir.join("a.sock");
        server(
            &answers,
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"),
            true,
        )
        .await;
        let refuses = dir.join("r.sock");
        server(&refuses, None, false).await;
        let silent = dir.join("s.sock");
        server(&silent, None, true).await;

        // The answer counts as soon as its status line does: the connection may stay open.
        assert_eq!(probe(&answers, wait).await, Probe::Answered);
        assert_eq!(probe(&refuses, wait).await, Probe::Refused);
        assert_eq!(probe(&dir.join("none.sock"), wait).await, Probe::Refused);
        let started = Instant::now();
        assert_eq!(probe(&silent, wait).await, Probe::Silent);
        assert!(started.elapsed() < wait * 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn socket_paths_fit_the_unix_limit() {
        let dir = base_dir().join(format!("{DIR_PREFIX}{}-{}", 4_194_304, 9_999));
        // ssh binds `ControlPath` + ".XXXXXXXXXXXXXXXX" before renaming it.
        let control = format!("{}/m.XXXXXXXXXXXXXXXX", dir.display());
        assert!(control.len() < 108, "{control}");
    }

    #[test]
    fn ssh_failures_keep_the_last_words() {
        assert_eq!(
            ssh_failure(
                "Warning: Permanently added 'x'\nroot@127.0.0.1: Permission denied (publickey).\n",
                Some(255)
            ),
            "ssh: root@127.0.0.1: Permission denied (publickey). (drover runs ssh in batch mode: the key must be in ssh-agent, or an IdentityFile without a passphrase)"
        );
        assert_eq!(
            ssh_failure(
                "ssh: connect to host 127.0.0.1 port 6399: Connection refused\n",
                Some(255)
            ),
            "ssh: connect to host 127.0.0.1 port 6399: Connection refused"
        );
        assert_eq!(ssh_failure("", Some(255)), "ssh exited with code 255");
    }

    #[test]
    fn host_key_failures_say_what_to_do() {
        assert_eq!(
            ssh_failure(
                "No ED25519 host key is known for [127.0.0.1]:6022 and you have requested strict checking.\nHost key verification failed.\n",
                Some(255)
            ),
            "ssh: host key verification failed: [127.0.0.1]:6022 is not in known_hosts (ssh to it once by hand to check and accept its key)"
        );
        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
            @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
            IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
            Offending ED25519 key in /root/.ssh/known_hosts:3\n\
            Host key for app1 has changed and you have requested strict checking.\n\
            Host key verification failed.\n";
        assert!(ssh_failure(changed, Some(255))
            .starts_with("ssh: host key verification failed: the key of app1 has CHANGED"));
    }
}
