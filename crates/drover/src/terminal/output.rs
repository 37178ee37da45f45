//! Writing to stdout so that a closed pipe (`drover status | head`) ends
//! drover quietly instead of making every print fail, and so that a closed
//! pipe during a change is handled like Ctrl-C: the steps in flight finish
//! or are undone, and the report goes to stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout was found closed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Writes `text` to stdout; a closed stdout is remembered and reported as an interruption.
pub fn write_out(text: &str) {
    write_bytes(text.as_bytes());
}

/// [`write_out`] for bytes that need not be text (a command's own output).
pub fn write_bytes(bytes: &[u8]) {
    if closed() || bytes.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = out.write_all(bytes).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
            super::interrupt::stdout_closed();
        }
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::terminal::output::write_out("\n") };
    ($($arg:tt)*) => { $crate::terminal::output::write_out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::terminal::output::write_out(&format!($($arg)*)) };
}
