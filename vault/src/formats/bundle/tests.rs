//! Chains: ordered by who signed whom, strays dropped, corrections accepted.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use super::*;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    p
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let p = ca_params(cn);
    let pem = p.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(p, key),
    }
}

fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let p = ca_params(cn);
    let pem = p.signed_by(&key, &parent.issuer).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(p, key),
    }
}

/// A leaf for `cn` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![cn.to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(90);
    (
        p.signed_by(&key, &ca.issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

fn fp(pem_text: &str) -> String {
    crate::records::deploy::pem_certificate_identity(pem_text)
        .unwrap()
        .0
}

fn chain_fps(b: &Bundle) -> Vec<String> {
    b.chain.iter().map(|c| c.info.fingerprint.clone()).collect()
}

fn read(text: &str) -> Bundle {
    Bundle::from_bytes(
        "in.pem",
        text.as_bytes(),
        None,
        None,
        InputPasswords::default(),
    )
    .unwrap()
}

/// Issue item 7: chains were ordered by subject name, so of two intermediates with the
/// same name (a re-keyed issuing CA) the first in the file was taken even when the other
/// had signed the leaf; the real issuer was appended after the root.
#[test]
fn regression_chains_are_ordered_by_signature_not_subject_name() {
    let r = root("Test Root");
    let old = intermediate(&r, "Issuing CA");
    let new = intermediate(&r, "Issuing CA");
    let (cert, key) = leaf(&new, "www.example.com");
    let b = read(&format!("{cert}{}{}{}{key}", old.pem, new.pem, r.pem));
    assert_eq!(b.leaf.info.fingerprint, fp(&cert));
    assert_eq!(chain_fps(&b), [fp(&new.pem), fp(&r.pem)]);
    assert!(
        b.notes()
            .iter()
            .any(|n| n.contains("Issuing CA") && n.contains("not part of")),
        "the other intermediate is dropped with a note: {:?}",
        b.notes()
    );
}

/// Issue item 7: certificates that are not part of the chain were kept, after it.
#[test]
fn regression_certificates_outside_the_chain_are_dropped_with_a_note() {
    let r = root("Test Root");
    let i = intermediate(&r, "Issuing CA");
    let stranger = root("Somebody Else's Root");
    let (cert, key) = leaf(&i, "www.example.com");
    // Any order in the file.
    let b = read(&format!("{}{}{cert}{}{key}", stranger.pem, r.pem, i.pem));
    assert_eq!(chain_fps(&b), [fp(&i.pem), fp(&r.pem)]);
    assert_eq!(b.notes().len(), 1, "{:?}", b.notes());
    assert!(b.notes()[0].contains("Somebody Else's Root"));
    // Without a key, the leaf is still the one that signed nothing else here.
    let b = read(&format!("{}{}{}{cert}", r.pem, stranger.pem, i.pem));
    assert_eq!(b.leaf.info.fingerprint, fp(&cert));
    assert_eq!(chain_fps(&b), [fp(&i.pem), fp(&r.pem)]);
}

/// A name match alone is not enough: a certificate that names the right issuer but was
/// signed by another key is not its issuer.
#[test]
fn an_impostor_with_the_issuers_name_is_not_taken_for_it() {
    let r = root("Test Root");
    let i = intermediate(&r, "Issuing CA");
    let impostor = root("Issuing CA");
    let (cert, key) = leaf(&i, "www.example.com");
    let b = read(&format!("{cert}{}{}{key}", impostor.pem, i.pem));
    assert_eq!(chain_fps(&b), [fp(&i.pem)]);
}

/// Issue item 7: a known leaf imported again with a different, valid chain could not
/// correct the chain the vault held (it was "already present").
#[test]
fn regression_a_known_leaf_with_a_corrected_chain_updates_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = crate::Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery staple".into()),
    )
    .unwrap();
    let r = root("Test Root");
    let i = intermediate(&r, "Issuing CA");
    let (cert, key) = leaf(&i, "www.example.com");
    // First imported with the intermediate alone, then with the whole chain.
    v.import(
        vec![read(&format!("{cert}{}{key}", i.pem))],
        &Default::default(),
    )
    .unwrap();
    let chain = |v: &crate::Vault| -> Vec<String> {
        v.show("www.example.com").unwrap().versions[0]
            .chain
            .iter()
            .map(|c| c.fingerprint_sha256.clone())
            .collect()
    };
    assert_eq!(chain(&v), [fp(&i.pem)]);
    v.import(
        vec![read(&format!("{cert}{}{}", i.pem, r.pem))],
        &Default::default(),
    )
    .unwrap();
    assert_eq!(chain(&v), [fp(&i.pem), fp(&r.pem)]);
    let shown = v.show("www.example.com").unwrap();
    assert_eq!(shown.versions.len(), 1, "still one version");
    assert!(
        v.audit_events()
            .unwrap()
            .iter()
            .any(|e| e.action == "chain-updated"),
        "audited"
    );
    // A bare leaf (no chain) changes nothing; the key stays usable.
    v.import(vec![read(&cert)], &Default::default()).unwrap();
    assert_eq!(chain(&v), [fp(&i.pem), fp(&r.pem)]);
}

