//! T=0, the character protocol (ISO/IEC 7816-3 §10 and §12.2).
//!
//! Two layers, for the two kinds of CCID readers:
//!
//! - [`T0Apdu`] maps one command APDU onto T=0 command TPDUs (cases 1, 2S,
//!   3S, 4S and the extended forms that can be shortened) and turns the
//!   response TPDUs back into the response APDU. GET RESPONSE on 61xx and
//!   the resend on 6Cxx are options: pcscd expects the driver to leave them
//!   to the application, direct library users want them done.
//! - [`ProcedureMachine`] is the byte-by-byte procedure-byte machine for
//!   character-level readers: after the 5-byte header the caller feeds
//!   every received byte and is told to send data, expect data, keep
//!   waiting (NULL) or that the status word has arrived.
//!
//! | module | what |
//! |---|---|
//! | [`apdu`] | command APDU cases (ISO/IEC 7816-4 §5.1) |
//! | [`tpdu`] | APDU ↔ TPDU mapping with GET RESPONSE and 6Cxx resend |
//! | [`procedure`] | procedure bytes: NULL, ACK, SW1 (§10.3.3) |

pub mod apdu;
pub mod procedure;
pub mod tpdu;

pub use apdu::{ApduCase, ApduError, CommandApdu};
pub use procedure::{Direction, ProcedureError, ProcedureEvent, ProcedureMachine};
pub use tpdu::{get_response_cla, T0Apdu, T0Error, T0Options, T0Step, MAX_TPDU_LEN};
