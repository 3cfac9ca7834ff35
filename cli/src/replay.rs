//! `ferroccid replay TRACE [--reader NAME] [--mask N:FROM-TO]… [--json]`:
//! sends the host side of a recorded session (a usbmon pcap/pcapng or a
//! libccid log, what `trace` reads) to a reader, message by message, and
//! compares each answer with the recorded one (see
//! `ferroccid_trace::replay` for what is masked).
//!
//! The messages go out raw, through the reader's transport and not through
//! the driver's `Reader`, so that the reader sees exactly the recorded
//! bytes (only bSeq is renumbered). Each answer is waited for at most
//! [`ANSWER_WAIT`], time extensions included.
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferroccid::ccid::{MessageType, HEADER_LEN};
use ferroccid::{open_name, Transport, TransportError};
use ferroccid_trace::replay::{compare, exchanges, random_parts, Difference};

use super::apdu::spaced;
use super::list::resolve;

/// The longest wait for one answer, time extensions included.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// Stale answers (another bSeq) dropped before giving up on one.
const MAX_STALE: usize = 8;

/// Arguments of `ferroccid replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The recorded session: usbmon pcap/pcapng or a libccid log.
    pub trace: std::path::PathBuf,
    /// A device name or a unique part of a reader's name, as for `apdu`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Do not compare bytes FROM to TO (exclusive) of the answer to the
    /// command at trace position N (`ferroccid trace` numbers them), e.g.
    /// `--mask 7:10-18`; `--mask 7` ignores that answer's data.
    #[arg(long, value_name = "N[:FROM-TO]", value_parser = parse_mask)]
    pub mask: Vec<(usize, usize, usize)>,
    /// Print one JSON object per command, and a summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the replayed traffic to this pcapng file (usbmon link
    /// type), to diff with the recording in Wireshark or `ferroccid trace`.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
}

fn parse_mask(text: &str) -> Result<(usize, usize, usize), String> {
    let bad = || format!("{text:?} is not N or N:FROM-TO");
    let (index, range) = match text.split_once(':') {
        Some((index, range)) => (index, Some(range)),
        None => (text, None),
    };
    let index: usize = index.parse().map_err(|_| bad())?;
    let (from, to) = match range {
        None => (HEADER_LEN, usize::MAX),
        Some(range) => {
            let (from, to) = range.split_once('-').ok_or_else(bad)?;
            (
                from.parse().map_err(|_| bad())?,
                to.parse().map_err(|_| bad())?,
            )
        }
    };
    if from >= to {
        return Err(bad());
    }
    Ok((index, from, to))
}

/// What happened to one command.
#[derive(serde::Serialize)]
struct Outcome {
    index: usize,
    message: &'static str,
    command: String,
    recorded: Option<String>,
    got: Option<String>,
    same: Option<bool>,
    difference: Option<String>,
    error: Option<String>,
}

/// Run `ferroccid replay`.
pub fn run(args: Args) -> ExitCode {
    match replay(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("ferroccid replay: {message}");
            ExitCode::from(2)
        }
    }
}

