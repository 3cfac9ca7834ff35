//! `ferroccid check --reader NAME [--json]`: a CCID conformance checker
//! for reader firmware.
//!
//! Each check cites the clause of CCID Rev 1.1 (or ISO/IEC 7816-3) it
//! tests and ends as pass, fail (with the offending frame) or not
//! applicable (with the reason). Checks talk raw frames ([`wire`]) so that
//! they can send what the driver never would, and every answer is waited
//! for a bounded time, so a broken reader fails a check instead of hanging
//! the run. The exit status is non-zero when a check fails.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | raw frames, bounded waits |
//! | [`descriptor`] | the class descriptor against itself and the control requests |
//! | [`commands`] | bulk commands: sequencing, errors, parameters, Abort, Escape, lengths |
//! | [`card`] | exchanges with the card: time extensions, zero-length packets, slot changes |

mod card;
mod commands;
mod descriptor;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use ferroccid::ccid::ClassDescriptor;
use ferroccid::TransportInfo;
use ferroccid_sim::SimHandle;

use super::list::resolve;
use wire::Wire;

/// Arguments of `ferroccid check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A device name (`sim`, `sim:PROFILE`, `usb:VVVV/PPPP…`, `usbip:…`) or a
    /// unique part of a reader's name as `ferroccid list` shows it.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Print one JSON object: the reader, each check's result, the failures.
    #[arg(long)]
    pub json: bool,
    /// Also write the USB traffic to this pcapng file (usbmon link type:
    /// Wireshark's USB CCID dissector and `ferroccid trace` read it), so
    /// the offending frames can be shown to the firmware's authors.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    /// `frame`: the reader's offending frame in hex, when there is one.
    Fail {
        detail: String,
        frame: Option<String>,
    },
    NotApplicable {
        why: String,
    },
}

impl Verdict {
    pub(crate) fn fail(detail: impl Into<String>) -> Verdict {
        Verdict::Fail {
            detail: detail.into(),
            frame: None,
        }
    }
    pub(crate) fn fail_on(detail: impl Into<String>, answer: &wire::Answer) -> Verdict {
        Verdict::Fail {
            detail: detail.into(),
            frame: Some(answer.hex()),
        }
    }
    pub(crate) fn not_applicable(why: impl Into<String>) -> Verdict {
        Verdict::NotApplicable { why: why.into() }
    }
}

/// What a human does to a real reader and the simulator does on request:
/// without it, the checks that need it are not applicable.
pub(crate) trait Hands {
    fn remove_card(&self, slot: u8);
    fn insert_card(&self, slot: u8);
    /// Ask for `count` time-extension frames before the next card answer.
    fn slow_down_next_answer(&self, slot: u8, count: u8);
}

impl Hands for SimHandle {
    fn remove_card(&self, slot: u8) {
        SimHandle::remove_card(self, slot);
    }
    fn insert_card(&self, slot: u8) {
        SimHandle::insert_card(self, slot);
    }
    fn slow_down_next_answer(&self, slot: u8, count: u8) {
        self.time_extensions_next(slot, count);
    }
}

/// Everything a check sees: the reader's identity and descriptor, the
/// wire, and hands if there are any.
pub(crate) struct Context<'a> {
    pub(crate) info: &'a TransportInfo,
    pub(crate) descriptor: ClassDescriptor,
    pub(crate) wire: Wire<'a>,
    pub(crate) hands: Option<&'a dyn Hands>,
    /// The slot under test.
    pub(crate) slot: u8,
}

/// One row of the table.
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) clause: &'static str,
    pub(crate) run: fn(&mut Context<'_>) -> Verdict,
}

