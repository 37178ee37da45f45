//! Ctrl-C, SIGTERM, SIGHUP and a closed stdout.
//!
//! Before a command starts changing anything, the first signal simply ends
//! drover (nothing is in flight). Once it changes things ([`changing`]),
//! the first signal fires the cancellation token: no new step starts,
//! steps in flight finish or are undone, locks are released, and drover
//! says what it did and exits non-zero. A second signal aborts at once.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

static TOKEN: OnceLock<CancellationToken> = OnceLock::new();
static CHANGING: AtomicBool = AtomicBool::new(false);
/// A server (`drover web`): the first signal stops it, and that is a normal end.
static SERVING: AtomicBool = AtomicBool::new(false);
/// The signal that interrupted the run (0: none; 13: stdout closed).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The run's cancellation token.
pub fn token() -> CancellationToken {
    TOKEN.get_or_init(CancellationToken::new).clone()
}

/// From now on, a first signal lets steps in flight finish.
pub fn changing() {
    CHANGING.store(true, Ordering::SeqCst);
}

/// How many changes a server has in flight (a second signal leaves them
/// as they are, and says so only then).
type InFlight = Box<dyn Fn() -> usize + Send + Sync>;
static IN_FLIGHT: OnceLock<InFlight> = OnceLock::new();

/// From now on, a first signal stops a server cleanly, and it exits 0;
/// `in_flight` tells how many changes it has under way.
pub fn serving(in_flight: InFlight) {
    let _ = IN_FLIGHT.set(in_flight);
    SERVING.store(true, Ordering::SeqCst);
    CHANGING.store(true, Ordering::SeqCst);
}

/// What a second signal says as it aborts: a server with nothing under
/// way has nothing to repair.
fn aborting() -> String {
    let in_flight = IN_FLIGHT.get().map_or(0, |count| count());
    if SERVING.load(Ordering::SeqCst) && in_flight == 0 {
        "aborting: stopping at once".to_string()
    } else if SERVING.load(Ordering::SeqCst) {
        format!("aborting: {in_flight} change(s) started from the dashboard are left as they are; run `drover up` to repair")
    } else {
        "aborting: steps in flight are left as they are; run `drover up` to repair".to_string()
    }
}

/// The exit code an interruption gives: 128 + the signal (none for a server
/// that a signal told to stop: that is how servers end).
pub fn exit_code() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n if SERVING.load(Ordering::SeqCst) && n != libc::SIGPIPE => None,
        // A reader that stopped reading a read-only command (`drover diff |
        // head`) interrupted nothing: the command's own code stands (diff's
        // 0 or 2 stays what scripts test).
        libc::SIGPIPE if !CHANGING.load(Ordering::SeqCst) => None,
        n => u8::try_from(128 + n).ok(),
    }
}

pub fn stdout_closed() {
    SIGNAL
        .compare_exchange(0, libc::SIGPIPE, Ordering::SeqCst, Ordering::SeqCst)
        .ok();
    token().cancel();
}

/// Exits at once, leaving no SSH process behind.
fn abort(signal: i32) -> ! {
    super::raw::restore();
    drover_engine::kill_ssh_masters();
    std::process::exit(128 + signal);
}

/// Listens for signals for the rest of the run.
pub fn install() {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), libc::SIGINT),
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ];
    for (kind, number) in kinds {
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let first = SIGNAL
                    .compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                // On a terminal the line the signal's ^C was echoed on is
                // left first; elsewhere there is none to leave.
                let fresh = if std::io::stderr().is_terminal() {
                    "\n"
                } else {
                    ""
                };
                if !first || !CHANGING.load(Ordering::SeqCst) {
                    if first {
                        // Nothing in flight: leave now, quietly.
                        eprint!("{fresh}");
                    } else {
                        eprintln!("{fresh}{}", aborting());
                    }
                    abort(number);
                }
                if SERVING.load(Ordering::SeqCst) {
                    eprintln!("{fresh}stopping: streams and shells are told why (press Ctrl-C again to stop at once)");
                } else {
                    eprintln!("{fresh}interrupted: no new step starts; steps in flight finish or are undone (press Ctrl-C again to abort at once)");
                }
                token().cancel();
            }
        });
    }
}
