//! Every fault the simulator can inject, observed through the reader logic:
//! corrupt EDC and dropped blocks (ISO/IEC 7816-3 §11.6 recovery), card
//! WTX, reader time extension, card removal mid-exchange, malformed CCID
//! frames, a mute card, unplug. Each test is bounded in time.

#[path = "reader_sim_support.rs"]
mod support;

use std::time::{Duration, Instant};

use ferroccid::ccid::status::SlotError;
use ferroccid::ccid::CcidError;
use ferroccid::{ErrorKind, ProtocolPreference, ReaderError, ReaderEvent, Slot};
use ferroccid_sim::card::config::PRESET_AUTH_KEY;
use ferroccid_sim::card::fs::TEXT_2F00;
use ferroccid_sim::card::{CardConfig, SlowCommands};
use ferroccid_sim::profile::Profile;
use ferroccid_sim::ResponseFault;
use ferroccid_sim::SimHandle;
use support::*;

const OK: u16 = 0x9000;

/// SELECT EF 2F00 then READ BINARY of it: the answer is known byte for byte.
fn read_2f00(slot: &Slot) -> Result<(Vec<u8>, u16), ReaderError> {
    apdu(slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None))?;
    apdu(
        slot,
        &short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8)),
    )
}

fn assert_read_ok(slot: &Slot, what: &str) {
    let r = read_2f00(slot).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r, (TEXT_2F00.to_vec(), OK), "{what}");
}

/// A reader on `name` with `card`, powered, protocol selected.
fn ready(
    name: &str,
    card: CardConfig,
    preference: ProtocolPreference,
) -> (ferroccid::Reader, SimHandle, Slot) {
    let (reader, handle) = open_with(profile_with(name, Some(card)), quick_options());
    let slot = reader.slot(0).unwrap();
    slot.power_on().unwrap();
    slot.set_protocol(preference).unwrap();
    (reader, handle, slot)
}

#[test]
fn corrupt_edc_is_recovered_by_an_r_block() {
    // TPDU and character level both leave T=1 to the host.
    for name in ["tpdu-t1", "character"] {
        let (_reader, handle, slot) = ready(name, CardConfig::t1(), ProtocolPreference::T1);
        assert_read_ok(&slot, name);
        // The card's answer to READ BINARY arrives with a bad LRC: the host
        // sends R(N(R) of the expected block) with "EDC error" and the card
        // repeats the block (ISO/IEC 7816-3 §11.6.3, rule 7.2).
        apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None)).unwrap();
        handle.corrupt_next_edc(0);
        let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
        assert_eq!(ok_apdu(&slot, &read), (TEXT_2F00.to_vec(), OK), "{name}");
        assert_read_ok(&slot, name);
    }
}

#[test]
fn dropped_t1_block_is_recovered_in_bounded_time() {
    for name in ["tpdu-t1", "character"] {
        let (_reader, handle, slot) = ready(name, CardConfig::t1(), ProtocolPreference::T1);
        apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None)).unwrap();
        handle.drop_next_answer(0);
        let start = Instant::now();
        let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
        // The reader reports ICC_MUTE after its 100 ms mute timeout; the host
        // sends an R-block and the card repeats its last block (§11.6.3
        // rule 7.1: BWT exceeded → R-block).
        assert_eq!(ok_apdu(&slot, &read), (TEXT_2F00.to_vec(), OK), "{name}");
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{name}: {elapsed:?}");
        assert_read_ok(&slot, name);
    }
}

#[test]
fn dropped_t0_answer_is_a_typed_error_in_bounded_time() {
    let (_reader, handle, slot) = ready("tpdu-t0", CardConfig::t0(), ProtocolPreference::T0);
    apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None)).unwrap();
    handle.drop_next_answer(0);
    let start = Instant::now();
    let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
    // T=0 has no recovery: the reader's ICC_MUTE is the answer.
    let e = apdu(&slot, &read).expect_err("a dropped T=0 answer fails");
    let elapsed = start.elapsed();
    assert!(
        matches!(
            e,
            ReaderError::CommandFailed {
                error: SlotError::IccMute,
                ..
            }
        ),
        "{e:?}"
    );
    // The sim reader's mute timeout (100 ms) plus the host margin at most.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_read_ok(&slot, "after the dropped answer");
}

/// A card whose INTERNAL AUTHENTICATE is slow: `n` S(WTX request) blocks
/// (T=1) or NULL bytes (T=0) before the answer.
fn slow_card(n: usize) -> CardConfig {
    CardConfig {
        slow: SlowCommands {
            ins: vec![0x88],
            t0_nulls: n,
            t1_wtx_requests: n,
            wtx_multiplier: 3,
        },
        ..CardConfig::dual()
    }
}

