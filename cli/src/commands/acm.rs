//! `certvault acm ...`: acting on certificates in ACM itself.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde_json::json;

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{
        AcmAction, AcmArgs, AcmDeleteArgs, AcmExportKeyArgs, AcmKeyArg, AcmRequestArgs,
        AcmRequestPrivateArgs, AcmRequestsArgs, ValidationArg,
    },
    output::{cell, note},
};

pub(crate) fn acm(ctx: &Ctx, args: AcmArgs) -> Result<Status> {
    match args.action {
        AcmAction::Request(a) => request(ctx, a),
        AcmAction::Requests(a) => requests(ctx, a),
        AcmAction::RequestPrivate(a) => request_private(ctx, a),
        AcmAction::Delete(a) => delete(ctx, a),
        AcmAction::ExportKey(a) => export_key(ctx, a),
        AcmAction::Renew(a) => super::acm_lifecycle::renew(ctx, a),
        AcmAction::Revoke(a) => super::acm_lifecycle::revoke(ctx, a),
        AcmAction::MigrateValidation(a) => super::rotate::migrate_validation(ctx, a),
    }
}

fn export_key(ctx: &Ctx, args: AcmExportKeyArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm export-key")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.region.as_deref(),
        args.target.as_deref(),
    )?;
    // The key joins the version holding the certificate discovery read: an ARN the vault
    // has no entry for is discovered first (never guessed into an entry by name).
    if chosen.entry.is_none() {
        bail!(
            "the vault has no entry for {}: run `certvault discover --regions {}` first, so that its certificate is in the vault; nothing was exported",
            chosen.arn,
            chosen.region
        );
    }
    // AWS charges each export: a key the vault holds already is not exported again. What
    // ACM holds at the ARN is what discovery last read there (a certificate ACM renewed
    // since is found by `discover` first).
    if let Some((_, entry_name)) = &chosen.entry
        && let Some(version) = held_key_version(&v, &chosen.arn)?
    {
        note(&format!(
            "{entry_name}: the vault holds the key of the certificate at {} already (version {version}); nothing was exported (AWS charges each export). If ACM renewed it since, run `certvault discover` first",
            chosen.arn
        ));
        return Ok(Status::Ok);
    }
    let what = match &chosen.seen {
        Some((domain, kind)) => format!("{} ({domain}, {kind})", chosen.arn),
        None => chosen.arn.clone(),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "exporting the key of {what} is charged by AWS (ExportCertificate); add --yes to confirm"
            ))
            .into());
        }
        note(&format!(
            "This exports the private key of {what} from ACM ({}, account {}); AWS charges for each export. The key is sealed in the vault at once.",
            chosen.region, chosen.account
        ));
        note("Type 'export' to confirm:");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "export" {
            bail!("not confirmed; nothing was exported");
        }
    }
    let target = config
        .select(
            Some(&chosen.target),
            Some(std::slice::from_ref(&chosen.region)),
        )?
        .remove(0);
    // Made in memory for this one export, never shown, wiped on drop.
    let passphrase = vault::Passphrase::random(64)?;
    let req = agent::ExportKeyRequest {
        target: &target,
        arn: &chosen.arn,
        account: chosen.recorded.then_some(chosen.account.as_str()),
        passphrase: &passphrase,
    };
    let (exported, _) =
        match ctx
            .runtime()?
            .block_on(agent::acm_export_key(&ctx.connector(), &config, req))
        {
            Ok(x) => x,
            Err(e) => bail!("cannot export the key of {}: {e}", chosen.arn),
        };
    let kind = chosen
        .seen
        .as_ref()
        .map_or("PRIVATE", |(_, k)| k.as_str())
        .to_owned();
    let name = match (&chosen.entry, &chosen.seen) {
        (Some((_, n)), _) => n.clone(),
        (None, Some((domain, _))) => domain.clone(),
        (None, None) => chosen
            .arn
            .rsplit('/')
            .next()
            .unwrap_or("exported")
            .to_owned(),
    };
    let outcome = v.record_exported_key(
        &chosen.arn,
        &kind,
        &name,
        &exported.pem.certificate,
        exported.pem.chain.as_deref(),
        exported.encrypted_key.expose_secret(),
        &passphrase,
    )?;
    let (id, ename, how) = match &outcome {
        vault::ImportOutcome::Created { id, name } => (id, name, "a new entry, with its key"),
        vault::ImportOutcome::NewVersion { id, name, .. } => {
            (id, name, "a new version, with its key")
        }
        vault::ImportOutcome::KeyAdded { id, name, .. } => (id, name, "its key added"),
        vault::ImportOutcome::KeyReplaced { id, name, .. } => {
            (id, name, "its key replaced (the one held did not work)")
        }
        vault::ImportOutcome::ChainUpdated { id, name, .. }
        | vault::ImportOutcome::AlreadyPresent { id, name, .. } => {
            (id, name, "already with its key")
        }
    };
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": chosen.arn,
            "entry": { "id": id, "name": ename },
            "outcome": how,
        }))?;
    } else {
        ctx.printer
            .line(&format!("{ename}: {how} (exported from {})", chosen.arn))?;
    }
    Ok(Status::Ok)
}

