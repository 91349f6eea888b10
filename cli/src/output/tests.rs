//! Tests of tables and of what reaches a terminal.

use unicode_width::UnicodeWidthStr;

use super::table::fit;
use super::*;

fn table(width: Option<usize>) -> Table {
    let p = Printer {
        json: false,
        color: false,
        width,
    };
    let mut t = p.table(&["ID", "WHEN", "ARN", "DETAIL"]);
    t.add_row(vec![
            cell("690dd7b27d7f7070"),
            cell("2026-12-01T17:34:01Z"),
            cell("arn:aws:acm:eu-west-1:123456789012:certificate/5f3e9b1c-0000-4000-8000-00000000abcd"),
            cell("ImportCertificate in eu-west-1: AccessDenied: User is not authorized to perform acm:ImportCertificate"),
        ]);
    t.keep(&[1]).shorten_middle(2);
    t
}

/// Issue "The first hour": tables ignored the terminal's width.
#[test]
fn a_table_fits_the_terminal_and_shortens_its_widest_columns() {
    for width in [60, 80, 100, 132] {
        let text = table(Some(width)).render();
        for line in text.lines() {
            assert!(
                line.width() <= width,
                "{width}: {line:?} is {} wide",
                line.width()
            );
        }
        // The kept column is whole; the ARN keeps its end.
        assert!(text.contains("2026-12-01T17:34:01Z"), "{text}");
        assert!(text.contains("abcd"), "{text}");
        assert!(text.contains('…'), "{text}");
    }
}

/// Review finding: at 80 columns `list` cut entry ids to `690dd…` (unusable) and two
/// equally wide columns were not cut evenly.
#[test]
fn regression_ids_stay_usable_prefixes_and_ties_are_cut_evenly() {
    let printer = Printer {
        json: false,
        color: false,
        width: Some(40),
    };
    let mut t = printer.table(&["ID", "A", "B"]);
    t.add_row(vec![
        cell("690dd3a1b2c3d4e5"),
        cell("aaaaaaaaaaaaaaaaaaaa"),
        cell("bbbbbbbbbbbbbbbbbbbb"),
    ]);
    t.id_column(0);
    let text = t.render();
    let row = text.lines().nth(3).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells[0].starts_with("690dd3a1") && !cells[0].contains('…'),
        "{row}"
    );
    let (a, b) = (cells[1].width(), cells[2].width());
    assert!(a.abs_diff(b) <= 1, "uneven: {row}");
    assert!(row.width() <= 40, "{row}");
}

/// Review finding (issue 16): at 80 columns `list` cut names to `api.e…` while its
/// EXPIRES columns kept 35; at 100 ids were cut while names were too. On a narrow
/// terminal expiry shows its day, ids their shortest unique prefix (never under 8),
/// and names what room is left.
#[test]
fn regression_a_narrow_list_shows_the_day_and_keeps_the_names() {
    let printer = Printer {
        json: false,
        color: false,
        width: Some(80),
    };
    let when = time::macros::datetime!(2027-01-13 20:45:17 UTC);
    let mut t = printer.table(&["ID", "NAME", "SOURCE", "EXPIRES", "", "KEY", "VER", "NAMES"]);
    for (id, name) in [
        ("94a8babd0dccd67d", "api1.example.com"),
        ("94a8babe0dce0000", "api2.example.com"),
    ] {
        t.add_row(vec![
            cell(id),
            cell(name),
            cell("imported"),
            expiry_date_cell(when),
            cell("in 39 days"),
            cell("yes"),
            cell("1/1"),
            cell(format!("{name}, www.{name}")),
        ]);
    }
    t.keep(&[3, 4, 5, 6]).id_column(0).yield_first(7);
    let text = t.render();
    assert!(text.lines().all(|l| l.width() <= 80), "{text}");
    assert!(text.contains(" 2027-01-13  in 39 days"), "{text}");
    assert!(!text.contains("20:45:17"), "{text}");
    assert!(text.contains(" api1.example.com "), "{text}");
    assert!(text.contains(" 94a8babd "), "{text}");
    // Ids that share 11 characters keep 12.
    let mut t = printer.table(&["ID", "NAME"]);
    for id in ["94a8babd0dccd67d", "94a8babd0dce0000"] {
        t.add_row(vec![cell(id), cell("x".repeat(100))]);
    }
    t.id_column(0);
    let ids = t.render();
    assert!(
        ids.contains(" 94a8babd0dcc ") && ids.contains(" 94a8babd0dce "),
        "{ids}"
    );
    // Wide enough, everything in full.
    let mut wide = printer.table(&["ID", "NAME", "SOURCE", "EXPIRES", "", "KEY", "VER", "NAMES"]);
    wide.add_row(vec![
        cell("94a8babd0dccd67d"),
        cell("a"),
        cell("imported"),
        expiry_date_cell(when),
    ]);
    wide.width = Some(200);
    let text = wide.render();
    assert!(text.contains("2027-01-13T20:45:17Z") && text.contains("94a8babd0dccd67d"));
}

