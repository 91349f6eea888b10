//! Input bombs: encrypted keys and PKCS#12 bundles whose key derivation would abort or stall
//! the import, refused within a second and naming the file; and legitimate files that still
//! import. The bombs are built here from real encryptions with one parameter raised.

use std::{sync::mpsc, time::Duration};

use der::{
    Decode, Encode,
    asn1::{Any, ObjectIdentifier as Oid, OctetString},
};
use pkcs8::{
    der::{Decode as _, Encode as _},
    pkcs5 as pkcs5_v07,
};
use pkcs12::{
    CertBag,
    cms::{
        cert::x509::spki::AlgorithmIdentifierOwned,
        content_info::{CmsVersion, ContentInfo},
        encrypted_data::EncryptedData,
        enveloped_data::EncryptedContentInfo,
    },
    pbe_params::EncryptedPrivateKeyInfo,
    safe_bag::SafeBag,
};
use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::{
    Passphrase,
    formats::{Bundle, InputPasswords},
};

const KEY_PASSWORD: &str = "key password";
const P12_PASSWORD: &str = "p12 password";

/// Runs `f` on its own thread and waits at most a second for it: a bomb that is not caught
/// would abort the process, or still be deriving a key long after.
fn within_a_second<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(1), f)
}

fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        panic!("still working after {limit:?}: the input was not refused up front")
    })
}

/// A self-signed P-256 certificate (DER) and its PKCS#8 key (DER).
fn cert_and_key() -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["bomb.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec())).into_bytes()
}

/// Imports `cert` with the key file `key.pem`, the way `certvault import CERT --key FILE
/// --key-password-file ...` does; the error as the CLI prints it.
fn import_with_key(cert: Vec<u8>, key: Vec<u8>) -> Result<Bundle, String> {
    let pw = Passphrase::new(KEY_PASSWORD.into());
    Bundle::from_bytes(
        "cert.pem",
        &pem("CERTIFICATE", &cert),
        Some(("key.pem", &key)),
        None,
        InputPasswords {
            pkcs12: None,
            key: Some(&pw),
        },
    )
    .map_err(|e| e.to_string())
}

fn import_p12(bytes: Vec<u8>) -> Result<Bundle, String> {
    let pw = Passphrase::new(P12_PASSWORD.into());
    Bundle::from_bytes(
        "bundle.p12",
        &bytes,
        None,
        None,
        InputPasswords {
            pkcs12: Some(&pw),
            key: None,
        },
    )
    .map_err(|e| e.to_string())
}

// ---- encrypted PKCS#8 -------------------------------------------------------------------

/// `key` encrypted the way OpenSSL 3 does by default: PBKDF2-HMAC-SHA256, 2048 iterations,
/// AES-256-CBC.
fn pbkdf2_encrypted(key: &[u8]) -> Vec<u8> {
    let params =
        pkcs5_v07::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16]).unwrap();
    pkcs8::PrivateKeyInfo::from_der(key)
        .unwrap()
        .encrypt_with_params(params, KEY_PASSWORD)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// `key` encrypted the way `openssl pkcs8 -topk8 -scrypt` does: N = 2^14, r = 8, p = 1.
