//! `certvault acm delete` against the ACM emulator: certificates discovery found (imported
//! and Amazon-issued), one used by a classic load balancer listener made with boto3 (the
//! Python SDK the emulator installs with itself: an independent client).
//!
//! The emulator fills InUseBy for classic load balancers only, with the load balancer's DNS
//! name, and never empties it, not even when the listener or the load balancer is deleted;
//! it never answers ResourceInUseException. "Allowed after detaching", and "in use" while
//! InUseBy is already empty, are covered by the agent's in-process fake
//! (agent/src/delete.rs), which says so.

use aws_sdk_acm::{primitives::Blob, types::ValidationMethod};
use serde_json::Value;

use crate::{
    common::{Env, openssl, stderr, stdout},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
};

/// A classic load balancer with an HTTPS listener on `arn`, made with boto3.
fn classic_load_balancer(emu: &Emulator, env: &Env, arn: &str) {
    emu.boto3(
        env,
        "boto3.client('elb').create_load_balancer(LoadBalancerName='web', \
           AvailabilityZones=['us-east-1a'], Listeners=[{'Protocol': 'HTTPS', \
           'LoadBalancerPort': 443, 'InstanceProtocol': 'HTTP', 'InstancePort': 80, \
           'SSLCertificateId': sys.argv[1]}])",
        &[arn],
    );
}

fn openssl_cert(env: &Env, name: &str) -> (Vec<u8>, Vec<u8>) {
    let key = env.path(&format!("{name}.key"));
    let crt = env.path(&format!("{name}.crt"));
    openssl(&[
        &"req",
        &"-x509",
        &"-newkey",
        &"ec",
        &"-pkeyopt",
        &"ec_paramgen_curve:P-256",
        &"-nodes",
        &"-keyout",
        &key,
        &"-out",
        &crt,
        &"-days",
        &"200",
        &"-subj",
        &format!("/CN={name}"),
        &"-addext",
        &format!("subjectAltName=DNS:{name}"),
    ]);
    (std::fs::read(crt).unwrap(), std::fs::read(key).unwrap())
}

fn in_acm(emu: &Emulator, arn: &str) -> bool {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        match acm.describe_certificate().certificate_arn(arn).send().await {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => panic!("describe {arn}: {e:?}"),
        }
    })
}

fn run(env: &Env, emu: &Emulator, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd.args(args).output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

#[test]
fn acm_delete_refuses_while_in_use_and_deletes_what_discovery_found_keeping_the_entry() {
    let emu = emulator();
    let env = Env::init();
    let (cert, key) = openssl_cert(&env, "lb.example.com");
    let (used, amazon) = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        let used = acm
            .import_certificate()
            .certificate(Blob::new(cert))
            .private_key(Blob::new(key))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned();
        let amazon = acm
            .request_certificate()
            .domain_name("public.example.com")
            .validation_method(ValidationMethod::Dns)
            .idempotency_token("publicexamplecom")
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned();
        (used, amazon)
    });
    classic_load_balancer(&emu, &env, &used);
    let (code, _, err) = run(&env, &emu, &["discover", "--regions", "us-east-1"]);
    assert!(matches!(code, Some(0 | 3)), "{err}");

    // Off a terminal, nothing happens without --yes (a usage error), and nothing changed.
    let before = env.vault_bytes();
    let (code, _, err) = run(&env, &emu, &["acm", "delete", "lb.example.com"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot be undone; add --yes to confirm"),
        "{err}"
    );
    assert_eq!(env.vault_bytes(), before);

    // In use: refused, naming the user and what to do; still in ACM.
    let (code, _, err) = run(&env, &emu, &["acm", "delete", "lb.example.com", "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is in use; nothing was deleted"), "{err}");
    assert!(err.contains("web.us-east-1.elb.amazonaws.com"), "{err}");
    assert!(
        err.contains("set-load-balancer-listener-ssl-certificate"),
        "{err}"
    );
    assert!(in_acm(&emu, &used));

    // An Amazon-issued certificate, named by its ARN: deleted; the vault keeps its entry,
    // the deletion is audited, and the record reads gone.
    let (code, out, err) = run(
        &env,
        &emu,
        &["--output", "json", "acm", "delete", &amazon, "--yes"],
    );
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["deleted"], true);
    assert_eq!(report["already_gone"], false);
    assert_eq!(report["account"], ACCOUNT);
    assert_eq!(report["entry"]["name"], "public.example.com");
    assert!(!in_acm(&emu, &amazon));
    assert!(in_acm(&emu, &used));
    let entries = env.json(&["list"]);
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "public.example.com"),
        "{entries:#}"
    );
    let log = env.json(&["log"]);
    let event = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "acm-delete")
        .expect("an acm-delete event");
    assert_eq!(event["entry_name"], "public.example.com");
    assert!(
        event["detail"].as_str().unwrap().contains(&amazon),
        "{event:#}"
    );
    let (code, _, err) = run(&env, &emu, &["verify"]);
    assert_eq!(code, Some(0), "{err}");
    // Again: the vault's record says gone, so the entry has no certificate in ACM left.
    let (code, _, err) = run(
        &env,
        &emu,
        &["acm", "delete", "public.example.com", "--yes"],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("the vault knows of no certificate of public.example.com in ACM"),
        "{err}"
    );
}

