//! The USB/IP server against hostile clients: a flood of CMD_SUBMITs, OUT
//! data beyond what the session may buffer, IN requests far larger than a
//! CCID message, and a client that stops reading its replies. The
//! session's outstanding requests and buffered bytes stay within the caps,
//! the offender is disconnected and the device released for the next
//! client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::usbip::UsbIpTransport;
use ferroccid::WaitOutcome;
use ferroccid::{
    CancelToken, CcidEndpoints, EndpointInfo, Transport, TransportError, TransportInfo,
};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use ferroccid_usbip::{run_session, MAX_BUFFERED_BYTES, MAX_OUTSTANDING_URBS, MAX_TRANSFER};
use ferroccid_usbip::{ServerHandle, UsbIpServer};

/// A whole extended CCID message, as the test device announces.
const MAX_MESSAGE: u32 = 65_546;

/// A CCID class descriptor (CCID §5.1): one slot, T=0 and T=1, extended
/// APDU exchange, dwMaxCCIDMessageLength 65546.
fn class_descriptor() -> Vec<u8> {
    let mut d = vec![0x36, 0x21, 0x10, 0x01, 0x00, 0x01];
    d.extend_from_slice(&3u32.to_le_bytes());
    d.extend_from_slice(&4000u32.to_le_bytes());
    d.extend_from_slice(&4000u32.to_le_bytes());
    d.push(0);
    d.extend_from_slice(&9600u32.to_le_bytes());
    d.extend_from_slice(&9600u32.to_le_bytes());
    d.push(0);
    d.extend_from_slice(&254u32.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&0x0004_0040u32.to_le_bytes());
    d.extend_from_slice(&MAX_MESSAGE.to_le_bytes());
    d.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 1]);
    assert_eq!(d.len(), 54);
    d
}

/// One CCID interface: bulk-OUT 0x01, bulk-IN 0x82, interrupt-IN 0x83.
fn configuration_descriptor() -> Vec<u8> {
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
    c.extend_from_slice(&[9, 4, 0, 0, 3, 0x0B, 0, 0, 0]);
    c.extend_from_slice(&class_descriptor());
    c.extend_from_slice(&[7, 5, 0x01, 0x02, 64, 0, 0]);
    c.extend_from_slice(&[7, 5, 0x82, 0x02, 64, 0, 0]);
    c.extend_from_slice(&[7, 5, 0x83, 0x03, 8, 0, 0x10]);
    let total = c.len() as u16;
    c[2..4].copy_from_slice(&total.to_le_bytes());
    c
}

/// A reader whose bulk-OUT never completes (until cancelled) and whose
/// bulk-IN either never answers or, as a firehose, answers 60000 bytes at
/// once, every time.
struct Device {
    info: TransportInfo,
    firehose: bool,
    cancel: CancelToken,
}

impl Device {
    fn new(firehose: bool) -> Arc<Self> {
        let endpoint = |address| EndpointInfo {
            address,
            max_packet_size: 64,
        };
        Arc::new(Device {
            info: TransportInfo {
                name: "hostile-client-test".into(),
                vendor_id: 0x1209,
                product_id: 0xCC1D,
                interface_class: 0x0B,
                endpoints: Some(CcidEndpoints {
                    bulk_out: endpoint(0x01),
                    bulk_in: endpoint(0x82),
                    interrupt_in: Some(EndpointInfo {
                        address: 0x83,
                        max_packet_size: 8,
                    }),
                }),
                class_descriptor: Some(class_descriptor()),
                configuration_descriptor: configuration_descriptor(),
                ..Default::default()
            },
            firehose,
            cancel: CancelToken::new(),
        })
    }

    /// Blocks until the timeout or a cancel.
    fn stuck(&self, timeout: Duration) -> TransportError {
        match self.cancel.wait_for(timeout, |_| Poll::<()>::Pending) {
            WaitOutcome::Cancelled => TransportError::Cancelled,
            _ => TransportError::Timeout,
        }
    }
}

impl Transport for Device {
    fn info(&self) -> &TransportInfo {
        &self.info
    }
    fn bulk_out(&self, _: &[u8], timeout: Duration) -> Result<(), TransportError> {
        Err(self.stuck(timeout))
    }
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if !self.firehose {
            return Err(self.stuck(timeout));
        }
        let n = buf.len().min(60_000);
        buf[..n].fill(0xA5);
        Ok(n)
    }
    fn interrupt_in(&self, _: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        Err(self.stuck(timeout))
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
        self.cancel.cancel();
    }
    fn reset_cancel(&self) {
        self.cancel.reset();
    }
}

