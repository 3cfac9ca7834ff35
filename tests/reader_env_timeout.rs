//! `FERROCCID_COMMAND_TIMEOUT` reaches every reader `Reader::open` opens
//! (the CLI's `--timeout` sets it): a reader that never answers a power on
//! is given up at the configured ceiling, not after the power-on wait of
//! about 2.8 s + margin per voltage. Its own binary: it sets the process
//! environment.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroccid::{Reader, ReaderError, COMMAND_TIMEOUT_ENV};
use ferroccid::{Transport, TransportError, TransportInfo};

#[path = "reader_support/mod.rs"]
mod support;

/// A reader that answers PC_to_RDR_Abort at once and nothing else.
struct AnswersOnlyAbort {
    info: TransportInfo,
    last: Mutex<Option<(u8, u8, u8)>>,
}

impl Transport for AnswersOnlyAbort {
    fn info(&self) -> &TransportInfo {
        &self.info
    }
    fn bulk_out(&self, frame: &[u8], _: Duration) -> Result<(), TransportError> {
        *self.last.lock().unwrap() = Some((frame[0], frame[5], frame[6]));
        Ok(())
    }
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if let Some((0x72, slot, seq)) = self.last.lock().unwrap().take() {
            let status = support::slot_status(slot, seq, 0x00, 0x00);
            buf[..status.len()].copy_from_slice(&status);
            return Ok(status.len());
        }
        std::thread::sleep(timeout);
        Err(TransportError::Timeout)
    }
    fn interrupt_in(&self, _: &mut [u8], _: Duration) -> Result<usize, TransportError> {
        Err(TransportError::NoInterruptEndpoint)
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
        Ok(())
    }
    fn cancel(&self) {}
    fn reset_cancel(&self) {}
}

#[test]
fn the_environment_sets_the_command_ceiling_of_readers_opened_with_defaults() {
    std::env::set_var(COMMAND_TIMEOUT_ENV, "1");
    let transport = AnswersOnlyAbort {
        info: TransportInfo {
            name: "silent".into(),
            class_descriptor: Some(support::Desc::new(support::SHORT_APDU).bytes()),
            ..TransportInfo::default()
        },
        last: Mutex::new(None),
    };
    let reader = Reader::open(std::sync::Arc::new(transport)).unwrap();
    let slot = reader.slot(0).unwrap();
    let started = Instant::now();
    let err = slot.power_on().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReaderError::Timeout { .. }), "{err}");
    // 1 s, the abort answered at once; without the variable the first
    // voltage alone waits 2.8 s + the 3 s margin.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
