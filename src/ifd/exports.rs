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
use super::backend::ResponseSink;
use super::driver::Capability;
use super::global;

/// Runs `f`, turning a panic into IFD_COMMUNICATION_ERROR: unwinding into
/// pcscd's C frames would abort the daemon.
fn guarded(f: impl FnOnce() -> ResponseCode) -> ResponseCode {
    super::log::init();
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
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
    // promise, checked above) and cannot overlap our own Vec.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
    Ok(())
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
        // what `RawSink::put` relies on.
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
