//! `ferroccid script FILE [--reader NAME] [--keep-going] [--json]`: runs an
//! APDU script (scriptor's input, plus expected answers, repeats and
//! captures: see `ferroccid_card::script`) against a card, one line per
//! command and answer with its round-trip time; stops at the first answer
//! that does not match unless `--keep-going`.
use std::process::ExitCode;
use std::time::Instant;

use ferroccid_card::script::{self, build_command, Captures, Step};

use super::apdu::{check_capture, hex, open_reader_with, spaced, Capture, ProtocolArg};

/// Arguments of `ferroccid script`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The script (`-` for standard input).
    pub file: String,
    /// A device name or a unique part of a reader's name, as for `apdu`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// The transmission protocol to select.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Any)]
    pub protocol: ProtocolArg,
    /// Go on after an answer that does not match (the exit status is
    /// still non-zero).
    #[arg(long)]
    pub keep_going: bool,
    /// Print a JSON transcript instead of text: one object per command
    /// sent, `{line, command, response, micros, expected, matched,
    /// mismatch}`, and the ATR of each reset.
    #[arg(long)]
    pub json: bool,
    /// Also write the USB traffic to this pcapng file (usbmon link type:
    /// Wireshark's USB CCID dissector and `ferroccid trace` read it).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
}

/// One entry of the transcript.
#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    Reset {
        line: usize,
        atr: String,
    },
    Exchange {
        line: usize,
        command: String,
        response: String,
        micros: u128,
        expected: Option<String>,
        matched: bool,
        mismatch: Option<String>,
    },
}

/// Run `ferroccid script`.
pub fn run(args: Args) -> ExitCode {
    let text = if args.file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("ferroccid script: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let script = match script::parse(&text) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("ferroccid script: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let mut runner = match Runner::open(&args) {
        Ok(runner) => runner,
        Err(e) => {
            eprintln!("ferroccid script: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runner.run_steps(&script.steps).and_then(|stop| {
        check_capture(runner.capture.as_ref(), args.pcap.as_deref()).map(|()| stop)
    });
    if args.json {
        match serde_json::to_string_pretty(&runner.transcript) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("ferroccid script: {e}"),
        }
    }
    match outcome {
        Err(e) => {
            eprintln!("ferroccid script: {}: {e}", args.file);
            ExitCode::FAILURE
        }
        Ok(_) if runner.mismatches > 0 => {
            eprintln!(
                "ferroccid script: {}: {} answer(s) did not match",
                args.file, runner.mismatches
            );
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
    }
}

/// Why the steps stopped early.
enum Stop {
    /// `exit` in the script.
    Exit,
    /// An answer did not match (without `--keep-going`).
    Mismatch,
}

struct Runner<'a> {
    args: &'a Args,
    slot: ferroccid::Slot,
    _reader: ferroccid::Reader,
    _device: ferroccid::OpenedDevice,
    capture: Option<std::sync::Arc<Capture>>,
    captures: Captures,
    response: Vec<u8>,
    transcript: Vec<Entry>,
    mismatches: usize,
}

impl<'a> Runner<'a> {
    fn open(args: &'a Args) -> Result<Runner<'a>, String> {
        let (reader, device, capture) = open_reader_with(&args.reader, args.pcap.as_deref())?;
        let slot = reader
            .slot(0)
            .map_err(|e| format!("{}: {e}", reader.info().name))?;
        let mut runner = Runner {
            args,
            slot,
            _reader: reader,
            _device: device,
            capture,
            captures: Captures::new(),
            response: vec![0u8; 65536 + 2],
            transcript: Vec::new(),
            mismatches: 0,
        };
        runner.reset(0)?;
        Ok(runner)
    }

    /// Powers the card (off first, if it was on) and selects the protocol.
    fn reset(&mut self, line: usize) -> Result<(), String> {
        if line != 0 {
            self.slot
                .power_off()
                .map_err(|e| format!("line {line}: power off: {e}"))?;
        }
        let atr = self
            .slot
            .power_on()
            .map_err(|e| format!("line {line}: power on: {e}"))?;
        self.slot
            .set_protocol(self.args.protocol.into())
            .map_err(|e| format!("line {line}: protocol selection: {e}"))?;
        let atr = hex(atr.as_bytes());
        if !self.args.json {
            println!("ATR {atr}");
        }
        self.transcript.push(Entry::Reset { line, atr });
        Ok(())
    }

    fn run_steps(&mut self, steps: &[Step]) -> Result<Option<Stop>, String> {
        for step in steps {
            let stop = match step {
                Step::Reset { line } => self.reset(*line).map(|()| None)?,
                Step::Exit { .. } => Some(Stop::Exit),
                Step::Repeat { count, body, .. } => {
                    let mut stop = None;
                    for _ in 0..*count {
                        stop = self.run_steps(body)?;
                        if stop.is_some() {
                            break;
                        }
                    }
                    stop
                }
                Step::Exchange {
                    line,
                    command,
                    expect,
                } => self.exchange(*line, command, expect.as_ref())?,
            };
            if stop.is_some() {
                return Ok(stop);
            }
        }
        Ok(None)
    }

    fn exchange(
        &mut self,
        line: usize,
        command: &[script::Piece],
        expect: Option<&script::Pattern>,
    ) -> Result<Option<Stop>, String> {
        let command =
            build_command(command, &self.captures).map_err(|e| format!("line {line}: {e}"))?;
        let started = Instant::now();
        let n = self
            .slot
            .transmit(&command, &mut self.response)
            .map_err(|e| format!("line {line}: {}: {e}", hex(&command)))?;
        let micros = started.elapsed().as_micros();
        let answer = &self.response[..n];
        let mismatch = expect.and_then(|pattern| pattern.check(answer, &mut self.captures).err());
        if !self.args.json {
            println!("> {}", spaced(&command));
            println!("< {}   ({micros} µs)", spaced(answer));
            if let (Some(pattern), Some(miss)) = (expect, &mismatch) {
                println!("! line {line}: expected {pattern}, {miss}");
            }
        }
        let matched = mismatch.is_none();
        self.transcript.push(Entry::Exchange {
            line,
            command: hex(&command),
            response: hex(answer),
            micros,
            expected: expect.map(|p| p.to_string()),
            matched,
            mismatch: mismatch.map(|m| m.to_string()),
        });
        if matched {
            return Ok(None);
        }
        self.mismatches += 1;
        Ok((!self.args.keep_going).then_some(Stop::Mismatch))
    }
}
