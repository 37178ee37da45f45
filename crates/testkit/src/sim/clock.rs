//! Time as a Docker engine writes it (Go's RFC 3339 with nanoseconds, the
//! `docker ps` durations), and the seeded randomness behind IDs and jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Go's zero `time.Time`, which the engine writes for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `t` as Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction
/// dropped, as the engine writes `Created`, `StartedAt`, a stats `read`.
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_string())
}

/// `Some(t)` as [`rfc3339`], `None` as the zero time.
pub fn rfc3339_or_zero(t: Option<SystemTime>) -> String {
    t.map_or_else(|| ZERO_TIME.to_string(), rfc3339)
}

pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A time given as Unix seconds, with an optional fraction (`1796041732`,
/// `1796041732.5`), as `since` and `until` of the events and logs calls.
pub fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    if !fraction.is_empty() {
        let digits: String = fraction.chars().take(9).collect();
        let scale = 10u32.pow(9 - u32::try_from(digits.len()).ok()?);
        nanos = digits.parse::<u32>().ok()?.checked_mul(scale)?;
    }
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// go-units' `HumanDuration`, which `docker ps` statuses are made of
/// ("Up 6 seconds", "Exited (0) About a minute ago").
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = ((d.as_secs_f64() / 3600.0) + 0.5) as u64;
    match () {
        () if seconds < 1 => "Less than a second".to_string(),
        () if seconds == 1 => "1 second".to_string(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".to_string(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".to_string(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// SplitMix64: small, fast, and the same sequence for the same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// A 64-hex-digit ID, as the engine gives containers and execs.
    pub fn hex_id(&mut self) -> String {
        (0..4)
            .map(|_| format!("{:016x}", self.next_u64()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_engine_writes_them() {
        let t = UNIX_EPOCH + Duration::new(1_796_646_491, 307_651_400);
        assert_eq!(rfc3339(t), "2026-12-07T12:28:11.3076514Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(60)),
            "1970-01-01T00:01:00Z"
        );
        assert_eq!(rfc3339_or_zero(None), ZERO_TIME);
        assert_eq!(
            parse_unix("12.5"),
            Some(UNIX_EPOCH + Duration::from_millis(12_500))
        );
        assert_eq!(parse_unix("12"), Some(UNIX_EPOCH + Duration::from_secs(12)));
        assert_eq!(parse_unix("x"), None);
    }

    #[test]
    fn durations_read_as_docker_ps_writes_them() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(41)), "41 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86_400)), "3 days");
    }

    #[test]
    fn the_same_seed_gives_the_same_ids() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let id = a.hex_id();
        assert_eq!(id.len(), 64);
        assert_eq!(id, b.hex_id());
        assert_ne!(a.hex_id(), Rng::new(8).hex_id());
    }
}
