//! The conformance suite every transport connected to a CCID reader passes.
//!
//! It speaks only through [`Transport`], so the same checks run against
//! real USB readers, the simulator and QEMU's usb-ccid in a guest. Each
//! check returns `Err` with a sentence saying what was expected and what
//! came back. The checks assume slot 0 exists and that nothing else is
//! talking to the reader.

use std::time::{Duration, Instant};

use super::{Transport, TransportError, REQUEST_GET_DATA_RATES};

/// PC_to_RDR_GetSlotStatus (CCID rev 1.1 §6.1.2).
const PC_TO_RDR_GET_SLOT_STATUS: u8 = 0x65;
/// RDR_to_PC_SlotStatus (§6.2.2).
const RDR_TO_PC_SLOT_STATUS: u8 = 0x81;
/// Every CCID message starts with a 10-byte header (§6.1).
const HEADER_LEN: usize = 10;
/// Bulk-IN buffer: the largest short message is the header, but a reader
/// may legitimately send up to dwMaxCCIDMessageLength; 64 KiB + header
/// covers every extended APDU.
const RX_CAPACITY: usize = 65536 + HEADER_LEN;
/// A reader answers GetSlotStatus without touching the card; a second is
/// generous even for a slow emulated bus.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the interrupt-timeout check waits for nothing to arrive.
const EMPTY_WAIT: Duration = Duration::from_millis(200);
/// Allowed lateness of a timeout or a cancellation: scheduler jitter plus
/// the rusb backend's polling slice.
const LATENESS: Duration = Duration::from_millis(400);

/// Runs every check in order and stops at the first failure.
pub fn run_conformance(t: &dyn Transport) -> Result<(), String> {
    check_get_slot_status(t)?;
    check_seq_echo(t)?;
    check_interrupt_timeout(t)?;
    check_cancel_wakes_pending_read(t)?;
    check_get_data_rates(t)?;
    Ok(())
}

/// Builds `65 00000000 00 seq 00 00 00`.
pub fn get_slot_status(seq: u8) -> [u8; HEADER_LEN] {
    [PC_TO_RDR_GET_SLOT_STATUS, 0, 0, 0, 0, 0, seq, 0, 0, 0]
}

/// Sends GetSlotStatus with `seq` and checks the SlotStatus answer's
/// type, length, slot and sequence number.
fn slot_status_round_trip(t: &dyn Transport, seq: u8, rx: &mut [u8]) -> Result<(), String> {
    t.bulk_out(&get_slot_status(seq), COMMAND_TIMEOUT)
        .map_err(|e| format!("GetSlotStatus seq {seq}: bulk-OUT failed: {e}"))?;
    let n = t
        .bulk_in(rx, COMMAND_TIMEOUT)
        .map_err(|e| format!("GetSlotStatus seq {seq}: bulk-IN failed: {e}"))?;
    let answer = &rx[..n];
    if n != HEADER_LEN {
        return Err(format!(
            "GetSlotStatus seq {seq}: expected a 10-byte SlotStatus, got {n} bytes {answer:02X?}"
        ));
    }
    if answer[0] != RDR_TO_PC_SLOT_STATUS {
        return Err(format!(
            "GetSlotStatus seq {seq}: expected message type 0x81, got 0x{:02X}",
            answer[0]
        ));
    }
    let length = u32::from_le_bytes([answer[1], answer[2], answer[3], answer[4]]);
    if length != 0 {
        return Err(format!(
            "GetSlotStatus seq {seq}: SlotStatus dwLength must be 0, got {length}"
        ));
    }
    if answer[5] != 0 {
        return Err(format!(
            "GetSlotStatus seq {seq}: answer is for slot {}, asked slot 0",
            answer[5]
        ));
    }
    if answer[6] != seq {
        return Err(format!(
            "GetSlotStatus: sent seq {seq}, answer carries seq {}",
            answer[6]
        ));
    }
    Ok(())
}

/// One GetSlotStatus round-trip on slot 0.
pub fn check_get_slot_status(t: &dyn Transport) -> Result<(), String> {
    let mut rx = vec![0u8; RX_CAPACITY];
    slot_status_round_trip(t, 0, &mut rx)
}

/// The reader echoes bSeq, including the wrap-around values.
pub fn check_seq_echo(t: &dyn Transport) -> Result<(), String> {
    let mut rx = vec![0u8; RX_CAPACITY];
    for seq in [1u8, 2, 0x7F, 0x80, 0xFE, 0xFF, 0x00] {
        slot_status_round_trip(t, seq, &mut rx)?;
    }
    Ok(())
}

