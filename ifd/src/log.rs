//! Logging into pcscd's own log.
//!
//! pcscd exports `log_msg(int priority, const char *fmt, ...)`. It is
//! looked up at run time with `dlsym(RTLD_DEFAULT)`, so the library still
//! loads (and logs to stderr) in any other process. The level comes from
//! `FERROCCID_LOG` (directives such as `debug` or
//! `info,ferroccid::reader=trace`: see [`Filter`]), else from the bundle's
//! Info.plist `ifdLogLevel` (bit 0 errors, bit 1 info, bit 2 debug, bit 3
//! trace), else errors only.
//!
//! The subscriber is written here rather than taken from
//! `tracing-subscriber`: pcscd needs one sink and a level per target, and
//! `tracing-subscriber`'s filter brings a regex engine into a library that
//! runs as root (it was most of the bundle's size).

use std::ffi::{c_char, c_int, CString};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

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
pub(crate) fn filter_for_mask(mask: u32) -> &'static str {
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

/// Collects an event's message and fields; for frame events
/// (`ferroccid::ccid`) the message alone, which already holds the bytes.
#[derive(Default)]
struct MessageVisitor {
    text: String,
    message_only: bool,
}

impl Visit for MessageVisitor {
    /// Three decimals, formatted without the float formatter (which would
    /// add its tables to the bundle); no event of the driver has one.
    fn record_f64(&mut self, field: &Field, value: f64) {
        let milli = (value * 1000.0) as i64;
        let sign = if milli < 0 { "-" } else { "" };
        let milli = milli.unsigned_abs();
        if self.message_only {
            return;
        }
        let _ = write!(
            self.text,
            "{}={sign}{}.{:03} ",
            field.name(),
            milli / 1000,
            milli % 1000
        );
    }

    /// A frame's bytes (`ferroccid::ccid`) are in its message already,
    /// masked bytes written as XX: not repeated.
    fn record_bytes(&mut self, _field: &Field, _value: &[u8]) {}

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?} ");
        } else if !self.message_only {
            let _ = write!(self.text, "{}={value:?} ", field.name());
        }
    }
}

/// Which events pass: a default level and levels for target prefixes.
///
/// Parsed from comma-separated directives, each `LEVEL` (the default) or
/// `TARGET=LEVEL` (events whose target is TARGET or starts with
/// `TARGET::`); the longest matching target wins. Levels: `off`, `error`,
/// `warn`, `info`, `debug`, `trace`. A directive that does not parse is
/// skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

fn level(text: &str) -> Option<LevelFilter> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::OFF),
        "error" => Some(LevelFilter::ERROR),
        "warn" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

impl Filter {
    /// Parses `directives`; without any usable one, errors only.
    pub fn parse(directives: &str) -> Filter {
        let mut filter = Filter {
            default: LevelFilter::ERROR,
            targets: Vec::new(),
        };
        for directive in directives.split(',').map(str::trim) {
            match directive.split_once('=') {
                Some((target, text)) => {
                    if let (false, Some(l)) = (target.trim().is_empty(), level(text)) {
                        filter.targets.push((target.trim().to_owned(), l));
                    }
                }
                None => {
                    if let Some(l) = level(directive) {
                        filter.default = l;
                    }
                }
            }
        }
        // Longest target first, so the first match is the most specific.
        filter
            .targets
            .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        filter
    }

    /// The level that applies to `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(t, _)| {
                target == t
                    || target
                        .strip_prefix(t.as_str())
                        .is_some_and(|rest| rest.starts_with("::"))
            })
            .map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level any target gets.
    fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, std::cmp::max)
    }
}

/// Where a formatted event goes.
enum Sink {
    /// pcscd's `log_msg`.
    Pcscd(LogMsg),
    /// Standard error (any other host process).
    Stderr,
}

/// Formats each enabled event as `ferroccid TARGET: message key=value …`
/// into the sink. Spans are not tracked (the driver logs events only).
struct PcscdSubscriber {
    filter: Filter,
    sink: Sink,
}

impl Subscriber for PcscdSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max_level())
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor {
            text: String::new(),
            message_only: event.metadata().target() == ferroccid::ccid::trace::TARGET,
        };
        event.record(&mut visitor);
        let text = format!(
            "ferroccid {}: {}",
            event.metadata().target(),
            visitor.text.trim_end()
        );
        match self.sink {
            Sink::Pcscd(log_msg) => {
                let priority = match *event.metadata().level() {
                    Level::ERROR | Level::WARN => PCSC_LOG_ERROR,
                    Level::INFO => PCSC_LOG_INFO,
                    _ => PCSC_LOG_DEBUG,
                };
                let Ok(text) = CString::new(text.replace('\0', " ")) else {
                    return;
                };
                // SAFETY: log_msg is pcscd's printf-style logger; "%s" with
                // one NUL-terminated string argument matches its format.
                unsafe { log_msg(priority, c"%s".as_ptr(), text.as_ptr()) };
            }
            Sink::Stderr => {
                use std::io::Write as _;
                let level = event.metadata().level();
                let _ = writeln!(std::io::stderr().lock(), "{level:>5} {text}");
            }
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Installs the subscriber once per process (first entry point called).
/// Does nothing if the host already installed one.
pub(crate) fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let directive = std::env::var(LOG_ENV)
            .ok()
            .or_else(plist_filter)
            .unwrap_or_else(|| "error".to_owned());
        let sink = match find_log_msg() {
            Some(log_msg) => Sink::Pcscd(log_msg),
            None => Sink::Stderr,
        };
        let subscriber = PcscdSubscriber {
            filter: Filter::parse(&directive),
            sink,
        };
        let _ = tracing::subscriber::set_global_default(subscriber);
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
    fn filter_directives_pick_the_longest_matching_target() {
        let f = Filter::parse("info, ferroccid::reader=trace,ferroccid=warn,bogus=loud");
        assert_eq!(f.level_for("ferroccid::reader::link"), LevelFilter::TRACE);
        assert_eq!(f.level_for("ferroccid::reader"), LevelFilter::TRACE);
        assert_eq!(f.level_for("ferroccid::readers"), LevelFilter::WARN);
        assert_eq!(f.level_for("ferroccid_ifd::driver"), LevelFilter::INFO);
        assert_eq!(f.max_level(), LevelFilter::TRACE);
        assert_eq!(Filter::parse("nonsense").level_for("x"), LevelFilter::ERROR);
        assert_eq!(Filter::parse("off").max_level(), LevelFilter::OFF);
    }

    #[test]
    fn log_msg_is_absent_outside_pcscd() {
        assert!(find_log_msg().is_none());
    }
}
