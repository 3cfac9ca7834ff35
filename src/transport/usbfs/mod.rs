//! USB straight through Linux usbfs ioctls: no helper thread, no library.
//!
//! Questions every backend answers, in this order: discovery ([`list`]),
//! open ([`UsbfsTransport::open`]), transfers and cancellation (the
//! [`Transport`] impl), error mapping ([`map_urb_status`]).
//!
//! Why this backend exists: nusb reaps completions on a background event
//! thread, so every transfer costs two thread hand-offs; in the QEMU guest
//! that made ferroccid 1.44× slower per APDU than a bare usbfs loop
//! (`benches/VM.md`). Here every transfer completes in the calling thread:
//!
//! - bulk-OUT and control requests are one synchronous ioctl each
//!   (`USBDEVFS_BULK`, `USBDEVFS_CONTROL`): nobody cancels them, and the
//!   kernel enforces their timeout;
//! - bulk-IN and interrupt-IN must be cancellable, so each submits a URB
//!   and waits in `epoll_wait` for the usbfs fd (POLLOUT = a URB completed)
//!   together with its own wake-up eventfd and the transport's cancel
//!   eventfd, then reaps with `USBDEVFS_REAPURBNDELAY`. On timeout or
//!   cancel the URB is discarded and waited for (bounded), so its memory is
//!   never freed while the kernel owns it.
//!
//! Reaping returns *any* completed URB of the fd, and every completion
//! wakes every poller of the fd, so only one waiting thread at a time (the
//! reaper, bulk-IN's when it waits) watches the fd; the other sleeps on its
//! own eventfd. A reaper that reaps the other endpoint's URB records it in
//! [`ReapState`] and writes that endpoint's eventfd. URBs and buffers
//! belong to their endpoint and are reused: steady-state transfers do not
//! allocate.

