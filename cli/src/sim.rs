//! `ferroccid sim --usbip [ADDR:PORT] [--profile P] [--busid ID]
//! [--reader DEVICE --allow-real-reader]`: run the simulated reader (or,
//! when asked explicitly, a real one) and export it over USB/IP, so that a
//! Linux host (or a QEMU guest) attaches it with `usbip attach -r HOST -b ID`.
//!
//! USB/IP has no authentication: whoever reaches the port imports the
//! reader. The default address is loopback; another one is warned about
//! on stderr, and a real reader (raw CCID, Escape commands, the PIN pad)
//! is only exported with `--allow-real-reader`. From another machine,
//! tunnel: `ssh -L 3240:127.0.0.1:3240 HOST`.
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use ferroccid::{DeviceName, Transport};
use ferroccid_sim::control::{control_key, watch_from_env};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use ferroccid_trace::replayed::ReplayedReader;
use ferroccid_usbip::UsbIpServer;

/// The USB/IP port IANA assigned (3240), on loopback unless asked.
const DEFAULT_USBIP_ADDR: &str = "127.0.0.1:3240";

/// Arguments of `ferroccid sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Export the simulated reader as a USB/IP server on ADDR:PORT
    /// (default 127.0.0.1:3240; port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1,
          default_missing_value = DEFAULT_USBIP_ADDR)]
    pub usbip: Option<String>,
    /// Reader profile: a built-in name, a JSON file, or a class descriptor
    /// in hex.
    #[arg(long, value_name = "P", default_value = "tpdu")]
    pub profile: String,
    /// The bus id clients import the reader by.
    #[arg(long, value_name = "ID", default_value = "1-1")]
    pub busid: String,
    /// Export this device instead: `sim`, `sim:PROFILE`, or a real reader
    /// (`usb:…`, `usbip:…`), which also needs --allow-real-reader.
    #[arg(long, value_name = "DEVICE", conflicts_with = "profile")]
    pub reader: Option<String>,
    /// Allow exporting a real reader. USB/IP has no authentication:
    /// anyone who reaches the port sends raw CCID commands, Escape
    /// commands and PIN-pad requests to it. Keep the loopback address and
    /// tunnel (`ssh -L 3240:127.0.0.1:3240 HOST`).
    #[arg(long)]
    pub allow_real_reader: bool,
    /// Serve a recorded session (usbmon pcap/pcapng, a `--pcap` capture,
    /// a libccid log) as the reader: each command gets the answer recorded
    /// for it. The reader's descriptors are the capture's when it holds
    /// them, else --profile's.
    #[arg(long, value_name = "TRACE", conflicts_with = "reader")]
    pub replay: Option<std::path::PathBuf>,
}

