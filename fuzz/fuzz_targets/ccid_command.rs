//! `CommandRepr::parse` (the simulated reader decodes host commands with
//! it) on arbitrary frames: never panics, and what parses re-emits into a
//! frame with the same payload that parses back to the same representation.
#![no_main]

use ferroccid::ccid::{CommandRepr, Message, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::new_checked(data) else {
        return;
    };
    let Ok(repr) = CommandRepr::parse(&msg) else {
        return;
    };
    assert!(repr.message_type().is_command());
    assert_eq!(repr.message_type(), msg.message_type());
    assert_eq!(repr.slot, msg.slot());
    assert_eq!(repr.payload_len(), msg.length() as usize);

    let mut short = vec![0u8; repr.buffer_len() - 1];
    assert!(repr.emit(msg.seq(), &mut short).is_err());

    let mut buf = vec![0u8; repr.buffer_len()];
    let n = repr
        .emit(msg.seq(), &mut buf)
        .expect("buffer sized by buffer_len");
    assert_eq!(n, buf.len());
    // Type, dwLength, slot and seq survive; so does the payload.
    assert_eq!(buf[..7], msg.frame()[..7]);
    assert_eq!(buf[HEADER_LEN..], msg.frame()[HEADER_LEN..]);
    let again = Message::new_checked(&buf[..]).expect("emitted frame is a message");
    let reparsed = CommandRepr::parse(&again).expect("emitted frame parses");
    assert_eq!(reparsed, repr);
});
