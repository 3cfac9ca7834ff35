//! Device-name parsing: the forms pcscd emits (pcsc-lite hotplug_libudev.c
//! `"usb:%04x/%04x:libudev:%d:%s"`, hotplug_libusb.c
//! `"usb:%04x/%04x:libusb-1.0:%d:%d:%d"`), ferroccid's own forms, and
//! hostile strings.

use ferroccid::MAX_NAME_LEN;
use ferroccid::{DeviceName, NameError, UsbLocation};
use proptest::prelude::*;

fn usb(vendor_id: u16, product_id: u16, location: UsbLocation) -> DeviceName {
    DeviceName::Usb {
        vendor_id,
        product_id,
        location,
    }
}

fn parse(s: &str) -> Result<DeviceName, NameError> {
    s.parse()
}

#[test]
fn libudev_form_from_pcscd() {
    // The example in libccid's documentation for the libudev form.
    assert_eq!(
        parse("usb:08e6/3437:libudev:0:/dev/bus/usb/008/004"),
        Ok(usb(
            0x08E6,
            0x3437,
            UsbLocation::Libudev {
                interface: 0,
                bus: 8,
                address: 4
            }
        ))
    );
}

#[test]
fn libudev_form_second_interface_of_composite_device() {
    assert_eq!(
        parse("usb:1050/0407:libudev:2:/dev/bus/usb/001/005"),
        Ok(usb(
            0x1050,
            0x0407,
            UsbLocation::Libudev {
                interface: 2,
                bus: 1,
                address: 5
            }
        ))
    );
}

#[test]
fn libudev_form_without_zero_padding() {
    // libccid reads these with sscanf("%d"), so unpadded numbers occur.
    assert_eq!(
        parse("usb:08e6/3437:libudev:0:/dev/bus/usb/8/4"),
        parse("usb:08e6/3437:libudev:0:/dev/bus/usb/008/004")
    );
}

#[test]
fn libusb_form_from_pcscd() {
    // pcsc-lite's documented example: usb:08e6/3437:libusb-1.0:7:99:0
    assert_eq!(
        parse("usb:08e6/3437:libusb-1.0:7:99:0"),
        Ok(usb(
            0x08E6,
            0x3437,
            UsbLocation::Libusb {
                bus: 7,
                address: 99,
                interface: 0
            }
        ))
    );
}

#[test]
fn vid_pid_only_means_first_match() {
    assert_eq!(
        parse("usb:08e6/3437"),
        Ok(usb(0x08E6, 0x3437, UsbLocation::FirstMatch))
    );
    assert_eq!(parse("usb:08E6/3437"), parse("usb:08e6/3437"));
    assert_eq!(
        parse("usb:8e6/1"),
        Ok(usb(0x08E6, 0x0001, UsbLocation::FirstMatch))
    );
    assert_eq!(
        parse("usb:ffff/0000"),
        Ok(usb(0xFFFF, 0x0000, UsbLocation::FirstMatch))
    );
}

#[test]
fn location_accessors() {
    let name = UsbLocation::Libudev {
        interface: 1,
        bus: 3,
        address: 9,
    };
    assert_eq!(name.bus_address(), Some((3, 9)));
    assert_eq!(name.interface(), Some(1));
    assert_eq!(UsbLocation::FirstMatch.bus_address(), None);
    assert_eq!(UsbLocation::FirstMatch.interface(), None);
}

/// Schemes other crates register (the simulator's `sim`): the driver
/// checks the shape and hands the text after `SCHEME:` to the resolver.
#[test]
fn registered_scheme_names() {
    let registered = |scheme: &str, spec: Option<&str>| {
        Ok(DeviceName::Registered {
            scheme: scheme.into(),
            spec: spec.map(Into::into),
        })
    };
    assert_eq!(parse("sim"), registered("sim", None));
    assert_eq!(
        parse("sim:pinpad_2-slots.v1"),
        registered("sim", Some("pinpad_2-slots.v1"))
    );
    // The spec is the resolver's to check: the driver takes any printable text.
    assert_eq!(parse("sim:a:b"), registered("sim", Some("a:b")));
    assert_eq!(parse("simx"), registered("simx", None));
    assert_eq!(parse("pkcs-11:x/y"), registered("pkcs-11", Some("x/y")));
    // Longer than pcscd's 255 bytes, within the spec's PATH_MAX.
    let deep = format!("/{}/p.json", "d".repeat(4000));
    assert_eq!(
        parse(&format!("sim:{deep}")),
        registered("sim", Some(&deep))
    );
    let over = format!("sim:{}", "p".repeat(ferroccid::MAX_SPEC_LEN + 1));
    assert_eq!(parse(&over), Err(NameError::TooLong(over.len())));
    // Not the shape of a scheme.
    for name in ["Sim", "1sim", "s_im:x", &format!("{}:x", "s".repeat(17))] {
        assert!(
            matches!(parse(name), Err(NameError::UnknownScheme(_))),
            "{name}"
        );
    }
}

