//! The local ACM emulator (moto server), started once per test run on a free loopback
//! port, reset before each test that uses it. Tests that use it hold its lock, so they run
//! one at a time against a clean state.
//!
//! moto is installed by `scripts/test.sh` into `.venv` (pinned); `$CERTVAULT_MOTO` points
//! elsewhere. The server is stopped when the test process exits: it runs under a small
//! shell watchdog that kills it when our end of its stdin closes.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard, OnceLock},
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_acm::config::Credentials;

/// The account moto uses by default.
pub(crate) const ACCOUNT: &str = "123456789012";

pub(crate) struct Emulator {
    pub(crate) endpoint: String,
    port: u16,
    _watchdog: Child,
}

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("CERTVAULT_MOTO") {
        return PathBuf::from(p);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let p = root.join(".venv").join("bin").join("moto_server");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh, which installs the pinned ACM emulator (moto) into .venv",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Sends a bodiless HTTP request to the emulator; returns the status code.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP answer: {text}")))
}

impl Emulator {
    fn start() -> Emulator {
        Emulator::start_with_validation_wait(0)
    }

    /// An emulator of its own (not the shared one) that issues a requested certificate
    /// `seconds` after the request, as ACM does once the validation records are seen.
    pub(crate) fn start_with_validation_wait(seconds: u32) -> Emulator {
        let port = free_port();
        let bin = moto_server();
        // `read` returns when the test process (holding stdin's write end) exits.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; read _ignored; kill $pid 2>/dev/null; wait $pid"#)
            .arg(&bin)
            .arg(port.to_string())
            .env("MOTO_ACM_VALIDATION_WAIT", seconds.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the ACM emulator");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(200) = http(port, "POST", "/moto-api/reset") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ACM emulator did not start on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Emulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _watchdog: watchdog,
        }
    }

    /// Runs a Python script with boto3 against the emulator (us-east-1, dummy credentials,
    /// `import boto3, sys, json` done, `args` as sys.argv[1..]); what it printed.
    pub(crate) fn boto3(&self, env: &crate::common::Env, script: &str, args: &[&str]) -> String {
        let python = moto_server().with_file_name("python");
        let out = Command::new(python)
            .arg("-c")
            .arg(format!("import boto3, sys, json\n{script}"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", env.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                env.path("no-aws-credentials"),
            )
            .output()
            .expect("run boto3");
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Clears every region and account.
    pub(crate) fn reset(&self) {
        let status = http(self.port, "POST", "/moto-api/reset").expect("reset the emulator");
        assert_eq!(status, 200, "emulator reset");
    }

    /// SDK configuration for a region, with dummy credentials, pointing at the emulator.
    pub(crate) async fn sdk(&self, region: &str) -> SdkConfig {
        self.sdk_with(region, "testing").await
    }

    /// Same, with a chosen access key id.
    pub(crate) async fn sdk_with(&self, region: &str, access_key: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(
                access_key,
                "testing",
                None,
                None,
                "certvault-tests",
            ))
            .load()
            .await
    }

    /// Environment for the certvault binary: the emulator, dummy credentials, no AWS
    /// config files, no instance metadata lookups.
    fn vars(&self, scratch: &std::path::Path) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone().into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", scratch.join("no-aws-config").into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                scratch.join("no-aws-credentials").into(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Points a certvault command at the emulator.
    pub(crate) fn env(&self, cmd: &mut assert_cmd::Command, scratch: &std::path::Path) {
        cmd.env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        for (k, v) in self.vars(scratch) {
            cmd.env(k, v);
        }
    }

    /// Points a certvault command at `endpoint` (a proxy in front of the emulator).
    pub(crate) fn env_via(
        &self,
        cmd: &mut assert_cmd::Command,
        scratch: &std::path::Path,
        endpoint: &str,
    ) {
        self.env(cmd, scratch);
        cmd.env("AWS_ENDPOINT_URL", endpoint);
    }

    /// Same, for a process the test spawns and signals itself.
    pub(crate) fn env_std(&self, cmd: &mut std::process::Command, scratch: &std::path::Path) {
        cmd.env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        for (k, v) in self.vars(scratch) {
            cmd.env(k, v);
        }
    }
}

/// The emulator, reset, held for the duration of one test.
pub(crate) fn emulator() -> MutexGuard<'static, Emulator> {
    static EMU: OnceLock<Mutex<Emulator>> = OnceLock::new();
    let guard = EMU
        .get_or_init(|| Mutex::new(Emulator::start()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.reset();
    guard
}

/// A current-thread runtime for seeding through the SDK.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
