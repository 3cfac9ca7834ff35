//! CCID wire format (USB CCID Rev 1.1): message views and representations,
//! status and error codes, interrupt and control messages, the class
//! descriptor, and validation of frames received from a reader.
//!
//! Everything a device sends is untrusted: views check their lengths once, at
//! construction, and every failure is a [`CcidError`] carrying the offending
//! bytes. Nothing in this module does I/O.
//!
//! | module | what |
//! |---|---|
//! | [`message`] | the 10-byte bulk header view [`Message`] and [`MessageType`] |
//! | [`command`] | host→reader commands ([`CommandRepr`]) |
//! | [`response`] | reader→host responses ([`ResponseRepr`]) |
//! | [`params`] | T=0/T=1 `abProtocolDataStructure` |
//! | [`secure`] | PIN verify/modify data structures of `PC_to_RDR_Secure` |
//! | [`status`] | `bStatus` / `bError` |
//! | [`interrupt`] | interrupt-IN `NotifySlotChange` and `HardwareError` |
//! | [`control`] | class-specific control requests |
//! | [`validate`] | [`validate_response`] |
//! | [`descriptor`] | [`ClassDescriptor`] and [`find_class_descriptor`] |
//! | [`redact`] | which bytes of a sent frame a log may show (never a PIN) |
//! | [`trace`] | one event per frame at TRACE level |

pub mod command;
pub mod control;
pub mod descriptor;
pub mod error;
pub mod interrupt;
pub mod message;
mod message_type;
pub mod params;
pub mod redact;
pub mod response;
pub mod secure;
pub mod status;
pub mod trace;
pub mod validate;

pub use command::CommandRepr;
pub use descriptor::{
    find_class_descriptor, ClassDescriptor, DescriptorError, Endpoint, ExchangeLevel, InterfaceInfo,
};
pub use error::CcidError;
pub use message::{Message, MessageType, HEADER_LEN};
pub use response::ResponseRepr;
pub use status::{CommandStatus, IccStatus, SlotError, Status};
pub use validate::{validate_response, Expectation, Reply};
