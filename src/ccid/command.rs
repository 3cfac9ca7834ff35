//! Host→reader bulk-OUT commands (CCID §6.1): build with [`CommandRepr::emit`],
//! decode (e.g. in the simulated reader) with [`CommandRepr::parse`].
use super::error::{CcidError, FrameBytes};
use super::message::{check_room, le32, write_header, Message, MessageType, HEADER_LEN};
use super::params::{ProtocolData, ProtocolDataError};
use super::secure::SecureData;

/// The message-specific part of a command. Payloads borrow the caller's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// 0x62: activate the card. `bPowerSelect`: 0 automatic, 1 5.0 V, 2 3.0 V, 3 1.8 V.
    IccPowerOn {
        /// `bPowerSelect`.
        power_select: u8,
    },
    /// 0x63: deactivate the card.
    IccPowerOff,
    /// 0x65: ask for the slot status.
    GetSlotStatus,
    /// 0x6F: send a TPDU/APDU/characters.
    XfrBlock {
        /// `bBWI`: extends the block waiting time (T=1).
        bwi: u8,
        /// `wLevelParameter`: expected answer size (character level) or APDU chaining.
        level_parameter: u16,
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x6C: read the protocol parameters.
    GetParameters,
    /// 0x6D: restore default protocol parameters.
    ResetParameters,
    /// 0x61: set protocol parameters.
    SetParameters(ProtocolData),
    /// 0x6B: vendor-specific command.
    Escape {
        /// `abData`.
        data: &'a [u8],
    },
    /// 0x6E: `bClockCommand` 0 restart, 1 stop.
    IccClock {
        /// `bClockCommand`.
        clock_command: u8,
    },
    /// 0x6A: T=0 APDU-level class bytes for GET RESPONSE / ENVELOPE.
    T0Apdu {
        /// `bmChanges`: bit 0 = use `class_get_response`, bit 1 = use `class_envelope`.
        changes: u8,
        /// `bClassGetResponse`.
        class_get_response: u8,
        /// `bClassEnvelope`.
        class_envelope: u8,
    },
    /// 0x69: PIN verification or modification on the reader's pad.
    Secure {
        /// `bBWI`.
        bwi: u8,
        /// `wLevelParameter`.
        level_parameter: u16,
        /// `abData`.
        data: SecureData<'a>,
    },
    /// 0x71: `bFunction` 1 accept, 2 eject, 3 capture, 4 lock, 5 unlock.
    Mechanical {
        /// `bFunction`.
        function: u8,
    },
    /// 0x72: second half of an abort (after the ABORT control request).
    Abort,
    /// 0x73: set ICC clock (kHz) and data rate (bps).
    SetDataRateAndClockFrequency {
        /// `dwClockFrequency` in kHz.
        clock_frequency_khz: u32,
        /// `dwDataRate` in bps.
        data_rate: u32,
    },
}

/// A command addressed to a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRepr<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// The command.
    pub command: Command<'a>,
}

fn bad(reason: &'static str, frame: &[u8]) -> CcidError {
    CcidError::BadPayload {
        reason,
        frame: FrameBytes::new(frame),
    }
}

impl<'a> CommandRepr<'a> {
    /// `bMessageType` of this command.
    pub fn message_type(&self) -> MessageType {
        use Command::*;
        match self.command {
            IccPowerOn { .. } => MessageType::IccPowerOn,
            IccPowerOff => MessageType::IccPowerOff,
            GetSlotStatus => MessageType::GetSlotStatus,
            XfrBlock { .. } => MessageType::XfrBlock,
            GetParameters => MessageType::GetParameters,
            ResetParameters => MessageType::ResetParameters,
            SetParameters(_) => MessageType::SetParameters,
            Escape { .. } => MessageType::Escape,
            IccClock { .. } => MessageType::IccClock,
            T0Apdu { .. } => MessageType::T0Apdu,
            Secure { .. } => MessageType::Secure,
            Mechanical { .. } => MessageType::Mechanical,
            Abort => MessageType::Abort,
            SetDataRateAndClockFrequency { .. } => MessageType::SetDataRateAndClockFrequency,
        }
    }

    /// Payload size (`dwLength`).
    pub fn payload_len(&self) -> usize {
        use Command::*;
        match &self.command {
            XfrBlock { data, .. } | Escape { data } => data.len(),
            SetParameters(p) => p.len(),
            Secure { data, .. } => data.len(),
            SetDataRateAndClockFrequency { .. } => 8,
            _ => 0,
        }
    }

