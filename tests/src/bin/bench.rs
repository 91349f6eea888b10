//! `certvault-bench`: times certvault's hot paths through the release binary, as an operator
//! would run them, and prints a markdown table of what was measured against the targets.
//!
//! ```text
//! certvault-bench --certvault PATH [--quick] [--keep DIR]
//! ```
//!
//! It generates its own CA and leaf certificates (ECDSA P-256, with rcgen), so it needs no
//! fixtures and no network. The vault passphrase goes to certvault through
//! `$CERTVAULT_PASSPHRASE` only, never through argv. Progress goes to stderr, the table to
//! stdout. The exit code is 0 once everything was measured, whether or not the targets were
//! met; it is 1 when a step fails (a command exits with an unexpected code, a count is wrong).

use std::{
    ffi::OsString,
    fs,
    io::Write as _,
    ops::Range,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::OffsetDateTime;

/// The vault passphrase of every benchmark vault. Not a secret: the vaults are throwaway.
const PASSPHRASE: &str = "certvault-bench throwaway passphrase";
/// The only way the passphrase reaches certvault.
const PASSPHRASE_ENV: &str = "CERTVAULT_PASSPHRASE";
/// Variables that would change what certvault does if they leaked in from the caller.
const CLEARED_ENV: &[&str] = &[
    "CERTVAULT_PATH",
    "CERTVAULT_OUTPUT",
    "CERTVAULT_NEW_PASSPHRASE",
    "CERTVAULT_P12_PASSWORD",
    "CERTVAULT_KEY_PASSWORD",
];

/// The large vault is built in this many `import` invocations, to keep argv reasonable.
const BATCHES: usize = 10;
/// How many times the `list` command is timed.
const LIST_RUNS: usize = 10;
/// How many times `Vault::unlock` is timed.
const UNLOCK_RUNS: usize = 5;
/// The `--expiring-within` window, in days.
const EXPIRING_DAYS: u64 = 30;
/// Leaf certificates expire between 1 and this many days from now.
const MAX_LIFETIME_DAYS: u64 = 400;
/// How often the generators report progress.
const PROGRESS_EVERY: usize = 10_000;

const IMPORT_TARGET: Duration = Duration::from_secs(10);
const LIST_TARGET: Duration = Duration::from_millis(100);

const USAGE: &str = "usage: certvault-bench --certvault PATH [--quick] [--keep DIR]

  --certvault PATH  the certvault binary to measure (build it with --release)
  --quick           1,000 and 10,000 certificates instead of 10,000 and 100,000
  --keep DIR        work in DIR (made if missing, must be empty) and leave it there;
                    default: a temporary directory, removed at the end";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certvault-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let started = Instant::now();
    let Some(opts) = parse_args(std::env::args_os().skip(1))? else {
        eprintln!("{USAGE}");
        return Ok(());
    };
    let work = WorkDir::new(opts.keep.as_deref())?;
    progress(&format!("working in {}", work.path().display()));
    let report = Bench::new(&opts, work.path())?.run()?;
    print_table(&report)?;
    if let WorkDir::Kept(dir) = &work {
        progress(&format!("kept the work directory {}", dir.display()));
    }
    progress(&format!("done in {}", duration(started.elapsed())));
    Ok(())
}

fn progress(line: &str) {
    eprintln!("[bench] {line}");
}

// ---------------------------------------------------------------------------------------------
// Command line and work directory

/// The parsed command line.
#[derive(Debug)]
struct Options {
    certvault: PathBuf,
    quick: bool,
    keep: Option<PathBuf>,
}

/// Parses the arguments; `None` means help was asked for.
fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Option<Options>> {
    let mut certvault = None;
    let mut quick = false;
    let mut keep = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--certvault") => certvault = Some(flag_value(&mut args, "--certvault")?),
            Some("--keep") => keep = Some(flag_value(&mut args, "--keep")?),
            Some("--quick") => quick = true,
            Some("-h" | "--help") => return Ok(None),
            _ => bail!("unexpected argument {}\n\n{USAGE}", arg.to_string_lossy()),
        }
    }
    let certvault = certvault.ok_or_else(|| anyhow!("--certvault PATH is required\n\n{USAGE}"))?;
    // Absolute, because imports run with the certificates' folder as their working directory.
    let certvault = fs::canonicalize(&certvault)
        .with_context(|| format!("cannot find the certvault binary {}", certvault.display()))?;
    Ok(Some(Options {
        certvault,
        quick,
        keep,
    }))
}