/// The version of the entry that holds, with its key, the certificate discovery last read
/// at `arn` (its rows checked); `None` when the vault lacks that certificate or its key.
fn held_key_version(v: &vault::Vault, arn: &str) -> Result<Option<u32>> {
    let Some(record) = v.acm_record(arn)? else {
        return Ok(None);
    };
    let (Some(entry_id), Some(fingerprint)) = (&record.entry_id, &record.fingerprint_sha256) else {
        return Ok(None);
    };
    if v.version_of_certificate(entry_id, fingerprint)?.is_none() {
        return Ok(None);
    }
    Ok(v.show(entry_id)?
        .versions
        .into_iter()
        .find(|ver| ver.fingerprint_sha256 == *fingerprint && ver.has_private_key)
        .map(|ver| ver.version))
}

/// The target a command acts through in `region`: the one named, else the only one
/// configured (or `default` without a configuration); several need --target.
pub(crate) fn one_target(
    config: &agent::Config,
    name: Option<&str>,
    region: &str,
) -> Result<agent::Target> {
    let regions = [region.to_owned()];
    let mut all = config.select(name, Some(&regions))?;
    if all.len() != 1 {
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        return Err(UsageError(format!(
            "several targets are configured ({}): choose one with --target",
            names.join(", ")
        ))
        .into());
    }
    Ok(all.remove(0))
}

/// The five addresses ACM writes to for a domain (WHOIS contacts are not used since 2024).
fn validation_addresses(domain: &str) -> Vec<String> {
    let base = domain.strip_prefix("*.").unwrap_or(domain);
    [
        "admin",
        "administrator",
        "hostmaster",
        "postmaster",
        "webmaster",
    ]
    .iter()
    .map(|u| format!("{u}@{base}"))
    .collect()
}

/// A request sent, recorded, and followed once.
pub(crate) struct Submitted {
    pub(crate) arn: String,
    pub(crate) account: String,
    /// What ACM said after the request (`PENDING_VALIDATION` when it could not be read).
    pub(crate) status: String,
    pub(crate) detail: vault::AcmDetail,
    /// The entry an issued certificate became.
    entry: Option<String>,
}

/// Sends a request and records it in the vault at once (audited `acm-request`, with
/// `audit`), then describes it (waiting up to `wait` for DNS records) and records what ACM
/// says: an issued certificate becomes an entry.
#[allow(clippy::too_many_arguments)]
pub(crate) fn submit(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    target: &agent::Target,
    region: &str,
    req: &agent::CertRequest,
    audit: &str,
    wait: std::time::Duration,
) -> Result<Submitted> {
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let (arn, account) =
        match runtime.block_on(agent::acm_request(&connector, config, target, region, req)) {
            Ok(x) => x,
            Err(e) => bail!("nothing was requested: {e}"),
        };
    // Recorded at once: whatever happens next, the vault knows this request.
    let location = vault::Location {
        target: target.name.clone(),
        account: account.clone(),
        region: region.to_owned(),
    };
    v.record_acm_scan(
        &location,
        vec![vault::AcmObservation {
            summary: agent::requested_summary(&arn, req),
            // How it is validated is known from the request itself.
            detail: req.validation.as_ref().map(|m| vault::AcmDetail {
                validation_method: Some(m.clone()),
                ..Default::default()
            }),
            certificate: None,
        }],
        false,
    )?;
    v.record_event(
        "acm-request",
        None,
        &format!("requested {arn} in {region}, account {account}: {audit}"),
    )?;
    let names = 1 + req.sans.len();
    let observed = runtime.block_on(agent::acm_wait_for_records(
        &connector, config, target, &arn, names, wait,
    ));
    let (status, detail, entry) = match observed {
        Ok((obs, _)) => {
            let status = obs.summary.status.clone();
            let detail = obs.detail.clone().unwrap_or_default();
            let outcome = v.record_acm_scan(&location, vec![obs], false)?;
            (status, detail, outcome.created.first().cloned())
        }
        Err(e) => {
            note(&format!(
                "requested {arn}, but ACM's answer about it could not be read yet ({e}): `certvault acm requests` asks again"
            ));
            (
                "PENDING_VALIDATION".to_owned(),
                vault::AcmDetail::default(),
                None,
            )
        }
    };
    Ok(Submitted {
        arn,
        account,
        status,
        detail,
        entry,
    })
}

