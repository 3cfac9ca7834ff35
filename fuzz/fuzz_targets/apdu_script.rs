//! APDU scripts (`ferroccid_card::script`, what `ferroccid script` reads):
//! any text parses or gives an error naming a line of the text, never a
//! panic; every command of a parsed script builds or says why; every
//! expected answer checks any response (the input's tail) without a panic,
//! and a match captures only bytes of that response.
#![no_main]

use ferroccid_card::script::{build_command, parse, Captures, Step};
use libfuzzer_sys::fuzz_target;

fn walk(steps: &[Step], response: &[u8], captures: &mut Captures, depth: usize) {
    assert!(depth <= ferroccid_card::script::MAX_DEPTH + 1);
    for step in steps {
        match step {
            Step::Exchange { command, expect, .. } => {
                let _ = build_command(command, captures);
                if let Some(pattern) = expect {
                    let before = captures.len();
                    if pattern.check(response, captures).is_ok() {
                        for value in captures.values() {
                            assert!(value.len() <= response.len());
                        }
                    } else {
                        assert_eq!(captures.len(), before, "a mismatch captured something");
                    }
                }
            }
            Step::Repeat { body, count, .. } => {
                assert!(*count >= 1);
                walk(body, response, captures, depth + 1);
            }
            Step::Reset { .. } | Step::Exit { .. } => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The script is the input up to a NUL, the response to check the rest.
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let response = data.get(split + 1..).unwrap_or(&[]);
    match parse(text) {
        Ok(script) => walk(&script.steps, response, &mut Captures::new(), 0),
        Err(error) => assert!(error.line >= 1 && error.line <= text.lines().count().max(1)),
    }
});