fn flag_value(args: &mut impl Iterator<Item = OsString>, flag: &str) -> Result<PathBuf> {
    args.next()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("{flag} needs a value\n\n{USAGE}"))
}

/// Where the certificates and vaults go: a temporary directory, or one the caller keeps.
enum WorkDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn new(keep: Option<&Path>) -> Result<WorkDir> {
        let Some(dir) = keep else {
            let temp = tempfile::Builder::new()
                .prefix("certvault-bench-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            return Ok(WorkDir::Temp(temp));
        };
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut entries =
            fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        ensure!(
            entries.next().is_none(),
            "{} is not empty: --keep needs a new or empty directory",
            dir.display()
        );
        let dir =
            fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
        Ok(WorkDir::Kept(dir))
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(t) => t.path(),
            WorkDir::Kept(p) => p,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

/// What was measured.
struct Report {
    quick: bool,
    import_count: usize,
    big_count: usize,
    threads: usize,
    init: Duration,
    generate: Duration,
    import: Timing,
    big_import: Vec<Duration>,
    list: Vec<Timing>,
    list_json: Timing,
    matched: usize,
    expected_matches: usize,
    unlock: Vec<Duration>,
    /// `certvault verify` over the big vault (every row's MAC and the audit chain).
    verify: Timing,
    vault_bytes: u64,
    load_before: Option<String>,
    load_after: Option<String>,
}

/// One benchmark run: its sizes, its files and the binary under test.
struct Bench<'a> {
    certvault: &'a Path,
    /// A smoke run: a tenth of the sizes.
    quick: bool,
    /// Entries in the vault that one `import` fills (also the size of each batch of the big one).
    import_count: usize,
    /// Entries in the vault that `list` reads.
    big_count: usize,
    certs_dir: PathBuf,
    small_vault: PathBuf,
    big_vault: PathBuf,
    /// Where `list --output json` writes.
    list_json: PathBuf,
    /// The moment every certificate's validity is counted from (whole seconds).
    now: OffsetDateTime,
}

impl<'a> Bench<'a> {
    fn new(opts: &'a Options, work: &Path) -> Result<Bench<'a>> {
        let (import_count, big_count) = if opts.quick {
            (1_000, 10_000)
        } else {
            (10_000, 100_000)
        };
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .context("cannot truncate the current time to seconds")?;
        Ok(Bench {
            certvault: &opts.certvault,
            quick: opts.quick,
            import_count,
            big_count,
            certs_dir: work.join("certs"),
            small_vault: work.join("import.vault"),
            big_vault: work.join("list.vault"),
            list_json: work.join("list.json"),
            now,
        })
    }

    fn run(&self) -> Result<Report> {
        let load_before = load_average();
        let threads = generator_threads();
        progress(&format!(
            "generating {} certificates and keys on {threads} thread(s)",
            thousands(self.big_count)
        ));
        let generate = measure(|| self.generate(threads))?;
        progress(&format!("generated in {}", duration(generate)));

        let init = self.init(&self.small_vault)?;
        progress(&format!("init took {}", duration(init)));
        let import = self.import(&self.small_vault, 0..self.import_count)?;
        progress(&format!(
            "imported {} in {}",
            thousands(self.import_count),
            duration(import.wall)
        ));
        check_entries(&self.small_vault, self.import_count)?;

        let big_import = self.build_big_vault()?;
        let list = self.time_list()?;
        let (list_json, matched) = self.time_list_json()?;
        let unlock = self.time_unlock()?;
        let verify = self.time_verify()?;
        let vault_bytes = vault_size(&self.big_vault)?;
        Ok(Report {
            quick: self.quick,
            import_count: self.import_count,
            big_count: self.big_count,
            threads,
            init,
            generate,
            import,
            big_import,
            list,
            list_json,
            matched,
            expected_matches: self.expected_matches(),
            unlock,
            verify,
            vault_bytes,
            load_before,
            load_after: load_average(),
        })
    }

    /// A certvault command on `vault`, with the passphrase in the environment only.
    fn certvault(&self, vault: &Path) -> Command {
        let mut cmd = Command::new(self.certvault);
        cmd.arg("--vault")
            .arg(vault)
            .env(PASSPHRASE_ENV, PASSPHRASE)
            .stdin(Stdio::null());
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    fn init(&self, vault: &Path) -> Result<Duration> {
        let mut cmd = self.certvault(vault);
        cmd.arg("init").stdout(Stdio::null());
        run_timed(&mut cmd, "certvault init", &[0]).map(|(t, _)| t.wall)
    }

    /// Imports certificates `range` into `vault` in one invocation.
    fn import(&self, vault: &Path, range: Range<usize>) -> Result<Timing> {
        let mut cmd = self.certvault(vault);
        // Relative file names, run from the certificates' folder: a shorter argv.
        cmd.current_dir(&self.certs_dir)
            .arg("import")
            .stdout(Stdio::null());
        cmd.args(range.map(cert_file_name));
        run_timed(&mut cmd, "certvault import", &[0]).map(|(t, _)| t)
    }

    fn build_big_vault(&self) -> Result<Vec<Duration>> {
        progress(&format!(
            "building a vault of {} entries in {BATCHES} imports",
            thousands(self.big_count)
        ));
        self.init(&self.big_vault)?;
        let batch = self.big_count.div_ceil(BATCHES);
        let mut times = Vec::with_capacity(BATCHES);
        for start in (0..self.big_count).step_by(batch) {
            let range = start..(start + batch).min(self.big_count);
            let elapsed = self.import(&self.big_vault, range.clone())?.wall;
            progress(&format!(
                "  imported {}..{} in {}",
                range.start,
                range.end,
                duration(elapsed)
            ));
            times.push(elapsed);
        }
        check_entries(&self.big_vault, self.big_count)?;
        Ok(times)
    }

    /// The `list --expiring-within` command on the big vault; exit 3 means "some matched".
    fn list_command(&self) -> Command {
        let mut cmd = self.certvault(&self.big_vault);
        cmd.args(["list", "--expiring-within", &format!("{EXPIRING_DAYS}d")]);
        cmd
    }

    fn time_list(&self) -> Result<Vec<Timing>> {
        progress(&format!(
            "timing list --expiring-within {EXPIRING_DAYS}d, {LIST_RUNS} runs"
        ));
        let mut times = Vec::with_capacity(LIST_RUNS);
        for _ in 0..LIST_RUNS {
            let mut cmd = self.list_command();
            cmd.stdout(Stdio::null());
            let (timing, code) = run_timed(&mut cmd, "certvault list", &[0, 3])?;
            ensure!(
                code == 3,
                "certvault list exited {code}, expected 3: some certificates expire within {EXPIRING_DAYS} days"
            );
            times.push(timing);
        }
        Ok(times)
    }

    /// Times `list --output json` once, into a file, and counts the entries it lists.
    fn time_list_json(&self) -> Result<(Timing, usize)> {
        progress("timing list --output json, 1 run");
        let out_path = &self.list_json;
        let out = fs::File::create(out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        let mut cmd = self.list_command();
        cmd.args(["--output", "json"]).stdout(out);
        let (timing, code) = run_timed(&mut cmd, "certvault list --output json", &[0, 3])?;
        let text = fs::read_to_string(out_path)
            .with_context(|| format!("cannot read {}", out_path.display()))?;
        let entries: Vec<serde_json::Value> = serde_json::from_str(&text)
            .context("certvault list --output json did not print a JSON array")?;
        ensure!(
            (code == 3) != entries.is_empty(),
            "certvault list exited {code} having listed {} entries",
            entries.len()
        );
        let expected = self.expected_matches();
        if entries.len() != expected {
            progress(&format!(
                "WARNING: list matched {} entries; {expected} expire within {EXPIRING_DAYS} days",
                entries.len()
            ));
        }
        Ok((timing, entries.len()))
    }

    /// Times `certvault verify` on the big vault once (unlock included).
    fn time_verify(&self) -> Result<Timing> {
        progress("timing verify over the big vault, 1 run");
        let mut cmd = self.certvault(&self.big_vault);
        cmd.arg("verify").stdout(Stdio::null());
        run_timed(&mut cmd, "certvault verify", &[0]).map(|(t, _)| t)
    }

    /// Times `Vault::unlock` alone (Argon2id with the vault's parameters).
    fn time_unlock(&self) -> Result<Vec<Duration>> {
        progress(&format!("timing unlock, {UNLOCK_RUNS} runs"));
        let mut times = Vec::with_capacity(UNLOCK_RUNS);
        for _ in 0..UNLOCK_RUNS {
            let mut v = vault::Vault::open(&self.small_vault).context("cannot open the vault")?;
            let pass = vault::Passphrase::new(PASSPHRASE.into());
            times.push(measure(|| {
                v.unlock(&pass).context("cannot unlock the vault")
            })?);
        }
        Ok(times)
    }

    /// How many of the big vault's certificates expire within the window.
    fn expected_matches(&self) -> usize {
        (0..self.big_count)
            .filter(|&i| lifetime_days(i) <= EXPIRING_DAYS)
            .count()
    }
}

/// Checks, through the library, that `vault` holds `expected` entries, each with its key.
fn check_entries(vault: &Path, expected: usize) -> Result<()> {
    let v =
        vault::Vault::open(vault).with_context(|| format!("cannot open {}", vault.display()))?;
    let entries = v
        .list(&vault::entries::ListFilter::default())
        .with_context(|| format!("cannot list {}", vault.display()))?;
    ensure!(
        entries.len() == expected,
        "{} holds {} entries, expected {expected}",
        vault.display(),
        entries.len()
    );
    let keyless = entries.iter().filter(|e| !e.has_private_key).count();
    ensure!(
        keyless == 0,
        "{} has {keyless} entries without their private key",
        vault.display()
    );
    Ok(())
}

/// How long a command took.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// From spawn to exit.
    wall: Duration,
    /// User + system CPU time, to 10 ms, where the platform tells (Linux): on a busy machine
    /// wall time includes waiting for a core, CPU time does not.
    cpu: Option<Duration>,
}

/// Runs `cmd` to completion and returns how long it took and its exit code, which must be
/// one of `ok`. Its stderr is kept for the error message.
fn run_timed(cmd: &mut Command, what: &str, ok: &[i32]) -> Result<(Timing, i32)> {
    cmd.stderr(Stdio::piped());
    let cpu_before = children_cpu();
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let wall = start.elapsed();
    let cpu = children_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let code = out
        .status
        .code()
        .ok_or_else(|| anyhow!("{what} was killed ({})", out.status))?;
    if !ok.contains(&code) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} exited {code}:\n{}", tail(&stderr, 20));
    }
    Ok((Timing { wall, cpu }, code))
}

/// CPU time (user + system) used so far by this process's finished children, from
/// `/proc/self/stat`; `None` where there is no such file (not Linux).
fn children_cpu() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // proc(5) fields 16 and 17, cutime and cstime, in USER_HZ: 100 a second on Linux.
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(16)? + ticks(17)?) * 10))
}

