//! The bundle's Info.plist: generated, never hand-edited.
//!
//! pcscd hands a USB device to a bundle only when the device's VID:PID is
//! in the bundle's `ifdVendorID`/`ifdProductID` arrays (pcsc-lite's
//! hotplug_libudev.c). `CFBundleName` `CCIDCLASSDRIVER` marks a class
//! driver: a specific driver listing the same VID:PID wins over it.

use std::fmt::Write as _;

/// One reader pcscd should hand to the bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReaderId {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// Name shown by pcscd when the device has no product string.
    pub name: String,
}

/// What goes into Info.plist besides the reader list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleConfig {
    /// File name of the library inside `Contents/Linux/`.
    pub executable: String,
    /// `ifdLogLevel` bit mask (see `ifd::log`).
    pub log_level: u32,
    /// `ifdDriverOptions`: bit 0 enables FEATURE_CCID_ESC_COMMAND.
    pub driver_options: u32,
    /// Declare the bundle a CCID class driver (lower priority than
    /// specific drivers listing the same reader).
    pub class_driver: bool,
}

/// Driver option bit: allow FEATURE_CCID_ESC_COMMAND (libccid's numbering).
pub const OPTION_ESCAPE: u32 = 0x0001;

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders Info.plist. Readers are sorted by VID:PID; of duplicates the
/// first listed wins (the sort is stable).
pub fn render(config: &BundleConfig, readers: &[ReaderId]) -> String {
    let mut readers = readers.to_vec();
    readers.sort_by_key(|r| (r.vendor_id, r.product_id));
    readers.dedup_by_key(|r| (r.vendor_id, r.product_id));
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
    s.push_str("<plist version=\"1.0\">\n<dict>\n");
    let mut key = |k: &str, v: &str| {
        let _ = writeln!(s, "\t<key>{k}</key>\n\t<string>{}</string>", escape_xml(v));
    };
    key("CFBundleDevelopmentRegion", "English");
    key("CFBundleExecutable", &config.executable);
    key("CFBundleIdentifier", "org.ferroccid.ifd");
    key("CFBundleInfoDictionaryVersion", "6.0");
    if config.class_driver {
        key("CFBundleName", "CCIDCLASSDRIVER");
    } else {
        key("CFBundleName", "ferroccid");
    }
    key("CFBundlePackageType", "BNDL");
    key("CFBundleShortVersionString", env!("CARGO_PKG_VERSION"));
    key("CFBundleVersion", env!("CARGO_PKG_VERSION"));
    key("ifdCapabilities", "0x00000000");
    key("ifdProtocolSupport", "0x00000001");
    key("ifdVersionNumber", "0x00000001");
    key("ifdLogLevel", &format!("0x{:04X}", config.log_level));
    key(
        "ifdDriverOptions",
        &format!("0x{:04X}", config.driver_options),
    );
    let mut array = |k: &str, values: Vec<String>| {
        let _ = writeln!(s, "\t<key>{k}</key>\n\t<array>");
        for v in values {
            let _ = writeln!(s, "\t\t<string>{}</string>", escape_xml(&v));
        }
        s.push_str("\t</array>\n");
    };
    array(
        "ifdVendorID",
        readers
            .iter()
            .map(|r| format!("0x{:04X}", r.vendor_id))
            .collect(),
    );
    array(
        "ifdProductID",
        readers
            .iter()
            .map(|r| format!("0x{:04X}", r.product_id))
            .collect(),
    );
    array(
        "ifdFriendlyName",
        readers.iter().map(|r| r.name.clone()).collect(),
    );
    s.push_str("</dict>\n</plist>\n");
    s
}

/// `text` (a rendered Info.plist) with `<key>KEY</key><string>VALUE</string>`
/// added at the end of its top-level dict (for keys [`render`] does not
/// know, such as `ifdFerroccidCommandTimeout`).
pub fn with_string_key(text: &str, key: &str, value: &str) -> String {
    let entry = format!(
        "\t<key>{}</key>\n\t<string>{}</string>\n",
        escape_xml(key),
        escape_xml(value)
    );
    match text.rfind("</dict>") {
        Some(at) => format!("{}{entry}{}", &text[..at], &text[at..]),
        None => format!("{text}{entry}"),
    }
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The `<string>` (or `<integer>`) value after `<key>KEY</key>`.
pub fn read_string(text: &str, key: &str) -> Option<String> {
    let after = text
        .split_once(&format!("<key>{key}</key>"))?
        .1
        .trim_start();
    for tag in ["string", "integer"] {
        if let Some(rest) = after.strip_prefix(&format!("<{tag}>")) {
            return Some(unescape_xml(
                rest.split_once(&format!("</{tag}>"))?.0.trim(),
            ));
        }
    }
    None
}

/// A number value (`0x…` hex or decimal, string or integer element).
pub fn read_integer(text: &str, key: &str) -> Option<u32> {
    let value = read_string(text, key)?;
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// The `<string>` elements of the `<array>` after `<key>KEY</key>`.
pub fn read_array(text: &str, key: &str) -> Vec<String> {
    let Some((_, after)) = text.split_once(&format!("<key>{key}</key>")) else {
        return Vec::new();
    };
    let Some(body) = after
        .trim_start()
        .strip_prefix("<array>")
        .and_then(|b| b.split_once("</array>"))
    else {
        return Vec::new();
    };
    body.0
        .split("<string>")
        .skip(1)
        .filter_map(|part| {
            part.split_once("</string>")
                .map(|(v, _)| unescape_xml(v.trim()))
        })
        .collect()
}

/// The readers another bundle's Info.plist lists (e.g. the installed
/// libccid's), so installing ferroccid never loses a reader that worked.
pub fn readers_of(text: &str) -> Vec<ReaderId> {
    let vendors = read_array(text, "ifdVendorID");
    let products = read_array(text, "ifdProductID");
    let names = read_array(text, "ifdFriendlyName");
    let hex =
        |s: &str| u16::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16).ok();
    vendors
        .iter()
        .zip(&products)
        .enumerate()
        .filter_map(|(i, (v, p))| {
            Some(ReaderId {
                vendor_id: hex(v)?,
                product_id: hex(p)?,
                name: names.get(i).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_plist_reads_back() {
        let config = BundleConfig {
            executable: "libferroccid.so".into(),
            log_level: 3,
            driver_options: OPTION_ESCAPE,
            class_driver: true,
        };
        let readers = vec![
            ReaderId {
                vendor_id: 0x1209,
                product_id: 0x0001,
                name: "sim & co".into(),
            },
            ReaderId {
                vendor_id: 0x072F,
                product_id: 0x90CC,
                name: "ACR38U".into(),
            },
            ReaderId {
                vendor_id: 0x1209,
                product_id: 0x0001,
                name: "duplicate".into(),
            },
        ];
        let text = render(&config, &readers);
        assert_eq!(
            read_string(&text, "CFBundleExecutable").as_deref(),
            Some("libferroccid.so")
        );
        assert_eq!(
            read_string(&text, "CFBundleName").as_deref(),
            Some("CCIDCLASSDRIVER")
        );
        assert_eq!(read_integer(&text, "ifdLogLevel"), Some(3));
        assert_eq!(read_integer(&text, "ifdDriverOptions"), Some(1));
        assert_eq!(read_array(&text, "ifdVendorID"), vec!["0x072F", "0x1209"]);
        assert_eq!(read_array(&text, "ifdProductID"), vec!["0x90CC", "0x0001"]);
        let back = readers_of(&text);
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].name, "sim & co");
    }
}
