//! The userspace USB/IP client against a hostile in-process server that
//! answers the import and endpoint 0 honestly, then ignores unlinks,
//! floods replies nobody asked for, or answers more data than asked.
//! The client's table of pending seqnums stays bounded, junk is dropped
//! and counted (and ends the connection only when nothing else comes),
//! and every call returns within its timeout plus the unlink grace.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::usbip::wire::{
    status, OpHeader, RetSubmit, RetUnlink, UrbHeader, DIR_IN, OP_REP_IMPORT,
};
use ferroccid::usbip::{UsbIpTransport, MAX_CONSECUTIVE_JUNK};
use ferroccid::{CcidEndpoints, EndpointInfo, Transport, TransportError, TransportInfo};
use ferroccid_usbip::{ControlAnswer, DeviceModel};

/// The longest an interrupted call waits for RET_UNLINK (its timeout,
/// at least 200 ms).
const MIN_UNLINK_GRACE: Duration = Duration::from_millis(200);

/// What the server does with URBs on endpoints other than 0.
#[derive(Clone, Copy)]
enum Mode {
    /// Never answers them, nor their unlinks.
    Silent,
    /// Sends this many replies to seqnums nobody sent before answering
    /// each (bulk-IN with a 10-byte SlotStatus).
    JunkFirst(u32),
    /// Answers bulk-IN with 1000 bytes more than asked.
    Oversized,
}

fn info() -> TransportInfo {
    let endpoint = |address, max_packet_size| EndpointInfo {
        address,
        max_packet_size,
    };
    let mut d = vec![0x36, 0x21, 0x10, 0x01, 0x00, 0x01];
    d.extend_from_slice(&3u32.to_le_bytes());
    d.extend_from_slice(&4000u32.to_le_bytes());
    d.extend_from_slice(&4000u32.to_le_bytes());
    d.push(0);
    d.extend_from_slice(&9600u32.to_le_bytes());
    d.extend_from_slice(&9600u32.to_le_bytes());
    d.push(0);
    d.extend_from_slice(&254u32.to_le_bytes());
    d.extend_from_slice(&[0; 8]);
    d.extend_from_slice(&0x0002_0040u32.to_le_bytes());
    d.extend_from_slice(&271u32.to_le_bytes());
    d.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 1]);
    TransportInfo {
        name: "hostile".into(),
        vendor_id: 0x1209,
        product_id: 0xCC1D,
        interface_class: 0x0B,
        endpoints: Some(CcidEndpoints {
            bulk_out: endpoint(0x01, 64),
            bulk_in: endpoint(0x82, 64),
            interrupt_in: Some(endpoint(0x83, 8)),
        }),
        class_descriptor: Some(d),
        ..Default::default()
    }
}

fn ret_submit(seqnum: u32, status: i32, data: &[u8]) -> Vec<u8> {
    let mut m = UrbHeader::RetSubmit(RetSubmit {
        seqnum,
        status,
        actual_length: data.len() as u32,
        ..Default::default()
    })
    .to_bytes()
    .to_vec();
    m.extend_from_slice(data);
    m
}

/// Replies to nothing: an odd seqnum (IN, with data), an even one (OUT,
/// none) and an unlink answer, in turn.
fn junk(n: u32) -> Vec<u8> {
    match n % 3 {
        0 => ret_submit(0x7FFF_0001 + 2 * n, 0, &[0xEE; 100]),
        1 => ret_submit(0x7FFF_0002 + 2 * n, 0, &[]),
        _ => UrbHeader::RetUnlink(RetUnlink {
            seqnum: 0x7FFF_0002 + 2 * n,
            status: status::ECONNRESET,
        })
        .to_bytes()
        .to_vec(),
    }
}

/// Serves one client in `mode`; returns the port.
fn hostile_server(mode: Mode) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = serve(&mut s, mode);
    });
    port
}

