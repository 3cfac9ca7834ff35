//! `ferroccid demo`: the main job of a smart-card driver, shown on the
//! default simulated reader — list it, power the card and decode its ATR,
//! negotiate the protocol, then work with the card through the ISO 7816-4
//! service layer (`ferroccid_card`): select, read, verify a PIN, get a
//! challenge, authenticate. Every APDU is printed with its timing.
//!
//! The negotiation is reported from the CCID frames actually sent (a
//! transport wrapper records them while `set_protocol` runs), not from
//! what the driver intended.
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferroccid::ccid::ClassDescriptor;
use ferroccid::open;
use ferroccid::protocols::atr::Atr;
use ferroccid::{ProtocolPreference, Reader, ReaderError, Slot};
use ferroccid::{Tap, TapHooks};
use ferroccid_card::{
    CardChannel, CardError, CardManager, CardState, ChannelError, ChannelStatus, Disposition, Ef,
    Error, Initialization, Pin, Protocol, ProtocolChoice, Selection,
};
use ferroccid_sim::card::app::internal_authenticate;
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::DEMO_AID;

use super::apdu::hex;

/// Arguments of `ferroccid demo` (none: it always uses the default `sim`
/// reader, whose card carries the demo personalisation).
#[derive(clap::Args, Debug)]
pub struct Args {}

/// PIN reference of the demo application's PIN (VERIFY P2).
const PIN_REFERENCE: u8 = 0x81;
/// The demo card's PIN.
const DEMO_PIN: &str = "123456";

