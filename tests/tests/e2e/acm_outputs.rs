//! What `acm request`, `acm requests`, `acm delete`, `acm export-key` and `pca list` /
//! `pca issue` print, pinned: tables and messages as people see them, and the shapes of
//! the JSON documents scripts rely on.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::{
    common::{Env, stderr, stdout},
    emulator::{Emulator, emulator},
    first_hour::{normalize, shape, transcript},
};

/// What the emulator makes up anew each run (validation record names and values, the ids
/// of certificates Private CA issues), replaced by placeholders; then [`normalize`].
fn pinned(text: &str, env: &Env) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"_[0-9a-f]{32}\.", "_[token]."),
            (
                r"\.[a-z0-9]{10}\.acm-validations",
                ".[token].acm-validations",
            ),
            (r"certificate/[0-9a-f]{32}", "certificate/[id]"),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("valid regex"), with))
        .collect()
    });
    let mut out = text.to_owned();
    for (re, with) in rules {
        out = re.replace_all(&out, *with).into_owned();
    }
    normalize(&out, env)
}

fn json(env: &Env, emu: &Emulator, args: &[&str]) -> Value {
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd.arg("--output").arg("json").args(args).output().unwrap();
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}{}", stdout(&out), stderr(&out)))
}

#[test]
fn acm_outputs_are_pinned() {
    let emu = emulator();
    let env = Env::init();
    let request = [
        "acm",
        "request",
        "--domain",
        "www.pinned-acm.test",
        "--validation",
        "dns",
        "--region",
        "us-east-1",
    ];
    let mut text = String::new();
    let mut say = |args: &[&str]| {
        text.push_str(&transcript(&env, args, |c| emu.env(c, env.dir.path())));
        text.push('\n');
    };
    say(&request);
    say(&["acm", "requests"]);
    say(&["acm", "export-key", "www.pinned-acm.test"]);
    say(&["acm", "delete", "www.pinned-acm.test"]);
    say(&[
        "acm",
        "delete",
        "www.pinned-acm.test",
        "--region",
        "eu-west-1",
    ]);
    say(&["acm", "delete", "www.pinned-acm.test", "--yes"]);
    say(&[
        "acm",
        "delete",
        "arn:aws:acm:us-east-1:1:certificate/x",
        "--yes",
    ]);
    insta::assert_snapshot!("acm_messages", pinned(&text, &env));

    let mut shapes = serde_json::Map::new();
    let mut request_json = request.to_vec();
    request_json[3] = "api.pinned-acm.test";
    shapes.insert("request".into(), shape(&json(&env, &emu, &request_json)));
    shapes.insert(
        "requests".into(),
        shape(&json(&env, &emu, &["acm", "requests"])),
    );
    shapes.insert(
        "delete".into(),
        shape(&json(
            &env,
            &emu,
            &["acm", "delete", "api.pinned-acm.test", "--yes"],
        )),
    );
    insta::assert_snapshot!(
        "acm_json_shapes",
        serde_json::to_string_pretty(&Value::Object(shapes)).unwrap()
    );
}

#[test]
fn pca_outputs_are_pinned() {
    // An emulator of its own: the list holds only the CA made here.
    let emu = Emulator::start_with_validation_wait(0);
    let env = Env::init();
    let ca = crate::pca::active_root(&emu);
    let mut text = String::new();
    for args in [
        &["pca", "list", "--regions", "us-east-1"][..],
        &[
            "pca",
            "issue",
            "--ca-arn",
            &ca,
            "--dns",
            "svc.pinned-pca.test",
        ],
        &[
            "pca",
            "issue",
            "--ca-arn",
            "arn:aws:acm:us-east-1:1:certificate/x",
            "--dns",
            "x.test",
        ],
    ] {
        text.push_str(&transcript(&env, args, |c| emu.env(c, env.dir.path())));
        text.push('\n');
    }
    let text = text.replace(&ca, "[ca-arn]");
    insta::assert_snapshot!("pca_messages", pinned(&text, &env));
    let mut shapes = serde_json::Map::new();
    shapes.insert(
        "list".into(),
        shape(&json(
            &env,
            &emu,
            &["pca", "list", "--regions", "us-east-1"],
        )),
    );
    shapes.insert(
        "issue".into(),
        shape(&json(
            &env,
            &emu,
            &[
                "pca",
                "issue",
                "--ca-arn",
                &ca,
                "--dns",
                "api.pinned-pca.test",
            ],
        )),
    );
    insta::assert_snapshot!(
        "pca_json_shapes",
        serde_json::to_string_pretty(&Value::Object(shapes)).unwrap()
    );
}

/// A request ACM has not issued yet, as `acm requests` shows it (the emulator validates
/// after an hour).
#[test]
fn acm_requests_outputs_are_pinned() {
    let emu = Emulator::start_with_validation_wait(3600);
    let env = Env::init();
    let mut text = String::new();
    for args in [
        &[
            "acm",
            "request",
            "--domain",
            "pending.pinned-acm.test",
            "--validation",
            "dns",
            "--region",
            "us-east-1",
        ][..],
        &["acm", "requests"],
        &["acm", "requests", "--wait", "--timeout", "100h"],
    ] {
        text.push_str(&transcript(&env, args, |c| emu.env(c, env.dir.path())));
        text.push('\n');
    }
    insta::assert_snapshot!("acm_requests_messages", pinned(&text, &env));
    let rows = json(&env, &emu, &["acm", "requests"]);
    insta::assert_snapshot!(
        "acm_requests_json_shape",
        serde_json::to_string_pretty(&shape(&rows)).unwrap()
    );
}
