//! Transport of one command APDU over T=0 TPDUs (ISO/IEC 7816-3 §12.2,
//! ISO/IEC 7816-4 Annex A of the 1995 edition).
//!
//! The mapping:
//!
//! | APDU | C-TPDU | then |
//! |---|---|---|
//! | case 1 | `CLA INS P1 P2 00` | |
//! | case 2S | P3 = Le | 6Cxx: resend with P3 = xx; 61xx: GET RESPONSE |
//! | case 3S | P3 = Lc, data | |
//! | case 4S | as case 3S | 61xx: GET RESPONSE (P3 = xx) until a final SW |
//! | case 2E | P3 = Ne if Ne ≤ 256, else 00 | as case 2S |
//! | case 3E / 4E, Lc ≤ 255 | as case 3S / 4S | as case 3S / 4S |
//! | case 3E / 4E, Lc > 255 | — | [`T0Error::NeedsEnvelope`] |
//!
//! Choices where the texts leave room, made as current practice does
//! (OpenSC, the PC/SC stacks):
//!
//! - Case 4S answered with 90 00 and no 61xx: the command produced no
//!   data, the response is just 90 00. (The 1995 annex let the reader
//!   issue a GET RESPONSE there; cards that want to return data say 61xx.)
//! - Case 4S answered with a warning 62xx/63xx: mapped unchanged, without
//!   data. A card cannot say both "warning" and "61xx" in one status word.
//! - GET RESPONSE asks for P3 = xx of the last 61xx (00 meaning 256),
//!   reduced to what the response buffer can still hold.
//! - 6Cxx is resent only for TPDUs that expect data (case 2 and GET
//!   RESPONSE); on case 1/3 TPDUs it is mapped unchanged. If La > Le the
//!   response keeps only the first Le bytes (Annex A, case 2S.3).
//!
//! Loops are bounded whatever the card answers: at most
//! [`T0Apdu::MAX_GET_RESPONSES`] GET RESPONSE per APDU (counted whether or
//! not they bring data, never reset), at most [`T0Apdu::MAX_RESENDS`]
//! consecutive 6Cxx resends of one TPDU, and never more data than the
//! response buffer holds. A 61xx ends the run of resends, so the two caps
//! compose: one APDU takes at most
//! `(MAX_GET_RESPONSES + 1) × (MAX_RESENDS + 1)` = 1028 TPDUs before it
//! completes or fails with [`T0Error::TooManyGetResponses`] or
//! [`T0Error::TooManyResends`].

use core::fmt;

use super::apdu::{ApduCase, ApduError, CommandApdu};

/// The longest C-TPDU: 5 header bytes and 255 data bytes.
pub const MAX_TPDU_LEN: usize = 5 + 255;

/// INS of GET RESPONSE (ISO/IEC 7816-4 §7.6.1 / 1995 §7.1).
const INS_GET_RESPONSE: u8 = 0xC0;

/// The CLA of a GET RESPONSE that belongs to a command of class `cla`.
///
/// GET RESPONSE must go on the command's logical channel (ISO/IEC 7816-4
/// §5.4.1). For the interindustry classes the channel bits are kept and
/// secure messaging and command chaining are cleared: first interindustry
/// `000x xxcc` → `0000 00cc`; further interindustry `01xx cccc` →
/// `0100 cccc`. Proprietary classes (b8 = 1, e.g. A0 of GSM 11.11) are
/// kept as they are, since their GET RESPONSE uses the same class.
pub const fn get_response_cla(cla: u8) -> u8 {
    match cla & 0xE0 {
        0x00 => cla & 0x03,
        0x40 | 0x60 => 0x40 | (cla & 0x0F),
        _ => cla,
    }
}

/// Which parts of the T=0 response handling the helper does itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct T0Options {
    /// On 61xx, send GET RESPONSE and collect the data until a final
    /// status word. Off: 61xx is returned to the caller as it is.
    pub auto_get_response: bool,
    /// On 6Cxx, resend the same TPDU with P3 = xx. Off: 6Cxx is returned.
    pub auto_resend_6c: bool,
}

