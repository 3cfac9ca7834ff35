//! Opening a reader by device name: the one place that maps a name to a
//! transport, so the CLI, the pcscd bundle and library users agree on what
//! `sim`, `usb:08e6/3437:libudev:0:/dev/bus/usb/001/002` or
//! `usbip:host:3240/1-1` mean.

use std::sync::Arc;

use crate::transport::sim::{SimHandle, SimTransport};
use crate::transport::{DeviceName, Transport, TransportError, TransportInfo};

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

/// An opened device: the transport, plus the fault and event handle when
/// it is the built-in simulator.
pub struct OpenedDevice {
    /// The message pipe to the CCID interface.
    pub transport: Arc<dyn Transport>,
    /// Set for `sim` names: removes and inserts cards, unplugs the reader.
    pub sim: Option<SimHandle>,
}

/// Opens a device name string (see [`DeviceName`] for the forms).
pub fn open(name: &str) -> Result<OpenedDevice, TransportError> {
    let parsed: DeviceName = name.parse().map_err(TransportError::BadName)?;
    open_name(&parsed)
}

/// Opens a parsed device name with the USB backend from the environment.
pub fn open_name(name: &DeviceName) -> Result<OpenedDevice, TransportError> {
    open_with(name, UsbBackend::from_env())
}

/// Opens a parsed device name, `usb:` names through `backend`.
pub fn open_with(name: &DeviceName, backend: UsbBackend) -> Result<OpenedDevice, TransportError> {
    match name {
        DeviceName::Sim { .. } => {
            let (transport, handle) = SimTransport::open_name(name)?;
            Ok(OpenedDevice {
                transport: Arc::new(transport),
                sim: Some(handle),
            })
        }
        DeviceName::UsbIp { .. } => Ok(OpenedDevice {
            transport: Arc::new(crate::transport::usbip::UsbIpTransport::open(name)?),
            sim: None,
        }),
        DeviceName::Usb { .. } => Ok(OpenedDevice {
            transport: open_usb(name, backend)?,
            sim: None,
        }),
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
    fn sim_names_open_the_simulator_with_a_handle() {
        let opened = open("sim").unwrap();
        assert!(opened.sim.is_some());
        assert_eq!(opened.transport.info().interface_class, 0x0B);
        let opened = open("sim:short-apdu").unwrap();
        assert!(opened.sim.is_some());
    }

    #[test]
    fn bad_names_are_typed_errors() {
        assert!(matches!(open("usb:zz"), Err(TransportError::BadName(_))));
        assert!(matches!(open("floppy"), Err(TransportError::BadName(_))));
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
