//! The USB/IP client's receive loop (`transport::usbip`) fed the
//! fuzzer's bytes as the server's stream while the caller runs CCID-like
//! transfers on every endpoint: replies for the right, wrong, forgotten
//! and future seqnums, wrong lengths, commands, garbage. Never panics;
//! every call returns within its timeout plus the unlink grace (or at
//! once once the stream is over); the table of pending seqnums never
//! exceeds its cap and is empty after each call.
//!
//! Input: a flags byte (bit 0: an event thread reads interrupt-IN
//! meanwhile; bits 1-3: rounds of calls), then the server's stream as
//! chunks `len bytes…`. Each chunk is released after the client has
//! written something (a URB or an unlink), or after 1 ms without.
#![no_main]

use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::usbip::{UsbIpTransport, MAX_PENDING};
use ferroccid::{CcidEndpoints, EndpointInfo, Transport, TransportInfo};
use libfuzzer_sys::fuzz_target;

const TIMEOUT: Duration = Duration::from_millis(3);
const UNLINK_GRACE: Duration = Duration::from_millis(3);
/// Slack for a loaded machine; a hang is caught by libFuzzer's timeout.
const SLACK: Duration = Duration::from_secs(2);

/// The fuzzer's server stream, released in chunks.
struct Wire {
    state: Mutex<WireState>,
    changed: Condvar,
}

struct WireState {
    input: Vec<u8>,
    at: usize,
    /// Bytes of the current chunk not yet read.
    budget: usize,
    /// Client writes not yet matched by a chunk.
    unanswered: usize,
    closed: bool,
}

impl Wire {
    fn lock(&self) -> std::sync::MutexGuard<'_, WireState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct WireReader(Arc<Wire>);
struct WireWriter(Arc<Wire>);

impl Read for WireReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wire = &self.0;
        let mut state = wire.lock();
        loop {
            if state.closed || (state.budget == 0 && state.at >= state.input.len()) {
                return Ok(0);
            }
            if state.budget > 0 {
                let n = buf.len().min(state.budget);
                let at = state.at;
                buf[..n].copy_from_slice(&state.input[at..at + n]);
                state.at += n;
                state.budget -= n;
                return Ok(n);
            }
            if state.unanswered == 0 {
                let (next, timeout) = wire
                    .changed
                    .wait_timeout(state, Duration::from_millis(1))
                    .unwrap_or_else(|e| e.into_inner());
                state = next;
                if !timeout.timed_out() {
                    continue;
                }
            }
            state.unanswered = state.unanswered.saturating_sub(1);
            let len = usize::from(state.input[state.at]);
            state.at += 1;
            state.budget = len.min(state.input.len() - state.at);
        }
    }
}

impl Write for WireWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        state.unanswered += 1;
        self.0.changed.notify_all();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn info() -> TransportInfo {
    let endpoint = |address, max_packet_size| EndpointInfo {
        address,
        max_packet_size,
    };
    TransportInfo {
        name: "fuzz".into(),
        interface_class: 0x0B,
        endpoints: Some(CcidEndpoints {
            bulk_out: endpoint(0x01, 64),
            bulk_in: endpoint(0x82, 64),
            interrupt_in: Some(endpoint(0x83, 8)),
        }),
        ..TransportInfo::default()
    }
}

/// Runs one call and checks its bound and the pending table.
fn timed<T>(t: &UsbIpTransport, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = call();
    let took = started.elapsed();
    assert!(
        took <= TIMEOUT + UNLINK_GRACE + SLACK,
        "a call took {took:?}"
    );
    assert!(t.pending_len() <= MAX_PENDING);
    result
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let wire = Arc::new(Wire {
        state: Mutex::new(WireState {
            input: stream.to_vec(),
            at: 0,
            budget: 0,
            unanswered: 0,
            closed: false,
        }),
        changed: Condvar::new(),
    });
    let closer = wire.clone();
    let hangup = move || {
        closer.lock().closed = true;
        closer.changed.notify_all();
    };
    let t = UsbIpTransport::over_streams(
        WireReader(wire.clone()),
        WireWriter(wire.clone()),
        hangup,
        info(),
        UNLINK_GRACE,
    )
    .expect("start the receiver");
    let rounds = 1 + usize::from((flags >> 1) & 0x07);
    thread::scope(|scope| {
        // Joined explicitly so the thread has exited (thread-locals freed)
        // before LeakSanitizer looks.
        let events = (flags & 1 != 0).then(|| {
            scope.spawn(|| {
                for _ in 0..rounds * 2 {
                    let mut rx = [0u8; 8];
                    let _ = timed(&t, || t.interrupt_in(&mut rx, TIMEOUT));
                }
            })
        });
        for _ in 0..rounds {
            let command = [0x65, 0, 0, 0, 0, 0, 7, 0, 0, 0];
            let _ = timed(&t, || t.bulk_out(&command, TIMEOUT));
            let mut rx = [0u8; 271];
            if let Ok(n) = timed(&t, || t.bulk_in(&mut rx, TIMEOUT)) {
                assert!(n <= rx.len());
            }
            let mut rates = [0u8; 16];
            if let Ok(n) = timed(&t, || t.control_in(0x03, 0, &mut rates, TIMEOUT)) {
                assert!(n <= rates.len());
            }
            let _ = timed(&t, || t.control_out(0x01, 0x0700, &[], TIMEOUT));
        }
        if let Some(events) = events {
            events.join().expect("the event thread");
        }
    });
    assert_eq!(t.pending_len(), 0, "entries left after every call returned");
    drop(t);
});