use std::ffi::{c_int, c_uint, c_void, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::usb::sysfs::{self, read_attr};
use super::usb::{device_readers, parse_for_open, ClaimPlan, UsbDeviceFacts, UsbTarget};
use super::{
    round_up_to_packets, CcidEndpoints, DeviceName, Transport, TransportError, TransportInfo,
};

// ---------------------------------------------------------------------------
// Kernel ABI (linux/usbdevice_fs.h), pinned by tests/transport_usbfs.rs
// ---------------------------------------------------------------------------

/// The usbfs structures and ioctl numbers this backend uses, as declared in
/// `linux/usbdevice_fs.h` (asm-generic ioctl encoding: x86, arm, riscv).
pub mod abi {
    use std::ffi::{c_int, c_uint, c_void};

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
}

use abi::Urb;

/// One ioctl; `Err` carries errno.
fn ioctl(fd: RawFd, request: u64, arg: *mut c_void) -> Result<c_int, i32> {
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

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

/// One USB device as sysfs shows it.
struct SysfsDevice {
    dir: PathBuf,
    bus: u8,
    address: u8,
    vendor_id: u16,
    product_id: u16,
    bcd_device: u16,
}

impl SysfsDevice {
    fn read(dir: PathBuf) -> Option<Self> {
        let dec = |attr: &str| read_attr(&dir, attr)?.parse::<u8>().ok();
        let hex = |attr: &str| u16::from_str_radix(&read_attr(&dir, attr)?, 16).ok();
        Some(SysfsDevice {
            bus: dec("busnum")?,
            address: dec("devnum")?,
            vendor_id: hex("idVendor")?,
            product_id: hex("idProduct")?,
            bcd_device: hex("bcdDevice")?,
            dir,
        })
    }

    fn node(&self) -> PathBuf {
        PathBuf::from(format!("/dev/bus/usb/{:03}/{:03}", self.bus, self.address))
    }

    fn facts(&self) -> UsbDeviceFacts {
        UsbDeviceFacts {
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            bcd_device: self.bcd_device,
            bus: self.bus,
            address: self.address,
            manufacturer: read_attr(&self.dir, "manufacturer"),
            product: read_attr(&self.dir, "product"),
            serial: read_attr(&self.dir, "serial"),
        }
    }
}

/// Every USB device in sysfs (interface entries, named `1-1:1.0`, skipped).
fn sysfs_devices() -> Result<Vec<SysfsDevice>, TransportError> {
    let entries = match std::fs::read_dir(sysfs::DEVICES) {
        Ok(entries) => entries,
        // No USB subsystem (a container): no readers, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TransportError::io("listing USB devices", e)),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().contains(':'))
        .filter_map(|e| SysfsDevice::read(e.path()))
        .collect())
}

/// Every CCID interface of every connected device: class 0x0B, and class
/// 0xFF when it carries a CCID class descriptor — the same answer as the
/// nusb backend's `list`, read from sysfs without opening any device.
pub fn list() -> Result<Vec<TransportInfo>, TransportError> {
    let mut found = Vec::new();
    for device in sysfs_devices()? {
        let config = sysfs::active_configuration(&device.dir);
        found.extend(device_readers(
            &device.facts(),
            config.as_ref().map(|(_, raw)| raw.as_slice()),
            || class_only_interfaces(&device),
        ));
    }
    Ok(found)
}

/// Interfaces of class 0x0B from sysfs attributes alone, for devices whose
/// descriptors could not be parsed.
fn class_only_interfaces(device: &SysfsDevice) -> Vec<u8> {
    let Some(name) = device.dir.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}:");
    let Ok(entries) = std::fs::read_dir(&device.dir) else {
        return Vec::new();
    };
    let mut numbers: Vec<u8> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| read_attr(&e.path(), "bInterfaceClass").as_deref() == Some("0b"))
        .filter_map(|e| u8::from_str_radix(&read_attr(&e.path(), "bInterfaceNumber")?, 16).ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

// ---------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------

/// Which IN endpoint a URB belongs to: the index into [`ReapState`].
const BULK_IN: usize = 0;
const INTERRUPT_IN: usize = 1;

/// How long a discarded URB may take to come back before its memory is
/// given up (leaked) rather than freed under the kernel.
const DISCARD_WAIT: Duration = Duration::from_secs(5);

/// usbfs maps whole pages.
const PAGE: usize = 4096;

/// One IN endpoint: its URB and buffer (heap memory the kernel writes while
/// the URB is in flight, so reached through raw pointers only) and the
/// eventfd that tells its waiter another thread reaped its URB.
struct InPipe {
    which: usize,
    address: u8,
    kind: u8,
    max_packet_size: usize,
    /// Address of the current URB, compared against reaped pointers by
    /// whichever thread reaps.
    urb_address: AtomicUsize,
    wake: OwnedFd,
    /// This endpoint's waiter sleeps in `epoll_wait` on this: its `wake`,
    /// the cancel eventfd, and the usbfs fd only while it is the reaper.
    /// Other threads move the usbfs fd between the two pollers without
    /// waking anybody (see [`ReapState`]).
    poller: OwnedFd,
    memory: Mutex<UrbMemory>,
}

/// A URB and its data buffer, allocated once and reused.
///
/// The buffer is mapped from the usbfs fd where the kernel allows it
/// (`USBDEVFS_CAP_MMAP`): the device then transfers straight into it, with
/// no kernel allocation and no copy per URB — the same zero-copy path nusb
/// uses. Otherwise it is heap memory the kernel copies into at reap time.
struct UrbMemory {
    urb: NonNull<Urb>,
    buffer: NonNull<u8>,
    capacity: usize,
    mapped: bool,
}

// SAFETY: the pointers own their heap allocations (like a Box); they are
// only dereferenced by the thread holding the pipe's mutex, after the
// kernel has handed the URB back.
unsafe impl Send for UrbMemory {}

impl UrbMemory {
    fn new(capacity: usize, fd: RawFd) -> Self {
        let urb = Box::new(Urb {
            kind: 0,
            endpoint: 0,
            status: 0,
            flags: 0,
            buffer: std::ptr::null_mut(),
            buffer_length: 0,
            actual_length: 0,
            start_frame: 0,
            number_of_packets: 0,
            error_count: 0,
            signr: 0,
            usercontext: std::ptr::null_mut(),
        });
        let urb = NonNull::from(Box::leak(urb));
        let pages = capacity.max(1).div_ceil(PAGE) * PAGE;
        // SAFETY: a fresh shared mapping of the usbfs fd; no existing
        // memory is touched, and failure is checked below.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            if let Some(buffer) = NonNull::new(mapped.cast::<u8>()) {
                return UrbMemory {
                    urb,
                    buffer,
                    capacity: pages,
                    mapped: true,
                };
            }
        }
        let buffer: Box<[u8]> = vec![0u8; capacity.max(1)].into_boxed_slice();
        let capacity = buffer.len();
        UrbMemory {
            urb,
            buffer: NonNull::from(Box::leak(buffer)).cast(),
            capacity,
            mapped: false,
        }
    }

    /// Gives the memory up for good: the kernel may still write it.
    fn abandon(self) {
        std::mem::forget(self);
    }
}

impl Drop for UrbMemory {
    fn drop(&mut self) {
        // SAFETY: the pointers came from Box::leak or mmap in `new` with
        // these sizes. A URB of this memory may still be submitted: after
        // a DeviceGone (the reap that reported ENODEV raced the kernel's
        // killing of pending URBs at disconnect, or the discard wait ended
        // Gone) it is never reaped. Freeing is still sound, because the
        // kernel never writes this memory on its own: the completion
        // handler only queues the URB (data lands in the kernel's copy of
        // the buffer; `signr` is 0, so no signal carries the address), and
        // the `Urb` and a heap buffer are written only by `processcompl`,
        // inside a USBDEVFS_REAPURB* ioctl that one of our threads makes.
        // Memory is dropped in two places, neither with a reap possible:
        // (1) with the transport: `&mut` access means no thread is inside
        // a reap, and `fd` is a field declared before the pipes, so it is
        // closed first: usbdev_release kills and frees every URB of the
        // file without `processcompl`; (2) on reallocation in a transfer,
        // which runs only after `check_gone` and once the pipe's previous
        // URB was reaped (gone is sticky, so it never follows a DeviceGone).
        // A mapped buffer is the kernel's reference-counted usb_memory:
        // munmap drops only our reference, and the pages outlive any URB
        // still using them.
        unsafe {
            drop(Box::from_raw(self.urb.as_ptr()));
            if self.mapped {
                libc::munmap(self.buffer.as_ptr().cast(), self.capacity);
            } else {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.buffer.as_ptr(),
                    self.capacity,
                )));
            }
        }
    }
}