impl T0Options {
    /// Both off: the TPDU exchange pcscd expects from a driver, which
    /// leaves GET RESPONSE and resends to the application.
    pub const TRANSPARENT: T0Options = T0Options {
        auto_get_response: false,
        auto_resend_6c: false,
    };

    /// Both on: what a direct library user wants.
    pub const AUTOMATIC: T0Options = T0Options {
        auto_get_response: true,
        auto_resend_6c: true,
    };
}

impl Default for T0Options {
    fn default() -> Self {
        T0Options::AUTOMATIC
    }
}

/// What to do after a response TPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum T0Step {
    /// Another TPDU is due: call [`T0Apdu::next_tpdu`] and send it.
    SendNext,
    /// The response APDU (data then SW1 SW2) fills the first `len` bytes
    /// of the response buffer.
    Complete(usize),
}

/// Why a command cannot be carried, or the exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum T0Error {
    /// The command bytes are not an APDU.
    Apdu(ApduError),
    /// INS 6X and 9X are invalid under T=0 (ISO/IEC 7816-3 §10.3.2).
    InvalidIns(u8),
    /// Extended Lc > 255 cannot travel in one T=0 TPDU; ISO/IEC 7816-4
    /// answers with ENVELOPE, which this helper does not build.
    NeedsEnvelope {
        /// Nc of the command.
        lc: usize,
    },
    /// The buffer given to [`T0Apdu::next_tpdu`] cannot hold the TPDU.
    TpduBufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The response buffer is full while the card has more to say (or
    /// cannot even hold the status word).
    ResponseBufferFull,
    /// A response TPDU shorter than SW1 SW2.
    ResponseTooShort,
    /// More response data than the TPDU asked for.
    TooMuchData {
        /// Data bytes the TPDU allowed.
        expected: usize,
        /// Data bytes received.
        received: usize,
    },
    /// The card kept answering 61xx past [`T0Apdu::MAX_GET_RESPONSES`].
    TooManyGetResponses,
    /// The card kept answering 6Cxx past [`T0Apdu::MAX_RESENDS`].
    TooManyResends,
    /// [`T0Apdu::handle_response`] called when no TPDU is outstanding.
    NotAwaitingResponse,
}

impl From<ApduError> for T0Error {
    fn from(e: ApduError) -> Self {
        T0Error::Apdu(e)
    }
}

impl fmt::Display for T0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            T0Error::Apdu(e) => write!(f, "{e}"),
            T0Error::InvalidIns(ins) => write!(f, "INS {ins:02X} is invalid under T=0"),
            T0Error::NeedsEnvelope { lc } => {
                write!(f, "Lc = {lc} needs ENVELOPE under T=0")
            }
            T0Error::TpduBufferTooSmall { needed } => {
                write!(f, "TPDU buffer too small, {needed} bytes needed")
            }
            T0Error::ResponseBufferFull => f.write_str("response buffer full"),
            T0Error::ResponseTooShort => f.write_str("response TPDU shorter than 2 bytes"),
            T0Error::TooMuchData { expected, received } => write!(
                f,
                "card sent {received} data bytes where the TPDU allowed {expected}"
            ),
            T0Error::TooManyGetResponses => f.write_str("card keeps answering 61xx"),
            T0Error::TooManyResends => f.write_str("card keeps answering 6Cxx"),
            T0Error::NotAwaitingResponse => f.write_str("no TPDU is awaiting a response"),
        }
    }
}

/// One C-TPDU still to be sent or awaiting its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tpdu {
    /// The command itself, with this P3.
    Command { p3: u8 },
    /// GET RESPONSE with this P3.
    GetResponse { p3: u8 },
}

/// How P3 is to be read for the command TPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Case 1: P3 = 00, no data either way.
    None,
    /// Case 3/4: P3 = Lc, data to the card.
    Outgoing,
    /// Case 2: P3 = Le, data from the card.
    Incoming,
}

