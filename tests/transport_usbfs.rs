//! The usbfs backend on the host: its kernel structures and ioctl numbers
//! against the installed `linux/usbdevice_fs.h` (a C program compiled
//! against the header prints the real values), and the answers it gives
//! without a device. Transfers run in the QEMU guest: `tests/vm_usbfs.rs`.
#![cfg(all(feature = "usbfs", target_os = "linux"))]

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

use ferroccid::backend::usbfs::{abi, list, UsbfsTransport};
use ferroccid::TransportError;

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#define P(x) printf(#x " %lu\n", (unsigned long)(x))
int main(void) {
    P(sizeof(struct usbdevfs_urb));
    P(offsetof(struct usbdevfs_urb, type)); P(offsetof(struct usbdevfs_urb, endpoint));
    P(offsetof(struct usbdevfs_urb, status)); P(offsetof(struct usbdevfs_urb, flags));
    P(offsetof(struct usbdevfs_urb, buffer)); P(offsetof(struct usbdevfs_urb, buffer_length));
    P(offsetof(struct usbdevfs_urb, actual_length)); P(offsetof(struct usbdevfs_urb, start_frame));
    P(offsetof(struct usbdevfs_urb, number_of_packets)); P(offsetof(struct usbdevfs_urb, error_count));
    P(offsetof(struct usbdevfs_urb, signr)); P(offsetof(struct usbdevfs_urb, usercontext));
    P(sizeof(struct usbdevfs_ctrltransfer));
    P(offsetof(struct usbdevfs_ctrltransfer, wLength)); P(offsetof(struct usbdevfs_ctrltransfer, timeout));
    P(offsetof(struct usbdevfs_ctrltransfer, data));
    P(sizeof(struct usbdevfs_bulktransfer)); P(offsetof(struct usbdevfs_bulktransfer, data));
    P(sizeof(struct usbdevfs_disconnect_claim)); P(offsetof(struct usbdevfs_disconnect_claim, driver));
    P(USBDEVFS_URB_TYPE_INTERRUPT); P(USBDEVFS_URB_TYPE_BULK);
    P(USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER); P(USBDEVFS_CAP_REAP_AFTER_DISCONNECT);
    P(USBDEVFS_CONTROL); P(USBDEVFS_BULK); P(USBDEVFS_SUBMITURB); P(USBDEVFS_DISCARDURB);
    P(USBDEVFS_REAPURBNDELAY); P(USBDEVFS_CLAIMINTERFACE); P(USBDEVFS_RELEASEINTERFACE);
    P(USBDEVFS_CLEAR_HALT); P(USBDEVFS_GET_CAPABILITIES); P(USBDEVFS_DISCONNECT_CLAIM);
    return 0;
}
"#;