fn request(ctx: &Ctx, args: AcmRequestArgs) -> Result<Status> {
    let config = ctx.config()?;
    let regions = agent::expand_regions(std::slice::from_ref(&args.region), &config.extra_regions)?;
    let [region] = regions.as_slice() else {
        return Err(UsageError(format!(
            "--region {}: one region (a request is for one region; request again for another)",
            args.region
        ))
        .into());
    };
    let region = region.clone();
    let names = checked_names(&args.domain, &args.san)?;
    let validation = match args.validation {
        ValidationArg::Dns => "DNS",
        ValidationArg::Email => "EMAIL",
    };
    if args.route53 && validation != "DNS" {
        return Err(UsageError(
            "--route53 creates DNS validation records: it goes with --validation dns".into(),
        )
        .into());
    }
    let key_algorithm = args.key_algorithm.map(key_algorithm_name);
    let target = one_target(&config, args.target.as_deref(), &region)?;
    let mut v = ctx.unlock_writer("acm request")?;
    let sans_joined = names[1..].join(",");
    let token = vault::idempotency_token(&[
        "acm-request",
        &target.name,
        &region,
        &names[0],
        &sans_joined,
        validation,
        key_algorithm.unwrap_or(""),
        if args.export_enabled { "export" } else { "" },
    ]);
    let req = agent::CertRequest {
        domain: names[0].clone(),
        sans: names[1..].to_vec(),
        validation: Some(validation.to_owned()),
        key_algorithm: key_algorithm.map(str::to_owned),
        export: args.export_enabled,
        ca_arn: None,
        token,
    };
    let Submitted {
        arn,
        account,
        status,
        detail,
        entry,
    } = submit(
        ctx,
        &mut v,
        &config,
        &target,
        &region,
        &req,
        &format!(
            "{} ({validation} validation{})",
            names.join(", "),
            if args.export_enabled {
                ", exportable"
            } else {
                ""
            }
        ),
        std::time::Duration::try_from(args.wait_records).unwrap_or_default(),
    )?;
    let (records, reason, per_name) = (
        detail.validation_records,
        detail.failure_reason,
        detail.names,
    );
    // The records in Route 53, asked: whether ACM has issued already or not (a DNS-validated
    // certificate renews by itself only while they stay).
    let placed = if args.route53 && !records.is_empty() {
        Some(place_records(
            ctx, &mut v, &config, &target, &account, &arn, &records,
        )?)
    } else {
        None
    };
    let emails: Vec<String> = if validation == "EMAIL" {
        names.iter().flat_map(|n| validation_addresses(n)).collect()
    } else {
        Vec::new()
    };
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": arn,
            "region": region,
            "account": account,
            "status": status,
            "failure_reason": reason,
            "validation": validation,
            "records": records,
            "route53": placed,
            "names": per_name,
            "emails": emails,
            "entry": entry,
        }))?;
    } else {
        ctx.printer.line(&format!(
            "requested {arn} ({region}, account {account}): {}",
            status_words(&status)
        ))?;
        if validation == "DNS" {
            if records.is_empty() {
                note(if args.route53 {
                    "ACM has not produced the DNS records yet: `certvault acm requests --route53` shows them and creates them in Route 53 when it has"
                } else {
                    "ACM has not produced the DNS records yet: `certvault acm requests` shows them when it has"
                });
            } else if let Some(placed) = &placed {
                print_placed(ctx, placed)?;
            } else {
                let mut t = ctx.printer.table(&["DOMAIN", "NAME", "TYPE", "VALUE"]);
                for r in &records {
                    t.add_row(vec![
                        cell(&r.domain),
                        cell(&r.name),
                        cell(&r.record_type),
                        cell(&r.value),
                    ]);
                }
                t.keep(&[1, 2, 3]);
                t.print()?;
                note(
                    "create these records in DNS: ACM validates within minutes of seeing them, and renews by itself for as long as they stay",
                );
            }
        } else {
            note(&format!(
                "ACM writes to {} (WHOIS contacts are not used since 2024); someone must approve, now and at every renewal: --validation dns needs nobody",
                emails.join(", ")
            ));
        }
        if let Some(name) = &entry {
            note(&format!("issued already: it is the vault entry {name}"));
        }
    }
    let by_hand = placed.as_ref().is_some_and(|p| {
        p.iter()
            .any(|r| !matches!(r.placement, agent::Placement::InPlace { .. }))
    });
    Ok(
        if by_hand || matches!(status.as_str(), "FAILED" | "VALIDATION_TIMED_OUT") {
            Status::Attention
        } else {
            Status::Ok
        },
    )
}