#[test]
fn acm_delete_never_touches_a_deployment_another_account_or_a_bad_arn() {
    let emu = emulator();
    let env = Env::init();
    let (cert, key) = openssl_cert(&env, "www.example.com");
    std::fs::write(env.path("www.pem"), [cert, key].concat()).unwrap();
    env.cmd()
        .args(["import", "www.pem", "--name", "www.example.com"])
        .current_dir(env.dir.path())
        .assert()
        .success();
    let (code, _, err) = run(
        &env,
        &emu,
        &["deploy", "www.example.com", "--regions", "us-east-1"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&env, &emu, &["discover", "--regions", "us-east-1"]);
    assert!(matches!(code, Some(0 | 3)), "{err}");
    let arn = env.json(&["list"])[0]["acm_arn"]
        .as_str()
        .expect("discovery linked the deployed ARN")
        .to_owned();

    // A deployment's ARN: the agent would import it again; undeploy is the way.
    let (code, _, err) = run(&env, &emu, &["acm", "delete", "www.example.com", "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "undeploy www.example.com --target default --regions us-east-1 --delete-from-acm"
        ),
        "{err}"
    );
    assert!(in_acm(&emu, &arn));

    // An ARN of another account than the credentials': refused before anything is asked.
    let foreign = arn.replace(ACCOUNT, "999999999999");
    let (code, _, err) = run(&env, &emu, &["acm", "delete", &foreign, "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the ARN belongs to account 999999999999, but target 'default' now resolves to account 123456789012"),
        "{err}"
    );
    assert!(err.contains(ACCOUNT), "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");

    // Bad input: usage errors, naming what is wrong.
    let before = env.vault_bytes();
    for (args, says) in [
        (
            vec![
                "acm",
                "delete",
                "arn:aws:iam::123456789012:server-certificate/x",
                "--yes",
            ],
            "is not an ACM certificate ARN",
        ),
        (
            vec!["acm", "delete", &arn, "--region", "eu-west-1", "--yes"],
            "--region eu-west-1, but",
        ),
        (
            vec!["acm", "delete", "www.example.com", "--wait", "5", "--yes"],
            "'5' has no unit",
        ),
    ] {
        let (code, _, err) = run(&env, &emu, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(env.vault_bytes(), before);
    assert!(in_acm(&emu, &arn));
}

/// Review finding (issue 16): `acm delete` deleted a certificate another vault had deployed
/// (tagged `certvault:entry-id` with that vault's entry), without a word, and that vault's
/// agent imported it again under a new ARN. Now a foreign tag is refused like a
/// deployment's ARN, naming what was found; a copy left by an entry this vault removed is
/// still deleted.
#[test]
fn regression_acm_delete_refuses_another_vaults_deployment() {
    let emu = emulator();
    let theirs = Env::init();
    let mine = Env::init();
    crate::deploy::cert(&theirs, "svc", "svc.example.com", 30);
    crate::deploy::import_files(&theirs, "svc", None);
    let (code, out, err) = run(
        &theirs,
        &emu,
        &[
            "--output",
            "json",
            "deploy",
            "svc.example.com",
            "--regions",
            "us-east-1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let arn = crate::deploy::rows(&report)[0]["arn"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, _, err) = run(&mine, &emu, &["discover", "--regions", "us-east-1"]);
    assert!(matches!(code, Some(0 | 3)), "{err}");
    let (code, _, err) = run(&mine, &emu, &["acm", "delete", &arn, "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("certvault:entry-id=") && err.contains("another certvault vault"),
        "{err}"
    );
    assert!(err.contains("nothing was deleted"), "{err}");
    assert!(in_acm(&emu, &arn), "the other vault's deployment stays");

    // The vault that made it: removing the entry leaves AWS alone; the copy it left is
    // deleted when asked.
    theirs
        .cmd()
        .args(["remove", "svc.example.com", "--yes"])
        .assert()
        .success();
    let (code, _, err) = run(&theirs, &emu, &["acm", "delete", &arn, "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!in_acm(&emu, &arn));
}
