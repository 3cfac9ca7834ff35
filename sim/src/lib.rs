//! The simulated smart card and the simulated CCID reader around it.
//!
//! Written from ISO/IEC 7816-3 and 7816-4 directly, independently of the
//! `ferroccid-protocols` crate, so that a misreading of the standard on the
//! host side is not mirrored on the card side.
//!
//! | module | what |
//! |---|---|
//! | [`card`] | the virtual ISO/IEC 7816 card |
//! | `reader` | the CCID device model around the cards |
//! | [`profile`] | reader profiles: built-in, from a descriptor, from JSON |
//! | [`control`] | steering a simulator in another process (pcscd) through files |
#![warn(unreachable_pub)]

pub mod card;
pub mod control;
pub mod names;
pub mod profile;
pub(crate) mod reader;
pub(crate) mod transport;

pub use reader::pin::verify_apdu;
pub use reader::{ReaderModel, ResponseFault, SlotFaults, Violation};
pub use transport::{SimHandle, SimTransport};

use std::sync::Arc;

use ferroccid::{DeviceName, TransportError};
use ferroccid::{OpenedDevice, Resolver};

/// Opens `sim` and `sim:PROFILE` names for [`ferroccid`].
struct SimResolver;

impl Resolver for SimResolver {
    fn open(&self, name: &DeviceName) -> Result<OpenedDevice, TransportError> {
        let (transport, handle) = SimTransport::open_name(name)?;
        Ok(OpenedDevice {
            transport: Arc::new(transport),
            extra: Some(Arc::new(handle)),
        })
    }
}

/// Makes `sim` and `sim:PROFILE` names open through
/// [`ferroccid::open`] (the device comes with its [`SimHandle`]:
/// `opened.handle::<SimHandle>()`). Idempotent.
pub fn register() {
    ferroccid::register_resolver(names::SCHEME, Arc::new(SimResolver));
}
