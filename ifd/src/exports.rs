//! The C entry points pcscd calls (`ifdhandler.h`, API v3).
//!
//! Each function only checks pointers and lengths, copies C data into Rust
//! values, calls [`Driver`](super::driver::Driver) inside `catch_unwind`,
//! and copies the answer back without writing past any length it was given.
#![allow(non_snake_case)]

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::abi::*;
use super::driver::Capability;
use super::global;
use super::reader::ResponseSink;

/// Runs `f`, turning a panic into IFD_COMMUNICATION_ERROR: unwinding into
/// pcscd's C frames would abort the daemon.
/// The log initialisation runs inside the guard too: it reads the
/// environment and Info.plist and installs a subscriber, any of which
/// could panic.
fn guarded(f: impl FnOnce() -> ResponseCode) -> ResponseCode {
    catch_unwind(AssertUnwindSafe(|| {
        super::log::init();
        f()
    }))
    .unwrap_or_else(|_| {
        tracing::error!("panic caught at the C boundary");
        IFD_COMMUNICATION_ERROR
    })
}

/// Borrows a caller's input buffer, refusing lengths pcscd never sends.
///
/// # Safety
/// `data` must point to `len` readable bytes when non-null.
unsafe fn input<'a>(data: *const u8, len: Dword, max: usize) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok().filter(|&l| l <= max)?;
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller promises `len` readable bytes.
    Some(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Copies `bytes` to `out` if they fit in `capacity`.
///
/// # Safety
/// `out` must point to `capacity` writable bytes when non-null.
unsafe fn output(bytes: &[u8], out: *mut u8, capacity: usize) -> Result<(), ResponseCode> {
    if bytes.len() > capacity {
        return Err(IFD_ERROR_INSUFFICIENT_BUFFER);
    }
    if bytes.is_empty() {
        return Ok(());
    }
    if out.is_null() {
        return Err(IFD_COMMUNICATION_ERROR);
    }
    // SAFETY: `out` has `capacity` >= bytes.len() writable bytes (caller's
    // promise, checked above). `bytes` is our own memory (a Vec, or the
    // slot's response buffer), never the caller's: the caller's input is
    // copied first when it overlaps `out` (see IFDHTransmitToICC).
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
    Ok(())
}

/// Whether `[out, out + capacity)` shares a byte with `input`: compared as
/// addresses, nothing is dereferenced.
fn overlaps(input: &[u8], out: *mut u8, capacity: usize) -> bool {
    if input.is_empty() || out.is_null() || capacity == 0 {
        return false;
    }
    let (a, a_len) = (input.as_ptr() as usize, input.len());
    let b = out as usize;
    a < b.saturating_add(capacity) && b < a.saturating_add(a_len)
}

/// pcscd's RxBuffer as a [`ResponseSink`]: uninitialised C memory, so it
/// is written through its pointer, never seen as a Rust slice.
struct RawSink {
    out: *mut u8,
    capacity: usize,
}

impl ResponseSink for RawSink {
    fn capacity(&self) -> usize {
        // Without a buffer only an empty response fits.
        if self.out.is_null() {
            0
        } else {
            self.capacity
        }
    }

    fn put(&mut self, response: &[u8]) {
        // SAFETY: `out` holds `capacity` writable bytes (the caller's
        // promise when the sink was made), and callers never pass more
        // than `capacity()` bytes; `output` refuses null and overlong.
        let _ = unsafe { output(response, self.out, self.capacity) };
    }
}

/// Opens the reader `DeviceName` (`usb:…`, `sim:…`, `usbip:…`) as `Lun`.
#[no_mangle]
pub extern "C" fn IFDHCreateChannelByName(Lun: Dword, DeviceName: *const c_char) -> ResponseCode {
    guarded(|| {
        if DeviceName.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: pcscd passes a NUL-terminated string (reader.conf or
        // hotplug name, at most MAX_DEVICENAME bytes).
        let name = unsafe { CStr::from_ptr(DeviceName) };
        match name.to_str() {
            Ok(name) => global().create_channel_by_name(Lun, name),
            Err(_) => IFD_COMMUNICATION_ERROR,
        }
    })
}

/// Opens channel `Channel` (reader.conf without DEVICENAME).
#[no_mangle]
pub extern "C" fn IFDHCreateChannel(Lun: Dword, Channel: Dword) -> ResponseCode {
    guarded(|| global().create_channel(Lun, Channel))
}

/// Closes `Lun`.
#[no_mangle]
pub extern "C" fn IFDHCloseChannel(Lun: Dword) -> ResponseCode {
    guarded(|| global().close_channel(Lun))
}

extern "C" fn polling(lun: Dword, timeout_ms: c_int) -> ResponseCode {
    guarded(|| global().poll(lun, timeout_ms))
}

extern "C" fn stop_polling(lun: Dword) -> ResponseCode {
    guarded(|| global().stop_polling(lun))
}

/// Reads capability `Tag` into `Value` (`*Length` bytes on entry, the
/// value's length on return).
#[no_mangle]
pub extern "C" fn IFDHGetCapabilities(
    Lun: Dword,
    Tag: Dword,
    Length: *mut Dword,
    Value: *mut u8,
) -> ResponseCode {
    guarded(|| {
        if Length.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null pointer to pcscd's DWORD.
        let capacity = usize::try_from(unsafe { Length.read() }).unwrap_or(usize::MAX);
        let bytes = match global().get_capability(Lun, Tag) {
            Ok(Capability::Bytes(bytes)) => bytes,
            Ok(Capability::PollingFunction) => {
                let f: extern "C" fn(Dword, c_int) -> ResponseCode = polling;
                (f as usize).to_ne_bytes().to_vec()
            }
            Ok(Capability::StopPollingFunction) => {
                let f: extern "C" fn(Dword) -> ResponseCode = stop_polling;
                (f as usize).to_ne_bytes().to_vec()
            }
            Err(code) => return code,
        };
        // SAFETY: `Value` holds `*Length` writable bytes (IFD API contract).
        match unsafe { output(&bytes, Value, capacity) } {
            Ok(()) => {
                // SAFETY: checked non-null above.
                unsafe { Length.write(bytes.len() as Dword) };
                IFD_SUCCESS
            }
            Err(code) => code,
        }
    })
}

/// Sets capability `Tag` (only TAG_IFD_DEVICE_REMOVED is writable).
#[no_mangle]
pub extern "C" fn IFDHSetCapabilities(
    Lun: Dword,
    Tag: Dword,
    Length: Dword,
    Value: *const u8,
) -> ResponseCode {
    guarded(|| {
        // SAFETY: `Value` holds `Length` readable bytes (IFD API contract);
        // capabilities are small, longer claims are refused first.
        match unsafe { input(Value, Length, 256) } {
            Some(value) => global().set_capability(Lun, Tag, value),
            None => IFD_COMMUNICATION_ERROR,
        }
    })
}

/// Selects the protocol, negotiating PPS1 when `Flags` asks.
#[no_mangle]
pub extern "C" fn IFDHSetProtocolParameters(
    Lun: Dword,
    Protocol: Dword,
    Flags: u8,
    PTS1: u8,
    _PTS2: u8,
    _PTS3: u8,
) -> ResponseCode {
    guarded(|| global().set_protocol(Lun, Protocol, Flags, PTS1))
}

/// Powers the card up, down or resets it, returning the ATR.
#[no_mangle]
pub extern "C" fn IFDHPowerICC(
    Lun: Dword,
    Action: Dword,
    Atr: *mut u8,
    AtrLength: *mut Dword,
) -> ResponseCode {
    guarded(|| {
        if AtrLength.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null pointer to pcscd's DWORD.
        unsafe { AtrLength.write(0) };
        let atr = match global().power(Lun, Action) {
            Ok(atr) => atr,
            Err(code) => return code,
        };
        // SAFETY: `Atr` holds MAX_ATR_SIZE bytes (ifdhandler.h); the
        // driver never returns a longer ATR.
        match unsafe { output(&atr, Atr, MAX_ATR_SIZE) } {
            Ok(()) => {
                // SAFETY: checked non-null above.
                unsafe { AtrLength.write(atr.len() as Dword) };
                IFD_SUCCESS
            }
            Err(code) => code,
        }
    })
}

/// Sends an APDU, returning the response in `RxBuffer` (`*RxLength` bytes
/// of room on entry).
#[no_mangle]
pub extern "C" fn IFDHTransmitToICC(
    Lun: Dword,
    SendPci: ScardIoHeader,
    TxBuffer: *const u8,
    TxLength: Dword,
    RxBuffer: *mut u8,
    RxLength: *mut Dword,
    RecvPci: *mut ScardIoHeader,
) -> ResponseCode {
    guarded(|| {
        if RxLength.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null pointer to pcscd's DWORD.
        let capacity = usize::try_from(unsafe { RxLength.read() }).unwrap_or(usize::MAX);
        // SAFETY: non-null, see above.
        unsafe { RxLength.write(0) };
        // SAFETY: `TxBuffer` holds `TxLength` bytes; lengths beyond
        // pcscd's own buffer are refused before the slice is made.
        let Some(apdu) = (unsafe { input(TxBuffer, TxLength, MAX_BUFFER_SIZE_EXTENDED) }) else {
            return IFD_COMMUNICATION_ERROR;
        };
        // `RxBuffer` holds `*RxLength` writable bytes (IFD API contract):
        // what `RawSink::put` relies on. `RawSink::put` writes RxBuffer
        // while `apdu`, a shared slice over TxBuffer, is still live (the
        // backend may read the command while it answers): writing memory
        // a live `&[u8]` covers is undefined behaviour. pcscd passes two
        // distinct buffers, but the ABI does not promise it, so when the
        // two ranges overlap the command is copied first (a hostile or
        // buggy caller pays one allocation; pcscd never does).
        let copied;
        let apdu = if overlaps(apdu, RxBuffer, capacity) {
            copied = apdu.to_vec();
            &copied[..]
        } else {
            apdu
        };
        let mut sink = RawSink {
            out: RxBuffer,
            capacity,
        };
        let length = match global().transmit(Lun, SendPci.protocol, apdu, &mut sink) {
            Ok(length) => length,
            Err(code) => return code,
        };
        // SAFETY: non-null, see above.
        unsafe { RxLength.write(length as Dword) };
        if !RecvPci.is_null() {
            // SAFETY: non-null pointer to pcscd's SCARD_IO_HEADER.
            unsafe {
                RecvPci.write(ScardIoHeader {
                    protocol: SendPci.protocol,
                    length: std::mem::size_of::<ScardIoHeader>() as Dword,
                })
            };
        }
        IFD_SUCCESS
    })
}

/// Card presence: IFD_ICC_PRESENT, IFD_ICC_NOT_PRESENT or an error.
#[no_mangle]
pub extern "C" fn IFDHICCPresence(Lun: Dword) -> ResponseCode {
    guarded(|| global().presence(Lun))
}

/// PC/SC part 10 control codes.
#[no_mangle]
pub extern "C" fn IFDHControl(
    Lun: Dword,
    dwControlCode: Dword,
    TxBuffer: *const u8,
    TxLength: Dword,
    RxBuffer: *mut u8,
    RxLength: Dword,
    pdwBytesReturned: *mut Dword,
) -> ResponseCode {
    guarded(|| {
        if pdwBytesReturned.is_null() {
            return IFD_COMMUNICATION_ERROR;
        }
        // SAFETY: non-null pointer to pcscd's DWORD.
        unsafe { pdwBytesReturned.write(0) };
        // SAFETY: `TxBuffer` holds `TxLength` bytes; longer than pcscd's
        // buffer is refused first.
        let Some(input) = (unsafe { input(TxBuffer, TxLength, MAX_BUFFER_SIZE_EXTENDED) }) else {
            return IFD_COMMUNICATION_ERROR;
        };
        let capacity = usize::try_from(RxLength).unwrap_or(usize::MAX);
        let answer = match global().control(Lun, dwControlCode, input) {
            Ok(answer) => answer,
            Err(code) => return code,
        };
        // SAFETY: `RxBuffer` holds `RxLength` writable bytes.
        if let Err(code) = unsafe { output(&answer, RxBuffer, capacity) } {
            return code;
        }
        // SAFETY: non-null, see above.
        unsafe { pdwBytesReturned.write(answer.len() as Dword) };
        IFD_SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_decided_on_addresses() {
        let mut buf = [0u8; 64];
        let base = buf.as_mut_ptr();
        let input = unsafe { std::slice::from_raw_parts(base.add(8), 8) };
        assert!(overlaps(input, base, 9));
        assert!(!overlaps(input, base, 8), "ends where the input starts");
        assert!(overlaps(input, unsafe { base.add(15) }, 1));
        assert!(
            !overlaps(input, unsafe { base.add(16) }, 48),
            "starts after"
        );
        assert!(!overlaps(input, ptr::null_mut(), 64));
        assert!(!overlaps(&[], base, 64));
        assert!(!overlaps(input, base, 0));
        assert!(overlaps(input, base, usize::MAX), "no overflow");
    }

    /// A caller passing one buffer as TxBuffer and RxBuffer gets the right
    /// answer (the command is copied before the response is written).
    #[test]
    #[cfg(feature = "sim")]
    fn transmit_with_one_buffer_for_command_and_response() {
        let lun: Dword = 0x00AB_0000;
        let name = c"sim:tpdu-t1.overlap";
        assert_eq!(IFDHCreateChannelByName(lun, name.as_ptr()), IFD_SUCCESS);
        let mut atr = [0u8; MAX_ATR_SIZE];
        let mut atr_len: Dword = 0;
        assert_eq!(
            IFDHPowerICC(lun, IFD_POWER_UP, atr.as_mut_ptr(), &mut atr_len),
            IFD_SUCCESS
        );
        assert_eq!(
            IFDHSetProtocolParameters(lun, SCARD_PROTOCOL_T1, 0, 0, 0, 0),
            IFD_SUCCESS
        );
        let pci = ScardIoHeader {
            protocol: 1,
            length: std::mem::size_of::<ScardIoHeader>() as Dword,
        };
        for shift in [0usize, 3, 5] {
            let mut buf = [0u8; 300];
            // GET CHALLENGE of 8 bytes, `shift` bytes into the buffer the
            // response also goes to.
            buf[shift..shift + 5].copy_from_slice(&[0x00, 0x84, 0x00, 0x00, 0x08]);
            let mut rx_len: Dword = 290;
            let base = buf.as_mut_ptr();
            let code = IFDHTransmitToICC(
                lun,
                pci,
                unsafe { base.add(shift) },
                5,
                base,
                &mut rx_len,
                ptr::null_mut(),
            );
            assert_eq!(code, IFD_SUCCESS, "shift {shift}");
            assert_eq!(rx_len, 10, "shift {shift}");
            assert_eq!(&buf[8..10], &[0x90, 0x00], "shift {shift}");
        }
        assert_eq!(IFDHCloseChannel(lun), IFD_SUCCESS);
    }
}
