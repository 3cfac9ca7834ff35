//! T=1 block transmission protocol (ISO/IEC 7816-3 §11).
//!
//! [`block`] is the wire format (checked views and reprs); [`engine`] is
//! the sans-IO half-duplex engine that turns an APDU into blocks and back,
//! with the error recovery of §11.6.
pub mod block;
pub mod engine;

pub use block::{
    Block, BlockError, BlockKind, BlockRepr, RError, SKind, MAX_BLOCK_LEN, MAX_INF_LEN,
};
pub use engine::{Exchange, Progress, T1Config, T1Error, DEFAULT_IFS, T1};
