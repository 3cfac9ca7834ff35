//! The simulated smart card, and later the simulated CCID reader around it.
//!
//! Written from ISO/IEC 7816-3 and 7816-4 directly, independently of the
//! `ferroccid-protocols` crate, so that a misreading of the standard on the
//! host side is not mirrored on the card side.

pub mod card;
