//! Issue "The first hour": what people see is pinned (help, tables, JSON shapes, the
//! messages the issue lists) by snapshots under `snapshots/`, so a change to it shows up
//! in review; tables fit a terminal; AWS errors read as words; logs in files carry no
//! colour.
//!
//! Snapshots are compared after `normalize`: the scratch directory, timestamps, ids,
//! digests and ARNs' UUIDs vary from run to run and are replaced by placeholders, and runs
//! of blanks or rules are shortened (column widths follow the varying values). Update
//! them deliberately: `cargo insta review`, or `INSTA_UPDATE=always` and read the diff.

use std::{
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use regex::Regex;
use serde_json::Value;

use crate::{
    common::{Env, PASS, fixture, stderr, stdout},
    deploy::{cert, import_files, rows, run},
    emulator::emulator,
};

/// What varies between runs, replaced by placeholders; runs of blanks shortened too
/// (table columns are as wide as the values that vary).
pub(crate) fn normalize(text: &str, env: &Env) -> String {
    static BLANKS: OnceLock<Regex> = OnceLock::new();
    let blanks = BLANKS.get_or_init(|| Regex::new(r" {2,}").expect("valid regex"));
    blanks
        .replace_all(&normalize_values(text, env), "  ")
        .into_owned()
}

/// What varies between runs, replaced by placeholders.
fn normalize_values(text: &str, env: &Env) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                "[time]",
            ),
            (
                r"(expired )?(in )?\d+ (second|minute|hour|day)s?( ago)?",
                "[relative]",
            ),
            (r"\S+ \(uid \d+\) on \S+", "[actor]"),
            (r"certificate/[0-9a-f-]{36}", "certificate/[uuid]"),
            (r"\b[0-9a-f]{64}\b", "[sha256]"),
            (r"\b[0-9a-f]{40}\b", "[serial]"),
            (r"\b[0-9a-f]{16}\b", "[id]"),
            (r"\b\d+\.\d s\b", "[seconds]"),
            (r"\(request [^)]*\)", "(request [id])"),
            (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
            (r"(os error \d+)", "$1"),
            (r"─{3,}", "───"),
            (r"═{3,}", "═══"),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("valid regex"), with))
        .collect()
    });
    let fixtures = fixture("").display().to_string();
    let mut out = text
        .replace(&env.dir.path().display().to_string(), "[dir]")
        .replace(fixtures.trim_end_matches('/'), "[fixtures]");
    for (re, with) in rules {
        out = re.replace_all(&out, *with).into_owned();
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A JSON document's shape: every key, and the type of every value (an array by its
/// first element). What scripts rely on, without the values that vary.
pub(crate) fn shape(v: &Value) -> Value {
    match v {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Runs certvault; the transcript of what a person sees: the command, the exit code,
/// stdout and stderr.
pub(crate) fn transcript(
    env: &Env,
    args: &[&str],
    setup: impl FnOnce(&mut assert_cmd::Command),
) -> String {
    let mut cmd = env.cmd();
    // clap wraps help at $COLUMNS when it is set.
    cmd.env_remove("COLUMNS");
    setup(&mut cmd);
    let out = cmd.args(args).output().expect("run certvault");
    format!(
        "$ certvault {}\n[exit {}]\n{}{}",
        args.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        stdout(&out),
        stderr(&out)
    )
}

fn vault_with_fixtures() -> Env {
    let env = Env::init();
    env.import(&[
        &fixture("ec256.pem"),
        &"--key",
        &fixture("ec256.key.pem"),
        &"--chain",
        &fixture("chain.pem"),
        &"--tag",
        &"env=prod",
    ]);
    env.import(&[
        &fixture("rsa2048.pem"),
        &"--key",
        &fixture("rsa2048.key.pem"),
    ]);
    env.import(&[&fixture("expired.pem")]);
    env
}

#[test]
fn help_is_pinned() {
    let env = Env::new();
    let mut all = transcript(&env, &["--help"], |_| {});
    for sub in [
        "init",
        "passwd",
        "import",
        "list",
        "show",
        "export",
        "remove",
        "log",
        "verify",
        "backup",
        "discover",
        "deploy",
        "undeploy",
        "status",
        "sync",
        "agent",
        "acm",
        "acm request",
        "acm requests",
        "acm request-private",
        "acm delete",
        "acm export-key",
        "acm renew",
        "acm revoke",
        "acm migrate-validation",
        "pca",
        "pca list",
        "pca issue",
        "rotate",
        "rds",
        "rds ca-audit",
        "completions",
        "man",
    ] {
        all.push('\n');
        let mut args: Vec<&str> = sub.split(' ').collect();
        args.push("-h");
        let help = transcript(&env, &args, |_| {});
        // The global options are the same everywhere: pinned once, with --help.
        let (own, _global) = help.split_once("Global options:").unwrap_or((&help, ""));
        all.push_str(own.trim_end());
        all.push('\n');
    }
    insta::assert_snapshot!("help", normalize_values(&all, &env));
}

#[test]
fn vault_tables_and_json_shapes_are_pinned() {
    let env = vault_with_fixtures();
    let mut text = String::new();
    for args in [
        &["list"][..],
        &["list", "--expiring-within", "30d"],
        &["show", "ec256.fixture.test"],
        &["log"],
        &["verify"],
    ] {
        text.push_str(&transcript(&env, args, |_| {}));
        text.push('\n');
    }
    insta::assert_snapshot!("vault_tables", normalize(&text, &env));

    let mut shapes = serde_json::Map::new();
    for (name, args) in [
        ("list", &["list"][..]),
        ("show", &["show", "ec256.fixture.test"]),
        ("log", &["log"]),
        ("log verify", &["log", "verify"]),
        ("verify", &["verify"]),
    ] {
        shapes.insert(name.into(), shape(&env.json(args)));
    }
    insta::assert_snapshot!(
        "vault_json_shapes",
        serde_json::to_string_pretty(&Value::Object(shapes)).unwrap()
    );
}

/// Every message the issue lists, as a person meets it.
#[test]
fn messages_say_what_to_do_next() {
    let fresh = Env::new();
    let mut text = normalize(&transcript(&fresh, &["init"], |_| {}), &fresh);
    text.push_str("\n\n");
    let env = vault_with_fixtures();
    let dir = env.dir.path().to_owned();
    std::fs::write(dir.join("exists.pem"), "").unwrap();
    for f in ["a", "b", "c"] {
        crate::common::self_signed_file(&env, &format!("{f}.pem"), &format!("{f}.bulk.test"), 90);
    }
    let cases: Vec<Vec<&str>> = vec![
        vec!["show", "5"],
        vec!["show", "alt.ec256.fixture.test"],
        vec!["show", "nowhere.example"],
        vec!["export", "ec256.fixture.test", "--cert-version", "2"],
        vec![
            "export",
            "ec256.fixture.test",
            "--format",
            "p12",
            "--with-key",
            "--unencrypted-key",
            "--out",
            "x.p12",
        ],
        vec!["export", "ec256.fixture.test", "--out", "exists.pem"],
        vec!["list", "--expiring-within", "30"],
        vec!["agent", "--interval", "5"],
        vec!["deploy", "ec256.fixture.test", "--regions", "us-est-1"],
        vec!["list", "--tag", "novalue"],
        vec!["import", "a.pem", "b.pem", "c.pem"],
        vec!["import", "a.pem", "b.pem", "c.pem", "-v"],
    ];
    for args in &cases {
        text.push_str(&transcript(&env, args, |_| {}));
        text.push('\n');
    }
    // With the vault in the environment, usage lines do not show --vault as required.
    let mut bare = env.bare();
    bare.env("CERTVAULT_PATH", &env.vault).arg("show");
    let out = bare.output().unwrap();
    text.push_str(&format!(
        "$ CERTVAULT_PATH=... certvault show\n[exit {}]\n{}",
        out.status.code().unwrap_or(-1),
        stderr(&out)
    ));
    insta::assert_snapshot!("messages", normalize(&text, &env));
}

/// Exit codes, exactly as the README's table: usage 2, any other failure 1, attention 3.
#[test]
fn exit_codes_are_the_readmes() {
    let env = vault_with_fixtures();
    std::fs::write(env.path("exists.pem"), "").unwrap();
    for (args, code) in [
        (&["list", "--bogus"][..], 2),
        (&["list", "--expiring-within", "30"], 2),
        (&["list", "--tag", "novalue"], 2),
        (
            &[
                "export",
                "ec256.fixture.test",
                "--format",
                "p12",
                "--with-key",
                "--unencrypted-key",
                "--out",
                "x.p12",
            ],
            2,
        ),
        (&["export", "ec256.fixture.test", "--out", "exists.pem"], 1),
        (&["show", "nowhere.example"], 1),
        (&["list", "--expiring-within", "30d"], 3),
        (&["list"], 0),
    ] {
        env.cmd().args(args).assert().code(code);
    }
    let mut bad_env = env.cmd();
    bad_env
        .env("CERTVAULT_OUTPUT", "yaml")
        .arg("list")
        .assert()
        .code(2);
}

/// Runs certvault in a pseudo-terminal `width` columns wide (util-linux `script`); its
/// output, with the terminal's line ends undone.
fn on_terminal(env: &Env, width: usize, args: &str, aws: &[(&str, String)]) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!(
            "{} --vault {} {args}",
            crate::common::bin().display(),
            env.vault.display()
        ))
        .arg("/dev/null")
        .env("COLUMNS", width.to_string())
        .env("NO_COLOR", "1")
        .env("CERTVAULT_PASSPHRASE", PASS)
        .env("HOME", env.dir.path())
        .env("XDG_CONFIG_HOME", env.dir.path().join("config"))
        .current_dir(env.dir.path())
        .stdin(Stdio::null());
    for (k, v) in aws {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux `script` runs a command in a terminal");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn width(line: &str) -> usize {
    line.chars().count()
}

/// Issue "The first hour": on an 80-column terminal, status was 165-215 columns wide and
/// a failed row's DETAIL a ~500-column Debug dump of the SDK's error.
#[test]
fn regression_tables_fit_the_terminal_and_aws_errors_read_as_words() {
    let emu = emulator();
    let env = Env::init();
    cert(
        &env,
        "svc",
        "a-rather-long-service-name.internal.example.com",
        90,
    );
    import_files(&env, "svc", None);
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "a-rather-long-service-name.internal.example.com",
            "--regions",
            "us-east-1,eu-west-1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");

    // The endpoint stops answering: every row fails (after two attempts, to be quick).
    std::fs::create_dir_all(env.path("config/certvault")).unwrap();
    env.write(
        "config/certvault/config.toml",
        "[retry]\nmax_attempts = 2\n",
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let aws = vec![
        ("AWS_ENDPOINT_URL", dead_endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", env.path("none").display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            env.path("none").display().to_string(),
        ),
    ];
    for width_cols in [80, 120] {
        let text = on_terminal(&env, width_cols, "status", &aws);
        assert!(text.contains("failed"), "{text}");
        // The table's lines: rules, and rows (which start with a blank).
        let table = text.lines().filter(|l| l.starts_with([' ', '─', '═']));
        assert!(table.clone().count() >= 6, "{text}");
        for line in table {
            assert!(
                width(line) <= width_cols,
                "a line of {} columns on a {width_cols}-column terminal: {line}",
                width(line)
            );
        }
    }
    // Off a terminal nothing is cut, and the error reads as words.
    let mut cmd = env.cmd();
    for (k, v) in &aws {
        cmd.env(k, v);
    }
    let out = cmd.arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('…'), "{text}");
    assert!(
        text.contains("a-rather-long-service-name.internal.example.com"),
        "{text}"
    );
    assert!(
        text.contains("GetCallerIdentity in global: DispatchFailure: "),
        "{text}"
    );
    for dump in ["DispatchFailure(", "ConnectorError", "{ ", "Some("] {
        assert!(!text.contains(dump), "a Debug dump ({dump}) in: {text}");
    }
    insta::assert_snapshot!(
        "status_unreachable",
        normalize(&format!("{text}{}", stderr(&out)), &env)
    );
    // JSON carries it as fields.
    let mut cmd = env.cmd();
    for (k, v) in &aws {
        cmd.env(k, v);
    }
    let out = cmd.args(["--output", "json", "status"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    insta::assert_snapshot!(
        "status_unreachable_json_error",
        normalize(
            &serde_json::to_string_pretty(&rows(&report)[0]["error"]).unwrap(),
            &env
        )
    );
    for row in rows(&report) {
        let e = &row["error"];
        assert_eq!(e["operation"], "GetCallerIdentity", "{row}");
        assert_eq!(e["region"], "global", "{row}");
        assert_eq!(e["code"], "DispatchFailure", "{row}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Connection refused"),
            "{row}"
        );
    }
    drop(emu);
}

/// Deploy, status and sync as people see them, and the JSON shapes scripts rely on.
#[test]
fn deployment_tables_and_json_shapes_are_pinned() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "www", "www.pinned.test", 90);
    import_files(&env, "www", None);
    let mut text = String::new();
    for args in [
        &[
            "deploy",
            "www.pinned.test",
            "--regions",
            "us-east-1,eu-west-1",
        ][..],
        &["status"],
        &["sync", "--dry-run"],
    ] {
        text.push_str(&transcript(&env, args, |c| emu.env(c, env.dir.path())));
        text.push('\n');
    }
    insta::assert_snapshot!("deployment_tables", normalize(&text, &env));
    let mut shapes = serde_json::Map::new();
    for (name, args) in [
        ("status", &["status"][..]),
        ("sync", &["sync"]),
        ("discover", &["discover", "--regions", "us-east-1"]),
    ] {
        let (_, v, err) = run(&env, &emu, args);
        assert!(!v.is_null(), "{name}: {err}");
        shapes.insert(name.into(), shape(&v));
    }
    insta::assert_snapshot!(
        "deployment_json_shapes",
        serde_json::to_string_pretty(&Value::Object(shapes)).unwrap()
    );
}

