//! `ferroccid descriptor <HEX | --reader NAME> [--json]`: decode a CCID class descriptor.
use std::path::PathBuf;
use std::process::ExitCode;

use ferroccid::ccid::descriptor::features;
use ferroccid::ccid::ClassDescriptor;
use ferroccid::open;
use ferroccid::DeviceName;

/// Arguments of `ferroccid descriptor`.
#[derive(clap::Args)]
pub struct Args {
    /// The 54 descriptor bytes as hex (spaces and colons allowed).
    #[arg(required_unless_present = "reader", conflicts_with = "reader")]
    pub hex: Vec<String>,
    /// A live reader by device name (`usb:…`, `usbip:…`, `sim…`, as
    /// `ferroccid list` shows it), else a known reader of the corpus by file
    /// name stem (e.g. ACR122U) or VID:PID (e.g. 072F:90CC), else a unique
    /// part of a connected reader's name.
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// Print one JSON object instead of the human-readable decode.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Print the descriptor's bytes as hex instead of decoding them (to
    /// compare with another view, e.g. sysfs `descriptors`).
    #[arg(long)]
    pub raw: bool,
}

/// Run `ferroccid descriptor`.
pub fn run(args: Args) -> ExitCode {
    match decode(&args) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ferroccid descriptor: {message}");
            ExitCode::FAILURE
        }
    }
}

fn decode(args: &Args) -> Result<String, String> {
    let bytes = match &args.reader {
        Some(name) => reader_descriptor(name)?,
        None => parse_hex(&args.hex.join(" "))?,
    };
    let d = ClassDescriptor::parse(&bytes).map_err(|e| e.to_string())?;
    Ok(if args.raw {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    } else if args.json {
        json(&d).to_string()
    } else {
        human(&d)
    })
}

/// Parse hex with optional spaces, colons or a `0x` per byte.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .map(|t| t.trim_start_matches("0x").trim_start_matches("0X"))
        .collect();
    if digits.is_empty() {
        return Err("no descriptor bytes given".into());
    }
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("byte {} is not hex: {c:?}", i / 2));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0))
        .collect())
}

/// The descriptor `--reader NAME` stands for: a device name is opened and its
/// interface's class descriptor read as the USB backend returned it; other
/// names try the corpus first, then the connected readers' names.
fn reader_descriptor(name: &str) -> Result<Vec<u8>, String> {
    if name
        .parse::<DeviceName>()
        .is_ok_and(|parsed| ferroccid::can_open(&parsed))
    {
        return live_descriptor(name);
    }
    lookup_reader(name).or_else(|corpus_error| match super::list::resolve(name) {
        Ok(device) => live_descriptor(&device.to_string()),
        Err(live_error) => Err(format!("{corpus_error}; {live_error}")),
    })
}

fn live_descriptor(name: &str) -> Result<Vec<u8>, String> {
    let device = open(name).map_err(|e| format!("cannot open {name}: {e}"))?;
    device
        .transport
        .info()
        .class_descriptor
        .clone()
        .ok_or_else(|| format!("{name} has no CCID class descriptor"))
}

