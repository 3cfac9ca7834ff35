//! One USB/IP server session (`usbip::server`) fed the fuzzer's bytes as
//! the client's stream, against the simulated reader: URB headers, OUT
//! data, unlinks, garbage. Never panics; the session stays within its
//! caps (outstanding requests, buffered bytes); it ends when the input
//! ends (after answering what it can within a short linger); and every
//! reply it writes is a well-framed RET_SUBMIT or RET_UNLINK.
//!
//! Input: a profile byte (a built-in simulator profile), then the
//! client's stream as it would arrive after OP_REP_IMPORT.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroccid_sim::profile::{Profile, BUILTIN_NAMES};
use ferroccid_sim::SimTransport;
use ferroccid_usbip::{
    run_session, MAX_BUFFERED_BYTES, MAX_OUTSTANDING_URBS, MAX_TRANSFER,
};
use ferroccid::usbip::wire::{UrbHeader, DIR_IN, URB_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// A whole CCID message rounded up to 64-byte packets, or a descriptor.
const MAX_IN_DATA: usize = 65_600;
/// How long the session may keep answering after its input ended.
const LINGER: Duration = Duration::from_millis(30);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let name = BUILTIN_NAMES[usize::from(pick) % BUILTIN_NAMES.len()];
    let profile = Profile::from_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (sim, _handle) = SimTransport::open(profile);
    let mut output = Vec::new();
    let started = Instant::now();
    let (_result, report) = run_session(Arc::new(sim), stream, &mut output, LINGER);
    // Ends with its input: the linger, then the workers' cancelled reads.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "the session took {took:?}");
    assert!(
        report.peak_outstanding <= MAX_OUTSTANDING_URBS,
        "{report:?}"
    );
    assert!(report.peak_buffered <= MAX_BUFFERED_BYTES, "{report:?}");
    check_replies(stream, &output);
});

/// Every reply is a RET_SUBMIT or RET_UNLINK for a request the client
/// sent (each answered at most as often as it was sent), IN data at most
/// one whole CCID message, back to back with nothing torn.
fn check_replies(stream: &[u8], output: &[u8]) {
    // The requests as the server parses them: seqnum -> (IN?, count).
    let mut submits: HashMap<u32, (Option<bool>, usize)> = HashMap::new();
    let mut unlinks: HashMap<u32, usize> = HashMap::new();
    let mut rest = stream;
    while rest.len() >= URB_HEADER_LEN {
        let Ok(header) = UrbHeader::parse(&rest[..URB_HEADER_LEN], MAX_TRANSFER) else {
            break;
        };
        rest = &rest[URB_HEADER_LEN..];
        match header {
            UrbHeader::CmdSubmit(cmd) => {
                let entry = submits
                    .entry(cmd.seqnum)
                    .or_insert((Some(cmd.direction == DIR_IN), 0));
                if entry.0 != Some(cmd.direction == DIR_IN) {
                    entry.0 = None;
                }
                entry.1 += 1;
                let skip = cmd.out_data_len() + cmd.iso_descriptors_len();
                rest = &rest[skip.min(rest.len())..];
            }
            UrbHeader::CmdUnlink(cmd) => *unlinks.entry(cmd.seqnum).or_default() += 1,
            _ => break,
        }
    }
    let mut rest = output;
    while !rest.is_empty() {
        assert!(rest.len() >= URB_HEADER_LEN, "torn reply header");
        let header = UrbHeader::parse(&rest[..URB_HEADER_LEN], MAX_TRANSFER)
            .unwrap_or_else(|e| panic!("server wrote a bad header: {e}"));
        rest = &rest[URB_HEADER_LEN..];
        match header {
            UrbHeader::RetSubmit(ret) => {
                let Some((direction_in, count)) = submits.get_mut(&ret.seqnum) else {
                    panic!("RET_SUBMIT for seqnum {} never submitted", ret.seqnum);
                };
                assert!(*count > 0, "seqnum {} answered twice", ret.seqnum);
                *count -= 1;
                match direction_in {
                    Some(true) => {
                        let length = ret.actual_length as usize;
                        assert!(length <= MAX_IN_DATA, "{length} bytes of IN data");
                        assert!(length <= rest.len(), "torn IN data");
                        rest = &rest[length..];
                    }
                    Some(false) => {}
                    // A seqnum reused in both directions: framing unknown.
                    None => return,
                }
            }
            UrbHeader::RetUnlink(ret) => {
                let Some(count) = unlinks.get_mut(&ret.seqnum) else {
                    panic!("RET_UNLINK for seqnum {} never sent", ret.seqnum);
                };
                assert!(*count > 0, "unlink {} answered twice", ret.seqnum);
                *count -= 1;
            }
            other => panic!("server wrote a command: {other:?}"),
        }
    }
}
