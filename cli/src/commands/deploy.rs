//! `certvault deploy`, `undeploy`, `status` and `sync`.

use agent::acm::request::target_account;
use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use vault::text::count;

use super::Ctx;
use crate::{
    Reported, Status, UsageError,
    args::{AgentArgs, DeployArgs, LogFormat, StatusArgs, SyncArgs, UndeployArgs},
    output::{Color, Printer, cell, date, note},
};

pub(crate) fn deploy(ctx: &Ctx, args: DeployArgs) -> Result<Status> {
    if args.entries.is_empty() && !args.all && args.tags.is_empty() {
        return Err(
            UsageError("name the entries to deploy, or use --all or --tag k=v".into()).into(),
        );
    }
    let config = ctx.config()?;
    let targets = config.select(
        args.target.as_deref().or(Some("default")),
        Some(&args.regions),
    )?;
    let tags = super::tags(&args.tags)?;
    let mut v = ctx.unlock_writer("deploy")?;
    // Check every entry first: one unknown name, or one named entry ACM cannot take, and
    // nothing is recorded or sent. Entries picked by --all or --tag that ACM cannot take
    // are skipped with a note.
    let choice = agent::reconcile::DeployChoice {
        named: &args.entries,
        all: args.all,
        tags,
    };
    let chosen = agent::reconcile::deployable(&v, &choice, time::OffsetDateTime::now_utc())?;
    if !chosen.refused.is_empty() {
        let refused: Vec<String> = chosen
            .refused
            .iter()
            .map(|(name, why)| format!("  {name}: {why}"))
            .collect();
        bail!(
            "cannot deploy (nothing was recorded or sent to AWS):\n{}",
            refused.join("\n")
        );
    }
    for (name, why) in &chosen.skipped {
        note(&format!("skipping {name}: {why}"));
    }
    if chosen.keyless > 0 {
        note(&format!(
            "skipping {} without a private key (discovered or imported without one)",
            count(chosen.keyless, "entry", "entries")
        ));
    }
    let entries = chosen.entries;
    if entries.is_empty() {
        bail!("no entry to deploy: none matches, or none can be imported into ACM");
    }
    // Each target's credentials first: a deployment that could never reach AWS is not
    // recorded (it would stay failed, and every `status` after would say so).
    {
        let runtime = ctx.runtime()?;
        for t in &targets {
            if let Err(e) = runtime.block_on(target_account(&ctx.connector(), &config, t)) {
                return Err(no_account(ctx, &t.name, &e));
            }
        }
    }
    let mut only = BTreeSet::new();
    for (id, _) in &entries {
        for t in &targets {
            for region in &t.regions {
                only.insert(v.add_deployment(
                    id,
                    &t.name,
                    region,
                    args.replace_existing,
                    args.auto_redeploy,
                )?);
            }
        }
    }
    let opts = agent::reconcile::SyncOptions {
        only,
        push: true,
        lock_timeout: ctx.lock_timeout(),
        ..Default::default()
    };
    let report = run_pass(ctx, &mut v, &config, opts)?;
    finish(ctx, &report, false)
}

/// Why a target cannot be used, in words a newcomer can act on: where credentials come from
/// when none were found, else what AWS (or the network) said, in full.
fn no_account(ctx: &Ctx, target: &str, e: &agent::ApiError) -> anyhow::Error {
    let config_file = ctx
        .global
        .config
        .clone()
        .or_else(|| dirs::config_dir().map(|d| d.join("certvault").join("config.toml")))
        .map_or_else(
            || "the configuration file (--config)".to_owned(),
            |p| p.display().to_string(),
        );
    if e.kind == agent::ErrorKind::NoCredentials {
        anyhow::anyhow!(
            "no AWS credentials were found for target '{target}'; nothing was recorded or sent to AWS.\n\
             Give them the way every AWS tool reads them:\n  \
             - a profile: `aws configure` (or `aws sso login --profile NAME`), then AWS_PROFILE=NAME;\n  \
             - the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);\n  \
             - an instance or task role, on EC2, ECS or EKS;\n  \
             - or a [[targets]] entry with `profile` or `role_arn` in {config_file}.\n\
             What the AWS SDK said: {}",
            e.message
        )
    } else {
        anyhow::anyhow!("cannot use target '{target}': {e}; nothing was recorded or sent to ACM")
    }
}