/// Who polls the usbfs fd, who waits, and completions reaped for another
/// endpoint's waiter.
///
/// usbfs has one completion queue per open file and wakes every poller of
/// the fd on each completion, so only one thread at a time — the *reaper* —
/// has the fd in its epoll set; the other waiter sleeps on its own wake
/// eventfd (and the cancel eventfd). Otherwise the reader's event thread,
/// parked in `interrupt_in`, wakes on every bulk-IN completion and mostly
/// reaps it before the transmitting thread does (`benches/VM.md`). The role
/// moves by `epoll_ctl` on the two pollers, which wakes nobody: a role
/// change costs no context switch (toggling a `poll()` set would cost two
/// per APDU, measured worse than the stealing it avoids).
///
/// Invariant (all fields, and the pollers' usbfs-fd membership, change only
/// under the mutex):
/// - `reaper` is `Some(p)` iff some endpoint is waiting, and then
///   `waiting[p]`; the usbfs fd is in at most one poller (`fd_home`), and
///   in `p`'s when `reaper == Some(p)`, so no waiter but the reaper ever
///   has it; only the reaper calls `USBDEVFS_REAPURBNDELAY`.
/// - bulk-IN takes the role from interrupt-IN when it starts waiting (the
///   transmit path is the one whose latency counts).
/// - a reaper that stops waiting (own URB reaped, cancel, timeout, gone)
///   hands the role to the other waiter, if any.
/// - a reaped URB of the other endpoint sets `done[other]`, then its
///   eventfd is written; only the owner clears `done`.
///
/// No wake-up is lost: every state change precedes the eventfd write or
/// `epoll_ctl` that announces it, a waiter re-reads the state under the
/// mutex after every `epoll_wait` (having drained its eventfd first), and
/// everything is level-triggered: an eventfd write, or a completion already
/// queued when the usbfs fd joins a poller, ends that poller's current or
/// next `epoll_wait` at once. A thread that wakes for the fd after losing
/// the role finds it is not the reaper and reaps nothing.
#[derive(Default)]
struct ReapState {
    done: [bool; 2],
    waiting: [bool; 2],
    reaper: Option<usize>,
    /// The poller holding the usbfs fd: the reaper's, or with no reaper
    /// the last one's (left there, so a thread transferring alone costs no
    /// `epoll_ctl`).
    fd_home: Option<usize>,
}

/// The other IN endpoint's index.
fn other_endpoint(which: usize) -> usize {
    if which == BULK_IN {
        INTERRUPT_IN
    } else {
        BULK_IN
    }
}

/// A claimed CCID interface reached through usbfs ioctls.
pub struct UsbfsTransport {
    info: TransportInfo,
    fd: OwnedFd,
    bulk_out_address: u8,
    bulk_in: InPipe,
    interrupt_in: Option<InPipe>,
    reaped: Mutex<ReapState>,
    cancelled: AtomicBool,
    cancel_fd: OwnedFd,
    gone: AtomicBool,
}

impl std::fmt::Debug for UsbfsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbfsTransport")
            .field("name", &self.info.name)
            .finish_non_exhaustive()
    }
}

fn eventfd() -> Result<OwnedFd, TransportError> {
    // SAFETY: eventfd has no pointer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(TransportError::io(
            "creating an eventfd",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own; a full
    // counter (EAGAIN) already means "signalled".
    unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
}

/// What woke an `epoll_wait` on an endpoint's poller.
const TOKEN_USB: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_CANCEL: u64 = 2;

/// One `epoll_ctl`; failure is logged (it only happens on a bug here or
/// resource exhaustion, and the waiter's timeout still bounds the wait).
fn epoll_ctl(poller: &OwnedFd, op: c_int, fd: RawFd, events: u32, token: u64) {
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: `event` is a live epoll_event; the kernel validates the fds.
    let rc = unsafe { libc::epoll_ctl(poller.as_raw_fd(), op, fd, &raw mut event) };
    if rc < 0 {
        tracing::warn!(
            op,
            errno = errno(),
            "epoll_ctl on an endpoint poller failed"
        );
    }
}

/// An endpoint's poller watching its `wake` and the transport's `cancel`.
fn poller(wake: &OwnedFd, cancel: &OwnedFd) -> Result<OwnedFd, TransportError> {
    // SAFETY: epoll_create1 has no pointer arguments.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(TransportError::io(
            "creating an epoll instance",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
    let poller = unsafe { OwnedFd::from_raw_fd(fd) };
    let readable = libc::EPOLLIN as u32;
    epoll_ctl(
        &poller,
        libc::EPOLL_CTL_ADD,
        wake.as_raw_fd(),
        readable,
        TOKEN_WAKE,
    );
    epoll_ctl(
        &poller,
        libc::EPOLL_CTL_ADD,
        cancel.as_raw_fd(),
        readable,
        TOKEN_CANCEL,
    );
    Ok(poller)
}

