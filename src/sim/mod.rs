//! The simulated smart card and the simulated CCID reader around it.
//!
//! Written from ISO/IEC 7816-3 and 7816-4 directly, independently of the
//! `ferroccid-protocols` crate, so that a misreading of the standard on the
//! host side is not mirrored on the card side.
//!
//! | module | what |
//! |---|---|
//! | [`card`] | the virtual ISO/IEC 7816 card |
//! | [`reader`] | the CCID device model around the cards |
//! | [`profile`] | reader profiles: built-in, from a descriptor, from JSON |
//! | [`control`] | steering a simulator in another process (pcscd) through files |

pub mod card;
pub mod control;
pub mod profile;
pub mod reader;
