//! `ssh://[USER@]HOST[:PORT]` through the system `ssh`, so `~/.ssh/config`,
//! agents, jump hosts and `known_hosts` work as the operator expects.
//!
//! One SSH connection per host and command: an `ssh` ControlMaster that
//! forwards a local unix socket (in a 0700 directory of drover's own, short
//! enough for the 108-byte socket path limit) to the remote
//! `/var/run/docker.sock`. The unix transport then works unchanged, and
//! every request and stream of the command rides that one connection.
//!
//! Where the server forbids stream-local forwarding, drover listens on the
//! local socket itself and runs `docker system dial-stdio` on the host for
//! each connection, through the same master (no new login).
//!
//! The master runs in its own process group (a Ctrl-C on the terminal is
//! drover's to handle, not ssh's), dies with drover (`PR_SET_PDEATHSIG`),
//! and is stopped when the tunnel is dropped or [`kill_all`] runs before an
//! abrupt exit. Directories of earlier drover processes that died without
//! cleaning up are removed on the next start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::ClientVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};

/// The engine socket on the remote host.
const REMOTE_SOCKET: &str = "/var/run/docker.sock";
/// Directory names start with this, then the owning pid.
const DIR_PREFIX: &str = "drover-ssh-";

/// PIDs of running masters, for [`kill_all`].
static MASTERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Stops every SSH master this process started: for exits that skip destructors.
pub fn kill_all() {
    if let Ok(pids) = MASTERS.lock() {
        for pid in pids.iter() {
            if let Ok(pid) = i32::try_from(*pid) {
                // SAFETY: signalling a child process we started; no memory is touched.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

/// A live SSH connection to one host, and the local socket it serves.
pub struct Tunnel {
    dir: PathBuf,
    socket: PathBuf,
    master: Option<Child>,
    master_pid: Option<u32>,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Tunnel {
    /// The engine behind the tunnel, over the unix transport.
    pub fn connection(
        &self,
        timeout_secs: u64,
        version: &ClientVersion,
    ) -> Result<super::Connection, bollard::errors::Error> {
        super::unix(&self.socket.to_string_lossy(), timeout_secs, version)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        if let Some(mut master) = self.master.take() {
            let _ = master.start_kill();
        }
        if let (Some(pid), Ok(mut pids)) = (self.master_pid, MASTERS.lock()) {
            pids.retain(|p| *p != pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ssh command line shared by the master and dial-stdio sessions.
fn ssh_base(user: Option<&str>, port: u16) -> Command {
    let mut cmd = Command::new("ssh");
    if let Some(config) = std::env::var_os("DROVER_SSH_CONFIG") {
        cmd.arg("-F").arg(config);
    }
    cmd.args(["-o", "BatchMode=yes"]);
    if port != 22 {
        cmd.arg("-p").arg(port.to_string());
    }
    if let Some(user) = user {
        cmd.arg("-l").arg(user);
    }
    cmd
}

/// Opens the master connection to `host` and waits for the forwarded socket.
pub async fn open(
    name: &str,
    user: Option<&str>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Tunnel, String> {
    sweep_stale();
    let dir = private_dir()
        .map_err(|e| format!("cannot make a private directory for the SSH connection: {e}"))?;
    let control = dir.join("m");
    let socket = dir.join("d.sock");
    let mut tunnel = Tunnel {
        dir,
        socket: socket.clone(),
        master: None,
        master_pid: None,
        relay: None,
    };

    let mut cmd = ssh_base(user, port);
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
    .arg(format!("ControlPath={}", control.display()))
    .arg("-o")
    .arg(format!("ConnectTimeout={}", timeout.as_secs().max(1)))
    .arg("-N")
    .arg("-L")
    .arg(format!("{}:{REMOTE_SOCKET}", socket.display()))
    .arg(host)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .process_group(0);
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut master = cmd
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e} (is OpenSSH's client installed?)"))?;
    tunnel.master_pid = master.id();
    if let (Some(pid), Ok(mut pids)) = (master.id(), MASTERS.lock()) {
        pids.push(pid);
    }

    // Up when both the control socket and the forwarded socket exist.
    let deadline = Instant::now() + timeout + Duration::from_secs(2);
    loop {
        if control.exists() && socket.exists() {
            break;
        }
        if let Ok(Some(status)) = master.try_wait() {
            let mut stderr = String::new();
            if let Some(mut err) = master.stderr.take() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            return Err(ssh_failure(&stderr, status.code()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ssh to {host} did not connect within {}s",
                (timeout + Duration::from_secs(2)).as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Drain ssh's later complaints so a full pipe can never block it.
    if let Some(mut err) = master.stderr.take() {
        tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut err, &mut sink).await;
        });
    }
    tunnel.master = Some(master);

    if !answers_ping(&socket, timeout).await {
        // Forwarding refused by the server: serve the socket ourselves with dial-stdio.
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let (user, host, control) = (user.map(str::to_string), host.to_string(), control.clone());
        tunnel.relay = Some(tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (user, host, control) = (user.clone(), host.clone(), control.clone());
                tokio::spawn(async move {
                    relay_dial_stdio(conn, user.as_deref(), port, &host, &control).await;
                });
            }
        }));
        if !answers_ping(&socket, timeout).await {
            return Err(format!("host {name}: the SSH connection works, but neither forwarding to {REMOTE_SOCKET} nor `docker system dial-stdio` reaches a Docker engine (is Docker installed there, and may this user use it?)"));
        }
    }
    Ok(tunnel)
}

/// Pipes one local connection through `docker system dial-stdio` on the host.
async fn relay_dial_stdio(
    mut conn: UnixStream,
    user: Option<&str>,
    port: u16,
    host: &str,
    control: &Path,
) {
    let mut cmd = ssh_base(user, port);
    cmd.arg("-o")
        .arg(format!("ControlPath={}", control.display()))
        .args(["-o", "ControlMaster=no"])
        .arg(host)
        .args(["docker", "system", "dial-stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    let Ok(mut child) = cmd.spawn() else { return };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return;
    };
    let (mut read, mut write) = conn.split();
    let upstream = async {
        let _ = tokio::io::copy(&mut read, &mut stdin).await;
        let _ = stdin.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut stdout, &mut write).await;
        let _ = write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
    let _ = child.kill().await;
}

/// Whether a Docker engine answers `/_ping` on `socket`.
async fn answers_ping(socket: &Path, timeout: Duration) -> bool {
    let attempt = async {
        let mut stream = UnixStream::connect(socket).await.ok()?;
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.") && answer.windows(2).any(|w| w == b"OK"))
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}

/// ssh's own words for why it failed, without its noise.
fn ssh_failure(stderr: &str, code: Option<i32>) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    match lines.last() {
        Some(line) => format!("ssh: {}", crate::short_message(line)),
        None => format!(
            "ssh exited with code {}",
            code.map_or("?".to_string(), |c| c.to_string())
        ),
    }
}

/// A new 0700 directory for this process's sockets, with a short path.
fn private_dir() -> std::io::Result<PathBuf> {
    let base = base_dir();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    // Socket paths must stay under 108 bytes.
    if tmp.as_os_str().len() <= 40 {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Removes the socket directories of drover processes that no longer run.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else {
        return;
    };
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
        let ours = entry.metadata().map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok()
            // SAFETY: getuid cannot fail.
            == Some(unsafe { libc::getuid() });
        if !alive && ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ssh_failure;

    #[test]
    fn ssh_failures_keep_the_last_words() {
        assert_eq!(
            ssh_failure(
                "Warning: Permanently added 'x'\nroot@127.0.0.1: Permission denied (publickey).\n",
                Some(255)
            ),
            "ssh: root@127.0.0.1: Permission denied (publickey)."
        );
        assert_eq!(ssh_failure("", Some(255)), "ssh exited with code 255");
    }
}