/// Issue "The first hour": the agent's text logs carried colour codes into files. Colour
/// only when stderr is a terminal and NO_COLOR is unset; one timestamp style.
#[test]
fn regression_agent_text_logs_in_a_file_carry_no_colour() {
    let env = Env::init();
    let pass = env.write("pass", PASS);
    let log = std::fs::File::create(env.path("agent.log")).unwrap();
    let mut cmd = env.std_cmd();
    cmd.env_remove("NO_COLOR")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["agent", "--interval", "1h", "--passphrase-file"])
        .arg(&pass)
        .stdout(Stdio::null())
        .stderr(log);
    let mut agent = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(env.path("agent.log")).unwrap();
        if text.contains("pass") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    agent.wait().unwrap();
    assert!(text.contains("agent started"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
    let stamp = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ").unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(stamp.is_match(line), "timestamp style: {line}");
    }
}

/// `completions` and `man` come from the parser's own definition.
#[test]
fn shell_completions_and_manual_pages() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_certvault()"),
        ("zsh", "#compdef certvault"),
        ("fish", "complete -c certvault"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = env.bare().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(
            text.contains("expiring-within"),
            "{shell} completes options"
        );
    }
    if Command::new("bash").arg("--version").output().is_ok() {
        let script = env.write(
            "complete.sh",
            stdout(&env.bare().args(["completions", "bash"]).output().unwrap()),
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && complete -p certvault",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success() && stdout(&out).contains("certvault"),
            "bash accepts the completion script: {}",
            stderr(&out)
        );
    }
    let page = stdout(&env.bare().arg("man").output().unwrap());
    assert!(
        page.starts_with(".ie") || page.contains(".TH certvault 1"),
        "{page}"
    );
    let dir = env.path("man");
    env.bare()
        .args(["man", "--out-dir"])
        .arg(&dir)
        .assert()
        .code(0);
    for page in ["certvault.1", "certvault-export.1", "certvault-agent.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".SH"), "{page}");
    }
    // Review finding (issue 16): `certvault-ca.1` referred to `certvault-ca-create(1)`,
    // which was never written, and the NAME line read `certvault - certvault: …`. Every
    // page a page refers to is written.
    let referenced = Regex::new(r"(certvault(?:\\-[a-z0-9]+(?:\\-[a-z0-9]+)*)?)\(1\)").unwrap();
    let mut pages = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        pages += 1;
        for m in referenced.captures_iter(&text) {
            let name = m[1].replace("\\-", "-");
            assert!(
                dir.join(format!("{name}.1")).exists(),
                "{} refers to {name}(1), which was not written",
                f.display()
            );
        }
    }
    assert!(
        pages >= 50,
        "a page for every command at every depth: {pages}"
    );
    assert!(dir.join("certvault-ca-create.1").exists());
    let root = std::fs::read_to_string(dir.join("certvault.1")).unwrap();
    assert!(!root.contains("certvault \\- certvault:"), "{root}");
    if Command::new("man").arg("--version").output().is_ok() {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.join("certvault-export.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--unencrypted-key"),
            "man renders the page"
        );
    }
}

