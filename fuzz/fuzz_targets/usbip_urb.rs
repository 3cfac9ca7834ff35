//! USB/IP URB headers from a hostile peer (`UrbHeader::parse`): never
//! panics, every accepted header respects the limits it claims to check,
//! and it re-serialises to bytes that parse back to the same header.
//!
//! Input: `max_transfer` (4 bytes BE) then the header.
#![no_main]

use ferroccid::usbip::wire::{UrbHeader, UrbHeaderView, MAX_ISO_PACKETS, URB_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((max, bytes)) = data.split_first_chunk::<4>() else {
        return;
    };
    let max_transfer = u32::from_be_bytes(*max);
    if let Ok(view) = UrbHeaderView::new_checked(bytes) {
        let _ = (view.command(), view.setup(), view.number_of_packets());
    }
    let Ok(header) = UrbHeader::parse(bytes, max_transfer) else {
        return;
    };
    assert!(bytes.len() >= URB_HEADER_LEN);
    match header {
        UrbHeader::CmdSubmit(c) => {
            assert!(c.direction <= 1 && c.ep <= 15);
            assert!(c.transfer_buffer_length <= max_transfer);
            assert!(c.transfer_buffer_length <= i32::MAX as u32);
            assert!(c.number_of_packets == u32::MAX || c.number_of_packets <= MAX_ISO_PACKETS);
            assert!(c.out_data_len() <= max_transfer as usize);
            assert!(c.iso_descriptors_len() <= MAX_ISO_PACKETS as usize * 16);
        }
        UrbHeader::CmdUnlink(u) => assert!(u.direction <= 1 && u.ep <= 15),
        UrbHeader::RetSubmit(r) => assert!(r.actual_length <= max_transfer),
        UrbHeader::RetUnlink(_) => {}
    }
    let out = header.to_bytes();
    let again = UrbHeader::parse(&out, max_transfer).expect("own bytes parse");
    assert_eq!(again, header);
    // Commands keep every word; replies zero devid/direction/ep.
    if let UrbHeader::CmdSubmit(_) = header {
        assert_eq!(out[..], bytes[..URB_HEADER_LEN]);
    }
});
