//! A scripted [`Transport`] for tests: the script lists the bulk-OUT frames
//! the host must send and the canned bulk-IN, control and interrupt answers
//! (or injected faults: timeout, unplug, a read that hangs until cancelled).
//! [`ScriptedTransport::assert_done`] checks that the whole script was used
//! and nothing unexpected was sent.
//!
//! ```
//! use ferroccid::testing::ScriptedTransport;
//! use ferroccid::Transport;
//! use std::time::Duration;
//!
//! let t = ScriptedTransport::new(None)
//!     .expect_out(&[0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0])
//!     .reply(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
//! t.bulk_out(&[0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0], Duration::from_secs(1)).unwrap();
//! let mut buf = [0u8; 64];
//! assert_eq!(t.bulk_in(&mut buf, Duration::from_secs(1)).unwrap(), 10);
//! t.assert_done();
//! ```
//!
//! Consecutive `expect_out` steps match in any order, so two threads may
//! send their commands in either order; a [`Reply::Echo`] answer takes the
//! bSeq of the last frame sent to its bSlot, so out-of-order answers can be
//! scripted without knowing which thread sent first. The script is built
//! before use and nothing is allocated while it runs (unless recording of
//! sent frames is on), so allocation tests can count the transport too.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Transport, TransportError, TransportInfo};
use crate::ccid::message::offset;

/// A fault to inject instead of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Return [`TransportError::Timeout`] at once.
    Timeout,
    /// The device is unplugged: this and every later call fails with
    /// [`TransportError::DeviceGone`].
    Gone,
    /// Block until [`Transport::cancel`] (then `Cancelled`), an unplug, or
    /// the caller's timeout (then `Timeout`).
    Hang,
    /// Return [`TransportError::Stall`].
    Stall,
}

/// A canned answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// These exact bytes.
    Frame(Vec<u8>),
    /// These bytes with bSeq (byte 6) replaced by the bSeq of the last frame
    /// the host sent to the bSlot in byte 5.
    Echo(Vec<u8>),
    /// A fault.
    Fault(Fault),
}

/// One step of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The host must send this frame; `check_seq` false ignores byte 6.
    Out {
        /// The expected frame.
        frame: Vec<u8>,
        /// Compare bSeq too.
        check_seq: bool,
    },
    /// The next bulk-IN transfer.
    In(Reply),
    /// A class request with a data stage from the device.
    ControlIn {
        /// bRequest.
        request: u8,
        /// wValue, `None` for any.
        value: Option<u16>,
        /// Data stage or fault.
        reply: Reply,
    },
    /// A class request to the device.
    ControlOut {
        /// bRequest.
        request: u8,
        /// wValue, `None` for any.
        value: Option<u16>,
        /// Expected data stage.
        data: Vec<u8>,
        /// A fault instead of success.
        fault: Option<Fault>,
    },
}

struct State {
    steps: VecDeque<Step>,
    interrupts: VecDeque<Reply>,
    failures: Vec<String>,
    sent: Vec<Vec<u8>>,
    control_values: Vec<(u8, u16)>,
    record: bool,
    last_seq: [u8; 256],
    cancelled: bool,
    gone: bool,
    has_interrupt: bool,
}

/// The scripted transport. Build the script with the builder methods, then
/// wrap it in an `Arc`.
pub struct ScriptedTransport {
    info: TransportInfo,
    state: Mutex<State>,
    cv: Condvar,
}

impl std::fmt::Debug for ScriptedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedTransport")
            .field("name", &self.info.name)
            .finish()
    }
}

fn hex(b: &[u8]) -> String {
    crate::ccid::error::hex(b)
}

