//! A private key is checked for real against its certificate, not only by comparing the
//! public half it carries (an EC key with a flipped private scalar still carries the right
//! public point).
//!
//! - RSA: the key's own equations (n = p·q, e·d ≡ 1 modulo p−1 and q−1, and the CRT
//!   values), any size; then, from 2048 bits, a signature made with it verifies under the
//!   certificate's key (ring).
//! - ECDSA P-256/P-384: ring rebuilds the key pair (checking the public point against the
//!   scalar), signs, and the signature verifies under the certificate's key.
//! - ECDSA P-521 (which ring lacks): the public point is computed from the scalar (`p521`)
//!   and must be the certificate's.
//! - Ed25519: the public key is derived from the seed, signs, and verifies.

use num_bigint::BigUint;
use pkcs8::der::Decode;
use ring::{
    rand::SystemRandom,
    signature::{self, KeyPair},
};
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

use crate::formats::cert::oid;

/// The largest RSA modulus checked (bits): bounds the arithmetic on any input.
const MAX_RSA_BITS: u64 = 16_384;

const MESSAGE: &[u8] = b"certvault pairwise key check";

/// `Ok` when `pkcs8` (unencrypted PKCS#8 DER) is a consistent private key for the
/// certificate `cert_der`; else why not, in words.
pub(crate) fn pairwise(cert_der: &[u8], pkcs8: &[u8]) -> Result<(), String> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
    let spki = cert.public_key();
    let cert_key = &spki.subject_public_key.data;
    let info =
        pkcs8::PrivateKeyInfo::from_der(pkcs8).map_err(|e| format!("not a PKCS#8 key: {e}"))?;
    let rng = SystemRandom::new();
    match info.algorithm.oid.to_string().as_str() {
        oid::RSA => {
            let k = pkcs1::RsaPrivateKey::from_der(info.private_key)
                .map_err(|e| format!("not an RSA key: {e}"))?;
            rsa_consistent(&k)?;
            let cert_n = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(r)) => (
                    BigUint::from_bytes_be(r.modulus),
                    BigUint::from_bytes_be(r.exponent),
                ),
                _ => return Err("the certificate's key is not an RSA key".into()),
            };
            let n = BigUint::from_bytes_be(k.modulus.as_bytes());
            let e = BigUint::from_bytes_be(k.public_exponent.as_bytes());
            if (n.clone(), e) != cert_n {
                return Err("it is not the certificate's RSA key".into());
            }
            if n.bits() >= 2048 {
                let pair = signature::RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|e| format!("ring refuses it ({e})"))?;
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, MESSAGE, &mut sig)
                    .map_err(|_| "it cannot sign".to_owned())?;
                signature::UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    cert_key.as_ref(),
                )
                .verify(MESSAGE, &sig)
                .map_err(|_| {
                    "a signature made with it does not verify under the certificate's key"
                        .to_owned()
                })?;
            }
            Ok(())
        }
        oid::EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map(|o| o.to_string())
                .map_err(|_| "the EC key does not name its curve".to_owned())?;
            let (signing, verifying): (
                &'static signature::EcdsaSigningAlgorithm,
                &'static dyn signature::VerificationAlgorithm,
            ) = match curve.as_str() {
                oid::P256 => (
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &signature::ECDSA_P256_SHA256_ASN1,
                ),
                oid::P384 => (
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    &signature::ECDSA_P384_SHA384_ASN1,
                ),
                oid::P521 => return p521_consistent(info.private_key, cert_key),
                other => return Err(format!("EC curve {other} is not supported")),
            };
            // ring checks the public point it carries against the scalar.
            let pair = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8, &rng).map_err(|e| {
                format!("its private scalar does not match the public point it carries ({e})")
            })?;
            if pair.public_key().as_ref() != cert_key.as_ref() {
                return Err("it is not the certificate's EC key".into());
            }
            let sig = pair
                .sign(&rng, MESSAGE)
                .map_err(|_| "it cannot sign".to_owned())?;
            signature::UnparsedPublicKey::new(verifying, cert_key.as_ref())
                .verify(MESSAGE, sig.as_ref())
                .map_err(|_| {
                    "a signature made with it does not verify under the certificate's key"
                        .to_owned()
                })
        }
        oid::ED25519 => {
            let seed = pkcs8::der::asn1::OctetStringRef::from_der(info.private_key)
                .map_err(|e| format!("bad Ed25519 key: {e}"))?;
            let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed.as_bytes())
                .map_err(|_| "bad Ed25519 key".to_owned())?;
            let sig = pair.sign(MESSAGE);
            signature::UnparsedPublicKey::new(&signature::ED25519, cert_key.as_ref())
                .verify(MESSAGE, sig.as_ref())
                .map_err(|_| "it is not the certificate's Ed25519 key".to_owned())
        }
        other => Err(format!("unsupported key algorithm {other}")),
    }
}

fn rsa_consistent(k: &pkcs1::RsaPrivateKey<'_>) -> Result<(), String> {
    let big = |u: pkcs1::UintRef<'_>| BigUint::from_bytes_be(u.as_bytes());
    let (n, e, d) = (
        big(k.modulus),
        big(k.public_exponent),
        big(k.private_exponent),
    );
    let (p, q) = (big(k.prime1), big(k.prime2));
    let (dp, dq, qinv) = (big(k.exponent1), big(k.exponent2), big(k.coefficient));
    if n.bits() > MAX_RSA_BITS {
        return Err(format!("the RSA key has more than {MAX_RSA_BITS} bits"));
    }
    let one = BigUint::from(1u8);
    if p <= one || q <= one || &p * &q != n {
        return Err("its primes do not multiply to its modulus".into());
    }
    let (p1, q1) = (&p - &one, &q - &one);
    if (&e * &d) % &p1 != one || (&e * &d) % &q1 != one {
        return Err("its private exponent does not invert its public exponent".into());
    }
    if &d % &p1 != dp || &d % &q1 != dq || (&qinv * &q) % &p != one {
        return Err("its CRT values are inconsistent".into());
    }
    Ok(())
}

fn p521_consistent(ec_private_key: &[u8], cert_point: &[u8]) -> Result<(), String> {
    use p521::elliptic_curve::sec1::ToEncodedPoint;
    let ec = sec1::EcPrivateKey::from_der(ec_private_key)
        .map_err(|e| format!("not a SEC1 EC key: {e}"))?;
    let secret = p521::SecretKey::from_slice(ec.private_key)
        .map_err(|_| "its private scalar is not a P-521 scalar".to_owned())?;
    let point = secret.public_key().to_encoded_point(false);
    if point.as_bytes() != cert_point {
        return Err("the public point of its private scalar is not the certificate's".into());
    }
    if let Some(carried) = ec.public_key
        && carried != point.as_bytes()
    {
        return Err("its private scalar does not match the public point it carries".into());
    }
    Ok(())
}