fn drain(fd: &OwnedFd) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; the fd is non-blocking.
    unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), 8) };
}

impl UsbfsTransport {
    /// Parses `name` and opens it; see [`open`](Self::open).
    pub fn open_str(name: &str) -> Result<Self, TransportError> {
        Self::open(&DeviceName::parse(name)?)
    }

    /// Opens the CCID interface `name` points at and claims it.
    ///
    /// A kernel driver bound to the interface is detached (and logged); an
    /// interface held by another usbfs user (pcscd, another ferroccid) is
    /// [`TransportError::Busy`] and is left alone.
    pub fn open(name: &DeviceName) -> Result<Self, TransportError> {
        let target = UsbTarget::from_name(name, "usbfs")?;
        let candidates = sysfs_devices()?
            .into_iter()
            .filter(|d| target.matches(d.vendor_id, d.product_id, d.bus, d.address));
        for device in candidates {
            let Some((config_value, config_raw)) = sysfs::active_configuration(&device.dir) else {
                continue;
            };
            let interfaces = parse_for_open(&config_raw)?;
            let Some((chosen, endpoints)) = target.choose(&interfaces)? else {
                continue;
            };
            let fd = open_node(&device.node())?;
            claim(&fd, &device, config_value, chosen.number)?;
            let mut info =
                device
                    .facts()
                    .describe(chosen.number, chosen.class, Some(chosen), &config_raw);
            info.endpoints = Some(endpoints);
            return Self::from_claimed(info, fd, endpoints);
        }
        Err(TransportError::NotFound(name.to_string()))
    }

