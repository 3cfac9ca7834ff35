//! The bundle's Info.plist reader (`ferroccid_ifd::plist`) on arbitrary
//! text: `read_string`, `read_integer`, `read_array` and `readers_of` never
//! panic, and what they read survives the writer: the readers `readers_of`
//! finds, rendered with `render`, read back as the same list (sorted by
//! VID:PID, first of duplicates kept), and render the same text again; a
//! key added with `with_string_key` reads back as its (trimmed) value.
#![no_main]

use ferroccid_ifd::plist::{self, BundleConfig, ReaderId};
use libfuzzer_sys::fuzz_target;

const KEYS: &[&str] = &[
    "CFBundleExecutable",
    "CFBundleName",
    "ifdLogLevel",
    "ifdDriverOptions",
    "ifdVendorID",
    "ifdProductID",
    "ifdFriendlyName",
    "ifdFerroccidCommandTimeout",
    "",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for key in KEYS {
        let _ = plist::read_string(&text, key);
        let _ = plist::read_integer(&text, key);
        let _ = plist::read_array(&text, key);
    }
    let readers = plist::readers_of(&text);

    let config = BundleConfig {
        executable: plist::read_string(&text, "CFBundleExecutable")
            .unwrap_or_else(|| "libferroccid.so".into()),
        log_level: plist::read_integer(&text, "ifdLogLevel").unwrap_or(1),
        driver_options: plist::read_integer(&text, "ifdDriverOptions").unwrap_or(0),
        class_driver: data.first().is_some_and(|b| b & 1 != 0),
    };
    let rendered = plist::render(&config, &readers);
    let mut expected: Vec<ReaderId> = readers.clone();
    expected.sort_by_key(|r| (r.vendor_id, r.product_id));
    expected.dedup_by_key(|r| (r.vendor_id, r.product_id));
    let back = plist::readers_of(&rendered);
    assert_eq!(back.len(), expected.len(), "{text:?}\n{rendered}");
    for (b, e) in back.iter().zip(&expected) {
        assert_eq!((b.vendor_id, b.product_id), (e.vendor_id, e.product_id));
        // Names are read trimmed; the writer escapes them, so they come
        // back as they were read.
        assert_eq!(b.name, e.name, "{rendered}");
    }
    assert_eq!(plist::render(&config, &back), rendered, "not a fixed point");
    assert_eq!(
        plist::read_string(&rendered, "CFBundleExecutable").as_deref(),
        Some(config.executable.trim())
    );
    assert_eq!(
        plist::read_integer(&rendered, "ifdLogLevel"),
        Some(config.log_level)
    );
    assert_eq!(
        plist::read_integer(&rendered, "ifdDriverOptions"),
        Some(config.driver_options)
    );

    // A value taken from the input, added under a key render does not write.
    let value = readers
        .first()
        .map_or_else(|| text.to_string(), |r| r.name.clone());
    let with = plist::with_string_key(&rendered, "ifdFerroccidCommandTimeout", &value);
    assert_eq!(
        plist::read_string(&with, "ifdFerroccidCommandTimeout").as_deref(),
        Some(value.trim()),
        "{with}"
    );
    assert_eq!(plist::readers_of(&with), back);
});
