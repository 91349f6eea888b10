//! `certvault completions` and `certvault man`: what the shell and `man` need, generated
//! from the same definition as the parser, so they never disagree with it.

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Ctx;
use crate::{
    Status,
    cli::{Cli, CompletionsArgs, ManArgs},
    output::{note, write_stdout},
};

pub(crate) fn completions(args: CompletionsArgs) -> Result<Status> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "certvault", &mut out);
    write_stdout(&out)?;
    Ok(Status::Ok)
}

pub(crate) fn man(ctx: &Ctx, args: ManArgs) -> Result<Status> {
    let mut cmd = Cli::command();
    // Built, so each command's page shows the global options too.
    cmd.build();
    let Some(dir) = args.out_dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        write_stdout(&out)?;
        return Ok(Status::Ok);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let mut written = Vec::new();
    let mut pages = vec![("certvault.1".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("certvault-{}", sub.get_name());
        pages.push((
            format!("{name}.1"),
            sub.clone().name(name).version(version.clone()),
        ));
    }
    for (file, page) in pages {
        let path = dir.join(&file);
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page).render(&mut bytes)?;
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    if ctx.printer.json {
        ctx.printer.json(&written)?;
    } else {
        note(&format!(
            "wrote {} manual pages into {} (man -M ... certvault, or copy them into a man1 folder)",
            written.len(),
            dir.display()
        ));
    }
    Ok(Status::Ok)
}
