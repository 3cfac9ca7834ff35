//! What follows `sim:` in a device name. The driver hands any registered
//! scheme's text through unchecked (`DeviceName::Registered`); this is
//! where the simulator checks its own:
//!
//! `PROFILE` is a built-in profile name, the 54-byte CCID class descriptor
//! in hex (108 digits, bytes optionally separated by `:`, `,`, `-` or `.`;
//! packed), or the path of a JSON profile file (ending in `.json`,
//! printable ASCII without spaces, at most [`MAX_SPEC_LEN`] bytes).
//!
//! `PROFILE?violate=ID` makes the reader commit the CCID breach `ID` (a
//! [`Violation`] id), for testing a conformance checker.
use crate::reader::Violation;
use ferroccid::ccid::descriptor::CLASS_DESCRIPTOR_LEN;
use ferroccid::{NameError, MAX_SPEC_LEN};

/// The scheme the simulator registers.
pub const SCHEME: &str = "sim";
/// Simulator profile names are short identifiers.
const MAX_PROFILE_LEN: usize = 64;
/// Hex digits of a 54-byte CCID class descriptor given as a profile.
const DESCRIPTOR_HEX_DIGITS: usize = 2 * CLASS_DESCRIPTOR_LEN;
/// Offending text quoted in errors is cut to this many characters so a
/// hostile name cannot flood the log.
const MAX_QUOTED: usize = 40;

