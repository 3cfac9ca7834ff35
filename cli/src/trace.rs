//! `ferroccid trace FILE [--json]`: one line per CCID message found in a Linux usbmon
//! capture (pcap with DLT 220 `LINUX_USB_MMAPPED` or DLT 189 `LINUX_USB`, or pcapng, as
//! written by QEMU's `usb-ccid,pcap=`, tshark and dumpcap) or in a libccid debug log
//! (`-> 000000 62 00 …`, `<- 000000 80 …`, `-> lun: 0, …`), with the header fields and
//! what an XfrBlock carries: a T=1 block, or a T=0 TPDU / APDU.
//!
//! The protocol inside XfrBlocks is not in the messages themselves: it is taken from
//! the last SetParameters/Parameters `bProtocolNum`, else from the ATR of the last
//! IccPowerOn answer, else a payload that is a well-formed T=1 block (correct LRC) is
//! shown as one.
//!
//! Reading the files is `ferroccid_trace` (library, fuzzed); this file only renders.
use super::apdu::spaced as hex;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ferroccid::ccid::trace::describe;
use ferroccid::ccid::{Message, MessageType, Status, HEADER_LEN};
use ferroccid::protocols::edc::Edc;
use ferroccid::protocols::t1::block::{Block, BlockKind, SKind};
use ferroccid_trace::{read_frames, Direction, Frame};
use serde_json::{json, Value};