#[test]
fn off_a_terminal_nothing_is_cut() {
    let text = table(None).render();
    assert!(!text.contains('…'));
    assert!(text.contains("perform acm:ImportCertificate"));
    assert!(text.contains("certificate/5f3e9b1c-0000-4000-8000-00000000abcd"));
}

#[test]
fn shortening_counts_columns_not_bytes() {
    assert_eq!(fit("www.example.com", 8, Shorten::End), "www.exa…");
    assert_eq!(fit("abcdefghij", 7, Shorten::Middle), "abc…hij");
    assert_eq!(fit("bücher.example", 7, Shorten::End), "bücher…");
    // Wide characters take two columns each.
    assert_eq!(fit("日本語ドメイン", 7, Shorten::End), "日本語…");
    assert_eq!(fit("short", 8, Shorten::End), "short");
}

#[test]
fn control_characters_cannot_reach_the_terminal() {
    assert_eq!(clean("www.example.com"), "www.example.com");
    assert_eq!(clean("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
    assert_eq!(clean("\x1b[2J"), "\\x1b[2J");
    assert_eq!(clean("evil\u{202e}moc.elgoog"), "evil\\u{202e}moc.elgoog");
    assert_eq!(clean("two\nlines"), "two\\x0alines");
    assert_eq!(
        clean_lines("first\nsecond \x1b[31m"),
        "first\nsecond \\x1b[31m"
    );
    assert_eq!(clean("\u{9b}31m"), "\\x9b31m");
}

#[test]
fn a_hint_is_found_behind_a_boxed_source() {
    // Regression: `acm delete` of another vault's copy wraps the agent's refusal as
    // `#[source] Box<ApiError>`; the chain holds the box, so the hint naming the command to
    // run was never printed.
    let refused = agent::ApiError::refused(
        "DeleteCertificate",
        "eu-west-1",
        agent::Refusal::AnotherVaultsCertificate {
            arn: "arn:aws:acm:eu-west-1:123456789012:certificate/x".into(),
            tag: "0123456789abcdef".into(),
            deployed: None,
        },
    );
    let e = agent::acm::Error::DeleteFailed {
        arn: "arn:aws:acm:eu-west-1:123456789012:certificate/x".into(),
        source: Box::new(refused),
    };
    let text = error_chain(e);
    assert!(
        text.ends_with(
            "so nothing was deleted. Delete it from that vault (`certvault undeploy ENTRY --delete-from-acm`)"
        ),
        "{text}"
    );
    // And behind a boxed vault error.
    let e = agent::acm::Error::Tampered {
        arn: "arn:aws:acm:eu-west-1:123456789012:certificate/x".into(),
        source: Box::new(vault::Error::RowTampered {
            table: "deployments",
            row: "3".into(),
        }),
    };
    assert!(
        error_chain(e).ends_with("; `certvault verify` lists every such row"),
        "the verify hint"
    );
}
