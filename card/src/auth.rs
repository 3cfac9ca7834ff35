//! Card authentication (ISCardAuth; ISO/IEC 7816-4 §11.5.2–11.5.5): GET
//! CHALLENGE, INTERNAL, EXTERNAL and GENERAL AUTHENTICATE, and a mutual
//! authentication built from them around the caller's cryptography. The
//! driver implements no cryptography itself.

use std::fmt;
use std::sync::Arc;

use super::apdu::{ins, Command};
use super::attachment::Attachment;
use super::error::{Error, Result};

/// The caller's side of a mutual authentication.
pub trait MutualAuthCrypto {
    /// The host's challenge for INTERNAL AUTHENTICATE (the card proves
    /// itself by answering it).
    fn host_challenge(&mut self) -> Vec<u8>;

    /// Whether `card_response` is the right answer to `host_challenge`.
    fn verify_card(&mut self, host_challenge: &[u8], card_response: &[u8]) -> bool;

    /// The host's cryptogram over the card's challenge, for EXTERNAL
    /// AUTHENTICATE (the host proves itself).
    fn host_cryptogram(&mut self, card_challenge: &[u8]) -> Vec<u8>;
}

/// Parameters of [`Authenticator::mutual_authenticate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutualAuth {
    /// P1 of both AUTHENTICATE commands: the algorithm reference (00 = known
    /// before the command).
    pub algorithm: u8,
    /// P2 of both: the key reference (00 = known before the command).
    pub key_reference: u8,
    /// Ne of INTERNAL AUTHENTICATE (0 = as much as the card gives, up to 256).
    pub card_response_len: usize,
    /// Ne of GET CHALLENGE: the length of the card's challenge.
    pub card_challenge_len: usize,
    /// Run EXTERNAL AUTHENTICATE after the card proved itself.
    pub external: bool,
}

/// Authentication commands over an attachment.
#[derive(Clone)]
pub struct Authenticator {
    attachment: Arc<Attachment>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    pub(crate) fn new(attachment: Arc<Attachment>) -> Self {
        Authenticator { attachment }
    }

    /// GET CHALLENGE: `len` bytes from the card's random generator.
    pub fn get_challenge(&self, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Err(Error::InvalidRequest("a challenge has at least one byte"));
        }
        let cmd = Command::new(ins::GET_CHALLENGE, 0, 0).with_ne(len);
        self.attachment.exchange_ok(&cmd)
    }

    /// INTERNAL AUTHENTICATE: the card computes over `data` with the key
    /// and algorithm named by P1/P2; `ne` 0 means up to 256 bytes.
    pub fn internal_authenticate(
        &self,
        algorithm: u8,
        key_reference: u8,
        data: &[u8],
        ne: usize,
    ) -> Result<Vec<u8>> {
        let ne = if ne == 0 { 256 } else { ne };
        let cmd = Command::new(ins::INTERNAL_AUTHENTICATE, algorithm, key_reference)
            .with_data(data)
            .with_ne(ne);
        self.attachment.exchange_ok(&cmd)
    }

    /// EXTERNAL AUTHENTICATE: the card checks the host's cryptogram.
    pub fn external_authenticate(
        &self,
        algorithm: u8,
        key_reference: u8,
        cryptogram: &[u8],
    ) -> Result<()> {
        let cmd = Command::new(ins::EXTERNAL_AUTHENTICATE, algorithm, key_reference)
            .with_data(cryptogram);
        self.attachment.exchange_ok(&cmd).map(drop)
    }

    /// GENERAL AUTHENTICATE with a dynamic authentication template (7C…)
    /// built by the caller; returns the card's template. `ne` 0 = none.
    pub fn general_authenticate(
        &self,
        algorithm: u8,
        key_reference: u8,
        template: &[u8],
        ne: usize,
    ) -> Result<Vec<u8>> {
        let cmd = Command::new(ins::GENERAL_AUTHENTICATE, algorithm, key_reference)
            .with_data(template)
            .with_ne(ne);
        self.attachment.exchange_ok(&cmd)
    }

    /// Mutual authentication: the card answers the host's challenge
    /// (INTERNAL AUTHENTICATE) and the caller checks it; then, if asked,
    /// the host answers the card's challenge (GET CHALLENGE, EXTERNAL
    /// AUTHENTICATE). A wrong card answer is [`Error::AuthenticationFailed`]
    /// and the host's cryptogram is then never computed.
    pub fn mutual_authenticate(
        &self,
        params: &MutualAuth,
        crypto: &mut dyn MutualAuthCrypto,
    ) -> Result<()> {
        let host_challenge = crypto.host_challenge();
        let response = self.internal_authenticate(
            params.algorithm,
            params.key_reference,
            &host_challenge,
            params.card_response_len,
        )?;
        if !crypto.verify_card(&host_challenge, &response) {
            return Err(Error::AuthenticationFailed);
        }
        if params.external {
            let card_challenge = self.get_challenge(params.card_challenge_len)?;
            let cryptogram = crypto.host_cryptogram(&card_challenge);
            self.external_authenticate(params.algorithm, params.key_reference, &cryptogram)?;
        }
        Ok(())
    }
}