/// Schema 4 rebuilds chains stored by earlier versions (ordered by subject name, strays
/// kept after them).
#[test]
fn upgrading_to_schema_4_rebuilds_stored_chains_by_signature() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let mut v = crate::Vault::create(
        &path,
        &Passphrase::new("correct horse battery staple".into()),
    )
    .unwrap();
    let r = root("Test Root");
    let i = intermediate(&r, "Issuing CA");
    let stranger = root("Stray Root");
    let (cert, key) = leaf(&i, "www.example.com");
    v.import(
        vec![read(&format!("{cert}{}{}{key}", i.pem, r.pem))],
        &Default::default(),
    )
    .unwrap();
    drop(v);
    // What schema 3 could have stored: the root first, a stray in the middle.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let der = |p: &str| ::pem::parse(p).unwrap().into_contents();
        c.execute("DELETE FROM chain_certs", []).unwrap();
        for (pos, p) in [&r.pem, &stranger.pem, &i.pem].into_iter().enumerate() {
            c.execute(
                "INSERT INTO chain_certs (version_id, position, cert_der, subject, issuer, fingerprint, not_after)
                 VALUES (1, ?1, ?2, 's', 'i', ?3, 0)",
                rusqlite::params![pos as i64, der(p), fp(p)],
            )
            .unwrap();
        }
        c.execute_batch(
            "DROP TABLE aws_revocations;
             DROP TABLE aws_private;
             DROP TABLE revocations;
             DROP TABLE issued;
             DROP TABLE cas;
             DROP INDEX deployments_by_arn;
             ALTER TABLE deployments DROP COLUMN deployed_chain;
             ALTER TABLE deployments DROP COLUMN import_started_at;
             ALTER TABLE entries DROP COLUMN mac;
             ALTER TABLE versions DROP COLUMN mac;
             ALTER TABLE tags DROP COLUMN mac;
             ALTER TABLE deployments DROP COLUMN mac;
             ALTER TABLE acm_certificates DROP COLUMN mac;
             DELETE FROM meta WHERE key = 'row_integrity';
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let v = crate::Vault::open(&path).unwrap();
    let chain: Vec<String> = v.show("www.example.com").unwrap().versions[0]
        .chain
        .iter()
        .map(|c| c.fingerprint_sha256.clone())
        .collect();
    assert_eq!(chain, [fp(&i.pem), fp(&r.pem)]);
}

/// Review finding: the served chain was rebuilt before it was compared, so a chain served
/// in the wrong order, or with something in the middle, compared equal to the right one.
#[test]
fn a_served_chain_is_compared_in_the_order_served() {
    let r = root("Test Root");
    let i = intermediate(&r, "Issuing CA");
    let stray = root("Appended Root");
    let (cert, _) = leaf(&i, "www.example.com");
    let id = |chain: &str| crate::formats::chain::served_identity(&cert, Some(chain)).unwrap();
    let right = id(&format!("{}{}", i.pem, r.pem));
    assert_eq!(
        right.chain_fingerprint,
        crate::formats::chain::chain_fingerprint(&[fp(&i.pem), fp(&r.pem)])
    );
    assert_ne!(id(&format!("{}{}", r.pem, i.pem)), right, "reversed");
    assert_ne!(
        id(&format!("{}{}{}", i.pem, stray.pem, r.pem)),
        right,
        "something in between"
    );
    // A root the emulator appends after the path does not count.
    assert_eq!(id(&format!("{}{}{}", i.pem, r.pem, stray.pem)), right);
}

