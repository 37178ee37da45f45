//! The terminal in raw mode for an interactive session: keys go to the
//! remote shell as typed (Ctrl-C included), and the terminal is put back
//! on every way out — the guard's drop, and an abort on a second signal.

use std::sync::Mutex;

/// The settings to put back, while raw mode is on.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

pub struct RawMode;

impl RawMode {
    pub fn enter() -> std::io::Result<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on stdin with a termios we own.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Ok(mut saved) = SAVED.lock() {
                *saved = Some(term);
            }
            let mut raw = term;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(RawMode)
    }
}

/// Puts the terminal back if raw mode is on.
pub fn restore() {
    if let Ok(mut saved) = SAVED.lock() {
        if let Some(term) = saved.take() {
            // SAFETY: restoring settings read by tcgetattr.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term);
            }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// `(rows, cols)` of the terminal on stdout.
pub fn window_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_row > 0 {
            Some((size.ws_row, size.ws_col))
        } else {
            None
        }
    }
}

/// Copies this process's stdin into `input` (a remote command's stdin)
/// until either ends, then closes `input`: the command sees the end of its
/// input as it would locally. Reads on a thread, not the runtime, so a read
/// blocked on the terminal does not hold up the exit.
pub async fn forward_stdin<W>(mut input: W)
where
    W: tokio::io::AsyncWrite + Unpin + Send,
{
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some(bytes) = rx.recv().await {
        if input.write_all(&bytes).await.is_err() {
            return;
        }
        let _ = input.flush().await;
    }
    let _ = input.shutdown().await;
}
