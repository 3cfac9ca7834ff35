//! Logging into pcscd's own log.
//!
//! pcscd exports `log_msg(int priority, const char *fmt, ...)`. It is
//! looked up at run time with `dlsym(RTLD_DEFAULT)`, so the library still
//! loads (and logs to stderr) in any other process. The level comes from
//! `FERROCCID_LOG` (an `EnvFilter` directive such as `debug`), else from
//! the bundle's Info.plist `ifdLogLevel` (bit 0 errors, bit 1 info, bit 2
//! debug, bit 3 trace), else errors only.

use std::ffi::{c_char, c_int, CString};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log level.
pub const LOG_ENV: &str = "FERROCCID_LOG";

type LogMsg = unsafe extern "C" fn(c_int, *const c_char, ...);

/// pcsc-lite's `PCSC_LOG_*` priorities (debuglog.h).
const PCSC_LOG_DEBUG: c_int = 0;
const PCSC_LOG_INFO: c_int = 1;
const PCSC_LOG_ERROR: c_int = 2;

fn find_log_msg() -> Option<LogMsg> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads
    // the loaded objects' symbol tables.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"log_msg".as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    // SAFETY: pcscd's `log_msg` has exactly this C signature (debuglog.h).
    Some(unsafe { std::mem::transmute::<*mut libc::c_void, LogMsg>(symbol) })
}

/// The path of this shared object, to find the bundle's Info.plist.
fn own_path() -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let address = find_log_msg as *const () as *const libc::c_void;
    // SAFETY: dladdr fills `info` for an address inside this object and
    // does not keep the pointer.
    let found = unsafe { libc::dladdr(address, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr returned non-zero, so `info` is initialised and
    // dli_fname is a NUL-terminated string owned by the loader.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated (checked above), valid while loaded.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(name.to_str().ok()?))
}

/// The bundle's own `Contents/Info.plist` (next to `Contents/Linux/`),
/// if this library was loaded from a bundle.
pub(super) fn own_info_plist() -> Option<String> {
    let plist = own_path()?.parent()?.parent()?.join("Info.plist");
    std::fs::read_to_string(plist).ok()
}

/// Level from `ifdLogLevel` in the bundle's Info.plist.
fn plist_filter() -> Option<String> {
    let text = own_info_plist()?;
    let level = super::plist::read_integer(&text, "ifdLogLevel")?;
    Some(filter_for_mask(level).to_owned())
}

/// `ifdLogLevel` bit mask → filter directive.
pub fn filter_for_mask(mask: u32) -> &'static str {
    if mask & 8 != 0 {
        "trace"
    } else if mask & 4 != 0 {
        "debug"
    } else if mask & 2 != 0 {
        "info"
    } else if mask & 1 != 0 {
        "error"
    } else {
        "off"
    }
}

#[derive(Default)]
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
}

/// Forwards events to `log_msg`.
struct PcscdLayer {
    log_msg: LogMsg,
}

impl<S: Subscriber> Layer<S> for PcscdLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let priority = match *event.metadata().level() {
            Level::ERROR | Level::WARN => PCSC_LOG_ERROR,
            Level::INFO => PCSC_LOG_INFO,
            _ => PCSC_LOG_DEBUG,
        };
        let text = format!(
            "ferroccid {}: {}",
            event.metadata().target(),
            visitor.0.trim_end()
        );
        let Ok(text) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        // SAFETY: log_msg is pcscd's printf-style logger; "%s" with one
        // NUL-terminated string argument matches its format.
        unsafe { (self.log_msg)(priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// Installs the subscriber once per process (first entry point called).
/// Does nothing if the host already installed one.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let directive = std::env::var(LOG_ENV)
            .ok()
            .or_else(plist_filter)
            .unwrap_or_else(|| "error".to_owned());
        let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("error"));
        let result = match find_log_msg() {
            Some(log_msg) => tracing_subscriber::registry()
                .with(PcscdLayer { log_msg }.with_filter(filter))
                .try_init(),
            None => tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_filter(filter),
                )
                .try_init(),
        };
        let _ = result;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_mask_picks_the_most_verbose_bit() {
        assert_eq!(filter_for_mask(0), "off");
        assert_eq!(filter_for_mask(1), "error");
        assert_eq!(filter_for_mask(3), "info");
        assert_eq!(filter_for_mask(7), "debug");
        assert_eq!(filter_for_mask(0x0F), "trace");
    }

    #[test]
    fn log_msg_is_absent_outside_pcscd() {
        assert!(find_log_msg().is_none());
    }
}
