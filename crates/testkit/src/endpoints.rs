//! Endpoints that are not healthy Docker engines, for fault tests: one that
//! answers `/_ping` and then hangs on everything else (a wedged dockerd),
//! and a web server that answers everything with an HTML page.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

/// A unix socket whose server answers `/_ping` and never answers anything else.
pub struct Wedged {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    held: Arc<Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl Wedged {
    pub fn start() -> Wedged {
        let dir = tempfile::Builder::new()
            .prefix("wedged")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("bind the wedged socket");
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let keep = Arc::clone(&keep);
                thread::spawn(move || {
                    let Ok(reader_stream) = stream.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(reader_stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    if line.contains("/_ping") {
                        let mut stream = stream;
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\nOK",
                        );
                        return;
                    }
                    // Hold the connection open and never answer.
                    if let Ok(mut list) = keep.lock() {
                        list.push(stream);
                    }
                });
            }
        });
        Wedged {
            path,
            _dir: dir,
            held,
        }
    }

    /// `unix://PATH`.
    pub fn address(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Requests received and left hanging so far.
    pub fn hanging(&self) -> usize {
        self.held.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// A loopback HTTP server that answers every request with a big HTML page.
pub struct HtmlServer {
    pub port: u16,
}

impl HtmlServer {
    pub fn start() -> HtmlServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let Ok(read) = stream.try_clone() else { return };
                    let mut reader = BufReader::new(read);
                    let mut line = String::new();
                    // Read the request head.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let body = format!("<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>{}</body></html>", "<p>lorem ipsum</p>".repeat(2000));
                    let mut stream = stream;
                    let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                });
            }
        });
        HtmlServer { port }
    }
}
