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
//! `ReapState` and writes that endpoint's eventfd. URBs and buffers
//! belong to their endpoint and are reused: steady-state transfers do not
//! allocate.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`UsbfsTransport`]: its state, open, the transfers, the [`Transport`] impl |
//! | [`abi`] | the kernel ABI: `#[repr(C)]` structures, ioctl numbers, the raw `ioctl` call |
//! | `enumeration.rs` | sysfs discovery ([`list`]); finding, opening and claiming an interface |
//! | `urb.rs` | URB memory: allocation, mapping, and why freeing it is sound |
//! | `reaper.rs` | the event loop: epoll and eventfds, the reaper role and its hand-off |
//! | `error.rs` | errno and URB status to [`TransportError`] |

pub mod abi;
mod enumeration;
mod error;
mod reaper;
mod urb;

use std::ffi::{c_int, c_uint};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use enumeration::list;
pub use error::{map_errno, map_urb_status};

use super::{round_up_to_packets, DeviceName, Transport, TransportError, TransportInfo};
use abi::{ioctl, Urb};
use enumeration::ClaimedInterface;
use reaper::{drain, eventfd, poller, signal, ReapState, Waited, BULK_IN, INTERRUPT_IN};
use urb::UrbMemory;

/// How long a discarded URB may take to come back before its memory is
/// given up (leaked) rather than freed under the kernel.
const DISCARD_WAIT: Duration = Duration::from_secs(5);

/// One IN endpoint: its URB and buffer (heap memory the kernel writes while
/// the URB is in flight, so reached through raw pointers only) and the
/// eventfd that tells its waiter another thread reaped its URB.
struct InPipe {
    /// [`BULK_IN`] or [`INTERRUPT_IN`]: its index into [`ReapState`].
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

/// A claimed CCID interface reached through usbfs ioctls.
pub struct UsbfsTransport {
    info: TransportInfo,
    // Declared before the pipes, so dropped (closed) first: the soundness
    // of freeing URB memory relies on it (see `UrbMemory`'s `Drop`).
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
        Self::from_claimed(enumeration::open_and_claim(name)?)
    }

    fn from_claimed(claimed: ClaimedInterface) -> Result<Self, TransportError> {
        let ClaimedInterface {
            info,
            fd,
            endpoints,
        } = claimed;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_timeouts_never_mean_forever() {
        assert_eq!(kernel_timeout(Duration::ZERO), 1);
        assert_eq!(kernel_timeout(Duration::from_millis(1500)), 1500);
        assert_eq!(kernel_timeout(Duration::MAX), u32::MAX);
    }
}