/// Run `ferroccid demo`.
pub fn run(_args: Args) -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferroccid demo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), String> {
    let opened = open("sim").map_err(|e| format!("cannot open the simulated reader: {e}"))?;
    let recorder = Arc::new(Tap::new(opened.transport.clone(), FrameLog::default()));
    let reader = Reader::open(recorder.clone()).map_err(|e| format!("open reader: {e}"))?;

    heading("1. The reader");
    print_reader(&reader);

    heading("2. Power on and the Answer-to-Reset (ISO/IEC 7816-3 §8)");
    let slot = reader.slot(0).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let atr = slot.power_on().map_err(|e| format!("power on: {e}"))?;
    println!(
        "  ATR {}  ({})",
        hex(atr.as_bytes()),
        micros(started.elapsed())
    );
    print_atr(&atr);

    heading("3. Protocol and parameters");
    recorder.hooks().start();
    let started = Instant::now();
    let protocol = slot
        .set_protocol(ProtocolPreference::Any)
        .map_err(|e| format!("protocol selection: {e}"))?;
    let took = started.elapsed();
    println!("  selected T={protocol}  ({})", micros(took));
    for line in describe_negotiation(&recorder.hooks().stop()) {
        println!("  {line}");
    }

    let log = Arc::new(Mutex::new(Vec::new()));
    let channel = SlotChannel {
        slot: slot.clone(),
        reader_name: reader.info().name.clone(),
        log: log.clone(),
    };
    let card = CardManager::attach_by_handle(channel, Default::default())
        .map_err(|e| format!("attach: {e}"))?;
    let files = card.file_access();
    let step = |title: &str| {
        log.lock().unwrap_or_else(PoisonError::into_inner).clear();
        heading(title);
    };
    let show_apdus = || {
        for entry in log.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            println!("  > {}", entry.command);
            println!("  < {}  ({})", entry.response, micros(entry.took));
        }
    };

    step("4. Select the MF and read EF 2F00 (ISO/IEC 7816-4 §11.2, §11.3)");
    let mf = files
        .select(Selection::Mf)
        .map_err(|e| format!("SELECT MF: {e}"));
    show_apdus();
    if let Some(fid) = mf?.and_then(|info| info.fid) {
        println!("  selected the MF, FID {fid:04X}");
    }
    // The FCP gives the file's size: read exactly that, no probing past the end.
    let size_2f00 = files
        .select(Selection::Fid(0x2F00))
        .map_err(|e| format!("SELECT 2F00: {e}"))?
        .and_then(|info| info.size)
        .and_then(|size| usize::try_from(size).ok());
    let text = files
        .read_binary(Ef::Current, 0, size_2f00)
        .map_err(|e| format!("READ BINARY 2F00: {e}"));
    show_apdus();
    println!(
        "  EF 2F00 says: {}",
        String::from_utf8_lossy(&text?).trim_end()
    );

    step("5. Select the application by AID and try its PIN-protected file");
    let df = files
        .select(Selection::DfName(DEMO_AID))
        .map_err(|e| format!("SELECT by AID: {e}"));
    show_apdus();
    df?;
    println!("  selected DF {}", hex(DEMO_AID));
    let size_5001 = files
        .select(Selection::Fid(0x5001))
        .map_err(|e| format!("SELECT 5001: {e}"))?
        .and_then(|info| info.size)
        .and_then(|size| usize::try_from(size).ok());
    let refused = files.read_binary(Ef::Current, 0, size_5001);
    show_apdus();
    match refused {
        Err(Error::Status { sw, error }) => {
            println!("  EF 5001 before VERIFY: refused with {sw} ({error:?})")
        }
        Ok(_) => return Err("EF 5001 was readable without the PIN".into()),
        Err(e) => return Err(format!("READ BINARY 5001: {e}")),
    }

    step("6. Verify the PIN (ISO/IEC 7816-4 §11.5.6)");
    let verifier = card.verifier();
    match verifier.verify(PIN_REFERENCE, &Pin::from("000000")) {
        Err(Error::Status {
            error: CardError::WrongPin { tries_left },
            sw,
        }) => {
            show_apdus();
            println!("  wrong PIN 000000: {sw}, {tries_left} tries left");
        }
        other => {
            show_apdus();
            return Err(format!("a wrong PIN was not refused: {other:?}"));
        }
    }
    let verified = verifier
        .verify(PIN_REFERENCE, &Pin::from(DEMO_PIN))
        .map_err(|e| format!("VERIFY {DEMO_PIN}: {e}"));
    show_apdus();
    verified?;
    println!("  PIN {DEMO_PIN} verified");

    step("7. Read the protected file");
    let secret = files
        .read_binary(Ef::Current, 0, size_5001)
        .map_err(|e| format!("READ BINARY 5001: {e}"));
    show_apdus();
    println!(
        "  EF 5001 says: {}",
        String::from_utf8_lossy(&secret?).trim_end()
    );

    step("8. GET CHALLENGE and INTERNAL AUTHENTICATE (ISO/IEC 7816-4 §11.5)");
    let auth = card.authenticator();
    let challenge = auth
        .get_challenge(8)
        .map_err(|e| format!("GET CHALLENGE: {e}"));
    show_apdus();
    println!("  the card's random challenge: {}", hex(&challenge?));
    let host_challenge: Vec<u8> = b"ferroccid demo challenge".to_vec();
    let answer = auth
        .internal_authenticate(0x00, 0x00, &host_challenge, 32)
        .map_err(|e| format!("INTERNAL AUTHENTICATE: {e}"));
    show_apdus();
    let answer = answer?;
    // The simulated card's function is documented (HMAC-SHA-256 with its
    // preset key), so the host can check the cryptogram.
    let expected = internal_authenticate(PRESET_AUTH_KEY, &host_challenge, 32);
    if answer != expected {
        return Err(format!(
            "the card's cryptogram {} is not HMAC-SHA-256 of the challenge under its key",
            hex(&answer)
        ));
    }
    println!("  cryptogram matches HMAC-SHA-256 under the card's key: authenticated");

    heading("9. Power off");
    card.detach(Disposition::Unpower)
        .map_err(|e| format!("power off: {e}"))?;
    println!("  card powered off; done.");
    Ok(())
}

fn heading(title: &str) {
    println!("\n{title}");
}

