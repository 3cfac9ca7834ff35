//! `ferroccid::Reader` against a hostile device: a transport whose
//! every bulk-IN read is answered with fuzzer-chosen frames (and whose
//! class descriptor and clock/data-rate lists are fuzzer-chosen too). Open,
//! power on, protocol selection and one transmit must each end, in an
//! error or a success, within bounded transport calls, and never panic.
//!
//! Input: `flags` (bit 0: take the next 54 bytes as the class descriptor,
//! else bits 1-3 pick a built-in simulator profile's descriptor), then
//! records `mode len_lo len_hi bytes…`. Mode bit 0 copies bSlot and bSeq
//! of the last command sent into the frame and bit 1 sets dwLength to the
//! bytes given, so the fuzzer gets past the framing checks into the
//! protocol logic; mode bit 2 makes the record a control-IN answer.
//!
//! Flags bit 4 makes the device answer **for ever**: once its records are
//! used up it starts them again, so a loop that a device drives (time
//! extensions, chained parts, stale frames, busy polls, T=1 blocks, NULL
//! bytes) must end by its own caps. Every call must then end within a fixed
//! number of transport calls ([`FOREVER_CALLS`]), whatever the input; the
//! wall-clock budget is set far beyond libFuzzer's `-timeout`, so a loop
//! bounded only by time shows up as a hang.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroccid::{ProtocolPreference, Reader, ReaderOptions};
use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};
use ferroccid::{Transport, TransportError, TransportInfo};
use libfuzzer_sys::fuzz_target;

/// Transport calls allowed beyond one per scripted frame: retries after
/// timeouts, aborts and the status checks around them.
const SLACK: usize = 1000;

/// Transport calls allowed for the whole session (open, power on,
/// protocol, one transmit, status, power off) against a device that
/// answers for ever: each command's device-driven rounds are capped
/// (time extensions, stale frames and busy retries by the options below,
/// empty chained parts at 16, T=1 blocks by the engine's caps, NULL bytes
/// at 1000 per TPDU), and response data by the 300-byte buffer.
const FOREVER_CALLS: usize = 50_000;

#[derive(Clone)]
struct Frame {
    mode: u8,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct State {
    bulk_in: VecDeque<Frame>,
    control_in: VecDeque<Vec<u8>>,
    /// For ever mode: the records to start again from.
    replay: Option<(Vec<Frame>, Vec<Vec<u8>>)>,
    /// bSlot and bSeq of the last bulk-OUT message.
    last_address: [u8; 2],
    calls: usize,
}

struct HostileDevice {
    info: TransportInfo,
    state: Mutex<State>,
    budget: usize,
}

impl HostileDevice {
    fn count(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap();
        state.calls += 1;
        assert!(
            state.calls <= self.budget,
            "reader made more than {} transport calls",
            self.budget
        );
        state
    }
}

impl Transport for HostileDevice {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        let mut state = self.count();
        if message.len() >= 7 {
            state.last_address = [message[5], message[6]];
        }
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], _timeout: Duration) -> Result<usize, TransportError> {
        let mut state = self.count();
        if state.bulk_in.is_empty() {
            if let Some((frames, _)) = &state.replay {
                let again = frames.clone();
                state.bulk_in.extend(again);
            }
        }
        let Some(Frame { mode, mut bytes }) = state.bulk_in.pop_front() else {
            return Err(TransportError::Timeout);
        };
        if mode & 1 != 0 && bytes.len() >= 7 {
            bytes[5..7].copy_from_slice(&state.last_address);
        }
        if mode & 2 != 0 && bytes.len() >= 10 {
            let len = (bytes.len() - 10) as u32;
            bytes[1..5].copy_from_slice(&len.to_le_bytes());
        }
        if bytes.len() > buf.len() {
            return Err(TransportError::Overflow {
                received: bytes.len(),
                capacity: buf.len(),
            });
        }
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn interrupt_in(&self, _buf: &mut [u8], _timeout: Duration) -> Result<usize, TransportError> {
        let _state = self.count();
        Err(TransportError::NoInterruptEndpoint)
    }

    fn control_in(
        &self,
        _request: u8,
        _value: u16,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, TransportError> {
        let mut state = self.count();
        if state.control_in.is_empty() {
            if let Some((_, answers)) = &state.replay {
                let again = answers.clone();
                state.control_in.extend(again);
            }
        }
        let answer = state.control_in.pop_front().ok_or(TransportError::Stall)?;
        let n = answer.len().min(buf.len());
        buf[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }

    fn control_out(
        &self,
        _request: u8,
        _value: u16,
        _data: &[u8],
        _timeout: Duration,
    ) -> Result<(), TransportError> {
        let _state = self.count();
        Ok(())
    }

    fn cancel(&self) {}

    fn reset_cancel(&self) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let descriptor = if flags & 1 != 0 {
        let Some((d, tail)) = rest.split_first_chunk::<54>() else {
            return;
        };
        rest = tail;
        d.to_vec()
    } else {
        let name = BUILTIN_NAMES[usize::from(flags >> 1) % BUILTIN_NAMES.len()];
        Profile::from_name(name)
            .expect("built-in")
            .descriptor
            .to_vec()
    };
    let mut state = State::default();
    while let Some((&[mode, lo, hi], tail)) = rest.split_first_chunk::<3>() {
        let take = usize::from(u16::from_le_bytes([lo, hi])).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        if mode & 4 != 0 {
            state.control_in.push_back(bytes.to_vec());
        } else {
            state.bulk_in.push_back(Frame {
                mode,
                bytes: bytes.to_vec(),
            });
        }
    }
    let forever = flags & 0x10 != 0;
    let budget = if forever {
        state.replay = Some((
            state.bulk_in.iter().cloned().collect(),
            state.control_in.iter().cloned().collect(),
        ));
        FOREVER_CALLS
    } else {
        state.bulk_in.len() + state.control_in.len() + SLACK
    };
    let device = HostileDevice {
        info: TransportInfo {
            name: "hostile".into(),
            interface_class: 0x0B,
            class_descriptor: Some(descriptor),
            ..TransportInfo::default()
        },
        state: Mutex::new(state),
        budget,
    };
    let options = ReaderOptions {
        busy_delay: Duration::ZERO,
        busy_retries: 3,
        max_time_extensions: 16,
        // Far beyond libFuzzer's -timeout: only the round caps may end a
        // for-ever device's loops.
        max_command_time: Duration::from_secs(3600),
        ..ReaderOptions::default()
    };
    let Ok(reader) = Reader::open_with(Arc::new(device), options) else {
        return;
    };
    let Ok(slot) = reader.slot(0) else {
        return;
    };
    if slot.power_on().is_err() {
        return;
    }
    let _ = slot.set_protocol(ProtocolPreference::Any);
    let mut response = vec![0u8; if forever { 300 } else { 65538 }];
    // SELECT by AID with Le: a case 4 command, the most paths.
    let command = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
    ];
    if let Ok(n) = slot.transmit(&command, &mut response) {
        assert!(n <= response.len());
    }
    let _ = slot.status();
    let _ = slot.power_off();
});
