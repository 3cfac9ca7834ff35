//! Which pcscd bundles list the reader's VID:PID, and which one pcscd
//! will use — as pcsc-lite 1.9.9's hotplug_libudev.c decides it:
//!
//! - it reads every `*.bundle/Contents/Info.plist` of its drivers
//!   directory once, at start, in readdir order;
//! - a bundle whose CFBundleName is `CCIDCLASSDRIVER` is a class driver,
//!   any other a specific driver;
//! - for a device it takes the last specific driver listing the VID:PID,
//!   else the class driver (which is also its fallback when the specific
//!   one fails to open the reader);
//! - a VID:PID no bundle lists is ignored, with no rescan later.
use std::path::{Path, PathBuf};

use ferroccid_ifd::plist;

use super::report::{Check, Status};

/// Check name of [`check`].
pub const BUNDLE: &str = "pcscd-bundle";

/// ferroccid's bundle directory name.
pub const FERROCCID_BUNDLE: &str = "ifd-ferroccid.bundle";

/// CFBundleName that marks a class driver.
const CLASS_DRIVER: &str = "CCIDCLASSDRIVER";

/// One Info.plist entry listing the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The bundle's directory name (`ifd-ccid.bundle`).
    pub bundle: String,
    /// Its CFBundleName.
    pub bundle_name: String,
    /// The ifdFriendlyName of the entry: pcscd's name for the reader.
    pub friendly_name: String,
    /// `Contents/Linux/CFBundleExecutable`; `None` when the key is missing.
    pub library: Option<PathBuf>,
}

impl Claim {
    /// A class driver, used only when no specific driver lists the reader.
    pub fn is_class_driver(&self) -> bool {
        self.bundle_name == CLASS_DRIVER
    }

    fn describe(&self) -> String {
        let kind = if self.is_class_driver() {
            "class driver"
        } else {
            "specific driver"
        };
        format!("{} ({kind}, \"{}\")", self.bundle, self.friendly_name)
    }
}

/// `(vendor, product, friendly name)` of every entry of an Info.plist;
/// pcscd accepts a lone `<string>` in place of each array.
fn entries(text: &str) -> Vec<(u16, u16, String)> {
    let read = |key: &str| {
        let array = plist::read_array(text, key);
        if array.is_empty() {
            plist::read_string(text, key).into_iter().collect()
        } else {
            array
        }
    };
    let hex = |s: &str| {
        u16::from_str_radix(
            s.trim().trim_start_matches("0x").trim_start_matches("0X"),
            16,
        )
        .ok()
    };
    let names = read("ifdFriendlyName");
    read("ifdVendorID")
        .iter()
        .zip(read("ifdProductID").iter())
        .enumerate()
        .filter_map(|(i, (v, p))| {
            Some((hex(v)?, hex(p)?, names.get(i).cloned().unwrap_or_default()))
        })
        .collect()
}

/// Every entry for `vendor:product` in the bundles of `drivers_dir`, in
/// the order pcscd reads them (readdir order, then entry order).
pub fn claims(drivers_dir: &Path, vendor: u16, product: u16) -> Result<Vec<Claim>, String> {
    let listing =
        std::fs::read_dir(drivers_dir).map_err(|e| format!("{}: {e}", drivers_dir.display()))?;
    let mut found = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let bundle = entry.file_name().to_string_lossy().into_owned();
        // pcscd's test: the name contains ".bundle".
        if !bundle.contains(".bundle") {
            continue;
        }
        let contents = entry.path().join("Contents");
        let Ok(text) = std::fs::read_to_string(contents.join("Info.plist")) else {
            continue;
        };
        let bundle_name = plist::read_string(&text, "CFBundleName").unwrap_or_default();
        let library = plist::read_string(&text, "CFBundleExecutable")
            .map(|exe| contents.join("Linux").join(exe));
        for (v, p, friendly_name) in entries(&text) {
            if (v, p) == (vendor, product) {
                found.push(Claim {
                    bundle: bundle.clone(),
                    bundle_name: bundle_name.clone(),
                    friendly_name,
                    library: library.clone(),
                });
            }
        }
    }
    Ok(found)
}

/// The claim pcscd uses: the last specific driver, else the last class
/// driver.
pub fn chosen(claims: &[Claim]) -> Option<&Claim> {
    claims
        .iter()
        .rev()
        .find(|c| !c.is_class_driver())
        .or_else(|| claims.iter().rev().find(|c| c.is_class_driver()))
}

