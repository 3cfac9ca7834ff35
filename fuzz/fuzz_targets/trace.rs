//! `ferroccid_trace` on arbitrary files (pcap, pcapng, libccid logs):
//! never panics, and the work and memory stay linear in the input. Every
//! byte of a frame comes from the input (a capture copies it, a log spells
//! it with at least two characters), so the frames together never hold
//! more bytes than the file; a log's clock never runs backwards.
//!
//! Each parser is also run on the whole input whatever its magic says, so
//! the fuzzer need not find the magic numbers to reach them.
#![no_main]

use ferroccid_trace::{libccid_log, pcap_urbs, pcapng_urbs, read_frames, reassemble, Format};
use libfuzzer_sys::fuzz_target;

fn check_frames(frames: &[ferroccid_trace::Frame], input_len: usize) {
    let total: usize = frames.iter().map(|f| f.bytes.len()).sum();
    assert!(total <= input_len, "{total} frame bytes from {input_len}");
    assert!(frames.iter().all(|f| !f.bytes.is_empty()), "empty frame");
}

fuzz_target!(|data: &[u8]| {
    match read_frames(data) {
        Ok(frames) => {
            check_frames(&frames, data.len());
            if Format::detect(data) == Format::Log {
                assert!(frames.windows(2).all(|w| w[0].time_us <= w[1].time_us));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    for big_endian in [false, true] {
        if let Ok(urbs) = pcap_urbs(data, big_endian) {
            let bytes: usize = urbs.iter().map(|u| u.data.len()).sum();
            assert!(bytes <= data.len());
            check_frames(&reassemble(urbs), data.len());
        }
    }
    if let Ok(urbs) = pcapng_urbs(data) {
        check_frames(&reassemble(urbs), data.len());
    }
    let text = String::from_utf8_lossy(data);
    let frames = libccid_log(&text);
    check_frames(&frames, text.len());
});
