//! Reader→host bulk-IN responses (CCID §6.2): decode with
//! [`ResponseRepr::parse`], build (e.g. in the simulated reader) with
//! [`ResponseRepr::emit`].
use super::error::{CcidError, FrameBytes};
use super::message::{check_room, le32, write_header, Message, MessageType, HEADER_LEN};
use super::params::ProtocolData;
use super::status::Status;

/// The message-specific part of a response. Payloads borrow the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// 0x80: answer to PowerOn (the ATR), XfrBlock and Secure.
    DataBlock {
        /// `bChainParameter` (see [`super::message::ChainParameter`]).
        chain_parameter: u8,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x81: answer to PowerOff, GetSlotStatus, IccClock, T0APDU, Mechanical, Abort.
    SlotStatus {
        /// `bClockStatus`: 0 running, 1 stopped low, 2 stopped high, 3 stopped (unknown level).
        clock_status: u8,
    },
    /// 0x82: answer to Get/Set/ResetParameters.
    Parameters {
        /// `bProtocolNum`.
        protocol_num: u8,
        /// The structure; `None` when `dwLength` is 0 (allowed on failure).
        params: Option<ProtocolData>,
    },
    /// 0x83: answer to Escape.
    Escape {
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x84: answer to SetDataRateAndClockFrequency.
    DataRateAndClockFrequency {
        /// (`dwClockFrequency` kHz, `dwDataRate` bps); `None` when `dwLength` is 0 (allowed on failure).
        values: Option<(u32, u32)>,
    },
}

/// A response with its slot, status and error bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRepr<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bStatus`.
    pub status: Status,
    /// `bError` as sent (a [`super::SlotError`] code, or the time-extension multiplier).
    pub error: u8,
    /// The response.
    pub response: Response<'a>,
}

fn bad(reason: &'static str, frame: &[u8]) -> CcidError {
    CcidError::BadPayload {
        reason,
        frame: FrameBytes::new(frame),
    }
}

impl<'a> ResponseRepr<'a> {
    /// `bMessageType` of this response.
    pub fn message_type(&self) -> MessageType {
        match self.response {
            Response::DataBlock { .. } => MessageType::DataBlock,
            Response::SlotStatus { .. } => MessageType::SlotStatus,
            Response::Parameters { .. } => MessageType::Parameters,
            Response::Escape { .. } => MessageType::EscapeResponse,
            Response::DataRateAndClockFrequency { .. } => MessageType::DataRateAndClockFrequency,
        }
    }

    /// Payload size (`dwLength`).
    pub fn payload_len(&self) -> usize {
        match &self.response {
            Response::DataBlock { data, .. } | Response::Escape { data } => data.len(),
            Response::SlotStatus { .. } => 0,
            Response::Parameters { params, .. } => params.map_or(0, |p| p.len()),
            Response::DataRateAndClockFrequency { values } => values.map_or(0, |_| 8),
        }
    }

    /// Total frame size.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Write the frame into `buf`, echoing the request's `seq`; returns its length.
    pub fn emit(&self, seq: u8, buf: &mut [u8]) -> Result<usize, CcidError> {
        let (dw, total) = check_room(buf, self.payload_len())?;
        let third = match &self.response {
            Response::DataBlock {
                chain_parameter, ..
            } => *chain_parameter,
            Response::SlotStatus { clock_status } => *clock_status,
            Response::Parameters {
                protocol_num,
                params,
            } => params.map_or(*protocol_num, |p| p.protocol_num()),
            Response::Escape { .. } | Response::DataRateAndClockFrequency { .. } => 0,
        };
        write_header(
            buf,
            self.message_type(),
            dw,
            self.slot,
            seq,
            [self.status.0, self.error, third],
        );
        let payload = &mut buf[HEADER_LEN..total];
        match &self.response {
            Response::DataBlock { data, .. } | Response::Escape { data } => {
                payload.copy_from_slice(data)
            }
            Response::Parameters {
                params: Some(p), ..
            } => p.write(payload),
            Response::DataRateAndClockFrequency {
                values: Some((clock, rate)),
            } => {
                payload[..4].copy_from_slice(&clock.to_le_bytes());
                payload[4..].copy_from_slice(&rate.to_le_bytes());
            }
            _ => {}
        }
        Ok(total)
    }

    /// Decode a response from a checked view.
    pub fn parse<T: AsRef<[u8]>>(msg: &'a Message<T>) -> Result<ResponseRepr<'a>, CcidError> {
        let frame = msg.frame();
        let data = msg.payload();
        let third = msg.chain_parameter();
        let response = match msg.message_type() {
            MessageType::DataBlock => Response::DataBlock {
                chain_parameter: third,
                data,
            },
            MessageType::SlotStatus => {
                if !data.is_empty() {
                    return Err(bad("RDR_to_PC_SlotStatus must have dwLength 0", frame));
                }
                Response::SlotStatus {
                    clock_status: third,
                }
            }
            MessageType::Parameters => Response::Parameters {
                protocol_num: third,
                params: if data.is_empty() {
                    None
                } else {
                    Some(ProtocolData::parse(third, data).map_err(|_| {
                        bad(
                            "abProtocolDataStructure must be 5 bytes for T=0 or 7 for T=1",
                            frame,
                        )
                    })?)
                },
            },
            MessageType::EscapeResponse => Response::Escape { data },
            MessageType::DataRateAndClockFrequency => Response::DataRateAndClockFrequency {
                values: match data.len() {
                    0 => None,
                    8 => Some((le32(data, 0), le32(data, 4))),
                    _ => {
                        return Err(bad(
                            "RDR_to_PC_DataRateAndClockFrequency must carry 8 bytes",
                            frame,
                        ))
                    }
                },
            },
            _ => return Err(bad("a host-to-reader command is not a response", frame)),
        };
        Ok(ResponseRepr {
            slot: msg.slot(),
            status: msg.status(),
            error: msg.error_byte(),
            response,
        })
    }
}