    fn from_claimed(
        info: TransportInfo,
        fd: OwnedFd,
        endpoints: CcidEndpoints,
    ) -> Result<Self, TransportError> {
        let mut capabilities: u32 = 0;
        match ioctl(
            fd.as_raw_fd(),
            abi::USBDEVFS_GET_CAPABILITIES,
            (&raw mut capabilities).cast(),
        ) {
            Ok(_) if capabilities & abi::CAP_REAP_AFTER_DISCONNECT == 0 => {
                tracing::warn!("kernel cannot reap URBs after disconnect; unplug may be slow");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(errno = e, "USBDEVFS_GET_CAPABILITIES failed"),
        }
        let raw_fd = fd.as_raw_fd();
        let cancel_fd = eventfd()?;
        let pipe = |which: usize, ep: super::EndpointInfo, kind: u8| -> Result<InPipe, _> {
            let memory = UrbMemory::new(usize::from(ep.max_packet_size.max(64)), raw_fd);
            let wake = eventfd()?;
            Ok::<_, TransportError>(InPipe {
                which,
                address: ep.address,
                kind,
                max_packet_size: usize::from(ep.max_packet_size),
                urb_address: AtomicUsize::new(memory.urb.as_ptr() as usize),
                poller: poller(&wake, &cancel_fd)?,
                wake,
                memory: Mutex::new(memory),
            })
        };
        Ok(UsbfsTransport {
            bulk_out_address: endpoints.bulk_out.address,
            bulk_in: pipe(BULK_IN, endpoints.bulk_in, abi::URB_TYPE_BULK)?,
            interrupt_in: endpoints
                .interrupt_in
                .map(|ep| pipe(INTERRUPT_IN, ep, abi::URB_TYPE_INTERRUPT))
                .transpose()?,
            info,
            fd,
            reaped: Mutex::new(ReapState::default()),
            cancelled: AtomicBool::new(false),
            cancel_fd,
            gone: AtomicBool::new(false),
        })
    }
}

fn open_node(node: &Path) -> Result<OwnedFd, TransportError> {
    let path = CString::new(node.as_os_str().as_encoded_bytes())
        .map_err(|e| TransportError::io("device node path", std::io::Error::other(e)))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV) => TransportError::DeviceGone,
            _ => TransportError::io("opening the usbfs device node", e),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn claim(
    fd: &OwnedFd,
    device: &SysfsDevice,
    config_value: u8,
    number: u8,
) -> Result<(), TransportError> {
    let mut interface = c_uint::from(number);
    let bound = sysfs::bound_driver(&device.dir, config_value, number);
    let result = match ClaimPlan::for_bound_driver(bound, number)? {
        ClaimPlan::DetachAndClaim => {
            let mut request = abi::DisconnectClaim {
                interface,
                flags: abi::DISCONNECT_CLAIM_EXCEPT_DRIVER,
                driver: [0; 256],
            };
            // Never take the interface from another usbfs program.
            request.driver[..5].copy_from_slice(b"usbfs");
            ioctl(
                fd.as_raw_fd(),
                abi::USBDEVFS_DISCONNECT_CLAIM,
                (&raw mut request).cast(),
            )
        }
        ClaimPlan::Claim => ioctl(
            fd.as_raw_fd(),
            abi::USBDEVFS_CLAIMINTERFACE,
            (&raw mut interface).cast(),
        ),
    };
    result.map(drop).map_err(|e| match e {
        libc::EBUSY => {
            TransportError::Busy(format!("interface {number} is claimed by another program"))
        }
        e => map_errno("claiming CCID interface", e),
    })
}

impl Drop for UsbfsTransport {
    fn drop(&mut self) {
        let mut interface = c_uint::from(self.info.interface_number);
        // Closing the fd releases it too; releasing first lets a kernel
        // driver rebind at once. Failure (device gone) changes nothing.
        let _ = ioctl(
            self.fd.as_raw_fd(),
            abi::USBDEVFS_RELEASEINTERFACE,
            (&raw mut interface).cast(),
        );
    }
}

// ---------------------------------------------------------------------------
// Transfers and cancellation
// ---------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-transfer leaves the state usable: the URB was reaped or
    // abandoned before any code that can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds for a kernel timeout, where 0 would mean "for ever".
fn kernel_timeout(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// How waiting for a URB ended.
enum Waited {
    Reaped,
    Cancelled,
    TimedOut,
    Gone,
}

impl UsbfsTransport {
    fn check_gone(&self) -> Result<(), TransportError> {
        if self.gone.load(Ordering::SeqCst) {
            Err(TransportError::DeviceGone)
        } else {
            Ok(())
        }
    }

    fn mark_gone(&self) {
        if !self.gone.swap(true, Ordering::SeqCst) {
            tracing::info!(name = %self.info.name, "USB device gone");
        }
        // Every waiter re-checks the flag.
        signal(&self.bulk_in.wake);
        if let Some(p) = &self.interrupt_in {
            signal(&p.wake);
        }
    }

    fn pipe(&self, which: usize) -> Option<&InPipe> {
        match which {
            BULK_IN => Some(&self.bulk_in),
            _ => self.interrupt_in.as_ref(),
        }
    }

    /// Starts (or resumes) waiting for `mine`'s URB: `Some(Reaped)` when
    /// the other thread already reaped it, else whether this thread is the
    /// reaper for its next `epoll_wait`.
    fn enter_wait(&self, mine: &InPipe) -> Result<bool, Waited> {
        let mut state = lock(&self.reaped);
        if std::mem::take(&mut state.done[mine.which]) {
            self.leave_wait(&mut state, mine.which);
            return Err(Waited::Reaped);
        }
        self.join_wait(&mut state, mine.which);
        Ok(state.reaper == Some(mine.which))
    }

    /// Marks `which` as waiting and gives it the reaper role if it is free
    /// or bulk-IN claims it.
    fn join_wait(&self, state: &mut ReapState, which: usize) {
        state.waiting[which] = true;
        match state.reaper {
            None => self.set_reaper(state, Some(which)),
            Some(INTERRUPT_IN) if which == BULK_IN => self.set_reaper(state, Some(BULK_IN)),
            Some(_) => {}
        }
    }

    /// Joins the waiters *before* submitting a URB: bulk-IN takes the fd
    /// away from the event thread's poller before its URB can complete, so
    /// a fast completion cannot wake that thread either.
    fn prepare_wait(&self, mine: &InPipe) {
        let mut state = lock(&self.reaped);
        // This endpoint has no URB in flight: a completion flag is stale.
        state.done[mine.which] = false;
        self.join_wait(&mut state, mine.which);
    }

    /// Moves the reaper role, and the usbfs fd with it, between pollers.
    fn set_reaper(&self, state: &mut ReapState, next: Option<usize>) {
        state.reaper = next;
        let Some(next) = next else {
            // The fd stays where it is: nobody waits on that poller, and a
            // lone thread taking the role again finds it already there.
            return;
        };
        if state.fd_home == Some(next) {
            return;
        }
        if let Some(old) = state.fd_home.and_then(|p| self.pipe(p)) {
            epoll_ctl(
                &old.poller,
                libc::EPOLL_CTL_DEL,
                self.fd.as_raw_fd(),
                0,
                TOKEN_USB,
            );
        }
        if let Some(new) = self.pipe(next) {
            let events = (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32;
            epoll_ctl(
                &new.poller,
                libc::EPOLL_CTL_ADD,
                self.fd.as_raw_fd(),
                events,
                TOKEN_USB,
            );
        }
        state.fd_home = Some(next);
    }

    /// Stops waiting on `which`; a reaper hands its role on.
    fn leave_wait(&self, state: &mut ReapState, which: usize) {
        state.waiting[which] = false;
        if state.reaper == Some(which) {
            let other = other_endpoint(which);
            // No write to its eventfd: a completion already queued makes
            // its poller ready the moment the fd joins it.
            self.set_reaper(state, state.waiting[other].then_some(other));
        }
    }

    /// Ends a wait that did not reap (cancel, timeout).
    fn give_up_wait(&self, mine: &InPipe, why: Waited) -> Waited {
        let mut state = lock(&self.reaped);
        self.leave_wait(&mut state, mine.which);
        why
    }

    /// As the reaper: reaps completed URBs until `mine` is among them or
    /// none is left; the other endpoint's URB is recorded and its owner
    /// woken. Not the reaper (any more): reaps nothing.
    fn reap(&self, mine: &InPipe) -> Option<Waited> {
        let mut state = lock(&self.reaped);
        loop {
            if std::mem::take(&mut state.done[mine.which]) {
                self.leave_wait(&mut state, mine.which);
                return Some(Waited::Reaped);
            }
            if state.reaper != Some(mine.which) {
                return None;
            }
            let mut reaped: *mut c_void = std::ptr::null_mut();
            match ioctl(
                self.fd.as_raw_fd(),
                abi::USBDEVFS_REAPURBNDELAY,
                (&raw mut reaped).cast(),
            ) {
                Ok(_) => {
                    let address = reaped as usize;
                    for which in [BULK_IN, INTERRUPT_IN] {
                        if let Some(pipe) = self.pipe(which) {
                            if pipe.urb_address.load(Ordering::SeqCst) == address {
                                state.done[which] = true;
                                if which != mine.which {
                                    signal(&pipe.wake);
                                }
                            }
                        }
                    }
                    // Anything else is an abandoned URB coming back late.
                }
                Err(libc::EAGAIN) => return None,
                Err(libc::EINTR) => {}
                // The queue is empty and the device is gone: nothing of
                // ours is in flight any more.
                Err(libc::ENODEV) => {
                    self.leave_wait(&mut state, mine.which);
                    drop(state);
                    self.mark_gone();
                    return Some(Waited::Gone);
                }
                Err(e) => {
                    tracing::warn!(errno = e, "USBDEVFS_REAPURBNDELAY failed");
                    return None;
                }
            }
        }
    }

    /// Waits for `pipe`'s URB to be reaped (by this thread or another),
    /// the deadline, or a cancel when `cancellable`. Only the reaper (see
    /// [`ReapState`]) watches the usbfs fd.
    fn wait(&self, pipe: &InPipe, deadline: Option<Instant>, cancellable: bool) -> Waited {
        if cancellable {
            return self.wait_events(pipe, deadline, true);
        }
        // The cancel eventfd stays readable until reset_cancel: mute it,
        // or a wait that must ignore it would spin.
        let cancel = self.cancel_fd.as_raw_fd();
        epoll_ctl(&pipe.poller, libc::EPOLL_CTL_MOD, cancel, 0, TOKEN_CANCEL);
        let outcome = self.wait_events(pipe, deadline, false);
        let readable = libc::EPOLLIN as u32;
        epoll_ctl(
            &pipe.poller,
            libc::EPOLL_CTL_MOD,
            cancel,
            readable,
            TOKEN_CANCEL,
        );
        outcome
    }

    fn wait_events(&self, pipe: &InPipe, deadline: Option<Instant>, cancellable: bool) -> Waited {
        loop {
            if let Err(outcome) = self.enter_wait(pipe) {
                return outcome;
            }
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Round up: epoll_wait must not return before the deadline.
                    c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX)
                }
            };
            let mut events = [libc::epoll_event { events: 0, u64: 0 }; 3];
            // SAFETY: `events` is a live array of 3 epoll_events.
            let ready = unsafe {
                libc::epoll_wait(pipe.poller.as_raw_fd(), events.as_mut_ptr(), 3, timeout_ms)
            };
            if ready < 0 && errno() != libc::EINTR {
                tracing::warn!(errno = errno(), "epoll_wait on usbfs failed");
            }
            let ready = usize::try_from(ready).unwrap_or(0).min(events.len());
            let (mut usb, mut woken) = (0u32, false);
            for event in &events[..ready] {
                match event.u64 {
                    TOKEN_USB => usb = event.events,
                    TOKEN_WAKE => woken = true,
                    _ => {}
                }
            }
            if woken {
                drain(&pipe.wake);
            }
            if usb != 0 || woken {
                if let Some(outcome) = self.reap(pipe) {
                    return outcome;
                }
            }
            if self.gone.load(Ordering::SeqCst) && usb & libc::EPOLLHUP as u32 != 0 {
                // Disconnected: reap said the queue is not empty yet, so
                // go round again to collect ours.
                continue;
            }
            if cancellable && self.cancelled.load(Ordering::SeqCst) {
                return self.give_up_wait(pipe, Waited::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.give_up_wait(pipe, Waited::TimedOut);
            }
        }
    }

    /// Submits one IN URB of at least `buf.len()` bytes on `pipe` and waits
    /// for it, the deadline, or cancellation.
    fn read(
        &self,
        pipe: &InPipe,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let mut memory = lock(&pipe.memory);
        self.check_gone()?;
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(TransportError::Cancelled);
        }
        let requested = round_up_to_packets(buf.len(), pipe.max_packet_size);
        if memory.capacity < requested {
            *memory = UrbMemory::new(requested, self.fd.as_raw_fd());
            pipe.urb_address
                .store(memory.urb.as_ptr() as usize, Ordering::SeqCst);
        }
        let urb = memory.urb.as_ptr();
        // SAFETY: `urb` points at our URB, which the kernel does not own
        // (the previous transfer was reaped); the buffer holds `requested`
        // bytes and stays allocated until this URB is reaped or abandoned.
        unsafe {
            urb.write(Urb {
                kind: pipe.kind,
                endpoint: pipe.address,
                status: 0,
                flags: 0,
                buffer: memory.buffer.as_ptr().cast(),
                buffer_length: c_int::try_from(requested).unwrap_or(c_int::MAX),
                actual_length: 0,
                start_frame: 0,
                number_of_packets: 0,
                error_count: 0,
                signr: 0,
                usercontext: std::ptr::null_mut(),
            });
        }
        self.prepare_wait(pipe);
        if let Err(e) = ioctl(self.fd.as_raw_fd(), abi::USBDEVFS_SUBMITURB, urb.cast()) {
            self.give_up_wait(pipe, Waited::Gone);
            if matches!(e, libc::ENODEV | libc::ESHUTDOWN) {
                self.mark_gone();
            }
            return Err(map_errno("submitting a USB transfer", e));
        }
        let deadline = Instant::now().checked_add(timeout);
        let interrupted_by = match self.wait(pipe, deadline, true) {
            Waited::Reaped => None,
            Waited::Gone => Some(TransportError::DeviceGone),
            outcome => {
                // Discard, then collect the URB: EINVAL means it already
                // completed and only needs reaping.
                let _ = ioctl(self.fd.as_raw_fd(), abi::USBDEVFS_DISCARDURB, urb.cast());
                let give_up = Instant::now() + DISCARD_WAIT;
                match self.wait(pipe, Some(give_up), false) {
                    Waited::Reaped => {}
                    Waited::Gone => return Err(TransportError::DeviceGone),
                    _ => {
                        tracing::error!(
                            endpoint = pipe.address,
                            "discarded URB not returned after {DISCARD_WAIT:?}; abandoning its memory"
                        );
                        let fresh = UrbMemory::new(memory.capacity, self.fd.as_raw_fd());
                        pipe.urb_address
                            .store(fresh.urb.as_ptr() as usize, Ordering::SeqCst);
                        std::mem::replace(&mut *memory, fresh).abandon();
                        return Err(TransportError::Timeout);
                    }
                }
                Some(match outcome {
                    Waited::Cancelled => TransportError::Cancelled,
                    _ => TransportError::Timeout,
                })
            }
        };
        if matches!(interrupted_by, Some(TransportError::DeviceGone)) {
            // Reaping reported an empty queue on a gone device; only the
            // reap ioctl writes our memory, and later calls stop at
            // `check_gone` before touching it.
            return Err(TransportError::DeviceGone);
        }
        // SAFETY: the URB was reaped: the kernel no longer writes it or
        // its buffer, and the reaping thread's writes are visible through
        // the reap-state mutex.
        let (status, actual) = unsafe { ((*urb).status, (*urb).actual_length) };
        let actual = usize::try_from(actual).unwrap_or(0);
        match (status, interrupted_by) {
            // Data that made it before the cancel is delivered, not dropped.
            (0, _) if actual > buf.len() => Err(TransportError::Overflow {
                received: actual,
                capacity: buf.len(),
            }),
            (0, _) => {
                // SAFETY: the kernel wrote `actual` ≤ requested bytes into
                // the buffer and has handed it back.
                let data = unsafe { std::slice::from_raw_parts(memory.buffer.as_ptr(), actual) };
                buf[..actual].copy_from_slice(data);
                Ok(actual)
            }
            (_, Some(why)) if matches!(-status, libc::ENOENT | libc::ECONNRESET) => Err(why),
            (status, _) => Err(self.urb_failed(pipe.address, status, actual, buf.len())),
        }
    }

