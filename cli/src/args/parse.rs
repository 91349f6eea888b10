//! Parsers of argument values (periods, validities, anchors, sources), shared by the commands.

pub(crate) fn parse_anchor(s: &str) -> Result<(i64, String), String> {
    let (n, d) = s.split_once(':').ok_or_else(|| {
        format!("'{s}' is not an anchor: expected N:DIGEST, as `certvault log head` prints")
    })?;
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{n}' is not an event number"))?;
    if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{d}' is not a digest (64 hex digits)"));
    }
    Ok((n, d.to_ascii_lowercase()))
}

/// Parses `30s`, `90m`, `12h`, `30d` or `2w`. A bare number is refused: `--interval 5`
/// once meant five days.
pub(crate) fn parse_period(s: &str) -> Result<time::Duration, String> {
    parse_span(s, false)
}

/// A certificate's validity: a period, or years (`10y` is 3,650 days).
pub(crate) fn parse_validity(s: &str) -> Result<time::Duration, String> {
    parse_span(s, true)
}

/// A number with a unit: s, m, h, d, w (and y, 365 days, when `years`). A bare number is
/// refused with the likely meanings spelled out.
fn parse_span(s: &str, years: bool) -> Result<time::Duration, String> {
    let (units, names) = if years {
        (
            ["s", "m", "h", "d", "w", "y"].as_slice(),
            "seconds, minutes, hours, days, weeks, years",
        )
    } else {
        (
            ["s", "m", "h", "d", "w"].as_slice(),
            "seconds, minutes, hours, days, weeks",
        )
    };
    let (last, rest) = units.split_last().unwrap_or((&"d", &[]));
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None if !s.is_empty() => {
            let written: Vec<String> = rest.iter().map(|u| format!("{s}{u}")).collect();
            return Err(format!(
                "'{s}' has no unit: write {} or {s}{last} ({names})",
                written.join(", ")
            ));
        }
        None => return Err("an empty period: use a number with a unit, like 30d".into()),
    };
    let list = format!("{} or {last}", rest.join(", "));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a period: use a number with {list}, like 30d"))?;
    if n > 100_000 || (unit == "y" && n > 100) {
        return Err(format!("'{s}' is too long a period"));
    }
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" => Ok(time::Duration::days(n)),
        "w" => Ok(time::Duration::weeks(n)),
        "y" if years => Ok(time::Duration::days(365 * n)),
        _ => Err(format!(
            "unknown unit '{unit}' in '{s}': use {list} ({names})"
        )),
    }
}

pub(crate) fn parse_source(s: &str) -> Result<vault::entries::Source, String> {
    vault::entries::Source::parse(s).ok_or_else(|| {
        let all: Vec<&str> = vault::entries::Source::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        format!("unknown source '{s}': one of {}", all.join(", "))
    })
}
