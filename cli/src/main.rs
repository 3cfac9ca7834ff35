//! Command-line front end: one file per subcommand, dispatched here.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod apdu;
mod assets;
mod atr;
mod bench;
mod bundle;
mod card;
mod check;
mod demo;
mod descriptor;
mod doctor;
mod list;
mod log;
mod monitor;
mod replay;
mod script;
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
    /// Log on stderr: -v info, -vv debug, -vvv also every CCID frame,
    /// decoded. FERROCCID_LOG takes filter directives (RUST_LOG syntax,
    /// e.g. `ferroccid::ccid=trace`) on top of that level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
    /// APDU round-trip latency and throughput on a reader, without pcscd.
    Bench(bench::Args),
    /// pcscd bundle: `bundle`, `bundle refresh`, `install`, `uninstall`.
    #[command(flatten)]
    Bundle(bundle::Command),
    /// ISO/IEC 7816-4 card operations: status, select, read, update, PIN, auth, lock, reconnect.
    Card(card::Args),
    /// Check a reader against CCID Rev 1.1, clause by clause.
    Check(check::Args),
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
    /// Send the host side of a recorded session to a reader, diff the answers.
    Replay(replay::Args),
    /// Run an APDU script (scriptor's input, plus expected answers).
    Script(script::Args),
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
    log::init(cli.verbose);
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
        Command::Bench(args) => bench::run(args),
        Command::Bundle(command) => bundle::run(command),
        Command::Card(args) => card::run(args),
        Command::Check(args) => check::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Descriptor(args) => descriptor::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::List(args) => list::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Script(args) => script::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Trace(args) => trace::run(args),
        Command::GenerateAssets(args) => assets::run(args),
    }
}
