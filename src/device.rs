//! Opening a reader by device name: the one place that maps a name to a
//! transport, so the CLI, the pcscd bundle and library users agree on what
//! `usb:08e6/3437:libudev:0:/dev/bus/usb/001/002`, `usbip:host:3240/1-1`
//! or `sim:pinpad` mean.
//!
//! USB and USB/IP names open the driver's own backends. Names of other
//! kinds (`sim`, `sim:PROFILE`) open through a [`Resolver`] registered for
//! their scheme by whoever links the code behind them — the simulator's
//! `ferroccid_sim::register()` — so this module depends on no such code.

use std::any::Any;
use std::sync::{Arc, PoisonError, RwLock};

use crate::transport::{DeviceName, Transport, TransportError, TransportInfo};

/// Opens the device names of one scheme that the driver does not implement
/// itself (registered with [`register_resolver`]).
pub trait Resolver: Send + Sync {
    /// Opens `name`, whose scheme this resolver was registered for.
    fn open(&self, name: &DeviceName) -> Result<OpenedDevice, TransportError>;
}

/// The registered resolvers, by scheme.
static RESOLVERS: RwLock<Vec<(&'static str, Arc<dyn Resolver>)>> = RwLock::new(Vec::new());

/// Registers `resolver` for the names of `scheme` (e.g. `"sim"` for `sim`
/// and `sim:PROFILE`), replacing an earlier one for the same scheme.
pub fn register_resolver(scheme: &'static str, resolver: Arc<dyn Resolver>) {
    let mut resolvers = RESOLVERS.write().unwrap_or_else(PoisonError::into_inner);
    resolvers.retain(|(s, _)| *s != scheme);
    resolvers.push((scheme, resolver));
}

/// The resolver registered for `scheme`, if any.
fn resolver(scheme: &str) -> Option<Arc<dyn Resolver>> {
    RESOLVERS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, r)| Arc::clone(r))
}

/// Which USB library opens `usb:` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbBackend {
    /// nusb: pure Rust over usbfs (feature `nusb`); the default where usbfs is not
    /// compiled in (non-Linux), and the fallback with `FERROCCID_USB_BACKEND=nusb`.
    Nusb,
    /// libusb through rusb (feature `rusb`).
    Rusb,
    /// Linux usbfs ioctls, completions reaped in the calling thread
    /// (feature `usbfs`, Linux only): the default where compiled in, since with no
    /// helper-thread hand-off per transfer it measured 1.05× the raw usbfs floor in
    /// the QEMU guest against nusb's 1.55× (benches/VM.md).
    Usbfs,
}

impl UsbBackend {
    /// The backend chosen by `FERROCCID_USB_BACKEND` (`nusb`, `rusb` or
    /// `usbfs`), else [`default`](Self::default).
    pub fn from_env() -> UsbBackend {
        Self::chosen(std::env::var("FERROCCID_USB_BACKEND").ok().as_deref())
    }

    /// The backend a `FERROCCID_USB_BACKEND` value selects: names not compiled in
    /// (or unknown) fall back to the default rather than failing every open.
    fn chosen(value: Option<&str>) -> UsbBackend {
        match value {
            Some("rusb") if cfg!(feature = "rusb") => UsbBackend::Rusb,
            Some("nusb") if cfg!(feature = "nusb") => UsbBackend::Nusb,
            Some("usbfs") if USBFS_COMPILED => UsbBackend::Usbfs,
            _ => UsbBackend::default(),
        }
    }
}

impl Default for UsbBackend {
    /// usbfs when compiled in (Linux), else nusb, else rusb.
    fn default() -> UsbBackend {
        if USBFS_COMPILED {
            UsbBackend::Usbfs
        } else if cfg!(feature = "nusb") {
            UsbBackend::Nusb
        } else {
            UsbBackend::Rusb
        }
    }
}

/// Whether the usbfs backend exists in this build.
const USBFS_COMPILED: bool = cfg!(all(feature = "usbfs", target_os = "linux"));

/// An opened device: the transport, plus whatever handle the code that
/// opened it hands out with it (the simulator's `SimHandle`, which moves
/// cards and unplugs the reader).
pub struct OpenedDevice {
    /// The message pipe to the CCID interface.
    pub transport: Arc<dyn Transport>,
    /// A resolver's handle on the device; see [`OpenedDevice::handle`].
    pub extra: Option<Arc<dyn Any + Send + Sync>>,
}

impl OpenedDevice {
    /// A device with no handle besides its transport.
    pub fn new(transport: Arc<dyn Transport>) -> OpenedDevice {
        OpenedDevice {
            transport,
            extra: None,
        }
    }

    /// The handle that came with the device, if it is a `T`.
    pub fn handle<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extra.as_deref()?.downcast_ref()
    }
}

/// Opens a device name string (see [`DeviceName`] for the forms).
pub fn open(name: &str) -> Result<OpenedDevice, TransportError> {
    let parsed: DeviceName = name.parse().map_err(TransportError::BadName)?;
    open_name(&parsed)
}

