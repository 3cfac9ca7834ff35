//! `ferroccid apdu [--reader NAME] [--protocol t0|t1|any] [--json] <HEX>...`:
//! power the card, select the protocol, send each command APDU and print
//! each response.
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use ferroccid::{open_name, OpenedDevice, Transport};
use ferroccid::{ProtocolPreference, Reader};
use ferroccid_trace::capture::CapturingTransport;

use super::list::resolve;

/// Arguments of `ferroccid apdu`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A device name (`sim`, `sim:PROFILE`, `usb:VVVV/PPPP…`, `usbip:…`) or a
    /// unique part of a reader's name as `ferroccid list` shows it.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// The transmission protocol to select.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Any)]
    pub protocol: ProtocolArg,
    /// Print a JSON array of `{command, response, sw, micros}` objects;
    /// `response` is the whole response APDU (data and SW1 SW2), as in the
    /// text output, and `sw` its last two bytes.
    #[arg(long)]
    pub json: bool,
    /// Also write the USB traffic to this pcapng file (usbmon link type:
    /// Wireshark's USB CCID dissector and `ferroccid trace` read it).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Command APDUs in hex, one per argument (`:` or `_` may separate bytes).
    #[arg(required = true, value_name = "HEX")]
    pub apdus: Vec<String>,
}

/// `--protocol` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolArg {
    /// T=0.
    T0,
    /// T=1.
    T1,
    /// The card's first offered protocol the reader supports.
    Any,
}

impl From<ProtocolArg> for ProtocolPreference {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::T0 => ProtocolPreference::T0,
            ProtocolArg::T1 => ProtocolPreference::T1,
            ProtocolArg::Any => ProtocolPreference::Any,
        }
    }
}

/// Largest response APDU: 65536 data bytes (extended Le 0000) and SW1 SW2.
const MAX_RESPONSE: usize = 65536 + 2;

/// Run `ferroccid apdu`.
pub fn run(args: Args) -> ExitCode {
    match exchange(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferroccid apdu: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One exchanged APDU, as `--json` prints it.
#[derive(serde::Serialize)]
struct Exchanged {
    command: String,
    response: String,
    sw: String,
    micros: u128,
}

fn exchange(args: &Args) -> Result<(), String> {
    // Check every APDU before touching the card.
    let commands = args
        .apdus
        .iter()
        .enumerate()
        .map(|(i, text)| parse_apdu(text).map_err(|e| format!("APDU #{}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let (reader, _device, capture) = open_reader_with(&args.reader, args.pcap.as_deref())?;
    let slot = reader
        .slot(0)
        .map_err(|e| format!("{}: {e}", reader.info().name))?;
    slot.power_on().map_err(|e| format!("power on: {e}"))?;
    slot.set_protocol(args.protocol.into())
        .map_err(|e| format!("protocol selection ({:?}): {e}", args.protocol))?;
    let mut response = vec![0u8; MAX_RESPONSE];
    let mut exchanged = Vec::with_capacity(commands.len());
    for command in &commands {
        let started = Instant::now();
        let n = slot
            .transmit(command, &mut response)
            .map_err(|e| format!("APDU {}: {e}", hex(command)))?;
        let micros = started.elapsed().as_micros();
        let answer = &response[..n];
        if args.json {
            exchanged.push(Exchanged {
                command: hex(command),
                response: hex(answer),
                sw: hex(&answer[n.saturating_sub(2)..]),
                micros,
            });
        } else {
            println!("{}", hex(answer));
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&exchanged).map_err(|e| e.to_string())?;
        println!("{text}");
    }
    check_capture(capture.as_ref(), args.pcap.as_deref())
}

/// Opens `--reader NAME` and the reader on it. The opened device is
/// returned too: for the simulator it holds the handle that keeps faults
/// and card events reachable.
pub fn open_reader(name: &str) -> Result<(Reader, OpenedDevice), String> {
    open_reader_with(name, None).map(|(reader, device, _)| (reader, device))
}

/// A `--pcap FILE` capture around a reader's transport.
pub type Capture = CapturingTransport<BufWriter<File>>;

/// [`open_reader`], with the USB traffic written to `pcap` if given (a
/// pcapng that Wireshark and `ferroccid trace` read).
pub fn open_reader_with(
    name: &str,
    pcap: Option<&Path>,
) -> Result<(Reader, OpenedDevice, Option<Arc<Capture>>), String> {
    let device_name = resolve(name)?;
    let device = open_name(&device_name).map_err(|e| format!("cannot open {device_name}: {e}"))?;
    let (transport, capture): (Arc<dyn Transport>, _) = match pcap {
        Some(path) => {
            let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let capture = Capture::new(device.transport.clone(), BufWriter::new(file))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let capture = Arc::new(capture);
            (capture.clone() as Arc<dyn Transport>, Some(capture))
        }
        None => (device.transport.clone(), None),
    };
    let reader = Reader::open(transport)
        .map_err(|e| format!("{device_name} is not a usable CCID reader: {e}"))?;
    Ok((reader, device, capture))
}

/// Says so if writing the capture failed (the exchanges went on).
pub fn check_capture(capture: Option<&Arc<Capture>>, pcap: Option<&Path>) -> Result<(), String> {
    match (capture, pcap) {
        (Some(capture), Some(path)) if capture.write_failed() => Err(format!(
            "{}: writing the capture failed; it is incomplete",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// A command APDU in hex: at least CLA INS P1 P2, at most an extended
/// case-4 APDU (4 + 3 + 65535 + 3 bytes).
pub fn parse_apdu(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b':' | b'_' | b' '))
        .collect();
    if let Some(bad) = digits.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "{:?} is not a hex digit (character {} of {text:?})",
            char::from(digits[bad]),
            bad + 1
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
        .collect();
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes; a command APDU has at least CLA INS P1 P2",
            bytes.len()
        ));
    }
    if bytes.len() > 4 + 3 + 65535 + 3 {
        return Err(format!("{} bytes is longer than any APDU", bytes.len()));
    }
    Ok(bytes)
}

fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Upper-case hex with a space between bytes, as scriptor prints.
pub fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Upper-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