/// One command APDU carried over T=0, driven by the caller.
///
/// ```text
/// let mut apdu = T0Apdu::new(cmd, &mut resp, T0Options::AUTOMATIC)?;
/// loop {
///     let tpdu = apdu.next_tpdu(&mut tx)?.expect("a TPDU is due");
///     let rtpdu = reader.xfr_block(tpdu)?;          // the caller's I/O
///     match apdu.handle_response(rtpdu)? {
///         T0Step::SendNext => continue,
///         T0Step::Complete(len) => break len,      // resp[..len] = data SW1 SW2
///     }
/// }
/// ```
#[derive(Debug)]
pub struct T0Apdu<'c, 'r> {
    command: CommandApdu<'c>,
    flow: Flow,
    /// P3 of the first command TPDU (kept to cap a 6Cxx resend at Le).
    le: Option<usize>,
    options: T0Options,
    response: &'r mut [u8],
    /// Response data bytes collected so far.
    filled: usize,
    /// At most this many data bytes are kept from the next response
    /// (Annex A case 2S.3: La > Le keeps Le bytes).
    keep_at_most: Option<usize>,
    current: Option<Tpdu>,
    get_responses: u16,
    resends: u8,
}

impl<'c, 'r> T0Apdu<'c, 'r> {
    /// Upper bound on GET RESPONSE commands for one APDU: 256 × 256 bytes
    /// covers the largest extended Ne (65 536) even at 61 00 each time.
    pub const MAX_GET_RESPONSES: u16 = 256;

    /// Upper bound on consecutive 6Cxx resends of one TPDU. A conforming
    /// card needs one.
    pub const MAX_RESENDS: u8 = 3;

    /// Prepares `command` for T=0; the response APDU will be written into
    /// `response`, which needs room for the data and SW1 SW2.
    pub fn new(
        command: &'c [u8],
        response: &'r mut [u8],
        options: T0Options,
    ) -> Result<Self, T0Error> {
        let command = CommandApdu::parse(command)?;
        if matches!(command.ins() & 0xF0, 0x60 | 0x90) {
            return Err(T0Error::InvalidIns(command.ins()));
        }
        let lc = command.data().len();
        // Ne of at most 256 fits P3 (00 = 256); above that, P3 = 00 asks for
        // the first 256 bytes and 61xx chains the rest (Annex A case 2E.2).
        let short_le = |ne: u32| if ne >= 256 { 0 } else { ne as u8 };
        let (flow, p3) = match command.case() {
            ApduCase::Case1 => (Flow::None, 0),
            ApduCase::Case2Short | ApduCase::Case2Extended => {
                (Flow::Incoming, short_le(command.ne()))
            }
            ApduCase::Case3Short | ApduCase::Case4Short => (Flow::Outgoing, lc as u8),
            ApduCase::Case3Extended | ApduCase::Case4Extended => match u8::try_from(lc) {
                Ok(lc) => (Flow::Outgoing, lc),
                Err(_) => return Err(T0Error::NeedsEnvelope { lc }),
            },
        };
        let le = (flow == Flow::Incoming).then_some(p3_len(p3));
        Ok(T0Apdu {
            command,
            flow,
            le,
            options,
            response,
            filled: 0,
            keep_at_most: None,
            current: Some(Tpdu::Command { p3 }),
            get_responses: 0,
            resends: 0,
        })
    }

    /// The case of the command APDU.
    pub fn case(&self) -> ApduCase {
        self.command.case()
    }