fn replay(args: &Args) -> Result<bool, String> {
    let data = std::fs::read(&args.trace).map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let frames = ferroccid_trace::read_frames(&data)
        .map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let recorded = exchanges(&frames);
    if recorded.is_empty() {
        return Err(format!(
            "{}: no host-to-reader message",
            args.trace.display()
        ));
    }
    let name = resolve(&args.reader)?;
    let device = open_name(&name).map_err(|e| format!("cannot open {name}: {e}"))?;
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
    let transport: &dyn Transport = match &capture {
        Some(capture) => capture.as_ref(),
        None => device.transport.as_ref(),
    };
    let mut session = Session {
        transport,
        seq: 0,
        buffer: vec![0u8; HEADER_LEN + 65_538 + 512],
    };
    // A trace cut from the middle of a session starts after the power-on:
    // the card is powered first so that its commands can be answered.
    if recorded[0].command[0] != 0x62 {
        let power_on = [0x62, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let note = match session.exchange(&power_on) {
            Ok(_) => "the trace starts after the power-on: the card was powered first".to_string(),
            Err(e) => {
                format!("the trace starts after the power-on, and powering the card failed: {e}")
            }
        };
        if !args.json {
            println!("{note}");
        }
    }
    let (mut same, mut different, mut unrecorded) = (0usize, 0usize, 0usize);
    for exchange in &recorded {
        let message =
            MessageType::from_byte(exchange.command[0]).map_or("unknown message", |t| t.name());
        let mut outcome = Outcome {
            index: exchange.index,
            message,
            command: spaced(&exchange.command),
            recorded: exchange.answer.as_deref().map(spaced),
            got: None,
            same: None,
            difference: None,
            error: None,
        };
        match session.exchange(&exchange.command) {
            Err(e) => {
                different += 1;
                outcome.same = Some(false);
                outcome.error = Some(e);
            }
            Ok(got) => {
                outcome.got = Some(spaced(&got));
                match &exchange.answer {
                    None => unrecorded += 1,
                    Some(answer) => {
                        let mut mask = random_parts(&exchange.command, answer);
                        mask.extend(
                            args.mask
                                .iter()
                                .filter(|(index, _, _)| *index == exchange.index)
                                .map(|&(_, from, to)| (from, to)),
                        );
                        let difference = compare(answer, &got, &mask);
                        outcome.same = Some(difference.is_none());
                        if let Some(d) = difference {
                            different += 1;
                            outcome.difference = Some(describe(&d));
                        } else {
                            same += 1;
                        }
                    }
                }
            }
        }
        print(&outcome, args.json);
    }
    let summary = format!(
        "{} commands: {same} answered as recorded, {different} differently, {unrecorded} without a recorded answer",
        recorded.len()
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"commands": recorded.len(), "same": same, "different": different, "unrecorded": unrecorded})
        );
    } else {
        println!("{summary}");
    }
    super::apdu::check_capture(capture.as_ref(), args.pcap.as_deref())?;
    Ok(different == 0)
}

fn describe(d: &Difference) -> String {
    format!(
        "at byte {}: recorded {}, got {}",
        d.offset,
        if d.recorded.is_empty() {
            "nothing".into()
        } else {
            spaced(&d.recorded)
        },
        if d.got.is_empty() {
            "nothing".into()
        } else {
            spaced(&d.got)
        }
    )
}

fn print(outcome: &Outcome, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(outcome) {
            println!("{line}");
        }
        return;
    }
    let verdict = match (&outcome.error, outcome.same, &outcome.difference) {
        (Some(e), _, _) => format!("FAILED: {e}"),
        (None, None, _) => format!(
            "no recorded answer; got {}",
            outcome.got.as_deref().unwrap_or("")
        ),
        (None, Some(true), _) => "as recorded".into(),
        (None, Some(false), d) => format!("DIFFERENT {}", d.as_deref().unwrap_or("")),
    };
    println!("#{:<5} {:<28} {verdict}", outcome.index, outcome.message);
}

/// The raw exchange with the reader.
struct Session<'a> {
    transport: &'a dyn Transport,
    seq: u8,
    buffer: Vec<u8>,
}

impl Session<'_> {
    /// Sends `command` with the next bSeq and returns its final answer.
    fn exchange(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        let mut message = command.to_vec();
        if message.len() < HEADER_LEN {
            return Err(format!(
                "{} bytes is shorter than a CCID header",
                message.len()
            ));
        }
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        message[6] = seq;
        self.transport
            .bulk_out(&message, Duration::from_secs(5))
            .map_err(|e| format!("bulk-OUT: {e}"))?;
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut stale = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no answer within {ANSWER_WAIT:?}"));
            }
            let n = match self.transport.bulk_in(&mut self.buffer, left) {
                Ok(n) => n,
                Err(TransportError::Timeout) => continue,
                Err(e) => return Err(format!("bulk-IN: {e}")),
            };
            let answer = &self.buffer[..n];
            if answer.len() < HEADER_LEN || answer[6] != seq {
                stale += 1;
                if stale > MAX_STALE {
                    return Err(format!("{stale} answers with another bSeq"));
                }
                continue;
            }
            if answer[7] & 0xC0 == 0x80 {
                // Time extension: the final answer follows.
                continue;
            }
            return Ok(answer.to_vec());
        }
    }
}
