//! `ferroccid list [--json]`: every CCID interface on the USB buses plus the
//! built-in simulated readers, and the `--reader NAME` resolution the other
//! subcommands share (a device name, or a unique substring of a listed
//! reader's name).
use std::process::ExitCode;

use ferroccid::ccid::ClassDescriptor;
use ferroccid::{list_usb, UsbBackend};
use ferroccid::{DeviceName, TransportInfo};
use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};

/// Arguments of `ferroccid list`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One line of the listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedReader {
    /// The reader's name: manufacturer and product strings.
    pub name: String,
    /// idVendor:idProduct, four upper-case hex digits each.
    pub vid_pid: String,
    /// bMaxSlotIndex + 1 (0 when the class descriptor is unreadable).
    pub slots: usize,
    /// "character", "tpdu", "short_apdu", "extended_apdu", or "unknown"
    /// when the class descriptor could not be read.
    pub exchange_level: String,
    /// The device name that opens it (`--reader`, pcscd's form for USB).
    pub device: String,
    /// The built-in simulator rather than hardware.
    pub simulated: bool,
}

/// Run `ferroccid list`.
pub fn run(args: Args) -> ExitCode {
    let (readers, usb_error) = readers();
    if let Some(e) = usb_error {
        eprintln!("ferroccid: USB enumeration failed ({e}); listing the simulated readers only");
    }
    if args.json {
        match serde_json::to_string_pretty(&readers) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("ferroccid: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&readers));
    }
    ExitCode::SUCCESS
}

/// USB readers first, then the simulator's built-in profiles (the bare
/// `sim` name, the default reader, first among them). The error is the USB
/// enumeration's, if it failed; the simulated readers are listed anyway.
pub fn readers() -> (Vec<ListedReader>, Option<String>) {
    let (mut out, usb_error) = match list_usb(UsbBackend::from_env()) {
        Ok(found) => (found.iter().map(from_usb).collect(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    for profile_name in BUILTIN_NAMES {
        let profile = Profile::from_name(profile_name).expect("built-in profiles exist");
        out.push(from_profile(&profile, profile_name));
    }
    (out, usb_error)
}

fn from_usb(info: &TransportInfo) -> ListedReader {
    let descriptor = info
        .class_descriptor
        .as_deref()
        .and_then(|raw| ClassDescriptor::parse(raw).ok());
    // The same name `card --reader` matches (ferroccid_card resolves it).
    let name = ferroccid_card::usb_reader_name(info);
    ListedReader {
        name,
        vid_pid: format!("{:04X}:{:04X}", info.vendor_id, info.product_id),
        slots: descriptor.map_or(0, |d| d.slot_count()),
        exchange_level: descriptor
            .map_or("unknown".into(), |d| d.exchange_level().as_str().to_owned()),
        device: info.name.clone(),
        simulated: false,
    }
}

fn from_profile(profile: &Profile, profile_name: &str) -> ListedReader {
    let d = profile.class_descriptor();
    // The default profile opens as bare `sim`, as SimTransport names it.
    let device = if profile_name == BUILTIN_NAMES[0] {
        "sim".to_owned()
    } else {
        format!("sim:{profile_name}")
    };
    let product = profile.product.as_deref().unwrap_or("CCID reader");
    ListedReader {
        name: format!("ferroccid simulator {profile_name} ({product})"),
        vid_pid: format!("{:04X}:{:04X}", profile.vendor_id, profile.product_id),
        slots: d.slot_count(),
        exchange_level: d.exchange_level().as_str().to_owned(),
        device,
        simulated: true,
    }
}

fn table(readers: &[ListedReader]) -> String {
    let name_width = readers
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<9}  {:<name_width$}  {:>5}  {:<13}  {:<9}  DEVICE\n",
        "VID:PID", "NAME", "SLOTS", "LEVEL", "KIND"
    );
    for r in readers {
        out.push_str(&format!(
            "{:<9}  {:<name_width$}  {:>5}  {:<13}  {:<9}  {}\n",
            r.vid_pid,
            r.name,
            r.slots,
            r.exchange_level,
            if r.simulated { "simulated" } else { "usb" },
            r.device
        ));
    }
    out
}

/// The device name `--reader NAME` stands for: NAME itself when it parses
/// as a device name this program opens (`sim`, `sim:PROFILE`, `usb:…`,
/// `usbip:…`; `tpdu` has a scheme's shape but none is registered), else the
/// one listed reader whose name contains NAME (case-insensitive). No match
/// and several matches are errors; the latter lists the candidates.
pub fn resolve(name: &str) -> Result<DeviceName, String> {
    if let Some(parsed) = name.parse::<DeviceName>().ok().filter(ferroccid::can_open) {
        return Ok(parsed);
    }
    let (readers, usb_error) = readers();
    let needle = name.to_lowercase();
    let matches: Vec<&ListedReader> = readers
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&needle))
        .collect();
    match matches.as_slice() {
        [one] => one
            .device
            .parse()
            .map_err(|e| format!("listed device name {:?} is invalid: {e}", one.device)),
        [] => {
            let usb_note = usb_error
                .map(|e| format!(" (USB enumeration failed: {e})"))
                .unwrap_or_default();
            Err(format!(
                "no reader matches {name:?}: it is neither a device name nor part of a listed \
                 reader's name{usb_note}; see `ferroccid list`"
            ))
        }
        several => {
            let candidates: Vec<String> = several
                .iter()
                .map(|r| format!("  {} ({})", r.name, r.device))
                .collect();
            Err(format!(
                "{name:?} matches {} readers; give more of the name or a device name:\n{}",
                several.len(),
                candidates.join("\n")
            ))
        }
    }
}
