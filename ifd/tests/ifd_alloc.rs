//! No heap allocation per APDU in the pcscd bundle's transmit path, over
//! the simulated reader: 1000 [`Driver::transmit`] calls (what
//! `IFDHTransmitToICC` calls, into a fixed buffer as pcscd's RxBuffer) on
//! the real [`IfdReader`] at TPDU level with T=1, TPDU level with T=0,
//! and short APDU level.
//!
//! How the count stays honest (as in `reader_sim_alloc.rs`): a counting
//! global allocator counts allocations on the calling thread while a
//! thread-local flag is on. The simulator is a device model, not part of
//! the driver; it allocates freely and runs on the calling thread inside
//! `Transport::bulk_out` / `bulk_in`. The [`outside`] wrapper turns counting
//! off for exactly the duration of each call into the simulator, so
//! everything the driver does (Lun lookup, the reader's per-slot buffer,
//! the reader logic, the copy into the caller's buffer) is counted and
//! nothing the simulated device does is. No tracing subscriber is
//! installed, as in pcscd with the driver's logging at its default level.
//!
//! Expected responses come from the virtual card's documented file system
//! (`TEXT_2F00`) and ISO/IEC 7816-4 status words.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use ferroccid_ifd::abi::*;
use ferroccid_ifd::{Driver, Options};
use ferroccid_ifd::{IfdError, IfdReader};
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::CardConfig;
use ferroccid_sim::profile::Profile;
use ferroccid_sim::{SimHandle, SimTransport};

#[path = "../../tests/sim_alloc_support/mod.rs"]
mod sim_alloc;
use sim_alloc::*;

const APDUS: usize = 1000;
/// pcscd's usual RxBuffer for a short APDU client: 256 data bytes + SW.
const SHORT_RX: usize = 258;

/// A driver whose device names are `PROFILE` or `PROFILE/t0|t1` (the card
/// in every slot), opened on the simulator behind [`outside`].
fn driver() -> (Driver, Arc<Mutex<Vec<SimHandle>>>) {
    let handles = Arc::new(Mutex::new(Vec::new()));
    let kept = handles.clone();
    let opener = move |name: &str| -> Result<IfdReader, IfdError> {
        let (profile_name, card) = match name.split_once('/') {
            Some((p, "t0")) => (p, Some(CardConfig::t0())),
            Some((p, "t1")) => (p, Some(CardConfig::t1())),
            _ => (name, None),
        };
        let mut profile = Profile::from_name(profile_name).expect("built-in profile");
        if let Some(card) = card {
            for slot in &mut profile.slots {
                slot.card = Some(card.clone());
            }
        }
        let (transport, handle) = SimTransport::open(profile);
        kept.lock().unwrap().push(handle);
        IfdReader::with_transport(Arc::new(outside(transport)))
    };
    (Driver::new(Box::new(opener), Options::default()), handles)
}

/// SELECT EF 2F00 (by file identifier, no response data).
const SELECT_2F00: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0x00];

fn read_2f00() -> [u8; 5] {
    [0x00, 0xB0, 0x00, 0x00, TEXT_2F00.len() as u8]
}

fn expected_read() -> Vec<u8> {
    let mut expected = TEXT_2F00.to_vec();
    expected.extend_from_slice(&[0x90, 0x00]);
    expected
}

/// Opens `device` as Lun 0, powers the card and selects `protocol`
/// (SCARD_PROTOCOL_T0/T1), as pcscd does before the first transmit.
fn open_card(driver: &Driver, device: &str, protocol: Dword) {
    assert_eq!(driver.create_channel_by_name(0, device), IFD_SUCCESS);
    let atr = driver.power(0, IFD_POWER_UP).expect("power up");
    assert_eq!(atr[0], 0x3B, "direct convention TS");
    assert_eq!(driver.set_protocol(0, protocol, 0, 0), IFD_SUCCESS);
}

/// 1000 READ BINARY through [`Driver::transmit`], counting allocations.
fn count_allocations(device: &str, protocol: Dword, t: Dword) {
    let (driver, _handles) = driver();
    open_card(&driver, device, protocol);
    let mut rx = [0u8; SHORT_RX];
    assert_eq!(driver.transmit(0, t, &SELECT_2F00, &mut rx), Ok(2));
    assert_eq!(rx[..2], [0x90, 0x00], "SELECT EF 2F00");
    let read = read_2f00();
    let expected = expected_read();
    // Warm-up: the first exchanges may size lazily-built state.
    for _ in 0..3 {
        let n = driver.transmit(0, t, &read, &mut rx).expect("warm-up");
        assert_eq!(rx[..n], expected[..]);
    }
    let mut ok = 0usize;
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    for _ in 0..APDUS {
        if let Ok(n) = driver.transmit(0, t, &read, &mut rx) {
            if rx[..n] == expected[..] {
                ok += 1;
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(ok, APDUS, "{device}: every READ BINARY answered correctly");
    assert_eq!(
        allocations, 0,
        "{device}: the transmit path allocated {allocations} times over {APDUS} APDUs"
    );
    // The counter works: an allocation outside the simulator is seen.
    COUNTING.with(|c| c.set(true));
    let v = std::hint::black_box(vec![1u8; 16]);
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert_eq!(COUNT.with(Cell::get), 1, "the counting allocator counts");
    assert_eq!(driver.close_channel(0), IFD_SUCCESS);
}

#[test]
fn no_allocation_per_apdu_at_tpdu_t1() {
    count_allocations("tpdu-t1/t1", SCARD_PROTOCOL_T1, 1);
}

#[test]
fn no_allocation_per_apdu_at_tpdu_t0() {
    count_allocations("tpdu-t0/t0", SCARD_PROTOCOL_T0, 0);
}

#[test]
fn no_allocation_per_apdu_at_short_apdu_level() {
    count_allocations("short-apdu/t1", SCARD_PROTOCOL_T1, 1);
}

/// A response longer than the caller's buffer is read from the card in
/// full (here a T=1 chain: 300 bytes of GET CHALLENGE are more than one
/// block of at most 254), answered IFD_ERROR_INSUFFICIENT_BUFFER, and the
/// next APDU on the slot gets its own answer, not the chain's remainder.
#[test]
fn a_response_too_long_for_the_buffer_leaves_the_slot_in_step() {
    let (driver, _handles) = driver();
    open_card(&driver, "tpdu-t1/t1", SCARD_PROTOCOL_T1);
    let challenge_300 = [0x00, 0x84, 0x00, 0x00, 0x00, 0x01, 0x2C];
    let mut small = [0u8; SHORT_RX];
    assert_eq!(
        driver.transmit(0, 1, &challenge_300, &mut small),
        Err(IFD_ERROR_INSUFFICIENT_BUFFER)
    );
    let mut rx = [0u8; SHORT_RX];
    assert_eq!(driver.transmit(0, 1, &SELECT_2F00, &mut rx), Ok(2));
    assert_eq!(rx[..2], [0x90, 0x00], "SELECT after the refused response");
    let n = driver.transmit(0, 1, &read_2f00(), &mut rx).unwrap();
    assert_eq!(rx[..n], expected_read()[..]);
    // The same 300 bytes fit a big enough buffer: 300 data bytes + 9000.
    let mut big = [0u8; 65538];
    let n = driver.transmit(0, 1, &challenge_300, &mut big).unwrap();
    assert_eq!((n, &big[n - 2..n]), (302, &[0x90, 0x00][..]));
    assert_eq!(driver.close_channel(0), IFD_SUCCESS);
}