fn scrypt_encrypted(key: &[u8]) -> Vec<u8> {
    let scrypt = pkcs5_v07::scrypt::Params::new(14, 8, 1, 32).unwrap();
    let params =
        pkcs5_v07::pbes2::Parameters::scrypt_aes256cbc(scrypt, &[7; 16], &[9; 16]).unwrap();
    pkcs8::PrivateKeyInfo::from_der(key)
        .unwrap()
        .encrypt_with_params(params, KEY_PASSWORD)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// The same encrypted key with its key-derivation parameters changed by `edit`.
fn with_kdf(encrypted: &[u8], edit: impl FnOnce(&mut pkcs5_v07::pbes2::Kdf<'_>)) -> Vec<u8> {
    let mut info = pkcs8::EncryptedPrivateKeyInfo::from_der(encrypted).unwrap();
    let pkcs5_v07::EncryptionScheme::Pbes2(params) = &mut info.encryption_algorithm else {
        panic!("PBES2 expected");
    };
    edit(&mut params.kdf);
    info.to_der().unwrap()
}

#[test]
fn scrypt_bomb_key_with_n_2_40_is_refused_within_a_second_naming_the_file() {
    let (cert, key) = cert_and_key();
    let bomb = with_kdf(&scrypt_encrypted(&key), |kdf| {
        let pkcs5_v07::pbes2::Kdf::Scrypt(s) = kdf else {
            panic!("scrypt expected")
        };
        s.cost_parameter = 1 << 40;
    });
    assert!(bomb.len() < 300, "a small file: {} bytes", bomb.len());
    // DER and PEM alike.
    for file in [bomb.clone(), pem("ENCRYPTED PRIVATE KEY", &bomb)] {
        let cert = cert.clone();
        let err = within_a_second(move || import_with_key(cert, file)).unwrap_err();
        assert_eq!(
            err,
            "key.pem: the private key's encryption asks for scrypt with N = 2^40 (at most 2^20 is accepted)"
        );
    }
}

#[test]
fn pbkdf2_bomb_key_with_2_31_iterations_is_refused_within_a_second() {
    let (cert, key) = cert_and_key();
    let bomb = with_kdf(&pbkdf2_encrypted(&key), |kdf| {
        let pkcs5_v07::pbes2::Kdf::Pbkdf2(p) = kdf else {
            panic!("PBKDF2 expected")
        };
        p.iteration_count = 1 << 31;
    });
    let err = within_a_second(move || import_with_key(cert, bomb)).unwrap_err();
    assert_eq!(
        err,
        "key.pem: the private key's encryption asks for PBKDF2 with iterations = 2147483648 (at most 10000000 is accepted)"
    );
}

#[test]
fn scrypt_bomb_key_is_refused_even_without_a_password() {
    let (cert, key) = cert_and_key();
    let bomb = with_kdf(&scrypt_encrypted(&key), |kdf| {
        if let pkcs5_v07::pbes2::Kdf::Scrypt(s) = kdf {
            s.cost_parameter = 1 << 40;
        }
    });
    let err = Bundle::from_bytes(
        "cert.pem",
        &pem("CERTIFICATE", &cert),
        Some(("key.pem", &bomb)),
        None,
        InputPasswords::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("N = 2^40"), "{err}");
}

#[test]
fn scrypt_memory_and_odd_n_are_bounded_too() {
    let (cert, key) = cert_and_key();
    let scrypt = scrypt_encrypted(&key);
    for (n, r, p, says) in [
        // N within bounds, but r and p make it 128 · 64 · 2^16 · 16 bytes = 8 GiB of work.
        (
            1 << 16,
            64,
            16,
            "scrypt with 128·r·N·p = 8192 MiB (N = 2^16, r = 64, p = 16) (at most 256 MiB is accepted)",
        ),
        (
            0,
            8,
            1,
            "scrypt with N = 0 (a power of two from 2 to 2^20 is accepted)",
        ),
        (
            3 << 10,
            8,
            1,
            "scrypt with N = 3072 (a power of two from 2 to 2^20 is accepted)",
        ),
        (
            u64::MAX,
            8,
            1,
            "scrypt with N = 18446744073709551615 (at most 2^20 is accepted)",
        ),
    ] {
        let file = with_kdf(&scrypt, |kdf| {
            if let pkcs5_v07::pbes2::Kdf::Scrypt(s) = kdf {
                s.cost_parameter = n;
                s.block_size = r;
                s.parallelization = p;
            }
        });
        let cert = cert.clone();
        let err = within_a_second(move || import_with_key(cert, file)).unwrap_err();
        assert!(err.contains(says), "N={n} r={r} p={p}: {err}");
    }
    // Exactly at the limits, 128 · 8 · 2^18 = 256 MiB and N = 2^20 with r = p = 1, pass.
    for (n, r, p) in [(1 << 18, 8, 1), (1 << 20, 1, 1), (1 << 17, 8, 2)] {
        let file = with_kdf(&scrypt, |kdf| {
            if let pkcs5_v07::pbes2::Kdf::Scrypt(s) = kdf {
                s.cost_parameter = n;
                s.block_size = r;
                s.parallelization = p;
            }
        });
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&file).unwrap();
        assert!(check_encrypted_pkcs8(&info.encryption_algorithm).is_ok());
    }
}

#[test]
fn pbkdf2_iterations_up_to_the_limit_pass_the_check() {
    let (_, key) = cert_and_key();
    let encrypted = pbkdf2_encrypted(&key);
    for (count, ok) in [
        (MAX_PBKDF2_ITERATIONS, true),
        (MAX_PBKDF2_ITERATIONS + 1, false),
        (u64::from(u32::MAX), false),
    ] {
        let file = with_kdf(&encrypted, |kdf| {
            if let pkcs5_v07::pbes2::Kdf::Pbkdf2(p) = kdf {
                p.iteration_count = u32::try_from(count).unwrap();
            }
        });
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&file).unwrap();
        assert_eq!(
            check_encrypted_pkcs8(&info.encryption_algorithm).is_ok(),
            ok,
            "{count}"
        );
    }
}

