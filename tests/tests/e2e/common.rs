//! Test helpers: the binary, a temporary vault, fixtures, openssl.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
    sync::OnceLock,
    time::SystemTime,
};

use assert_cmd::Command;
use tempfile::TempDir;

pub(crate) const PASS: &str = "correct horse battery staple";

/// The `certvault` binary next to this test binary (`target/<profile>/certvault`), or
/// `$CERTVAULT_BIN`. Refuses to test a binary older than its sources.
pub(crate) fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CERTVAULT_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
        let bin = profile_dir.join("certvault");
        let built = fs::metadata(&bin).and_then(|m| m.modified()).unwrap_or_else(|_| {
            panic!(
                "{} does not exist: run `cargo build -p certvault` first (scripts/test.sh does)",
                bin.display()
            )
        });
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let newest = ["cli/src", "vault/src", "agent/src"]
            .iter()
            .map(|d| newest_mtime(&root.join(d)))
            .max()
            .flatten();
        if let Some(src) = newest {
            assert!(
                built >= src,
                "{} is older than the sources: run `cargo build -p certvault` (scripts/test.sh does)",
                bin.display()
            );
        }
        bin
    })
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        // Unit tests and the in-process fake are not part of the binary.
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else if name.ends_with("_tests.rs") || name == "fake.rs" {
            None
        } else {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

/// A committed fixture file.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A scratch directory with a vault path in it.
pub(crate) struct Env {
    pub(crate) dir: TempDir,
    pub(crate) vault: PathBuf,
}

impl Env {
    /// A scratch directory; the vault is not created.
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault").join("vault.db");
        Env { dir, vault }
    }

    /// A scratch directory with an initialised vault.
    pub(crate) fn init() -> Env {
        let env = Env::new();
        env.cmd().arg("init").assert().success();
        env
    }

    /// `certvault --vault <vault>` with the passphrase in the environment and nothing of
    /// the caller's environment leaking in.
    pub(crate) fn cmd(&self) -> Command {
        let mut c = self.bare();
        c.arg("--vault").arg(&self.vault);
        c
    }

    /// `certvault --vault <vault>` as a plain process, for tests that spawn and signal it.
    pub(crate) fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        for var in [
            "CERTVAULT_PATH",
            "CERTVAULT_OUTPUT",
            "CERTVAULT_PASSPHRASE",
            "CERTVAULT_NEW_PASSPHRASE",
            "CERTVAULT_EXPORT_PASSPHRASE",
        ] {
            c.env_remove(var);
        }
        c.env("NO_COLOR", "1")
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .current_dir(self.dir.path())
            .arg("--vault")
            .arg(&self.vault);
        c
    }

    /// `certvault` without `--vault`, with HOME and XDG dirs inside the scratch directory.
    pub(crate) fn bare(&self) -> Command {
        let mut c = Command::new(bin());
        for var in [
            "CERTVAULT_PATH",
            "CERTVAULT_OUTPUT",
            "CERTVAULT_NEW_PASSPHRASE",
            "CERTVAULT_EXPORT_PASSPHRASE",
            "CERTVAULT_P12_PASSWORD",
            "CERTVAULT_KEY_PASSWORD",
        ] {
            c.env_remove(var);
        }
        c.env("CERTVAULT_PASSPHRASE", PASS)
            .env("NO_COLOR", "1")
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .current_dir(self.dir.path())
            .timeout(std::time::Duration::from_secs(120));
        c
    }

    /// A path in the scratch directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the scratch directory.
    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).expect("write");
        p
    }

    /// The vault file's bytes.
    pub(crate) fn vault_bytes(&self) -> Vec<u8> {
        fs::read(&self.vault).expect("read vault")
    }

    /// Runs a command with `--output json` and parses its stdout.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .cmd()
            .args(["--output", "json"])
            .args(args)
            .output()
            .expect("run");
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(3),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// Imports files, asserting success.
    pub(crate) fn import(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) {
        let mut c = self.cmd();
        c.arg("import");
        for a in args {
            c.arg(a);
        }
        c.assert().success();
    }
}

/// Runs openssl with `args`, asserting success; returns its output.
pub(crate) fn openssl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = std::process::Command::new("openssl");
    for a in args {
        c.arg(a);
    }
    let out = c.output().expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {:?} failed: {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stderr as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed P-256 certificate+key PEM file valid for `days`.
pub(crate) fn self_signed_file(env: &Env, file: &str, cn: &str, days: i64) -> PathBuf {
    let (cert, key) = certvault_tests::self_signed(cn, days).expect("rcgen");
    env.write(file, format!("{cert}{key}"))
}