/// Whether this program opens names of `name`'s kind: `usb:` and
/// `usbip:` always, a registered scheme (`sim`) only once a crate has
/// registered its resolver. A front end that also takes reader names
/// (`--reader ACR38`) can tell the two apart with it.
pub fn can_open(name: &DeviceName) -> bool {
    match name {
        DeviceName::Registered { scheme, .. } => resolver(scheme).is_some(),
        DeviceName::Usb { .. } | DeviceName::UsbIp { .. } => true,
    }
}

/// Opens a parsed device name with the USB backend from the environment.
pub fn open_name(name: &DeviceName) -> Result<OpenedDevice, TransportError> {
    open_with(name, UsbBackend::from_env())
}

/// Opens a parsed device name, `usb:` names through `backend`.
pub fn open_with(name: &DeviceName, backend: UsbBackend) -> Result<OpenedDevice, TransportError> {
    match name {
        DeviceName::Registered { scheme, .. } => match resolver(scheme) {
            Some(resolver) => resolver.open(name),
            None => Err(TransportError::Unsupported(format!(
                "{name}: nothing in this program opens {scheme}: names \
                 (no resolver registered; the simulator's is ferroccid_sim::register)"
            ))),
        },
        DeviceName::UsbIp { .. } => Ok(OpenedDevice::new(Arc::new(
            crate::transport::usbip::UsbIpTransport::open(name)?,
        ))),
        DeviceName::Usb { .. } => Ok(OpenedDevice::new(open_usb(name, backend)?)),
    }
}

fn open_usb(name: &DeviceName, backend: UsbBackend) -> Result<Arc<dyn Transport>, TransportError> {
    match backend {
        #[cfg(feature = "nusb")]
        UsbBackend::Nusb => Ok(Arc::new(crate::transport::nusb::NusbTransport::open(name)?)),
        #[cfg(feature = "rusb")]
        UsbBackend::Rusb => Ok(Arc::new(crate::transport::rusb::RusbTransport::open(name)?)),
        #[cfg(all(feature = "usbfs", target_os = "linux"))]
        UsbBackend::Usbfs => Ok(Arc::new(crate::transport::usbfs::UsbfsTransport::open(
            name,
        )?)),
        #[allow(unreachable_patterns)]
        _ => Err(TransportError::Unsupported(format!(
            "USB backend {backend:?} is not compiled in (opening {name})"
        ))),
    }
}

/// Every CCID interface on the USB buses, through `backend`.
pub fn list_usb(backend: UsbBackend) -> Result<Vec<TransportInfo>, TransportError> {
    match backend {
        #[cfg(feature = "nusb")]
        UsbBackend::Nusb => crate::transport::nusb::list(),
        #[cfg(feature = "rusb")]
        UsbBackend::Rusb => crate::transport::rusb::list(),
        #[cfg(all(feature = "usbfs", target_os = "linux"))]
        UsbBackend::Usbfs => crate::transport::usbfs::list(),
        #[allow(unreachable_patterns)]
        _ => Err(TransportError::Unsupported(format!(
            "USB backend {backend:?} is not compiled in"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usbfs_is_the_default_where_compiled_in() {
        let expected = if USBFS_COMPILED {
            UsbBackend::Usbfs
        } else if cfg!(feature = "nusb") {
            UsbBackend::Nusb
        } else {
            UsbBackend::Rusb
        };
        assert_eq!(UsbBackend::default(), expected);
        assert_eq!(UsbBackend::chosen(None), expected);
        assert_eq!(
            UsbBackend::chosen(Some("libusb0")),
            expected,
            "unknown name"
        );
    }

    #[test]
    fn the_environment_names_each_compiled_backend() {
        if cfg!(feature = "nusb") {
            assert_eq!(UsbBackend::chosen(Some("nusb")), UsbBackend::Nusb);
        }
        if USBFS_COMPILED {
            assert_eq!(UsbBackend::chosen(Some("usbfs")), UsbBackend::Usbfs);
        }
        let rusb = UsbBackend::chosen(Some("rusb"));
        if cfg!(feature = "rusb") {
            assert_eq!(rusb, UsbBackend::Rusb);
        } else {
            assert_eq!(rusb, UsbBackend::default(), "rusb not compiled in");
        }
    }

    #[test]
    fn bad_names_are_typed_errors() {
        assert!(matches!(open("usb:zz"), Err(TransportError::BadName(_))));
        assert!(matches!(open("Floppy"), Err(TransportError::BadName(_))));
        // A scheme's shape, but nothing registered for it.
        assert!(matches!(
            open("floppy"),
            Err(TransportError::Unsupported(_))
        ));
    }

    #[test]
    fn absent_usb_devices_are_not_found() {
        // No USB reader with this VID:PID exists on a test machine.
        let err = open("usb:ffff/fffe").err().expect("no such device");
        assert!(
            matches!(err, TransportError::NotFound(_) | TransportError::Io { .. }),
            "{err:?}"
        );
    }
}