/// (e) OpenSSL 3's defaults: `-v2 aes-256-cbc` (PBKDF2, 2048 iterations) and `-scrypt`
/// (N = 2^14, r = 8, p = 1).
#[test]
fn legitimate_encrypted_keys_still_import() {
    for encrypt in [pbkdf2_encrypted, scrypt_encrypted] {
        let (cert, key) = cert_and_key();
        let bundle = import_with_key(cert, pem("ENCRYPTED PRIVATE KEY", &encrypt(&key))).unwrap();
        assert!(bundle.has_key());
    }
}

// ---- PKCS#12 --------------------------------------------------------------------------------

const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERT: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");
const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");

/// A DER SEQUENCE of already-encoded elements (for the fields the `pkcs12` types hold as
/// `i32` and so cannot write as 2^31).
fn sequence(elements: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = elements.concat();
    let mut out = der::Header::new(der::Tag::Sequence, body.len().try_into().unwrap())
        .to_der()
        .unwrap();
    out.extend(body);
    out
}

/// A DER INTEGER of any count, 2^31 included.
fn integer(n: u64) -> Vec<u8> {
    der::Encode::to_der(&n).unwrap()
}

fn pbes2_alg(params: &pkcs5::pbes2::Parameters) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: PBES2,
        parameters: Some(Any::from_der(&params.to_der().unwrap()).unwrap()),
    }
}

/// PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, as OpenSSL 3 writes PKCS#12 by default.
fn pbkdf2_params(iterations: u32) -> pkcs5::pbes2::Parameters {
    let mut params =
        pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(2048, &[5; 16], [6; 16])
            .unwrap();
    // Set afterwards: the constructor refuses more than 10^8.
    if let pkcs5::pbes2::Kdf::Pbkdf2(p) = &mut params.kdf {
        p.iteration_count = iterations;
    }
    params
}

fn scrypt_params(n: u64, r: u16, p: u16) -> pkcs5::pbes2::Parameters {
    let mut params =
        pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1, &[5; 16], [6; 16]).unwrap();
    params.kdf = pkcs5::pbes2::Kdf::Scrypt(pkcs5::pbes2::ScryptParams {
        salt: pkcs5::pbes2::Salt::new([5; 16]).unwrap(),
        cost_parameter: n,
        block_size: r,
        parallelization: p,
        key_length: None,
    });
    params
}

/// The legacy `pbeWithSHAAnd3-KeyTripleDES-CBC` with `iterations` (any size).
fn pbe_3des_alg(iterations: u64) -> AlgorithmIdentifierOwned {
    let params = sequence(&[
        OctetString::new([3u8; 8]).unwrap().to_der().unwrap(),
        integer(iterations),
    ]);
    AlgorithmIdentifierOwned {
        oid: PBE_SHA1_3DES,
        parameters: Some(Any::from_der(&params).unwrap()),
    }
}

