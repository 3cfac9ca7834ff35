//! Does pcscd show the reader to PC/SC clients, and with what card? Asked
//! through libpcsclite as every client asks (feature `pcsc`), over the
//! socket in PCSCLITE_CSOCK_NAME when set.
// Without the feature only the "not checked" answer is compiled; the name
// matching stays (and stays tested) for the build that uses it.
#![cfg_attr(not(feature = "pcsc"), allow(dead_code))]
use super::report::{Check, Status};

/// Check name of [`check`].
pub const PCSC_READER: &str = "pcsc-reader";

/// How the reader should be named in PC/SC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A USB reader: pcscd names it by the bundle entry's ifdFriendlyName
    /// (then ` [interface]`, ` (serial)` and ` NN NN`).
    Friendly(String),
    /// A reader.conf reader: its FRIENDLYNAME ends with the device name
    /// (`ferroccid sim:tpdu`, as tests/scripts/pcscd-run.sh writes it).
    Device(String),
    /// `--pcsc-name PART`: any reader whose name contains PART.
    Part(String),
}

impl Expected {
    /// Whether pcscd's `name` (with its ` NN NN` index) is this reader.
    pub fn matches(&self, name: &str) -> bool {
        let base = strip_index(name);
        match self {
            Expected::Friendly(friendly) => base.starts_with(friendly.as_str()),
            Expected::Device(device) => base == device || base.ends_with(&format!(" {device}")),
            Expected::Part(part) => name.to_lowercase().contains(&part.to_lowercase()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expected::Friendly(n) => format!("a reader named \"{n}…\" (the bundle's name for it)"),
            Expected::Device(d) => format!("a reader whose name ends with \"{d}\""),
            Expected::Part(p) => format!("a reader whose name contains \"{p}\""),
        }
    }
}

/// `name` without pcscd's trailing ` NN NN` (two two-digit hex numbers).
fn strip_index(name: &str) -> &str {
    let bytes = name.as_bytes();
    let is_index = bytes.len() >= 6
        && bytes[bytes.len() - 6] == b' '
        && bytes[bytes.len() - 3] == b' '
        && [1, 2, 4, 5]
            .iter()
            .all(|&k| bytes[bytes.len() - 6 + k].is_ascii_hexdigit());
    if is_index {
        &name[..name.len() - 6]
    } else {
        name
    }
}

/// The card in the reader, as PC/SC reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardState {
    Absent,
    /// A card answered; its ATR.
    Present(Vec<u8>),
    /// A card is in but did not answer reset.
    Mute,
}

/// What to try when pcscd does not show the reader, from what the earlier
/// checks found: `hint` names the failed check to look at first.
fn not_seen_advice(hint: Option<&str>) -> String {
    match hint {
        Some(check) => format!("fix {check} first"),
        None => "pcscd reads bundles and reader.conf only at start: `sudo systemctl restart \
                 pcscd` (or stop pcscd and run `sudo pcscd -f -d` to see why it skips the \
                 reader)"
            .to_owned(),
    }
}

/// The readers pcscd lists and the one that is this reader.
#[cfg(feature = "pcsc")]
pub fn check(expected: &Expected, hint: Option<&str>) -> (Check, Option<CardState>) {
    use pcsc::{Context, ReaderState, Scope, State};
    use std::time::Duration;

    let socket =
        std::env::var(super::pcscd::SOCKET_ENV).unwrap_or_else(|_| super::pcscd::SOCKET.to_owned());
    let context = match Context::establish(Scope::User) {
        Ok(context) => context,
        Err(e) => {
            return (
                Check::new(
                    PCSC_READER,
                    Status::Fail,
                    format!("cannot reach pcscd at {socket}: {e}"),
                    Some(not_seen_advice(hint.or(Some("pcscd")))),
                ),
                None,
            )
        }
    };
    let readers = match context.list_readers_owned() {
        Ok(readers) => readers,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => {
            return (
                Check::new(
                    PCSC_READER,
                    Status::Fail,
                    format!("listing pcscd's readers: {e}"),
                    Some(not_seen_advice(hint)),
                ),
                None,
            )
        }
    };
    let names: Vec<String> = readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let Some(index) = names.iter().position(|n| expected.matches(n)) else {
        let listed = if names.is_empty() {
            "pcscd lists no reader".to_owned()
        } else {
            format!(
                "pcscd lists {}",
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return (
            Check::new(
                PCSC_READER,
                Status::Fail,
                format!("{listed}; none is {}", expected.describe()),
                Some(not_seen_advice(hint)),
            ),
            None,
        );
    };
    let mut states = [ReaderState::new(readers[index].clone(), State::UNAWARE)];
    let card = match context.get_status_change(Duration::ZERO, &mut states) {
        Ok(()) => {
            let s = states[0].event_state();
            if s.contains(State::MUTE) {
                CardState::Mute
            } else if s.contains(State::PRESENT) {
                CardState::Present(states[0].atr().to_vec())
            } else {
                CardState::Absent
            }
        }
        Err(_) => CardState::Absent,
    };
    (
        Check::pass(
            PCSC_READER,
            format!(
                "pcscd shows \"{}\" ({} reader(s) in all)",
                names[index],
                names.len()
            ),
        ),
        Some(card),
    )
}

/// Without libpcsclite nothing can be asked.
#[cfg(not(feature = "pcsc"))]
pub fn check(_: &Expected, _: Option<&str>) -> (Check, Option<CardState>) {
    (
        Check::new(
            PCSC_READER,
            Status::Warn,
            "not checked: this ferroccid was built without the pcsc feature",
            Some("build it with `cargo build --release -p ferroccid-cli --features pcsc`, or run `pcsc_scan -r`"),
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_without_pcscds_index() {
        let usb = Expected::Friendly("QEMU USB CCID".into());
        assert!(usb.matches("QEMU USB CCID 00 00"));
        assert!(usb.matches("QEMU USB CCID [CCID Interface] (1-0000:00:04.0-1) 01 00"));
        assert!(!usb.matches("Gemalto PC Twin 00 00"));
        let sim = Expected::Device("sim".into());
        assert!(sim.matches("ferroccid sim 00 00"));
        assert!(!sim.matches("ferroccid sim:tpdu 00 00"));
        assert!(Expected::Device("sim:tpdu".into()).matches("ferroccid sim:tpdu 01 00"));
        assert!(Expected::Part("twin".into()).matches("Gemalto PC Twin 00 00"));
        assert_eq!(strip_index("a b"), "a b");
    }
}
