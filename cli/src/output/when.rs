//! When things happen and expire, for people: dates, relative times, expiry colours.

use time::OffsetDateTime;

use super::table::{Cell, Color, cell};

/// The colour for a certificate expiring at `not_after`: red when past, yellow within 30
/// days.
pub(crate) fn expiry_color(not_after: OffsetDateTime) -> Option<Color> {
    match expiry_state(not_after) {
        Expiry::Expired => Some(Color::Red),
        Expiry::Soon => Some(Color::Yellow),
        Expiry::Fine => None,
    }
}

/// When `not_after` is, coloured by how soon it comes; on a narrow terminal only its day
/// (`2027-01-13`), so names are not cut to make room for the time of day.
pub(crate) fn expiry_date_cell(not_after: OffsetDateTime) -> Cell {
    expiry_cell(date(not_after), not_after).or_short(day(not_after))
}

/// The day of a moment, in UTC: `2027-01-13`.
pub(crate) fn day(t: OffsetDateTime) -> String {
    date(t).get(..10).unwrap_or_default().to_owned()
}

/// A cell coloured by how soon `not_after` comes.
pub(crate) fn expiry_cell(text: impl std::fmt::Display, not_after: OffsetDateTime) -> Cell {
    let c = cell(text);
    match expiry_color(not_after) {
        Some(color) => c.fg(color),
        None => c,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    Expired,
    Soon,
    Fine,
}

pub(crate) fn expiry_state(not_after: OffsetDateTime) -> Expiry {
    let now = OffsetDateTime::now_utc();
    if not_after <= now {
        Expiry::Expired
    } else if not_after - now <= time::Duration::days(30) {
        Expiry::Soon
    } else {
        Expiry::Fine
    }
}

/// When a certificate expires, from now: "in 12 days", "expired 1 day ago".
pub(crate) fn relative(not_after: OffsetDateTime) -> String {
    let now = OffsetDateTime::now_utc();
    let r = vault::text::relative_to(not_after, now);
    if not_after <= now {
        format!("expired {r}")
    } else {
        r
    }
}

/// A moment for people: RFC 3339, whole seconds, UTC (as every command prints it).
pub(crate) fn date(t: OffsetDateTime) -> String {
    vault::text::timestamp(t)
}
