//! RFC 3339 timestamps, as image configs write `created`: parsed by jiff,
//! the one time library drover uses (`drover_plan::time` wraps the same).
//! It takes what Docker, BuildKit, Buildah, Kaniko and ko write:
//! `2015-10-30T12:34:56Z`, fractional seconds of any length, and numeric
//! offsets.

/// Seconds since the Unix epoch for an RFC 3339 date-time, or `None` when
/// the text is not one.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn parses_what_image_builders_write() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2015-10-30T12:34:56Z"), Some(1_446_208_496));
        assert_eq!(
            parse_rfc3339("2015-10-30T12:34:56.123456789Z"),
            Some(1_446_208_496)
        );
        assert_eq!(
            parse_rfc3339("2015-10-30T14:34:56+02:00"),
            Some(1_446_208_496)
        );
        assert_eq!(
            parse_rfc3339("2015-10-30T07:04:56.5-05:30"),
            Some(1_446_208_496)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Some(1_483_228_799));
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2015-10-30",
            "2015-10-30T12:34:56",
            "2015-13-30T12:34:56Z",
            "2015-02-29T12:34:56Z",
            "2015-10-30T24:00:00Z",
            "2015-10-30T12:34:56.Z",
            "2015/10/30T12:34:56Z",
            "2015-10-30T12:34:56Zjunk",
            "２０１５-10-30T12:34:56Z",
            "+015-10-30T12:34:56Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
