//! The USB/IP server exporting a minimal CCID responder on 127.0.0.1, and
//! the userspace client importing it: conformance, descriptors, devlist,
//! unlink, concurrency and hostile or vanishing clients.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::testing::{get_slot_status, run_conformance};
use ferroccid::usbip::{list_devices, UsbIpTransport};
use ferroccid::WaitOutcome;
use ferroccid::{
    CancelToken, CcidEndpoints, EndpointInfo, Transport, TransportError, TransportInfo,
};
use ferroccid_usbip::{ServerHandle, UsbIpServer};

const BUSID: &str = "1-1";

/// A FIFO a reader blocks on, woken by pushes and by the cancel token.
#[derive(Default)]
struct Queue(Mutex<(VecDeque<Vec<u8>>, Option<Waker>)>);

impl Queue {
    fn push(&self, m: Vec<u8>) {
        let mut q = self.0.lock().unwrap();
        q.0.push_back(m);
        if let Some(w) = q.1.take() {
            w.wake();
        }
    }

    fn pop(
        &self,
        cancel: &CancelToken,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        if cancel.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        match cancel.wait_for(timeout, |cx| {
            let mut q = self.0.lock().unwrap();
            match q.0.pop_front() {
                Some(m) => Poll::Ready(m),
                None => {
                    q.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }) {
            WaitOutcome::Ready(m) if m.len() > buf.len() => Err(TransportError::Overflow {
                received: m.len(),
                capacity: buf.len(),
            }),
            WaitOutcome::Ready(m) => {
                buf[..m.len()].copy_from_slice(&m);
                Ok(m.len())
            }
            WaitOutcome::Cancelled => Err(TransportError::Cancelled),
            WaitOutcome::TimedOut => Err(TransportError::Timeout),
        }
    }
}

/// Answers PC_to_RDR_GetSlotStatus with RDR_to_PC_SlotStatus (CCID §6.2.2,
/// card absent), GET_DATA_RATES with 9600 and 19200 bit/s, and lets the
/// test queue interrupt-IN notifications.
struct Responder {
    info: TransportInfo,
    bulk: Queue,
    interrupt: Queue,
    cancel: CancelToken,
    aborts: Mutex<Vec<u16>>,
}

/// A CCID class descriptor (CCID rev 1.1 §5.1): 54 bytes, type 0x21,
/// one slot, 5 V, T=0 and T=1, 4 MHz, 9600 bit/s, IFSD 254, short APDU
/// exchange with automatic parameter negotiation (dwFeatures 0x00020040),
/// max message 271.
fn class_descriptor() -> Vec<u8> {
    let mut d = vec![0x36, 0x21, 0x10, 0x01, 0x00, 0x01];
    d.extend_from_slice(&3u32.to_le_bytes()); // dwProtocols T=0|T=1
    d.extend_from_slice(&4000u32.to_le_bytes()); // dwDefaultClock
    d.extend_from_slice(&4000u32.to_le_bytes()); // dwMaximumClock
    d.push(0); // bNumClockSupported
    d.extend_from_slice(&9600u32.to_le_bytes()); // dwDataRate
    d.extend_from_slice(&9600u32.to_le_bytes()); // dwMaxDataRate
    d.push(2); // bNumDataRatesSupported
    d.extend_from_slice(&254u32.to_le_bytes()); // dwMaxIFSD
    d.extend_from_slice(&0u32.to_le_bytes()); // dwSynchProtocols
    d.extend_from_slice(&0u32.to_le_bytes()); // dwMechanical
    d.extend_from_slice(&0x0002_0040u32.to_le_bytes()); // dwFeatures
    d.extend_from_slice(&271u32.to_le_bytes()); // dwMaxCCIDMessageLength
    d.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 1]);
    assert_eq!(d.len(), 54);
    d
}

/// Configuration 1: one interface of class 0x0B with the class
/// descriptor, bulk-OUT 0x01, bulk-IN 0x82, interrupt-IN 0x83.
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

