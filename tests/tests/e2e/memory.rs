//! How many plaintext copies of a private key are left in the process's memory after a
//! reconcile pass has sent it to ACM (through the real SDK, to the emulator): the process is
//! scanned through /proc/self/mem. This test binary uses the same allocator as the
//! `certvault` binary (every freed allocation wiped).

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
};

use crate::emulator::{ACCOUNT, Emulator, block_on, emulator};

/// The real SDK, pointed at the emulator with dummy credentials (in process: the
/// environment is not changed).
struct ToEmulator<'a>(&'a Emulator);

impl agent::Connector for ToEmulator<'_> {
    type Session = aws_config::SdkConfig;
    type Acm = <agent::SdkConnector as agent::Connector>::Acm;
    type Iam = <agent::SdkConnector as agent::Connector>::Iam;
    type Sts = <agent::SdkConnector as agent::Connector>::Sts;
    type Pca = <agent::SdkConnector as agent::Connector>::Pca;
    type Route53 = <agent::SdkConnector as agent::Connector>::Route53;
    type ElbV2 = <agent::SdkConnector as agent::Connector>::ElbV2;
    type Elb = <agent::SdkConnector as agent::Connector>::Elb;
    type Rds = <agent::SdkConnector as agent::Connector>::Rds;

    async fn connect(
        &self,
        _target: &agent::Target,
    ) -> Result<(aws_config::SdkConfig, String), agent::ApiError> {
        Ok((self.0.sdk("us-east-1").await, ACCOUNT.to_owned()))
    }
    fn acm(&self, s: &aws_config::SdkConfig, region: &str) -> Self::Acm {
        agent::SdkConnector::default().acm(s, region)
    }
    fn iam(&self, s: &aws_config::SdkConfig) -> Self::Iam {
        agent::SdkConnector::default().iam(s)
    }
    fn sts(&self, s: &aws_config::SdkConfig) -> Self::Sts {
        agent::SdkConnector::default().sts(s)
    }
    fn pca(&self, s: &aws_config::SdkConfig, region: &str) -> Self::Pca {
        agent::SdkConnector::default().pca(s, region)
    }
    fn route53(&self, s: &aws_config::SdkConfig) -> Self::Route53 {
        agent::SdkConnector::default().route53(s)
    }
    fn elbv2(&self, s: &aws_config::SdkConfig, region: &str) -> Self::ElbV2 {
        agent::SdkConnector::default().elbv2(s, region)
    }
    fn elb(&self, s: &aws_config::SdkConfig, region: &str) -> Self::Elb {
        agent::SdkConnector::default().elb(s, region)
    }
    fn rds(&self, s: &aws_config::SdkConfig, region: &str) -> Self::Rds {
        agent::SdkConnector::default().rds(s, region)
    }
}

/// Readable, private regions of this process.
fn regions() -> Vec<(u64, u64)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let path = l.split_whitespace().nth(5).unwrap_or("");
            if !perms.starts_with('r') || path.starts_with("[v") {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

/// Occurrences of `needle` in this process's memory, outside `skip` (the needles' own
/// buffers and the scan buffer).
fn count(needle: &[u8], skip: &[(u64, u64)]) -> usize {
    let mut mem = File::open("/proc/self/mem").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let own = (buf.as_ptr() as u64, buf.as_ptr() as u64 + buf.len() as u64);
    let mut found = 0;
    for (start, end) in regions() {
        let mut at = start;
        while at < end {
            let len = ((end - at) as usize).min(buf.len());
            if mem.seek(SeekFrom::Start(at)).is_err() || mem.read_exact(&mut buf[..len]).is_err() {
                break;
            }
            for (i, w) in buf[..len].windows(needle.len()).enumerate() {
                let addr = at + i as u64;
                if w == needle
                    && !skip
                        .iter()
                        .chain([&own])
                        .any(|(a, b)| addr >= *a && addr < *b)
                {
                    found += 1;
                }
            }
            // Overlap the next chunk so a match across the boundary is not missed.
            at += (len.saturating_sub(needle.len())).max(1) as u64;
        }
    }
    buf.iter_mut().for_each(|b| *b = 0);
    found
}

fn range(v: &[u8]) -> (u64, u64) {
    (v.as_ptr() as u64, v.as_ptr() as u64 + v.len() as u64)
}

#[test]
fn plaintext_key_copies_left_in_memory_after_a_pass() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let pass = vault::Passphrase::new(crate::common::PASS.into());
    let mut v = vault::Vault::create(&dir.path().join("v.db"), &pass).unwrap();
    // The needles: the EC private scalar, a line of the key's PEM, and a stretch of the
    // base64 the SDK's JSON body carries (the PEM, base64-encoded again).
    let (scalar, pem_line, json_b64) = {
        let (cert, key) = certvault_tests::self_signed("memory.example.com", 30).unwrap();
        let b = vault::formats::Bundle::from_bytes(
            "mem",
            format!("{cert}{key}").as_bytes(),
            None,
            None,
            vault::formats::InputPasswords::default(),
        )
        .unwrap();
        v.import(vec![b], &vault::entries::ImportOptions::default())
            .unwrap();
        let m = v.import_material("memory.example.com").unwrap();
        let pem_text = String::from_utf8(m.private_key.expose_secret().to_vec()).unwrap();
        let der = ::pem::parse(&pem_text).unwrap().into_contents();
        // PKCS#8 EC: the 32-byte scalar follows `04 20` inside the ECPrivateKey.
        let at = der.windows(2).position(|w| w == [0x04, 0x20]).unwrap() + 2;
        let scalar = der[at..at + 32].to_vec();
        let line = pem_text.lines().nth(1).unwrap().as_bytes()[..48].to_vec();
        let b64 =
            aws_smithy_types::base64::encode(pem_text.as_bytes()).as_bytes()[40..100].to_vec();
        (scalar, line, b64)
    };
    v.add_deployment("memory.example.com", "default", "us-east-1", false, false)
        .unwrap();
    let report = block_on(agent::reconcile::sync(
        &ToEmulator(&emu),
        &mut v,
        &agent::Config::default(),
        &agent::reconcile::SyncOptions::default(),
    ))
    .unwrap();
    assert!(report.all_in_sync(), "{report:#?}");
    let skip = [range(&scalar), range(&pem_line), range(&json_b64)];
    let copies = [
        ("private scalar", count(&scalar, &skip)),
        ("PEM line", count(&pem_line, &skip)),
        ("base64 in the request", count(&json_b64, &skip)),
    ];
    eprintln!("plaintext key copies in memory after a pass: {copies:?}");
    for (what, n) in copies {
        assert_eq!(n, 0, "{what}: {n} copies left in memory after the pass");
    }
}
