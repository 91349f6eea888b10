//! Words for people, the same in every command: counts with the right noun, and one
//! timestamp style (RFC 3339, whole seconds, UTC).

use time::{
    OffsetDateTime, UtcOffset, format_description::BorrowedFormatItem, macros::format_description,
};

/// The one timestamp style for people, in UTC: `2026-12-01T17:34:01Z`.
pub const TIMESTAMP_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// `1 deployment`, `2 deployments`, `0 entries` (for any integer type).
pub fn count<N: std::fmt::Display + TryInto<u8> + Copy>(n: N, one: &str, many: &str) -> String {
    let singular = matches!(n.try_into(), Ok(1u8));
    format!("{n} {}", if singular { one } else { many })
}

/// A moment for people: `2026-12-01T17:34:01Z` (RFC 3339, whole seconds, UTC).
pub fn timestamp(t: OffsetDateTime) -> String {
    // checked: a moment near year 9999 in another offset falls outside `time`'s range in
    // UTC (a lock file's `since` comes from disk).
    t.checked_to_offset(UtcOffset::UTC)
        .and_then(|u| u.format(TIMESTAMP_FORMAT).ok())
        .unwrap_or_else(|| t.unix_timestamp().to_string())
}

/// A word as a shell reads it, for commands people copy: as is when plain, else in single
/// quotes (`'Issuing CA'`).
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How far `t` is from `now`, in the largest whole unit: `in 12 days`, `in 1 hour`,
/// `1 day ago`, `3 minutes ago`.
pub fn relative_to(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let abs = d.abs();
    let amount = if abs.whole_days() >= 1 {
        count(abs.whole_days(), "day", "days")
    } else if abs.whole_hours() >= 1 {
        count(abs.whole_hours(), "hour", "hours")
    } else if abs.whole_minutes() >= 1 {
        count(abs.whole_minutes(), "minute", "minutes")
    } else if abs.whole_seconds() >= 1 {
        count(abs.whole_seconds(), "second", "seconds")
    } else {
        return "now".into();
    };
    if d.is_negative() {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Duration, macros::datetime};

    #[test]
    fn regression_a_moment_outside_utc_range_is_printed_not_a_panic() {
        let t = datetime!(9999-12-31 23:59:59 -01:00);
        assert_eq!(timestamp(t), t.unix_timestamp().to_string());
        let now = datetime!(2026-12-01 00:00:00 UTC);
        assert_eq!(relative_to(now, now), "now");
    }

    #[test]
    fn words_for_a_shell_are_quoted_when_they_need_it() {
        assert_eq!(shell_word("www.example.com"), "www.example.com");
        assert_eq!(shell_word("Issuing CA"), "'Issuing CA'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$(x)"), "'$(x)'");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "deployment", "deployments"), "1 deployment");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(count(2, "entry", "entries"), "2 entries");
    }

    #[test]
    fn one_timestamp_style() {
        let t = datetime!(2026-12-01 17:34:01.104368 +02:00);
        assert_eq!(timestamp(t), "2026-12-01T15:34:01Z");
    }

    #[test]
    fn relative_times_in_whole_units() {
        let now = datetime!(2026-12-01 12:00 UTC);
        assert_eq!(relative_to(now - Duration::days(1), now), "1 day ago");
        assert_eq!(relative_to(now - Duration::hours(30), now), "1 day ago");
        assert_eq!(relative_to(now + Duration::days(12), now), "in 12 days");
        assert_eq!(relative_to(now + Duration::minutes(90), now), "in 1 hour");
        assert_eq!(
            relative_to(now - Duration::minutes(5), now),
            "5 minutes ago"
        );
        assert_eq!(relative_to(now + Duration::seconds(1), now), "in 1 second");
    }
}