impl Responder {
    fn new() -> Arc<Self> {
        Arc::new(Responder {
            info: TransportInfo {
                name: "loopback".into(),
                vendor_id: 0x1209,
                product_id: 0xCC1D,
                bcd_device: 0x0102,
                manufacturer: Some("ferroccid".into()),
                product: Some("Loopback Reader".into()),
                serial: Some("0001".into()),
                interface_number: 0,
                interface_class: 0x0B,
                endpoints: Some(CcidEndpoints {
                    bulk_out: EndpointInfo {
                        address: 0x01,
                        max_packet_size: 64,
                    },
                    bulk_in: EndpointInfo {
                        address: 0x82,
                        max_packet_size: 64,
                    },
                    interrupt_in: Some(EndpointInfo {
                        address: 0x83,
                        max_packet_size: 8,
                    }),
                }),
                class_descriptor: Some(class_descriptor()),
                configuration_descriptor: configuration_descriptor(),
                ..Default::default()
            },
            bulk: Queue::default(),
            interrupt: Queue::default(),
            cancel: CancelToken::new(),
            aborts: Mutex::default(),
        })
    }
}

impl Transport for Responder {
    fn info(&self) -> &TransportInfo {
        &self.info
    }
    fn bulk_out(&self, m: &[u8], _: Duration) -> Result<(), TransportError> {
        if m.len() == 10 && m[0] == 0x65 {
            self.bulk
                .push(vec![0x81, 0, 0, 0, 0, m[5], m[6], 0x02, 0, 0]);
        } else {
            // Anything else is echoed, so payload integrity shows.
            self.bulk.push(m.to_vec());
        }
        Ok(())
    }
    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.bulk.pop(&self.cancel, buf, timeout)
    }
    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.interrupt.pop(&self.cancel, buf, timeout)
    }
    fn control_in(
        &self,
        request: u8,
        _: u16,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        if request != 0x03 {
            return Err(TransportError::Stall);
        }
        let rates = [9600u32.to_le_bytes(), 19200u32.to_le_bytes()].concat();
        let n = rates.len().min(buf.len());
        buf[..n].copy_from_slice(&rates[..n]);
        Ok(n)
    }
    fn control_out(
        &self,
        request: u8,
        value: u16,
        _: &[u8],
        _: Duration,
    ) -> Result<(), TransportError> {
        if request != 0x01 {
            return Err(TransportError::Stall);
        }
        self.aborts.lock().unwrap().push(value);
        Ok(())
    }
    fn cancel(&self) {
        self.cancel.cancel();
    }
    fn reset_cancel(&self) {
        self.cancel.reset();
    }
}

fn serve(responder: &Arc<Responder>) -> ServerHandle {
    UsbIpServer::bind("127.0.0.1:0", responder.clone(), BUSID)
        .expect("bind an ephemeral loopback port")
        .spawn()
        .expect("start the server")
}

fn client(server: &ServerHandle) -> UsbIpTransport {
    UsbIpTransport::connect("127.0.0.1", server.local_addr().port(), BUSID).expect("import")
}

#[test]
fn client_passes_the_conformance_suite() {
    let responder = Responder::new();
    let server = serve(&responder);
    let t = client(&server);
    run_conformance(&t).unwrap();
    drop(t);
    server.shutdown();
}

#[test]
fn enumeration_recovers_the_exported_descriptors() {
    let responder = Responder::new();
    let server = serve(&responder);
    let t = client(&server);
    let info = t.info();
    let port = server.local_addr().port();
    assert_eq!(info.name, format!("usbip:127.0.0.1:{port}/1-1"));
    assert_eq!(
        (info.vendor_id, info.product_id, info.bcd_device),
        (0x1209, 0xCC1D, 0x0102)
    );
    assert_eq!(info.manufacturer.as_deref(), Some("ferroccid"));
    assert_eq!(info.product.as_deref(), Some("Loopback Reader"));
    assert_eq!(info.serial.as_deref(), Some("0001"));
    assert_eq!((info.bus, info.address), (1, 2));
    assert_eq!(info.interface_class, 0x0B);
    assert_eq!(info.endpoints, responder.info.endpoints);
    assert_eq!(info.class_descriptor, Some(class_descriptor()));
    assert_eq!(info.configuration_descriptor, configuration_descriptor());
    // Class requests reach the transport with their wValue.
    t.control_out(0x01, 0x0700, &[], Duration::from_secs(1))
        .unwrap();
    assert_eq!(*responder.aborts.lock().unwrap(), vec![0x0700]);
    let mut rates = [0u8; 16];
    let n = t
        .control_in(0x03, 0, &mut rates, Duration::from_secs(1))
        .unwrap();
    assert_eq!(&rates[..n], &[0x80, 0x25, 0, 0, 0x00, 0x4B, 0, 0]);
    assert!(matches!(
        t.control_in(0x02, 0, &mut rates, Duration::from_secs(1)),
        Err(TransportError::Stall)
    ));
    drop(t);
    server.shutdown();
}

