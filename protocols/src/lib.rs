//! ISO/IEC 7816-3 protocol engines for ferroccid.
//!
//! Protocol logic only: no USB, no threads, no clock, no allocation. Every
//! engine is a state machine driven by its caller, which feeds it received
//! bytes and asks it what to transmit next, writing into buffers the caller
//! owns. Time never comes from inside: the engines expose the waiting times
//! (WWT, BWT, CWT, WTX multipliers) the caller must apply, so every behaviour
//! is reproducible in a test.
//!
//! | module | what |
//! |---|---|
//! | [`params`] | Fi/Di/f(max) tables shared by ATR, PPS and timing |
//! | [`atr`] | Answer-to-Reset parsing and decoded parameters (§8) |
//! | [`pps`] | PPS request/response and the negotiation plan (§9) |
//! | [`t0`] | T=0 TPDU rules and the procedure-byte machine (§10) |
//! | [`t1`] | T=1 blocks and the half-duplex block engine (§11) |
//! | [`edc`] | LRC and CRC error detection codes for T=1 |
//! | [`timing`] | WWT, BWT, CWT and etu arithmetic |
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod atr;
pub mod edc;
pub mod params;
pub mod pps;
pub mod t0;
pub mod t1;
pub mod timing;
