//! The CreateInterface example (`examples/notes_applet.rs`) on the
//! simulated reader: the interface is made from an attachment, works
//! through it, and shares its lock with the crate's own views.

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/notes_applet.rs"]
mod example;

use std::time::{Duration, Instant};

use ferroccid_card::*;

#[test]
fn the_example_runs_on_the_simulated_card() {
    ferroccid_sim::register();
    let card = CardManager::attach_by_ifd("sim", AttachOptions::default()).unwrap();
    let lines = example::run(&card).unwrap();
    assert_eq!(
        lines,
        [
            "reader: sim",
            "label: None",
            "label: Some(\"shopping\")",
            "note: first",
            "note: second record",
            "note: milk",
        ]
    );
    card.detach(Disposition::Leave).unwrap();
}

#[test]
fn an_interface_shares_the_attachment_and_its_lock() {
    ferroccid_sim::register();
    let (channel, _device) = SlotChannel::open("sim:tpdu-t1", 0).unwrap();
    let card = CardManager::attach_by_handle(channel, AttachOptions::default()).unwrap();
    let notes: example::Notes = card.create_interface().unwrap();
    // While the manager holds the lock, the interface (same attachment)
    // still works…
    let lock = card.lock(None).unwrap();
    assert_eq!(notes.notes().unwrap().len(), 2);
    // …and a second attachment to the same reader is kept out.
    let (other, _) = SlotChannel::open("sim:tpdu-t1", 0).unwrap();
    let other = CardManager::attach_by_handle(
        other,
        AttachOptions {
            lock_wait: Some(Duration::from_millis(100)),
            ..AttachOptions::default()
        },
    )
    .unwrap();
    let start = Instant::now();
    assert!(matches!(
        other.create_interface::<example::Notes>(),
        Err(Error::Channel(ChannelError::Locked))
    ));
    assert!(start.elapsed() >= Duration::from_millis(100));
    lock.unlock(Disposition::Leave).unwrap();
    assert_eq!(
        notes.add_note("after").unwrap().last().map(String::as_str),
        Some("after")
    );
    // A note longer than the EF's records is refused before any APDU.
    assert!(matches!(
        notes.add_note(&"x".repeat(65)),
        Err(Error::InvalidRequest(_))
    ));
}