#[test]
fn devlist_lists_the_device_and_its_interface() {
    let responder = Responder::new();
    let server = serve(&responder);
    let devices = list_devices("127.0.0.1", server.local_addr().port()).unwrap();
    assert_eq!(devices.len(), 1);
    let (device, interfaces) = &devices[0];
    assert_eq!(device.busid, "1-1");
    assert_eq!(
        (device.vendor_id, device.product_id, device.bcd_device),
        (0x1209, 0xCC1D, 0x0102)
    );
    // 64-byte bulk packets: a full-speed device (speed 2).
    assert_eq!(device.speed, 2);
    assert_eq!(
        (
            device.configuration_value,
            device.num_configurations,
            device.num_interfaces
        ),
        (1, 1, 1)
    );
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0].class, 0x0B);
    server.shutdown();
}

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A raw USB/IP client that has imported the device, with a read timeout
/// so a missing reply fails the test instead of hanging it.
fn raw_import(server: &ServerHandle) -> TcpStream {
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    let mut busid = [0u8; 32];
    busid[..3].copy_from_slice(b"1-1");
    req.extend_from_slice(&busid);
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 8 + 312];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..8], &[0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0]);
    s
}

fn read_header(s: &mut TcpStream) -> Vec<u32> {
    let mut h = [0u8; 48];
    s.read_exact(&mut h).unwrap();
    h.chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn endpoint_zero_answers_standard_requests_like_a_device() {
    let responder = Responder::new();
    let server = serve(&responder);
    let mut s = raw_import(&server);
    // GET_DESCRIPTOR(DEVICE), wLength 64 as Linux asks first.
    let mut cmd = be(&[1, 1, 0x0001_0002, 1, 0, 0, 64, 0, 0, 0]);
    cmd.extend_from_slice(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00]);
    s.write_all(&cmd).unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..7], &[3, 1, 0, 0, 0, 0, 18]);
    let mut d = [0u8; 18];
    s.read_exact(&mut d).unwrap();
    // USB 2.0 §9.6.1: bcdUSB 2.00, class 0 (per interface), EP0 64,
    // VID/PID/bcdDevice little-endian, string indices 1-3, 1 configuration.
    assert_eq!(
        d,
        [18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x09, 0x12, 0x1D, 0xCC, 0x02, 0x01, 1, 2, 3, 1]
    );
    // GET_DESCRIPTOR(DEVICE_QUALIFIER) stalls: -EPIPE, no data.
    let mut cmd = be(&[1, 2, 0x0001_0002, 1, 0, 0, 10, 0, 0, 0]);
    cmd.extend_from_slice(&[0x80, 0x06, 0x00, 0x06, 0x00, 0x00, 0x0A, 0x00]);
    s.write_all(&cmd).unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..7], &[3, 2, 0, 0, 0, (-32i32) as u32, 0]);
    // SET_CONFIGURATION(1): OUT, no data stage, status 0.
    let mut cmd = be(&[1, 3, 0x0001_0002, 0, 0, 0, 0, 0, 0, 0]);
    cmd.extend_from_slice(&[0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00]);
    s.write_all(&cmd).unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..7], &[3, 3, 0, 0, 0, 0, 0]);
    // String 0: the language list, 0x0409.
    let mut cmd = be(&[1, 4, 0x0001_0002, 1, 0, 0, 255, 0, 0, 0]);
    cmd.extend_from_slice(&[0x80, 0x06, 0x00, 0x03, 0x00, 0x00, 0xFF, 0x00]);
    s.write_all(&cmd).unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..7], &[3, 4, 0, 0, 0, 0, 4]);
    let mut langs = [0u8; 4];
    s.read_exact(&mut langs).unwrap();
    assert_eq!(langs, [4, 3, 0x09, 0x04]);
    server.shutdown();
}

