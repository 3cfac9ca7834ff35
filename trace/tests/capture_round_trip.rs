//! A live capture (`capture::CapturingTransport`) reads back, byte for byte, as
//! the messages that really went through: the driver runs APDUs, a power cycle
//! and a card movement on simulated readers; a tap between the capture and the
//! simulator records every bulk and interrupt message; `read_frames` on the
//! pcapng must give the same messages, in the same order and direction.

use std::sync::{Arc, Mutex};

use ferroccid::{Reader, Tap, TapHooks, Transport};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimTransport;
use ferroccid_trace::capture::CapturingTransport;
use ferroccid_trace::{read_frames, Direction};

/// One message and which way it went.
type Message = (Direction, Vec<u8>);

/// What the tap saw, in order.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<Message>>>);

impl TapHooks for Seen {
    fn on_bulk_out(&self, message: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((Direction::Out, message.to_vec()));
    }
    fn on_bulk_in(&self, frame: &[u8]) {
        self.0.lock().unwrap().push((Direction::In, frame.to_vec()));
    }
}

/// A `Write` into shared memory, so the test reads the file while the
/// transport still holds the writer.
#[derive(Default, Clone)]
struct Memory(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Memory {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn round_trip(profile: &str, apdus: &[&[u8]]) {
    let (sim, _handle) = SimTransport::open(Profile::from_name(profile).unwrap());
    let seen = Seen::default();
    let tap: Arc<dyn Transport> = Arc::new(Tap::new(Arc::new(sim), seen.clone()));
    let file = Memory::default();
    let capture = Arc::new(CapturingTransport::new(tap, file.clone()).unwrap());
    {
        let reader = Reader::open(capture.clone()).unwrap();
        let slot = reader.slot(0).unwrap();
        slot.power_on().unwrap();
        let mut response = vec![0u8; 65538];
        for apdu in apdus {
            slot.transmit(apdu, &mut response).unwrap();
        }
        slot.power_off().unwrap();
        slot.power_on().unwrap();
        slot.transmit(apdus[0], &mut response).unwrap();
    }
    assert!(!capture.write_failed());
    let bytes = file.0.lock().unwrap().clone();
    let frames = read_frames(&bytes).unwrap();
    let expected = seen.0.lock().unwrap().clone();
    let got: Vec<Message> = frames
        .into_iter()
        .filter(|f| f.direction != Direction::Interrupt)
        .map(|f| (f.direction, f.bytes))
        .collect();
    assert!(
        expected.len() > apdus.len() * 2,
        "{profile}: the tap saw too little"
    );
    assert_eq!(got.len(), expected.len(), "{profile}: message count");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "{profile}: message {i}");
    }
}

#[test]
fn captures_read_back_byte_for_byte_at_every_exchange_level() {
    let select = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
    let challenge = [0x00, 0x84, 0x00, 0x00, 0x08];
    // A 300-byte write: chained at TPDU T=1 and across several bulk packets.
    let mut update = vec![0x00, 0xD6, 0x03, 0xE8, 0x00, 0x01, 0x2C];
    update.extend(std::iter::repeat_n(0xAB, 300));
    let long_read = [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00];
    for profile in [
        "tpdu",
        "tpdu-t1",
        "short-apdu",
        "extended-apdu",
        "character",
    ] {
        round_trip(profile, &[&select, &challenge]);
    }
    for profile in ["tpdu-t1", "extended-apdu"] {
        round_trip(profile, &[&select, &update, &long_read]);
    }
}
