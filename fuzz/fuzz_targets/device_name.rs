//! Device names (from pcscd, configuration files and the command line):
//! `DeviceName::from_str` never panics, errors quote a bounded amount of the
//! input, and every accepted name prints (Display) to a string that parses
//! back to the same name and prints the same again.
#![no_main]

use ferroccid::DeviceName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 becomes U+FFFD, which the parser must refuse cleanly.
    let text = String::from_utf8_lossy(data);
    match text.parse::<DeviceName>() {
        Ok(name) => {
            let printed = name.to_string();
            let again: DeviceName = printed
                .parse()
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, name, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.len() < 256, "error text of {} bytes", message.len());
        }
    }
});
