//! T=1 block transmission protocol (ISO/IEC 7816-3 §11).
//!
//! [`block`] is the wire format (checked views and reprs); [`engine`] is
//! the sans-IO half-duplex engine that turns an APDU into blocks and back,
//! with the error recovery of §11.6.
//!
//! The driver keeps one [`T1`] per card session and runs one [`Exchange`]
//! per APDU, looping send → receive:
//!
//! ```
//! use ferroccid_protocols::t1::{Progress, T1Config, T1, MAX_BLOCK_LEN};
//!
//! let mut t1 = T1::new(T1Config::default());
//! let select = [0x00, 0xA4, 0x04, 0x00, 0x00];
//! let mut response = [0u8; 258];
//! let mut block = [0u8; MAX_BLOCK_LEN];
//! let mut x = t1.exchange(&select, &mut response);
//! let len = loop {
//!     let n = x.poll_transmit(&mut block).unwrap();
//!     assert_eq!(&block[..n], &[0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00, 0xA5]);
//!     // ... send block[..n] to the reader, receive the card's block:
//!     let received = [0x00, 0x00, 0x02, 0x90, 0x00, 0x92]; // I(0): 90 00
//!     match x.handle_block(&received).unwrap() {
//!         Progress::Transmit | Progress::WaitingTimeExtension(_) => continue,
//!         Progress::Complete(len) => break len,
//!         Progress::Aborted => unreachable!("send the S(ABORT response), fail the APDU"),
//!     }
//! };
//! assert_eq!(&response[..len], &[0x90, 0x00]);
//! ```
pub mod block;
pub mod engine;

pub use block::{
    Block, BlockError, BlockKind, BlockRepr, RError, SKind, MAX_BLOCK_LEN, MAX_INF_LEN,
};
pub use engine::{
    Exchange, Progress, T1Config, T1Error, DEFAULT_IFS, MAX_ATTEMPTS, MAX_EMPTY_BLOCKS,
    MAX_RESYNCH, T1,
};
