//! `bStatus` and `bError` of reader→host messages (CCID §6.2.6).
use core::fmt;

/// `bmICCStatus`, bits 0-1 of `bStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IccStatus {
    /// 0: an ICC is present and active (powered, clock running).
    PresentActive,
    /// 1: an ICC is present and inactive (not activated or shut down).
    PresentInactive,
    /// 2: no ICC is present.
    Absent,
    /// 3: reserved by the specification.
    Reserved,
}

/// `bmCommandStatus`, bits 6-7 of `bStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    /// 0: processed without error.
    Ok,
    /// 1: failed; `bError` says why.
    Failed,
    /// 2: time extension requested; `bError` is the BWT/WWT multiplier.
    TimeExtension,
    /// 3: reserved by the specification.
    Reserved,
}

/// A decoded `bStatus` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    /// Build `bStatus` from its two fields (bits 2-5, RFU, are zero).
    pub fn new(icc: IccStatus, command: CommandStatus) -> Status {
        let icc = match icc {
            IccStatus::PresentActive => 0,
            IccStatus::PresentInactive => 1,
            IccStatus::Absent => 2,
            IccStatus::Reserved => 3,
        };
        let cmd = match command {
            CommandStatus::Ok => 0,
            CommandStatus::Failed => 1,
            CommandStatus::TimeExtension => 2,
            CommandStatus::Reserved => 3,
        };
        Status(icc | (cmd << 6))
    }
    /// `bmICCStatus`.
    pub fn icc(self) -> IccStatus {
        match self.0 & 0x03 {
            0 => IccStatus::PresentActive,
            1 => IccStatus::PresentInactive,
            2 => IccStatus::Absent,
            _ => IccStatus::Reserved,
        }
    }
    /// `bmCommandStatus`.
    pub fn command(self) -> CommandStatus {
        match self.0 >> 6 {
            0 => CommandStatus::Ok,
            1 => CommandStatus::Failed,
            2 => CommandStatus::TimeExtension,
            _ => CommandStatus::Reserved,
        }
    }
}

impl fmt::Display for IccStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IccStatus::PresentActive => "ICC present and active",
            IccStatus::PresentInactive => "ICC present and inactive",
            IccStatus::Absent => "no ICC present",
            IccStatus::Reserved => "bmICCStatus 3 (reserved)",
        })
    }
}

/// `bError` of a failed command (`bmCommandStatus` = 1), CCID Table 6.2-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotError {
    /// 0xFF CMD_ABORTED: host aborted the command.
    CmdAborted,
    /// 0xFE ICC_MUTE: the card did not answer (or no card).
    IccMute,
    /// 0xFD XFR_PARITY_ERROR.
    XfrParityError,
    /// 0xFC XFR_OVERRUN.
    XfrOverrun,
    /// 0xFB HW_ERROR: hardware error during activation.
    HwError,
    /// 0xF8 BAD_ATR_TS.
    BadAtrTs,
    /// 0xF7 BAD_ATR_TCK.
    BadAtrTck,
    /// 0xF6 ICC_PROTOCOL_NOT_SUPPORTED.
    IccProtocolNotSupported,
    /// 0xF5 ICC_CLASS_NOT_SUPPORTED.
    IccClassNotSupported,
    /// 0xF4 PROCEDURE_BYTE_CONFLICT.
    ProcedureByteConflict,
    /// 0xF3 DEACTIVATED_PROTOCOL.
    DeactivatedProtocol,
    /// 0xF2 BUSY_WITH_AUTO_SEQUENCE: the reader is activating the card on its own.
    BusyWithAutoSequence,
    /// 0xF0 PIN_TIMEOUT.
    PinTimeout,
    /// 0xEF PIN_CANCELLED.
    PinCancelled,
    /// 0xE0 CMD_SLOT_BUSY: another command is running on this slot.
    CmdSlotBusy,
    /// 0x00: command not supported.
    CommandNotSupported,
    /// 0x01..=0x7F: the field at this byte offset of the command is not
    /// supported or has a bad value (e.g. 7 = `bPowerSelect`).
    BadParameter(u8),
    /// 0x80..=0xC0: reader-defined.
    UserDefined(u8),
    /// Any other value (reserved for future use).
    Reserved(u8),
}

impl SlotError {
    /// Decode `bError`.
    pub fn from_byte(b: u8) -> SlotError {
        use SlotError::*;
        match b {
            0xFF => CmdAborted,
            0xFE => IccMute,
            0xFD => XfrParityError,
            0xFC => XfrOverrun,
            0xFB => HwError,
            0xF8 => BadAtrTs,
            0xF7 => BadAtrTck,
            0xF6 => IccProtocolNotSupported,
            0xF5 => IccClassNotSupported,
            0xF4 => ProcedureByteConflict,
            0xF3 => DeactivatedProtocol,
            0xF2 => BusyWithAutoSequence,
            0xF0 => PinTimeout,
            0xEF => PinCancelled,
            0xE0 => CmdSlotBusy,
            0x00 => CommandNotSupported,
            0x01..=0x7F => BadParameter(b),
            0x80..=0xC0 => UserDefined(b),
            _ => Reserved(b),
        }
    }
    /// Encode as `bError`.
    pub fn to_byte(self) -> u8 {
        use SlotError::*;
        match self {
            CmdAborted => 0xFF,
            IccMute => 0xFE,
            XfrParityError => 0xFD,
            XfrOverrun => 0xFC,
            HwError => 0xFB,
            BadAtrTs => 0xF8,
            BadAtrTck => 0xF7,
            IccProtocolNotSupported => 0xF6,
            IccClassNotSupported => 0xF5,
            ProcedureByteConflict => 0xF4,
            DeactivatedProtocol => 0xF3,
            BusyWithAutoSequence => 0xF2,
            PinTimeout => 0xF0,
            PinCancelled => 0xEF,
            CmdSlotBusy => 0xE0,
            CommandNotSupported => 0x00,
            BadParameter(b) | UserDefined(b) | Reserved(b) => b,
        }
    }
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SlotError::*;
        let name = match self {
            CmdAborted => "CMD_ABORTED",
            IccMute => "ICC_MUTE",
            XfrParityError => "XFR_PARITY_ERROR",
            XfrOverrun => "XFR_OVERRUN",
            HwError => "HW_ERROR",
            BadAtrTs => "BAD_ATR_TS",
            BadAtrTck => "BAD_ATR_TCK",
            IccProtocolNotSupported => "ICC_PROTOCOL_NOT_SUPPORTED",
            IccClassNotSupported => "ICC_CLASS_NOT_SUPPORTED",
            ProcedureByteConflict => "PROCEDURE_BYTE_CONFLICT",
            DeactivatedProtocol => "DEACTIVATED_PROTOCOL",
            BusyWithAutoSequence => "BUSY_WITH_AUTO_SEQUENCE",
            PinTimeout => "PIN_TIMEOUT",
            PinCancelled => "PIN_CANCELLED",
            CmdSlotBusy => "CMD_SLOT_BUSY",
            CommandNotSupported => "command not supported (bError 0x00)",
            BadParameter(o) => {
                return write!(f, "command not supported or bad parameter at offset {o}")
            }
            UserDefined(b) => return write!(f, "reader-defined error 0x{b:02X}"),
            Reserved(b) => return write!(f, "reserved error code 0x{b:02X}"),
        };
        f.write_str(name)
    }
}