/// Creates (UPSERT) a request's DNS validation records in Route 53 with `target`'s
/// credentials (only if they still resolve to the request's `account`); each zone written
/// is an audit event. What became of each record.
pub(crate) fn place_records(
    ctx: &Ctx,
    v: &mut vault::Vault,
    config: &agent::Config,
    target: &agent::Target,
    account: &str,
    arn: &str,
    records: &[vault::DnsRecord],
) -> Result<Vec<agent::PlacedRecord>> {
    let placed = match ctx.runtime()?.block_on(agent::route53_place(
        &ctx.connector(),
        config,
        target,
        account,
        records,
        &format!("certvault: DNS validation of {arn}"),
    )) {
        Ok(p) => p,
        Err(e) => {
            bail!("the request is made and recorded, but no record was written to Route 53: {e}")
        }
    };
    let mut zones: std::collections::BTreeMap<(&str, &str, &str), Vec<&str>> =
        std::collections::BTreeMap::new();
    for p in &placed {
        if let agent::Placement::InPlace {
            zone_id,
            zone,
            change,
        } = &p.placement
        {
            let names = zones
                .entry((zone_id.as_str(), zone.as_str(), change.as_str()))
                .or_default();
            if !names.contains(&p.record.name.as_str()) {
                names.push(&p.record.name);
            }
        }
    }
    for ((id, zone, change), names) in zones {
        v.record_event(
            "route53-records",
            None,
            &format!(
                "validation records of {arn} written (UPSERT) to Route 53 zone {zone} ({id}), account {account}, change {change}: {}",
                names.join(", ")
            ),
        )?;
    }
    Ok(placed)
}

/// What became of each validation record, in words.
fn placement_words(p: &agent::Placement) -> String {
    match p {
        agent::Placement::InPlace { zone, .. } => format!("in place (zone {zone})"),
        agent::Placement::NoZone => {
            "create by hand: no public hosted zone of this account holds it".into()
        }
        agent::Placement::Ambiguous { zone, zone_ids } => format!(
            "create by hand: {} public zones are named {zone} ({}); use the one the domain's NS records point to",
            zone_ids.len(),
            zone_ids.join(", ")
        ),
        agent::Placement::Failed { reason } => format!("not written: {reason}"),
    }
}

fn print_placed(ctx: &Ctx, placed: &[agent::PlacedRecord]) -> Result<()> {
    let mut t = ctx
        .printer
        .table(&["DOMAIN", "NAME", "TYPE", "VALUE", "ROUTE 53"]);
    for p in placed {
        t.add_row(vec![
            cell(&p.record.domain),
            cell(&p.record.name),
            cell(&p.record.record_type),
            cell(&p.record.value),
            cell(placement_words(&p.placement)),
        ]);
    }
    t.keep(&[1, 2, 3, 4]);
    t.print()?;
    let by_hand = placed
        .iter()
        .filter(|p| !matches!(p.placement, agent::Placement::InPlace { .. }))
        .count();
    note(&if by_hand == 0 {
        "every record is in Route 53: ACM validates within minutes, and renews by itself for as long as they stay".to_owned()
    } else {
        format!(
            "{by_hand} record{} to create by hand (see above); the others are in Route 53",
            if by_hand == 1 { "" } else { "s" }
        )
    });
    Ok(())
}

fn key_algorithm_name(k: AcmKeyArg) -> &'static str {
    match k {
        AcmKeyArg::Rsa2048 => "RSA_2048",
        AcmKeyArg::EcPrime256v1 => "EC_prime256v1",
        AcmKeyArg::EcSecp384r1 => "EC_secp384r1",
    }
}

fn checked_names(domain: &str, sans: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for n in std::iter::once(domain).chain(sans.iter().map(String::as_str)) {
        let n = vault::check_dns_name(n).map_err(|e| UsageError(format!("--domain/--san: {e}")))?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.len() > 100 {
        return Err(UsageError(
            "at most 100 names in one request (ACM's default quota is 10)".into(),
        )
        .into());
    }
    Ok(names)
}

fn request_private(ctx: &Ctx, args: AcmRequestPrivateArgs) -> Result<Status> {
    let config = ctx.config()?;
    let Some((_, region)) = agent::pca_arn_location(&args.ca_arn) else {
        return Err(UsageError(format!(
            "--ca-arn {}: not an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
            args.ca_arn
        ))
        .into());
    };
    let region = region.to_owned();
    let names = checked_names(&args.domain, &args.san)?;
    let key_algorithm = args.key_algorithm.map(key_algorithm_name);
    let target = one_target(&config, args.target.as_deref(), &region)?;
    let mut v = ctx.unlock_writer("acm request-private")?;
    let token = vault::idempotency_token(&[
        "acm-request-private",
        &target.name,
        &region,
        &args.ca_arn,
        &names.join(","),
        key_algorithm.unwrap_or(""),
    ]);
    let req = agent::CertRequest {
        domain: names[0].clone(),
        sans: names[1..].to_vec(),
        validation: None,
        key_algorithm: key_algorithm.map(str::to_owned),
        export: false,
        ca_arn: Some(args.ca_arn.clone()),
        token,
    };
    let Submitted {
        arn,
        account,
        status,
        entry,
        ..
    } = submit(
        ctx,
        &mut v,
        &config,
        &target,
        &region,
        &req,
        &format!("private, from CA {}: {}", args.ca_arn, names.join(", ")),
        std::time::Duration::ZERO,
    )?;
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": arn,
            "region": region,
            "account": account,
            "ca_arn": args.ca_arn,
            "status": status,
            "entry": entry,
        }))?;
    } else {
        ctx.printer.line(&format!(
            "requested {arn} from {} ({region}): {}",
            args.ca_arn,
            status_words(&status)
        ))?;
        match &entry {
            Some(name) => note(&format!(
                "it is the vault entry {name} (ACM holds its key: `certvault acm export-key {}` brings it into the vault, charged by AWS)",
                vault::text::shell_word(name)
            )),
            None => note("`certvault acm requests` follows it until it is issued"),
        }
    }
    Ok(if matches!(status.as_str(), "FAILED") {
        Status::Attention
    } else {
        Status::Ok
    })
}