fn micros(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

fn print_reader(reader: &Reader) {
    let info = reader.info();
    let d: &ClassDescriptor = reader.descriptor();
    println!(
        "  {} {} (simulated), {:04X}:{:04X}, device name {}",
        info.manufacturer.as_deref().unwrap_or("?"),
        info.product.as_deref().unwrap_or("CCID reader"),
        info.vendor_id,
        info.product_id,
        info.name
    );
    println!(
        "  exchange level {}, {} slot(s), protocols{}{}, max message {} bytes, max IFSD {}",
        d.exchange_level().as_str(),
        d.slot_count(),
        if d.supports_t0() { " T=0" } else { "" },
        if d.supports_t1() { " T=1" } else { "" },
        d.max_message_length,
        d.max_ifsd
    );
    if !reader.data_rates().is_empty() {
        println!(
            "  {} data rates ({}..{} bps), clocks {:?} kHz",
            reader.data_rates().len(),
            reader.data_rates().iter().min().unwrap_or(&0),
            reader.data_rates().iter().max().unwrap_or(&0),
            reader.clock_frequencies()
        );
    }
}

fn print_atr(atr: &Atr) {
    let protocols: Vec<String> = atr.protocols().iter().map(|t| format!("T={t}")).collect();
    println!(
        "  convention {:?}, protocols {}, default T={}",
        atr.convention(),
        protocols.join(" "),
        atr.default_protocol()
    );
    println!(
        "  TA1 {:02X}: Fi {} / Di {} (f max {} kHz), extra guard time N {}",
        atr.effective_ta1(),
        atr.fi(),
        atr.di(),
        atr.f_max_khz(),
        atr.n()
    );
    match atr.specific_mode() {
        Some(mode) => println!("  specific mode, T={}", mode.protocol),
        None => println!("  negotiable mode (PPS allowed)"),
    }
    if atr.protocols().contains(0) {
        println!("  T=0: WI {}", atr.wi());
    }
    if atr.protocols().contains(1) {
        println!(
            "  T=1: IFSC {}, BWI {}, CWI {}, EDC {:?}",
            atr.ifsc(),
            atr.bwi(),
            atr.cwi(),
            atr.edc()
        );
    }
    println!(
        "  historical bytes {} {:?}",
        hex(atr.historical()),
        String::from_utf8_lossy(atr.historical())
    );
}

/// What the recorded frames of a protocol selection did, one line each.
fn describe_negotiation(frames: &[Frame]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut sent = frames.iter().peekable();
    while let Some((direction, frame)) = sent.next() {
        if *direction != Direction::Out || frame.len() < 10 {
            continue;
        }
        let data = &frame[10..];
        let answer = match sent.peek() {
            Some((Direction::In, a)) if a.len() >= 10 => &a[10..],
            _ => &[][..],
        };
        match frame[0] {
            0x6F if data.first() == Some(&0xFF) => lines.push(format!(
                "PPS request {} → card answered {}{}",
                hex(data),
                hex(answer),
                if answer == data { " (accepted)" } else { "" }
            )),
            0x6F if data.get(1) == Some(&0xC1) && data.len() >= 4 => lines.push(format!(
                "T=1 S(IFS request) IFSD {} → card answered {}",
                data[3],
                hex(answer)
            )),
            0x61 => lines.push(describe_set_parameters(frame[7], data)),
            0x73 if data.len() >= 8 => lines.push(format!(
                "SetDataRateAndClockFrequency: clock {} kHz, {} bps",
                u32::from_le_bytes([data[0], data[1], data[2], data[3]]),
                u32::from_le_bytes([data[4], data[5], data[6], data[7]])
            )),
            other => lines.push(format!("CCID message {other:02X}: {}", hex(frame))),
        }
    }
    if lines.is_empty() {
        lines.push("the reader needed no PPS and no parameters (it sets them itself)".into());
    }
    lines
}

/// PC_to_RDR_SetParameters abProtocolDataStructure (CCID §6.1.7).
fn describe_set_parameters(protocol: u8, data: &[u8]) -> String {
    match (protocol, data) {
        (0, [fd, tcck, guard, wi, _clock, ..]) => format!(
            "SetParameters T=0: Fi/Di {fd:02X}, {} convention, guard time {guard}, WI {wi}",
            if tcck & 0x02 != 0 {
                "inverse"
            } else {
                "direct"
            }
        ),
        (1, [fd, tcck, guard, waiting, _clock, ifsc, ..]) => format!(
            "SetParameters T=1: Fi/Di {fd:02X}, {}, guard time {guard}, BWI {} CWI {}, IFSC {ifsc}",
            if tcck & 0x01 != 0 { "CRC" } else { "LRC" },
            waiting >> 4,
            waiting & 0x0F
        ),
        _ => format!("SetParameters T={protocol}: {}", hex(data)),
    }
}

/// A bulk frame and which way it went.
type Frame = (Direction, Vec<u8>);

/// Which way a recorded frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Out,
    In,
}

