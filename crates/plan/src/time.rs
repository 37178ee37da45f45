//! Time, one way. Instants are [`Timestamp`]s (jiff); the engines' and
//! drover's own RFC 3339 texts are parsed here and nowhere else, and "now"
//! is asked here, so a simulation can tell every rule what time it is.

use std::sync::OnceLock;
use std::time::Duration;

pub use jiff::Timestamp;

/// A clock other than the system's, set once (by a simulation).
static CLOCK: OnceLock<fn() -> Timestamp> = OnceLock::new();

/// Makes `clock` the time every rule reads from now on, for the rest of
/// the process: a simulation's virtual time. Only the first call counts.
pub fn set_clock(clock: fn() -> Timestamp) {
    let _ = CLOCK.set(clock);
}

/// Now: the system clock, or the clock a simulation set.
pub fn now() -> Timestamp {
    match CLOCK.get() {
        Some(clock) => clock(),
        None => Timestamp::now(),
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i64 {
    i64::try_from(now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// An RFC 3339 time as an engine (or a drover label) writes it. The
/// engine's "never" (`0001-01-01T00:00:00Z`) and anything unreadable are `None`.
pub fn parse(text: &str) -> Option<Timestamp> {
    let t: Timestamp = text.trim().parse().ok()?;
    (t > Timestamp::UNIX_EPOCH).then_some(t)
}

/// RFC 3339 in UTC, as drover writes it into labels and JSON.
pub fn format(t: Timestamp) -> String {
    t.to_string()
}

/// Whole seconds since the Unix epoch.
pub fn unix_secs(t: Timestamp) -> i64 {
    t.as_second()
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

/// A time from whole Unix seconds (for the engines' event times).
pub fn from_unix_secs(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

/// A time from Unix nanoseconds.
pub fn from_unix_nanos(nanos: i64) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(nanos)).ok()
}

/// How long from `earlier` to `later`; zero when `later` is not later.
pub fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    let span = later.duration_since(earlier);
    Duration::try_from(span).unwrap_or(Duration::ZERO)
}

/// `t` moved back by `d` (saturating at the epoch).
pub fn before(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_times_parse_and_never_is_none() {
        let t = parse("2026-11-24T23:05:58.123456789Z").expect("parses");
        assert_eq!(unix_secs(t), 1_795_561_558);
        assert_eq!(
            parse("2026-11-25T00:05:58+01:00").map(unix_secs),
            Some(1_795_561_558)
        );
        assert_eq!(parse("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(&format(t)), Some(t));
    }

    #[test]
    fn durations_between_times_never_go_negative() {
        let a = parse("2026-01-01T00:00:10Z").expect("parses");
        let b = parse("2026-01-01T00:00:00Z").expect("parses");
        assert_eq!(since(a, b), Duration::from_secs(10));
        assert_eq!(since(b, a), Duration::ZERO);
        assert_eq!(before(a, Duration::from_secs(10)), b);
    }
}
