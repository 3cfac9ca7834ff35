//! USB/IP operation messages (devlist and import) from a hostile peer:
//! `OpHeader`, `DeviceRecord`, `InterfaceRecord` and `parse_import_busid`
//! never panic, and what parses re-serialises to bytes that parse back to
//! the same value.
#![no_main]

use ferroccid::usbip::wire::{
    emit_import_request, parse_import_busid, DeviceRecord, InterfaceRecord, OpHeader, BUSID_LEN,
    OP_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = OpHeader::parse(data) {
        assert_eq!(header.to_bytes()[..], data[..OP_HEADER_LEN]);
        assert_eq!(OpHeader::parse(&header.to_bytes()), Ok(header));
    }
    if let Ok(record) = DeviceRecord::parse(data) {
        assert!(record.path.len() < 256 && record.busid.len() < 32);
        let bytes = record.to_bytes();
        assert_eq!(DeviceRecord::parse(&bytes).as_ref(), Ok(&record));
        let _ = record.devid();
    }
    if let Ok(interface) = InterfaceRecord::parse(data) {
        assert_eq!(InterfaceRecord::parse(&interface.to_bytes()), Ok(interface));
    }
    if let Ok(busid) = parse_import_busid(data) {
        assert!(busid.len() < BUSID_LEN);
        assert!(!busid.contains('\0'));
        let request = emit_import_request(busid);
        assert_eq!(parse_import_busid(&request[OP_HEADER_LEN..]), Ok(busid));
    }
});