/// Runs one pass; SIGINT or SIGTERM stops it between steps (calls in flight finish and
/// are recorded).
fn run_pass(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    opts: agent::reconcile::SyncOptions,
) -> Result<agent::reconcile::SyncReport> {
    let runtime = ctx.runtime()?;
    let report = runtime.block_on(async {
        let stop = opts.stop.clone();
        let signals = shutdown_signal()?;
        let watcher = tokio::spawn(async move {
            signals.await;
            note("stopping: finishing the calls in flight and recording them");
            stop.cancel();
        });
        let report = agent::reconcile::sync(&ctx.connector(), v, config, &opts).await;
        watcher.abort();
        anyhow::Ok(report?)
    });
    // The runtime is the command's: it is shut down when the command ends (see `Ctx`).
    report
}

pub(crate) fn undeploy(ctx: &Ctx, args: UndeployArgs) -> Result<Status> {
    let config = ctx.config()?;
    let regions = args
        .regions
        .map(|r| agent::config::expand_regions(&r, &config.extra_regions))
        .transpose()?;
    let mut v = ctx.unlock_writer("undeploy")?;
    let req = agent::reconcile::UndeployRequest {
        entry: &args.entry,
        target: args.target.as_deref(),
        regions: regions.as_deref(),
        delete_from_acm: args.delete_from_acm,
        wait: std::time::Duration::try_from(args.wait).unwrap_or_default(),
    };
    let mut printed: Result<()> = Ok(());
    let mut done = |step: agent::reconcile::UndeployStep<'_>| match step {
        agent::reconcile::UndeployStep::Deleted {
            deployment: d,
            arn,
            now: true,
        } => note(&format!("deleted {arn} from ACM ({})", d.region)),
        agent::reconcile::UndeployStep::Deleted {
            deployment: d, arn, ..
        } => note(&format!("{arn} was already gone from ACM ({})", d.region)),
        agent::reconcile::UndeployStep::Forgotten(d) => {
            if printed.is_ok() {
                printed = ctx.printer.line(&format!(
                    "{}: forgot the deployment to {}/{}{}",
                    d.name,
                    d.target,
                    d.region,
                    if args.delete_from_acm {
                        ""
                    } else {
                        " (ACM untouched; --delete-from-acm deletes it there)"
                    }
                ));
            }
        }
    };
    let undone = ctx.runtime()?.block_on(agent::reconcile::undeploy(
        &ctx.connector(),
        &mut v,
        &config,
        req,
        &mut done,
    ));
    match undone {
        // The library's own errors as they are, so their exit codes hold.
        Err(agent::reconcile::UndeployError::Config(e)) => return Err(e.into()),
        Err(agent::reconcile::UndeployError::Vault(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    printed?;
    Ok(Status::Ok)
}

pub(crate) fn status(ctx: &Ctx, args: StatusArgs) -> Result<Status> {
    let config = ctx.config()?;
    let regions = args
        .regions
        .map(|r| agent::config::expand_regions(&r, &config.extra_regions))
        .transpose()?;
    // Checking changes nothing: no passphrase needed.
    let v = ctx.open()?;
    let entry = args.name.as_deref().map(|n| v.resolve(n)).transpose()?;
    let only: BTreeSet<i64> = v
        .deployments()?
        .into_iter()
        .filter(|d| entry.as_ref().is_none_or(|(id, _)| *id == d.entry_id))
        .filter(|d| regions.as_ref().is_none_or(|r| r.contains(&d.region)))
        .map(|d| d.id)
        .collect();
    if only.is_empty() {
        note("no deployments match");
        if ctx.printer.json {
            ctx.printer
                .json(&Vec::<agent::reconcile::StatusRow>::new())?;
        }
        return Ok(Status::Ok);
    }
    let mut v = v;
    let opts = agent::reconcile::SyncOptions {
        dry_run: true,
        deep: args.deep,
        only,
        ..Default::default()
    };
    let report = ctx.runtime()?.block_on(agent::reconcile::sync(
        &ctx.connector(),
        &mut v,
        &config,
        &opts,
    ))?;
    if ctx.printer.json {
        ctx.printer.json(&report.deployments)?;
    } else {
        print_rows(&ctx.printer, &report, false)?;
    }
    if report.failures > 0 {
        return Err(Reported(format!(
            "{} could not be checked:\n{}",
            count(report.failures, "deployment", "deployments"),
            failure_reasons(&report)
        ))
        .into());
    }
    Ok(if report.all_in_sync() {
        Status::Ok
    } else {
        Status::Attention
    })
}

pub(crate) fn sync(ctx: &Ctx, args: SyncArgs) -> Result<Status> {
    let config = ctx.config()?;
    // A dry run changes nothing and opens no key: no passphrase needed, no lock taken.
    let mut v = if args.dry_run {
        ctx.open()?
    } else {
        ctx.unlock_writer("sync")?
    };
    let opts = agent::reconcile::SyncOptions {
        dry_run: args.dry_run,
        deep: args.deep,
        force: args.force,
        lock_timeout: ctx.lock_timeout(),
        expect_head: args.expect_head,
        ..Default::default()
    };
    let report = run_pass(ctx, &mut v, &config, opts)?;
    finish(ctx, &report, args.dry_run)
}

fn finish(ctx: &Ctx, report: &agent::reconcile::SyncReport, dry_run: bool) -> Result<Status> {
    if ctx.printer.json {
        ctx.printer.json(report)?;
    } else {
        print_rows(&ctx.printer, report, dry_run)?;
    }
    if let Some(why) = &report.halted {
        return Err(Reported(format!(
            "the pass ended early ({why}); what was done is recorded, the rest is done by the next pass"
        ))
        .into());
    }
    if report.failures > 0 {
        return Err(Reported(format!(
            "{}:\n{}",
            failed_of(
                report.failures,
                report.deployments.len(),
                ("deployment", "deployments"),
                "failed",
                if dry_run {
                    "the others are as shown"
                } else {
                    "the others were applied"
                },
            ),
            failure_reasons(report)
        ))
        .into());
    }
    let pending = dry_run && report.changes > 0;
    Ok(if pending || !report.all_in_sync() {
        Status::Attention
    } else {
        Status::Ok
    })
}

/// Each failed deployment with its whole reason (a table cuts it to the terminal), and what
/// to do: fix it and sync again, or forget the deployment.
fn failure_reasons(report: &agent::reconcile::SyncReport) -> String {
    let mut lines: Vec<String> = report
        .deployments
        .iter()
        .filter(|d| d.state == agent::reconcile::State::Failed)
        .map(|d| {
            format!(
                "{} ({}/{}): {}",
                d.name,
                d.target,
                d.region,
                d.detail.as_deref().unwrap_or("no reason recorded")
            )
        })
        .collect();
    if let Some(d) = report
        .deployments
        .iter()
        .find(|d| d.state == agent::reconcile::State::Failed)
    {
        lines.push(format!(
            "once fixed, `certvault sync` tries again; `certvault undeploy NAME --target T --regions R` forgets a deployment and leaves ACM as it is (here: `certvault undeploy {} --target {} --regions {}`)",
            vault::text::shell_word(&d.name),
            vault::text::shell_word(&d.target),
            d.region
        ));
    }
    lines.join("\n")
}

/// "1 deployment failed", "both deployments failed", "2 of 5 deployments failed; the others
/// were applied": the others are named only when there are some.
pub(crate) fn failed_of(
    failed: usize,
    total: usize,
    (one, many): (&str, &str),
    verb: &str,
    others: &str,
) -> String {
    if failed >= total {
        match total {
            1 => format!("the {one} {verb}"),
            2 => format!("both {many} {verb}"),
            _ => format!("all {} {verb}", count(total, one, many)),
        }
    } else {
        format!("{failed} of {} {verb}; {others}", count(total, one, many))
    }
}

fn print_rows(p: &Printer, report: &agent::reconcile::SyncReport, dry_run: bool) -> Result<()> {
    let mut t = p.table(&[
        "NAME",
        "TARGET",
        "REGION",
        "STATE",
        if dry_run { "WOULD" } else { "DID" },
        "ARN",
        "DETAIL",
    ]);
    for r in &report.deployments {
        let state = cell(r.state.as_str());
        let state = if r.state == agent::reconcile::State::InSync {
            state.fg(Color::Green)
        } else {
            state.fg(Color::Red)
        };
        t.add_row(vec![
            cell(&r.name),
            cell(&r.target),
            cell(&r.region),
            state,
            cell(r.action.as_deref().unwrap_or("-")),
            cell(r.arn.as_deref().unwrap_or("-")),
            cell(r.detail.as_deref().unwrap_or("")),
        ]);
    }
    t.keep(&[2, 3, 4]).shorten_middle(5);
    t.print()?;
    let not_in_sync = report
        .deployments
        .iter()
        .filter(|r| r.state != agent::reconcile::State::InSync)
        .count();
    p.line(&format!(
        "{}, {} not in sync, {} {}; {}{}{}",
        count(report.deployments.len(), "deployment", "deployments"),
        not_in_sync,
        count(report.changes, "change", "changes"),
        if dry_run { "planned" } else { "made" },
        count(report.api_calls.total, "API call", "API calls"),
        if report.api_calls.throttled > 0 {
            format!(", {} throttled", report.api_calls.throttled)
        } else {
            String::new()
        },
        report
            .deployments
            .iter()
            .filter_map(|r| r.last_synced)
            .max()
            .map(|t| format!("; last synced {}", date(t)))
            .unwrap_or_default()
    ))?;
    Ok(())
}

/// The agent's logs on stderr, as text or JSON (`CERTVAULT_LOG` filters them).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CERTVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws=warn,hyper=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // JSON escapes what it carries.
        LogFormat::Json => logs.json().init(),
        // Text: colour only on a terminal without NO_COLOR, and values from certificates or
        // AWS cannot drive the terminal a log is read on.
        LogFormat::Text => {
            use std::io::IsTerminal;
            let color = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            // The timestamp style of every command: RFC 3339, whole seconds, UTC.
            let timer = tracing_subscriber::fmt::time::UtcTime::new(vault::text::TIMESTAMP_FORMAT);
            logs.with_ansi(color)
                .with_timer(timer)
                .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                    |w, field, value| {
                        let text = crate::output::clean(&format!("{value:?}")).into_owned();
                        if field.name() == "message" {
                            write!(w, "{text}")
                        } else {
                            write!(w, "{}={text}", field.name())
                        }
                    },
                ))
                .init()
        }
    }
}