/// Arguments of `ferroccid trace`.
#[derive(clap::Args)]
pub struct Args {
    /// A usbmon pcap/pcapng capture or a libccid debug log.
    pub file: PathBuf,
    /// Print one JSON object per message (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `ferroccid trace`.
pub fn run(args: Args) -> ExitCode {
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ferroccid trace: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let frames = match read_frames(&data) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ferroccid trace: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut decoder = Decoder::default();
    let mut out = std::io::stdout().lock();
    for (index, frame) in frames.iter().enumerate() {
        let (text, value) = decoder.decode(index + 1, frame);
        let line = if args.json { value.to_string() } else { text };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::SUCCESS; // reader went away (e.g. `| head`)
        }
    }
    if !args.json {
        let _ = writeln!(out, "{} CCID messages", frames.len());
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------- decoding

/// Protocol state carried from message to message.
#[derive(Default)]
pub(crate) struct Decoder {
    /// T=0 or T=1 as negotiated (SetParameters / Parameters) or implied by the ATR.
    protocol: Option<u8>,
    /// The last host-to-reader message type, to know what a response answers.
    last_command: Option<MessageType>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl Decoder {
    /// A bulk message as the live log shows it (`ferroccid -vvv`): the same
    /// text as a line of `trace`, on one line, without index and time.
    /// `redacted`: some bytes were masked and read as 00.
    pub(crate) fn describe_live(&mut self, bytes: &[u8], redacted: bool) -> String {
        let fields = self.bulk(bytes, redacted, &mut json!({}));
        let mut lines = fields.lines().map(str::trim);
        let mut text = lines.next().unwrap_or_default().to_owned();
        for inner in lines {
            text.push_str(" | ");
            text.push_str(inner.trim_start_matches("| "));
        }
        text
    }

    fn decode(&mut self, index: usize, frame: &Frame) -> (String, Value) {
        let time = frame
            .time_us
            .map(|t| format!("{:>6}.{:06}", t / 1_000_000, t % 1_000_000));
        let mut value = json!({
            "index": index,
            "time_us": frame.time_us,
            "direction": frame.direction.as_str(),
            "source": frame.source,
            "bytes": hex(&frame.bytes),
        });
        if frame.redacted {
            value["redacted"] = json!(true);
        }
        let fields = match frame.direction {
            Direction::Interrupt => interrupt(&frame.bytes, &mut value),
            _ => self.bulk(&frame.bytes, frame.redacted, &mut value),
        };
        let text = format!(
            "{index:>4} {} {:<3} {fields}{}",
            time.unwrap_or_default(),
            frame.direction.as_str(),
            if frame.redacted {
                " [redacted bytes shown as 00]"
            } else {
                ""
            }
        );
        (text, value)
    }

    /// A bulk message: header fields, then the payload decoded by message type.
    fn bulk(&mut self, b: &[u8], redacted: bool, value: &mut Value) -> String {
        let message = match Message::new_checked(b) {
            Ok(m) => m,
            Err(e) => {
                // Still useful: name what can be named (QEMU's Parameters answer, for one,
                // declares dwLength 0 and carries 7 bytes; that passes).
                value["error"] = json!(e.to_string());
                return format!("{} [invalid: {e}]", describe(b));
            }
        };
        let kind = message.message_type();
        let payload = message.payload();
        value["type"] = json!(kind.name());
        value["message_type"] = json!(b[0]);
        value["slot"] = json!(message.slot());
        value["seq"] = json!(message.seq());
        value["length"] = json!(message.length());
        let mut text = format!(
            "{} slot={} seq={} len={}",
            kind.name(),
            message.slot(),
            message.seq(),
            message.length()
        );
        let specific = message.specific();
        if kind.is_command() {
            value["specific"] = json!(hex(&specific));
            let extra = match kind {
                MessageType::IccPowerOn => {
                    let v = ["auto", "5.0V", "3.0V", "1.8V"]
                        .get(specific[0] as usize)
                        .copied()
                        .unwrap_or("?");
                    value["power_select"] = json!(specific[0]);
                    format!(" bPowerSelect={:02X} ({v})", specific[0])
                }
                MessageType::XfrBlock => {
                    value["bwi"] = json!(specific[0]);
                    value["level_parameter"] = json!(le16(b, 8));
                    format!(" bBWI={} wLevelParameter={:04X}", specific[0], le16(b, 8))
                }
                MessageType::SetParameters => {
                    self.protocol = Some(specific[0]);
                    value["protocol"] = json!(specific[0]);
                    format!(" bProtocolNum={} (T={})", specific[0], specific[0])
                }
                _ => String::new(),
            };
            text.push_str(&extra);
        } else {
            let status = message.status();
            value["status"] = json!(status.0);
            value["error"] = json!(message.error_byte());
            text.push_str(&format!(
                " bStatus={:02X} ({}) bError={:02X}",
                status.0,
                status_text(status),
                message.error_byte()
            ));
            match kind {
                MessageType::DataBlock => {
                    value["chain"] = json!(message.chain_parameter());
                    text.push_str(&format!(
                        " bChainParameter={:02X}",
                        message.chain_parameter()
                    ));
                }
                MessageType::SlotStatus => {
                    value["clock_status"] = json!(message.chain_parameter());
                    text.push_str(&format!(" bClockStatus={:02X}", message.chain_parameter()));
                }
                MessageType::Parameters => {
                    let protocol = message.chain_parameter();
                    self.protocol = Some(protocol);
                    value["protocol"] = json!(protocol);
                    text.push_str(&format!(" bProtocolNum={protocol} (T={protocol})"));
                }
                _ => {}
            }
        }
        if !payload.is_empty() {
            text.push_str(&format!(": {}", hex(payload)));
        }
        let inner = self.inner(kind, payload, redacted, value);
        if kind.is_command() {
            self.last_command = Some(kind);
        }
        if let Some(inner) = inner {
            text.push_str(&format!("\n{:>29}{inner}", "| "));
        }
        if b.len() > HEADER_LEN + payload.len() {
            let trailing = &b[HEADER_LEN + payload.len()..];
            value["trailing"] = json!(hex(trailing));
            text.push_str(&format!(
                " [{} bytes beyond dwLength: {}]",
                trailing.len(),
                hex(trailing)
            ));
        }
        text
    }

    /// What an IccPowerOn answer (ATR) or an XfrBlock/DataBlock payload carries.
    fn inner(
        &mut self,
        kind: MessageType,
        payload: &[u8],
        redacted: bool,
        value: &mut Value,
    ) -> Option<String> {
        if payload.is_empty() {
            return None;
        }
        match kind {
            MessageType::XfrBlock | MessageType::DataBlock => {}
            _ => return None,
        }
        // the answer to an IccPowerOn is the ATR
        // (or, when the capture starts after the command, a DataBlock that is a valid ATR)
        let unknown_command = self.last_command.is_none()
            && matches!(payload[0], 0x3B | 0x3F)
            && ferroccid::protocols::atr::Atr::parse(payload).is_ok();
        if kind == MessageType::DataBlock
            && (self.last_command == Some(MessageType::IccPowerOn) || unknown_command)
        {
            let protocol = first_protocol(payload);
            self.protocol = Some(protocol);
            value["atr"] = json!(hex(payload));
            return Some(format!("ATR {}, first protocol T={protocol}", hex(payload)));
        }
        // T=1 readers at APDU level carry APDUs: only a well-formed block is shown as one
        let is_block = Block::new_checked(payload, Edc::Lrc).is_ok();
        // shaped like an LRC block (NAD PCB LEN INF EDC) on a T=1 link: show why it is bad
        let block_shaped = payload.len() >= 4 && payload.len() == 4 + usize::from(payload[2]);
        if is_block && self.protocol != Some(0)
            || block_shaped && self.protocol == Some(1) && !redacted
        {
            self.protocol = Some(1);
            Some(t1_text(payload, value))
        } else if redacted
            && self.protocol != Some(0)
            && payload.len() >= 4
            && payload.len() == 4 + usize::from(payload[2])
        {
            value["t1"] = json!({"nad": payload[0], "pcb": payload[1], "inf": hex(&payload[3..payload.len() - 1])});
            Some(format!(
                "T=1 block (EDC not checked: redacted) NAD={:02X} PCB={:02X} INF: {}",
                payload[0],
                payload[1],
                hex(&payload[3..payload.len() - 1])
            ))
        } else {
            Some(t0_text(kind, payload, value))
        }
    }
}

/// The first protocol offered by an ATR: TD1's low nibble, or T=0 without TD1.
fn first_protocol(atr: &[u8]) -> u8 {
    let Some(&t0) = atr.get(1) else { return 0 };
    let skip = (t0 >> 4 & 7).count_ones() as usize; // TA1 TB1 TC1
    if t0 & 0x80 != 0 {
        atr.get(2 + skip).map(|td| td & 0x0F).unwrap_or(0)
    } else {
        0
    }
}

fn status_text(status: Status) -> &'static str {
    use ferroccid::ccid::{CommandStatus, IccStatus};
    match (status.command(), status.icc()) {
        (CommandStatus::Failed, _) => "failed",
        (CommandStatus::TimeExtension, _) => "time extension",
        (CommandStatus::Reserved, _) => "reserved command status",
        (CommandStatus::Ok, IccStatus::PresentActive) => "ok, card active",
        (CommandStatus::Ok, IccStatus::PresentInactive) => "ok, card inactive",
        (CommandStatus::Ok, IccStatus::Absent) => "ok, no card",
        (CommandStatus::Ok, IccStatus::Reserved) => "ok, reserved ICC status",
    }
}

fn t1_text(payload: &[u8], value: &mut Value) -> String {
    let block = match Block::new_checked(payload, Edc::Lrc) {
        Ok(b) => b,
        Err(e) => {
            value["t1_error"] = json!(format!("{e:?}"));
            return format!("T=1 block, invalid: {e:?}");
        }
    };
    let kind = match block.kind() {
        BlockKind::I { ns, more } => format!("I(N(S)={ns}{})", if more { ", more" } else { "" }),
        BlockKind::R { nr, error } => format!("R(N(R)={nr}, {error:?})"),
        BlockKind::S { kind, response } => {
            let name = match kind {
                SKind::Resynch => "RESYNCH",
                SKind::Ifs => "IFS",
                SKind::Abort => "ABORT",
                SKind::Wtx => "WTX",
            };
            format!(
                "S({name} {})",
                if response { "response" } else { "request" }
            )
        }
    };
    value["t1"] = json!({
        "nad": block.nad(),
        "pcb": block.pcb(),
        "kind": kind,
        "inf": hex(block.inf()),
    });
    format!(
        "T=1 {kind} NAD={:02X} PCB={:02X} INF: {}",
        block.nad(),
        block.pcb(),
        hex(block.inf())
    )
}

/// T=0 TPDU (or, at APDU level, the APDU: the same first five bytes).
fn t0_text(kind: MessageType, payload: &[u8], value: &mut Value) -> String {
    if kind == MessageType::XfrBlock && payload.len() >= 4 {
        let p3 = payload.get(4).copied();
        let data = payload.get(5..).unwrap_or_default();
        value["command"] = json!({
            "cla": payload[0], "ins": payload[1], "p1": payload[2], "p2": payload[3],
            "p3": p3, "data": hex(data),
        });
        return format!(
            "command CLA={:02X} INS={:02X} P1={:02X} P2={:02X}{}{}",
            payload[0],
            payload[1],
            payload[2],
            payload[3],
            p3.map(|p| format!(" P3={p:02X}")).unwrap_or_default(),
            if data.is_empty() {
                String::new()
            } else {
                format!(" data: {}", hex(data))
            }
        );
    }
    if kind == MessageType::DataBlock && payload.len() >= 2 {
        let (data, sw) = payload.split_at(payload.len() - 2);
        value["response"] =
            json!({ "data": hex(data), "sw": format!("{:02X}{:02X}", sw[0], sw[1]) });
        return format!(
            "response SW={:02X}{:02X}{}",
            sw[0],
            sw[1],
            if data.is_empty() {
                String::new()
            } else {
                format!(" data: {}", hex(data))
            }
        );
    }
    format!("payload {}", hex(payload))
}

/// Interrupt-IN: NotifySlotChange (0x50) with two bits per slot, HardwareError (0x51).
fn interrupt(b: &[u8], value: &mut Value) -> String {
    match b.first() {
        Some(0x50) => {
            let mut slots = Vec::new();
            for (i, byte) in b[1..].iter().enumerate() {
                for j in 0..4 {
                    let bits = byte >> (2 * j) & 3;
                    slots.push(json!({"slot": i * 4 + j, "present": bits & 1 != 0, "changed": bits & 2 != 0}));
                }
            }
            let text: Vec<String> = slots
                .iter()
                .filter(|s| s["present"] == true || s["changed"] == true)
                .map(|s| {
                    format!(
                        "slot {} {}{}",
                        s["slot"],
                        if s["present"] == true {
                            "present"
                        } else {
                            "absent"
                        },
                        if s["changed"] == true {
                            " (changed)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            value["type"] = json!("RDR_to_PC_NotifySlotChange");
            value["slots"] = json!(slots);
            format!(
                "RDR_to_PC_NotifySlotChange: {} [{}]",
                hex(&b[1..]),
                text.join(", ")
            )
        }
        Some(0x51) if b.len() == 4 => {
            value["type"] = json!("RDR_to_PC_HardwareError");
            value["slot"] = json!(b[1]);
            value["seq"] = json!(b[2]);
            value["hardware_error"] = json!(b[3]);
            format!(
                "RDR_to_PC_HardwareError slot={} seq={} code={:02X}",
                b[1], b[2], b[3]
            )
        }
        _ => {
            value["type"] = json!("unknown interrupt");
            format!("unknown interrupt message: {}", hex(b))
        }
    }
}
