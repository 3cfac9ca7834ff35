//! PIN verification and change (ISCardVerify; ISO/IEC 7816-4 §11.5.6–
//! 11.5.10): VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, and PIN
//! entry on a reader's pinpad.
//!
//! PINs travel in [`Pin`], a zeroized buffer whose `Debug` is redacted;
//! the command buffers that carried them are zeroized by the exchanger.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::apdu::{ins, Command, Response};
use super::attachment::Attachment;
use super::error::{CardError, Error, Result, Sw};
use super::events::EventKind;
use ferroccid::ccid::secure::{PinModify, PinVerify};

/// A PIN (or PUK, or any reference data): zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// Takes ownership of the bytes (the caller's copy is the caller's to wipe).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Pin {
        Pin(Zeroizing::new(bytes.into()))
    }

    /// The bytes, for building a command.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the PIN is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Pin {
    fn from(text: &str) -> Pin {
        Pin::new(text.as_bytes().to_vec())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// What an empty VERIFY tells about a reference (§11.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// 9000: verified in this session (or no verification needed).
    Verified,
    /// 63Cx: not verified, x tries left.
    TriesLeft(u8),
    /// 6983: blocked.
    Blocked,
}

/// PIN operations over an attachment.
#[derive(Clone)]
pub struct Verifier {
    attachment: Arc<Attachment>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    pub(crate) fn new(attachment: Arc<Attachment>) -> Self {
        Verifier { attachment }
    }

    /// Maps a PIN command's SW to the result and publishes the event it
    /// implies: `success` on 9000, blocked on 6983 or on 63C0.
    fn conclude(&self, sw: Sw, reference: u8, success: EventKind) -> Result<()> {
        if sw.is_ok() {
            self.attachment.publish(success);
            return Ok(());
        }
        match CardError::from_sw(sw) {
            CardError::AuthenticationBlocked | CardError::WrongPin { tries_left: 0 } => {
                self.attachment.publish(EventKind::PinBlocked { reference });
            }
            _ => {}
        }
        Err(Error::status(sw))
    }

    fn run(&self, cmd: &Command<'_>) -> Result<Response> {
        self.attachment.exchange(cmd)
    }

    /// VERIFY `pin` against reference `reference` (P2, e.g. 81). A wrong
    /// PIN is `CardError::WrongPin { tries_left }`; a blocked one
    /// `CardError::AuthenticationBlocked`.
    pub fn verify(&self, reference: u8, pin: &Pin) -> Result<()> {
        if pin.is_empty() {
            return Err(Error::InvalidRequest(
                "an empty VERIFY asks for the status: use pin_status",
            ));
        }
        let cmd = Command::new(ins::VERIFY, 0x00, reference).with_data(pin.as_bytes());
        let response = self.run(&cmd)?;
        self.conclude(response.sw, reference, EventKind::PinVerified { reference })
    }

    /// VERIFY without data: whether the reference is verified, how many
    /// tries are left, or whether it is blocked.
    pub fn pin_status(&self, reference: u8) -> Result<PinStatus> {
        let response = self.run(&Command::new(ins::VERIFY, 0x00, reference))?;
        match CardError::from_sw(response.sw) {
            _ if response.sw.is_ok() => Ok(PinStatus::Verified),
            CardError::WrongPin { tries_left } => Ok(PinStatus::TriesLeft(tries_left)),
            CardError::AuthenticationBlocked => Ok(PinStatus::Blocked),
            _ => Err(Error::status(response.sw)),
        }
    }

    /// VERIFY with P1 = FF: forgets the verification of the reference.
    pub fn reset_security_status(&self, reference: u8) -> Result<()> {
        self.attachment
            .exchange_ok(&Command::new(ins::VERIFY, 0xFF, reference))
            .map(drop)
    }

    /// CHANGE REFERENCE DATA with the old PIN (P1 00: old || new).
    pub fn change_pin(&self, reference: u8, old: &Pin, new: &Pin) -> Result<()> {
        let mut data = Zeroizing::new(Vec::with_capacity(old.len() + new.len()));
        data.extend_from_slice(old.as_bytes());
        data.extend_from_slice(new.as_bytes());
        let cmd = Command::new(ins::CHANGE_REFERENCE_DATA, 0x00, reference).with_data(&data);
        let response = self.run(&cmd)?;
        self.conclude(response.sw, reference, EventKind::PinChanged { reference })
    }

    /// CHANGE REFERENCE DATA after a VERIFY (P1 01: new PIN only).
    pub fn set_pin(&self, reference: u8, new: &Pin) -> Result<()> {
        let cmd =
            Command::new(ins::CHANGE_REFERENCE_DATA, 0x01, reference).with_data(new.as_bytes());
        let response = self.run(&cmd)?;
        self.conclude(response.sw, reference, EventKind::PinChanged { reference })
    }

    /// RESET RETRY COUNTER of `reference` with the resetting code `puk`,
    /// setting a new PIN too when given (P1 00: puk || new; P1 01: puk).
    /// A wrong PUK is `WrongPin { tries_left }` for the PUK.
    pub fn reset_retry_counter(&self, reference: u8, puk: &Pin, new: Option<&Pin>) -> Result<()> {
        let mut data = Zeroizing::new(puk.as_bytes().to_vec());
        let p1 = match new {
            Some(pin) => {
                data.extend_from_slice(pin.as_bytes());
                0x00
            }
            None => 0x01,
        };
        let cmd = Command::new(ins::RESET_RETRY_COUNTER, p1, reference).with_data(&data);
        let response = self.run(&cmd)?;
        if response.sw.is_ok() {
            self.attachment.publish(EventKind::PinChanged { reference });
            return Ok(());
        }
        Err(Error::status(response.sw))
    }

    /// Whether the reader has a pinpad.
    pub fn has_pinpad(&self) -> Result<bool> {
        self.attachment
            .with_channel(|channel, _| Ok(channel.has_pinpad()))
    }

    /// VERIFY with the PIN typed on the reader's pinpad; `reference` is P2
    /// of the APDU in `params`, used for the events.
    pub fn verify_on_pinpad(&self, reference: u8, params: &PinVerify<'_>) -> Result<()> {
        let bytes = self
            .attachment
            .with_channel(|channel, _| Ok(channel.verify_pin_secure(params)?))?;
        let response =
            Response::from_bytes(&bytes).ok_or(Error::Malformed("pinpad answer without SW"))?;
        self.conclude(response.sw, reference, EventKind::PinVerified { reference })
    }

    /// CHANGE REFERENCE DATA with the PINs typed on the reader's pinpad.
    pub fn change_on_pinpad(&self, reference: u8, params: &PinModify<'_>) -> Result<()> {
        let bytes = self
            .attachment
            .with_channel(|channel, _| Ok(channel.modify_pin_secure(params)?))?;
        let response =
            Response::from_bytes(&bytes).ok_or(Error::Malformed("pinpad answer without SW"))?;
        self.conclude(response.sw, reference, EventKind::PinChanged { reference })
    }
}