    /// Writes the TPDU to send next into `buf` and returns it, or `None`
    /// when the exchange is over. Calling it again before
    /// [`handle_response`](Self::handle_response) writes the same TPDU.
    pub fn next_tpdu<'b>(&self, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, T0Error> {
        let Some(tpdu) = self.current else {
            return Ok(None);
        };
        let (header, data) = match tpdu {
            Tpdu::Command { p3 } => {
                let [cla, ins, p1, p2] = self.command.header();
                let data = match self.flow {
                    Flow::Outgoing => self.command.data(),
                    Flow::None | Flow::Incoming => &[],
                };
                ([cla, ins, p1, p2, p3], data)
            }
            Tpdu::GetResponse { p3 } => {
                let cla = get_response_cla(self.command.cla());
                ([cla, INS_GET_RESPONSE, 0, 0, p3], &[][..])
            }
        };
        let needed = header.len() + data.len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(T0Error::TpduBufferTooSmall { needed });
        };
        out[..5].copy_from_slice(&header);
        out[5..].copy_from_slice(data);
        Ok(Some(out))
    }

    /// Takes the response TPDU (data, SW1, SW2) to the TPDU last produced
    /// by [`next_tpdu`](Self::next_tpdu).
    pub fn handle_response(&mut self, rtpdu: &[u8]) -> Result<T0Step, T0Error> {
        let tpdu = self.current.take().ok_or(T0Error::NotAwaitingResponse)?;
        let Some((data, &[sw1, sw2])) = rtpdu.split_last_chunk::<2>() else {
            return Err(T0Error::ResponseTooShort);
        };
        let (expects_data, p3) = match tpdu {
            Tpdu::Command { p3 } => (self.flow == Flow::Incoming, p3),
            Tpdu::GetResponse { p3 } => (true, p3),
        };
        let allowed = if expects_data { p3_len(p3) } else { 0 };
        if data.len() > allowed {
            return Err(T0Error::TooMuchData {
                expected: allowed,
                received: data.len(),
            });
        }

        if sw1 == 0x6C && expects_data && self.options.auto_resend_6c {
            self.resends += 1;
            if self.resends > Self::MAX_RESENDS {
                return Err(T0Error::TooManyResends);
            }
            // The card told the exact length La; a first command keeps at
            // most Le of it.
            self.keep_at_most = match tpdu {
                Tpdu::Command { .. } => self.le.filter(|&le| le < p3_len(sw2)),
                Tpdu::GetResponse { .. } => None,
            };
            self.current = Some(match tpdu {
                Tpdu::Command { .. } => Tpdu::Command { p3: sw2 },
                Tpdu::GetResponse { .. } => Tpdu::GetResponse { p3: sw2 },
            });
            return Ok(T0Step::SendNext);
        }
        self.resends = 0;

        let keep = self
            .keep_at_most
            .take()
            .map_or(data.len(), |k| k.min(data.len()));
        self.push_data(&data[..keep])?;

        if sw1 == 0x61 && self.options.auto_get_response {
            self.get_responses += 1;
            if self.get_responses > Self::MAX_GET_RESPONSES {
                return Err(T0Error::TooManyGetResponses);
            }
            // Room for data, keeping two bytes for the final status word.
            let room = self.response.len().saturating_sub(self.filled + 2);
            // Never ask for more than the command's Ne (§12.2.4: GET
            // RESPONSE carries min(Ne, SW2)); once Ne bytes are in, 61xx is
            // handed to the caller to say more is available. Commands
            // without Le (cases 1, 3) take what the card offers.
            let ne = self.command.ne() as usize;
            let still_wanted = if ne == 0 {
                usize::MAX
            } else {
                ne.saturating_sub(self.filled)
            };
            if still_wanted > 0 {
                let wanted = p3_len(sw2).min(room).min(still_wanted);
                if wanted == 0 {
                    return Err(T0Error::ResponseBufferFull);
                }
                self.current = Some(Tpdu::GetResponse {
                    p3: (wanted % 256) as u8,
                });
                return Ok(T0Step::SendNext);
            }
        }

        let end = self.filled + 2;
        let sw = self
            .response
            .get_mut(self.filled..end)
            .ok_or(T0Error::ResponseBufferFull)?;
        sw.copy_from_slice(&[sw1, sw2]);
        Ok(T0Step::Complete(end))
    }

    /// Appends response data, keeping room for SW1 SW2.
    fn push_data(&mut self, data: &[u8]) -> Result<(), T0Error> {
        let end = self.filled + data.len();
        if end + 2 > self.response.len() {
            return Err(T0Error::ResponseBufferFull);
        }
        self.response[self.filled..end].copy_from_slice(data);
        self.filled = end;
        Ok(())
    }
}

/// The data length a P3 announces when data flows from the card (00 = 256).
fn p3_len(p3: u8) -> usize {
    if p3 == 0 {
        256
    } else {
        usize::from(p3)
    }
}
