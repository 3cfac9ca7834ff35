//! [`Tap`]: a transport that forwards to another one and lets hooks watch
//! or bend the traffic.
//!
//! Tests, benchmarks and the demo need a device that is the real one plus
//! a little: a log of the frames sent, a counter of commands in flight, a
//! slow power-off, a missing interrupt endpoint. Without a shared helper
//! each of them re-implements all of [`Transport`] to change one method;
//! with it they implement the one [`TapHooks`] method they care about.

use std::sync::Arc;
use std::time::Duration;

use super::{Transport, TransportError, TransportInfo};

/// What a [`Tap`] does besides forwarding. Every method has a default that
/// does nothing, so an implementation names only what it changes.
pub trait TapHooks: Send + Sync {
    /// Sees a bulk-OUT message before it is forwarded. It may block, which
    /// delays the message as a slow reader would.
    fn on_bulk_out(&self, _message: &[u8]) {}

    /// Sees a bulk-IN transfer after it was received (not failed reads).
    fn on_bulk_in(&self, _frame: &[u8]) {}

    /// Runs before an interrupt-IN read: answers the timeout to forward
    /// with, or an error to return instead of reading.
    fn before_interrupt_in(&self, timeout: Duration) -> Result<Duration, TransportError> {
        Ok(timeout)
    }

    /// Sees a class request to the device (bRequest, wValue, data stage)
    /// before it is forwarded.
    fn on_control_out(&self, _request: u8, _value: u16, _data: &[u8]) {}

    /// Runs each call into the inner transport (not `info`, not the other
    /// hooks), e.g. to mark the time spent inside the device.
    fn around<R>(&self, call: impl FnOnce() -> R) -> R {
        call()
    }
}

/// A [`Transport`] that forwards every call to an inner transport and runs
/// the [`TapHooks`] `H` on the way.
pub struct Tap<H> {
    inner: Arc<dyn Transport>,
    info: Option<TransportInfo>,
    hooks: H,
}

impl<H: TapHooks> Tap<H> {
    /// Forwards to `inner`, running `hooks`.
    pub fn new(inner: Arc<dyn Transport>, hooks: H) -> Self {
        Tap {
            inner,
            info: None,
            hooks,
        }
    }

    /// Reports `info` instead of the inner transport's (e.g. without its
    /// interrupt endpoint).
    pub fn with_info(mut self, info: TransportInfo) -> Self {
        self.info = Some(info);
        self
    }

    /// The hooks, to read what they recorded or to steer them.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }
}

impl<H: TapHooks> Transport for Tap<H> {
    fn info(&self) -> &TransportInfo {
        self.info.as_ref().unwrap_or_else(|| self.inner.info())
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.hooks.on_bulk_out(message);
        self.hooks.around(|| self.inner.bulk_out(message, timeout))
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let n = self.hooks.around(|| self.inner.bulk_in(buf, timeout))?;
        self.hooks.on_bulk_in(&buf[..n.min(buf.len())]);
        Ok(n)
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let timeout = self.hooks.before_interrupt_in(timeout)?;
        self.hooks.around(|| self.inner.interrupt_in(buf, timeout))
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        self.hooks
            .around(|| self.inner.control_in(request, value, buf, timeout))
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.hooks.on_control_out(request, value, data);
        self.hooks
            .around(|| self.inner.control_out(request, value, data, timeout))
    }

    fn cancel(&self) {
        self.hooks.around(|| self.inner.cancel())
    }