    /// Maps a failed URB; a stall is cleared so the next transfer works.
    fn urb_failed(
        &self,
        endpoint: u8,
        status: c_int,
        actual: usize,
        capacity: usize,
    ) -> TransportError {
        let error = map_urb_status(status, actual, capacity);
        match error {
            TransportError::DeviceGone => self.mark_gone(),
            TransportError::Stall => self.clear_halt(endpoint),
            // Killed without us asking: the kernel does that at unplug.
            TransportError::Timeout if !self.still_connected() => {
                self.mark_gone();
                return TransportError::DeviceGone;
            }
            _ => {}
        }
        error
    }

    /// Any non-reap ioctl answers ENODEV once the device is unplugged.
    fn still_connected(&self) -> bool {
        let mut capabilities: u32 = 0;
        ioctl(
            self.fd.as_raw_fd(),
            abi::USBDEVFS_GET_CAPABILITIES,
            (&raw mut capabilities).cast(),
        ) != Err(libc::ENODEV)
    }

    fn clear_halt(&self, endpoint: u8) {
        let mut ep = c_uint::from(endpoint);
        if let Err(e) = ioctl(
            self.fd.as_raw_fd(),
            abi::USBDEVFS_CLEAR_HALT,
            (&raw mut ep).cast(),
        ) {
            tracing::warn!(endpoint, errno = e, "clearing the endpoint halt failed");
        }
    }

