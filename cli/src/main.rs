//! Command-line front end: one file per subcommand, dispatched here.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod apdu;
mod assets;
mod atr;
mod bundle;
mod card;
mod demo;
mod descriptor;
mod doctor;
mod list;
mod monitor;
mod sim;
mod trace;

/// ferroccid: USB CCID smart-card reader driver and bring-up tool.
#[derive(Parser)]
#[command(name = "ferroccid", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Longest one command to a reader or card may take, in seconds
    /// (power on, APDU, PIN entry on top of the pad's own time); default
    /// 60. Raise it for on-card key generation. Same as the environment
    /// variable FERROCCID_COMMAND_TIMEOUT.
    #[arg(long, global = true, value_name = "SECONDS", value_parser = command_timeout)]
    timeout: Option<String>,
}

/// Checks `--timeout`: a positive number of seconds.
fn command_timeout(text: &str) -> Result<String, String> {
    ferroccid::parse_command_time(text)
        .map(|_| text.trim().to_string())
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

#[derive(Subcommand)]
enum Command {
    /// Send command APDUs to the card in a reader and print the responses.
    Apdu(apdu::Args),
    /// Decode an Answer-to-Reset (ISO/IEC 7816-3 §8).
    Atr(atr::Args),
    /// pcscd bundle: `bundle`, `bundle refresh`, `install`, `uninstall`.
    #[command(flatten)]
    Bundle(bundle::Command),
    /// ISO/IEC 7816-4 card operations: status, select, read, update, PIN, auth, lock, reconnect.
    Card(card::Args),
    /// Show the driver's main job on the simulated reader and card.
    Demo(demo::Args),
    /// Decode a CCID class descriptor (CCID §5.1).
    Descriptor(descriptor::Args),
    /// Say why a reader is not seen, and what to do about it.
    Doctor(doctor::Args),
    /// List the CCID readers on the USB buses and the simulated ones.
    List(list::Args),
    /// Print reader, card and PIN events as they happen.
    Monitor(monitor::Args),
    /// Run the simulated reader, exported over USB/IP.
    Sim(sim::Args),
    /// Decode a usbmon capture or libccid log into one line per CCID message.
    Trace(trace::Args),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateAssets(assets::Args),
}

/// Parse the command line and run the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every subcommand that takes a device name accepts `sim` and
    // `sim:PROFILE`: the simulator is linked into the CLI.
    ferroccid_sim::register();
    if let Some(seconds) = &cli.timeout {
        // Read by Reader::open (ReaderOptions::with_env_overrides), in this
        // process and in a simulator or helper it starts. Set before any
        // thread exists.
        std::env::set_var(ferroccid::COMMAND_TIMEOUT_ENV, seconds);
    }
    match cli.command {
        Command::Apdu(args) => apdu::run(args),
        Command::Atr(args) => atr::run(args),
        Command::Bundle(command) => bundle::run(command),
        Command::Card(args) => card::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Descriptor(args) => descriptor::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::List(args) => list::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Trace(args) => trace::run(args),
        Command::GenerateAssets(args) => assets::run(args),
    }
}
