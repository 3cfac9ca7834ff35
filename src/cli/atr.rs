//! `ferroccid atr <HEX> [--json]` (in progress).
use std::process::ExitCode;

/// Arguments of `ferroccid atr`.
#[derive(clap::Args)]
pub struct Args {
    /// The ATR as hex (spaces and colons allowed).
    pub hex: Vec<String>,
    /// Print one JSON object instead of the human-readable decode.
    #[arg(long)]
    pub json: bool,
}

/// Run `ferroccid atr`.
pub fn run(_args: Args) -> ExitCode {
    ExitCode::FAILURE
}
