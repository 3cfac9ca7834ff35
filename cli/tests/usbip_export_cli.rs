//! `ferroccid sim --usbip`: USB/IP has no authentication, so a real
//! reader is only exported with `--allow-real-reader` (the simulator needs
//! nothing), and a bind that is not loopback is warned about on stderr.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;

fn ferroccid() -> Command {
    Command::cargo_bin("ferroccid").expect("ferroccid binary")
}

#[test]
fn a_real_reader_is_refused_without_the_opt_in() {
    for reader in ["usb:08e6/3437", "usbip:127.0.0.1:1/1-1"] {
        let out = ferroccid()
            .args(["sim", "--usbip", "127.0.0.1:0", "--reader", reader])
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{reader}: {stderr}");
        assert!(
            stderr.contains("refusing to export the real reader")
                && stderr.contains("--allow-real-reader")
                && stderr.contains("no authentication"),
            "{reader}: {stderr}"
        );
        assert!(!stdout.contains("listening"), "{reader}: {stdout}");
    }
}

#[test]
fn with_the_opt_in_the_real_reader_is_opened() {
    // Nothing listens on port 1: the open fails, not the policy.
    let out = ferroccid()
        .args([
            "sim",
            "--usbip",
            "127.0.0.1:0",
            "--reader",
            "usbip:127.0.0.1:1/1-1",
            "--allow-real-reader",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open usbip:127.0.0.1:1/1-1"),
        "{stderr}"
    );
    assert!(!stderr.contains("refusing"), "{stderr}");
}

/// Starts `ferroccid sim` with `args`, reads its first stdout line, stops
/// it; returns that line and everything it wrote on stderr.
fn first_line_and_stderr(args: &[&str]) -> (String, String) {
    let mut child = Process::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferroccid sim");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (first, stderr)
}

#[test]
fn the_simulator_is_exported_without_the_opt_in_and_quietly_on_loopback() {
    let (first, stderr) = first_line_and_stderr(&[
        "sim",
        "--usbip",
        "127.0.0.1:0",
        "--reader",
        "sim:short-apdu",
    ]);
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
}

#[test]
fn a_bind_that_is_not_loopback_is_warned_about() {
    let (first, stderr) = first_line_and_stderr(&["sim", "--usbip", "0.0.0.0:0"]);
    assert!(first.starts_with("listening on 0.0.0.0:"), "{first:?}");
    assert!(
        stderr.contains("WARNING") && stderr.contains("not loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("ssh -L 3240:127.0.0.1:"), "{stderr}");
}
