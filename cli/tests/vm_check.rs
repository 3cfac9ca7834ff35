//! `ferroccid check` on QEMU's usb-ccid reader (08E6:4433, vicc card) in
//! the guest: the reader's real non-conformities, found twice in one boot
//! (the result must be stable), are the ones the README lists.

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{ferroccid_extra, Guest, GuestRun};
use serde_json::Value;

/// Sets `$dev` to QEMU's reader's device name from `ferroccid list --json`
/// (busybox has no jq: the pretty-printed keys are one per line).
const FIND_READER: &str = "ferroccid list --json > /tmp/list.json && \
    dev=$(awk -F'\"' '/\"vid_pid\": \"08E6:4433\"/ {f=1} f && /\"device\":/ {print $4; exit}' /tmp/list.json) && \
    echo dev: $dev";

/// The checks QEMU's reader fails, each for the reason in the README:
/// dwFeatures with both 0x40 and 0x80; a command to slot 1 answered as a
/// success; RDR_to_PC_Parameters with dwLength 0 before its 7 bytes; Escape
/// answered with SlotStatus; the ABORT class request stalls; a message of
/// the announced dwMaxCCIDMessageLength (65554) stalls bulk-OUT.
const QEMU_FAILS: [&str; 6] = [
    "features",
    "bad-slot",
    "parameters",
    "escape",
    "abort",
    "message-length-honoured",
];

/// Runs the check in the guest, its JSON prefixed `TAG:` and its exit status as `TAG-rc:`.
fn check(tag: &str) -> String {
    format!(
        "{{ ferroccid check --json --reader $dev > /tmp/{tag}.json; echo {tag}-rc: $?; \
         sed 's/^/{tag}:/' /tmp/{tag}.json; }}"
    )
}

fn report(run: &GuestRun, tag: &str) -> (i32, Value) {
    let prefix = format!("{tag}:");
    let text: Vec<&str> = run.values(&prefix).collect();
    let json = serde_json::from_str(&text.join("\n"))
        .unwrap_or_else(|e| panic!("{tag}: not JSON ({e}):\n{}", run.console));
    let code = run.value(&format!("{tag}-rc: ")).parse().unwrap();
    (code, json)
}

/// (id, result, detail) of every check.
fn rows(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (field("id"), field("result"), field("detail"))
        })
        .collect()
}

#[test]
fn qemus_reader_fails_the_same_checks_every_time() {
    let extra = ferroccid_extra("check");
    let run = Guest::new()
        .timeout(150)
        .extra(&extra)
        .run(&format!(
            "{FIND_READER} && {} && {} && ferroccid check --reader $dev | sed 's/^/text:/'",
            check("first"),
            check("second"),
        ))
        .success();
    let (first_code, first) = report(&run, "first");
    let (second_code, second) = report(&run, "second");
    assert!(
        first["reader"]
            .as_str()
            .unwrap()
            .starts_with("usb:08e6/4433:"),
        "{first:#}"
    );
    assert_eq!(rows(&first).len(), 16, "{first:#}");
    assert_eq!(rows(&first), rows(&second), "the second run differs");
    let failed: Vec<&str> = first["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(failed, QEMU_FAILS, "{first:#}");
    let detail = |id: &str| {
        rows(&first)
            .into_iter()
            .find(|(row, _, _)| row == id)
            .map(|(_, _, detail)| detail)
            .unwrap()
    };
    assert!(detail("features").contains("000104FE"), "{first:#}");
    assert!(
        detail("parameters").contains("dwLength 0 but 7 data bytes"),
        "{first:#}"
    );
    assert!(
        detail("escape").contains("bMessageType 81, expected 83"),
        "{first:#}"
    );
    // What QEMU's reader cannot be asked to do is not applicable, never a pass.
    assert_eq!(
        rows(&first)
            .into_iter()
            .filter(|(id, result, _)| result == "n/a" && id == "notify-slot-change")
            .count(),
        1
    );
    assert_eq!(first_code, i32::from(!failed.is_empty()));
    assert_eq!(second_code, first_code);
}
