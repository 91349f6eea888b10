//! Tests of `crypto`.

use super::*;

#[test]
fn seal_open_round_trip_and_aad_binding() {
    let k = Key::random().unwrap();
    let sealed = k.seal(b"row 1", b"secret key bytes").unwrap();
    assert_eq!(
        k.open(b"row 1", &sealed).unwrap().expose_secret(),
        b"secret key bytes"
    );
    assert!(k.open(b"row 2", &sealed).is_none(), "AAD must bind the row");
}

#[test]
fn every_flipped_byte_is_detected() {
    let k = Key::random().unwrap();
    let sealed = k.seal(b"aad", b"0123456789").unwrap();
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(
            k.open(b"aad", &bad).is_none(),
            "flip at byte {i} went unnoticed"
        );
    }
    assert!(k.open(b"aad", &sealed[..sealed.len() - 1]).is_none());
}

#[test]
fn nonces_are_fresh() {
    let k = Key::random().unwrap();
    let a = k.seal(b"", b"same").unwrap();
    let b = k.seal(b"", b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn wrong_key_fails() {
    let k = Key::random().unwrap();
    let other = Key::random().unwrap();
    let sealed = k.seal(b"a", b"x").unwrap();
    assert!(other.open(b"a", &sealed).is_none());
}

#[test]
fn kdf_params_round_trip_and_bounds() {
    let p = KdfParams::DEFAULT;
    assert_eq!(KdfParams::decode(&p.encode()), Ok(p));
    assert_eq!(p.check(), Ok(()));
    assert_eq!(KdfParams::MINIMUM.check(), Ok(()));
    assert_eq!(KdfParams::MAXIMUM.check(), Ok(()));
    let with = |m_kib, t, p| KdfParams { m_kib, t, p }.check().unwrap_err();
    assert!(with(1024, 3, 1).contains("memory m = 1024 KiB is below the minimum"));
    assert!(with(8 * 1024 * 1024, 3, 4).contains("memory m = 8388608 KiB is above the maximum"));
    assert!(with(65536, 65, 4).contains("passes t = 65 is above"));
    assert!(with(65536, 3, 0).contains("lanes p = 0 is below"));
    assert!(with(65536, 3, 1 << 24).contains("lanes p = 16777216 is above"));
    for (header, says) in [
        ("argon2id$v=19$m=1,t=2", "p is missing"),
        ("scrypt", "not Argon2id"),
        ("argon2id$v=19$m=1,t=2,p=3,t=2", "t is given twice"),
        ("argon2id$v=19$m=99999999999,t=2,p=3", "m is not a number"),
        ("argon2id$v=19$m=1,t=2,p=3,x=1", "unknown"),
        ("argon2id$v=19$m=1;t=2", "not a number"),
        ("argon2id$v=19$m", "name=value"),
    ] {
        let err = KdfParams::decode(header).unwrap_err();
        assert!(err.contains(says), "{header}: {err}");
    }
}

#[test]
fn derived_keys_differ_by_purpose() {
    let k = Key::random().unwrap();
    assert_ne!(k.derive(b"a").mac(b"x"), k.derive(b"b").mac(b"x"));
    let m = k.derive(b"a");
    assert!(m.verify_mac(b"x", &m.mac(b"x")));
    assert!(!m.verify_mac(b"y", &m.mac(b"x")));
}
