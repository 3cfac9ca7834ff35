//! `ResponseRepr::parse` on arbitrary frames: never panics, and what parses
//! re-emits into a frame that parses back to the same representation.
#![no_main]

use ferroccid::ccid::response::Response;
use ferroccid::ccid::{Message, ResponseRepr, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::new_checked(data) else {
        return;
    };
    let Ok(repr) = ResponseRepr::parse(&msg) else {
        return;
    };
    assert_eq!(repr.message_type(), msg.message_type());
    assert_eq!(repr.payload_len(), msg.length() as usize);
    assert_eq!(repr.buffer_len(), msg.frame().len());
    match repr.response {
        Response::DataBlock { data, .. } | Response::Escape { data } => {
            assert_eq!(data, msg.payload())
        }
        _ => {}
    }

    // A buffer one byte short is refused, not overrun.
    let mut short = vec![0u8; repr.buffer_len() - 1];
    assert!(repr.emit(msg.seq(), &mut short).is_err());

    let mut buf = vec![0u8; repr.buffer_len()];
    let n = repr
        .emit(msg.seq(), &mut buf)
        .expect("buffer sized by buffer_len");
    assert_eq!(n, buf.len());
    // Type, length, slot, seq, status and error survive byte for byte.
    assert_eq!(buf[..9], msg.frame()[..9]);
    assert_eq!(buf[HEADER_LEN..], msg.frame()[HEADER_LEN..]);
    let again = Message::new_checked(&buf[..]).expect("emitted frame is a message");
    let reparsed = ResponseRepr::parse(&again).expect("emitted frame parses");
    assert_eq!(reparsed, repr);
});
