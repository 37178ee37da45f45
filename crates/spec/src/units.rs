//! Durations (`"500ms"`, `"10s"`, `"5m"`) and sizes (`"512k"`, `"20m"`, `"1g"`).

use std::time::Duration;

/// The longest duration: the engine counts durations in 64-bit nanoseconds.
pub const MAX_DURATION: Duration = Duration::from_secs(2_562_047 * 3600);

/// The largest size: the engine counts bytes in 64 bits, signed.
pub const MAX_SIZE: u64 = 8_388_607 << 40;

/// Parses `"500ms"`, `"10s"`, `"5m"`, `"1h"`, and sums such as `"1m30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration_at_most("duration", text, MAX_DURATION)
}

/// A duration of at most `max`; `what` names the key in the message that
/// says so (`stop_timeout "48h" is too large: the largest allowed is 24h`).
pub fn duration_at_most(what: &str, text: &str, max: Duration) -> Result<Duration, String> {
    let expected = || {
        format!("invalid duration {text:?}: expected a number and a unit (ms, s, m, h), e.g. \"500ms\", \"1.5s\", \"5m\"")
    };
    let too_large = || {
        format!(
            "{what} {text:?} is too large: the largest allowed is {}",
            format_duration(max)
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(expected());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (whole, fraction) = rest[..digits]
            .split_once('.')
            .unwrap_or((&rest[..digits], ""));
        let dotted = rest[..digits].contains('.');
        if whole.is_empty()
            || fraction.contains('.')
            || (dotted && fraction.is_empty())
            || fraction.len() > 9
        {
            return Err(expected());
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ns: u128 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(expected()),
        };
        // Digits alone, checked above: a number that does not fit is too large.
        let mantissa: u128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| too_large())?;
        // `1.5s` as Go's durations (Docker's) read it: exact to the nanosecond.
        let part = mantissa.checked_mul(unit_ns).ok_or_else(too_large)?
            / 10u128.pow(fraction.len() as u32);
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = &rest[unit_len..];
    }
    if total > max.as_nanos() {
        return Err(too_large());
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Parses `"512k"`, `"20m"`, `"1g"` (powers of 1024, as Docker counts), or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    size_at_most("size", text, MAX_SIZE)
}

/// A size of at most `max` bytes; `what` names the key in the message that
/// says so (`memory "2000t" is too large: the largest allowed is 1024t`).
pub fn size_at_most(what: &str, text: &str, max: u64) -> Result<u64, String> {
    let expected = || {
        format!("invalid size {text:?}: expected a number with an optional unit (b, k, m, g, t), e.g. \"512k\", \"20m\", \"1.5g\"")
    };
    let too_large = || {
        format!(
            "{what} {text:?} is too large: the largest allowed is {}",
            format_size(max)
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    let end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (whole, fraction) = lower[..end].split_once('.').unwrap_or((&lower[..end], ""));
    if whole.is_empty()
        || fraction.contains('.')
        || (lower[..end].contains('.') && fraction.is_empty())
    {
        return Err(expected());
    }
    if fraction.len() > 9 {
        return Err(expected());
    }
    let unit = lower[end..].trim();
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let shift = match unit {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(expected()),
    };
    // `1.5g` as Docker reads it: the number times the unit, whole bytes
    // (exact here, where Docker goes through a float).
    let scale = 10u128.pow(fraction.len() as u32);
    // Digits alone, checked above: a number that does not fit is too large.
    let mantissa: u128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| too_large())?;
    let bytes = mantissa
        .checked_mul(1u128 << shift)
        .map(|b| b / scale)
        .ok_or_else(too_large)?;
    match u64::try_from(bytes) {
        Ok(bytes) if bytes <= max => Ok(bytes),
        _ => Err(too_large()),
    }
}

/// The shortest exact spelling of a size: `20971520` → `"20m"`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
        let unit_bytes = 1u64 << shift;
        if bytes >= unit_bytes && bytes.is_multiple_of(unit_bytes) {
            return format!("{}{unit}", bytes / unit_bytes);
        }
    }
    format!("{bytes}b")
}

/// The shortest exact spelling of a duration: `90s` → `"90s"`, `500ms` → `"500ms"`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let secs = millis / 1000;
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        // Fractions as Go's (Docker's) durations take them, exact.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25m"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1h0.5m"), Ok(Duration::from_secs(3630)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        for bad in ["", "10", "s", "10x", "-1s", ".5s", "1.s", "1.2.3s", "10 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_duration("2562047h"),
            Ok(Duration::from_secs(2_562_047 * 3600))
        );
        for huge in [
            "2562048h",
            "99999999999h",
            "999999999999999999999999999999999999999999s",
        ] {
            assert_eq!(
                parse_duration(huge),
                Err(format!(
                    "duration {huge:?} is too large: the largest allowed is 2562047h"
                ))
            );
        }
        assert_eq!(
            duration_at_most("stop_timeout", "25h", Duration::from_secs(86400)),
            Err("stop_timeout \"25h\" is too large: the largest allowed is 24h".to_string())
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_size("20m"), Ok(20 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        // Fractions as `docker run --memory 1.5g` takes them, in whole bytes.
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("0.5m"), Ok(512 * 1024));
        assert_eq!(parse_size("1.1k"), Ok(1126));
        for bad in [
            "",
            "m",
            "1x",
            "-1m",
            ".5g",
            "1.g",
            "1.2.3m",
            "1.0000000001g",
        ] {
            assert!(
                parse_size(bad).is_err_and(|e| e.starts_with("invalid size")),
                "{bad:?} should be rejected as not a size"
            );
        }
        assert_eq!(parse_size("8388607t"), Ok(8_388_607 << 40));
        for huge in [
            "8388608t",
            "99999999999t",
            "99999999999999999999",
            "999999999999999999999999999999999999999999k",
        ] {
            assert_eq!(
                parse_size(huge),
                Err(format!(
                    "size {huge:?} is too large: the largest allowed is 8388607t"
                ))
            );
        }
        assert_eq!(
            size_at_most("memory", "99999999999t", 1 << 50),
            Err("memory \"99999999999t\" is too large: the largest allowed is 1024t".to_string())
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["512k", "20m", "1g", "100b"] {
            assert_eq!(format_size(parse_size(text).unwrap()), text);
        }
        for text in ["500ms", "10s", "5m", "2h", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
