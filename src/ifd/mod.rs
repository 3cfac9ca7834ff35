//! pcsc-lite IFD handler (API v3): what pcscd loads from
//! `ifd-ferroccid.bundle/Contents/Linux/libferroccid.so`.
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | C types and constants, checked against the installed headers |
//! | `exports` | the `IFDH*` entry points: pointer and length checks only (the only `unsafe`) |
//! | [`driver`] | Lun registry, presence tracking, capabilities, IFDHControl (safe) |
//! | [`backend`] | the reader API the driver needs |
//! | [`features`] | PC/SC part 10 features and PIN structures |
//! | [`reader_backend`] | [`Backend`] over `crate::device` and `crate::reader` |
//! | [`plist`] | Info.plist generation |
//! | [`log`] | tracing into pcscd's `log_msg` |

pub mod abi;
pub mod backend;
pub mod driver;
mod exports;
pub mod features;
pub mod log;
pub mod plist;
pub mod reader_backend;

use std::sync::{Arc, OnceLock};

use backend::{Backend, BackendError};
use driver::{Driver, Options};

/// Environment variable enabling FEATURE_CCID_ESC_COMMAND (`1`).
pub const ESCAPE_ENV: &str = "FERROCCID_ESCAPE";

/// Opens the backend for a pcscd device name (`sim[:PROFILE[.TAG]]`,
/// `usbip:HOST:PORT/BUSID`, pcscd's `usb:VVVV/PPPP:libudev:…` names).
pub fn open_device(name: &str) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(reader_backend::ReaderBackend::open(name)?))
}

fn options() -> Options {
    Options {
        escape_enabled: std::env::var(ESCAPE_ENV).is_ok_and(|v| v == "1"),
    }
}

/// The process-wide driver pcscd talks to.
fn global() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| Driver::new(Box::new(open_device), options()))
}
