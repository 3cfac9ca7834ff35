//! `bMessageType` (CCID §6.1, §6.2): the one byte that names a bulk
//! message, apart from the header views so that errors can name it too.

/// `bMessageType` of every bulk-OUT command and bulk-IN response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// 0x62 PC_to_RDR_IccPowerOn.
    IccPowerOn = 0x62,
    /// 0x63 PC_to_RDR_IccPowerOff.
    IccPowerOff = 0x63,
    /// 0x65 PC_to_RDR_GetSlotStatus.
    GetSlotStatus = 0x65,
    /// 0x6F PC_to_RDR_XfrBlock.
    XfrBlock = 0x6F,
    /// 0x6C PC_to_RDR_GetParameters.
    GetParameters = 0x6C,
    /// 0x6D PC_to_RDR_ResetParameters.
    ResetParameters = 0x6D,
    /// 0x61 PC_to_RDR_SetParameters.
    SetParameters = 0x61,
    /// 0x6B PC_to_RDR_Escape.
    Escape = 0x6B,
    /// 0x6E PC_to_RDR_IccClock.
    IccClock = 0x6E,
    /// 0x6A PC_to_RDR_T0APDU.
    T0Apdu = 0x6A,
    /// 0x69 PC_to_RDR_Secure.
    Secure = 0x69,
    /// 0x71 PC_to_RDR_Mechanical.
    Mechanical = 0x71,
    /// 0x72 PC_to_RDR_Abort.
    Abort = 0x72,
    /// 0x73 PC_to_RDR_SetDataRateAndClockFrequency.
    SetDataRateAndClockFrequency = 0x73,
    /// 0x80 RDR_to_PC_DataBlock.
    DataBlock = 0x80,
    /// 0x81 RDR_to_PC_SlotStatus.
    SlotStatus = 0x81,
    /// 0x82 RDR_to_PC_Parameters.
    Parameters = 0x82,
    /// 0x83 RDR_to_PC_Escape.
    EscapeResponse = 0x83,
    /// 0x84 RDR_to_PC_DataRateAndClockFrequency.
    DataRateAndClockFrequency = 0x84,
}

impl MessageType {
    /// Decode `bMessageType`; `None` for a value that is no bulk CCID message.
    pub fn from_byte(b: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match b {
            0x62 => IccPowerOn,
            0x63 => IccPowerOff,
            0x65 => GetSlotStatus,
            0x6F => XfrBlock,
            0x6C => GetParameters,
            0x6D => ResetParameters,
            0x61 => SetParameters,
            0x6B => Escape,
            0x6E => IccClock,
            0x6A => T0Apdu,
            0x69 => Secure,
            0x71 => Mechanical,
            0x72 => Abort,
            0x73 => SetDataRateAndClockFrequency,
            0x80 => DataBlock,
            0x81 => SlotStatus,
            0x82 => Parameters,
            0x83 => EscapeResponse,
            0x84 => DataRateAndClockFrequency,
            _ => return None,
        })
    }

    /// The `bMessageType` byte.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// True for host→reader (bulk-OUT) messages.
    pub fn is_command(self) -> bool {
        self.to_byte() < 0x80
    }

    /// The response type the reader must answer a command with (CCID §6.1,
    /// table 6.1-1); `None` for responses.
    pub fn response_type(self) -> Option<MessageType> {
        use MessageType::*;
        Some(match self {
            IccPowerOn | XfrBlock | Secure => DataBlock,
            IccPowerOff | GetSlotStatus | IccClock | T0Apdu | Mechanical | Abort => SlotStatus,
            GetParameters | ResetParameters | SetParameters => Parameters,
            Escape => EscapeResponse,
            SetDataRateAndClockFrequency => DataRateAndClockFrequency,
            DataBlock | SlotStatus | Parameters | EscapeResponse | DataRateAndClockFrequency => {
                return None
            }
        })
    }

    /// The name used by the specification, e.g. `PC_to_RDR_XfrBlock`.
    pub fn name(self) -> &'static str {
        use MessageType::*;
        match self {
            IccPowerOn => "PC_to_RDR_IccPowerOn",
            IccPowerOff => "PC_to_RDR_IccPowerOff",
            GetSlotStatus => "PC_to_RDR_GetSlotStatus",
            XfrBlock => "PC_to_RDR_XfrBlock",
            GetParameters => "PC_to_RDR_GetParameters",
            ResetParameters => "PC_to_RDR_ResetParameters",
            SetParameters => "PC_to_RDR_SetParameters",
            Escape => "PC_to_RDR_Escape",
            IccClock => "PC_to_RDR_IccClock",
            T0Apdu => "PC_to_RDR_T0APDU",
            Secure => "PC_to_RDR_Secure",
            Mechanical => "PC_to_RDR_Mechanical",
            Abort => "PC_to_RDR_Abort",
            SetDataRateAndClockFrequency => "PC_to_RDR_SetDataRateAndClockFrequency",
            DataBlock => "RDR_to_PC_DataBlock",
            SlotStatus => "RDR_to_PC_SlotStatus",
            Parameters => "RDR_to_PC_Parameters",
            EscapeResponse => "RDR_to_PC_Escape",
            DataRateAndClockFrequency => "RDR_to_PC_DataRateAndClockFrequency",
        }
    }
}
