//! USB backends on a machine that may have no USB at all (containers,
//! CI): discovery answers an empty list, opening answers typed errors.

use std::path::Path;

use ferroccid::TransportError;

fn machine_has_usb() -> bool {
    Path::new("/sys/bus/usb/devices").exists() || Path::new("/dev/bus/usb").exists()
}

#[cfg(feature = "nusb")]
mod nusb_backend {
    use super::*;
    use ferroccid::backend::nusb::{list, NusbTransport};

    #[test]
    fn list_succeeds_and_is_empty_without_usb() {
        let found = list().expect("list() must not fail for lack of USB");
        if !machine_has_usb() {
            assert!(found.is_empty(), "no USB here, yet found {found:?}");
        }
        for reader in &found {
            assert!(reader.interface_class == 0x0B || reader.interface_class == 0xFF);
            assert!(reader.name.starts_with("usb:"));
        }
    }

    #[test]
    fn opening_a_missing_device_is_not_found() {
        // VID 0xFFFF is reserved by the USB-IF and never assigned.
        match NusbTransport::open_str("usb:ffff/fffe:libusb-1.0:1:1:0") {
            Err(TransportError::NotFound(name)) => {
                assert_eq!(name, "usb:ffff/fffe:libusb-1.0:1:1:0")
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn non_usb_names_are_unsupported_and_bad_names_are_parse_errors() {
        assert!(matches!(
            NusbTransport::open_str("sim"),
            Err(TransportError::Unsupported(_))
        ));
        assert!(matches!(
            NusbTransport::open_str("usbip:localhost:3240/1-1"),
            Err(TransportError::Unsupported(_))
        ));
        assert!(matches!(
            NusbTransport::open_str("usb:zz/1"),
            Err(TransportError::BadName(_))
        ));
    }
}

#[cfg(feature = "rusb")]
mod rusb_backend {
    use super::*;
    use ferroccid::backend::rusb::{
        list, map_error, map_transfer_error, needs_more, RusbTransport,
    };

    #[test]
    fn list_succeeds_and_is_empty_without_usb() {
        let found = list().expect("list() must not fail for lack of USB");
        if !machine_has_usb() {
            assert!(found.is_empty(), "no USB here, yet found {found:?}");
        }
    }

    #[test]
    fn opening_a_missing_device_is_not_found() {
        assert!(matches!(
            RusbTransport::open_str("usb:ffff/fffe"),
            Err(TransportError::NotFound(_))
        ));
        assert!(matches!(
            RusbTransport::open_str("sim:default"),
            Err(TransportError::Unsupported(_))
        ));
    }

    #[test]
    fn libusb_errors_keep_gone_stall_timeout_apart() {
        assert!(matches!(
            map_transfer_error(rusb::Error::NoDevice),
            TransportError::DeviceGone
        ));
        assert!(matches!(
            map_transfer_error(rusb::Error::Pipe),
            TransportError::Stall
        ));
        assert!(matches!(
            map_transfer_error(rusb::Error::Timeout),
            TransportError::Timeout
        ));
        assert!(matches!(
            map_transfer_error(rusb::Error::Io),
            TransportError::Io { .. }
        ));
        assert!(matches!(
            map_error("claiming", rusb::Error::Busy),
            TransportError::Busy(_)
        ));
        match map_error("opening", rusb::Error::Access) {
            TransportError::Io { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied)
            }
            other => panic!("expected Io(PermissionDenied), got {other:?}"),
        }
    }

    fn header(dw_length: u32) -> Vec<u8> {
        let mut h = vec![0x80];
        h.extend_from_slice(&dw_length.to_le_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 0]);
        h
    }

    #[test]
    fn sliced_reads_continue_only_inside_an_announced_message() {
        // DataBlock announcing 100 bytes: 10 + 100 = 110 = 64 + 46.
        let mut msg = header(100);
        msg.resize(64, 0);
        assert!(needs_more(&msg, 64, 4096), "one full packet of 110 bytes");
        msg.resize(110, 0);
        assert!(!needs_more(&msg, 64, 4096), "ended by a short packet");
        // Exactly 64 bytes announced as 54 of data: complete, no ZLP wait.
        let mut exact = header(54);
        exact.resize(64, 0);
        assert!(!needs_more(&exact, 64, 4096));
        // Header cut by an 8-byte packet size.
        assert!(needs_more(&header(0)[..8], 8, 4096));
        // Buffer already full: nothing more can be read.
        let mut full = header(1000);
        full.resize(128, 0);
        assert!(!needs_more(&full, 64, 128));
        assert!(!needs_more(&[], 64, 4096));
    }
}
