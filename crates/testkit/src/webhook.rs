//! A webhook receiver on loopback for notification tests: it records every
//! POST (path, content type, body, and how it was answered) and answers as
//! the test says — 2xx, an error status, a body echoing the path as some
//! servers do, or never.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `200 OK`, body `ok` (what Slack answers).
    Ok,
    /// This status, body `status N`.
    Status(u16),
    /// This status, body `Cannot POST /path` (as Express answers a 404).
    Echo(u16),
    /// Reads the request and never answers.
    Hang,
}

/// One request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
    /// The status it was answered with; `None` for [`Answer::Hang`].
    pub answered: Option<u16>,
}

#[derive(Default)]
struct State {
    /// Answers for the next requests, in order…
    script: VecDeque<Answer>,
    /// …and for every request after them.
    otherwise: Option<Answer>,
    posts: Vec<Post>,
}

struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
    stopped: AtomicBool,
}

/// A receiver listening on `127.0.0.1:PORT`; it stops answering when dropped.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Answers every request with `answer`.
    pub fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                otherwise: Some(answer),
                ..State::default()
            }),
            arrived: Condvar::new(),
            stopped: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || serve(stream, &shared));
            }
        });
        Receiver { port, shared }
    }

    /// The URL of `path` on this receiver (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers the next requests with `answers`, in order, before going
    /// back to the usual answer.
    pub fn then(&self, answers: impl IntoIterator<Item = Answer>) -> &Self {
        self.lock().script.extend(answers);
        self
    }

    /// Changes the usual answer.
    pub fn answer(&self, answer: Answer) {
        self.lock().otherwise = Some(answer);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.lock().posts.clone()
    }

    pub fn bodies(&self) -> Vec<String> {
        self.posts().into_iter().map(|p| p.body).collect()
    }

    /// Waits up to `timeout` for at least `count` requests; returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Post> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.posts.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.shared.arrived.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.posts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one connection: request after request (keep-alive), until the
/// client closes it or an answer is never given.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut content_type = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = {
            let mut state = shared
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let answer = state
                .script
                .pop_front()
                .or(state.otherwise)
                .unwrap_or(Answer::Ok);
            state.posts.push(Post {
                method,
                path: path.clone(),
                content_type,
                body: String::from_utf8_lossy(&body).into_owned(),
                answered: match answer {
                    Answer::Ok => Some(200),
                    Answer::Status(code) | Answer::Echo(code) => Some(code),
                    Answer::Hang => None,
                },
            });
            shared.arrived.notify_all();
            answer
        };
        let (status, text) = match answer {
            Answer::Ok => (200, "ok".to_string()),
            Answer::Status(code) => (code, format!("status {code}")),
            Answer::Echo(code) => (code, format!("Cannot POST {path}")),
            Answer::Hang => {
                while !shared.stopped.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(50));
                }
                return;
            }
        };
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            reason(status),
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
