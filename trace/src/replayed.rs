//! A recorded session served as a reader: a [`Transport`] that answers
//! each command with the answer the recording has for it, so that a bug
//! report reproduces with no hardware (`ferroccid sim --replay TRACE`,
//! also exported over USB/IP, where libccid or any driver can use it).
//!
//! Answers are keyed by the whole command with bSeq zeroed: a command
//! sent again gets the next answer recorded for it, the last one once
//! they are used up, with the asker's bSeq. A command the recording never
//! saw is answered as a reader answers a command it does not support
//! (bStatus "failed", bError 00 CMD_NOT_SUPPORTED), except GetSlotStatus,
//! which reports the card present and powered as the recording does;
//! each such command is counted ([`ReplayedReader::unknown_commands`]).
//! The descriptor is the recording's configuration descriptor when the
//! capture holds one; otherwise the caller gives one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferroccid::ccid::HEADER_LEN;
use ferroccid::{Transport, TransportError, TransportInfo};

use crate::replay::exchanges;
use crate::Frame;

/// Recorded answers by command (bSeq zeroed), in recorded order.
type Answers = HashMap<Vec<u8>, (VecDeque<Vec<u8>>, Vec<u8>)>;

/// See the module documentation.
pub struct ReplayedReader {
    info: TransportInfo,
    answers: Mutex<Answers>,
    pending: Mutex<VecDeque<Vec<u8>>>,
    arrived: Condvar,
    cancelled: AtomicBool,
    unknown: AtomicUsize,
}

/// The key of a command: its bytes with bSeq zeroed.
fn key(command: &[u8]) -> Vec<u8> {
    let mut key = command.to_vec();
    if let Some(seq) = key.get_mut(6) {
        *seq = 0;
    }
    key
}

impl ReplayedReader {
    /// Serves the exchanges of `frames` as a reader described by `info`.
    pub fn new(frames: &[Frame], info: TransportInfo) -> ReplayedReader {
        let mut answers: Answers = HashMap::new();
        for exchange in exchanges(frames) {
            let Some(answer) = exchange.answer else {
                continue;
            };
            let entry = answers
                .entry(key(&exchange.command))
                .or_insert_with(|| (VecDeque::new(), answer.clone()));
            entry.0.push_back(answer.clone());
            entry.1 = answer;
        }
        ReplayedReader {
            info,
            answers: Mutex::new(answers),
            pending: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
            cancelled: AtomicBool::new(false),
            unknown: AtomicUsize::new(0),
        }
    }

    /// How many distinct commands the recording answers.
    pub fn recorded_commands(&self) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Commands received that the recording has no answer for.
    pub fn unknown_commands(&self) -> usize {
        self.unknown.load(Ordering::Relaxed)
    }

    /// The answer to `command`, with its bSeq.
    fn answer(&self, command: &[u8]) -> Vec<u8> {
        let recorded = {
            let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            answers
                .get_mut(&key(command))
                .map(|(queue, last)| queue.pop_front().unwrap_or_else(|| last.clone()))
        };
        let mut answer = recorded.unwrap_or_else(|| {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            unsupported(command)
        });
        answer[5] = command[5];
        answer[6] = command[6];
        answer
    }
}

impl ReplayedReader {
    /// Waits up to `timeout` for `take` to find something in the pending
    /// answers; cancellable.
    fn wait<R>(
        &self,
        timeout: Duration,
        mut take: impl FnMut(&mut VecDeque<Vec<u8>>) -> Option<R>,
    ) -> Result<R, TransportError> {
        let deadline = Instant::now() + timeout;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.cancelled.load(Ordering::Acquire) {
                return Err(TransportError::Cancelled);
            }
            if let Some(found) = take(&mut pending) {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout);
            }
            pending = self
                .arrived
                .wait_timeout(pending, left.min(Duration::from_millis(100)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A reader's answer to a command it does not know (CCID §6.2): the
/// message type that answers it, bStatus failed, bError 00; GetSlotStatus
/// says the card is there and active.
fn unsupported(command: &[u8]) -> Vec<u8> {
    let kind = match command[0] {
        0x62 | 0x6F | 0x69 => 0x80,        // DataBlock
        0x6C | 0x61 | 0x6D | 0x63 => 0x82, // Parameters
        0x6B => 0x83,                      // Escape
        0x73 => 0x84,                      // DataRateAndClockFrequency
        _ => 0x81,                         // SlotStatus
    };
    let status = if command[0] == 0x65 { 0x00 } else { 0x40 };
    vec![kind, 0, 0, 0, 0, 0, 0, status, 0, 0]
}

impl Transport for ReplayedReader {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        if message.len() < HEADER_LEN {
            return Err(TransportError::Stall);
        }
        let answer = self.answer(message);
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(answer);
        self.arrived.notify_all();
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let answer = self.wait(timeout, VecDeque::pop_front)?;
        if answer.len() > buf.len() {
            return Err(TransportError::Overflow {
                received: answer.len(),
                capacity: buf.len(),
            });
        }
        buf[..answer.len()].copy_from_slice(&answer);
        Ok(answer.len())
    }

    /// No card ever moves in a recording served this way: the wait runs
    /// out (or is cancelled), as on a reader whose card stays put.
    fn interrupt_in(&self, _buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.wait(timeout, |_| None::<()>).map(|()| 0)
    }

    fn control_in(
        &self,
        _: u8,
        _: u16,
        _: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        Err(TransportError::Stall)
    }

    fn control_out(&self, _: u8, _: u16, _: &[u8], _: Duration) -> Result<(), TransportError> {
        Err(TransportError::Stall)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.arrived.notify_all();
    }

    fn reset_cancel(&self) {
        self.cancelled.store(false, Ordering::Release);
    }
}
