//! `certvault rotate`, `acm migrate-validation` and `rds ca-audit` against the emulator's
//! ACM, ELBv2, classic ELB, Route 53 and RDS, through a loopback proxy that records every
//! request. Where the emulator differs from AWS, a test says so:
//! - ModifyListener with a certificate replaces the emulator's whole certificate list (in
//!   AWS it sets the default only and SNI certificates stay): that listener's SNI
//!   certificate is checked by what certvault sent (no RemoveListenerCertificates for it),
//!   not by what the emulator lists afterwards;
//! - the emulator ignores ModifyListener's certificate on a TLS listener (an NLB's; AWS sets
//!   it): the NLB's swap is checked by what certvault sent;
//! - the emulator reports every requested certificate as DNS-validated: the proxy rewrites
//!   DescribeCertificate answers for the one the test requested by email;
//! - the emulator has no RDS DescribeCertificates: the proxy answers it with the list of
//!   CAs AWS publishes;
//! - the emulator's DB instances are `available` again at once after a change: the proxy
//!   answers `modifying` for a while, so that certvault's waiting shows (the emulator does
//!   report a cluster's members with IsClusterWriter, as AWS does);
//! - a listener that changes between the plan and the swap is a stale read the proxy gives
//!   (an SNI list as read that says NEW, where the emulator's does not);
//! - the emulator issues every requested certificate at once: the proxy says FAILED or
//!   EXPIRED for the ones a test needs dead.

use serde_json::Value;

use crate::{
    common::{Env, stderr, stdout},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
    proxy::FaultProxy,
};

/// A self-signed certificate imported into ACM in `region`: its ARN.
fn imported(emu: &Emulator, region: &str, cn: &str) -> String {
    let (cert, key) = certvault_tests::self_signed(cn, 90).unwrap();
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
        acm.import_certificate()
            .certificate(aws_sdk_acm::primitives::Blob::new(cert.into_bytes()))
            .private_key(aws_sdk_acm::primitives::Blob::new(key.into_bytes()))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    })
}

/// An ALB with a default certificate and an SNI one on :443 and, on :8443, OLD as an SNI
/// certificate beside another; an NLB with OLD on TLS :443; a classic ELB with OLD on
/// HTTPS :443. The listeners' ARNs (l443, l8443, nlb).
fn load_balancers(emu: &Emulator, env: &Env, old: &str, s1: &str, s2: &str, d: &str) -> Value {
    let out = emu.boto3(
        env,
        r#"
old, s1, s2, d = sys.argv[1:5]
ec2 = boto3.client('ec2')
vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
a = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24', AvailabilityZone='us-east-1a')['Subnet']['SubnetId']
b = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.2.0/24', AvailabilityZone='us-east-1b')['Subnet']['SubnetId']
e = boto3.client('elbv2')
alb = e.create_load_balancer(Name='alb', Subnets=[a, b], Type='application')['LoadBalancers'][0]['LoadBalancerArn']
nlb = e.create_load_balancer(Name='nlb', Subnets=[a, b], Type='network')['LoadBalancers'][0]['LoadBalancerArn']
tg = e.create_target_group(Name='web', Protocol='HTTP', Port=80, VpcId=vpc)['TargetGroups'][0]['TargetGroupArn']
tt = e.create_target_group(Name='tcp', Protocol='TCP', Port=80, VpcId=vpc)['TargetGroups'][0]['TargetGroupArn']
fwd = lambda t: [{'Type': 'forward', 'TargetGroupArn': t}]
l443 = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=443, Certificates=[{'CertificateArn': old}], DefaultActions=fwd(tg))['Listeners'][0]['ListenerArn']
e.add_listener_certificates(ListenerArn=l443, Certificates=[{'CertificateArn': s1}])
l8443 = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=8443, Certificates=[{'CertificateArn': d}], DefaultActions=fwd(tg))['Listeners'][0]['ListenerArn']
e.add_listener_certificates(ListenerArn=l8443, Certificates=[{'CertificateArn': old}, {'CertificateArn': s2}])
ln = e.create_listener(LoadBalancerArn=nlb, Protocol='TLS', Port=443, Certificates=[{'CertificateArn': old}], DefaultActions=fwd(tt))['Listeners'][0]['ListenerArn']
boto3.client('elb').create_load_balancer(LoadBalancerName='web', AvailabilityZones=['us-east-1a'],
    Listeners=[{'Protocol': 'HTTPS', 'LoadBalancerPort': 443, 'InstanceProtocol': 'HTTP', 'InstancePort': 80, 'SSLCertificateId': old}])
print(json.dumps({'l443': l443, 'l8443': l8443, 'nlb': ln}))
"#,
        &[old, s1, s2, d],
    );
    serde_json::from_str(&out).unwrap()
}

/// What every listener serves now: (listener, certificates with the default first), and the
/// classic listener's certificate.
fn serving(emu: &Emulator, env: &Env) -> Value {
    let out = emu.boto3(
        env,
        r#"
e = boto3.client('elbv2')
out = {}
for lb in e.describe_load_balancers()['LoadBalancers']:
    for l in e.describe_listeners(LoadBalancerArn=lb['LoadBalancerArn'])['Listeners']:
        certs = e.describe_listener_certificates(ListenerArn=l['ListenerArn'])['Certificates']
        out[l['ListenerArn']] = [c['CertificateArn'] for c in certs]
c = boto3.client('elb').describe_load_balancers()['LoadBalancerDescriptions']
out['classic'] = [d['Listener'].get('SSLCertificateId') for lb in c for d in lb['ListenerDescriptions']]
print(json.dumps(out))
"#,
        &[],
    );
    serde_json::from_str(&out).unwrap()
}

