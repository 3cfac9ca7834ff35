//! `ferroccid sim --usbip` in the background for a test: on a free port
//! (port 0; the bound address is the first line it prints), stopped when
//! the value is dropped.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

/// A running export; [`reader`](UsbIpExport::reader) is its device name.
pub struct UsbIpExport {
    child: Child,
    address: String,
}

impl UsbIpExport {
    /// Starts `ferroccid sim --usbip 127.0.0.1:0 ARGS…` (e.g. `--profile
    /// tpdu-t1`, `--replay FILE`) and waits for its "listening on" line.
    pub fn start(args: &[&std::ffi::OsStr]) -> UsbIpExport {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
            .args(["sim", "--usbip", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ferroccid sim");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .expect("read the export's first line");
        let address = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the USB/IP export did not start: {first:?}"))
            .to_owned();
        UsbIpExport { child, address }
    }

    /// The device name the driver opens it by.
    pub fn reader(&self) -> String {
        format!("usbip:{}/1-1", self.address)
    }
}

impl Drop for UsbIpExport {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
