//! The ISO/IEC 7816-4 service layer: what the PC/SC architecture calls the
//! service provider (ISCardManage, ISCardFileAccess, ISCardVerify,
//! ISCardAuth), as a Rust API over any [`CardChannel`].
//!
//! | module | what |
//! |---|---|
//! | `error` | status words, [`CardError`], [`ChannelError`], [`Error`] |
//! | [`apdu`] | command APDUs, short and extended encodings; responses |
//! | [`tlv`] | zero-copy BER-TLV views |
//! | `fcp` | FCP/FCI templates decoded into [`FileInfo`] |
//! | `channel` | the [`CardChannel`] trait and its management types |
//! | `exchange` | GET RESPONSE, 6Cxx re-issue, chaining, length choice |
//! | `manage` | [`CardManager`]: attach, detach, reconnect, lock, status |
//! | `file` | [`FileAccess`]: SELECT, binary and record commands |
//! | `file_admin` | create, delete, (de)activate files; GET / PUT DATA |
//! | `verify` | [`Verifier`] and [`Pin`]: VERIFY, change, reset, pinpad |
//! | `auth` | [`Authenticator`]: challenge and authenticate commands |
//! | `events` | [`EventBus`]: reader, card and PIN events |
//! | `names` | which reader a name means: device, PC/SC or listed name |
//! | `lock` | [`DeviceLock`]: exclusive use across threads and processes |
//! | `slot` | [`SlotChannel`]: a ferroccid slot directly, no daemon |
//!
//! The layer holds no reader logic: a channel carries APDUs, the layer
//! decides which APDUs to send. It works with any card that follows 7816-4.
#![warn(unreachable_pub)]

pub mod apdu;
mod attachment;
mod auth;
mod channel;
mod error;
mod events;
mod exchange;
mod fcp;
mod file;
mod file_admin;
mod lock;
mod manage;
mod names;
#[cfg(feature = "pcsc")]
mod pcsc;
pub mod script;
mod slot;
pub mod tlv;
mod verify;

pub use apdu::{Command, Response};
pub use auth::{Authenticator, MutualAuth, MutualAuthCrypto};
pub use channel::{
    CardChannel, CardState, ChannelStatus, Disposition, Initialization, Protocol, ProtocolChoice,
};
pub use error::{CardError, ChannelError, Error, Result, Sw};
pub use events::{Event, EventBus, EventKind, Subscription};
pub use exchange::{atr_announces_extended, Exchanger, ExtendedLength};
pub use fcp::{EfStructure, FileInfo, FileKind, LifeCycle};
pub use file::{Ef, FileAccess, Selection, Sfi};
pub use file_admin::{NewFile, NewFileKind};
pub use lock::{DeviceLock, DeviceLockGuard};
pub use manage::{AttachOptions, CardInterface, CardLock, CardManager};
pub use names::{usb_reader_name, ListedReader};
pub use slot::{ccid_modify_data, ccid_verify_data, SlotChannel};
pub use verify::{Pin, PinStatus, Verifier};

pub use fcp::{template_objects, Template};
#[cfg(feature = "pcsc")]
pub use pcsc::{card_moves, PcscChannel, PcscMonitor};