#[test]
fn usbip_names() {
    assert_eq!(
        parse("usbip:127.0.0.1:3240/1-1"),
        Ok(DeviceName::UsbIp {
            host: "127.0.0.1".into(),
            port: 3240,
            bus_id: "1-1".into()
        })
    );
    assert_eq!(
        parse("usbip:reader-host.example:65535/3-1.4.2"),
        Ok(DeviceName::UsbIp {
            host: "reader-host.example".into(),
            port: 65535,
            bus_id: "3-1.4.2".into()
        })
    );
    assert_eq!(
        parse("usbip:[::1]:3240/1-1"),
        Ok(DeviceName::UsbIp {
            host: "::1".into(),
            port: 3240,
            bus_id: "1-1".into()
        })
    );
}

#[test]
fn display_is_canonical_and_round_trips() {
    for (input, canonical) in [
        (
            "usb:08E6/3437:libudev:0:/dev/bus/usb/8/4",
            "usb:08e6/3437:libudev:0:/dev/bus/usb/008/004",
        ),
        (
            "usb:08e6/3437:libusb-1.0:7:99:0",
            "usb:08e6/3437:libusb-1.0:7:99:0",
        ),
        ("usb:8e6/3437", "usb:08e6/3437"),
        ("sim", "sim"),
        ("sim:x", "sim:x"),
        ("usbip:[fe80::1]:3240/1-1", "usbip:[fe80::1]:3240/1-1"),
        ("usbip:h:1/1-1", "usbip:h:1/1-1"),
    ] {
        let name = parse(input).unwrap();
        assert_eq!(name.to_string(), canonical, "display of {input}");
        assert_eq!(parse(canonical), Ok(name), "reparse of {canonical}");
    }
}

fn missing(field: &'static str) -> NameError {
    NameError::Missing(field)
}

fn bad(field: &'static str, text: &str) -> NameError {
    NameError::BadField {
        field,
        text: text.into(),
    }
}

fn range(field: &'static str, value: u32, min: u32, max: u32) -> NameError {
    NameError::OutOfRange {
        field,
        value,
        min,
        max,
    }
}

#[test]
fn malformed_usb_names_name_the_problem() {
    let cases: &[(&str, NameError)] = &[
        ("", NameError::Empty),
        ("usb:", missing("vendor id")),
        ("usb:08e6", missing("product id")),
        ("usb:08e6/", missing("product id")),
        ("usb:/3437", missing("vendor id")),
        ("usb:108e6/3437", bad("vendor id", "108e6")),
        ("usb:0x8e/3437", bad("vendor id", "0x8e")),
        ("usb:+8e6/3437", bad("vendor id", "+8e6")),
        ("usb:08e6/34g7", bad("product id", "34g7")),
        ("usb:08e6/3437/1", bad("product id", "3437/1")),
        ("usb:08e6/3437:", NameError::UnknownUsbForm("".into())),
        (
            "usb:08e6/3437:libusb:1:2:0",
            NameError::UnknownUsbForm("libusb:1:2:0".into()),
        ),
        ("usb:08e6/3437:libudev:0", missing("device node")),
        (
            "usb:08e6/3437:libudev::/dev/bus/usb/001/002",
            missing("interface number"),
        ),
        (
            "usb:08e6/3437:libudev:0:/dev/bus/usb/008",
            missing("device number"),
        ),
        (
            "usb:08e6/3437:libudev:0:/tmp/bus/usb/008/004",
            bad("device node", "/tmp/bus/usb/008/004"),
        ),
        (
            "usb:08e6/3437:libudev:256:/dev/bus/usb/008/004",
            range("interface number", 256, 0, 255),
        ),
        (
            "usb:08e6/3437:libudev:-1:/dev/bus/usb/008/004",
            bad("interface number", "-1"),
        ),
        (
            "usb:08e6/3437:libudev:0:/dev/bus/usb/000/004",
            range("bus number", 0, 1, 255),
        ),
        (
            "usb:08e6/3437:libudev:0:/dev/bus/usb/001/128",
            range("device number", 128, 1, 127),
        ),
        (
            "usb:08e6/3437:libudev:0:/dev/bus/usb/001/000",
            range("device number", 0, 1, 127),
        ),
        ("usb:08e6/3437:libusb-1.0:7:99", missing("interface number")),
        ("usb:08e6/3437:libusb-1.0:7", missing("device address")),
        ("usb:08e6/3437:libusb-1.0:", missing("bus number")),
        (
            "usb:08e6/3437:libusb-1.0:7:99:0:5",
            NameError::Trailing("5".into()),
        ),
        (
            "usb:08e6/3437:libusb-1.0:7:256:0",
            range("device address", 256, 0, 255),
        ),
        (
            "usb:08e6/3437:libusb-1.0:99999999999:1:0",
            bad("bus number", "99999999999"),
        ),
        (
            "USB:08e6/3437",
            NameError::UnknownScheme("USB:08e6/3437".into()),
        ),
        (
            "/dev/bus/usb/001/002",
            NameError::UnknownScheme("/dev/bus/usb/001/002".into()),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input).as_ref(), Err(expected), "input {input:?}");
    }
}

