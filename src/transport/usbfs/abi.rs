//! The kernel ABI of usbfs: the structures and ioctl numbers this backend
//! uses, as declared in `linux/usbdevice_fs.h` (asm-generic ioctl
//! encoding: x86, arm, riscv), and the one raw `ioctl` wrapper every call
//! goes through.
//!
//! Kept apart so that the only place that must match the kernel byte for
//! byte is one short file; `tests/transport_usbfs.rs` pins every size,
//! offset and number here against the installed header.

use std::ffi::{c_int, c_uint, c_void};
use std::os::fd::RawFd;

/// `struct usbdevfs_ctrltransfer`.
#[repr(C)]
#[derive(Debug)]
pub struct CtrlTransfer {
    /// bmRequestType.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
    /// wLength.
    pub length: u16,
    /// Milliseconds; 0 waits for ever.
    pub timeout: u32,
    /// The data stage.
    pub data: *mut c_void,
}

/// `struct usbdevfs_bulktransfer`.
#[repr(C)]
#[derive(Debug)]
pub struct BulkTransfer {
    /// Endpoint address.
    pub ep: c_uint,
    /// Bytes to move.
    pub len: c_uint,
    /// Milliseconds; 0 waits for ever.
    pub timeout: c_uint,
    /// The data.
    pub data: *mut c_void,
}

/// `struct usbdevfs_urb` without the trailing ISO packet array.
#[repr(C)]
#[derive(Debug)]
pub struct Urb {
    /// `USBDEVFS_URB_TYPE_*`.
    pub kind: u8,
    /// Endpoint address.
    pub endpoint: u8,
    /// Completion status: 0 or a negative errno.
    pub status: c_int,
    /// `USBDEVFS_URB_*` flags.
    pub flags: c_uint,
    /// The data buffer.
    pub buffer: *mut c_void,
    /// Its length.
    pub buffer_length: c_int,
    /// Bytes transferred.
    pub actual_length: c_int,
    /// ISO only.
    pub start_frame: c_int,
    /// `number_of_packets` (ISO) or `stream_id` (bulk streams).
    pub number_of_packets: c_int,
    /// ISO only.
    pub error_count: c_int,
    /// Signal on completion, 0 for none.
    pub signr: c_uint,
    /// Caller's cookie.
    pub usercontext: *mut c_void,
}

/// `struct usbdevfs_disconnect_claim`.
#[repr(C)]
#[derive(Debug)]
pub struct DisconnectClaim {
    /// bInterfaceNumber.
    pub interface: c_uint,
    /// `DISCONNECT_CLAIM_*`.
    pub flags: c_uint,
    /// NUL-terminated driver name the flags compare against.
    pub driver: [u8; 256],
}

/// `USBDEVFS_URB_TYPE_INTERRUPT`.
pub const URB_TYPE_INTERRUPT: u8 = 1;
/// `USBDEVFS_URB_TYPE_BULK`.
pub const URB_TYPE_BULK: u8 = 3;
/// `USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER`.
pub const DISCONNECT_CLAIM_EXCEPT_DRIVER: c_uint = 0x02;
/// `USBDEVFS_CAP_REAP_AFTER_DISCONNECT`.
pub const CAP_REAP_AFTER_DISCONNECT: u32 = 0x10;

const IOC_NONE: u64 = 0;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'U' as u64) << 8) | nr
}

/// `_IOWR('U', 0, struct usbdevfs_ctrltransfer)`.
pub const USBDEVFS_CONTROL: u64 = ioc(IOC_READ | IOC_WRITE, 0, size_of::<CtrlTransfer>());
/// `_IOWR('U', 2, struct usbdevfs_bulktransfer)`.
pub const USBDEVFS_BULK: u64 = ioc(IOC_READ | IOC_WRITE, 2, size_of::<BulkTransfer>());
/// `_IOR('U', 10, struct usbdevfs_urb)`.
pub const USBDEVFS_SUBMITURB: u64 = ioc(IOC_READ, 10, size_of::<Urb>());
/// `_IO('U', 11)`.
pub const USBDEVFS_DISCARDURB: u64 = ioc(IOC_NONE, 11, 0);
/// `_IOW('U', 13, void *)`.
pub const USBDEVFS_REAPURBNDELAY: u64 = ioc(IOC_WRITE, 13, size_of::<*mut c_void>());
/// `_IOR('U', 15, unsigned int)`.
pub const USBDEVFS_CLAIMINTERFACE: u64 = ioc(IOC_READ, 15, size_of::<c_uint>());
/// `_IOR('U', 16, unsigned int)`.
pub const USBDEVFS_RELEASEINTERFACE: u64 = ioc(IOC_READ, 16, size_of::<c_uint>());
/// `_IOR('U', 21, unsigned int)`.
pub const USBDEVFS_CLEAR_HALT: u64 = ioc(IOC_READ, 21, size_of::<c_uint>());
/// `_IOR('U', 26, __u32)`.
pub const USBDEVFS_GET_CAPABILITIES: u64 = ioc(IOC_READ, 26, size_of::<u32>());
/// `_IOR('U', 27, struct usbdevfs_disconnect_claim)`.
pub const USBDEVFS_DISCONNECT_CLAIM: u64 = ioc(IOC_READ, 27, size_of::<DisconnectClaim>());

const _: () = assert!(size_of::<c_int>() == 4);

/// One ioctl; `Err` carries errno.
pub(super) fn ioctl(fd: RawFd, request: u64, arg: *mut c_void) -> Result<c_int, i32> {
    // SAFETY: every caller passes a request number from `abi` together with
    // a pointer to the matching, live `abi` structure (or null for
    // argument-less requests); the kernel validates everything else.
    let rc = unsafe { libc::ioctl(fd, request as _, arg) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// The calling thread's errno after a failed system call.
pub(super) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