/// The bundles listing `vendor:product` and pcscd's choice among them;
/// returns the check and the chosen entry (its friendly name is the
/// reader's name in PC/SC). `Err` says why there is no VID:PID to look up.
pub fn check(target: Result<(u16, u16), &str>, drivers_dir: &Path) -> (Check, Option<Claim>) {
    let (vendor, product) = match target {
        Ok(id) => id,
        Err(reason) => return (Check::not_applicable(BUNDLE, reason), None),
    };
    let id = format!("{vendor:04X}:{product:04X}");
    let refresh = "`sudo ferroccid bundle refresh` (adds the readers plugged in and restarts \
                   pcscd; or `sudo ferroccid install`)";
    let claims = match claims(drivers_dir, vendor, product) {
        Ok(claims) => claims,
        Err(e) => {
            return (
                Check::new(
                    BUNDLE,
                    Status::Fail,
                    format!("cannot read pcscd's drivers directory: {e}"),
                    Some(format!(
                        "install pcscd (`sudo apt install pcscd`), then {refresh}"
                    )),
                ),
                None,
            )
        }
    };
    let Some(chosen) = chosen(&claims).cloned() else {
        return (
            Check::new(
                BUNDLE,
                Status::Fail,
                format!(
                    "no bundle in {} lists {id}: pcscd ignores this reader",
                    drivers_dir.display()
                ),
                Some(refresh.to_owned()),
            ),
            None,
        );
    };
    let listed: Vec<String> = claims.iter().map(Claim::describe).collect();
    let detail = format!(
        "{id} is listed by {}; pcscd uses {}",
        listed.join(", "),
        chosen.bundle
    );
    if let Some(library) = chosen.library.as_ref().filter(|l| !l.is_file()) {
        return (
            Check::new(
                BUNDLE,
                Status::Fail,
                format!("{detail}, whose library {} is missing", library.display()),
                Some(format!(
                    "reinstall that bundle ({} for ferroccid's)",
                    "`sudo ferroccid install`"
                )),
            ),
            Some(chosen),
        );
    }
    if chosen.library.is_none() {
        return (
            Check::new(
                BUNDLE,
                Status::Fail,
                format!("{detail}, whose Info.plist names no CFBundleExecutable (pcscd skips it)"),
                Some("reinstall that bundle".to_owned()),
            ),
            Some(chosen),
        );
    }
    if chosen.bundle == FERROCCID_BUNDLE {
        return (Check::pass(BUNDLE, detail), Some(chosen));
    }
    let ours = claims.iter().any(|c| c.bundle == FERROCCID_BUNDLE);
    let advice = if ours {
        format!(
            "{} outranks ferroccid's bundle: move it out of {} if ferroccid should drive the \
             reader, then `sudo systemctl restart pcscd`",
            chosen.bundle,
            drivers_dir.display()
        )
    } else {
        format!("ferroccid's bundle does not list {id}: {refresh}")
    };
    (
        Check::new(
            BUNDLE,
            Status::Warn,
            format!("{detail}, not ferroccid"),
            Some(advice),
        ),
        Some(chosen),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(bundle: &str, class: bool) -> Claim {
        Claim {
            bundle: bundle.into(),
            bundle_name: if class {
                CLASS_DRIVER.into()
            } else {
                bundle.into()
            },
            friendly_name: String::new(),
            library: None,
        }
    }

    #[test]
    fn the_last_specific_driver_wins_over_any_class_driver() {
        let claims = [claim("a", false), claim("ccid", true), claim("b", false)];
        assert_eq!(chosen(&claims).unwrap().bundle, "b");
        let claims = [claim("ccid", true), claim("a", false)];
        assert_eq!(chosen(&claims).unwrap().bundle, "a");
        assert_eq!(chosen(&[claim("ccid", true)]).unwrap().bundle, "ccid");
        assert_eq!(chosen(&[]), None);
    }

    #[test]
    fn a_lone_string_counts_as_a_one_entry_array() {
        let text = "<plist><dict>\n<key>ifdVendorID</key>\n<string>0x08E6</string>\n\
                    <key>ifdProductID</key>\n<string>0x3437</string>\n\
                    <key>ifdFriendlyName</key>\n<string>Twin</string>\n</dict></plist>";
        assert_eq!(entries(text), [(0x08E6, 0x3437, "Twin".to_owned())]);
    }
}