fn quote(text: &str) -> String {
    let mut end = text.len().min(MAX_QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Checks what follows `sim:` and returns it as the profile spec
/// [`Profile::parse`](crate::profile::Profile::parse) takes (a class
/// descriptor packed into 108 upper-case hex digits).
pub fn profile_spec(profile: &str) -> Result<String, NameError> {
    if profile.is_empty() {
        return Err(NameError::Missing("simulator profile"));
    }
    let profile = if let Some(packed) = descriptor_hex(profile) {
        packed
    } else if is_identifier(profile) || is_profile_path(profile) {
        profile.to_owned()
    } else {
        return Err(NameError::BadField {
            field: "simulator profile",
            text: quote(profile),
        });
    };
    Ok(profile)
}

/// Splits `PROFILE?violate=ID` into the profile and the violation; a
/// spec without `?` has none.
pub fn split_violation(spec: &str) -> Result<(&str, Option<Violation>), NameError> {
    let Some((profile, option)) = spec.split_once('?') else {
        return Ok((spec, None));
    };
    let violation = option
        .strip_prefix("violate=")
        .and_then(Violation::from_id)
        .ok_or_else(|| NameError::BadField {
            field: "simulator option (violate=ID)",
            text: quote(option),
        })?;
    Ok((profile, Some(violation)))
}

/// A built-in profile name: a short identifier.
fn is_identifier(profile: &str) -> bool {
    profile.len() <= MAX_PROFILE_LEN
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A profile file: any printable, space-free path (the caller checked the
/// characters) ending in `.json`, so a mistyped profile name or a stray
/// path such as `../etc` is refused here rather than opened.
fn is_profile_path(profile: &str) -> bool {
    profile.len() <= MAX_SPEC_LEN && profile.len() > ".json".len() && profile.ends_with(".json")
}

/// A class descriptor in hex: exactly 108 hex digits, separators allowed
/// only between bytes. Returns the digits packed, upper case.
fn descriptor_hex(profile: &str) -> Option<String> {
    let is_separator = |b: u8| matches!(b, b':' | b',' | b'-' | b'.');
    let mut packed = String::with_capacity(DESCRIPTOR_HEX_DIGITS);
    let mut run = 0usize;
    for b in profile.bytes() {
        if b.is_ascii_hexdigit() {
            packed.push(char::from(b.to_ascii_uppercase()));
            run += 1;
        } else if is_separator(b) && run % 2 == 0 && run > 0 {
            // A separator ends a byte: the digits so far come in pairs.
            run = 0;
        } else {
            return None;
        }
        if packed.len() > DESCRIPTOR_HEX_DIGITS {
            return None;
        }
    }
    (packed.len() == DESCRIPTOR_HEX_DIGITS && run > 0).then_some(packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroccid::{DeviceName, MAX_NAME_LEN};

    /// A whole `sim:` name through the driver's parser, then this module's.
    fn parse(name: &str) -> Result<String, NameError> {
        match DeviceName::parse(name)? {
            DeviceName::Registered {
                scheme,
                spec: Some(spec),
            } if scheme == SCHEME => profile_spec(&spec),
            other => panic!("not a sim: name: {other:?}"),
        }
    }

    const GEMPC_TWIN: [u8; 54] = [
        0x36, 0x21, 0x00, 0x01, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00, 0xA0, 0x0F, 0x00, 0x00, 0xA0,
        0x0F, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x16, 0x40, 0x05, 0x00, 0x00, 0xFE, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x02, 0x01, 0x00, 0x0F,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];

    fn hex(sep: &str, lower: bool) -> String {
        GEMPC_TWIN
            .iter()
            .map(|b| {
                if lower {
                    format!("{b:02x}")
                } else {
                    format!("{b:02X}")
                }
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn sim(profile: &str) -> String {
        profile.to_owned()
    }

    fn bad_profile(text: &str) -> Result<String, NameError> {
        Err(NameError::BadField {
            field: "simulator profile",
            text: quote(text),
        })
    }

    #[test]
    fn descriptor_hex_is_accepted_packed_or_separated_and_stored_packed() {
        let packed = hex("", false);
        assert_eq!(packed.len(), 108);
        for sep in ["", ":", ",", "-", "."] {
            for lower in [false, true] {
                let name = format!("sim:{}", hex(sep, lower));
                assert_eq!(parse(&name), Ok(sim(&packed)), "{name}");
            }
        }
        // 161 bytes with separators: more than a profile name, fine for sim:.
        let spec = parse(&format!("sim:{}", hex(":", false))).unwrap();
        assert_eq!(spec, packed);
        assert_eq!(parse(&format!("sim:{spec}")), Ok(spec));
    }

    #[test]
    fn descriptor_hex_of_the_wrong_size_or_shape_is_refused() {
        let packed = hex("", false);
        let short = &packed[..106]; // 53 bytes
        let long = format!("{packed}00"); // 55 bytes
        assert_eq!(parse(&format!("sim:{short}")), bad_profile(short));
        assert_eq!(parse(&format!("sim:{long}")), bad_profile(&long));
        // A separator must end a whole byte.
        let split = format!("3{}", &packed[1..]).replacen("3", "3:", 1);
        assert_eq!(parse(&format!("sim:{split}")), bad_profile(&split));
        let trailing = format!("{}:", hex(":", false));
        assert_eq!(parse(&format!("sim:{trailing}")), bad_profile(&trailing));
        let leading = format!(":{}", hex(":", false));
        assert_eq!(parse(&format!("sim:{leading}")), bad_profile(&leading));
    }

    #[test]
    fn profile_files_are_paths_ending_in_json() {
        for path in [
            "/etc/ferroccid/gemalto pinpad.json".replace(' ', "_"),
            "fixtures/profiles/short-apdu.json".to_owned(),
            "../profiles/a+b=c@d~e.json".to_owned(),
            "C:\\profiles\\x.json".to_owned(),
        ] {
            assert_eq!(parse(&format!("sim:{path}")), Ok(sim(&path)));
        }
        // Longer than pcscd's 255 bytes, within PATH_MAX.
        let deep = format!("/{}/p.json", "d".repeat(4000));
        assert_eq!(parse(&format!("sim:{deep}")), Ok(sim(&deep)));
        // Not a profile file: no .json.
        assert_eq!(parse("sim:../etc"), bad_profile("../etc"));
        assert_eq!(parse("sim:/etc/shadow"), bad_profile("/etc/shadow"));
        // Spaces and control characters stay refused.
        assert_eq!(
            parse("sim:my profile.json"),
            Err(NameError::NotPrintable { offset: 6 })
        );
    }

    #[test]
    fn a_violation_follows_the_profile_after_a_question_mark() {
        assert_eq!(split_violation("tpdu"), Ok(("tpdu", None)));
        assert_eq!(
            split_violation("4-slot?violate=bad-slot"),
            Ok(("4-slot", Some(Violation::BadSlot)))
        );
        for bad in ["tpdu?violate=nonsense", "tpdu?break=abort", "tpdu?"] {
            assert!(
                matches!(split_violation(bad), Err(NameError::BadField { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn sim_names_are_bounded_by_path_max() {
        let at_max = format!("/{}.json", "p".repeat(MAX_SPEC_LEN - 6));
        assert_eq!(at_max.len(), MAX_SPEC_LEN);
        assert_eq!(parse(&format!("sim:{at_max}")), Ok(sim(&at_max)));
        let over = format!("/{}.json", "p".repeat(MAX_SPEC_LEN - 5));
        let name = format!("sim:{over}");
        assert_eq!(parse(&name), Err(NameError::TooLong(name.len())));
        // Other schemes keep pcscd's limit.
        let usb = format!("usb:08e6/3437:{}", "x".repeat(MAX_NAME_LEN));
        assert_eq!(parse(&usb), Err(NameError::TooLong(usb.len())));
    }
}