fn serve(s: &mut TcpStream, mode: Mode) -> std::io::Result<()> {
    let model = DeviceModel::from_info(&info());
    let mut request = [0u8; 40];
    s.read_exact(&mut request)?;
    let mut reply = OpHeader::new(OP_REP_IMPORT).to_bytes().to_vec();
    reply.extend_from_slice(&model.record("1-1", 1, 2).to_bytes());
    s.write_all(&reply)?;
    let mut junk_sent = 0;
    loop {
        let mut header = [0u8; 48];
        s.read_exact(&mut header)?;
        let UrbHeader::CmdSubmit(cmd) = UrbHeader::parse(&header, 1 << 20).unwrap() else {
            continue; // CMD_UNLINK: ignored.
        };
        let mut out = vec![0u8; cmd.out_data_len()];
        s.read_exact(&mut out)?;
        if cmd.ep == 0 {
            let setup = ferroccid::usbip::wire::SetupPacket::from_bytes(cmd.setup);
            let answer = match model.answer(&setup) {
                ControlAnswer::Data(data) => ret_submit(cmd.seqnum, 0, &data),
                ControlAnswer::Ack => ret_submit(cmd.seqnum, 0, &[]),
                _ => ret_submit(cmd.seqnum, status::EPIPE, &[]),
            };
            s.write_all(&answer)?;
            continue;
        }
        let answer = match (mode, cmd.direction) {
            (Mode::Silent, _) => continue,
            (Mode::Oversized, DIR_IN) => {
                let length = cmd.transfer_buffer_length as usize + 1000;
                ret_submit(cmd.seqnum, 0, &vec![0x80; length])
            }
            (Mode::JunkFirst(n), dir) => {
                for _ in 0..n {
                    s.write_all(&junk(junk_sent))?;
                    junk_sent += 1;
                }
                if dir == DIR_IN {
                    ret_submit(cmd.seqnum, 0, &[0x81, 0, 0, 0, 0, 0, 7, 2, 0, 0])
                } else {
                    let mut m = ret_submit(cmd.seqnum, 0, &[]);
                    m[24..28].copy_from_slice(&(out.len() as u32).to_be_bytes());
                    m
                }
            }
            (Mode::Oversized, _) => {
                let mut m = ret_submit(cmd.seqnum, 0, &[]);
                m[24..28].copy_from_slice(&(out.len() as u32).to_be_bytes());
                m
            }
        };
        s.write_all(&answer)?;
    }
}

fn connect(mode: Mode) -> UsbIpTransport {
    let port = hostile_server(mode);
    UsbIpTransport::connect("127.0.0.1", port, "1-1").expect("import and enumerate")
}

#[test]
fn pending_stays_bounded_when_the_server_ignores_unlinks() {
    let t = connect(Mode::Silent);
    let timeout = Duration::from_millis(20);
    let bound = timeout + MIN_UNLINK_GRACE + Duration::from_millis(500);
    let mut slowest = Duration::ZERO;
    for _ in 0..25 {
        let mut rx = [0u8; 8];
        let started = Instant::now();
        let result = t.interrupt_in(&mut rx, timeout);
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert_eq!(t.pending_len(), 0, "entries left behind");
        assert!(matches!(result, Err(TransportError::Timeout)), "{result:?}");
        assert!(took < bound, "an interrupt read took {took:?}");
    }
    // The event thread and a command at once: still nothing left over.
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..5 {
                let _ = t.interrupt_in(&mut [0u8; 8], timeout);
            }
        });
        let mut rx = [0u8; 64];
        assert!(matches!(
            t.bulk_in(&mut rx, Duration::from_millis(300)),
            Err(TransportError::Timeout)
        ));
    });
    assert_eq!(t.pending_len(), 0);
    eprintln!("slowest interrupt read: {slowest:?}");
}

#[test]
fn replies_nobody_waits_for_are_dropped_and_counted() {
    let t = connect(Mode::JunkFirst(10));
    for round in 1..=5u64 {
        t.bulk_out(&[0x65, 0, 0, 0, 0, 0, 7, 0, 0, 0], Duration::from_secs(2))
            .unwrap();
        let mut rx = [0u8; 64];
        let n = t.bulk_in(&mut rx, Duration::from_secs(2)).unwrap();
        assert_eq!(&rx[..n], &[0x81, 0, 0, 0, 0, 0, 7, 2, 0, 0]);
        assert_eq!(t.dropped_replies(), 20 * round);
    }
    assert_eq!(t.pending_len(), 0);
}

#[test]
fn endless_junk_ends_the_connection() {
    let t = connect(Mode::JunkFirst(10 * MAX_CONSECUTIVE_JUNK));
    let started = Instant::now();
    let result = t.bulk_out(&[0x65, 0, 0, 0, 0, 0, 7, 0, 0, 0], Duration::from_secs(5));
    assert!(
        matches!(result, Err(TransportError::DeviceGone)),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(t.dropped_replies(), u64::from(MAX_CONSECUTIVE_JUNK));
    assert!(matches!(
        t.bulk_in(&mut [0u8; 64], Duration::from_secs(1)),
        Err(TransportError::DeviceGone)
    ));
    assert_eq!(t.pending_len(), 0);
}

#[test]
fn an_in_reply_longer_than_asked_is_an_overflow_and_stays_in_step() {
    let t = connect(Mode::Oversized);
    for _ in 0..3 {
        let mut rx = [0u8; 64];
        let result = t.bulk_in(&mut rx, Duration::from_secs(2));
        assert!(
            matches!(result, Err(TransportError::Overflow { .. })),
            "{result:?}"
        );
        // Still in step: endpoint 0 answers.
        assert!(matches!(
            t.control_in(0x02, 0, &mut [0u8; 4], Duration::from_secs(2)),
            Err(TransportError::Stall)
        ));
    }
    assert_eq!(t.pending_len(), 0);
    assert_eq!(t.dropped_replies(), 0);
}