#[test]
fn card_wtx_once_and_many_times() {
    for (name, preference) in [
        ("tpdu", ProtocolPreference::T1),
        ("tpdu", ProtocolPreference::T0),
        ("character", ProtocolPreference::T1),
        ("short-apdu", ProtocolPreference::T1),
        ("extended-apdu", ProtocolPreference::T1),
    ] {
        for n in [1, 5] {
            let what = format!("{name} {preference:?} {n} WTX");
            let (_reader, _handle, slot) = ready(name, slow_card(n), preference);
            let challenge = *b"wtx-test";
            let auth = short([0x00, 0x88, 0x00, 0x00], &challenge, Some(0));
            assert_eq!(
                ok_apdu(&slot, &auth),
                (expected_auth(PRESET_AUTH_KEY, &challenge), OK),
                "{what}"
            );
            assert_read_ok(&slot, &what);
        }
    }
}

#[test]
fn reader_time_extensions_then_the_answer() {
    for name in [
        "tpdu-t1",
        "tpdu-t0",
        "short-apdu",
        "extended-apdu",
        "character",
    ] {
        let (_reader, handle, slot) = ready(name, CardConfig::dual(), ProtocolPreference::Any);
        apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None)).unwrap();
        // Each time-extension frame 150 ms apart: 6 of them take 0.9 s,
        // more than the 300 ms host margin would allow for one answer.
        handle.set_time_extensions(0, Duration::from_millis(150));
        handle.time_extensions_next(0, 6);
        let start = Instant::now();
        let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
        assert_eq!(ok_apdu(&slot, &read), (TEXT_2F00.to_vec(), OK), "{name}");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
            "{name}: {elapsed:?}"
        );
        handle.set_time_extensions(0, Duration::ZERO);
        assert_read_ok(&slot, name);
    }
}

/// Waits for `want` on the event channel, skipping others.
fn wait_event(rx: &std::sync::mpsc::Receiver<ReaderEvent>, want: &ReaderEvent, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if &e == want => return,
            Ok(_) => continue,
            Err(e) => panic!("no {want:?} within {limit:?}: {e}"),
        }
    }
}

#[test]
fn card_removed_mid_exchange() {
    for name in ["tpdu-t1", "tpdu-t0", "short-apdu", "character"] {
        let (reader, handle, slot) = ready(name, CardConfig::dual(), ProtocolPreference::Any);
        let events = reader.events();
        // The answer is due 500 ms after the command; the card leaves first.
        handle.set_time_extensions(0, Duration::from_millis(500));
        let remover = handle.clone();
        let pulled = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            remover.remove_card(0);
        });
        let start = Instant::now();
        let e = read_2f00(&slot).expect_err("card removed mid-exchange");
        pulled.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::NoCard, "{name}: {e:?}");
        assert!(start.elapsed() < Duration::from_secs(2), "{name}");
        wait_event(
            &events,
            &ReaderEvent::SlotChanged {
                slot: 0,
                present: false,
            },
            Duration::from_secs(2),
        );
        // wait_for_change sees the card coming back.
        handle.set_time_extensions(0, Duration::ZERO);
        let waiter = {
            let handle = handle.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                handle.insert_card(0);
            })
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = false;
        while Instant::now() < deadline && !seen {
            seen = matches!(
                reader.wait_for_change(Duration::from_secs(1)),
                Ok(Some(ReaderEvent::SlotChanged {
                    slot: 0,
                    present: true
                }))
            );
        }
        waiter.join().unwrap();
        assert!(seen, "{name}: no insertion event from wait_for_change");
        slot.power_on().unwrap();
        assert_read_ok(&slot, name);
    }
}

