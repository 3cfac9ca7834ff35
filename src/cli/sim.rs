//! `ferroccid sim --usbip [ADDR:PORT] [--profile P] [--busid ID]`: run the
//! simulated reader and export it over USB/IP, so that a Linux host (or a
//! QEMU guest) attaches it with `usbip attach -r HOST -b ID`.
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use ferroccid::sim::control::{control_key, watch_from_env};
use ferroccid::sim::profile::Profile;
use ferroccid::transport::sim::SimTransport;
use ferroccid::transport::Transport;
use ferroccid::usbip::UsbIpServer;

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
    let profile = Profile::parse(&args.profile).map_err(|e| e.to_string())?;
    let slots = u8::try_from(profile.slots.len()).unwrap_or(u8::MAX);
    let (transport, handle) = SimTransport::open(profile);
    // FERROCCID_SIM_CONTROL=DIR steers the exported reader as it does one
    // loaded by pcscd: DIR/KEY.absent removes the card, DIR/KEY.unplugged
    // unplugs (see `ferroccid::sim::control`). Kept alive while serving.
    let key = control_key(Some(&args.profile));
    let _watcher = match watch_from_env(&key, slots, handle) {
        Some(Ok(watcher)) => Some(watcher),
        Some(Err(e)) => return Err(format!("cannot watch the control directory: {e}")),
        None => None,
    };
    let transport: Arc<dyn Transport> = Arc::new(transport);
    let product = transport.info().product.clone().unwrap_or_default();
    let server = UsbIpServer::bind(addr.as_str(), transport, &args.busid)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = server.local_addr().map_err(|e| e.to_string())?;
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