/// The reader a recorded session describes (see `ferroccid_trace::replayed`).
fn replayed_reader(trace: &std::path::Path, profile: &str) -> Result<ReplayedReader, String> {
    use ferroccid::descriptors::{
        choose_interface, find_class_descriptor, parse_configuration, select_endpoints,
    };
    let data = std::fs::read(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let frames =
        ferroccid_trace::read_frames(&data).map_err(|e| format!("{}: {e}", trace.display()))?;
    let urbs =
        ferroccid_trace::capture_urbs(&data).map_err(|e| format!("{}: {e}", trace.display()))?;
    // The fallback: the profile's reader, for what the capture does not say.
    let fallback = Profile::parse(profile).map_err(|e| e.to_string())?;
    let (sim, _handle) = SimTransport::open(fallback);
    let mut info = sim.info().clone();
    info.name = format!("replay:{}", trace.display());
    if let Some(config) = ferroccid_trace::configuration_descriptor(&urbs) {
        let interfaces = parse_configuration(&config)
            .map_err(|e| format!("the capture's configuration descriptor: {e:?}"))?;
        let interface = choose_interface(&interfaces, None)
            .map_err(|e| format!("the capture's configuration descriptor: {e}"))?;
        info.interface_number = interface.number;
        info.interface_class = interface.class;
        info.endpoints = Some(select_endpoints(&interface.endpoints).map_err(|e| e.to_string())?);
        info.class_descriptor = find_class_descriptor(&interface.extra).map(<[u8]>::to_vec);
        info.configuration_descriptor = config;
    }
    if let Some(device) = ferroccid_trace::device_descriptor(&urbs) {
        info.vendor_id = u16::from_le_bytes([device[8], device[9]]);
        info.product_id = u16::from_le_bytes([device[10], device[11]]);
        info.bcd_device = u16::from_le_bytes([device[12], device[13]]);
    }
    let reader = ReplayedReader::new(&frames, info);
    if reader.recorded_commands() == 0 {
        return Err(format!(
            "{}: no command with a recorded answer",
            trace.display()
        ));
    }
    Ok(reader)
}

/// Run `ferroccid sim`.
pub fn run(args: Args) -> ExitCode {
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferroccid sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &Args) -> Result<(), String> {
    let Some(addr) = &args.usbip else {
        return Err("nothing to do: pass --usbip [ADDR:PORT] to export the reader".into());
    };
    // `--reader sim[:PROFILE]` is the simulator; anything else is real.
    let (profile_name, real) = match &args.reader {
        None => (args.profile.clone(), None),
        Some(name) => match name.parse::<DeviceName>().map_err(|e| e.to_string())? {
            DeviceName::Registered { scheme, spec } if scheme == ferroccid_sim::names::SCHEME => {
                (spec.unwrap_or_else(|| "tpdu".into()), None)
            }
            _ => (String::new(), Some(name.as_str())),
        },
    };
    if let Some(name) = real {
        if !args.allow_real_reader {
            return Err(format!(
                "refusing to export the real reader {name} without --allow-real-reader: \
                 USB/IP has no authentication, so anyone who can reach {addr} would send \
                 raw CCID commands, Escape commands and PIN-pad requests to it; keep a \
                 loopback address and tunnel from the client with \
                 `ssh -L 3240:127.0.0.1:3240 THIS-HOST`"
            ));
        }
    }
    // Kept alive while serving.
    let _watcher;
    let transport: Arc<dyn Transport> = match real {
        _ if args.replay.is_some() => {
            let trace = args.replay.as_deref().expect("checked");
            let reader = replayed_reader(trace, &args.profile)?;
            eprintln!(
                "ferroccid sim: serving {} ({} recorded commands)",
                trace.display(),
                reader.recorded_commands()
            );
            Arc::new(reader)
        }
        Some(name) => {
            ferroccid::open(name)
                .map_err(|e| format!("cannot open {name}: {e}"))?
                .transport
        }
        None => {
            let profile = Profile::parse(&profile_name).map_err(|e| e.to_string())?;
            let slots = u8::try_from(profile.slots.len()).unwrap_or(u8::MAX);
            let (transport, handle) = SimTransport::open(profile);
            // FERROCCID_SIM_CONTROL=DIR steers the exported reader as it
            // does one loaded by pcscd: DIR/KEY.absent removes the card,
            // DIR/KEY.unplugged unplugs (see `ferroccid_sim::control`).
            let key = control_key(Some(&profile_name));
            _watcher = match watch_from_env(&key, slots, handle) {
                Some(Ok(watcher)) => Some(watcher),
                Some(Err(e)) => return Err(format!("cannot watch the control directory: {e}")),
                None => None,
            };
            Arc::new(transport)
        }
    };
    let product = transport.info().product.clone().unwrap_or_default();
    let server = UsbIpServer::bind(addr.as_str(), transport, &args.busid)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = server.local_addr().map_err(|e| e.to_string())?;
    if !bound.ip().is_loopback() {
        eprintln!(
            "WARNING: ferroccid sim: listening on {bound}, which is not loopback.\n\
             WARNING: USB/IP has no authentication: anyone who can reach this port \
             imports the reader.\n\
             WARNING: prefer --usbip 127.0.0.1:PORT and an SSH tunnel from the client: \
             ssh -L 3240:127.0.0.1:{port} THIS-HOST",
            port = bound.port()
        );
    }
    // One parseable line first: tests and scripts read the bound port.
    // Write errors are ignored: whoever started us may stop reading.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {bound}");
    let _ = writeln!(
        out,
        "exporting \"{product}\" as bus id {}; attach with: usbip attach -r {} -b {}",
        args.busid,
        bound.ip(),
        args.busid
    );
    let _ = out.flush();
    server.serve().map_err(|e| format!("server stopped: {e}"))
}