fn cert_bag(cert: &[u8]) -> SafeBag {
    let bag = CertBag {
        cert_id: X509_CERT,
        cert_value: OctetString::new(cert.to_vec()).unwrap(),
    };
    SafeBag {
        bag_id: CERT_BAG,
        // Written unwrapped: `SafeBag` adds the `[0]` when encoding (and keeps it when decoding).
        bag_value: bag.to_der().unwrap(),
        bag_attributes: None,
    }
}

/// A shrouded key bag: `key` encrypted with `encrypt_with` (a real encryption), labelled
/// with `alg` (the same, or a bomb).
fn shrouded_key_bag(
    key: &[u8],
    encrypt_with: &pkcs5::pbes2::Parameters,
    alg: AlgorithmIdentifierOwned,
) -> SafeBag {
    let info = EncryptedPrivateKeyInfo {
        encryption_algorithm: alg,
        encrypted_data: OctetString::new(encrypt_with.encrypt(P12_PASSWORD, key).unwrap()).unwrap(),
    };
    SafeBag {
        bag_id: SHROUDED_KEY_BAG,
        bag_value: info.to_der().unwrap(),
        bag_attributes: None,
    }
}

fn data_safe(bags: &[SafeBag]) -> ContentInfo {
    let octets = OctetString::new(bags.to_vec().to_der().unwrap()).unwrap();
    ContentInfo {
        content_type: DATA,
        content: Any::from_der(&octets.to_der().unwrap()).unwrap(),
    }
}

fn encrypted_safe(bags: &[SafeBag], params: &pkcs5::pbes2::Parameters) -> ContentInfo {
    let plain = bags.to_vec().to_der().unwrap();
    let enc = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: DATA,
            content_enc_alg: pbes2_alg(params),
            encrypted_content: Some(
                OctetString::new(params.encrypt(P12_PASSWORD, &plain).unwrap()).unwrap(),
            ),
        },
        unprotected_attrs: None,
    };
    ContentInfo {
        content_type: ENCRYPTED_DATA,
        content: Any::from_der(&enc.to_der().unwrap()).unwrap(),
    }
}

/// A PFX of `safes`, with a MAC asking for `mac_iterations` if given. The MAC itself is not
/// valid: the bombs are refused before it is checked, and without one p12-keystore reads on.
fn pfx(safes: &[ContentInfo], mac_iterations: Option<u64>) -> Vec<u8> {
    let auth_safe = data_safe_of(&safes.to_vec().to_der().unwrap());
    let mut fields = vec![integer(3), auth_safe];
    if let Some(n) = mac_iterations {
        let digest_info = sequence(&[
            AlgorithmIdentifierOwned {
                oid: SHA256,
                parameters: None,
            }
            .to_der()
            .unwrap(),
            OctetString::new([0u8; 32]).unwrap().to_der().unwrap(),
        ]);
        fields.push(sequence(&[
            digest_info,
            OctetString::new([1u8; 8]).unwrap().to_der().unwrap(),
            integer(n),
        ]));
    }
    sequence(&fields)
}

fn data_safe_of(octets: &[u8]) -> Vec<u8> {
    ContentInfo {
        content_type: DATA,
        content: Any::from_der(&OctetString::new(octets.to_vec()).unwrap().to_der().unwrap())
            .unwrap(),
    }
    .to_der()
    .unwrap()
}

/// Certificates in an encrypted part and the key in a plain one, as OpenSSL writes them;
/// `key_alg` labels the key's encryption.
fn openssl_like_p12(key_alg: Option<AlgorithmIdentifierOwned>, mac: Option<u64>) -> Vec<u8> {
    openssl_like_p12_with(2048, key_alg, mac)
}

fn openssl_like_p12_with(
    iterations: u32,
    key_alg: Option<AlgorithmIdentifierOwned>,
    mac: Option<u64>,
) -> Vec<u8> {
    let (cert, key) = cert_and_key();
    let params = pbkdf2_params(iterations);
    let key_alg = key_alg.unwrap_or_else(|| pbes2_alg(&params));
    pfx(
        &[
            encrypted_safe(&[cert_bag(&cert)], &params),
            data_safe(&[shrouded_key_bag(&key, &params, key_alg)]),
        ],
        mac,
    )
}

