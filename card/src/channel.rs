//! The channel: what the service layer needs from whatever carries APDUs to
//! a card (a ferroccid slot directly, a PC/SC connection, a test double).
//!
//! The trait is deliberately small and synchronous: one APDU in, one
//! response out, plus the management operations of SCardReconnect,
//! SCardDisconnect, SCardStatus and SCardBeginTransaction.

use std::fmt;
use std::time::Duration;

use super::error::ChannelError;
use ferroccid::ccid::secure::{PinModify, PinVerify};

/// What happens to the card when an attachment or a lock ends
/// (SCARD_LEAVE_CARD, SCARD_RESET_CARD, SCARD_UNPOWER_CARD, SCARD_EJECT_CARD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    /// Leave the card as it is.
    #[default]
    Leave,
    /// Warm reset.
    Reset,
    /// Power the card off.
    Unpower,
    /// Eject. Readers without a mechanism, and every reader on the direct
    /// channel (the driver sends no PC_to_RDR_Mechanical), unpower instead.
    Eject,
}

/// How to reset the card on reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initialization {
    /// Keep the session: no reset (reconnect only re-reads the state).
    #[default]
    Leave,
    /// Warm reset (RST low with power kept).
    Warm,
    /// Cold reset (power cycle).
    Cold,
}

/// Which transmission protocol to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolChoice {
    /// The reader's or the card's choice.
    #[default]
    Any,
    /// T=0.
    T0,
    /// T=1.
    T1,
}

/// A transmission protocol in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// T=0.
    T0,
    /// T=1.
    T1,
    /// The reader does not tell (raw or unknown).
    Other(u8),
}

/// Where the card is in its life, as SCardStatus's state names it
/// (SCARD_ABSENT … SCARD_SPECIFIC); each state implies those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CardState {
    /// No card in the reader.
    Absent,
    /// A card is in the reader but not in position for use.
    Present,
    /// A card is in position but not powered.
    Swallowed,
    /// Powered, but the reader does not know the card's mode yet.
    Powered,
    /// Answered reset and waits for a protocol negotiation (PPS).
    Negotiable,
    /// Answered reset and a protocol is in use.
    Specific,
}

impl CardState {
    /// The PC/SC name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Absent => "absent",
            CardState::Present => "present",
            CardState::Swallowed => "swallowed",
            CardState::Powered => "powered",
            CardState::Negotiable => "negotiable",
            CardState::Specific => "specific",
        }
    }
}

/// The state of reader and card, as SCardStatus reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The reader's name.
    pub reader: String,
    /// The card's state; `present` and `powered` are coarse views of it.
    pub state: CardState,
    /// A card is in the reader.
    pub present: bool,
    /// The card is powered and has answered reset.
    pub powered: bool,
    /// The protocol in use, when powered.
    pub protocol: Option<Protocol>,
    /// The ATR, when powered.
    pub atr: Vec<u8>,
}

impl fmt::Debug for ChannelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelStatus")
            .field("reader", &self.reader)
            .field("state", &self.state)
            .field("present", &self.present)
            .field("powered", &self.powered)
            .field("protocol", &self.protocol)
            .field("atr", &HexBytes(&self.atr))
            .finish()
    }
}

/// Debug-prints bytes as hex.
pub(crate) struct HexBytes<'a>(pub &'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// A connection to one card. Implementations decide how exclusive access
/// is enforced; [`CardChannel::begin_transaction`] must keep other
/// attachments (in this process and in others) from interleaving APDUs.
pub trait CardChannel: Send {
    /// Sends one command APDU, writes the whole response (data and SW1 SW2)
    /// into `resp` and returns its length.
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError>;

    /// The state of reader and card.
    fn status(&mut self) -> Result<ChannelStatus, ChannelError>;

    /// Resets the card as asked (or not) and re-establishes the channel,
    /// for example after the card was removed and put back.
    fn reconnect(
        &mut self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError>;

    /// Ends the connection, leaving the card as `disposition` says.
    fn disconnect(&mut self, disposition: Disposition) -> Result<(), ChannelError>;

    /// Takes exclusive use of the card, waiting at most `timeout`
    /// (`None` = as long as it takes); [`ChannelError::Timeout`] if not
    /// granted in time.
    fn begin_transaction(&mut self, timeout: Option<Duration>) -> Result<(), ChannelError>;

    /// Gives exclusive use back.
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), ChannelError>;

    /// How long an exchange waits while another attachment holds the lock
    /// before failing with [`ChannelError::Locked`] (`None` = as long as it
    /// takes). Channels whose transport serialises on its own ignore it.
    fn set_lock_wait(&mut self, wait: Option<Duration>) {
        let _ = wait;
    }

    /// Longest command APDU the channel carries, in bytes.
    fn max_command_len(&self) -> usize {
        super::apdu::SHORT_MAX_APDU
    }

    /// Longest response APDU (data and SW) the channel carries, in bytes.
    fn max_response_len(&self) -> usize {
        super::apdu::SHORT_MAX_NE + 2
    }

    /// Whether the channel carries extended-length APDUs at all (a T=0
    /// TPDU reader does not; T=1 and APDU-level readers do).
    fn supports_extended(&self) -> bool {
        false
    }

    /// Whether the reader has a pinpad for [`CardChannel::verify_pin_secure`].
    fn has_pinpad(&self) -> bool {
        false
    }

    /// PIN verification on the reader's pinpad (CCID PC_to_RDR_Secure or
    /// PC/SC FEATURE_VERIFY_PIN_DIRECT); returns the card's response.
    fn verify_pin_secure(&mut self, params: &PinVerify<'_>) -> Result<Vec<u8>, ChannelError> {
        let _ = params;
        Err(ChannelError::Unsupported("no pinpad"))
    }

    /// PIN modification on the reader's pinpad (FEATURE_MODIFY_PIN_DIRECT).
    fn modify_pin_secure(&mut self, params: &PinModify<'_>) -> Result<Vec<u8>, ChannelError> {
        let _ = params;
        Err(ChannelError::Unsupported("no pinpad"))
    }
}

impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    fn transmit(&mut self, cmd: &[u8], resp: &mut [u8]) -> Result<usize, ChannelError> {
        (**self).transmit(cmd, resp)
    }
    fn status(&mut self) -> Result<ChannelStatus, ChannelError> {
        (**self).status()
    }
    fn reconnect(
        &mut self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> Result<ChannelStatus, ChannelError> {
        (**self).reconnect(init, protocol)
    }
    fn disconnect(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        (**self).disconnect(disposition)
    }
    fn begin_transaction(&mut self, timeout: Option<Duration>) -> Result<(), ChannelError> {
        (**self).begin_transaction(timeout)
    }
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), ChannelError> {
        (**self).end_transaction(disposition)
    }
    fn set_lock_wait(&mut self, wait: Option<Duration>) {
        (**self).set_lock_wait(wait)
    }
    fn max_command_len(&self) -> usize {
        (**self).max_command_len()
    }
    fn max_response_len(&self) -> usize {
        (**self).max_response_len()
    }
    fn supports_extended(&self) -> bool {
        (**self).supports_extended()
    }
    fn has_pinpad(&self) -> bool {
        (**self).has_pinpad()
    }
    fn verify_pin_secure(&mut self, params: &PinVerify<'_>) -> Result<Vec<u8>, ChannelError> {
        (**self).verify_pin_secure(params)
    }
    fn modify_pin_secure(&mut self, params: &PinModify<'_>) -> Result<Vec<u8>, ChannelError> {
        (**self).modify_pin_secure(params)
    }
}
