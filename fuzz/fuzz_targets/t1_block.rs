//! T=1 block views on arbitrary bytes: never panic, and a block that passes
//! the checks re-serialises from its parsed form to the same bytes.
#![no_main]

use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::t1::{Block, BlockRepr, MAX_BLOCK_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for edc in [Edc::Lrc, Edc::Crc] {
        let Ok(block) = Block::new_checked(data, edc) else {
            continue;
        };
        assert!(data.len() <= MAX_BLOCK_LEN);
        assert_eq!(block.as_bytes(), data);
        let repr = BlockRepr::parse(&block);
        assert_eq!(repr.buffer_len(edc), data.len());
        let mut out = [0u8; MAX_BLOCK_LEN];
        let n = repr
            .emit(block.nad(), edc, &mut out)
            .expect("a received block re-emits");
        assert_eq!(&out[..n], data, "{repr:?} re-serialises identically");
    }
});
