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