#[test]
fn pkcs12_whose_mac_asks_for_2_31_iterations_is_refused_within_a_second() {
    let bomb = openssl_like_p12(None, Some(1 << 31));
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert_eq!(
        err,
        "bundle.p12: the PKCS#12 bundle's MAC asks for PKCS#12 key derivation with iterations = 2147483648 (at most 1000000 is accepted)"
    );
}

#[test]
fn pkcs12_whose_shrouded_key_bag_asks_for_2_31_iterations_is_refused_within_a_second() {
    let bomb = openssl_like_p12(Some(pbes2_alg(&pbkdf2_params(1 << 31))), None);
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert_eq!(
        err,
        "bundle.p12: a private key in the PKCS#12 bundle asks for PBKDF2 with iterations = 2147483648 (at most 1000000 is accepted)"
    );
    // The legacy scheme's count is an INTEGER of any size.
    let bomb = openssl_like_p12(Some(pbe_3des_alg(1 << 31)), None);
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert!(
        err.contains("a private key in the PKCS#12 bundle asks for PKCS#12 key derivation with iterations = 2147483648"),
        "{err}"
    );
}

#[test]
fn pkcs12_whose_encrypted_part_asks_for_a_scrypt_bomb_is_refused() {
    let (cert, _) = cert_and_key();
    let bomb = pfx(
        &[encrypted_safe(&[cert_bag(&cert)], &pbkdf2_params(2048))],
        None,
    );
    // Relabel the encrypted part: scrypt N = 2^40.
    let mut pfx_bytes = bomb;
    let safes = decode_pfx(&pfx_bytes).unwrap().0;
    let list = Vec::<ContentInfo>::from_der(octets_of(&safes).unwrap()).unwrap();
    let mut enc = EncryptedData::from_der(&list[0].content.to_der().unwrap()).unwrap();
    enc.enc_content_info.content_enc_alg = pbes2_alg(&scrypt_params(1 << 40, 8, 1));
    let relabelled = ContentInfo {
        content_type: ENCRYPTED_DATA,
        content: Any::from_der(&enc.to_der().unwrap()).unwrap(),
    };
    pfx_bytes = sequence(&[
        integer(3),
        data_safe_of(&vec![relabelled].to_der().unwrap()),
    ]);
    let err = within_a_second(move || import_p12(pfx_bytes)).unwrap_err();
    assert!(
        err.contains("an encrypted part of the PKCS#12 bundle asks for scrypt with N = 2^40"),
        "{err}"
    );
}

/// A key bag hidden inside an encrypted part can only be seen by decrypting that part; its
/// scrypt (1 GiB, 16 passes) is within what p12-keystore itself allows.
#[test]
fn pkcs12_hiding_a_scrypt_bomb_key_inside_an_encrypted_part_is_refused_within_a_second() {
    let (cert, key) = cert_and_key();
    let params = pbkdf2_params(2048);
    let bomb_bag = shrouded_key_bag(&key, &params, pbes2_alg(&scrypt_params(1 << 20, 8, 16)));
    let bomb = pfx(
        &[encrypted_safe(&[cert_bag(&cert), bomb_bag], &params)],
        None,
    );
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert!(
        err.contains(
            "a private key in the PKCS#12 bundle asks for scrypt with 128·r·N·p = 16384 MiB"
        ),
        "{err}"
    );
}

/// Each derivation within the limit for one, but ten key bags and a MAC of a million
/// iterations each: p12-keystore would run all of them.
#[test]
fn pkcs12_with_many_costly_derivations_is_refused_by_their_total() {
    let (cert, key) = cert_and_key();
    let params = pbkdf2_params(2048);
    let heavy = pbes2_alg(&pbkdf2_params(1_000_000));
    let mut bags = vec![cert_bag(&cert)];
    bags.extend((0..10).map(|_| shrouded_key_bag(&key, &params, heavy.clone())));
    let bomb = pfx(&[data_safe(&bags)], Some(1_000_000));
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert_eq!(
        err,
        "bundle.p12: the PKCS#12 bundle asks for 11 key derivations with 11000000 iterations in all (at most 10000000 is accepted)"
    );

    // Three scrypt keys of 128 MiB each.
    let heavy = pbes2_alg(&scrypt_params(1 << 17, 8, 1));
    let bags: Vec<_> = (0..3)
        .map(|_| shrouded_key_bag(&key, &params, heavy.clone()))
        .collect();
    let bomb = pfx(&[data_safe(&bags)], None);
    let err = within_a_second(move || import_p12(bomb)).unwrap_err();
    assert_eq!(
        err,
        "bundle.p12: the PKCS#12 bundle asks for 3 scrypt derivations with 384 MiB of memory work in all (at most 256 MiB is accepted)"
    );
}