/// The load average over the last minute, where the platform tells (Linux).
fn load_average() -> Option<String> {
    let loadavg = fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next().map(str::to_owned)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Times `f`, which must succeed.
fn measure<T>(f: impl FnOnce() -> Result<T>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// The vault file's size, with its write-ahead log if one was left.
fn vault_size(vault: &Path) -> Result<u64> {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut name = vault.as_os_str().to_owned();
        name.push(suffix);
        match fs::metadata(&name) {
            Ok(m) => total += m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot stat {}", Path::new(&name).display()));
            }
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// Leaf `i`'s host name, its SAN and common name.
fn host_name(i: usize) -> String {
    format!("host-{i}.bench.example")
}

fn cert_file_name(i: usize) -> String {
    format!("host-{i}.pem")
}

/// Leaf `i` expires this many days after `now`: 1 to 400, evenly spread over every run of 400
/// consecutive leaves, so each import batch has its share of soon-expiring certificates.
fn lifetime_days(i: usize) -> u64 {
    // usize always fits in u64 on the targets Rust supports.
    (i as u64) % MAX_LIFETIME_DAYS + 1
}

/// The cores this process may use (2 if that cannot be told).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

fn generator_threads() -> usize {
    cores().min(8)
}

impl Bench<'_> {
    /// Writes one CA's leaves `0..big_count`, each a PEM file with certificate and key.
    fn generate(&self, threads: usize) -> Result<()> {
        fs::create_dir_all(&self.certs_dir)
            .with_context(|| format!("cannot create {}", self.certs_dir.display()))?;
        let issuer = self.make_ca()?;
        let done = AtomicUsize::new(0);
        let chunk = self.big_count.div_ceil(threads);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.big_count)
                .step_by(chunk)
                .map(|start| {
                    let range = start..(start + chunk).min(self.big_count);
                    let (issuer, done) = (&issuer, &done);
                    s.spawn(move || self.write_leaves(range, issuer, done))
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| anyhow!("a generator thread panicked"))?
            })
        })
    }

    /// The CA: self-signed, its certificate written as `ca.pem` for reference.
    fn make_ca(&self) -> Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut params =
            CertificateParams::new(Vec::new()).context("cannot make the CA parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "certvault bench CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = self.now - time::Duration::days(1);
        params.not_after = self.now + time::Duration::days(2 * MAX_LIFETIME_DAYS as i64);
        let cert = params
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        let path = self.certs_dir.join("ca.pem");
        fs::write(&path, cert.pem()).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Issuer::new(params, key))
    }

    fn write_leaves(
        &self,
        range: Range<usize>,
        issuer: &Issuer<'_, KeyPair>,
        done: &AtomicUsize,
    ) -> Result<()> {
        for i in range {
            let pem = self.leaf_pem(i, issuer)?;
            let path = self.certs_dir.join(cert_file_name(i));
            fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(PROGRESS_EVERY) {
                progress(&format!("  generated {}", thousands(n)));
            }
        }
        Ok(())
    }

    /// Leaf `i`: a fresh P-256 key, a certificate for `host-i.bench.example` signed by the
    /// CA, as PEM: the certificate, then the key in PKCS#8.
    fn leaf_pem(&self, i: usize, issuer: &Issuer<'_, KeyPair>) -> Result<String> {
        let name = host_name(i);
        let key =
            KeyPair::generate().with_context(|| format!("cannot generate the key of {name}"))?;
        let mut params = CertificateParams::new(vec![name.clone()])
            .with_context(|| format!("bad host name {name}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        params.not_before = self.now - time::Duration::days(1);
        // At most 400: the cast is lossless.
        params.not_after = self.now + time::Duration::days(lifetime_days(i) as i64);
        let cert = params
            .signed_by(&key, issuer)
            .with_context(|| format!("cannot sign the certificate of {name}"))?;
        let mut pem = cert.pem();
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&key.serialize_pem());
        Ok(pem)
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// One row of the table.
struct Row {
    operation: String,
    measured: String,
    /// The target, and the time judged against it.
    target: Option<(Duration, Duration)>,
}

impl Row {
    fn info(operation: String, measured: String) -> Row {
        Row {
            operation,
            measured,
            target: None,
        }
    }

    fn judged(operation: String, measured: String, target: Duration, judged: Duration) -> Row {
        Row {
            operation,
            measured,
            target: Some((target, judged)),
        }
    }

    /// The target and met? cells. The targets are for the full sizes: a quick run only shows
    /// whether they are in reach.
    fn verdict(&self, quick: bool) -> (String, &'static str) {
        match self.target {
            None => ("—".to_owned(), "—"),
            Some((target, _)) if quick => (format!("< {} (full run)", round(target)), "—"),
            Some((target, judged)) => (
                format!("< {}", round(target)),
                if judged < target { "yes" } else { "**NO**" },
            ),
        }
    }
}

fn print_table(r: &Report) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "| operation | measured | target | met? |")?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    for row in table_rows(r) {
        let (target, met) = row.verdict(r.quick);
        writeln!(
            out,
            "| {} | {} | {target} | {met} |",
            row.operation, row.measured
        )?;
    }
    writeln!(
        out,
        "\nTimes are wall clock; CPU is the process's user + system time (10 ms ticks). \
         Load average (1 min): {} at the start, {} at the end, on {} core(s).",
        r.load_before.as_deref().unwrap_or("?"),
        r.load_after.as_deref().unwrap_or("?"),
        cores()
    )?;
    out.flush().context("cannot write the table")
}