fn status_words(status: &str) -> String {
    match status {
        "PENDING_VALIDATION" => "pending validation".into(),
        "ISSUED" => "issued".into(),
        "FAILED" => "failed".into(),
        "VALIDATION_TIMED_OUT" => "timed out (72 hours without validation)".into(),
        other => other.to_lowercase().replace('_', " "),
    }
}

/// Records what ACM said of one request and says it in words: whether it is still open,
/// and the row's fields (status, detail, validation, names, records).
fn describe_request(
    v: &mut vault::Vault,
    rec: &vault::AcmRecord,
    location: &vault::Location,
    obs: vault::AcmObservation,
) -> Result<(bool, Vec<(&'static str, serde_json::Value)>)> {
    let arn = &rec.summary.arn;
    let status = obs.summary.status.clone();
    let detail = obs.detail.clone().unwrap_or_default();
    let outcome = v.record_acm_scan(location, vec![obs], false)?;
    let mut open = false;
    let words = match status.as_str() {
        "ISSUED" => {
            let entry = outcome
                .records
                .iter()
                .find(|r| &r.summary.arn == arn)
                .and_then(|r| r.entry_id.clone());
            match entry {
                Some(id) => format!("now the vault entry {}", v.resolve(&id)?.1),
                None => "issued".into(),
            }
        }
        "FAILED" => format!(
            "failed: {}",
            detail.failure_reason.as_deref().unwrap_or("ACM gave no reason")
        ),
        "VALIDATION_TIMED_OUT" => "not validated within 72 hours: request it again (`certvault acm request`); the DNS validation records stay the same (they are unique per name and account)".into(),
        "PENDING_VALIDATION" if detail.validation_method.as_deref() == Some("DNS") => {
            open = true;
            format!(
                "waiting for {} DNS record{} (see --output json)",
                detail.validation_records.len(),
                if detail.validation_records.len() == 1 { "" } else { "s" }
            )
        }
        "PENDING_VALIDATION" => {
            open = true;
            format!(
                "waiting for someone to approve the mail to {}",
                validation_addresses(&rec.summary.domain).join(", ")
            )
        }
        _ => status_words(&status),
    };
    // Which names are done, and which are still waiting, once some are.
    let mixed = detail.names.len() > 1
        && detail
            .names
            .iter()
            .any(|n| n.status.as_deref() == Some("SUCCESS"));
    let words = if mixed {
        let per_name: Vec<String> = detail
            .names
            .iter()
            .map(|n| {
                format!(
                    "{} {}",
                    n.domain,
                    status_words(n.status.as_deref().unwrap_or("unknown"))
                )
            })
            .collect();
        format!("{words} ({})", per_name.join(", "))
    } else {
        words
    };
    Ok((
        open,
        vec![
            ("status", status.into()),
            ("detail", words.into()),
            ("validation", detail.validation_method.into()),
            ("names", serde_json::to_value(&detail.names)?),
            ("records", serde_json::to_value(&detail.validation_records)?),
        ],
    ))
}

fn requests(ctx: &Ctx, args: AcmRequestsArgs) -> Result<Status> {
    if args.timeout > time::Duration::hours(72) {
        return Err(UsageError(
            "--timeout: at most 72h (ACM gives up on a request after 72 hours)".into(),
        )
        .into());
    }
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm requests")?;
    let waiting = v.acm_requests()?;
    if waiting.is_empty() {
        if ctx.printer.json {
            ctx.printer.json(&Vec::<serde_json::Value>::new())?;
        } else {
            note("no requests waiting: every certificate requested is issued");
        }
        return Ok(Status::Ok);
    }
    // By target: its credentials are resolved once per round.
    let mut by_target: std::collections::BTreeMap<&str, Vec<&vault::AcmRecord>> =
        std::collections::BTreeMap::new();
    for rec in &waiting {
        by_target
            .entry(rec.location.target.as_str())
            .or_default()
            .push(rec);
    }
    let runtime = ctx.runtime()?;
    let connector = ctx.connector();
    let timeout = std::time::Duration::try_from(args.timeout).unwrap_or_default();
    let started = std::time::Instant::now();
    // --timeout bounds the whole wait: a round is cut short at it, however slowly AWS answers.
    let deadline = args
        .wait
        .then(|| runtime.block_on(async { tokio::time::Instant::now() + timeout }));
    let mut pause = std::time::Duration::from_secs(5);
    let mut rows: Vec<serde_json::Value>;
    // Requests whose records this run wrote to Route 53 (each once, unless Route 53 failed),
    // and those all in place.
    let mut placed = std::collections::BTreeSet::new();
    let mut in_place = std::collections::BTreeSet::new();
    let mut by_hand = false;
    loop {
        rows = Vec::new();
        let mut open = 0;
        for (target_name, recs) in &by_target {
            let regions: Vec<String> = recs.iter().map(|r| r.location.region.clone()).collect();
            let target = config
                .select(Some(target_name), Some(&regions))
                .map(|mut t| t.remove(0))
                .map_err(|e| format!("target {target_name}: {e}"));
            let observed = target.clone().and_then(|target| {
                let arns: Vec<String> = recs.iter().map(|r| r.summary.arn.clone()).collect();
                runtime
                    .block_on(agent::acm_observe_many(
                        &connector, &config, &target, &arns, deadline,
                    ))
                    .map_err(|e| e.to_string())
            });
            // One result per request, in order: the target's failure is each one's.
            let results: Vec<Result<(String, vault::AcmObservation), String>> = match observed {
                Ok((account, seen)) => seen
                    .into_iter()
                    .map(|r| {
                        r.map(|obs| (account.clone(), obs))
                            .map_err(|e| e.to_string())
                    })
                    .collect(),
                Err(e) => recs.iter().map(|_| Err(e.clone())).collect(),
            };
            for (rec, seen) in recs.iter().zip(results) {
                let mut row = json!({
                    "arn": rec.summary.arn,
                    "domain": rec.summary.domain,
                    "region": rec.location.region,
                    "target": rec.location.target,
                });
                match seen {
                    Ok((account, obs)) => {
                        let location = vault::Location {
                            target: rec.location.target.clone(),
                            account,
                            region: rec.location.region.clone(),
                        };
                        let records = obs
                            .detail
                            .as_ref()
                            .filter(|d| d.validation_method.as_deref() == Some("DNS"))
                            .map(|d| d.validation_records.clone())
                            .unwrap_or_default();
                        let (still_open, filled) = describe_request(&mut v, rec, &location, obs)?;
                        open += usize::from(still_open);
                        for (k, val) in filled {
                            row[k] = val;
                        }
                        // Written once per run (UPSERT: the same records again change
                        // nothing), while ACM still waits for them.
                        if let (true, false, Ok(target)) = (
                            args.route53 && still_open && !records.is_empty(),
                            placed.contains(&rec.summary.arn),
                            &target,
                        ) {
                            let outcome = place_records(
                                ctx,
                                &mut v,
                                &config,
                                target,
                                &location.account,
                                &rec.summary.arn,
                                &records,
                            );
                            match outcome {
                                Ok(p) => {
                                    let all = p.iter().all(|r| {
                                        matches!(r.placement, agent::Placement::InPlace { .. })
                                    });
                                    row["records_in_place"] = all.into();
                                    if !all {
                                        by_hand = true;
                                    }
                                    // Done for this run unless Route 53 failed (tried again
                                    // next round: an UPSERT changes nothing twice).
                                    if !p.iter().any(|r| {
                                        matches!(r.placement, agent::Placement::Failed { .. })
                                    }) {
                                        placed.insert(rec.summary.arn.clone());
                                    }
                                    row["detail"] = if all {
                                        "records in place in Route 53: waiting for ACM to see them (minutes)".into()
                                    } else {
                                        p.iter()
                                            .map(|r| {
                                                format!(
                                                    "{}: {}",
                                                    r.record.name,
                                                    placement_words(&r.placement)
                                                )
                                            })
                                            .collect::<Vec<_>>()
                                            .join("; ")
                                            .into()
                                    };
                                    row["route53"] = serde_json::to_value(&p)?;
                                }
                                Err(e) => {
                                    by_hand = true;
                                    row["records_in_place"] = false.into();
                                    row["detail"] = format!("{e:#}").into();
                                }
                            }
                        } else if placed.contains(&rec.summary.arn) && still_open {
                            row["records_in_place"] = in_place.contains(&rec.summary.arn).into();
                        }
                        if row["records_in_place"] == true {
                            in_place.insert(rec.summary.arn.clone());
                        }
                    }
                    Err(e) => {
                        open += 1;
                        row["status"] = "unknown".into();
                        row["detail"] = e.into();
                    }
                }
                rows.push(row);
            }
        }
        if !args.wait || open == 0 || started.elapsed() + pause > timeout {
            break;
        }
        note(&format!(
            "{open} still waiting; checking again in {} s",
            pause.as_secs()
        ));
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_secs(60));
    }
    if ctx.printer.json {
        ctx.printer.json(&rows)?;
    } else {
        let mut t = ctx
            .printer
            .table(&["DOMAIN", "REGION", "STATUS", "DETAIL", "ARN"]);
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            let status = if r["status"] == "PENDING_VALIDATION" && r["records_in_place"] == true {
                "records in place".to_owned()
            } else {
                status_words(&s("status"))
            };
            t.add_row(vec![
                cell(s("domain")),
                cell(s("region")),
                cell(status),
                cell(s("detail")),
                cell(s("arn")),
            ]);
        }
        t.keep(&[0, 2, 3]);
        t.print()?;
    }
    let settled_badly = rows
        .iter()
        .any(|r| r["status"] != "ISSUED" && r["status"] != "PENDING_VALIDATION");
    let still_open = rows.iter().any(|r| r["status"] == "PENDING_VALIDATION");
    Ok(if settled_badly || by_hand || (args.wait && still_open) {
        Status::Attention
    } else {
        Status::Ok
    })
}