/// Review finding (issue 16): the README's shell-integration lines failed on a fresh home
/// (no folder made first). Its `sh` block, run as written by bash in an empty home, makes
/// every file it names.
#[test]
fn regression_the_readme_shell_integration_works_on_a_fresh_home() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let block = readme
        .split("\n### Shell integration\n")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block under Shell integration");
    let env = Env::new();
    let script = env.write("shell.sh", format!("set -e\n{block}\n"));
    let bin_dir = crate::common::bin().parent().unwrap().to_owned();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(env.dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        ".local/share/bash-completion/completions/certvault",
        ".config/fish/completions/certvault.fish",
        ".local/share/man/man1/certvault-ca-create.1",
    ] {
        assert!(env.dir.path().join(f).exists(), "{f}");
    }
}

/// The README's quickstart, run as written (its `sh` block, word for word) with
/// `certvault` on `PATH` and the two passphrases it would ask for in the environment:
/// it makes its own sample files, and every command succeeds except the one the README
/// says exits 3.
#[test]
fn the_readme_quickstart_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Quickstart\n")
        .nth(1)
        .expect("a Quickstart section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in the Quickstart");
    let env = Env::new();
    let script = env.write(
        "quickstart.sh",
        format!(
            "trap 'echo \"FAILED $? at: $BASH_COMMAND\" >&2' ERR\n{block}\n\
             openssl pkcs12 -in www.p12 -passin env:CERTVAULT_EXPORT_PASSPHRASE -noout \
             && echo 'www.p12 opens in openssl'\n"
        ),
    );
    let bin_dir = crate::common::bin().parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(env.dir.path())
        .env("PATH", path)
        .env("HOME", env.dir.path())
        .env("XDG_DATA_HOME", env.path("data"))
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("NO_COLOR", "1")
        .env_remove("CERTVAULT_PATH")
        .env_remove("CERTVAULT_OUTPUT")
        .env("CERTVAULT_PASSPHRASE", PASS)
        .env(
            "CERTVAULT_EXPORT_PASSPHRASE",
            "quickstart export passphrase",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    let failed: Vec<&str> = err_text
        .lines()
        .filter(|l| l.starts_with("FAILED"))
        .collect();
    assert_eq!(
        failed,
        ["FAILED 3 at: certvault list --expiring-within 30d"],
        "only the command the README says exits 3 does:\n{out_text}\n{err_text}"
    );
    for expected in [
        "mail.example.com",
        "www.p12 opens in openssl",
        "issued intranet.example.com",
        "audit log intact",
    ] {
        assert!(
            out_text.contains(expected),
            "{expected}:\n{out_text}\n{err_text}"
        );
    }
    assert!(
        env.dir
            .path()
            .join("certvault-quickstart/vault.db")
            .exists(),
        "the trial vault is in its folder"
    );
}

