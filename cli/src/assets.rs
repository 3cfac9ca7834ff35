//! `ferroccid generate-assets DIR`: man pages and shell completions made
//! from the clap definitions, so the package's documentation can never
//! drift from the options the binary accepts (tests/scripts/deb.sh).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory as _;

/// `ferroccid generate-assets` (hidden: packaging only).
#[derive(clap::Args)]
pub struct Args {
    /// Directory to write `man/*.1` and `completions/{ferroccid.bash,
    /// _ferroccid, ferroccid.fish}` into.
    out: PathBuf,
}

/// Writes the man pages (one per command, `ferroccid-apdu.1` …) and the
/// bash, zsh and fish completions.
pub fn run(args: Args) -> ExitCode {
    match generate(&args.out) {
        Ok(count) => {
            println!("{}: {count} files", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferroccid: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> std::io::Result<usize> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let command = crate::Cli::command();
    let mut count = 0;
    count += write_man_pages(&command, &man)?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "ferroccid.bash"),
        (clap_complete::Shell::Zsh, "_ferroccid"),
        (clap_complete::Shell::Fish, "ferroccid.fish"),
    ] {
        let mut file = std::fs::File::create(completions.join(name))?;
        clap_complete::generate(shell, &mut command.clone(), "ferroccid", &mut file);
        count += 1;
    }
    Ok(count)
}

/// `ferroccid.1`, then `ferroccid-SUB.1` for every visible subcommand (and
/// theirs), as git and cargo name theirs.
fn write_man_pages(command: &clap::Command, dir: &Path) -> std::io::Result<usize> {
    let mut command = command.clone();
    command.build();
    let mut count = 0;
    let mut pending = vec![(command.get_name().to_owned(), command)];
    while let Some((name, command)) = pending.pop() {
        let page = command.clone().name(name.clone());
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(dir.join(format!("{name}.1")), text)?;
        count += 1;
        for sub in command.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            pending.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
    }
    Ok(count)
}
