//! One logical exchange: the command goes out, the whole response comes
//! back, whatever the card and the channel needed in between (ISO/IEC
//! 7816-3 §12.2 and 7816-4 §5.1.3): GET RESPONSE after 61xx, the same
//! command re-issued with Le = xx after 6Cxx, command chaining when the
//! data field exceeds what one APDU may carry, and the choice between
//! short and extended encoding.
//!
//! Nothing here logs command or response data: it may be a PIN or a key.

use super::apdu::{ins, Command, Response, EXTENDED_MAX_NC, EXTENDED_MAX_NE, SHORT_MAX_NC};
use super::apdu::{EXTENDED_MAX_APDU, SHORT_MAX_NE};
use super::channel::CardChannel;
use super::error::{ChannelError, Error, Result, Sw};

/// Whether the card takes extended-length APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtendedLength {
    /// As the ATR's card capabilities say (historical bytes, third software
    /// function table, b7); absent = no.
    #[default]
    FromAtr,
    /// Yes (the caller knows the card).
    Yes,
    /// No: always short APDUs, chunked.
    No,
}

/// GET RESPONSE rounds before the card is deemed to loop: enough for a
/// 64 KiB answer in 256-byte pieces, with margin.
const MAX_GET_RESPONSE_ROUNDS: usize = 300;
/// 6Cxx re-issues before giving up (a card repeating 6Cxx is broken).
const MAX_REISSUES: usize = 3;

/// Whether the historical bytes announce extended Lc/Le (ISO/IEC 7816-4
/// §8.1.1.2.7: compact-TLV tag 7 "card capabilities", third byte b7).
pub fn atr_announces_extended(historical: &[u8]) -> bool {
    let objects = match historical.split_first() {
        Some((0x80, rest)) => rest,
        // Category 00: the last three bytes are the status indicator.
        Some((0x00, rest)) if rest.len() >= 3 => &rest[..rest.len() - 3],
        _ => return false,
    };
    let mut rest = objects;
    while let Some((&header, after)) = rest.split_first() {
        let len = usize::from(header & 0x0F);
        let Some(value) = after.get(..len) else {
            return false;
        };
        if header >> 4 == 0x7 && len >= 3 {
            return value[2] & 0x40 != 0;
        }
        rest = &after[len..];
    }
    false
}

/// Carries logical exchanges over a channel; owns the buffers so that an
/// attachment allocates them once.
#[derive(Debug)]
pub struct Exchanger {
    card_extended: bool,
    cmd_buf: Vec<u8>,
    resp_buf: Vec<u8>,
}

impl Exchanger {
    /// An exchanger for a card that takes (`true`) or refuses extended APDUs.
    pub fn new(card_extended: bool) -> Self {
        Exchanger {
            card_extended,
            cmd_buf: Vec::new(),
            resp_buf: Vec::new(),
        }
    }

    /// Changes what the card is known to take (after a reconnect).
    pub fn set_card_extended(&mut self, yes: bool) {
        self.card_extended = yes;
    }

    /// Whether extended APDUs are used: both the card and the channel must
    /// take them, and the channel must carry more than a short APDU.
    pub fn extended(&self, channel: &dyn CardChannel) -> bool {
        self.card_extended
            && channel.supports_extended()
            && channel.max_command_len() > super::apdu::SHORT_MAX_APDU
    }

    /// Largest Nc of one APDU (case 3) on this channel and card.
    pub fn max_nc(&self, channel: &dyn CardChannel) -> usize {
        if self.extended(channel) {
            // Header 4, Lc 3, Le 2 of a case 4 extended command.
            channel
                .max_command_len()
                .saturating_sub(9)
                .clamp(SHORT_MAX_NC, EXTENDED_MAX_NC)
        } else {
            SHORT_MAX_NC
        }
    }

    /// Largest Ne of one APDU on this channel and card.
    pub fn max_ne(&self, channel: &dyn CardChannel) -> usize {
        if self.extended(channel) {
            channel
                .max_response_len()
                .saturating_sub(2)
                .clamp(SHORT_MAX_NE, EXTENDED_MAX_NE)
        } else {
            SHORT_MAX_NE
        }
    }