fn sent(proxy: &FaultProxy, op: &str) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|(o, _)| o == op)
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[test]
fn rotate_moves_every_listener_without_touching_the_other_certificates_and_resumes() {
    let emu = emulator();
    let env = Env::init();
    let old = imported(&emu, "us-east-1", "www.example.com");
    let new = imported(&emu, "us-east-1", "www.example.com");
    let s1 = imported(&emu, "us-east-1", "shop.example.com");
    let s2 = imported(&emu, "us-east-1", "api.example.com");
    let d = imported(&emu, "us-east-1", "default.example.com");
    let ls = load_balancers(&emu, &env, &old, &s1, &s2, &d);
    let proxy = FaultProxy::clean(&emu.endpoint);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let before = serving(&emu, &env);

    // --dry-run: the plan, and nothing changed.
    let (code, out, err) = run(&["--output", "json", "rotate", &old, &new, "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let swaps = plan["plans"][0]["swaps"].as_array().unwrap().clone();
    let kinds: Vec<(&str, &str)> = swaps
        .iter()
        .map(|s| (s["resource"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds.len(),
        4,
        "ALB default, ALB SNI, NLB default, classic: {plan:#}"
    );
    for want in [
        ("alb", "default"),
        ("alb", "sni"),
        ("nlb", "default"),
        ("web", "classic"),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    assert_eq!(serving(&emu, &env), before, "--dry-run changes nothing");
    for op in [
        "Action=ModifyListener",
        "Action=AddListenerCertificates",
        "Action=RemoveListenerCertificates",
        "Action=SetLoadBalancerListenerSSLCertificate",
    ] {
        assert!(sent(&proxy, op).is_empty(), "{op} sent by --dry-run");
    }
    // Off a terminal, without --yes: refused, nothing changed.
    let (code, _, err) = run(&["rotate", &old, &new]);
    assert_eq!(code, Some(2), "{err}");

    // A failure half-way (the ALB's ModifyListener answered 500 every time): the others
    // move, the command says to run it again, and the run again completes.
    proxy.fail("Action=ModifyListener", 1000);
    let (code, _, err) = run(&["rotate", &old, &new, "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    let mid = serving(&emu, &env);
    assert_eq!(mid["classic"], serde_json::json!([new]), "{mid:#}");
    proxy.clear_failures();
    let (code, out, err) = run(&["rotate", &old, &new, "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("moved 2 of 2"), "only what was left: {out}");

    let after = serving(&emu, &env);
    let l443 = ls["l443"].as_str().unwrap();
    let l8443 = ls["l8443"].as_str().unwrap();
    let nlb = ls["nlb"].as_str().unwrap();
    assert_eq!(after[l443][0], new.as_str(), "{after:#}");
    assert!(nlb_moved(&proxy, nlb, &new));
    // The SNI listener: OLD replaced by NEW, its default and the other SNI certificate left.
    let mut l8443_now: Vec<&str> = after[l8443]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    l8443_now.sort_unstable();
    let mut want = vec![d.as_str(), s2.as_str(), new.as_str()];
    want.sort_unstable();
    assert_eq!(l8443_now, want);
    assert_eq!(after["classic"], serde_json::json!([new]));
    // The ALB default listener's SNI certificate (S1): the emulator drops it on
    // ModifyListener (AWS keeps it); certvault never asked to remove it, and set only the
    // default.
    assert!(
        sent(&proxy, "Action=RemoveListenerCertificates")
            .iter()
            .all(|b| !b.contains(&urlencode(&s1)) && !b.contains(&urlencode(&s2)))
    );
    // No listener was ever deleted or made again (that drops traffic).
    for op in [
        "Action=DeleteListener",
        "Action=CreateListener",
        "Action=DeleteLoadBalancerListeners",
        "Action=CreateLoadBalancerListeners",
    ] {
        assert!(sent(&proxy, op).is_empty(), "{op} sent");
    }
    for b in sent(&proxy, "Action=ModifyListener") {
        assert!(b.contains("Certificates.member.1.CertificateArn"), "{b}");
        assert!(!b.contains("Certificates.member.2"), "one certificate: {b}");
    }
    // Each swap audited; a third run finds nothing to do.
    let log = env.json(&["log"]);
    let moved = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rotate")
        .count();
    assert_eq!(moved, 4, "{log:#}");
    // A run again finds nothing left but the NLB's listener, which the emulator did not
    // change (see above).
    let (code, out, err) = run(&["--output", "json", "rotate", &old, &new, "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    let left: Value = serde_json::from_str(&out).unwrap();
    let left: Vec<&str> = left["plans"][0]["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["resource"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["nlb"]);

    // Refused, reading and changing nothing: certificates of two regions, of another
    // account, the same one twice, and (review finding) a NEW that does not cover OLD's
    // names.
    let other = imported(&emu, "eu-west-1", "www.example.com");
    let foreign = new.replace(ACCOUNT, "999999999999");
    let listings = sent(&proxy, "Action=DescribeListeners").len();
    for (bad, why) in [
        (
            &other,
            "a listener can only take a certificate of its own region",
        ),
        (
            &foreign,
            "a listener can only take a certificate of its own region",
        ),
        (&new, "the same certificate"),
        (&s1, "does not cover www.example.com"),
    ] {
        let (code, _, err) = run(&["rotate", &new, bad, "--yes"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(why) && err.contains("nothing was changed"),
            "{err}"
        );
    }
    assert_eq!(sent(&proxy, "Action=DescribeListeners").len(), listings);
    // JSON needs --yes or --dry-run (a prompt would not show the plan).
    let (code, _, err) = run(&["--output", "json", "rotate", &new, &old]);
    assert_eq!(code, Some(2), "{err}");
}

/// Whether certvault sent ModifyListener with NEW for the NLB's listener.
fn nlb_moved(proxy: &FaultProxy, listener: &str, new: &str) -> bool {
    sent(proxy, "Action=ModifyListener")
        .iter()
        .any(|b| b.contains(&urlencode(listener)) && b.contains(&urlencode(new)))
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

/// The CAs AWS publishes for RDS, as DescribeCertificates answers (the emulator has no
/// such operation): an old one ending in 30 days, the region's default, another.
fn rds_certificates_xml() -> String {
    let now = time::OffsetDateTime::now_utc();
    let at = |d: i64| {
        (now + time::Duration::days(d))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let ca = |id: &str, till: i64| {
        format!(
            "<Certificate><CertificateIdentifier>{id}</CertificateIdentifier><CertificateType>CA</CertificateType><ValidFrom>{}</ValidFrom><ValidTill>{}</ValidTill></Certificate>",
            at(-3000),
            at(till)
        )
    };
    format!(
        "<DescribeCertificatesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeCertificatesResult><DefaultCertificateForNewLaunches>rds-ca-rsa2048-g1</DefaultCertificateForNewLaunches><Certificates>{}{}{}</Certificates></DescribeCertificatesResult><ResponseMetadata><RequestId>test</RequestId></ResponseMetadata></DescribeCertificatesResponse>",
        ca("rds-ca-2019", 30),
        ca("rds-ca-rsa2048-g1", 15000),
        ca("rds-ca-ecc384-g1", 30000),
    )
}

#[test]
fn rds_ca_audit_finds_every_instance_in_three_regions_and_apply_moves_them() {
    let emu = emulator();
    let env = Env::init();
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    emu.boto3(
        &env,
        r#"
for i, region in enumerate(sys.argv[1:]):
    r = boto3.client('rds', region_name=region)
    r.create_db_instance(DBInstanceIdentifier=f'old-{i}', Engine='postgres', DBInstanceClass='db.t3.micro',
        MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-2019')
    r.create_db_instance(DBInstanceIdentifier=f'new-{i}', Engine='mysql', DBInstanceClass='db.t3.micro',
        MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-rsa2048-g1')
    if i == 0:
        # On a CA that outlasts the default: fine as it is, unless another CA is named.
        r.create_db_instance(DBInstanceIdentifier='long-0', Engine='postgres', DBInstanceClass='db.t3.micro',
            MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-ecc384-g1')
"#,
        &regions,
    );
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.canned("Action=DescribeCertificates", 200, &rds_certificates_xml());
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let joined = regions.join(",");
    let (code, out, err) = run(&["--output", "json", "rds", "ca-audit", "--regions", &joined]);
    assert_eq!(code, Some(3), "instances need rotation: {err}");
    let audit: Value = serde_json::from_str(&out).unwrap();
    let found: Vec<(String, bool)> = audit["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["instances"].as_array().unwrap().clone())
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["needs_rotation"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.len(), 7, "{audit:#}");
    for (id, needs) in &found {
        assert_eq!(*needs, id.starts_with("old-"), "{id}: {audit:#}");
    }
    assert_eq!(audit["regions"][0]["expected"], "rds-ca-rsa2048-g1");
    // Another expected CA, named: every instance on another CA needs it.
    let (code, out, _) = run(&[
        "--output",
        "json",
        "rds",
        "ca-audit",
        "--regions",
        &joined,
        "--expected-ca",
        "rds-ca-ecc384-g1",
    ]);
    assert_eq!(code, Some(3));
    let audit: Value = serde_json::from_str(&out).unwrap();
    assert!(
        audit["regions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["instances"].as_array().unwrap().clone())
            .all(|i| (i["needs_rotation"] == true) == (i["id"] != "long-0"))
    );
    // A named CA the region does not offer: listed, never applied.
    let (code, _, err) = run(&[
        "rds",
        "ca-audit",
        "--regions",
        &joined,
        "--expected-ca",
        "rds-ca-nonesuch",
        "--apply",
        "--yes",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not among the region's CAs"), "{err}");
    assert!(sent(&proxy, "Action=ModifyDBInstance").is_empty());
    // --apply without --yes off a terminal: refused; with it, one instance at a time.
    let (code, _, err) = run(&["rds", "ca-audit", "--regions", &joined, "--apply"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(sent(&proxy, "Action=ModifyDBInstance").is_empty());
    let (code, _, err) = run(&[
        "rds",
        "ca-audit",
        "--regions",
        &joined,
        "--apply",
        "--no-restart",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("clients must trust the new CA"), "{err}");
    let modified = sent(&proxy, "Action=ModifyDBInstance");
    assert_eq!(modified.len(), 3, "{modified:?}");
    for b in &modified {
        assert!(
            b.contains("CACertificateIdentifier=rds-ca-rsa2048-g1"),
            "{b}"
        );
        assert!(b.contains("CertificateRotationRestart=false"), "{b}");
        assert!(b.contains("DBInstanceIdentifier=old-"), "{b}");
    }
    let (code, _, err) = run(&["rds", "ca-audit", "--regions", &joined]);
    assert_eq!(code, Some(0), "all on the expected CA now: {err}");
    let log = env.json(&["log"]);
    assert_eq!(
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "rds-ca")
            .count(),
        3
    );
}

#[test]
fn migrate_validation_replaces_an_email_validated_certificate_and_moves_its_listeners() {
    let emu = emulator();
    let env = Env::init();
    emu.boto3(
        &env,
        "boto3.client('route53').create_hosted_zone(Name='example.com', CallerReference='z')",
        &[],
    );
    // The email-validated certificate (the emulator says DNS for every request: the proxy
    // says EMAIL for this one).
    let old = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.request_certificate()
            .domain_name("www.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Email)
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    let s1 = imported(&emu, "us-east-1", "shop.example.com");
    let s2 = imported(&emu, "us-east-1", "api.example.com");
    let d = imported(&emu, "us-east-1", "default.example.com");
    let ls = load_balancers(&emu, &env, &old, &s1, &s2, &d);
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.rewrite(
        "CertificateManager.DescribeCertificate",
        &old,
        "\"ValidationMethod\": \"DNS\"",
        "\"ValidationMethod\": \"EMAIL\"",
    );
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, _, err) = run(&["discover", "--regions", "us-east-1", "--deep"]);
    assert!(code == Some(0) || code == Some(3), "{err}");
    let shown = env.json(&["list", "--source", "acm-amazon-issued"]);
    assert!(!shown.as_array().unwrap().is_empty(), "{shown:#}");

    // --dry-run: nothing requested, nothing moved, nothing written to the vault.
    let events = env.json(&["log"]).as_array().unwrap().len();
    let (code, out, err) = run(&[
        "--output",
        "json",
        "acm",
        "migrate-validation",
        "--regions",
        "us-east-1",
        "--route53",
        "--dry-run",
    ]);
    assert!(code == Some(0) || code == Some(3), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report[0]["old"], old.as_str());
    assert!(sent(&proxy, "CertificateManager.RequestCertificate").is_empty());
    assert_eq!(env.json(&["log"]).as_array().unwrap().len(), events);

    // A listener fails half-way; a run again completes, finding the first request.
    proxy.fail("Action=ModifyListener", 1000);
    let (code, _, err) = run(&[
        "acm",
        "migrate-validation",
        "--regions",
        "us-east-1",
        "--route53",
        "--yes",
    ]);
    assert_eq!(code, Some(1), "{err}");
    proxy.clear_failures();
    let (code, out, err) = run(&[
        "--output",
        "json",
        "acm",
        "migrate-validation",
        "--regions",
        "us-east-1",
        "--route53",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let m = &report[0];
    assert_eq!(
        m["requested_now"], false,
        "found the first run's request: {report:#}"
    );
    assert_eq!(m["issued"], true);
    assert_eq!(m["records"], "in place (Route 53)");
    let new = m["new"].as_str().unwrap().to_owned();
    assert_eq!(
        sent(&proxy, "CertificateManager.RequestCertificate").len(),
        1,
        "one request over both runs"
    );
    let after = serving(&emu, &env);
    assert_eq!(after[ls["l443"].as_str().unwrap()][0], new.as_str());
    assert!(nlb_moved(&proxy, ls["nlb"].as_str().unwrap(), &new));
    assert_eq!(after["classic"], serde_json::json!([new]));
    let l8443: Vec<&str> = after[ls["l8443"].as_str().unwrap()]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        l8443.contains(&s2.as_str())
            && l8443.contains(&new.as_str())
            && !l8443.contains(&old.as_str())
    );
    // Nothing deleted: the old certificate is still in ACM.
    assert!(sent(&proxy, "CertificateManager.DeleteCertificate").is_empty());
}

/// The DBInstanceIdentifier a query-protocol request names, if it names one.
fn instance_of(body: &str) -> Option<String> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix("DBInstanceIdentifier="))
        .map(str::to_owned)
}

/// Three PostgreSQL instances and an Aurora cluster of three (its writer made first, as
/// the emulator makes the first member the writer) on the old CA, and one instance on the
/// region's default, in us-east-1.
fn rds_fleet(emu: &Emulator, env: &Env) {
    emu.boto3(
        env,
        r#"
r = boto3.client('rds')
for i in range(3):
    r.create_db_instance(DBInstanceIdentifier=f'pg-{i}', Engine='postgres', DBInstanceClass='db.t3.micro',
        MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-2019')
r.create_db_instance(DBInstanceIdentifier='fine', Engine='postgres', DBInstanceClass='db.t3.micro',
    MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-rsa2048-g1')
r.create_db_cluster(DBClusterIdentifier='aurora', Engine='aurora-postgresql', MasterUsername='admin', MasterUserPassword='not-a-secret-1')
for n in ['aurora-w', 'aurora-r1', 'aurora-r2']:
    r.create_db_instance(DBInstanceIdentifier=n, DBClusterIdentifier='aurora', Engine='aurora-postgresql',
        DBInstanceClass='db.r5.large', CACertificateIdentifier='rds-ca-2019')
members = r.describe_db_clusters(DBClusterIdentifier='aurora')['DBClusters'][0]['DBClusterMembers']
assert [m['DBInstanceIdentifier'] for m in members if m['IsClusterWriter']] == ['aurora-w'], members
"#,
        &[],
    );
}

/// Two targets that resolve to the one account of the emulator.
fn two_targets_one_account(env: &Env) -> String {
    env.write(
        "two-targets.toml",
        "[[targets]]\nname = \"a\"\nregions = [\"us-east-1\"]\n\n[[targets]]\nname = \"b\"\nregions = [\"us-east-1\"]\n",
    )
    .to_str()
    .unwrap()
    .to_owned()
}

const AVAILABLE: &str = "<DBInstanceStatus>available</DBInstanceStatus>";
const MODIFYING: &str = "<DBInstanceStatus>modifying</DBInstanceStatus>";

/// Issue 16, item 1: `--apply --yes` sent every ModifyDBInstance at once (within 0.25 s, no
/// DescribeDBInstances between them), an Aurora cluster's writer with its readers, and two
/// targets of one account moved every instance twice. Now one instance at a time: each
/// waited for until it is available again (the emulator is available at once: the proxy
/// answers `modifying` for a while), the cluster's readers before its writer, one
/// (account, region) once; and the target's credentials are resolved once (issue 16, item
/// 7: one GetCallerIdentity per instance before).
#[test]
fn regression_rds_apply_moves_one_instance_at_a_time_waiting_for_each_readers_first() {
    let emu = emulator();
    let env = Env::init();
    rds_fleet(&emu, &env);
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.canned("Action=DescribeCertificates", 200, &rds_certificates_xml());
    // pg-1 and aurora-r1 take time to be available again after their change.
    proxy.rewrite_times(
        "Action=DescribeDBInstances",
        "DBInstanceIdentifier=pg-1",
        AVAILABLE,
        MODIFYING,
        2,
    );
    proxy.rewrite_times(
        "Action=DescribeDBInstances",
        "DBInstanceIdentifier=aurora-r1",
        AVAILABLE,
        MODIFYING,
        1,
    );
    let config = two_targets_one_account(&env);
    let mut cmd = env.cmd();
    emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
    let out = cmd
        .args([
            "--config",
            &config,
            "rds",
            "ca-audit",
            "--regions",
            "us-east-1",
            "--apply",
            "--yes",
            // The emulator never restarts an instance: watched 2 s for it, not a minute.
            "--restart-settle",
            "2s",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    let modified = sent(&proxy, "Action=ModifyDBInstance");
    let order: Vec<String> = modified
        .iter()
        .map(|b| instance_of(b).unwrap_or_default())
        .collect();
    let identities = sent(&proxy, "Action=GetCallerIdentity").len();
    eprintln!(
        "ModifyDBInstance {} in order {order:?}; GetCallerIdentity {identities}; DescribeDBInstances {}; stderr: {err}",
        modified.len(),
        sent(&proxy, "Action=DescribeDBInstances").len()
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
    // One (account, region) once: six instances, six changes.
    assert_eq!(modified.len(), 6, "{order:?}");
    let mut moved = order.clone();
    moved.sort();
    assert_eq!(
        moved,
        ["aurora-r1", "aurora-r2", "aurora-w", "pg-0", "pg-1", "pg-2"]
    );
    // The readers of the cluster before its writer.
    let at = |id: &str| order.iter().position(|o| o == id).unwrap();
    assert!(
        at("aurora-r1") < at("aurora-w") && at("aurora-r2") < at("aurora-w"),
        "{order:?}"
    );
    // Between two changes, the first instance was read until it was available again: pg-1
    // three times at least (modifying, modifying, available), aurora-r1 twice; the others,
    // which the emulator never shows restarting, until the restart settle passed (2 s:
    // three reads). Members of the cluster are read again before each change too.
    let log: Vec<(String, Option<String>)> = proxy
        .requests()
        .into_iter()
        .map(|(op, b)| (op, instance_of(&String::from_utf8_lossy(&b))))
        .collect();
    let changes: Vec<usize> = (0..log.len())
        .filter(|&i| log[i].0 == "Action=ModifyDBInstance")
        .collect();
    for (i, id) in order.iter().enumerate() {
        let next = changes.get(i + 1).copied().unwrap_or(log.len());
        let reads = (changes[i]..next)
            .filter(|&p| {
                log[p].0 == "Action=DescribeDBInstances" && log[p].1.as_deref() == Some(id)
            })
            .count();
        let want = match id.as_str() {
            "aurora-r1" => 2,
            _ => 3,
        };
        assert!(
            reads >= want,
            "{id} read {reads} times before the next change, not {want}"
        );
    }
    // It says what it waits for.
    assert!(
        err.contains("waiting for DB instance pg-1") && err.contains("modifying"),
        "{err}"
    );
    assert!(
        err.contains("its restart to have begun (it still reads available)"),
        "{err}"
    );
    // The second target of the same account: said, not audited again.
    assert!(
        err.contains("target b") && err.contains("target a"),
        "{err}"
    );
    // Credentials resolved once per target, not once per instance.
    assert_eq!(identities, 2, "GetCallerIdentity");
    let log = env.json(&["log"]);
    assert_eq!(
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "rds-ca")
            .count(),
        6
    );
}

/// Issue 16, item 1: waiting has a bound. An instance that stays `modifying` stops the
/// apply with its name, and nothing further is changed.
#[test]
fn regression_rds_apply_stops_at_the_wait_timeout_and_changes_nothing_further() {
    let emu = emulator();
    let env = Env::init();
    rds_fleet(&emu, &env);
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.canned("Action=DescribeCertificates", 200, &rds_certificates_xml());
    proxy.rewrite(
        "Action=DescribeDBInstances",
        "DBInstanceIdentifier=pg-0",
        AVAILABLE,
        MODIFYING,
    );
    let mut cmd = env.cmd();
    emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
    let started = std::time::Instant::now();
    let out = cmd
        .args([
            "rds",
            "ca-audit",
            "--regions",
            "us-east-1",
            "--apply",
            "--yes",
            // The emulator never restarts an instance: watched 2 s for it, not a minute.
            "--restart-settle",
            "2s",
            "--wait-timeout",
            "3s",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let modified = sent(&proxy, "Action=ModifyDBInstance");
    assert_eq!(modified.len(), 1, "nothing after the timeout: {modified:?}");
    assert!(
        modified[0].contains("DBInstanceIdentifier=pg-0"),
        "{modified:?}"
    );
    assert!(
        err.contains("pg-0") && err.contains("still not available") && err.contains("3s"),
        "{err}"
    );
    assert!(err.contains("nothing further was changed"), "{err}");
}

/// Issue 16, item 2: the plan read a listener's SNI list with NEW in it (NEW added by an
/// earlier run), NEW was removed from it before the swap, and the swap then only removed
/// OLD: the listener served neither, and the command said "moved 1 of 1". A stale read is
/// what the proxy gives here (the listener's SNI list as read says NEW; the emulator's does
/// not); the swap always adds NEW before it removes OLD.
#[test]
fn regression_rotate_never_leaves_an_sni_listener_with_neither_old_nor_new() {
    let emu = emulator();
    let env = Env::init();
    let old = imported(&emu, "us-east-1", "www.example.com");
    let new = imported(&emu, "us-east-1", "www.example.com");
    let s1 = imported(&emu, "us-east-1", "shop.example.com");
    let s2 = imported(&emu, "us-east-1", "api.example.com");
    let d = imported(&emu, "us-east-1", "default.example.com");
    let ls = load_balancers(&emu, &env, &old, &s1, &s2, &d);
    let l8443 = ls["l8443"].as_str().unwrap();
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.rewrite(
        "Action=DescribeListenerCertificates",
        &format!("ListenerArn={}", urlencode(l8443)),
        "<Certificates>",
        &format!(
            "<Certificates><member><CertificateArn>{new}</CertificateArn><IsDefault>false</IsDefault></member>"
        ),
    );
    let mut cmd = env.cmd();
    emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
    let out = cmd
        .args(["--output", "json", "rotate", &old, &new, "--yes"])
        .output()
        .unwrap();
    let (code, out, err) = (out.status.code(), stdout(&out), stderr(&out));
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let planned: Vec<&str> = report["plans"][0]["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["listener"] == l8443)
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["sni-remove-old"], "the stale read: {report:#}");
    let now: Vec<String> = serving(&emu, &env)[l8443]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(
        now.contains(&new) && !now.contains(&old),
        "the listener serves NEW and not OLD: {now:?}"
    );
    // NEW was added (again: AddListenerCertificates of a certificate already there changes
    // nothing) before OLD was removed.
    let log = proxy.requests();
    let find = |op: &str, arn: &str| {
        log.iter().position(|(o, b)| {
            o == op && {
                let b = String::from_utf8_lossy(b);
                b.contains(&urlencode(l8443)) && b.contains(&urlencode(arn))
            }
        })
    };
    let added = find("Action=AddListenerCertificates", &new).expect("NEW added");
    let removed = find("Action=RemoveListenerCertificates", &old).expect("OLD removed");
    assert!(added < removed);
}

/// Review of issue 16, item 2: a default certificate was set with ModifyListener from the
/// plan's read alone, so one changed since the plan (to neither OLD nor NEW) was
/// overwritten with NEW. It is read again right before: changed by someone else, it is left
/// as it is, and the swap fails saying so. (A proxy answers the re-read as if someone had
/// moved the listener to another certificate.)
#[test]
fn regression_rotate_does_not_overwrite_a_default_certificate_changed_since_the_plan() {
    let emu = emulator();
    let env = Env::init();
    let old = imported(&emu, "us-east-1", "www.example.com");
    let new = imported(&emu, "us-east-1", "www.example.com");
    let s1 = imported(&emu, "us-east-1", "shop.example.com");
    let s2 = imported(&emu, "us-east-1", "api.example.com");
    let d = imported(&emu, "us-east-1", "default.example.com");
    let ls = load_balancers(&emu, &env, &old, &s1, &s2, &d);
    let (l443, nlb) = (ls["l443"].as_str().unwrap(), ls["nlb"].as_str().unwrap());
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.rewrite(
        "Action=DescribeListeners",
        &format!("ListenerArns.member.1={}", urlencode(l443)),
        &old,
        &d,
    );
    let mut cmd = env.cmd();
    emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
    let out = cmd.args(["rotate", &old, &new, "--yes"]).output().unwrap();
    let (code, err) = (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("changed since the plan"), "{err}");
    let modified = |listener: &str| {
        proxy.requests().iter().any(|(o, b)| {
            o == "Action=ModifyListener"
                && String::from_utf8_lossy(b).contains(&urlencode(listener))
        })
    };
    assert!(!modified(l443), "the changed listener is left as it is");
    // The others are moved (the emulator does not apply ModifyListener to an NLB: what
    // was sent is what is checked).
    assert!(modified(nlb) && nlb_moved(&proxy, nlb, &new));
}

/// Issue 16, item 2: `rotate ENTRY ENTRY` took one ARN of OLD's entry per target and
/// region, and missed the listeners on its other ARNs (a copy of the same certificate
/// imported by hand, found by discovery). Every ARN holding OLD's certificate is moved.
#[test]
fn regression_rotate_of_entries_moves_the_listeners_of_every_arn_of_old() {
    let emu = emulator();
    let env = Env::init();
    let old_pem = crate::common::self_signed_file(&env, "old.pem", "www.example.com", 90);
    let new_pem = crate::common::self_signed_file(&env, "new.pem", "www.example.com", 90);
    env.import(&[&old_pem, &"--name", &"old"]);
    env.import(&[&new_pem, &"--name", &"new"]);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env(&mut cmd, env.dir.path());
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    for name in ["old", "new"] {
        let (code, _, err) = run(&["deploy", name, "--regions", "us-east-1"]);
        assert_eq!(code, Some(0), "{err}");
    }
    let (_, status, err) = run(&["--output", "json", "status"]);
    let deployed =
        crate::deploy::rows(&serde_json::from_str(&status).unwrap_or_else(|_| panic!("{err}")));
    let arn_of = |name: &str| {
        deployed
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["arn"].as_str())
            .unwrap_or_else(|| panic!("{name}: {deployed:#?}"))
            .to_owned()
    };
    let (old_arn, new_arn) = (arn_of("old"), arn_of("new"));
    // The same certificate as OLD, imported by hand, and found by discovery.
    let text = std::fs::read_to_string(&old_pem).unwrap();
    let split = text.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let copy = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.import_certificate()
            .certificate(aws_sdk_acm::primitives::Blob::new(
                &text.as_bytes()[..split],
            ))
            .private_key(aws_sdk_acm::primitives::Blob::new(
                &text.as_bytes()[split..],
            ))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    let (code, _, err) = run(&["discover", "--regions", "us-east-1"]);
    assert!(code == Some(0) || code == Some(3), "{err}");
    // One ALB: :443 serves the deployed OLD, :8443 the copy.
    let listeners: Value = serde_json::from_str(&emu.boto3(
        &env,
        r#"
old, copy = sys.argv[1:3]
ec2 = boto3.client('ec2')
vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
a = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24', AvailabilityZone='us-east-1a')['Subnet']['SubnetId']
b = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.2.0/24', AvailabilityZone='us-east-1b')['Subnet']['SubnetId']
e = boto3.client('elbv2')
alb = e.create_load_balancer(Name='alb', Subnets=[a, b], Type='application')['LoadBalancers'][0]['LoadBalancerArn']
tg = e.create_target_group(Name='web', Protocol='HTTP', Port=80, VpcId=vpc)['TargetGroups'][0]['TargetGroupArn']
fwd = [{'Type': 'forward', 'TargetGroupArn': tg}]
one = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=443, Certificates=[{'CertificateArn': old}], DefaultActions=fwd)['Listeners'][0]['ListenerArn']
two = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=8443, Certificates=[{'CertificateArn': copy}], DefaultActions=fwd)['Listeners'][0]['ListenerArn']
print(json.dumps([one, two]))
"#,
        &[&old_arn, &copy],
    ))
    .unwrap();
    let (code, out, err) = run(&["rotate", "old", "new", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    let after = serving(&emu, &env);
    for l in listeners.as_array().unwrap() {
        assert_eq!(
            after[l.as_str().unwrap()][0],
            new_arn.as_str(),
            "{l} moved: {out} {after:#}"
        );
    }
    assert!(out.contains("moved 2 of 2"), "{out}");
}

/// Calls by operation in the proxy's log from `from` on.
fn calls_since(proxy: &FaultProxy, from: usize) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (op, _) in proxy.requests().into_iter().skip(from) {
        let op = if let Some((method, rest)) = op.split_once(' ') {
            // Route 53's REST calls: named by their request line.
            let path = rest.split(['?', ' ']).next().unwrap_or_default();
            match (method, path) {
                (_, p) if p.ends_with("/hostedzonesbyname") => "ListHostedZonesByName".to_owned(),
                ("POST", p) if p.ends_with("/rrset") || p.ends_with("/rrset/") => {
                    "ChangeResourceRecordSets".to_owned()
                }
                _ => format!("{method} {path}"),
            }
        } else {
            op.trim_start_matches("Action=")
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        *out.entry(op).or_default() += 1;
    }
    out
}

/// Issue 16, item 5: two email-validated certificates for the same names got a replacement
/// each (tokens per old certificate), and a re-run then mapped both to one and left the
/// other orphaned; FAILED and EXPIRED certificates got replacements too. Now one request per
/// set of names, shared and said, and dead certificates listed, not replaced. (Item 7: the
/// credentials were resolved 6 times per certificate on a first run, 3 on a re-run; now
/// once per target.) The emulator says DNS and ISSUED for every request: the proxy says
/// EMAIL, and FAILED or EXPIRED for the dead ones.
#[test]
fn regression_migrate_validation_requests_one_replacement_per_set_of_names_and_none_for_the_dead() {
    let emu = emulator();
    let env = Env::init();
    emu.boto3(
        &env,
        "boto3.client('route53').create_hosted_zone(Name='example.com', CallerReference='z')",
        &[],
    );
    let request = |name: &str| {
        block_on(async {
            let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
            acm.request_certificate()
                .domain_name(name)
                .validation_method(aws_sdk_acm::types::ValidationMethod::Email)
                .send()
                .await
                .unwrap()
                .certificate_arn()
                .unwrap()
                .to_owned()
        })
    };
    let email1 = request("www.example.com");
    let email2 = request("www.example.com");
    let failed = request("dead.example.com");
    let expired = request("gone.example.com");
    let proxy = FaultProxy::clean(&emu.endpoint);
    for arn in [&email1, &email2, &failed, &expired] {
        proxy.rewrite(
            "CertificateManager.DescribeCertificate",
            arn,
            "\"ValidationMethod\": \"DNS\"",
            "\"ValidationMethod\": \"EMAIL\"",
        );
    }
    for (arn, name, status) in [(&failed, "dead", "FAILED"), (&expired, "gone", "EXPIRED")] {
        proxy.rewrite(
            "CertificateManager.ListCertificates",
            "",
            &format!("\"DomainName\": \"{name}.example.com\", \"Status\": \"ISSUED\""),
            &format!("\"DomainName\": \"{name}.example.com\", \"Status\": \"{status}\""),
        );
        proxy.rewrite(
            "CertificateManager.DescribeCertificate",
            arn,
            "\"Status\": \"ISSUED\"",
            &format!("\"Status\": \"{status}\""),
        );
    }
    // Each email-validated www certificate serves a listener.
    let listeners: Value = serde_json::from_str(&emu.boto3(
        &env,
        r#"
one, two = sys.argv[1:3]
ec2 = boto3.client('ec2')
vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
a = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24', AvailabilityZone='us-east-1a')['Subnet']['SubnetId']
b = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.2.0/24', AvailabilityZone='us-east-1b')['Subnet']['SubnetId']
e = boto3.client('elbv2')
alb = e.create_load_balancer(Name='alb', Subnets=[a, b], Type='application')['LoadBalancers'][0]['LoadBalancerArn']
tg = e.create_target_group(Name='web', Protocol='HTTP', Port=80, VpcId=vpc)['TargetGroups'][0]['TargetGroupArn']
fwd = [{'Type': 'forward', 'TargetGroupArn': tg}]
l1 = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=443, Certificates=[{'CertificateArn': one}], DefaultActions=fwd)['Listeners'][0]['ListenerArn']
l2 = e.create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=8443, Certificates=[{'CertificateArn': two}], DefaultActions=fwd)['Listeners'][0]['ListenerArn']
print(json.dumps([l1, l2]))
"#,
        &[&email1, &email2],
    ))
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, _, err) = run(&["discover", "--regions", "us-east-1", "--deep"]);
    assert!(code == Some(0) || code == Some(3), "{err}");
    let migrate = [
        "--output",
        "json",
        "acm",
        "migrate-validation",
        "--regions",
        "us-east-1",
        "--route53",
        "--yes",
    ];
    let start = proxy.requests().len();
    let (code, out, err) = run(&migrate);
    let first_calls = calls_since(&proxy, start);
    let again_start = proxy.requests().len();
    let (again_code, again_out, again_err) = run(&migrate);
    let again_calls = calls_since(&proxy, again_start);
    eprintln!("first run, calls by operation: {first_calls:?}\nre-run: {again_calls:?}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again_code, Some(0), "{again_err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let by_old = |report: &Value, arn: &str| -> Value {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["old"] == arn)
            .cloned()
            .unwrap_or_else(|| panic!("{arn} not reported: {report:#}"))
    };
    assert_eq!(
        sent(&proxy, "CertificateManager.RequestCertificate").len(),
        1,
        "one request for the one set of names, none for the dead, over both runs: {report:#}"
    );
    let (m1, m2) = (by_old(&report, &email1), by_old(&report, &email2));
    assert_eq!(m1["new"], m2["new"], "{report:#}");
    let new = m1["new"].as_str().unwrap().to_owned();
    // One of them made the request; the other shares it, and says with which.
    let (lead, follower) = if m1["requested_now"] == true {
        (&m1, &m2)
    } else {
        (&m2, &m1)
    };
    assert_eq!(lead["requested_now"], true, "{report:#}");
    assert_eq!(follower["requested_now"], false, "{report:#}");
    assert_eq!(follower["shares_request_with"], lead["old"], "{report:#}");
    for (arn, status) in [(&failed, "FAILED"), (&expired, "EXPIRED")] {
        let m = by_old(&report, arn);
        assert!(m["new"].is_null(), "{m:#}");
        let note = m["note"].as_str().unwrap_or_default();
        assert!(
            note.contains(status) && note.contains("not replaced"),
            "{m:#}"
        );
    }
    let after = serving(&emu, &env);
    for l in listeners.as_array().unwrap() {
        assert_eq!(after[l.as_str().unwrap()][0], new.as_str(), "{after:#}");
    }
    // The re-run finds the one replacement for both, and nothing is orphaned.
    let again: Value = serde_json::from_str(&again_out).unwrap();
    for arn in [&email1, &email2] {
        let m = by_old(&again, arn);
        assert_eq!(m["new"], new.as_str(), "{again:#}");
        assert_eq!(m["requested_now"], false);
    }
    let www = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .iter()
            .filter(|c| c.domain_name() == Some("www.example.com"))
            .count()
    });
    assert_eq!(www, 3, "the two old ones and one replacement");
    // Credentials resolved once per target and command.
    assert_eq!(
        first_calls.get("GetCallerIdentity"),
        Some(&1),
        "{first_calls:?}"
    );
    assert_eq!(
        again_calls.get("GetCallerIdentity"),
        Some(&1),
        "{again_calls:?}"
    );
}

/// Issue 17: what `rotate` and `rds ca-audit` print (tables, JSON, messages) is pinned, as
/// the other commands' is. Values that vary are placeholders: the certificates' and
/// listeners' ids by name, then `first_hour::normalize`.
#[test]
fn rotate_and_rds_outputs_are_pinned() {
    let emu = emulator();
    let env = Env::init();
    let old = imported(&emu, "us-east-1", "www.example.com");
    let new = imported(&emu, "us-east-1", "www.example.com");
    let s1 = imported(&emu, "us-east-1", "shop.example.com");
    let s2 = imported(&emu, "us-east-1", "api.example.com");
    let d = imported(&emu, "us-east-1", "default.example.com");
    let ls = load_balancers(&emu, &env, &old, &s1, &s2, &d);
    emu.boto3(
        &env,
        r#"
r = boto3.client('rds')
r.create_db_instance(DBInstanceIdentifier='pg-old', Engine='postgres', DBInstanceClass='db.t3.micro',
    MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-2019')
r.create_db_instance(DBInstanceIdentifier='pg-fine', Engine='postgres', DBInstanceClass='db.t3.micro',
    MasterUsername='admin', MasterUserPassword='not-a-secret-1', AllocatedStorage=20, CACertificateIdentifier='rds-ca-rsa2048-g1')
"#,
        &[],
    );
    let proxy = FaultProxy::clean(&emu.endpoint);
    proxy.canned("Action=DescribeCertificates", 200, &rds_certificates_xml());
    let mut names: Vec<(String, String)> = vec![
        (old.clone(), "[old-arn]".into()),
        (new.clone(), "[new-arn]".into()),
        (s1.clone(), "[s1-arn]".into()),
        (s2.clone(), "[s2-arn]".into()),
        (d.clone(), "[d-arn]".into()),
    ];
    for (k, arn) in ls.as_object().unwrap() {
        names.push((arn.as_str().unwrap().to_owned(), format!("[{k}-arn]")));
    }
    // Then their last parts, as tables show them.
    let last: Vec<(String, String)> = names
        .iter()
        .map(|(arn, name)| {
            (
                arn.rsplit('/').next().unwrap().to_owned(),
                name.replace("-arn]", "]"),
            )
        })
        .collect();
    names.extend(last);
    let mut text = String::new();
    let mut run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        cmd.env_remove("COLUMNS");
        let out = cmd.args(args).output().unwrap();
        let mut t = format!(
            "$ certvault {}\n[exit {}]\n{}{}\n",
            args.join(" "),
            out.status.code().map_or("signal".into(), |c| c.to_string()),
            stdout(&out),
            stderr(&out)
        );
        for (from, to) in &names {
            t = t.replace(from.as_str(), to);
        }
        // The CAs' ends are days from now; whole timestamps are `normalize`'s.
        let dates = regex::Regex::new(r"\b\d{4}-\d\d-\d\d\b(?:T)?").unwrap();
        let t = dates.replace_all(&t, |c: &regex::Captures<'_>| {
            if c[0].ends_with('T') {
                c[0].to_owned()
            } else {
                "[date]".to_owned()
            }
        });
        text.push_str(&t);
    };
    run(&["rotate", &old, &new, "--dry-run"]);
    run(&["--output", "json", "rotate", &old, &new, "--dry-run"]);
    run(&["--output", "json", "rotate", &old, &new]);
    run(&["rotate", "arn:aws:s3:::bucket", &new]);
    run(&["rotate", &old, &new, "--regions", "eu-west-1"]);
    run(&["rotate", "nowhere.example", &new]);
    run(&["rotate", &old, &new, "--yes"]);
    run(&["--output", "json", "rotate", &old, &new, "--yes"]);
    run(&["rds", "ca-audit", "--regions", "us-east-1"]);
    run(&[
        "--output",
        "json",
        "rds",
        "ca-audit",
        "--regions",
        "us-east-1",
    ]);
    run(&["rds", "ca-audit", "--regions", "us-east-1", "--no-restart"]);
    run(&["rds", "ca-audit", "--regions", "us-east-1", "--apply"]);
    insta::assert_snapshot!(
        "rotate_and_rds_outputs",
        crate::first_hour::normalize(&text, &env)
    );
}
