//! `certvault completions` and `certvault man`: what the shell and `man` need, generated
//! from the same definition as the parser, so they never disagree with it.

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Ctx;
use crate::{
    Status,
    args::{Cli, CompletionsArgs, ManArgs},
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
    // No `help` subcommand on the pages (`man` is the help): clap would list a
    // `certvault-ca-help(1)` that says nothing a page does not.
    fn without_help(c: clap::Command) -> clap::Command {
        c.disable_help_subcommand(true)
            .mut_subcommands(without_help)
    }
    let mut cmd = without_help(Cli::command());
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
    // A page for every command at every depth (`certvault-ca-create.1`): each page's list
    // of subcommands names the pages below it, and every one of them is written.
    let mut pages = vec![("certvault.1".to_owned(), cmd.clone())];
    let mut todo: Vec<(String, clap::Command)> = vec![("certvault".to_owned(), cmd.clone())];
    while let Some((parent, command)) = todo.pop() {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{parent}-{}", sub.get_name());
            let page = sub.clone().name(name.clone()).version(version.clone());
            pages.push((format!("{name}.1"), page.clone()));
            todo.push((name, page));
        }
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