/// What `acm delete` acts on: one ARN, where it lives, and what the vault knows of it.
pub(crate) struct Chosen {
    pub(crate) arn: String,
    pub(crate) region: String,
    pub(crate) account: String,
    /// Whether the vault recorded the account (discovery), rather than read it off the ARN.
    pub(crate) recorded: bool,
    pub(crate) target: String,
    /// The entry it feeds, when the vault has one.
    pub(crate) entry: Option<(String, String)>,
    /// What discovery last saw there (domain, kind), for the confirmation.
    pub(crate) seen: Option<(String, String)>,
}

fn delete(ctx: &Ctx, args: AcmDeleteArgs) -> Result<Status> {
    let config = ctx.config()?;
    let mut v = ctx.unlock_writer("acm delete")?;
    let chosen = choose(
        &v,
        &args.certificate,
        args.region.as_deref(),
        args.target.as_deref(),
    )?;
    let Chosen {
        arn,
        region,
        account,
        recorded,
        target,
        entry,
        seen,
    } = chosen;
    let entry_name = entry.as_ref().map(|(_, n)| n.clone());

    // A deployment's ARN is the agent's to keep: deleting it here would only make the agent
    // import it again. `undeploy --delete-from-acm` forgets the deployment and deletes it.
    // The deployment rows are checked first: one changed outside certvault could hide it.
    if let Some(bad) = v.deployment_problems()?.values().next().cloned() {
        v.record_integrity_failure(&bad, "deleting from ACM")?;
        bail!(
            "cannot tell whether {arn} is a deployment's, so nothing was deleted: {}",
            vault::Error::RowTampered {
                table: bad.table,
                row: bad.row
            }
        );
    }
    let deployments = v.deployments()?;
    if let Some(d) = deployments
        .iter()
        .find(|d| d.arn.as_deref() == Some(arn.as_str()))
    {
        bail!(
            "{arn} is where {} is deployed ({}/{}): deleted here, the agent would import it again. `certvault undeploy {} --target {} --regions {} --delete-from-acm` deletes it and forgets the deployment; nothing was deleted",
            d.name,
            d.target,
            d.region,
            vault::text::shell_word(&d.name),
            vault::text::shell_word(&d.target),
            d.region
        );
    }

    let what = match &seen {
        Some((domain, kind)) => format!("{arn} ({domain}, {kind})"),
        None => arn.clone(),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "deleting {what} from ACM ({region}, account {account}) cannot be undone; add --yes to confirm"
            ))
            .into());
        }
        note(&format!(
            "This deletes {what} from ACM in {region}, account {account}. It cannot be undone{}.",
            match &entry_name {
                Some(n) => format!("; the vault keeps the entry {n}"),
                None => String::new(),
            }
        ));
        note("Type 'delete' to confirm:");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "delete" {
            bail!("not confirmed; nothing was deleted");
        }
    }

    let known = v.entry_ids_ever_held()?;
    let deployed: std::collections::HashMap<String, String> = deployments
        .iter()
        .filter(|d| d.region == region && d.account.as_deref().is_none_or(|a| a == account))
        .map(|d| (d.entry_id.clone(), d.name.clone()))
        .collect();
    let target = config
        .select(Some(&target), Some(std::slice::from_ref(&region)))?
        .remove(0);
    let req = agent::DeleteRequest {
        target: &target,
        region: &region,
        arn: &arn,
        // The ARN's own account is checked in any case; the recorded one too, when known.
        account: recorded.then_some(account.as_str()),
        owner: None,
        // A copy tagged by another vault, or by one of this vault's deployed entries, is
        // that deployment's to keep.
        tags: Some(agent::TagRule {
            known: &known,
            deployed: &deployed,
        }),
        wait: std::time::Duration::try_from(args.wait).unwrap_or_default(),
    };
    let runtime = ctx.runtime()?;
    let outcome = runtime.block_on(agent::delete_from_acm(&ctx.connector(), &config, req));
    let already_gone = match outcome {
        Ok(agent::Deleted::Deleted { request_id }) => {
            v.record_acm_deleted(&arn, &region, &account, request_id.as_deref(), false)?;
            false
        }
        Ok(agent::Deleted::AlreadyGone) => {
            v.record_acm_deleted(&arn, &region, &account, None, true)?;
            true
        }
        Err(e) => bail!("cannot delete {arn} from ACM: {e}"),
    };
    if ctx.printer.json {
        ctx.printer.json(&json!({
            "arn": arn,
            "region": region,
            "account": account,
            "deleted": !already_gone,
            "already_gone": already_gone,
            "entry": entry.as_ref().map(|(id, name)| json!({ "id": id, "name": name })),
        }))?;
    } else {
        ctx.printer.line(&format!(
            "{} {arn} from ACM ({region}){}",
            if already_gone {
                "already gone:"
            } else {
                "deleted"
            },
            match &entry_name {
                Some(n) => format!("; the vault keeps {n}"),
                None => String::new(),
            }
        ))?;
    }
    Ok(Status::Ok)
}