pub(crate) fn agent(ctx: &Ctx, args: AgentArgs) -> Result<Status> {
    let interval = std::time::Duration::try_from(args.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| UsageError("--interval must be positive".into()))?;
    init_logs(args.log_format);
    let config = ctx.config()?;
    let mut v = ctx.open()?;
    v.without_memory_map()?;
    // One thread does everything: it must not sit in SQLite's busy wait for long.
    v.set_busy_timeout(std::time::Duration::from_secs(2))?;
    crate::secrets::no_core_dumps()?;
    // The audit anchor is kept outside the vault, in the user's state directory: a copy of
    // the vault put back from a backup (or cut short) is behind it. Checked before the
    // unlock too: the unlock finishes a pending upgrade, which must not run on such a copy.
    let anchor_file = match args.anchor_file {
        Some(p) => p,
        None => dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .context("cannot tell where your state directory is: set $XDG_STATE_HOME, or give --anchor-file")?
            .join("certvault")
            .join(format!("anchor-{}", v.vault_id())),
    };
    if let Err(why) = agent::daemon::anchor_check(&v, &anchor_file) {
        anyhow::bail!(
            "the vault was rolled back behind the audit anchor this agent kept ({why}): it was not unlocked and nothing was done. Restore the vault, or remove {} to accept it as it is",
            anchor_file.display()
        );
    }
    let pass = unattended_passphrase(ctx)?;
    v.unlock(&pass)?;
    drop(pass);
    tracing::info!(anchor = %anchor_file.display(), "the audit anchor is kept outside the vault");
    let opts = agent::daemon::AgentOptions {
        interval,
        lock_timeout: ctx.lock_timeout(),
        anchor_file: Some(anchor_file),
    };
    let runtime = ctx.agent_runtime()?;
    let ran = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(agent::daemon::Metrics::default()));
        if let Some(addr) = args.metrics_addr {
            let bound = agent::daemon::serve_metrics(addr, metrics.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
            tracing::info!(%bound, "metrics at http://{bound}/metrics (and /healthz, /readyz)");
        }
        tracing::info!(interval_s = interval.as_secs(), vault = %v.path().display(), "agent started");
        agent::daemon::run(&ctx.connector(), &mut v, &config, opts, metrics, shutdown).await?;
        anyhow::Ok(())
    });
    // Calls abandoned at a stop may leave blocking work (name lookups): do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ran?;
    Ok(Status::Ok)
}

/// The passphrase for an unattended agent: `--passphrase-file`, a systemd credential
/// (`$CREDENTIALS_DIRECTORY/certvault-passphrase`), or `$CERTVAULT_PASSPHRASE`; never a prompt.
fn unattended_passphrase(ctx: &Ctx) -> Result<vault::Passphrase> {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| std::path::PathBuf::from(d).join("certvault-passphrase"))
        .filter(|p| p.exists());
    let file = ctx.global.passphrase_file.clone().or(credential);
    if file.is_none() && !crate::secrets::has_secret_var("CERTVAULT_PASSPHRASE") {
        bail!(
            "the agent runs unattended: give the passphrase with --passphrase-file, a systemd credential named certvault-passphrase, or $CERTVAULT_PASSPHRASE"
        );
    }
    crate::secrets::obtain(&crate::secrets::Source {
        what: "vault passphrase",
        file: file.as_deref(),
        flag: "--passphrase-file",
        env: "CERTVAULT_PASSPHRASE",
        confirm: false,
    })
}

/// Registers SIGTERM and SIGINT handlers now (so a signal during the first pass is not
/// fatal) and returns a future that resolves when either arrives.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