fn header_values() -> HashMap<String, u64> {
    assert!(
        std::path::Path::new("/usr/include/linux/usbdevice_fs.h").exists(),
        "linux-libc-dev is missing (linux/usbdevice_fs.h): run tests/scripts/install-deps.sh"
    );
    let dir = std::env::temp_dir().join(format!("ferroccid-usbfs-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("abi.c");
    let binary = dir.join("abi");
    std::fs::write(&source, PROGRAM).unwrap();
    let status = Command::new("gcc")
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .status()
        .expect("gcc is needed to check the usbfs ABI against the kernel header");
    assert!(status.success(), "the header check program did not compile");
    let out = Command::new(&binary).output().unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn structures_and_ioctl_numbers_match_the_kernel_header() {
    let c = header_values();
    let ours: Vec<(&str, u64)> = vec![
        ("sizeof(struct usbdevfs_urb)", size_of::<abi::Urb>() as u64),
        (
            "offsetof(struct usbdevfs_urb, type)",
            offset_of!(abi::Urb, kind) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, endpoint)",
            offset_of!(abi::Urb, endpoint) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, status)",
            offset_of!(abi::Urb, status) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, flags)",
            offset_of!(abi::Urb, flags) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, buffer)",
            offset_of!(abi::Urb, buffer) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, buffer_length)",
            offset_of!(abi::Urb, buffer_length) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, actual_length)",
            offset_of!(abi::Urb, actual_length) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, start_frame)",
            offset_of!(abi::Urb, start_frame) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, number_of_packets)",
            offset_of!(abi::Urb, number_of_packets) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, error_count)",
            offset_of!(abi::Urb, error_count) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, signr)",
            offset_of!(abi::Urb, signr) as u64,
        ),
        (
            "offsetof(struct usbdevfs_urb, usercontext)",
            offset_of!(abi::Urb, usercontext) as u64,
        ),
        (
            "sizeof(struct usbdevfs_ctrltransfer)",
            size_of::<abi::CtrlTransfer>() as u64,
        ),
        (
            "offsetof(struct usbdevfs_ctrltransfer, wLength)",
            offset_of!(abi::CtrlTransfer, length) as u64,
        ),
        (
            "offsetof(struct usbdevfs_ctrltransfer, timeout)",
            offset_of!(abi::CtrlTransfer, timeout) as u64,
        ),
        (
            "offsetof(struct usbdevfs_ctrltransfer, data)",
            offset_of!(abi::CtrlTransfer, data) as u64,
        ),
        (
            "sizeof(struct usbdevfs_bulktransfer)",
            size_of::<abi::BulkTransfer>() as u64,
        ),
        (
            "offsetof(struct usbdevfs_bulktransfer, data)",
            offset_of!(abi::BulkTransfer, data) as u64,
        ),
        (
            "sizeof(struct usbdevfs_disconnect_claim)",
            size_of::<abi::DisconnectClaim>() as u64,
        ),
        (
            "offsetof(struct usbdevfs_disconnect_claim, driver)",
            offset_of!(abi::DisconnectClaim, driver) as u64,
        ),
        (
            "USBDEVFS_URB_TYPE_INTERRUPT",
            u64::from(abi::URB_TYPE_INTERRUPT),
        ),
        ("USBDEVFS_URB_TYPE_BULK", u64::from(abi::URB_TYPE_BULK)),
        (
            "USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER",
            u64::from(abi::DISCONNECT_CLAIM_EXCEPT_DRIVER),
        ),
        (
            "USBDEVFS_CAP_REAP_AFTER_DISCONNECT",
            u64::from(abi::CAP_REAP_AFTER_DISCONNECT),
        ),
        ("USBDEVFS_CONTROL", abi::USBDEVFS_CONTROL),
        ("USBDEVFS_BULK", abi::USBDEVFS_BULK),
        ("USBDEVFS_SUBMITURB", abi::USBDEVFS_SUBMITURB),
        ("USBDEVFS_DISCARDURB", abi::USBDEVFS_DISCARDURB),
        ("USBDEVFS_REAPURBNDELAY", abi::USBDEVFS_REAPURBNDELAY),
        ("USBDEVFS_CLAIMINTERFACE", abi::USBDEVFS_CLAIMINTERFACE),
        ("USBDEVFS_RELEASEINTERFACE", abi::USBDEVFS_RELEASEINTERFACE),
        ("USBDEVFS_CLEAR_HALT", abi::USBDEVFS_CLEAR_HALT),
        ("USBDEVFS_GET_CAPABILITIES", abi::USBDEVFS_GET_CAPABILITIES),
        ("USBDEVFS_DISCONNECT_CLAIM", abi::USBDEVFS_DISCONNECT_CLAIM),
    ];
    assert_eq!(c.len(), ours.len(), "every printed value is compared");
    for (name, value) in ours {
        assert_eq!(c.get(name), Some(&value), "{name}");
    }
}

#[test]
fn listing_agrees_with_sysfs() {
    let found = list().expect("listing never fails for lack of USB");
    if !std::path::Path::new("/sys/bus/usb/devices").exists() {
        assert!(found.is_empty(), "no USB subsystem, yet {found:?}");
    }
    for info in &found {
        assert!(info.name.starts_with("usb:"), "{}", info.name);
        assert!(matches!(info.interface_class, 0x0B | 0xFF));
    }
}

#[cfg(feature = "nusb")]
#[test]
fn listing_equals_the_nusb_backend() {
    let ours = list().unwrap();
    let theirs = ferroccid::backend::nusb::list().unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn absent_devices_and_foreign_names_are_typed_errors() {
    let err = UsbfsTransport::open_str("usb:ffff/fffe").expect_err("no such device");
    assert!(matches!(err, TransportError::NotFound(_)), "{err:?}");
    let err = UsbfsTransport::open_str("sim").expect_err("not a USB name");
    assert!(matches!(err, TransportError::Unsupported(_)), "{err:?}");
    let err = UsbfsTransport::open_str("usb:zz").expect_err("bad name");
    assert!(matches!(err, TransportError::BadName(_)), "{err:?}");
}