/// Review finding (issue 16): `deploy` without AWS credentials printed the SDK's chain of
/// causes cut to the table's width, recorded a deployment that never reached AWS (every
/// `status` after exited 1, without a hint), and reported "1 API call". Now it says that no
/// credentials were found and where they come from, records nothing, and a pass that could
/// not sign anything counts no call.
#[test]
fn regression_deploy_without_credentials_says_so_and_records_nothing() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "svc", "svc.example.com", 30);
    import_files(&env, "svc", None);
    let without_credentials = |cmd: &mut assert_cmd::Command| {
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", env.path("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", env.path("none"))
            .env("AWS_REGION", "us-east-1");
    };
    let before = env.vault_bytes();
    let mut cmd = env.cmd();
    without_credentials(&mut cmd);
    let out = cmd
        .args(["deploy", "svc.example.com", "--regions", "us-east-1"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no AWS credentials were found for target 'default'")
            && err.contains("nothing was recorded")
            && err.contains("AWS_PROFILE")
            && err.contains("AWS_ACCESS_KEY_ID")
            && err.contains("[[targets]]"),
        "{err}"
    );
    assert!(!err.contains("API call"), "{err}");
    assert_eq!(env.vault_bytes(), before, "nothing recorded");
    let (code, _, err) = run(&env, &emu, &["status"]);
    assert_eq!(code, Some(0), "{err}");

    // Deployed with credentials, then synced without: the pass says why, in full, with what
    // to do, and that no call was made.
    let (code, _, err) = run(
        &env,
        &emu,
        &["deploy", "svc.example.com", "--regions", "us-east-1"],
    );
    assert_eq!(code, Some(0), "{err}");
    let mut cmd = env.cmd();
    without_credentials(&mut cmd);
    let out = cmd.arg("sync").output().unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(text.contains("0 API calls"), "{text}");
    assert!(
        err.contains("svc.example.com (default/us-east-1): target default: GetCallerIdentity in global: NoCredentials: ")
            && err.contains("certvault undeploy svc.example.com --target default --regions us-east-1"),
        "{err}"
    );
}
