//! Tests of `args`.

use super::*;

#[test]
fn periods() {
    assert_eq!(parse_period("30d").unwrap(), time::Duration::days(30));
    let bare = parse_period("30").unwrap_err();
    assert!(bare.contains("no unit") && bare.contains("30d"), "{bare}");
    assert_eq!(parse_period("45s").unwrap(), time::Duration::seconds(45));
    assert_eq!(parse_period("2w").unwrap(), time::Duration::weeks(2));
    assert_eq!(parse_period("12h").unwrap(), time::Duration::hours(12));
    assert!(parse_period("x").is_err());
    assert!(parse_period("3y").is_err());
    assert!(parse_period("99999999999999999999d").is_err());
}

#[test]
fn validities_take_years_and_say_so() {
    assert_eq!(parse_validity("10y").unwrap(), time::Duration::days(3650));
    assert_eq!(parse_validity("90d").unwrap(), time::Duration::days(90));
    let bare = parse_validity("5").unwrap_err();
    assert_eq!(
        bare,
        "'5' has no unit: write 5s, 5m, 5h, 5d, 5w or 5y (seconds, minutes, hours, days, weeks, years)"
    );
    let unit = parse_validity("5q").unwrap_err();
    assert!(unit.contains("use s, m, h, d, w or y"), "{unit}");
    assert!(parse_validity("101y").is_err());
    assert_eq!(
        parse_period("5").unwrap_err(),
        "'5' has no unit: write 5s, 5m, 5h, 5d or 5w (seconds, minutes, hours, days, weeks)"
    );
}

#[test]
fn clap_definition_is_valid() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