/// (e) Legitimate bundles in every scheme p12-keystore writes (OpenSSL's default, and the
/// 3DES and 40-bit RC2 of `-legacy`) still import; and the inspection decrypts their
/// encrypted parts the way p12-keystore does: if it could not, a bomb inside one would go
/// unseen.
#[test]
fn legitimate_pkcs12_in_every_scheme_imports_and_is_decrypted_for_inspection() {
    use p12_keystore::{
        Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
    };
    let (cert, key) = cert_and_key();
    for alg in [
        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
        EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc,
    ] {
        let mut store = KeyStore::new();
        store.add_entry(
            "x",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                b"id".to_vec(),
                PrivateKey::from_der(&key).unwrap(),
                vec![Certificate::from_der(&cert).unwrap()],
            )),
        );
        let p12 = store
            .writer(P12_PASSWORD)
            .encryption_algorithm(alg)
            .encryption_iterations(2048)
            .write()
            .unwrap();
        let safes = decode_pfx(&p12).unwrap().0;
        let list = Vec::<ContentInfo>::from_der(octets_of(&safes).unwrap()).unwrap();
        let encrypted: Vec<_> = list
            .iter()
            .filter(|s| s.content_type == ENCRYPTED_DATA)
            .map(|s| EncryptedData::from_der(&s.content.to_der().unwrap()).unwrap())
            .collect();
        assert_eq!(encrypted.len(), 1, "{alg:?}");
        let info = &encrypted[0].enc_content_info;
        let plain = decrypt(
            &info.content_enc_alg,
            info.encrypted_content.as_ref().unwrap().as_bytes(),
            P12_PASSWORD,
        )
        .unwrap_or_else(|| panic!("{alg:?} not decrypted"));
        let bags = Vec::<SafeBag>::from_der(&plain).unwrap();
        assert!(bags.iter().any(|b| b.bag_id == CERT_BAG), "{alg:?}");
        // And the bundle imports.
        assert!(import_p12(p12).unwrap().has_key(), "{alg:?}");
    }
}

/// Malformed structures: every truncation and every flipped byte of a bundle is inspected
/// without a panic, and quickly.
#[test]
fn damaged_pkcs12_never_panics_the_inspection() {
    // One iteration: the inspection decrypts the encrypted part of every variant that
    // still parses.
    let p12 = openssl_like_p12_with(1, None, Some(2048));
    within(Duration::from_secs(30), move || {
        for len in 0..p12.len() {
            let _ = check_pkcs12(&p12[..len], P12_PASSWORD);
        }
        for i in 0..p12.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = p12.clone();
                bad[i] ^= flip;
                let _ = check_pkcs12(&bad, P12_PASSWORD);
            }
        }
    });
}

#[test]
fn counts_of_any_size_are_read() {
    let count = |bytes: &[u8]| count_of(der::asn1::IntRef::new(bytes).unwrap());
    assert_eq!(count(&[0x00]), Some(0));
    assert_eq!(count(&[0x08, 0x00]), Some(2048));
    assert_eq!(count(&[0x00, 0x80, 0, 0, 0]), Some(1 << 31));
    assert_eq!(count(&[0xff]), Some(0), "negative");
    assert_eq!(count(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(
        check_iterations("x", KdfCost::Pkcs12Iterations, None, 10)
            .unwrap_err()
            .to_string(),
        "x asks for PKCS#12 key derivation with iterations = more than 2^64 (at most 10 is accepted)"
    );
}
