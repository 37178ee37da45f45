//! A unix-socket proxy in front of a test engine that records every HTTP
//! request passing through it, to prove how many calls something makes
//! (the dashboard's "ten tabs cost what one does").

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

pub struct CountingProxy {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    requests: Arc<Mutex<Vec<String>>>,
    open: Arc<Mutex<Vec<UnixStream>>>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl CountingProxy {
    /// A proxy to the engine at `upstream` (`unix://PATH`).
    pub fn start(upstream: &str) -> CountingProxy {
        let upstream = upstream.trim_start_matches("unix://").to_string();
        let dir = tempfile::Builder::new()
            .prefix("countp")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let path = dir.path().join("d.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (log, held) = (Arc::clone(&requests), Arc::clone(&open));
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refuse = Arc::clone(&refusing);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                if let (Ok(copy), Ok(mut held)) = (client.try_clone(), held.lock()) {
                    held.push(copy);
                }
                let (log, upstream) = (Arc::clone(&log), upstream.clone());
                thread::spawn(move || relay(client, &upstream, log));
            }
        });
        CountingProxy {
            path,
            _dir: dir,
            requests,
            open,
            refusing,
        }
    }

    /// `unix://PATH`, for a host's `docker` in drover.toml.
    pub fn address(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Every request line seen so far (`GET /v1.41/containers/json?… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Cuts every connection open now (an engine restart, a network blip):
    /// streams such as `/events` end.
    pub fn sever(&self) {
        if let Ok(mut open) = self.open.lock() {
            for stream in open.drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// The host drops: every connection is cut and new ones are refused
    /// until [`CountingProxy::resume`].
    pub fn pause(&self) {
        self.refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.sever();
    }

    /// The host is back.
    pub fn resume(&self) {
        self.refusing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forgets what was seen.
    pub fn reset(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }
}

fn relay(client: UnixStream, upstream: &str, log: Arc<Mutex<Vec<String>>>) {
    let Ok(server) = UnixStream::connect(upstream) else {
        return;
    };
    let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match from_client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    let is_request = ["GET /", "POST /", "PUT /", "DELETE /", "HEAD /"]
                        .iter()
                        .any(|m| text.starts_with(m))
                        && text.ends_with("HTTP/1.1");
                    if is_request {
                        if let Ok(mut log) = log.lock() {
                            log.push(text);
                        }
                    }
                    line.clear();
                } else if line.len() < 8192 {
                    line.push(b);
                }
            }
            if to_server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    let _ = std::io::copy(&mut from_server, &mut to_client);
    let _ = to_client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}