/// The corpus table: `FERROCCID_CORPUS` if set, else `../shared/corpus` next to the repository.
fn corpus_tsv() -> PathBuf {
    std::env::var_os("FERROCCID_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
        .join("reader-class-descriptors.tsv")
}

fn lookup_reader(name: &str) -> Result<Vec<u8>, String> {
    let path = corpus_tsv();
    let table = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the reader corpus {}: {e}", path.display()))?;
    let mut matches = table.lines().filter_map(|row| {
        let cols: Vec<&str> = row.split('\t').collect();
        let [file, index, vid_pid, hex] = cols[..] else {
            return None;
        };
        let stem = file.strip_suffix(".txt").unwrap_or(file);
        (stem.eq_ignore_ascii_case(name) || vid_pid.eq_ignore_ascii_case(name)).then(|| {
            (
                format!("{stem} interface {index} ({vid_pid})"),
                hex.to_string(),
            )
        })
    });
    let (label, hex) = matches
        .next()
        .ok_or_else(|| format!("no reader named {name:?} in {}", path.display()))?;
    let others = matches.count();
    if others > 0 {
        eprintln!("{name}: using {label}; {others} other interface(s) also match");
    }
    parse_hex(&hex)
}

fn json(d: &ClassDescriptor) -> serde_json::Value {
    serde_json::json!({
        "bcd_ccid": d.version_string(),
        "max_slot_index": d.max_slot_index,
        "voltage_support": d.voltage_support,
        "protocols": d.protocols,
        "default_clock_khz": d.default_clock_khz,
        "maximum_clock_khz": d.maximum_clock_khz,
        "num_clock_supported": d.num_clock_supported,
        "data_rate": d.data_rate,
        "max_data_rate": d.max_data_rate,
        "num_data_rates_supported": d.num_data_rates_supported,
        "max_ifsd": d.max_ifsd,
        "synch_protocols": d.synch_protocols,
        "mechanical": d.mechanical,
        "features": d.features,
        "exchange_level": d.exchange_level().as_str(),
        "max_message_length": d.max_message_length,
        "class_get_response": d.class_get_response,
        "class_envelope": d.class_envelope,
        "lcd_layout": d.lcd_layout,
        "pin_support": d.pin_support,
        "max_busy_slots": d.max_busy_slots,
    })
}

/// Names of the set bits of `value` from `table`, or `none`.
fn bits(value: u32, table: &[(u32, &str)]) -> String {
    let names: Vec<&str> = table
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn human(d: &ClassDescriptor) -> String {
    let mut out = Vec::new();
    let vendor_note = if d.descriptor_type == 0xFF {
        " (vendor-specific, pre-standard reader)"
    } else {
        ""
    };
    out.push(format!(
        "bDescriptorType         0x{:02X}{vendor_note}",
        d.descriptor_type
    ));
    out.push(format!("bcdCCID                 {}", d.version_string()));
    out.push(format!(
        "bMaxSlotIndex           {} ({} slot(s))",
        d.max_slot_index,
        d.slot_count()
    ));
    out.push(format!(
        "bVoltageSupport         0x{:02X}: {}",
        d.voltage_support,
        bits(
            u32::from(d.voltage_support),
            &[(1, "5.0V"), (2, "3.0V"), (4, "1.8V")]
        )
    ));
    out.push(format!(
        "dwProtocols             0x{:08X}: {}",
        d.protocols,
        bits(d.protocols, &[(1, "T=0"), (2, "T=1")])
    ));
    out.push(format!(
        "dwDefaultClock          {} kHz",
        d.default_clock_khz
    ));
    out.push(format!(
        "dwMaximumClock          {} kHz",
        d.maximum_clock_khz
    ));
    out.push(format!("bNumClockSupported      {}", d.num_clock_supported));
    out.push(format!("dwDataRate              {} bps", d.data_rate));
    out.push(format!("dwMaxDataRate           {} bps", d.max_data_rate));
    out.push(format!(
        "bNumDataRatesSupported  {}",
        d.num_data_rates_supported
    ));
    out.push(format!("dwMaxIFSD               {}", d.max_ifsd));
    out.push(format!(
        "dwSynchProtocols        0x{:08X}: {}",
        d.synch_protocols,
        bits(
            d.synch_protocols,
            &[
                (1, "2-wire protocol"),
                (2, "3-wire protocol"),
                (4, "I2C protocol")
            ]
        )
    ));
    out.push(format!(
        "dwMechanical            0x{:08X}: {}",
        d.mechanical,
        bits(
            d.mechanical,
            &[
                (1, "card accept"),
                (2, "card ejection"),
                (4, "card capture"),
                (8, "card lock/unlock")
            ]
        )
    ));
    out.push(format!("dwFeatures              0x{:08X}", d.features));
    for (bit, name) in features::FLAGS {
        let mark = if d.features & bit != 0 { "x" } else { " " };
        out.push(format!("  [{mark}] 0x{bit:08X} {name}"));
    }
    let level = match d.exchange_level() {
        ferroccid::ccid::ExchangeLevel::Character => "character",
        ferroccid::ccid::ExchangeLevel::Tpdu => "TPDU",
        ferroccid::ccid::ExchangeLevel::ShortApdu => "short APDU",
        ferroccid::ccid::ExchangeLevel::ExtendedApdu => "short and extended APDU",
    };
    let validity = if d.exchange_level_is_valid() {
        ""
    } else {
        " (level bits invalid, treated as character)"
    };
    out.push(format!(
        "  exchange level 0x{:08X}: {level}{validity}",
        d.features & features::EXCHANGE_LEVEL_MASK
    ));
    let unknown = d.features
        & !(features::FLAGS.iter().map(|(b, _)| b).fold(0, |a, b| a | b)
            | features::EXCHANGE_LEVEL_MASK);
    if unknown != 0 {
        out.push(format!("  unknown bits 0x{unknown:08X}"));
    }
    out.push(format!(
        "dwMaxCCIDMessageLength  {} bytes",
        d.max_message_length
    ));
    let class = |c: u8| {
        if c == 0xFF {
            "0xFF (echoes the APDU class)".to_string()
        } else {
            format!("0x{c:02X}")
        }
    };
    out.push(format!(
        "bClassGetResponse       {}",
        class(d.class_get_response)
    ));
    out.push(format!(
        "bClassEnvelope          {}",
        class(d.class_envelope)
    ));
    out.push(format!(
        "wLcdLayout              0x{:04X}: {}",
        d.lcd_layout,
        if d.lcd_layout == 0 {
            "no LCD".to_string()
        } else {
            format!("{} lines x {} characters", d.lcd_lines(), d.lcd_columns())
        }
    ));
    out.push(format!(
        "bPINSupport             0x{:02X}: {}",
        d.pin_support,
        bits(
            u32::from(d.pin_support),
            &[(1, "PIN verification"), (2, "PIN modification")]
        )
    ));
    out.push(format!("bMaxCCIDBusySlots       {}", d.max_busy_slots));
    out.join("\n")
}