fn table_rows(r: &Report) -> Vec<Row> {
    let (big, small) = (thousands(r.big_count), thousands(r.import_count));
    let unlock = median(&r.unlock);
    vec![
        Row::info(
            "`init` (Argon2id 64 MiB, 3 passes)".into(),
            duration(r.init),
        ),
        Row::info(
            format!(
                "generate {big} P-256 keys + certificates ({} threads)",
                r.threads
            ),
            duration(r.generate),
        ),
        Row::judged(
            format!("`import` of {small} PEM files, one invocation"),
            with_cpu(r.import),
            IMPORT_TARGET,
            r.import.wall,
        ),
        big_import_row(r, &big, &small),
        list_row(r, &big),
        Row::judged(
            format!("`list --expiring-within {EXPIRING_DAYS}d --output json` over {big}, 1 run"),
            with_cpu(r.list_json),
            LIST_TARGET,
            r.list_json.wall,
        ),
        Row::info(
            format!("`Vault::unlock` (library), median of {}", r.unlock.len()),
            format!("{} (min {})", duration(unlock), duration(min(&r.unlock))),
        ),
        Row::info(
            format!(
                "`verify` over {big} entries (every row's MAC, the audit chain; unlock included)"
            ),
            with_cpu(r.verify),
        ),
        Row::info(
            format!("vault file size, {big} entries"),
            format!(
                "{:.1} MiB ({} bytes/entry)",
                r.vault_bytes as f64 / (1024.0 * 1024.0),
                r.vault_bytes / (r.big_count.max(1) as u64)
            ),
        ),
    ]
}