/// Every check, in the order they run (the last one moves the card).
pub(crate) const CHECKS: [Check; 16] = [
    descriptor::FEATURES,
    descriptor::MESSAGE_LENGTH,
    descriptor::CLOCK_TABLE,
    descriptor::DATA_RATE_TABLE,
    commands::SEQ_ECHO,
    commands::BAD_SLOT_INDEX,
    commands::UNKNOWN_COMMAND,
    commands::POWER_SEQUENCE,
    commands::VOLTAGE_SELECTION,
    commands::PARAMETERS,
    commands::ESCAPE,
    commands::ABORT,
    card::TIME_EXTENSION,
    card::ZERO_LENGTH_PACKET,
    commands::MESSAGE_LENGTH_HONOURED,
    card::NOTIFY_SLOT_CHANGE,
];

/// One check's result, as printed.
#[derive(serde::Serialize)]
struct Row {
    id: &'static str,
    clause: &'static str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<String>,
}

impl Row {
    fn new(check: &Check, verdict: Verdict) -> Row {
        let (result, detail, frame) = match verdict {
            Verdict::Pass => ("pass", None, None),
            Verdict::Fail { detail, frame } => ("fail", Some(detail), frame),
            Verdict::NotApplicable { why } => ("n/a", Some(why), None),
        };
        Row {
            id: check.id,
            clause: check.clause,
            result,
            detail,
            frame,
        }
    }
}

/// The whole report, as `--json` prints it.
#[derive(serde::Serialize)]
struct Report {
    reader: String,
    checks: Vec<Row>,
    failed: Vec<&'static str>,
}

/// Run `ferroccid check`.
pub fn run(args: Args) -> ExitCode {
    match check(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("ferroccid check: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs every check; true if none failed.
fn check(args: &Args) -> Result<bool, String> {
    let name = resolve(&args.reader)?;
    let device = ferroccid::open_name(&name).map_err(|e| format!("cannot open {name}: {e}"))?;
    let capture = match &args.pcap {
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let capture =
                super::apdu::Capture::new(device.transport.clone(), std::io::BufWriter::new(file))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            Some(std::sync::Arc::new(capture))
        }
        None => None,
    };
    let transport: &dyn ferroccid::Transport = match &capture {
        Some(capture) => capture.as_ref(),
        None => device.transport.as_ref(),
    };
    let info = transport.info();
    let raw = info
        .class_descriptor
        .as_deref()
        .ok_or_else(|| format!("{name} has no CCID class descriptor"))?;
    let descriptor = ClassDescriptor::parse(raw)
        .map_err(|e| format!("{name}: unreadable class descriptor: {e}"))?;
    let hands = device.handle::<SimHandle>().map(|h| h as &dyn Hands);
    let mut context = Context {
        info,
        descriptor,
        wire: Wire::new(transport),
        hands,
        slot: 0,
    };
    // Notifications of the plug-in are not the checks' business.
    let mut buf = [0u8; 64];
    while transport
        .interrupt_in(&mut buf, Duration::from_millis(50))
        .is_ok()
    {}
    let mut rows = Vec::with_capacity(CHECKS.len());
    for check in &CHECKS {
        context.wire.drain();
        let verdict = (check.run)(&mut context);
        let row = Row::new(check, verdict);
        if !args.json {
            print_row(&row);
        }
        rows.push(row);
    }
    let failed: Vec<&'static str> = rows
        .iter()
        .filter(|r| r.result == "fail")
        .map(|r| r.id)
        .collect();
    if args.json {
        let report = Report {
            reader: info.name.clone(),
            checks: rows,
            failed: failed.clone(),
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        let passed = rows.iter().filter(|r| r.result == "pass").count();
        println!(
            "{}: {passed} passed, {} failed, {} not applicable",
            info.name,
            failed.len(),
            rows.len() - passed - failed.len()
        );
    }
    super::apdu::check_capture(capture.as_ref(), args.pcap.as_deref())?;
    Ok(failed.is_empty())
}

fn print_row(row: &Row) {
    let label = match row.result {
        "pass" => "PASS",
        "fail" => "FAIL",
        _ => "n/a ",
    };
    println!("{label}  {:<24} {}", row.id, row.clause);
    if let Some(detail) = &row.detail {
        println!("      {detail}");
    }
    if let Some(frame) = &row.frame {
        println!("      frame: {frame}");
    }
}
