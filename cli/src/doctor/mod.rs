//! `ferroccid doctor [--reader NAME] [--json]`: why a reader is not seen,
//! and what to do. The checks run in the order a reader travels from the
//! USB port to a PC/SC application — USB device and interfaces, CCID
//! class descriptor, device-node permissions, udev rule, the pcscd bundle
//! that takes the VID:PID, pcscd itself, the reader in PC/SC, the card —
//! and each says what it found and, when something is wrong, the command
//! that fixes it. Exit status 0 when no check failed.
//!
//! Every place looked at can be moved (`--sysfs-dir`, `--dev-dir`,
//! `--udev-dir`, `--drivers-dir`, `--pcscd-socket`, `--proc-dir`), so the
//! tests stage each fault in a temporary directory.
use std::path::PathBuf;
use std::process::ExitCode;

use ferroccid::DeviceName;

mod access;
mod bundles;
mod card;
mod pcsc;
mod pcscd;
mod report;
mod udev;
mod usb;

use pcsc::Expected;
use report::{Check, Report, Status};
use usb::UsbDevice;

/// Arguments of `ferroccid doctor`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The reader: a device name (`usb:VVVV/PPPP…`, `sim`, `sim:PROFILE`,
    /// `usbip:…`) or part of a USB device's product name. Default: the
    /// first USB device with a CCID interface.
    #[arg(long)]
    pub reader: Option<String>,
    /// Print one JSON object: `{reader, usable, checks: [{name, status,
    /// detail, advice}]}`, status one of pass, warn, fail, not_applicable.
    #[arg(long)]
    pub json: bool,
    /// The reader's name in PC/SC, or part of it (default: the name the
    /// bundle pcscd uses gives it; for reader.conf readers, one ending
    /// with the device name).
    #[arg(long, value_name = "PART")]
    pub pcsc_name: Option<String>,
    /// Where the kernel lists USB devices.
    #[arg(long, value_name = "DIR", default_value = "/sys/bus/usb/devices")]
    pub sysfs_dir: PathBuf,
    /// Where the device nodes are (`DIR/bus/usb/BBB/DDD`).
    #[arg(long, value_name = "DIR", default_value = "/dev")]
    pub dev_dir: PathBuf,
    /// A udev rules directory, highest priority first (repeat it; default
    /// udev's own: /etc, /run, /usr/lib, /lib).
    #[arg(long = "udev-dir", value_name = "DIR")]
    pub udev_dirs: Vec<PathBuf>,
    /// pcscd's USB drivers directory.
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/pcsc/drivers")]
    pub drivers_dir: PathBuf,
    /// pcscd's socket (default: $PCSCLITE_CSOCK_NAME, else
    /// /run/pcscd/pcscd.comm); PC/SC is asked through it.
    #[arg(long, value_name = "PATH")]
    pub pcscd_socket: Option<PathBuf>,
    /// Where processes are listed (to find pcscd).
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_dir: PathBuf,
}