/// A self-signed certificate for `cn` over `key`.
fn self_signed_with(key: &KeyPair, cn: &str, days: i64) -> String {
    let mut p = CertificateParams::new(vec![cn.to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(days);
    p.self_signed(key).unwrap().pem()
}

/// The PKCS#8 PEM of `key` with one byte of its private part flipped (its public part, and
/// so its "match" with the certificate, untouched).
fn with_flipped_private_part(key_pem: &str) -> String {
    let der = ::pem::parse(key_pem).unwrap().into_contents();
    let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
    let secret: Vec<u8> = match info.algorithm.oid.to_string().as_str() {
        oid::EC_PUBLIC_KEY => sec1::EcPrivateKey::from_der(info.private_key)
            .unwrap()
            .private_key
            .to_vec(),
        oid::RSA => pkcs1::RsaPrivateKey::from_der(info.private_key)
            .unwrap()
            .private_exponent
            .as_bytes()
            .to_vec(),
        other => panic!("{other}"),
    };
    let at = der
        .windows(secret.len())
        .position(|w| w == secret.as_slice())
        .unwrap();
    let mut bad = der.clone();
    bad[at + secret.len() / 2] ^= 0x01;
    ::pem::encode(&::pem::Pem::new("PRIVATE KEY", bad))
}

/// Issue "The vault guards its metadata", item 5: the key/certificate check compared only
/// the public part, so an EC key with a flipped scalar was accepted (and then blocked the
/// real key forever).
#[test]
fn regression_a_key_with_a_flipped_private_part_is_refused() {
    for (alg, what) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256"),
        (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384"),
        (&rcgen::PKCS_RSA_SHA256, "RSA"),
    ] {
        let key = if what == "RSA" {
            let pem = std::process::Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .unwrap()
                .stdout;
            KeyPair::from_pem_and_sign_algo(std::str::from_utf8(&pem).unwrap(), alg).unwrap()
        } else {
            KeyPair::generate_for(alg).unwrap()
        };
        let cert = self_signed_with(&key, "www.example.com", 90);
        let good = key.serialize_pem();
        assert!(
            Bundle::from_bytes(
                "good.pem",
                format!("{cert}{good}").as_bytes(),
                None,
                None,
                InputPasswords::default()
            )
            .is_ok(),
            "{what}"
        );
        let bad = with_flipped_private_part(&good);
        let err = Bundle::from_bytes(
            "cert.pem",
            cert.as_bytes(),
            Some(("bad.key", bad.as_bytes())),
            None,
            InputPasswords::default(),
        )
        .expect_err(what)
        .to_string();
        assert!(
            err.contains("bad.key") && err.contains("does not work"),
            "{what}: {err}"
        );
    }
}

/// A P-521 key (which ring cannot sign with) is checked by its scalar, with OpenSSL's keys.
#[test]
fn a_p521_key_is_checked_by_its_scalar() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let crt = dir.path().join("c.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-nodes",
            "-subj",
            "/CN=p521.example.com",
            "-days",
            "30",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let cert = std::fs::read_to_string(&crt).unwrap();
    let good = std::fs::read_to_string(&key).unwrap();
    Bundle::from_bytes(
        "c.pem",
        cert.as_bytes(),
        Some(("k.pem", good.as_bytes())),
        None,
        InputPasswords::default(),
    )
    .unwrap();
    let bad = with_flipped_private_part(&good);
    let err = Bundle::from_bytes(
        "c.pem",
        cert.as_bytes(),
        Some(("k.pem", bad.as_bytes())),
        None,
        InputPasswords::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not work"), "{err}");
}

/// A certificate stored with a key that does not work (imported before keys were checked)
/// gets the right key when it is imported again with it.
#[test]
fn a_bogus_stored_key_is_replaced_by_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = crate::Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery staple".into()),
    )
    .unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = self_signed_with(&key, "www.example.com", 90);
    let good = read(&format!("{cert}{}", key.serialize_pem()));
    // As an earlier certvault stored it: the certificate with a key that does not work.
    let bad_pem = with_flipped_private_part(&key.serialize_pem());
    let bad_der = ::pem::parse(&bad_pem).unwrap().into_contents();
    let mut bogus = read(&cert);
    bogus.key = Some(PrivateKey {
        public: good.key.as_ref().unwrap().public.clone(),
        pkcs8: SecretBytes::new(bad_der),
    });
    v.import(vec![bogus], &Default::default()).unwrap();
    let out = v.import(vec![good], &Default::default()).unwrap();
    assert!(
        matches!(out[0], crate::entries::ImportOutcome::KeyReplaced { .. }),
        "{out:?}"
    );
    assert!(
        v.audit_events()
            .unwrap()
            .iter()
            .any(|e| e.action == "key-replaced")
    );
}

/// A renewal over the same key pair, imported without its key, gets the key the vault
/// already holds (sealed again for the new row): it can be deployed and exported.
#[test]
fn a_renewal_over_the_same_key_pair_reuses_the_sealed_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = crate::Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery staple".into()),
    )
    .unwrap();
    let key = KeyPair::generate().unwrap();
    let first = self_signed_with(&key, "www.example.com", 30);
    v.import(
        vec![read(&format!("{first}{}", key.serialize_pem()))],
        &Default::default(),
    )
    .unwrap();
    let renewed = self_signed_with(&key, "www.example.com", 300);
    v.import(vec![read(&renewed)], &Default::default()).unwrap();
    let shown = v.show("www.example.com").unwrap();
    assert_eq!(shown.versions.len(), 2);
    assert!(
        shown.versions[0].current && shown.versions[0].has_private_key,
        "{shown:#?}"
    );
    let m = v.import_material("www.example.com").unwrap();
    assert_eq!(m.fingerprint, fp(&renewed));
}
