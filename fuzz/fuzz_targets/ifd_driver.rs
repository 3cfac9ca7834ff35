//! The IFD handler's safe entry points (`ferroccid_ifd::Driver`,
//! what every `IFDH*` export calls) under hostile arguments and call
//! sequences, over simulated readers: bad Luns (unknown readers, slots
//! past the last, the high bits set), zero, short, huge and odd lengths,
//! unknown tags, actions, protocols and control codes, calls after close,
//! transmit before power, a second open of an open Lun, a slot opened
//! before its reader. Nothing may panic, every call must return within
//! [`CALL_LIMIT`], and a Lun whose reader was never opened answers
//! IFD_NO_SUCH_DEVICE.
//!
//! Readers are opened as the bundle opens them ([`IfdReader`] over
//! `ferroccid::open`), except that the simulator's interrupt reads
//! wait at most [`INTERRUPT_WAIT`]: a reader's event thread only notices a
//! stop between two reads, so with the usual 200 ms reads every dropped
//! reader costs up to 200 ms and the target ran at 6 inputs a second.
//! Names `device::open` refuses (e.g. `sim:PROFILE.TAG`) go through
//! [`IfdReader::open`] itself.
//!
//! Input: records `op a b c len bytes…`, one call each (see `step`).
//! Device names come from a fixed list of simulator profiles, a `sim:`
//! profile in hex (a fuzzer-chosen class descriptor), or fuzzer text that
//! is never a USB or USB/IP name (nothing outside the process is opened).
#![no_main]

use std::collections::HashSet;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use ferroccid_ifd::abi::*;
use ferroccid_ifd::{Driver, Options};
use ferroccid_ifd::feature_control_code;
use ferroccid_ifd::{IfdError, IfdReader, ResponseSink};
use ferroccid::part10::{
    CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_CCID_ESC_COMMAND, FEATURE_GET_TLV_PROPERTIES,
    FEATURE_IFD_PIN_PROPERTIES, FEATURE_MODIFY_PIN_DIRECT, FEATURE_VERIFY_PIN_DIRECT,
};
use ferroccid::{Tap, TapHooks, TransportError};
use libfuzzer_sys::fuzz_target;

/// Longest any one call may take: the command ceiling below plus the
/// reader's fixed margins, with room for a slow sanitizer build.
const CALL_LIMIT: Duration = Duration::from_secs(8);

const NAMES: &[&str] = &[
    "sim",
    "sim:tpdu",
    "sim:tpdu-t0",
    "sim:tpdu-t1",
    "sim:short-apdu",
    "sim:extended-apdu",
    "sim:character",
    "sim:4-slot",
    "sim:pinpad",
    "sim:nosuchprofile",
    "",
];

const TAGS: &[Dword] = &[
    TAG_IFD_ATR,
    TAG_IFD_SLOTNUM,
    TAG_IFD_SLOTS_NUMBER,
    TAG_IFD_SIMULTANEOUS_ACCESS,
    TAG_IFD_THREAD_SAFE,
    TAG_IFD_SLOT_THREAD_SAFE,
    TAG_IFD_POLLING_THREAD_KILLABLE,
    TAG_IFD_POLLING_THREAD_WITH_TIMEOUT,
    TAG_IFD_STOP_POLLING_THREAD,
    TAG_IFD_DEVICE_REMOVED,
    SCARD_ATTR_ATR_STRING,
    SCARD_ATTR_ICC_PRESENCE,
    SCARD_ATTR_ICC_INTERFACE_STATUS,
    SCARD_ATTR_CURRENT_PROTOCOL_TYPE,
    SCARD_ATTR_VENDOR_NAME,
    SCARD_ATTR_VENDOR_IFD_TYPE,
    SCARD_ATTR_VENDOR_IFD_VERSION,
    SCARD_ATTR_VENDOR_IFD_SERIAL_NO,
    SCARD_ATTR_CHANNEL_ID,
    SCARD_ATTR_MAXINPUT,
];

const FEATURES: &[u8] = &[
    FEATURE_VERIFY_PIN_DIRECT,
    FEATURE_MODIFY_PIN_DIRECT,
    FEATURE_IFD_PIN_PROPERTIES,
    FEATURE_GET_TLV_PROPERTIES,
    FEATURE_CCID_ESC_COMMAND,
];