/// Hooks for a [`Tap`] that, while started, keep a copy of the bulk
/// frames, so the demo can say what the negotiation sent.
#[derive(Default)]
struct FrameLog {
    frames: Mutex<Option<Vec<Frame>>>,
}

impl FrameLog {
    fn start(&self) {
        *self.frames.lock().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
    }

    fn stop(&self) -> Vec<Frame> {
        self.frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }

    fn record(&self, direction: Direction, frame: &[u8]) {
        if let Some(frames) = self
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            frames.push((direction, frame.to_vec()));
        }
    }
}

impl TapHooks for FrameLog {
    fn on_bulk_out(&self, message: &[u8]) {
        self.record(Direction::Out, message);
    }

    fn on_bulk_in(&self, frame: &[u8]) {
        // Time extensions are not answers: keep only final frames.
        if frame.get(7).is_none_or(|status| status >> 6 != 2) {
            self.record(Direction::In, frame);
        }
    }
}

/// One APDU as the demo prints it.
struct Logged {
    command: String,
    response: String,
    took: Duration,
}

/// The service layer's channel over one slot. The demo is the slot's only
/// user, so transactions have nothing to exclude and always succeed.
struct SlotChannel {
    slot: Slot,
    reader_name: String,
    log: Arc<Mutex<Vec<Logged>>>,
}

fn channel_error(e: ReaderError) -> ChannelError {
    match e {
        ReaderError::NoCard => ChannelError::NoCard,
        ReaderError::NotPowered => ChannelError::Unpowered,
        ReaderError::Timeout { .. } => ChannelError::Timeout,
        ReaderError::Cancelled => ChannelError::Cancelled,
        ReaderError::DeviceGone => ChannelError::ReaderUnavailable,
        ReaderError::ResponseTooLong { needed, .. } => ChannelError::BufferTooSmall { needed },
        other => ChannelError::Other(other.to_string()),
    }
}

impl CardChannel for SlotChannel {
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
        let started = Instant::now();
        let n = self.slot.transmit(cmd, resp).map_err(channel_error)?;
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Logged {
                command: hex(cmd),
                response: hex(&resp[..n]),
                took: started.elapsed(),
            });
        Ok(n)
    }

    fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
        let status = self.slot.status().map_err(channel_error)?;
        let atr = self.slot.atr();
        Ok(ChannelStatus {
            reader: self.reader_name.clone(),
            state: match (status.present, status.powered) {
                (false, _) => CardState::Absent,
                (true, false) => CardState::Swallowed,
                (true, true) if self.slot.protocol().is_some() => CardState::Specific,
                (true, true) => CardState::Negotiable,
            },
            present: status.present,
            powered: status.powered,
            protocol: self.slot.protocol().map(|t| match t {
                0 => Protocol::T0,
                1 => Protocol::T1,
                other => Protocol::Other(other),
            }),
            atr: atr.map(|a| a.as_bytes().to_vec()).unwrap_or_default(),
        })
    }

    fn reconnect(
        &mut self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError> {
        if init == Initialization::Cold {
            self.slot.power_off().map_err(channel_error)?;
        }
        if init != Initialization::Leave || self.slot.atr().is_none() {
            self.slot.power_on().map_err(channel_error)?;
        }
        let preference = match protocol {
            ProtocolChoice::Any => ProtocolPreference::Any,
            ProtocolChoice::T0 => ProtocolPreference::T0,
            ProtocolChoice::T1 => ProtocolPreference::T1,
        };
        self.slot.set_protocol(preference).map_err(channel_error)?;
        self.status()
    }

    fn disconnect(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        match disposition {
            Disposition::Leave => Ok(()),
            Disposition::Reset => self.slot.reset().map(drop).map_err(channel_error),
            Disposition::Unpower | Disposition::Eject => {
                self.slot.power_off().map_err(channel_error)
            }
        }
    }

    fn begin_transaction(&mut self, _timeout: Option<Duration>) -> Result<(), ChannelError> {
        Ok(())
    }

    fn end_transaction(&mut self, _disposition: Disposition) -> Result<(), ChannelError> {
        Ok(())
    }
}
