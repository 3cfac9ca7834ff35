//! T=1 block transmission protocol (ISO/IEC 7816-3 §11).
pub mod block;
pub mod engine;