/// Longest interrupt-IN wait of the wrapped simulator.
const INTERRUPT_WAIT: Duration = Duration::from_millis(2);

/// [`Tap`] hooks that shorten the simulator's interrupt reads (see the
/// module doc).
struct QuickInterrupt;

impl TapHooks for QuickInterrupt {
    fn before_interrupt_in(&self, timeout: Duration) -> Result<Duration, TransportError> {
        Ok(timeout.min(INTERRUPT_WAIT))
    }
}

fn open(name: &str) -> Result<IfdReader, IfdError> {
    ferroccid_sim::register();
    match ferroccid::open(name) {
        Ok(opened) => {
            let transport = Arc::new(Tap::new(opened.transport, QuickInterrupt));
            IfdReader::with_transport(transport)
        }
        Err(_) => IfdReader::open(name),
    }
}

/// Response buffer sizes a caller may hand over.
const CAPACITIES: &[usize] = &[0, 1, 2, 9, 10, 258, 261, 65538];

/// A caller's RxBuffer of any size.
struct Sink {
    buf: Vec<u8>,
}

impl ResponseSink for Sink {
    fn capacity(&self) -> usize {
        self.buf.len()
    }
    fn put(&mut self, response: &[u8]) {
        assert!(response.len() <= self.buf.len(), "sink overrun");
        self.buf[..response.len()].copy_from_slice(response);
    }
}

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Readers open with a 1 s command ceiling (the bundle reads this
        // when it opens a reader), so a command the simulator leaves
        // unanswered ends well within CALL_LIMIT.
        std::env::set_var("FERROCCID_COMMAND_TIMEOUT", "1");
        std::env::remove_var("FERROCCID_SIM_CONTROL");
    });
}

/// A Lun: mostly readers 0..3 and slots 0..4, sometimes anything.
fn lun(a: u8, b: u8) -> Dword {
    if a & 0x80 != 0 {
        return Dword::from(u32::from_le_bytes([b, a, b.rotate_left(3), a ^ b]));
    }
    (Dword::from(a & 0x03) << 16) | Dword::from(b % 5)
}

fn name(selector: u8, bytes: &[u8]) -> String {
    match selector % 4 {
        0 | 1 => NAMES[usize::from(selector / 4) % NAMES.len()].to_owned(),
        2 => {
            // A profile given as a hex class descriptor (54 bytes when the
            // fuzzer says so).
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("sim:{hex}")
        }
        _ => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let lower = text.to_ascii_lowercase();
            // Never a USB or USB/IP device: nothing outside this process,
            // and never a JSON profile path (files).
            if lower.contains("usb") || lower.contains("json") || text.contains('/') {
                format!("x{}", text.replace('/', "_"))
            } else {
                text
            }
        }
    }
}

struct Session {
    driver: Arc<Driver>,
    /// Reader indices that a create by name or channel ever opened.
    opened: HashSet<u16>,
}

