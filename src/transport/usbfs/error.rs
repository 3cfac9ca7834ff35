//! Error mapping: a usbfs ioctl's errno, or a completed URB's status, as a
//! [`TransportError`].
//!
//! One table for the whole backend, so that unplug, stall, overflow and
//! timeout read the same whichever call reported them.

use crate::transport::TransportError;

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
}