    /// Total frame size: header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Write the frame into `buf` with sequence number `seq`; returns its length.
    pub fn emit(&self, seq: u8, buf: &mut [u8]) -> Result<usize, CcidError> {
        use Command::*;
        let (dw, total) = check_room(buf, self.payload_len())?;
        let specific = match &self.command {
            IccPowerOn { power_select } => [*power_select, 0, 0],
            XfrBlock {
                bwi,
                level_parameter,
                ..
            }
            | Secure {
                bwi,
                level_parameter,
                ..
            } => {
                let l = level_parameter.to_le_bytes();
                [*bwi, l[0], l[1]]
            }
            SetParameters(p) => [p.protocol_num(), 0, 0],
            IccClock { clock_command } => [*clock_command, 0, 0],
            T0Apdu {
                changes,
                class_get_response,
                class_envelope,
            } => [*changes, *class_get_response, *class_envelope],
            Mechanical { function } => [*function, 0, 0],
            _ => [0, 0, 0],
        };
        write_header(buf, self.message_type(), dw, self.slot, seq, specific);
        let payload = &mut buf[HEADER_LEN..total];
        match &self.command {
            XfrBlock { data, .. } | Escape { data } => payload.copy_from_slice(data),
            SetParameters(p) => p.write(payload),
            Secure { data, .. } => data.write(payload),
            SetDataRateAndClockFrequency {
                clock_frequency_khz,
                data_rate,
            } => {
                payload[..4].copy_from_slice(&clock_frequency_khz.to_le_bytes());
                payload[4..8].copy_from_slice(&data_rate.to_le_bytes());
            }
            _ => {}
        }
        Ok(total)
    }

    /// Decode a command from a checked view (used by the simulated reader).
    ///
    /// Commands whose payload the specification fixes (none, 5/7 bytes of
    /// parameters, 8 bytes of rates) are rejected when `dwLength` differs.
    pub fn parse<T: AsRef<[u8]>>(msg: &'a Message<T>) -> Result<CommandRepr<'a>, CcidError> {
        use MessageType as M;
        let frame = msg.frame();
        let [p1, p2, p3] = msg.specific();
        let data = msg.payload();
        let level_parameter = u16::from_le_bytes([p2, p3]);
        let needs_empty = |c: Command<'a>| {
            if data.is_empty() {
                Ok(c)
            } else {
                Err(bad(
                    "this command carries no data but dwLength is not 0",
                    frame,
                ))
            }
        };
        let command = match msg.message_type() {
            M::IccPowerOn => needs_empty(Command::IccPowerOn { power_select: p1 })?,
            M::IccPowerOff => needs_empty(Command::IccPowerOff)?,
            M::GetSlotStatus => needs_empty(Command::GetSlotStatus)?,
            M::XfrBlock => Command::XfrBlock {
                bwi: p1,
                level_parameter,
                data,
            },
            M::GetParameters => needs_empty(Command::GetParameters)?,
            M::ResetParameters => needs_empty(Command::ResetParameters)?,
            M::SetParameters => match ProtocolData::parse(p1, data) {
                Ok(p) => Command::SetParameters(p),
                Err(ProtocolDataError::UnknownProtocol(_)) => {
                    return Err(bad("bProtocolNum is neither 0 (T=0) nor 1 (T=1)", frame))
                }
                Err(ProtocolDataError::BadLength { .. }) => {
                    return Err(bad(
                        "abProtocolDataStructure must be 5 bytes for T=0, 7 for T=1",
                        frame,
                    ))
                }
            },
            M::Escape => Command::Escape { data },
            M::IccClock => needs_empty(Command::IccClock { clock_command: p1 })?,
            M::T0Apdu => needs_empty(Command::T0Apdu {
                changes: p1,
                class_get_response: p2,
                class_envelope: p3,
            })?,
            M::Secure => Command::Secure {
                bwi: p1,
                level_parameter,
                data: SecureData::parse(data).map_err(|e| bad(e.reason, frame))?,
            },
            M::Mechanical => needs_empty(Command::Mechanical { function: p1 })?,
            M::Abort => needs_empty(Command::Abort)?,
            M::SetDataRateAndClockFrequency => {
                if data.len() != 8 {
                    return Err(bad(
                        "SetDataRateAndClockFrequency must carry exactly 8 bytes",
                        frame,
                    ));
                }
                Command::SetDataRateAndClockFrequency {
                    clock_frequency_khz: le32(data, 0),
                    data_rate: le32(data, 4),
                }
            }
            M::DataBlock
            | M::SlotStatus
            | M::Parameters
            | M::EscapeResponse
            | M::DataRateAndClockFrequency => {
                return Err(bad("a reader-to-host message is not a command", frame))
            }
        };
        Ok(CommandRepr {
            slot: msg.slot(),
            command,
        })
    }
}
