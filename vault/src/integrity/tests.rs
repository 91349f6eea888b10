//! Tests of `integrity`.

use super::*;

/// Defence in depth behind the refusal of files with triggers (see `schema`): a trigger
/// that fires inside a seal, while the function holds the key, still cannot call it.
#[test]
fn the_mac_function_cannot_be_called_from_a_trigger_even_during_a_seal() {
    const T: Spec = Spec {
        table: "t",
        name: "id",
        key: "id",
        fields: "id, v",
    };
    let conn = Connection::open_in_memory().unwrap();
    register(&conn).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, mac BLOB);
         INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', NULL);
         CREATE TRIGGER forge AFTER UPDATE OF mac ON t WHEN NEW.id = 1 BEGIN
             UPDATE t SET v = 'evil', mac = certvault_row_mac('t', id, 'evil') WHERE id = 2;
         END;",
    )
    .unwrap();
    let key = Key::random().unwrap();
    let e = seal(&conn, &key, &T, "1 = 1", &[]).unwrap_err();
    assert!(format!("{e:?}").contains("certvault_row_mac"), "{e:?}");
    // And outside a seal, the function knows no key.
    conn.execute_batch("DROP TRIGGER forge").unwrap();
    let e = conn
        .query_row("SELECT certvault_row_mac('t', 1, 'a')", [], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .unwrap_err();
    assert!(e.to_string().contains("while it seals a row"), "{e}");
}

#[test]
fn field_counts_skip_the_commas_inside_sub_selects() {
    assert_eq!(field_count(&ENTRIES), 4);
    assert_eq!(field_count(&VERSIONS), 16);
    assert_eq!(field_count(&TAGS), 3);
    assert_eq!(field_count(&DEPLOYMENTS), 12);
    assert_eq!(field_count(&ACM), 23);
    assert_eq!(field_count(&CAS), 11);
    assert_eq!(field_count(&CAS_V7), 10);
    assert_eq!(field_count(&ISSUED), 5);
    assert_eq!(field_count(&REVOCATIONS), 9);
    assert_eq!(field_count(&REVOCATIONS_V7), 8);
    assert_eq!(field_count(&AWS_REVOCATIONS), 13);
    assert_eq!(field_count(&AWS_REVOCATIONS_V7), 12);
}