    /// A synchronous ioctl's errno, with unplug remembered.
    fn sync_failed(&self, context: &'static str, e: i32) -> TransportError {
        if matches!(e, libc::ENODEV | libc::ESHUTDOWN) {
            self.mark_gone();
        }
        map_errno(context, e)
    }

    fn control(
        &self,
        request_type: u8,
        request: u8,
        value: u16,
        data: *mut u8,
        length: u16,
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.check_gone()?;
        let mut transfer = abi::CtrlTransfer {
            request_type,
            request,
            value,
            index: u16::from(self.info.interface_number),
            length,
            timeout: kernel_timeout(timeout),
            data: data.cast(),
        };
        ioctl(
            self.fd.as_raw_fd(),
            abi::USBDEVFS_CONTROL,
            (&raw mut transfer).cast(),
        )
        .map(|n| usize::try_from(n).unwrap_or(0))
        .map_err(|e| self.sync_failed("USB control request", e))
    }
}

/// Largest control data stage usbfs accepts (one page).
const CONTROL_MAX: usize = 4096;

impl Transport for UsbfsTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.check_gone()?;
        let mut transfer = abi::BulkTransfer {
            ep: c_uint::from(self.bulk_out_address),
            len: c_uint::try_from(message.len()).map_err(|_| {
                TransportError::io("bulk-OUT", std::io::Error::other("message too long"))
            })?,
            timeout: kernel_timeout(timeout),
            // The kernel only reads an OUT transfer's data.
            data: message.as_ptr().cast_mut().cast(),
        };
        let sent = ioctl(
            self.fd.as_raw_fd(),
            abi::USBDEVFS_BULK,
            (&raw mut transfer).cast(),
        )
        .map_err(|e| {
            if e == libc::EPIPE {
                self.clear_halt(self.bulk_out_address);
            }
            self.sync_failed("bulk-OUT", e)
        })?;
        if usize::try_from(sent).ok() != Some(message.len()) {
            return Err(TransportError::io(
                "bulk-OUT",
                std::io::Error::other(format!("sent {sent} of {} bytes", message.len())),
            ));
        }
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.read(&self.bulk_in, buf, timeout)
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let pipe = self
            .interrupt_in
            .as_ref()
            .ok_or(TransportError::NoInterruptEndpoint)?;
        self.read(pipe, buf, timeout)
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let length = buf.len().min(CONTROL_MAX);
        self.control(
            0xA1,
            request,
            value,
            buf.as_mut_ptr(),
            u16::try_from(length).unwrap_or(u16::MAX),
            timeout,
        )
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let length = u16::try_from(data.len())
            .ok()
            .filter(|&n| usize::from(n) <= CONTROL_MAX)
            .ok_or_else(|| {
                TransportError::io("control-OUT", std::io::Error::other("data stage too long"))
            })?;
        // The kernel only reads an OUT request's data stage.
        self.control(
            0x21,
            request,
            value,
            data.as_ptr().cast_mut(),
            length,
            timeout,
        )
        .map(drop)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        // Level-triggered until reset_cancel: no waiter can miss it.
        signal(&self.cancel_fd);
    }

    fn reset_cancel(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
        drain(&self.cancel_fd);
    }
}