    fn reset_cancel(&self) {
        self.hooks.around(|| self.inner.reset_cancel())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::transport::scripted::{Fault, ScriptedTransport};

    const T: Duration = Duration::from_secs(1);
    const COMMAND: [u8; 10] = [0x65, 0, 0, 0, 0, 0, 1, 0, 0, 0];
    const ANSWER: [u8; 10] = [0x81, 0, 0, 0, 0, 0, 1, 0, 0, 0];

    #[derive(Default)]
    struct Log {
        seen: Mutex<Vec<(&'static str, Vec<u8>)>>,
        calls: AtomicUsize,
    }

    impl Log {
        fn push(&self, what: &'static str, bytes: &[u8]) {
            self.seen.lock().unwrap().push((what, bytes.to_vec()));
        }
    }

    impl TapHooks for Log {
        fn on_bulk_out(&self, message: &[u8]) {
            self.push("out", message);
        }
        fn on_bulk_in(&self, frame: &[u8]) {
            self.push("in", frame);
        }
        fn on_control_out(&self, request: u8, value: u16, data: &[u8]) {
            let mut bytes = vec![request];
            bytes.extend_from_slice(&value.to_le_bytes());
            bytes.extend_from_slice(data);
            self.push("control", &bytes);
        }
        fn around<R>(&self, call: impl FnOnce() -> R) -> R {
            self.calls.fetch_add(1, Ordering::SeqCst);
            call()
        }
    }

    #[test]
    fn hooks_see_the_bytes_and_errors_pass_through() {
        let inner = ScriptedTransport::new(None)
            .expect_out(&COMMAND)
            .reply(&ANSWER)
            .fail_in(Fault::Stall)
            .expect_control_out(0x01, Some(0x0102), &[])
            .expect_control_in_failing(0x03, None, Fault::Stall)
            .interrupt(&[0x50, 0x03])
            .interrupt_fault(Fault::Timeout);
        let inner = Arc::new(inner);
        let tap = Tap::new(inner.clone(), Log::default());

        tap.bulk_out(&COMMAND, T).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(tap.bulk_in(&mut buf, T), Ok(10)));
        assert!(matches!(
            tap.bulk_in(&mut buf, T),
            Err(TransportError::Stall)
        ));
        tap.control_out(0x01, 0x0102, &[], T).unwrap();
        assert!(matches!(
            tap.control_in(0x03, 0, &mut buf, T),
            Err(TransportError::Stall)
        ));
        assert!(matches!(tap.interrupt_in(&mut buf, T), Ok(2)));
        assert!(matches!(
            tap.interrupt_in(&mut buf, T),
            Err(TransportError::Timeout)
        ));
        // An unexpected frame: the scripted transport's error comes back.
        assert!(tap.bulk_out(&ANSWER, T).is_err());
        tap.cancel();
        tap.reset_cancel();

        let seen = tap.hooks().seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                ("out", COMMAND.to_vec()),
                ("in", ANSWER.to_vec()),
                ("control", vec![0x01, 0x02, 0x01]),
                ("out", ANSWER.to_vec()),
            ]
        );
        // Every call but `info` went through `around`.
        assert_eq!(tap.hooks().calls.load(Ordering::SeqCst), 10);
        assert_eq!(tap.info().name, "scripted");
    }

    struct NoInterrupt;

    impl TapHooks for NoInterrupt {
        fn before_interrupt_in(&self, _timeout: Duration) -> Result<Duration, TransportError> {
            Err(TransportError::NoInterruptEndpoint)
        }
    }

    #[test]
    fn a_hook_can_answer_instead_and_info_can_be_replaced() {
        let inner = Arc::new(ScriptedTransport::new(None).interrupt(&[0x50, 0x03]));
        let info = TransportInfo {
            name: "tapped".into(),
            ..inner.info().clone()
        };
        let tap = Tap::new(inner.clone(), NoInterrupt).with_info(info);
        let mut buf = [0u8; 8];
        assert!(matches!(
            tap.interrupt_in(&mut buf, T),
            Err(TransportError::NoInterruptEndpoint)
        ));
        // The inner transport was not asked: its notification is still there.
        assert!(matches!(inner.interrupt_in(&mut buf, T), Ok(2)));
        assert_eq!(tap.info().name, "tapped");
    }
}