#[test]
fn malformed_frames_are_typed_errors_and_the_slot_survives() {
    use ResponseFault::*;
    for fault in [
        BadLength,
        WrongSeq,
        WrongSlot,
        Truncated,
        Oversized,
        WrongMessageType,
    ] {
        for name in ["tpdu-t1", "short-apdu"] {
            let (_reader, handle, slot) = ready(name, CardConfig::dual(), ProtocolPreference::Any);
            apdu(&slot, &short([0x00, 0xA4, 0x00, 0x0C], &[0x2F, 0x00], None)).unwrap();
            handle.inject_response_fault(fault);
            let start = Instant::now();
            let read = short([0x00, 0xB0, 0x00, 0x00], &[], Some(TEXT_2F00.len() as u8));
            let result = apdu(&slot, &read);
            let elapsed = start.elapsed();
            println!("{name} {fault:?}: {result:?} after {elapsed:?}");
            let e = result.expect_err("a malformed frame is an error");
            // Each fault maps to the CCID rule it breaks (CCID §6.2: dwLength,
            // bSlot, bSeq, bMessageType; dwMaxCCIDMessageLength §5.1).
            let named = match (fault, &e) {
                (BadLength | Truncated, ReaderError::Protocol(CcidError::Truncated { .. })) => true,
                (Oversized, ReaderError::Protocol(CcidError::TooLong { length, max, .. })) => {
                    *length > u64::from(*max)
                }
                (WrongSeq, ReaderError::StaleSequence { expected, got, .. }) => {
                    *got == expected.wrapping_add(1)
                }
                (
                    WrongSlot,
                    ReaderError::Protocol(
                        CcidError::BadSlot { slot: 1, .. } | CcidError::WrongSlot { .. },
                    ),
                ) => true,
                (
                    WrongMessageType,
                    ReaderError::Protocol(CcidError::UnexpectedMessageType { .. }),
                ) => true,
                _ => false,
            };
            assert!(
                named,
                "{name} {fault:?}: error does not name the fault: {e}"
            );
            // A wrong bSeq is seen as someone else's answer: the host
            // waits out its computed time, at APDU level margin + 9 × WWT
            // (0.3 s + 9 × 9600 etu × 372 / 4 MHz = 8.3 s); every other
            // fault is detected on arrival.
            let bound = match fault {
                WrongSeq => Duration::from_secs(10),
                _ => Duration::from_secs(1),
            };
            assert!(elapsed < bound, "{name} {fault:?}: {elapsed:?}");
            assert_read_ok(&slot, &format!("{name} after {fault:?}"));
        }
    }
}

#[test]
fn mute_card_fails_after_every_voltage() {
    for name in ["tpdu", "short-apdu", "character", "extended-apdu"] {
        let mut card = CardConfig::dual();
        card.faults.mute = true;
        let profile = profile_with(name, Some(card));
        // bPowerSelect for each bVoltageSupport bit, lowest bit (5 V) first:
        // 01h 5 V → 1, 02h 3 V → 2, 04h 1.8 V → 3 (CCID §5.1, §6.1.1).
        let support = profile.class_descriptor().voltage_support;
        let expected: Vec<u8> = [(0x01, 1), (0x02, 2), (0x04, 3)]
            .into_iter()
            .filter(|(bit, _)| support & bit != 0)
            .map(|(_, select)| select)
            .collect();
        assert!(!expected.is_empty(), "{name}");
        let (reader, _handle) = open_with(profile, quick_options());
        let slot = reader.slot(0).unwrap();
        let start = Instant::now();
        let e = slot.power_on().expect_err("a mute card has no ATR");
        match &e {
            ReaderError::CardMute { tried } => assert_eq!(tried, &expected, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(e.kind(), ErrorKind::NoCard);
        assert!(start.elapsed() < Duration::from_secs(5), "{name}");
    }
    // Mute only at the first power-on (a class B card at 5 V): the host
    // goes on to 3 V and gets the ATR.
    let (reader, handle) = open_with(Profile::from_name("tpdu").unwrap(), quick_options());
    handle.mute_next_power_on(0);
    let slot = reader.slot(0).unwrap();
    slot.power_on().expect("ATR at the next voltage");
    slot.set_protocol(ProtocolPreference::Any).unwrap();
    assert_read_ok(&slot, "after a mute first try");
}

#[test]
fn unplug_ends_pending_and_later_calls() {
    let (reader, handle, slot) = ready("tpdu", CardConfig::dual(), ProtocolPreference::T1);
    let reader = std::sync::Arc::new(reader);
    // The answer is held back 2 s; the reader is unplugged before that.
    handle.set_time_extensions(0, Duration::from_secs(2));
    let in_transmit = {
        let slot = slot.clone();
        std::thread::spawn(move || read_2f00(&slot).map(|_| ()))
    };
    let in_wait = {
        let reader = reader.clone();
        std::thread::spawn(move || loop {
            match reader.wait_for_change(Duration::from_secs(10)) {
                Ok(Some(ReaderEvent::DeviceGone)) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    handle.unplug();
    let transmit_result = bounded(Duration::from_secs(2), move || in_transmit.join().unwrap());
    let wait_result = bounded(Duration::from_secs(2), move || in_wait.join().unwrap());
    assert!(start.elapsed() < Duration::from_secs(2));
    let e = transmit_result.expect_err("transmit ends with the reader");
    assert_eq!(e.kind(), ErrorKind::DeviceGone, "{e:?}");
    match wait_result {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::DeviceGone, "{e:?}"),
    }
    assert!(reader.is_gone());
    for e in [
        read_2f00(&slot).map(|_| ()).unwrap_err(),
        slot.power_on().map(|_| ()).unwrap_err(),
        slot.status().map(|_| ()).unwrap_err(),
        slot.power_off().unwrap_err(),
    ] {
        assert!(matches!(e, ReaderError::DeviceGone), "{e:?}");
    }
}
