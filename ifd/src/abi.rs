//! C types and constants of pcsc-lite's `ifdhandler.h`, `pcsclite.h` and
//! `reader.h` as Debian's libpcsclite-dev 1.9.9 defines them on Linux.
//!
//! Every value here is checked against the installed headers by
//! `tests/ifd_abi.rs`, which compiles a C program against them. The
//! part 10 values of `reader.h` (feature tags, PIN structures, TLV
//! properties) are in [`ferroccid::part10`].

use std::os::raw::{c_long, c_ulong};

/// `DWORD`: `unsigned long` on Linux (64 bits on x86_64), not `uint32_t`.
pub type Dword = c_ulong;
/// `RESPONSECODE`: `long`.
pub type ResponseCode = c_long;

/// `SCARD_IO_HEADER`, passed by value to `IFDHTransmitToICC`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScardIoHeader {
    /// `SCARD_PROTOCOL_T0` / `SCARD_PROTOCOL_T1` / …
    pub protocol: Dword,
    /// Length of the header (unused by pcscd).
    pub length: Dword,
}

/// No error.
pub const IFD_SUCCESS: ResponseCode = 0;
/// Tag unknown.
pub const IFD_ERROR_TAG: ResponseCode = 600;
/// Set failed.
pub const IFD_ERROR_SET_FAILURE: ResponseCode = 601;
/// Value is read only.
pub const IFD_ERROR_VALUE_READ_ONLY: ResponseCode = 602;
/// PPS negotiation failed.
pub const IFD_ERROR_PTS_FAILURE: ResponseCode = 605;
/// Operation not supported.
pub const IFD_ERROR_NOT_SUPPORTED: ResponseCode = 606;
/// Requested protocol not supported.
pub const IFD_PROTOCOL_NOT_SUPPORTED: ResponseCode = 607;
/// Power action failed.
pub const IFD_ERROR_POWER_ACTION: ResponseCode = 608;
/// Generic communication error.
pub const IFD_COMMUNICATION_ERROR: ResponseCode = 612;
/// Timeout.
pub const IFD_RESPONSE_TIMEOUT: ResponseCode = 613;
/// Request not supported.
pub const IFD_NOT_SUPPORTED: ResponseCode = 614;
/// Card present.
pub const IFD_ICC_PRESENT: ResponseCode = 615;
/// Card absent.
pub const IFD_ICC_NOT_PRESENT: ResponseCode = 616;
/// The reader is gone.
pub const IFD_NO_SUCH_DEVICE: ResponseCode = 617;
/// The caller's buffer is too small.
pub const IFD_ERROR_INSUFFICIENT_BUFFER: ResponseCode = 618;

/// `IFDHPowerICC` action: cold reset.
pub const IFD_POWER_UP: Dword = 500;
/// `IFDHPowerICC` action: deactivate.
pub const IFD_POWER_DOWN: Dword = 501;
/// `IFDHPowerICC` action: warm reset.
pub const IFD_RESET: Dword = 502;

/// `IFDHSetProtocolParameters` flag: PTS1 is given.
pub const IFD_NEGOTIATE_PTS1: u8 = 1;
/// PTS2 is given.
pub const IFD_NEGOTIATE_PTS2: u8 = 2;
/// PTS3 is given.
pub const IFD_NEGOTIATE_PTS3: u8 = 4;

/// Capability: the ATR.
pub const TAG_IFD_ATR: Dword = 0x0303;
/// Capability: select a slot.
pub const TAG_IFD_SLOTNUM: Dword = 0x0180;
/// Capability: slots of one reader may be used concurrently.
pub const TAG_IFD_SLOT_THREAD_SAFE: Dword = 0x0FAC;
/// Capability: the driver may be called for several readers at once.
pub const TAG_IFD_THREAD_SAFE: Dword = 0x0FAD;
/// Capability: number of slots of the reader.
pub const TAG_IFD_SLOTS_NUMBER: Dword = 0x0FAE;
/// Capability: number of readers the driver can manage.
pub const TAG_IFD_SIMULTANEOUS_ACCESS: Dword = 0x0FAF;
/// Capability: the polling thread can be killed.
pub const TAG_IFD_POLLING_THREAD_KILLABLE: Dword = 0x0FB1;
/// Capability: function that stops the polling thread.
pub const TAG_IFD_STOP_POLLING_THREAD: Dword = 0x0FB2;
/// Capability: polling function with a timeout parameter.
pub const TAG_IFD_POLLING_THREAD_WITH_TIMEOUT: Dword = 0x0FB3;
/// Set by pcscd: the reader has been removed.
pub const TAG_IFD_DEVICE_REMOVED: Dword = 0x0FB4;

/// `SCARD_PROTOCOL_T0`.
pub const SCARD_PROTOCOL_T0: Dword = 0x0001;
/// `SCARD_PROTOCOL_T1`.
pub const SCARD_PROTOCOL_T1: Dword = 0x0002;
/// `SCARD_PROTOCOL_RAW`.
pub const SCARD_PROTOCOL_RAW: Dword = 0x0004;
/// `MAX_ATR_SIZE`: the ATR buffer pcscd hands to `IFDHPowerICC`.
pub const MAX_ATR_SIZE: usize = 33;
/// `MAX_BUFFER_SIZE`: short APDU buffers.
pub const MAX_BUFFER_SIZE: usize = 264;
/// `MAX_BUFFER_SIZE_EXTENDED`: 4 + 3 + 65536 + 3 + 2.
pub const MAX_BUFFER_SIZE_EXTENDED: usize = 4 + 3 + (1 << 16) + 3 + 2;

/// `SCARD_ATTR_VALUE(class, tag)`.
pub const fn scard_attr_value(class: Dword, tag: Dword) -> Dword {
    (class << 16) | tag
}
/// Vendor name.
pub const SCARD_ATTR_VENDOR_NAME: Dword = scard_attr_value(1, 0x0100);
/// Reader model.
pub const SCARD_ATTR_VENDOR_IFD_TYPE: Dword = scard_attr_value(1, 0x0101);
/// Reader firmware version, 0xMMmmbbbb.
pub const SCARD_ATTR_VENDOR_IFD_VERSION: Dword = scard_attr_value(1, 0x0102);
/// Reader serial number.
pub const SCARD_ATTR_VENDOR_IFD_SERIAL_NO: Dword = scard_attr_value(1, 0x0103);
/// Channel id, 0xDDDDCCCC.
pub const SCARD_ATTR_CHANNEL_ID: Dword = scard_attr_value(2, 0x0110);
/// Current protocol.
pub const SCARD_ATTR_CURRENT_PROTOCOL_TYPE: Dword = scard_attr_value(8, 0x0201);
/// Card presence byte.
pub const SCARD_ATTR_ICC_PRESENCE: Dword = scard_attr_value(9, 0x0300);
/// Card contacts active byte.
pub const SCARD_ATTR_ICC_INTERFACE_STATUS: Dword = scard_attr_value(9, 0x0301);
/// The ATR.
pub const SCARD_ATTR_ATR_STRING: Dword = scard_attr_value(9, 0x0303);
/// Largest APDU the reader accepts.
pub const SCARD_ATTR_MAXINPUT: Dword = scard_attr_value(7, 0xA007);