    /// Runs `cmd` to completion and returns the response, whatever its SW.
    /// Data longer than one APDU is sent with command chaining (CLA b5);
    /// an Ne beyond what one APDU may ask is clamped, and the card's 61xx
    /// then brings the rest.
    pub fn exchange(
        &mut self,
        channel: &mut dyn CardChannel,
        cmd: &Command<'_>,
    ) -> Result<Response> {
        let max_nc = self.max_nc(channel);
        let max_ne = self.max_ne(channel);
        let ne = cmd.ne.min(max_ne);
        if cmd.data.len() <= max_nc {
            return self.exchange_one(channel, &cmd.with_ne(ne));
        }
        if cmd.cla & 0x80 != 0 {
            return Err(Error::InvalidRequest(
                "data too long and a proprietary CLA cannot be chained",
            ));
        }
        let mut chunks = cmd.data.chunks(max_nc).peekable();
        while let Some(chunk) = chunks.next() {
            if chunks.peek().is_none() {
                return self.exchange_one(channel, &cmd.with_data(chunk).with_ne(ne));
            }
            let part = cmd.with_cla(cmd.cla | 0x10).with_data(chunk).with_ne(0);
            let response = self.exchange_one(channel, &part)?;
            if !response.sw.is_ok() {
                return Ok(response);
            }
        }
        Err(Error::InvalidRequest("empty chained command"))
    }

    /// One command, with the 61xx and 6Cxx procedures.
    fn exchange_one(
        &mut self,
        channel: &mut dyn CardChannel,
        cmd: &Command<'_>,
    ) -> Result<Response> {
        let mut current = *cmd;
        let mut data = Vec::new();
        let mut reissues = 0;
        for _ in 0..MAX_GET_RESPONSE_ROUNDS {
            let (chunk_len, sw) = self.transmit(channel, &current)?;
            match sw.sw1() {
                0x6C if reissues < MAX_REISSUES => {
                    // Wrong Le: the card tells the right one; send again.
                    reissues += 1;
                    current = current.with_ne(le_count(sw.sw2()));
                }
                0x61 => {
                    data.extend_from_slice(&self.resp_buf[..chunk_len]);
                    // Ask for no more than the caller's Ne (a T=0 reader
                    // dropped Le, so the card does not know it: 7816-3
                    // §12.2.4); once it is reached, the answer is complete.
                    let mut ne = le_count(sw.sw2());
                    if cmd.ne > 0 {
                        let left = cmd.ne.saturating_sub(data.len());
                        if left == 0 {
                            return Ok(Response { data, sw: Sw::OK });
                        }
                        ne = ne.min(left);
                    }
                    // Keep the logical channel bits, drop chaining.
                    current = Command::new(ins::GET_RESPONSE, 0, 0)
                        .with_cla(cmd.cla & !0x10)
                        .with_ne(ne);
                }
                _ => {
                    data.extend_from_slice(&self.resp_buf[..chunk_len]);
                    // A reader that ran GET RESPONSE itself may bring more
                    // than Ne (T=0 loses Le); 7816-4 never answers more.
                    if cmd.ne > 0 {
                        data.truncate(cmd.ne);
                    }
                    return Ok(Response { data, sw });
                }
            }
        }
        Err(Error::Malformed("61xx/6Cxx procedure does not end"))
    }

    /// Encodes, transmits, splits the SW off; the data stays in `resp_buf`.
    fn transmit(
        &mut self,
        channel: &mut dyn CardChannel,
        cmd: &Command<'_>,
    ) -> Result<(usize, Sw)> {
        self.cmd_buf.clear();
        cmd.encode(false, &mut self.cmd_buf)?;
        if self.cmd_buf.len() > channel.max_command_len() {
            return Err(Error::InvalidRequest(
                "command longer than the channel carries",
            ));
        }
        let capacity = channel.max_response_len().clamp(2, EXTENDED_MAX_APDU);
        if self.resp_buf.len() < capacity {
            self.resp_buf.resize(capacity, 0);
        }
        let n = channel.transmit(&self.cmd_buf, &mut self.resp_buf[..capacity])?;
        if n < 2 {
            return Err(Error::Malformed("response shorter than a status word"));
        }
        if n > capacity {
            return Err(Error::Channel(ChannelError::BufferTooSmall { needed: n }));
        }
        let sw = Sw::new(self.resp_buf[n - 2], self.resp_buf[n - 1]);
        tracing::trace!(?cmd, resp_len = n - 2, %sw, "apdu");
        Ok((n - 2, sw))
    }
}

/// Ne from a one-byte length in SW2 (00 = 256).
fn le_count(sw2: u8) -> usize {
    if sw2 == 0 {
        256
    } else {
        usize::from(sw2)
    }
}