impl ScriptedTransport {
    /// A transport whose `info()` carries `class_descriptor` (54 bytes).
    pub fn new(class_descriptor: Option<&[u8]>) -> Self {
        ScriptedTransport {
            info: TransportInfo {
                name: "scripted".into(),
                class_descriptor: class_descriptor.map(<[u8]>::to_vec),
                interface_class: 0x0B,
                ..TransportInfo::default()
            },
            state: Mutex::new(State {
                steps: VecDeque::new(),
                interrupts: VecDeque::new(),
                failures: Vec::new(),
                sent: Vec::new(),
                control_values: Vec::new(),
                record: true,
                last_seq: [0; 256],
                cancelled: false,
                gone: false,
                has_interrupt: true,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(self, step: Step) -> Self {
        self.lock().steps.push_back(step);
        self
    }

    /// Replaces `info()` (vendor/product for quirks, configuration
    /// descriptor for ICCD, ...).
    pub fn with_info(mut self, f: impl FnOnce(&mut TransportInfo)) -> Self {
        f(&mut self.info);
        self
    }

    /// The reader has no interrupt endpoint.
    pub fn without_interrupt_endpoint(self) -> Self {
        self.lock().has_interrupt = false;
        self
    }

    /// Whether sent frames are recorded for [`ScriptedTransport::sent`]
    /// (recording allocates; allocation tests turn it off).
    pub fn record_sent(self, record: bool) -> Self {
        self.lock().record = record;
        self
    }

    /// The host must send exactly `frame` (bSeq included).
    pub fn expect_out(self, frame: &[u8]) -> Self {
        self.push(Step::Out {
            frame: frame.to_vec(),
            check_seq: true,
        })
    }

    /// The host must send `frame`, any bSeq.
    pub fn expect_out_any_seq(self, frame: &[u8]) -> Self {
        self.push(Step::Out {
            frame: frame.to_vec(),
            check_seq: false,
        })
    }

    /// The next bulk-IN returns `frame` exactly.
    pub fn reply(self, frame: &[u8]) -> Self {
        self.push(Step::In(Reply::Frame(frame.to_vec())))
    }

    /// The next bulk-IN returns `frame` with the bSeq of the last frame
    /// sent to its slot.
    pub fn reply_echo(self, frame: &[u8]) -> Self {
        self.push(Step::In(Reply::Echo(frame.to_vec())))
    }

    /// The next bulk-IN fails with `fault`.
    pub fn fail_in(self, fault: Fault) -> Self {
        self.push(Step::In(Reply::Fault(fault)))
    }

    /// The host must send this class request to the device.
    pub fn expect_control_out(self, request: u8, value: Option<u16>, data: &[u8]) -> Self {
        self.push(Step::ControlOut {
            request,
            value,
            data: data.to_vec(),
            fault: None,
        })
    }

    /// The host must send this class request, which fails with `fault`.
    pub fn expect_control_out_failing(self, request: u8, value: Option<u16>, fault: Fault) -> Self {
        self.push(Step::ControlOut {
            request,
            value,
            data: Vec::new(),
            fault: Some(fault),
        })
    }

    /// The host must ask this class request; the device answers `data`.
    pub fn expect_control_in(self, request: u8, value: Option<u16>, data: &[u8]) -> Self {
        self.push(Step::ControlIn {
            request,
            value,
            reply: Reply::Frame(data.to_vec()),
        })
    }

    /// The host must ask this class request; it fails with `fault`.
    pub fn expect_control_in_failing(self, request: u8, value: Option<u16>, fault: Fault) -> Self {
        self.push(Step::ControlIn {
            request,
            value,
            reply: Reply::Fault(fault),
        })
    }

    /// Queues an interrupt-IN transfer (independent of the bulk order).
    pub fn interrupt(self, bytes: &[u8]) -> Self {
        self.lock()
            .interrupts
            .push_back(Reply::Frame(bytes.to_vec()));
        self
    }

    /// Queues an interrupt-IN fault.
    pub fn interrupt_fault(self, fault: Fault) -> Self {
        self.lock().interrupts.push_back(Reply::Fault(fault));
        self
    }

    /// Appends steps while the transport is in use (e.g. from a test thread).
    pub fn push_steps(&self, steps: impl IntoIterator<Item = Step>) {
        let mut st = self.lock();
        st.steps.extend(steps);
        self.cv.notify_all();
    }

    /// Simulates an unplug now: pending and later calls fail with
    /// `DeviceGone`.
    pub fn unplug(&self) {
        self.lock().gone = true;
        self.cv.notify_all();
    }

    /// Frames sent so far (when recording).
    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.lock().sent.clone()
    }

    /// (bRequest, wValue) of every control request so far.
    pub fn control_requests(&self) -> Vec<(u8, u16)> {
        self.lock().control_values.clone()
    }

    /// Steps not yet used.
    pub fn remaining(&self) -> usize {
        self.lock().steps.len()
    }

    /// Panics unless every step was used and nothing unexpected happened.
    pub fn assert_done(&self) {
        let st = self.lock();
        let mut problems = st.failures.clone();
        for step in &st.steps {
            problems.push(format!("unused step: {}", describe(step)));
        }
        if !problems.is_empty() {
            panic!("scripted transport:\n  {}", problems.join("\n  "));
        }
    }

    fn fail(&self, st: &mut State, message: String) -> TransportError {
        st.failures.push(message.clone());
        TransportError::io("scripted transport", std::io::Error::other(message))
    }

    fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Instant,
        ready: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'a, State>, Result<(), TransportError>) {
        loop {
            if st.gone {
                return (st, Err(TransportError::DeviceGone));
            }
            if st.cancelled {
                return (st, Err(TransportError::Cancelled));
            }
            if ready(&st) {
                return (st, Ok(()));
            }
            let now = Instant::now();
            if now >= deadline {
                return (st, Err(TransportError::Timeout));
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn deliver(st: &State, reply: &Reply, buf: &mut [u8]) -> Result<usize, TransportError> {
        let bytes = match reply {
            Reply::Frame(b) | Reply::Echo(b) => b,
            Reply::Fault(_) => return Ok(0),
        };
        if bytes.len() > buf.len() {
            return Err(TransportError::Overflow {
                received: bytes.len(),
                capacity: buf.len(),
            });
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        if let (Reply::Echo(_), true) = (reply, bytes.len() > offset::SEQ) {
            buf[offset::SEQ] = st.last_seq[usize::from(bytes[offset::SLOT])];
        }
        Ok(bytes.len())
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Out { frame, .. } => format!("bulk-OUT {}", hex(frame)),
        Step::In(Reply::Fault(f)) => format!("bulk-IN fault {f:?}"),
        Step::In(Reply::Frame(b) | Reply::Echo(b)) => format!("bulk-IN {}", hex(b)),
        Step::ControlIn { request, value, .. } => {
            format!("control-IN 0x{request:02X} wValue {value:?}")
        }
        Step::ControlOut {
            request,
            value,
            data,
            ..
        } => format!(
            "control-OUT 0x{request:02X} wValue {value:?} data {}",
            hex(data)
        ),
    }
}

fn fault_error(fault: Fault) -> TransportError {
    match fault {
        Fault::Timeout | Fault::Hang => TransportError::Timeout,
        Fault::Gone => TransportError::DeviceGone,
        Fault::Stall => TransportError::Stall,
    }
}

impl Transport for ScriptedTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, message: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        let mut st = self.lock();
        if st.gone {
            return Err(TransportError::DeviceGone);
        }
        let run = st
            .steps
            .iter()
            .take_while(|s| matches!(s, Step::Out { .. }))
            .count();
        let found = st.steps.iter().take(run).position(|s| match s {
            Step::Out { frame, check_seq } => {
                frame.len() == message.len()
                    && frame
                        .iter()
                        .zip(message)
                        .enumerate()
                        .all(|(i, (a, b))| a == b || (i == 6 && !check_seq))
            }
            _ => false,
        });
        match found {
            Some(i) => {
                st.steps.remove(i);
                if message.len() > 6 {
                    st.last_seq[usize::from(message[5])] = message[6];
                }
                if st.record {
                    st.sent.push(message.to_vec());
                }
                self.cv.notify_all();
                Ok(())
            }
            None => {
                let expected = st
                    .steps
                    .front()
                    .map(describe)
                    .unwrap_or_else(|| "end of script".into());
                let msg = format!("unexpected bulk-OUT {} (script: {expected})", hex(message));
                Err(self.fail(&mut st, msg))
            }
        }
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
        let st = self.lock();
        let (mut st, ready) = self.wait(st, deadline, |s| match s.steps.front() {
            Some(Step::In(Reply::Fault(Fault::Hang))) => false,
            Some(Step::In(_)) => true,
            _ => false,
        });
        if let Err(e) = ready {
            // A hang ends with the wait: consume it.
            if matches!(st.steps.front(), Some(Step::In(Reply::Fault(Fault::Hang))))
                && !matches!(e, TransportError::DeviceGone)
            {
                st.steps.pop_front();
            }
            return Err(e);
        }
        let Some(Step::In(reply)) = st.steps.pop_front() else {
            return Err(TransportError::Timeout);
        };
        self.cv.notify_all();
        match reply {
            Reply::Fault(Fault::Gone) => {
                st.gone = true;
                self.cv.notify_all();
                Err(TransportError::DeviceGone)
            }
            Reply::Fault(f) => Err(fault_error(f)),
            reply => Self::deliver(&st, &reply, buf),
        }
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
        let st = self.lock();
        if !st.has_interrupt {
            return Err(TransportError::NoInterruptEndpoint);
        }
        let (mut st, ready) = self.wait(st, deadline, |s| !s.interrupts.is_empty());
        ready?;
        match st.interrupts.pop_front() {
            Some(Reply::Fault(Fault::Gone)) => {
                st.gone = true;
                self.cv.notify_all();
                Err(TransportError::DeviceGone)
            }
            Some(Reply::Fault(f)) => Err(fault_error(f)),
            Some(reply) => Self::deliver(&st, &reply, buf),
            None => Err(TransportError::Timeout),
        }
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, TransportError> {
        let mut st = self.lock();
        if st.gone {
            return Err(TransportError::DeviceGone);
        }
        if st.record {
            st.control_values.push((request, value));
        }
        let matches = matches!(st.steps.front(), Some(Step::ControlIn { request: r, value: v, .. })
            if *r == request && v.is_none_or(|v| v == value));
        if !matches {
            let expected = st
                .steps
                .front()
                .map(describe)
                .unwrap_or_else(|| "end of script".into());
            let msg = format!(
                "unexpected control-IN 0x{request:02X} wValue 0x{value:04X} (script: {expected})"
            );
            return Err(self.fail(&mut st, msg));
        }
        let Some(Step::ControlIn { reply, .. }) = st.steps.pop_front() else {
            return Err(TransportError::Stall);
        };
        self.cv.notify_all();
        match reply {
            Reply::Fault(Fault::Gone) => {
                st.gone = true;
                Err(TransportError::DeviceGone)
            }
            Reply::Fault(f) => Err(fault_error(f)),
            Reply::Frame(bytes) | Reply::Echo(bytes) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            }
        }
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        _timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut st = self.lock();
        if st.gone {
            return Err(TransportError::DeviceGone);
        }
        if st.record {
            st.control_values.push((request, value));
        }
        let matches = matches!(st.steps.front(), Some(Step::ControlOut { request: r, value: v, data: d, .. })
            if *r == request && v.is_none_or(|v| v == value) && d.as_slice() == data);
        if !matches {
            let expected = st
                .steps
                .front()
                .map(describe)
                .unwrap_or_else(|| "end of script".into());
            let msg = format!(
                "unexpected control-OUT 0x{request:02X} wValue 0x{value:04X} data {} (script: {expected})",
                hex(data)
            );
            return Err(self.fail(&mut st, msg));
        }
        let Some(Step::ControlOut { fault, .. }) = st.steps.pop_front() else {
            return Err(TransportError::Stall);
        };
        self.cv.notify_all();
        match fault {
            Some(Fault::Gone) => {
                st.gone = true;
                Err(TransportError::DeviceGone)
            }
            Some(f) => Err(fault_error(f)),
            None => Ok(()),
        }
    }

    fn cancel(&self) {
        self.lock().cancelled = true;
        self.cv.notify_all();
    }

    fn reset_cancel(&self) {
        self.lock().cancelled = false;
    }
}