fn serve(device: &Arc<Device>, reply_timeout: Duration) -> ServerHandle {
    UsbIpServer::bind("127.0.0.1:0", device.clone(), "1-1")
        .expect("bind an ephemeral loopback port")
        .reply_timeout(reply_timeout)
        .spawn()
        .expect("start the server")
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A CMD_SUBMIT header on endpoint `ep` (devid 1-2, no setup packet).
fn submit(seqnum: u32, direction: u32, ep: u32, length: u32) -> Vec<u8> {
    be(&[
        1,
        seqnum,
        0x0001_0002,
        direction,
        ep,
        0,
        length,
        0,
        0,
        0,
        0,
        0,
    ])
}

/// A raw client that imported the device, or `None` if refused.
fn try_import(server: &ServerHandle) -> Option<TcpStream> {
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    // Each URB in its own segment, as a host's stack sends them.
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    let mut busid = [0u8; 32];
    busid[..3].copy_from_slice(b"1-1");
    req.extend_from_slice(&busid);
    s.write_all(&req).unwrap();
    let mut header = [0u8; 8];
    s.read_exact(&mut header).unwrap();
    if header != [0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0] {
        return None;
    }
    let mut record = [0u8; 312];
    s.read_exact(&mut record).unwrap();
    Some(s)
}

/// Reads (and discards) until EOF or 5 s; whether the server closed.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Writes `messages` from another thread, ignoring the errors a closed
/// session causes.
fn flood(s: &TcpStream, messages: Vec<Vec<u8>>) -> thread::JoinHandle<usize> {
    let mut s = s.try_clone().unwrap();
    thread::spawn(move || {
        let mut sent = 0;
        for m in messages {
            if s.write_all(&m).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    })
}

#[test]
fn a_flood_of_submits_is_cut_at_the_request_cap_and_the_session_closed() {
    let device = Device::new(false);
    let server = serve(&device, Duration::from_secs(10));
    let mut s = try_import(&server).expect("import");
    // 1000 bulk-IN URBs that the reader never answers, no reply read.
    let writer = flood(&s, (1..=1000).map(|n| submit(n, 1, 2, 64)).collect());
    assert!(closed_by_server(&mut s), "a flooding client was kept");
    let sent = writer.join().unwrap();
    assert!(sent > MAX_OUTSTANDING_URBS, "only {sent} URBs sent");
    let stats = server.stats();
    assert_eq!(stats.over_limit.load(Ordering::SeqCst), 1);
    assert_eq!(
        stats.peak_outstanding.load(Ordering::SeqCst),
        MAX_OUTSTANDING_URBS
    );
    // The device is free again at once.
    let started = Instant::now();
    assert!(try_import(&server).is_some(), "device not released");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.shutdown();
}

#[test]
fn out_data_beyond_the_byte_cap_closes_the_session() {
    let device = Device::new(false);
    let server = serve(&device, Duration::from_secs(10));
    let mut s = try_import(&server).expect("import");
    // Twenty 60000-byte bulk-OUT messages to a reader that takes none.
    let messages = (1..=20)
        .map(|n| {
            let mut m = submit(n, 0, 1, 60_000);
            m.resize(48 + 60_000, 0x6F);
            m
        })
        .collect();
    let writer = flood(&s, messages);
    assert!(
        closed_by_server(&mut s),
        "a client over the byte cap was kept"
    );
    writer.join().unwrap();
    let stats = server.stats();
    assert_eq!(stats.over_limit.load(Ordering::SeqCst), 1);
    let peak = stats.peak_buffered.load(Ordering::SeqCst);
    assert!(
        peak <= MAX_BUFFERED_BYTES && peak > MAX_BUFFERED_BYTES - 61_000,
        "{peak}"
    );
    // OUT data longer than any CCID message is refused before it is read.
    let mut s = try_import(&server).expect("device released");
    s.write_all(&submit(1, 0, 1, 200_000)).unwrap();
    assert!(
        closed_by_server(&mut s),
        "a 200000-byte bulk-OUT was accepted"
    );
    server.shutdown();
}

#[test]
fn in_buffers_are_sized_by_the_endpoint_not_by_the_request() {
    let device = Device::new(false);
    let server = serve(&device, Duration::from_secs(10));
    let mut s = try_import(&server).expect("import");
    // One interrupt-IN and eight bulk-IN URBs of 1 MiB each: charged as
    // a NotifySlotChange (72 bytes, packets of 8) and whole CCID messages
    // (65600 bytes, packets of 64) plus their headers, so seven bulk-IN
    // fit in the byte cap: (48 + 72) + 7 × (48 + 65600) ≤ 512 KiB.
    s.write_all(&submit(1, 1, 3, MAX_TRANSFER)).unwrap();
    for n in 2..=9 {
        s.write_all(&submit(n, 1, 2, MAX_TRANSFER)).unwrap();
    }
    assert!(closed_by_server(&mut s), "the eighth bulk-IN was accepted");
    let stats = server.stats();
    assert_eq!(stats.over_limit.load(Ordering::SeqCst), 1);
    let peak = stats.peak_buffered.load(Ordering::SeqCst);
    assert_eq!(peak, 48 + 72 + 7 * (48 + 65_600), "{peak}");
    // With fewer, the session lives on.
    let mut s = try_import(&server).expect("device released");
    for n in 1..=4 {
        s.write_all(&submit(n, 1, 2, MAX_TRANSFER)).unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(stats.outstanding.load(Ordering::SeqCst), 4);
    s.shutdown(Shutdown::Both).unwrap();
    server.shutdown();
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_reply_timeout() {
    let device = Device::new(true);
    let reply_timeout = Duration::from_secs(1);
    let server = serve(&device, reply_timeout);
    let s = try_import(&server).expect("import");
    let stats = server.stats();
    // Bulk-IN URBs answered at once with 60000 bytes each, never read,
    // two at a time (far below the caps): the socket buffers fill, then
    // the writer blocks on a reply until the reply timeout.
    let mut writer = s.try_clone().unwrap();
    let mut sent = 0u32;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.write_timeouts.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no write timeout after {sent} URBs"
        );
        if stats.outstanding.load(Ordering::SeqCst) < 2 {
            sent += 1;
            if let Err(e) = writer.write_all(&submit(sent, 1, 2, 65_536)) {
                panic!("submit {sent}: {e}; {stats:?}");
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
    let timed_out = Instant::now();
    eprintln!("the session timed out after {sent} replies of 60048 bytes");
    assert!(stats.peak_outstanding.load(Ordering::SeqCst) <= MAX_OUTSTANDING_URBS);
    // Other connections are served.
    let port = server.local_addr().port();
    let devices = ferroccid::usbip::list_devices("127.0.0.1", port).unwrap();
    assert_eq!(devices.len(), 1);
    // A second client imports the reader once the first is dropped.
    let second = UsbIpTransport::connect("127.0.0.1", port, "1-1").expect("second import");
    let waited = timed_out.elapsed();
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert_eq!(
        (
            stats.write_timeouts.load(Ordering::SeqCst),
            stats.over_limit.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    let mut rx = vec![0u8; 65_600];
    assert_eq!(
        second.bulk_in(&mut rx, Duration::from_secs(2)).unwrap(),
        60_000
    );
    drop(second);
    drop(s);
    server.shutdown();
}

#[test]
fn a_session_over_a_byte_stream_answers_and_ends_with_the_input() {
    let (sim, _handle) = SimTransport::open(Profile::from_name("tpdu").unwrap());
    // GET_DESCRIPTOR(DEVICE, 18), then PC_to_RDR_GetSlotStatus on
    // bulk-OUT and a bulk-IN for its answer.
    let mut input = be(&[1, 1, 0x0001_0002, 1, 0, 0, 18, 0, 0, 0]);
    input.extend_from_slice(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]);
    input.extend_from_slice(&submit(2, 0, 1, 10));
    input.extend_from_slice(&[0x65, 0, 0, 0, 0, 0, 0x07, 0, 0, 0]);
    input.extend_from_slice(&submit(3, 1, 2, 64));
    let mut output = Vec::new();
    let started = Instant::now();
    let (result, report) = run_session(
        Arc::new(sim),
        &input[..],
        &mut output,
        Duration::from_secs(2),
    );
    result.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!report.over_limit);
    assert!((1..=3).contains(&report.peak_outstanding), "{report:?}");
    // RET_SUBMIT 1 (18 bytes), 2 (10 written), 3 (a 10-byte SlotStatus),
    // in any order across endpoints; data follows IN replies only.
    let mut replies = Vec::new();
    let mut rest = &output[..];
    while !rest.is_empty() {
        let word = |at: usize| u32::from_be_bytes(rest[at..at + 4].try_into().unwrap());
        let (command, seqnum, status, length) = (word(0), word(4), word(20), word(24));
        assert_eq!((command, status), (3, 0));
        let data = if seqnum == 2 { 0 } else { length as usize };
        replies.push((seqnum, length, rest[48..48 + data].to_vec()));
        rest = &rest[48 + data..];
    }
    replies.sort();
    assert_eq!(replies.len(), 3, "{replies:02X?}");
    assert_eq!((replies[0].0, replies[0].1, replies[0].2[0]), (1, 18, 18));
    assert_eq!((replies[1].0, replies[1].1), (2, 10));
    let status = &replies[2].2;
    assert_eq!((replies[2].0, status.len()), (3, 10));
    assert_eq!((status[0], status[6]), (0x81, 0x07));
}
