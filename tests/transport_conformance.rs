//! The conformance suite checked against a minimal in-test CCID responder,
//! and against deliberately broken ones to prove each check can fail.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::time::Duration;

use ferroccid::testing::{
    check_cancel_wakes_pending_read, check_get_data_rates, check_get_slot_status,
    check_interrupt_timeout, check_seq_echo, run_conformance,
};
use ferroccid::WaitOutcome;
use ferroccid::{CancelToken, Transport, TransportError, TransportInfo};

#[derive(Default, Clone, Copy)]
struct Faults {
    wrong_seq: bool,
    ignores_cancel: bool,
    data_rates_len: Option<usize>,
    interrupt_returns_early: bool,
}

/// Answers PC_to_RDR_GetSlotStatus (0x65) with RDR_to_PC_SlotStatus (0x81,
/// CCID rev 1.1 §6.2.2): same slot and seq, dwLength 0, card absent
/// (bmICCStatus 2).
#[derive(Default)]
struct MiniReader {
    info: TransportInfo,
    queue: Mutex<(VecDeque<Vec<u8>>, Option<Waker>)>,
    cancel: CancelToken,
    faults: Faults,
}

impl MiniReader {
    fn new(faults: Faults) -> Self {
        MiniReader {
            faults,
            ..Default::default()
        }
    }
}

impl Transport for MiniReader {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn bulk_out(&self, m: &[u8], _: Duration) -> Result<(), TransportError> {
        assert_eq!(m.len(), 10, "only GetSlotStatus is expected");
        assert_eq!(m[0], 0x65);
        let seq = if self.faults.wrong_seq {
            m[6] ^ 1
        } else {
            m[6]
        };
        let answer = vec![0x81, 0, 0, 0, 0, m[5], seq, 0x02, 0, 0];
        let mut q = self.queue.lock().unwrap();
        q.0.push_back(answer);
        if let Some(w) = q.1.take() {
            w.wake();
        }
        Ok(())
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let token = if self.faults.ignores_cancel {
            CancelToken::new()
        } else {
            if self.cancel.is_cancelled() {
                return Err(TransportError::Cancelled);
            }
            self.cancel.clone()
        };
        let outcome = token.wait_for(timeout, |cx| {
            let mut q = self.queue.lock().unwrap();
            match q.0.pop_front() {
                Some(m) => Poll::Ready(m),
                None => {
                    q.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        });
        match outcome {
            WaitOutcome::Ready(m) => {
                buf[..m.len()].copy_from_slice(&m);
                Ok(m.len())
            }
            WaitOutcome::Cancelled => Err(TransportError::Cancelled),
            WaitOutcome::TimedOut => Err(TransportError::Timeout),
        }
    }

    fn interrupt_in(&self, _: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let wait = if self.faults.interrupt_returns_early {
            timeout / 4
        } else {
            timeout
        };
        if self.cancel.sleep(wait) {
            Err(TransportError::Cancelled)
        } else {
            Err(TransportError::Timeout)
        }
    }

    fn control_in(
        &self,
        request: u8,
        _: u16,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        assert_eq!(request, 0x03, "only GET_DATA_RATES is expected");
        match self.faults.data_rates_len {
            None => Err(TransportError::Stall),
            Some(n) => {
                buf[..n].fill(0);
                Ok(n)
            }
        }
    }

    fn control_out(&self, _: u8, _: u16, _: &[u8], _: Duration) -> Result<(), TransportError> {
        Err(TransportError::Stall)
    }

    fn cancel(&self) {
        self.cancel.cancel();
    }

    fn reset_cancel(&self) {
        self.cancel.reset();
    }
}

#[test]
fn a_correct_responder_passes_the_whole_suite() {
    run_conformance(&MiniReader::new(Faults::default())).unwrap();
}

#[test]
fn data_rates_as_whole_u32s_pass() {
    let reader = MiniReader::new(Faults {
        data_rates_len: Some(8),
        ..Default::default()
    });
    check_get_data_rates(&reader).unwrap();
}

#[test]
fn data_rates_of_odd_length_fail() {
    let reader = MiniReader::new(Faults {
        data_rates_len: Some(6),
        ..Default::default()
    });
    let e = check_get_data_rates(&reader).unwrap_err();
    assert!(e.contains("not a multiple of 4"), "{e}");
}

#[test]
fn a_wrong_seq_fails() {
    let reader = MiniReader::new(Faults {
        wrong_seq: true,
        ..Default::default()
    });
    let e = check_get_slot_status(&reader).unwrap_err();
    assert!(e.contains("answer carries seq 1"), "{e}");
    assert!(check_seq_echo(&reader).is_err());
}

#[test]
fn ignoring_cancel_fails() {
    let reader = MiniReader::new(Faults {
        ignores_cancel: true,
        ..Default::default()
    });
    let e = check_cancel_wakes_pending_read(&reader).unwrap_err();
    assert!(
        e.contains("expected Cancelled, got transfer timed out"),
        "{e}"
    );
}

#[test]
fn an_early_timeout_fails() {
    let reader = MiniReader::new(Faults {
        interrupt_returns_early: true,
        ..Default::default()
    });
    let e = check_interrupt_timeout(&reader).unwrap_err();
    assert!(e.contains("before its"), "{e}");
}