#[test]
fn unlink_cancels_a_pending_bulk_in_and_the_pipe_keeps_working() {
    let responder = Responder::new();
    let server = serve(&responder);
    let mut s = raw_import(&server);
    // Bulk-IN on endpoint 2, 64 bytes, nothing to read.
    s.write_all(&be(&[1, 10, 0x0001_0002, 1, 2, 0, 64, 0, 0, 0, 0, 0]))
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    s.write_all(&be(&[2, 11, 0x0001_0002, 1, 2, 10, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    let started = Instant::now();
    let h = read_header(&mut s);
    // RET_UNLINK, echoing the unlink's seqnum, status -ECONNRESET; no
    // RET_SUBMIT for seqnum 10 comes first.
    assert_eq!(&h[..6], &[4, 11, 0, 0, 0, (-104i32) as u32]);
    assert!(started.elapsed() < Duration::from_secs(1));
    // The next GetSlotStatus goes to the next bulk-IN URB.
    let mut out = be(&[1, 12, 0x0001_0002, 0, 1, 0, 10, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&get_slot_status(0x42));
    s.write_all(&out).unwrap();
    let h = read_header(&mut s);
    // OUT completion: actual_length 10 and no data after the header.
    assert_eq!(&h[..7], &[3, 12, 0, 0, 0, 0, 10]);
    s.write_all(&be(&[1, 13, 0x0001_0002, 1, 2, 0, 64, 0, 0, 0, 0, 0]))
        .unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..7], &[3, 13, 0, 0, 0, 0, 10]);
    let mut answer = [0u8; 10];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(answer, [0x81, 0, 0, 0, 0, 0, 0x42, 0x02, 0, 0]);
    // Unlinking a URB that already completed answers status 0.
    s.write_all(&be(&[2, 14, 0x0001_0002, 1, 2, 13, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    let h = read_header(&mut s);
    assert_eq!(&h[..6], &[4, 14, 0, 0, 0, 0]);
    server.shutdown();
}

#[test]
fn unknown_busid_is_refused() {
    let responder = Responder::new();
    let server = serve(&responder);
    let e = UsbIpTransport::connect("127.0.0.1", server.local_addr().port(), "9-9").unwrap_err();
    assert!(matches!(e, TransportError::NotFound(_)), "{e}");
    server.shutdown();
}

/// Reads until EOF or 3 s; returns whether the server closed the socket.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut sink = [0u8; 256];
    for _ in 0..64 {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn server_survives_garbage_and_vanishing_clients() {
    let responder = Responder::new();
    let server = serve(&responder);
    // A hostile OUT length: the server drops the connection.
    let mut s = raw_import(&server);
    s.write_all(&be(&[
        1,
        1,
        0x0001_0002,
        0,
        1,
        0,
        0x7FFF_FFFF,
        0,
        0,
        0,
        0,
        0,
    ]))
    .unwrap();
    assert!(closed_by_server(&mut s), "hostile length not refused");
    // An unknown command word.
    let mut s = raw_import(&server);
    s.write_all(&[0xAB; 48]).unwrap();
    assert!(closed_by_server(&mut s), "garbage header not refused");
    // Garbage instead of an operation.
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.write_all(&[0xFF; 8]).unwrap();
    assert!(closed_by_server(&mut s), "garbage operation not refused");
    // A client that leaves with a bulk-IN pending and an OUT half sent.
    let mut s = raw_import(&server);
    s.write_all(&be(&[1, 1, 0x0001_0002, 1, 2, 0, 64, 0, 0, 0, 0, 0]))
        .unwrap();
    s.write_all(&be(&[1, 2, 0x0001_0002, 0, 1, 0, 10, 0, 0, 0, 0, 0]))
        .unwrap();
    s.write_all(&[0x65, 0, 0]).unwrap();
    thread::sleep(Duration::from_millis(50));
    s.shutdown(Shutdown::Both).unwrap();
    drop(s);
    // The next client is served normally.
    let t = client(&server);
    run_conformance(&t).unwrap();
    drop(t);
    server.shutdown();
}

#[test]
fn bulk_in_interrupt_in_and_bulk_out_run_concurrently() {
    let responder = Responder::new();
    let server = serve(&responder);
    let t = client(&server);
    thread::scope(|scope| {
        let bulk = scope.spawn(|| {
            let mut rx = [0u8; 64];
            let n = t.bulk_in(&mut rx, Duration::from_secs(3)).unwrap();
            rx[..n].to_vec()
        });
        let interrupt = scope.spawn(|| {
            let mut rx = [0u8; 8];
            let n = t.interrupt_in(&mut rx, Duration::from_secs(3)).unwrap();
            rx[..n].to_vec()
        });
        thread::sleep(Duration::from_millis(150));
        // RDR_to_PC_NotifySlotChange: slot 0 card present, changed.
        responder.interrupt.push(vec![0x50, 0x03]);
        thread::sleep(Duration::from_millis(50));
        t.bulk_out(&get_slot_status(7), Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            bulk.join().unwrap(),
            vec![0x81, 0, 0, 0, 0, 0, 7, 0x02, 0, 0]
        );
        assert_eq!(interrupt.join().unwrap(), vec![0x50, 0x03]);
    });
    // A long message crosses intact (several 64-byte packets); the
    // device announces dwMaxCCIDMessageLength 271, and the server sizes
    // bulk-IN buffers by it.
    let message: Vec<u8> = (0..=255u8).cycle().take(271).collect();
    t.bulk_out(&message, Duration::from_secs(1)).unwrap();
    let mut rx = vec![0u8; 1024];
    let n = t.bulk_in(&mut rx, Duration::from_secs(1)).unwrap();
    assert_eq!(&rx[..n], &message[..]);
    // A buffer too small for the message is an overflow.
    t.bulk_out(&message, Duration::from_secs(1)).unwrap();
    let mut small = vec![0u8; 100];
    assert!(matches!(
        t.bulk_in(&mut small, Duration::from_secs(1)),
        Err(TransportError::Overflow { .. })
    ));
    drop(t);
    server.shutdown();
}

#[test]
fn a_timed_out_read_is_unlinked_and_steals_no_answer() {
    let responder = Responder::new();
    let server = serve(&responder);
    let t = client(&server);
    let mut rx = [0u8; 64];
    let started = Instant::now();
    assert!(matches!(
        t.bulk_in(&mut rx, Duration::from_millis(200)),
        Err(TransportError::Timeout)
    ));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(195) && elapsed < Duration::from_secs(1),
        "{elapsed:?}"
    );
    t.bulk_out(&get_slot_status(3), Duration::from_secs(1))
        .unwrap();
    let n = t.bulk_in(&mut rx, Duration::from_secs(1)).unwrap();
    assert_eq!(&rx[..n], &[0x81, 0, 0, 0, 0, 0, 3, 0x02, 0, 0]);
    drop(t);
    server.shutdown();
}

/// Forwards one connection to the server until the test cuts it.
fn cuttable_proxy(server: &ServerHandle) -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = server.local_addr();
    let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let registry = sockets.clone();
    thread::spawn(move || {
        let (inbound, _) = listener.accept().unwrap();
        let outbound = TcpStream::connect(target).unwrap();
        registry
            .lock()
            .unwrap()
            .extend([inbound.try_clone().unwrap(), outbound.try_clone().unwrap()]);
        for (mut from, mut to) in [
            (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
            (outbound, inbound),
        ] {
            thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Both);
            });
        }
    });
    (port, sockets)
}

#[test]
fn connection_loss_is_device_gone_for_pending_and_later_calls() {
    let responder = Responder::new();
    let server = serve(&responder);
    let (port, sockets) = cuttable_proxy(&server);
    let t = UsbIpTransport::connect("127.0.0.1", port, BUSID).unwrap();
    let result = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut rx = [0u8; 64];
            t.bulk_in(&mut rx, Duration::from_secs(5))
        });
        thread::sleep(Duration::from_millis(100));
        for s in sockets.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        reader.join().unwrap()
    });
    assert!(
        matches!(result, Err(TransportError::DeviceGone)),
        "{result:?}"
    );
    assert!(matches!(
        t.bulk_out(&get_slot_status(0), Duration::from_secs(1)),
        Err(TransportError::DeviceGone)
    ));
    drop(t);
    server.shutdown();
}
