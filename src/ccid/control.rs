//! Class-specific control requests on endpoint 0 (CCID §5.3).

/// `bmRequestType` of ABORT: host→device, class, interface.
pub const REQUEST_TYPE_OUT: u8 = 0x21;
/// `bmRequestType` of GET_CLOCK_FREQUENCIES / GET_DATA_RATES: device→host, class, interface.
pub const REQUEST_TYPE_IN: u8 = 0xA1;
/// `bRequest` ABORT.
pub const ABORT: u8 = 0x01;
/// `bRequest` GET_CLOCK_FREQUENCIES.
pub const GET_CLOCK_FREQUENCIES: u8 = 0x02;
/// `bRequest` GET_DATA_RATES.
pub const GET_DATA_RATES: u8 = 0x03;

/// A USB SETUP packet for a CCID class request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRequest {
    /// `bmRequestType`.
    pub request_type: u8,
    /// `bRequest`.
    pub request: u8,
    /// `wValue`.
    pub value: u16,
    /// `wIndex`: the interface number.
    pub index: u16,
    /// `wLength`.
    pub length: u16,
}

impl ControlRequest {
    /// ABORT for `slot`/`seq` (`wValue` = bSeq << 8 | bSlot); the host then sends PC_to_RDR_Abort with the same bSeq.
    pub fn abort(interface: u8, slot: u8, seq: u8) -> Self {
        ControlRequest {
            request_type: REQUEST_TYPE_OUT,
            request: ABORT,
            value: (u16::from(seq) << 8) | u16::from(slot),
            index: u16::from(interface),
            length: 0,
        }
    }
    /// GET_CLOCK_FREQUENCIES for a reader with `bNumClockSupported` = `count`.
    pub fn get_clock_frequencies(interface: u8, count: u8) -> Self {
        ControlRequest {
            request_type: REQUEST_TYPE_IN,
            request: GET_CLOCK_FREQUENCIES,
            value: 0,
            index: u16::from(interface),
            length: u16::from(count) * 4,
        }
    }
    /// GET_DATA_RATES for a reader with `bNumDataRatesSupported` = `count`.
    pub fn get_data_rates(interface: u8, count: u8) -> Self {
        ControlRequest {
            request_type: REQUEST_TYPE_IN,
            request: GET_DATA_RATES,
            value: 0,
            index: u16::from(interface),
            length: u16::from(count) * 4,
        }
    }
    /// The 8-byte SETUP packet.
    pub fn to_bytes(&self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [
            self.request_type,
            self.request,
            v[0],
            v[1],
            i[0],
            i[1],
            l[0],
            l[1],
        ]
    }
}

/// Why a clock/data-rate list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U32ListError {
    /// The received size.
    pub len: usize,
}

/// Iterate the little-endian `u32` values (kHz or bps) of a
/// GET_CLOCK_FREQUENCIES / GET_DATA_RATES answer. Readers are known to send
/// more or fewer entries than announced, so the count is not enforced here,
/// but a size that is not a multiple of 4 is rejected.
pub fn parse_u32_list(data: &[u8]) -> Result<impl Iterator<Item = u32> + '_, U32ListError> {
    if data.len() % 4 != 0 {
        return Err(U32ListError { len: data.len() });
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
}