fn big_import_row(r: &Report, big: &str, small: &str) -> Row {
    let total: Duration = r.big_import.iter().sum();
    let (first, last) = (r.big_import.first(), r.big_import.last());
    Row::info(
        format!(
            "build the {big}-entry vault: {} × `import` of {small}",
            r.big_import.len()
        ),
        format!(
            "{} total (first {}, last {})",
            duration(total),
            first.map_or_else(|| "?".into(), |d| duration(*d)),
            last.map_or_else(|| "?".into(), |d| duration(*d)),
        ),
    )
}

fn list_row(r: &Report, big: &str) -> Row {
    let walls: Vec<Duration> = r.list.iter().map(|t| t.wall).collect();
    let median = median(&walls);
    // CPU ticks are coarse: the mean over all runs says more than any one run.
    let cpu: Option<Duration> = r.list.iter().map(|t| t.cpu).sum();
    let runs = u32::try_from(r.list.len()).unwrap_or(u32::MAX).max(1);
    let cpu = cpu.map_or_else(String::new, |c| format!(", CPU {}/run", duration(c / runs)));
    let matched = if r.matched == r.expected_matches {
        format!("{} matched", thousands(r.matched))
    } else {
        format!(
            "{} matched, {} expected",
            thousands(r.matched),
            thousands(r.expected_matches)
        )
    };
    Row::judged(
        format!(
            "`list --expiring-within {EXPIRING_DAYS}d` over {big} entries, {} runs",
            r.list.len()
        ),
        format!(
            "median {}, min {}{cpu}; {matched}",
            duration(median),
            duration(min(&walls))
        ),
        LIST_TARGET,
        median,
    )
}