/// An interrupt-IN read with nothing to deliver ends in `Timeout`, close
/// to the requested time. Readers without the (optional) interrupt
/// endpoint must say so with `NoInterruptEndpoint`.
pub fn check_interrupt_timeout(t: &dyn Transport) -> Result<(), String> {
    let mut buf = [0u8; 64];
    // Drain notifications queued since plug-in (NotifySlotChange). Each
    // read waits longer than the slowest full-speed polling interval
    // (bInterval 255 ms, which QEMU's reader uses): a shorter read times
    // out before the host controller has even polled the endpoint, and the
    // notification then lands in the "must be empty" read below.
    for _ in 0..16 {
        match t.interrupt_in(&mut buf, DRAIN_WAIT) {
            Ok(_) => continue,
            Err(TransportError::Timeout) => break,
            Err(TransportError::NoInterruptEndpoint) => return Ok(()),
            Err(e) => return Err(format!("interrupt-IN drain failed: {e}")),
        }
    }
    let started = Instant::now();
    let result = t.interrupt_in(&mut buf, EMPTY_WAIT);
    let elapsed = started.elapsed();
    match result {
        Err(TransportError::Timeout) => {}
        Ok(n) => {
            return Err(format!(
                "interrupt-IN should be empty after draining, got {:02X?}",
                &buf[..n]
            ))
        }
        Err(e) => return Err(format!("interrupt-IN: expected Timeout, got {e}")),
    }
    if elapsed + Duration::from_millis(5) < EMPTY_WAIT {
        return Err(format!(
            "interrupt-IN timed out after {elapsed:?}, before its {EMPTY_WAIT:?} timeout"
        ));
    }
    if elapsed > EMPTY_WAIT + LATENESS {
        return Err(format!(
            "interrupt-IN timeout of {EMPTY_WAIT:?} took {elapsed:?}"
        ));
    }
    Ok(())
}

/// How long each drain read of [`check_interrupt_timeout`] waits: more
/// than one full-speed polling interval of 255 ms.
const DRAIN_WAIT: Duration = Duration::from_millis(300);

/// A bulk-IN read blocked on a silent reader returns `Cancelled` soon
/// after another thread cancels, and the transport works again after
/// `reset_cancel`.
pub fn check_cancel_wakes_pending_read(t: &dyn Transport) -> Result<(), String> {
    let cancel_after = Duration::from_millis(100);
    let (result, elapsed) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut rx = vec![0u8; RX_CAPACITY];
            let started = Instant::now();
            // Nothing was sent, so a correct reader sends nothing back.
            let result = t.bulk_in(&mut rx, Duration::from_secs(3)).map(|_| ());
            (result, started.elapsed())
        });
        std::thread::sleep(cancel_after);
        t.cancel();
        reader.join().expect("bulk-IN reader thread panicked")
    });
    t.reset_cancel();
    match result {
        Err(TransportError::Cancelled) => {}
        Ok(()) => return Err("bulk-IN returned data nobody asked for".into()),
        Err(e) => return Err(format!("cancelled bulk-IN: expected Cancelled, got {e}")),
    }
    if elapsed > cancel_after + LATENESS {
        return Err(format!(
            "cancel after {cancel_after:?} woke the read only after {elapsed:?}"
        ));
    }
    check_get_slot_status(t).map_err(|e| format!("after cancel and reset: {e}"))
}

/// GET_DATA_RATES either stalls (the reader does not support it) or
/// returns whole u32 values (CCID rev 1.1 §5.3.3).
pub fn check_get_data_rates(t: &dyn Transport) -> Result<(), String> {
    // bNumDataRatesSupported is a byte: at most 255 rates of 4 bytes.
    let mut buf = [0u8; 255 * 4];
    match t.control_in(REQUEST_GET_DATA_RATES, 0, &mut buf, COMMAND_TIMEOUT) {
        Err(TransportError::Stall) => Ok(()),
        Ok(n) if n % 4 == 0 => Ok(()),
        Ok(n) => Err(format!(
            "GET_DATA_RATES returned {n} bytes, not a multiple of 4"
        )),
        Err(e) => Err(format!("GET_DATA_RATES: expected data or Stall, got {e}")),
    }
}