#[test]
fn path_traversal_in_device_node_is_rejected() {
    assert_eq!(
        parse("usb:08e6/3437:libudev:0:/dev/bus/usb/008/004/../../../etc/passwd"),
        Err(bad("device number", "004/../../../etc/passwd"))
    );
    assert_eq!(
        parse("usb:08e6/3437:libudev:0:/dev/bus/usb/../../etc/x"),
        Err(bad("bus number", ".."))
    );
}

#[test]
fn non_printable_and_non_ascii_bytes_are_rejected_with_their_offset() {
    assert_eq!(
        parse("usb:08e6/3437\0:libudev:0:/dev/bus/usb/001/002"),
        Err(NameError::NotPrintable { offset: 13 })
    );
    assert_eq!(
        parse("usb:08e6/3437:libusb-1.0:7:99:0 "),
        Err(NameError::NotPrintable { offset: 31 })
    );
    assert_eq!(
        parse("usb:08\u{e9}6/3437"),
        Err(NameError::NotPrintable { offset: 6 })
    );
    assert_eq!(
        parse("sim:a\nb"),
        Err(NameError::NotPrintable { offset: 5 })
    );
    assert_eq!(parse(" sim"), Err(NameError::NotPrintable { offset: 0 }));
}

#[test]
fn overlong_names_are_rejected_before_parsing() {
    let long = format!("usb:08e6/3437:libudev:0:/dev/bus/usb/{}", "0".repeat(300));
    assert_eq!(parse(&long), Err(NameError::TooLong(long.len())));
    let exactly_max = "s".repeat(MAX_NAME_LEN);
    assert!(matches!(
        parse(&exactly_max),
        Err(NameError::UnknownScheme(_))
    ));
    assert_eq!(
        parse(&"s".repeat(MAX_NAME_LEN + 1)),
        Err(NameError::TooLong(MAX_NAME_LEN + 1))
    );
}

#[test]
fn quoted_text_in_errors_is_bounded() {
    let name = format!("x{}", "y".repeat(200));
    match parse(&name) {
        Err(NameError::UnknownScheme(text)) => assert!(text.len() <= 40, "{} bytes", text.len()),
        other => panic!("expected UnknownScheme, got {other:?}"),
    }
}

#[test]
fn malformed_registered_and_usbip_names() {
    let cases: &[(&str, NameError)] = &[
        ("sim:", missing("text after the scheme")),
        ("usbip:", missing("port")),
        ("usbip:host", missing("port")),
        ("usbip:host:3240", missing("bus id")),
        ("usbip:host:0/1-1", range("port", 0, 1, 65535)),
        ("usbip:host:65536/1-1", range("port", 65536, 1, 65535)),
        ("usbip:host:/1-1", missing("port")),
        ("usbip:host:3240/", bad("bus id", "")),
        ("usbip:host:3240/1-1/../x", bad("bus id", "1-1/../x")),
        ("usbip::3240/1-1", bad("host", "")),
        ("usbip:-evil:3240/1-1", bad("host", "-evil")),
        ("usbip:a_b:3240/1-1", bad("host", "a_b")),
        ("usbip:[::1/1-1", bad("host", "[::1/1-1")),
        ("usbip:[]:3240/1-1", bad("host", "")),
        ("usbip:[zz::1]:3240/1-1", bad("host", "zz::1")),
        ("usbip:[::1]3240/1-1", missing("port")),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input).as_ref(), Err(expected), "input {input:?}");
    }
}

#[test]
fn errors_display_the_field_at_fault() {
    let e = parse("usb:08e6/3437:libudev:0:/dev/bus/usb/001/128").unwrap_err();
    assert_eq!(e.to_string(), "device number 128 is outside 1..=127");
    let e = parse("usb:zz/3437").unwrap_err();
    assert_eq!(e.to_string(), "bad vendor id: \"zz\"");
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,300}") {
        let _ = parse(&s);
    }

    #[test]
    fn arbitrary_usb_like_strings_never_panic(s in "usb:[0-9a-fA-F/:.a-z-]{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn libudev_names_round_trip(vid: u16, pid: u16, interface: u8, bus in 1u8..=255, address in 1u8..=127) {
        let name = usb(vid, pid, UsbLocation::Libudev { interface, bus, address });
        prop_assert_eq!(parse(&name.to_string()), Ok(name));
    }

    #[test]
    fn libusb_names_round_trip(vid: u16, pid: u16, bus: u8, address: u8, interface: u8) {
        let name = usb(vid, pid, UsbLocation::Libusb { bus, address, interface });
        prop_assert_eq!(parse(&name.to_string()), Ok(name));
    }
}