/// `995.1 ms (CPU 980.0 ms)`.
fn with_cpu(t: Timing) -> String {
    match t.cpu {
        Some(cpu) => format!("{} (CPU {})", duration(t.wall), duration(cpu)),
        None => duration(t.wall),
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn min(times: &[Duration]) -> Duration {
    times.iter().min().copied().unwrap_or_default()
}

/// `1.23 s`, or `45.6 ms` under a second.
fn duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

/// A round target: `10 s`, `100 ms`.
fn round(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `100,000`.
fn thousands(n: usize) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{},{:03}", thousands(n / 1000), n % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(1_000_001), "1,000,001");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(duration(Duration::from_micros(45_600)), "45.6 ms");
        assert_eq!(round(Duration::from_secs(10)), "10 s");
        assert_eq!(round(Duration::from_millis(100)), "100 ms");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(&[ms(4), ms(1), ms(3), ms(2)]),
            Duration::from_micros(2500)
        );
        assert_eq!(min(&[ms(4), ms(1), ms(3)]), ms(1));
    }

    #[test]
    fn lifetimes_cover_one_to_four_hundred_days_evenly() {
        let days: Vec<u64> = (0..800).map(lifetime_days).collect();
        assert_eq!(days.iter().min(), Some(&1));
        assert_eq!(days.iter().max(), Some(&MAX_LIFETIME_DAYS));
        assert_eq!(days.iter().filter(|&&d| d <= EXPIRING_DAYS).count(), 60);
    }

    #[test]
    fn arguments() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
        assert!(parse_args(args(&["--help"])).unwrap().is_none());
        assert!(
            parse_args(args(&["--quick"])).is_err(),
            "--certvault is required"
        );
        assert!(parse_args(args(&["--certvault"])).is_err());
        assert!(parse_args(args(&["--bogus"])).is_err());
    }
}