impl Session {
    fn step(&mut self, op: u8, a: u8, b: u8, c: u8, bytes: &[u8]) {
        let d = &self.driver;
        let lun = lun(a, b);
        let index = ((lun >> 16) & 0xFFFF) as u16;
        let never_opened = !self.opened.contains(&index);
        let started = Instant::now();
        match op % 13 {
            0 => {
                let code = d.create_channel_by_name(lun, &name(c, bytes));
                if code == IFD_SUCCESS && lun & 0xFFFF == 0 {
                    self.opened.insert(index);
                }
            }
            1 => {
                let code = d.create_channel(lun, Dword::from(c & 1));
                if code == IFD_SUCCESS && lun & 0xFFFF == 0 {
                    self.opened.insert(index);
                }
            }
            2 => {
                let code = d.close_channel(lun);
                if never_opened {
                    assert_eq!(code, IFD_NO_SUCH_DEVICE);
                }
            }
            3 => {
                let action = match c % 5 {
                    0 => IFD_POWER_UP,
                    1 => IFD_POWER_DOWN,
                    2 => IFD_RESET,
                    _ => Dword::from(c) << 4,
                };
                let result = d.power(lun, action);
                if never_opened {
                    assert_eq!(result, Err(IFD_NO_SUCH_DEVICE));
                }
                if let Ok(atr) = result {
                    assert!(atr.len() <= MAX_ATR_SIZE);
                }
            }
            4 | 5 => {
                // The APDU is the record's bytes, or a huge one.
                let huge;
                let apdu: &[u8] = match c >> 5 {
                    7 => {
                        huge = vec![0x00; MAX_BUFFER_SIZE_EXTENDED + usize::from(c & 1)];
                        &huge
                    }
                    6 => {
                        huge = [
                            &[0x00, 0xB0, 0x00, 0x00, 0x00],
                            &bytes[..bytes.len().min(2)],
                        ]
                        .concat();
                        &huge
                    }
                    _ => bytes,
                };
                let capacity = CAPACITIES[usize::from(c) % CAPACITIES.len()];
                let mut sink = Sink {
                    buf: vec![0; capacity],
                };
                let result = d.transmit(lun, Dword::from(c & 3), apdu, &mut sink);
                if never_opened {
                    assert_eq!(result, Err(IFD_NO_SUCH_DEVICE));
                }
                if let Ok(n) = result {
                    assert!(n <= capacity && n >= 2, "response of {n} bytes");
                }
            }
            6 => {
                let tag = if c & 0x80 != 0 {
                    Dword::from(u32::from_le_bytes([c, a, b, c ^ a]))
                } else {
                    TAGS[usize::from(c) % TAGS.len()]
                };
                let result = d.get_capability(lun, tag);
                if never_opened {
                    assert_eq!(result, Err(IFD_NO_SUCH_DEVICE));
                }
            }
            7 => {
                let tag = if c & 1 == 0 {
                    TAG_IFD_DEVICE_REMOVED
                } else {
                    TAGS[usize::from(c >> 1) % TAGS.len()]
                };
                let _ = d.set_capability(lun, tag, bytes);
            }
            8 => {
                let protocol = match c % 4 {
                    0 => SCARD_PROTOCOL_T0,
                    1 => SCARD_PROTOCOL_T1,
                    _ => Dword::from(c),
                };
                let _ = d.set_protocol(lun, protocol, a, b);
            }
            9 => {
                let code = match c % 8 {
                    6 => Dword::from(CM_IOCTL_GET_FEATURE_REQUEST),
                    7 => Dword::from(u32::from_le_bytes([c, a, b, 0x42])),
                    n => feature_control_code(FEATURES[usize::from(n) % FEATURES.len()]),
                };
                let result = d.control(lun, code, bytes);
                if never_opened {
                    assert_eq!(result, Err(IFD_NO_SUCH_DEVICE));
                }
            }
            10 => {
                let code = d.presence(lun);
                if never_opened {
                    assert_eq!(code, IFD_NO_SUCH_DEVICE);
                }
            }
            11 => {
                // Short waits only: a long one is long by request.
                let timeout = match c % 4 {
                    0 => -1,
                    1 => 0,
                    2 => i32::MIN,
                    _ => i32::from(c % 20),
                };
                let _ = d.poll(lun, timeout);
            }
            _ => {
                let _ = d.stop_polling(lun);
            }
        }
        let took = started.elapsed();
        assert!(took < CALL_LIMIT, "op {} took {took:?}", op % 13);
    }
}

fuzz_target!(|data: &[u8]| {
    init();
    let mut session = Session {
        driver: Arc::new(Driver::new(
            Box::new(open),
            Options {
                escape_enabled: data.first().is_some_and(|b| b & 1 != 0),
                // The notification socket is process-wide: not from a fuzzer.
                notify: false,
            },
        )),
        opened: HashSet::new(),
    };
    let mut rest = data.get(1..).unwrap_or_default();
    let mut steps = 0;
    while rest.len() >= 5 && steps < 64 {
        let (op, a, b, c, len) = (rest[0], rest[1], rest[2], rest[3], usize::from(rest[4]));
        let end = (5 + len).min(rest.len());
        session.step(op, a, b, c, &rest[5..end]);
        rest = &rest[end..];
        steps += 1;
    }
    // Whatever is still open is closed, as pcscd does at exit.
    for index in session.opened.clone() {
        for slot in 0..4 {
            let _ = session
                .driver
                .close_channel((Dword::from(index) << 16) | slot);
        }
    }
});
