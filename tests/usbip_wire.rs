//! USB/IP wire format against headers built by hand from the kernel's
//! Documentation/usb/usbip_protocol.rst (all fields big-endian, setup
//! packet as USB sends it).

use ferroccid::usbip::wire::*;
use proptest::prelude::*;

/// Big-endian words, as the protocol document lays headers out.
fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_be_bytes()).collect()
}

#[test]
fn op_req_devlist_is_version_code_status() {
    let bytes = [0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0];
    let op = OpHeader::parse(&bytes).unwrap();
    assert_eq!(
        op,
        OpHeader {
            version: 0x0111,
            code: 0x8005,
            status: 0
        }
    );
    assert_eq!(OpHeader::new(OP_REQ_DEVLIST).to_bytes(), bytes);
}

#[test]
fn op_req_import_carries_a_32_byte_busid() {
    let req = emit_import_request("1-1");
    assert_eq!(req.len(), 40);
    assert_eq!(&req[..8], &[0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0]);
    assert_eq!(&req[8..11], b"1-1");
    assert!(req[11..].iter().all(|&b| b == 0));
    assert_eq!(parse_import_busid(&req[8..]).unwrap(), "1-1");
}

#[test]
fn busid_without_nul_is_rejected() {
    assert_eq!(parse_import_busid(&[b'1'; 32]), Err(WireError::BadString));
    assert!(matches!(
        parse_import_busid(&[0; 31]),
        Err(WireError::Truncated {
            needed: 32,
            got: 31
        })
    ));
}

/// The 312-byte record: path[256] busid[32] busnum devnum speed (u32)
/// idVendor idProduct bcdDevice (u16) then six single bytes.
fn hand_built_record() -> Vec<u8> {
    let mut b = vec![0u8; 256];
    b[..12].copy_from_slice(b"/sys/devices");
    let mut busid = [0u8; 32];
    busid[..3].copy_from_slice(b"2-4");
    b.extend_from_slice(&busid);
    b.extend_from_slice(&words(&[2, 5, 3]));
    b.extend_from_slice(&[0x08, 0xE6, 0x34, 0x37, 0x01, 0x00]);
    b.extend_from_slice(&[0, 0, 0, 1, 1, 1]);
    b
}

#[test]
fn device_record_fields_sit_at_the_documented_offsets() {
    let raw = hand_built_record();
    assert_eq!(raw.len(), DEVICE_RECORD_LEN);
    let r = DeviceRecord::parse(&raw).unwrap();
    assert_eq!(r.path, "/sys/devices");
    assert_eq!(r.busid, "2-4");
    assert_eq!((r.busnum, r.devnum, r.speed), (2, 5, 3));
    assert_eq!(
        (r.vendor_id, r.product_id, r.bcd_device),
        (0x08E6, 0x3437, 0x0100)
    );
    assert_eq!(
        (
            r.configuration_value,
            r.num_configurations,
            r.num_interfaces
        ),
        (1, 1, 1)
    );
    assert_eq!(r.devid(), 0x0002_0005);
    assert_eq!(r.to_bytes().to_vec(), raw);
}

#[test]
fn devlist_reply_is_header_count_devices_and_interfaces() {
    let record = DeviceRecord::parse(&hand_built_record()).unwrap();
    let iface = InterfaceRecord {
        class: 0x0B,
        subclass: 0,
        protocol: 0,
    };
    let reply = emit_devlist_reply(&[(record, vec![iface])]);
    let mut expected = vec![0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 1];
    expected.extend_from_slice(&hand_built_record());
    expected.extend_from_slice(&[0x0B, 0, 0, 0]);
    assert_eq!(reply, expected);
}

#[test]
fn cmd_submit_get_device_descriptor_parses() {
    // seqnum 1, devid 1-2, IN, ep 0, flags 0x200 (URB_DIR_IN),
    // length 18; setup 80 06 00 01 00 00 12 00.
    let mut raw = words(&[1, 1, 0x0001_0002, 1, 0, 0x200, 18, 0, 0, 0]);
    raw.extend_from_slice(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]);
    assert_eq!(raw.len(), URB_HEADER_LEN);
    let UrbHeader::CmdSubmit(cmd) = UrbHeader::parse(&raw, 4096).unwrap() else {
        panic!("not a CMD_SUBMIT");
    };
    assert_eq!(cmd.seqnum, 1);
    assert_eq!(cmd.devid, 0x0001_0002);
    assert_eq!(cmd.direction, DIR_IN);
    assert_eq!(cmd.ep, 0);
    assert_eq!(cmd.transfer_flags, 0x200);
    assert_eq!(cmd.transfer_buffer_length, 18);
    assert_eq!(cmd.out_data_len(), 0);
    let setup = SetupPacket::from_bytes(cmd.setup);
    assert_eq!(
        (
            setup.request_type,
            setup.request,
            setup.value,
            setup.index,
            setup.length
        ),
        (0x80, 6, 0x0100, 0, 18)
    );
    assert_eq!(UrbHeader::CmdSubmit(cmd).to_bytes().to_vec(), raw);
}