/// The ARN the user means: given as such, or the one ACM certificate the vault has
/// recorded for an entry (in `--region`, under `--target`, when there are several).
pub(crate) fn choose(
    v: &vault::Vault,
    certificate: &str,
    region_arg: Option<&str>,
    target_arg: Option<&str>,
) -> Result<Chosen> {
    if certificate.starts_with("arn:") {
        let arn = certificate.to_owned();
        let Some((account, region)) = agent::arn_location(&arn) else {
            return Err(UsageError(format!(
                "{arn} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
            ))
            .into());
        };
        let (account, region) = (account.to_owned(), region.to_owned());
        if let Some(r) = region_arg
            && r != region
        {
            return Err(UsageError(format!("--region {r}, but {arn} is in {region}")).into());
        }
        let record = v.acm_record(&arn)?;
        let target = match (&record, target_arg) {
            (Some(rec), Some(t)) if t != rec.location.target => {
                return Err(UsageError(format!(
                    "--target {t}, but {arn} was found under target {}",
                    rec.location.target
                ))
                .into());
            }
            (Some(rec), _) => rec.location.target.clone(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "default".to_owned(),
        };
        let entry = match record.as_ref().and_then(|r| r.entry_id.clone()) {
            Some(id) => Some(v.resolve(&id)?),
            None => None,
        };
        let recorded = record.as_ref().map(|r| r.location.account.clone());
        let seen = record.map(|r| (r.summary.domain, r.summary.kind));
        return Ok(Chosen {
            arn,
            region,
            account: recorded.clone().unwrap_or(account),
            recorded: recorded.is_some(),
            target,
            entry,
            seen,
        });
    }
    let (id, name) = v.resolve(certificate)?;
    let candidates: Vec<vault::AcmRecord> = v
        .acm_records_of(&id)?
        .into_iter()
        .filter(|r| r.gone_at.is_none())
        .filter(|r| region_arg.is_none_or(|x| x == r.location.region))
        .filter(|r| target_arg.is_none_or(|x| x == r.location.target))
        .collect();
    let one = match candidates.as_slice() {
        [] => bail!(
            "the vault knows of no certificate of {name} in ACM{}: run `certvault discover`, or give the ARN",
            match (region_arg, target_arg) {
                (None, None) => String::new(),
                _ => " there".to_owned(),
            }
        ),
        [one] => one.summary.arn.clone(),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|r| {
                    format!(
                        "  {} ({}, target {})",
                        r.summary.arn, r.location.region, r.location.target
                    )
                })
                .collect();
            return Err(UsageError(format!(
                "{name} is in ACM {} times:\n{}\nchoose one with --region (and --target), or give the ARN",
                many.len(),
                list.join("\n")
            ))
            .into());
        }
    };
    // Read again, its MAC checked: the target and account come from this row.
    let Some(rec) = v.acm_record(&one)? else {
        bail!("{one}: the vault's record of it disappeared; nothing was deleted");
    };
    Ok(Chosen {
        arn: rec.summary.arn.clone(),
        region: rec.location.region.clone(),
        account: rec.location.account.clone(),
        recorded: true,
        target: rec.location.target.clone(),
        entry: Some((id, name)),
        seen: Some((rec.summary.domain, rec.summary.kind)),
    })
}
