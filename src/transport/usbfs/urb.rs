//! URB memory: one [`Urb`] and its data buffer per IN endpoint, allocated
//! once and reused, and the rules for giving it back.
//!
//! The kernel writes this memory while a URB is in flight, so it is held
//! through raw pointers, never references, and its `Drop` carries the
//! argument for why freeing it is sound even when a URB was never reaped.

use std::os::fd::RawFd;
use std::ptr::NonNull;

use super::abi::Urb;

/// usbfs maps whole pages.
const PAGE: usize = 4096;

/// A URB and its data buffer, allocated once and reused.
///
/// The buffer is mapped from the usbfs fd where the kernel allows it
/// (`USBDEVFS_CAP_MMAP`): the device then transfers straight into it, with
/// no kernel allocation and no copy per URB — the same zero-copy path nusb
/// uses. Otherwise it is heap memory the kernel copies into at reap time.
pub(super) struct UrbMemory {
    pub(super) urb: NonNull<Urb>,
    pub(super) buffer: NonNull<u8>,
    pub(super) capacity: usize,
    mapped: bool,
}

// SAFETY: the pointers own their heap allocations (like a Box); they are
// only dereferenced by the thread holding the pipe's mutex, after the
// kernel has handed the URB back.
unsafe impl Send for UrbMemory {}

impl UrbMemory {
    pub(super) fn new(capacity: usize, fd: RawFd) -> Self {
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
    pub(super) fn abandon(self) {
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