#[test]
fn bulk_out_submit_announces_its_payload() {
    let raw = words(&[1, 7, 0x0001_0002, 0, 2, 0, 10, 0, 0xFFFF_FFFF, 0, 0, 0]);
    let UrbHeader::CmdSubmit(cmd) = UrbHeader::parse(&raw, 4096).unwrap() else {
        panic!("not a CMD_SUBMIT");
    };
    assert_eq!(cmd.out_data_len(), 10);
    assert_eq!(cmd.iso_descriptors_len(), 0);
}

#[test]
fn ret_submit_emits_status_and_zero_devid_direction_ep() {
    let header = UrbHeader::RetSubmit(RetSubmit {
        seqnum: 9,
        status: -32,
        actual_length: 0,
        ..Default::default()
    });
    let expected = words(&[3, 9, 0, 0, 0, 0xFFFF_FFE0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(header.to_bytes().to_vec(), expected);
    assert_eq!(UrbHeader::parse(&expected, 0).unwrap(), header);
}

#[test]
fn unlink_and_its_reply() {
    let raw = words(&[2, 11, 0x0001_0002, 1, 1, 10, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        UrbHeader::parse(&raw, 0).unwrap(),
        UrbHeader::CmdUnlink(CmdUnlink {
            seqnum: 11,
            devid: 0x0001_0002,
            direction: 1,
            ep: 1,
            unlink_seqnum: 10
        })
    );
    let ret = UrbHeader::RetUnlink(RetUnlink {
        seqnum: 11,
        status: -104,
    });
    assert_eq!(
        ret.to_bytes().to_vec(),
        words(&[4, 11, 0, 0, 0, 0xFFFF_FF98, 0, 0, 0, 0, 0, 0])
    );
}

#[test]
fn hostile_headers_are_refused() {
    let mut bad = words(&[1, 1, 0, 0, 2, 0, 0x7FFF_FFFF, 0, 0, 0, 0, 0]);
    assert_eq!(
        UrbHeader::parse(&bad, 1 << 20),
        Err(WireError::BadLength(0x7FFF_FFFF))
    );
    bad = words(&[1, 1, 0, 0, 2, 0, 0x8000_0000, 0, 0, 0, 0, 0]);
    assert!(matches!(
        UrbHeader::parse(&bad, u32::MAX),
        Err(WireError::BadLength(_))
    ));
    bad = words(&[1, 1, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(UrbHeader::parse(&bad, 64), Err(WireError::BadDirection(2)));
    bad = words(&[1, 1, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(UrbHeader::parse(&bad, 64), Err(WireError::BadEndpoint(16)));
    bad = words(&[1, 1, 0, 0, 1, 0, 0, 0, 1025, 0, 0, 0]);
    assert_eq!(
        UrbHeader::parse(&bad, 64),
        Err(WireError::BadPacketCount(1025))
    );
    bad = words(&[0x8005, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        UrbHeader::parse(&bad, 64),
        Err(WireError::UnknownCommand(0x8005))
    );
    assert!(matches!(
        UrbHeader::parse(&bad[..47], 64),
        Err(WireError::Truncated {
            needed: 48,
            got: 47
        })
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..400), max in any::<u32>()) {
        let _ = OpHeader::parse(&bytes);
        let _ = DeviceRecord::parse(&bytes);
        let _ = InterfaceRecord::parse(&bytes);
        let _ = parse_import_busid(&bytes);
        if let Ok(header) = UrbHeader::parse(&bytes, max) {
            if let UrbHeader::CmdSubmit(c) = header {
                prop_assert!(c.out_data_len() <= max as usize);
                prop_assert!(c.iso_descriptors_len() <= 1024 * ISO_DESCRIPTOR_LEN);
            }
            // What parsed re-emits to the same 48 bytes for commands.
            if matches!(header, UrbHeader::CmdSubmit(_)) {
                prop_assert_eq!(header.to_bytes().to_vec(), bytes[..48].to_vec());
            }
        }
    }

    #[test]
    fn records_round_trip(busid in "[0-9a-z.-]{1,31}", busnum in any::<u32>(), vid in any::<u16>()) {
        let r = DeviceRecord { busid, busnum, vendor_id: vid, ..Default::default() };
        prop_assert_eq!(DeviceRecord::parse(&r.to_bytes()).unwrap(), r);
    }
}
