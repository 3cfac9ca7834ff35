//! pcsc-lite IFD handler (API v3): what pcscd loads from
//! `ifd-ferroccid.bundle/Contents/Linux/libferroccid.so`.
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | C types and constants, checked against the installed headers |
//! | `exports` | the `IFDH*` entry points: pointer and length checks only (the only `unsafe`) |
//! | `driver` | Lun registry, presence tracking, capabilities, IFDHControl (safe) |
//! | `reader` | one open reader over `ferroccid` and `ferroccid`, as the driver uses it |
//! | `features` | PC/SC part 10 features and PIN structures ([`ferroccid::part10`]'s constants) |
//! | [`plist`] | Info.plist generation |
//! | `log` | tracing into pcscd's `log_msg` |
#![warn(unreachable_pub)]

pub mod abi;
mod driver;
// The IFDH* entry points are `pub`: exported as C symbols by #[no_mangle].
#[allow(unreachable_pub)]
mod exports;
mod features;
mod log;
mod notify;
pub mod plist;
mod reader;
#[cfg(feature = "sim")]
mod simulated;

pub use driver::{split_lun, Capability, Driver, Opener, Options, MAX_READERS};
pub use features::{feature_control_code, modify_to_secure, verify_to_secure, StructureError};
pub use log::{Filter as LogFilter, LOG_ENV};
pub use notify::{DEFAULT_REGISTRY, DEFAULT_SOCKET, REGISTRY_ENV, SOCKET_ENV as NOTIFY_SOCKET_ENV};
pub use reader::{IfdError, IfdReader, PinPad, ReaderInfo, ResponseSink, SlotState};

use std::sync::OnceLock;

use ferroccid::{parse_command_time, ReaderOptions};

/// Environment variable enabling FEATURE_CCID_ESC_COMMAND (`1`).
pub const ESCAPE_ENV: &str = "FERROCCID_ESCAPE";

/// Info.plist key: ceiling on one command, in seconds
/// ([`ReaderOptions::max_command_time`]); the environment's
/// [`ferroccid::COMMAND_TIMEOUT_ENV`] wins over it.
pub const COMMAND_TIMEOUT_KEY: &str = "ifdFerroccidCommandTimeout";

/// The options the bundle opens readers with, given its Info.plist text:
/// the defaults, `ifdFerroccidCommandTimeout` over them, and
/// `FERROCCID_COMMAND_TIMEOUT` over that.
pub fn reader_options_from(info_plist: Option<&str>) -> ReaderOptions {
    let mut options = ReaderOptions::default();
    if let Some(value) = info_plist.and_then(|text| plist::read_string(text, COMMAND_TIMEOUT_KEY)) {
        match parse_command_time(&value) {
            Some(ceiling) => options.max_command_time = ceiling,
            None => {
                tracing::warn!(%value, "{COMMAND_TIMEOUT_KEY} is not a number of seconds; ignored")
            }
        }
    }
    options.with_env_overrides()
}

/// [`reader_options_from`] this bundle's own Info.plist (read once).
pub fn reader_options() -> ReaderOptions {
    static INFO_PLIST: OnceLock<Option<String>> = OnceLock::new();
    reader_options_from(INFO_PLIST.get_or_init(log::own_info_plist).as_deref())
}

fn options() -> Options {
    Options {
        escape_enabled: std::env::var(ESCAPE_ENV).is_ok_and(|v| v == "1"),
        // This crate's own tests share no notification socket.
        notify: !cfg!(test),
    }
}

/// The process-wide driver pcscd talks to.
fn global() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| Driver::new(Box::new(IfdReader::open), options()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroccid::{COMMAND_TIMEOUT_ENV, DEFAULT_MAX_COMMAND_TIME};
    use std::time::Duration;

    #[test]
    fn info_plist_sets_the_command_ceiling() {
        if std::env::var_os(COMMAND_TIMEOUT_ENV).is_some() {
            // The environment wins; this test is about the key alone.
            return;
        }
        let config = plist::BundleConfig {
            executable: "libferroccid.so".into(),
            log_level: 1,
            driver_options: 0,
            class_driver: false,
        };
        let text = plist::render(&config, &[]);
        assert_eq!(
            reader_options_from(Some(&text)).max_command_time,
            DEFAULT_MAX_COMMAND_TIME
        );
        assert_eq!(
            reader_options_from(None).max_command_time,
            DEFAULT_MAX_COMMAND_TIME
        );
        let with = plist::with_string_key(&text, COMMAND_TIMEOUT_KEY, "300");
        assert_eq!(
            reader_options_from(Some(&with)).max_command_time,
            Duration::from_secs(300)
        );
        let junk = plist::with_string_key(&text, COMMAND_TIMEOUT_KEY, "soon");
        assert_eq!(
            reader_options_from(Some(&junk)).max_command_time,
            DEFAULT_MAX_COMMAND_TIME
        );
    }
}