// ---------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------

/// Maps a completed URB's negative-errno status (`actual` bytes arrived
/// into a buffer for `capacity`); ENOENT/ECONNRESET (killed) read as a
/// timeout when nobody in this backend asked for it.
pub fn map_urb_status(status: i32, actual: usize, capacity: usize) -> TransportError {
    match -status {
        libc::ENODEV | libc::ESHUTDOWN => TransportError::DeviceGone,
        libc::EPIPE => TransportError::Stall,
        libc::EOVERFLOW => TransportError::Overflow {
            received: actual.max(capacity + 1),
            capacity,
        },
        libc::ENOENT | libc::ECONNRESET | libc::ETIMEDOUT => TransportError::Timeout,
        e => TransportError::io("USB transfer", std::io::Error::from_raw_os_error(e)),
    }
}

/// Maps a usbfs ioctl's errno.
pub fn map_errno(context: &'static str, e: i32) -> TransportError {
    match e {
        libc::ENODEV | libc::ESHUTDOWN => TransportError::DeviceGone,
        libc::EPIPE => TransportError::Stall,
        libc::ETIMEDOUT => TransportError::Timeout,
        libc::EOVERFLOW => TransportError::Overflow {
            received: 0,
            capacity: 0,
        },
        libc::EBUSY => TransportError::Busy(context.to_owned()),
        e => TransportError::io(context, std::io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urb_statuses_keep_gone_stall_overflow_and_timeout_apart() {
        assert!(matches!(
            map_urb_status(-libc::ENODEV, 0, 64),
            TransportError::DeviceGone
        ));
        assert!(matches!(
            map_urb_status(-libc::ESHUTDOWN, 0, 64),
            TransportError::DeviceGone
        ));
        assert!(matches!(
            map_urb_status(-libc::EPIPE, 0, 64),
            TransportError::Stall
        ));
        assert!(matches!(
            map_urb_status(-libc::EOVERFLOW, 64, 64),
            TransportError::Overflow {
                received: 65,
                capacity: 64
            }
        ));
        assert!(matches!(
            map_urb_status(-libc::ENOENT, 0, 64),
            TransportError::Timeout
        ));
        assert!(matches!(
            map_urb_status(-libc::EPROTO, 0, 64),
            TransportError::Io { .. }
        ));
    }

    #[test]
    fn kernel_timeouts_never_mean_forever() {
        assert_eq!(kernel_timeout(Duration::ZERO), 1);
        assert_eq!(kernel_timeout(Duration::from_millis(1500)), 1500);
        assert_eq!(kernel_timeout(Duration::MAX), u32::MAX);
    }
}