/// Run `ferroccid doctor`.
pub fn run(args: Args) -> ExitCode {
    if let Some(socket) = &args.pcscd_socket {
        // libpcsclite reads it when the PC/SC check connects; no other
        // thread runs yet.
        std::env::set_var(pcscd::SOCKET_ENV, socket);
    }
    let report = diagnose(&args);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("ferroccid doctor: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    if report.usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The reader to examine, as far as `--reader` and sysfs tell.
enum Target {
    /// A USB reader: what was asked for, its VID:PID if known, and the
    /// device if sysfs has it.
    Usb {
        wanted: String,
        id: Option<(u16, u16)>,
        device: Option<Box<UsbDevice>>,
        name: Option<DeviceName>,
    },
    /// A reader that is not on this machine's USB (the simulator, USB/IP).
    Other(DeviceName),
}

/// Resolves `--reader` against the USB devices sysfs lists.
fn target(reader: Option<&str>, devices: &[UsbDevice]) -> Target {
    let is_reader = |d: &&UsbDevice| d.reader_interface().is_some();
    match reader.map(|r| (r, r.parse::<DeviceName>())) {
        None => {
            let device = devices.iter().find(is_reader).cloned();
            Target::Usb {
                wanted: "has a CCID interface".into(),
                id: device.as_ref().map(|d| (d.vendor_id, d.product_id)),
                name: device.as_ref().map(usb_name),
                device: device.map(Box::new),
            }
        }
        Some((
            text,
            Ok(
                name @ DeviceName::Usb {
                    vendor_id,
                    product_id,
                    ..
                },
            ),
        )) => {
            let same = |d: &&UsbDevice| (d.vendor_id, d.product_id) == (vendor_id, product_id);
            // Of several with that VID:PID, the name's location picks
            // when it has one (`usb:v/p:libudev:0:/dev/bus/usb/001/002`).
            let device = devices
                .iter()
                .filter(same)
                .find(|d| text.ends_with(&format!("{:03}/{:03}", d.bus, d.address)))
                .or_else(|| devices.iter().find(same))
                .cloned();
            Target::Usb {
                wanted: format!("{vendor_id:04X}:{product_id:04X}"),
                id: Some((vendor_id, product_id)),
                device: device.map(Box::new),
                name: Some(name),
            }
        }
        Some((_, Ok(name))) => Target::Other(name),
        Some((text, Err(_))) => {
            let needle = text.to_lowercase();
            let device = devices
                .iter()
                .find(|d| d.label().to_lowercase().contains(&needle))
                .cloned();
            Target::Usb {
                wanted: format!("named like {text:?} (nor is it a device name)"),
                id: device.as_ref().map(|d| (d.vendor_id, d.product_id)),
                name: device.as_ref().map(usb_name),
                device: device.map(Box::new),
            }
        }
    }
}

/// The device name that opens `device` (its VID:PID and node, pcscd's form).
fn usb_name(device: &UsbDevice) -> DeviceName {
    format!(
        "usb:{:04x}/{:04x}:libudev:0:/dev/bus/usb/{:03}/{:03}",
        device.vendor_id, device.product_id, device.bus, device.address
    )
    .parse()
    .unwrap_or(DeviceName::Usb {
        vendor_id: device.vendor_id,
        product_id: device.product_id,
        location: ferroccid::UsbLocation::FirstMatch,
    })
}

/// Runs every check in order.
fn diagnose(args: &Args) -> Report {
    let udev_dirs: Vec<PathBuf> = if args.udev_dirs.is_empty() {
        udev::RULES_DIRS.iter().map(PathBuf::from).collect()
    } else {
        args.udev_dirs.clone()
    };
    let socket = args
        .pcscd_socket
        .clone()
        .or_else(|| std::env::var_os(pcscd::SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(pcscd::SOCKET));
    let (devices, sysfs_error) = match usb::devices(&args.sysfs_dir) {
        Ok(devices) => (devices, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut checks = Vec::new();
    let target = target(args.reader.as_deref(), &devices);
    let (label, usb_id, device, direct): (String, _, _, Option<DeviceName>) = match &target {
        Target::Usb {
            wanted,
            id,
            device,
            name,
        } => {
            let mut check = usb::device_check(device.as_deref(), wanted);
            if let Some(e) = &sysfs_error {
                check
                    .detail
                    .push_str(&format!(" (cannot list USB devices: {e})"));
            }
            checks.push(check);
            checks.push(usb::descriptor_check(device.as_deref()));
            let label = match (name, device) {
                (Some(name), Some(d)) => format!("{name} ({})", d.label()),
                (Some(name), None) => name.to_string(),
                (None, _) => format!("the USB device that {wanted}"),
            };
            (label, *id, device.as_deref(), name.clone())
        }
        Target::Other(name) => {
            for check in [usb::DEVICE, usb::DESCRIPTOR] {
                checks.push(Check::not_applicable(
                    check,
                    format!("{name} is not a USB device on this machine"),
                ));
            }
            (name.to_string(), None, None, Some(name.clone()))
        }
    };
    let node = device.map(|d| d.node(&args.dev_dir));
    let permissions = access::check(node.as_deref());
    let can_open = permissions.status == Status::Pass;
    checks.push(permissions);
    let not_usb = match &target {
        Target::Other(_) => Some("not a USB reader"),
        Target::Usb { id: None, .. } => Some("no USB reader to check it for (see usb-device)"),
        Target::Usb { .. } => None,
    };
    checks.push(udev::check(not_usb, &udev_dirs, node.as_deref()));
    let (bundle_check, claim) = bundles::check(
        usb_id.ok_or(match &target {
            Target::Other(_) => {
                "not a USB reader: pcscd reaches it through reader.conf, not a bundle"
            }
            Target::Usb { .. } => "no VID:PID to look up (see usb-device)",
        }),
        &args.drivers_dir,
    );
    let bundle_failed = bundle_check.status == Status::Fail;
    checks.push(bundle_check);
    let pcscd_check = pcscd::check(&args.proc_dir, &socket, &args.drivers_dir);
    let pcscd_failed = pcscd_check.status == Status::Fail;
    checks.push(pcscd_check);
    let expected = match (&args.pcsc_name, &claim, &target) {
        (Some(part), _, _) => Some(Expected::Part(part.clone())),
        (None, Some(claim), _) => Some(Expected::Friendly(claim.friendly_name.clone())),
        (None, None, Target::Other(name)) => Some(Expected::Device(name.to_string())),
        (None, None, Target::Usb { .. }) => None,
    };
    let hint = if pcscd_failed {
        Some(pcscd::PCSCD)
    } else if bundle_failed {
        Some(bundles::BUNDLE)
    } else {
        None
    };
    let seen = match &expected {
        Some(expected) => {
            let (check, seen) = pcsc::check(expected, hint);
            checks.push(check);
            seen
        }
        None => {
            checks.push(Check::not_applicable(
                pcsc::PCSC_READER,
                "not checked: no bundle names the reader (see pcscd-bundle); give --pcsc-name PART",
            ));
            None
        }
    };
    // A USB reader is opened directly only if this user may and pcscd
    // does not hold it (then PC/SC showed it already).
    let direct = match &target {
        Target::Other(_) => direct,
        Target::Usb { .. } if can_open && device.is_some() => direct,
        Target::Usb { .. } => None,
    };
    checks.push(card::check(seen.as_ref(), direct.as_ref()));
    Report::new(label, checks)
}
