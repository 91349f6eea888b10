//! Regenerates the committed test fixtures in `tests/fixtures/`: a root and an intermediate
//! CA, leaves with P-256, P-384, RSA-2048 and Ed25519 keys, an expired leaf, and the chain.
//!
//! Run: `cargo run -p certvault-tests --bin gen-fixtures` (needs `openssl` for the RSA key,
//! which rcgen cannot generate). Validity runs to 2045-2050 so the files stay usable.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result, bail};
use certvault_tests::TestCa;
use rcgen::KeyPair;
use time::macros::datetime;

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    fs::create_dir_all(&dir)?;
    let write = |name: &str, text: &str| -> Result<()> {
        fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))
    };
    let (nb, na) = (
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2050-01-01 0:00 UTC),
    );
    let root = TestCa::root("certvault Test Root CA", nb, na)?;
    let inter = root.intermediate(
        "certvault Test Intermediate CA",
        nb,
        datetime!(2049-01-01 0:00 UTC),
    )?;
    write("root.pem", &root.cert_pem)?;
    write("root.key.pem", &root.key_pem)?;
    write("intermediate.pem", &inter.cert_pem)?;
    write("intermediate.key.pem", &inter.key_pem)?;
    write("chain.pem", &format!("{}{}", inter.cert_pem, root.cert_pem))?;

    let leaf_until = datetime!(2045-01-01 0:00 UTC);
    let keys: [(&str, KeyPair); 3] = [
        (
            "ec256",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        ),
        (
            "ec384",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
        ),
        ("ed25519", KeyPair::generate_for(&rcgen::PKCS_ED25519)?),
    ];
    for (name, key) in &keys {
        let host = format!("{name}.fixture.test");
        let cert = inter.leaf(&[&host, &format!("alt.{host}")], key, nb, leaf_until)?;
        write(&format!("{name}.pem"), &cert)?;
        write(&format!("{name}.key.pem"), &key.serialize_pem())?;
    }

    let rsa_key_pem = openssl_rsa_key()?;
    let rsa_key = KeyPair::from_pem(&rsa_key_pem).context("loading the RSA key")?;
    let cert = inter.leaf(&["rsa2048.fixture.test"], &rsa_key, nb, leaf_until)?;
    write("rsa2048.pem", &cert)?;
    write("rsa2048.key.pem", &rsa_key_pem)?;

    let old = KeyPair::generate()?;
    let cert = inter.leaf(
        &["expired.fixture.test"],
        &old,
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2021-01-01 0:00 UTC),
    )?;
    write("expired.pem", &cert)?;
    write("expired.key.pem", &old.serialize_pem())?;
    eprintln!("fixtures written to {}", dir.display());
    Ok(())
}

fn openssl_rsa_key() -> Result<String> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl genpkey failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}
