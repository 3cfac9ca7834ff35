//! Rust side of the QEMU usb-ccid harness (`tests/vm/run-guest.sh`), shared by the
//! CLI crate's `cli/tests/vm_*.rs` integration tests (they ship its binary into the
//! guest) through `#[path = "../../tests/vm/harness.rs"] mod harness;`.
//!
//! A guest run that cannot happen (QEMU, kernel or card missing, timeout) panics with
//! the harness's own output: these tests never skip.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the workspace's `Cargo.toml`; the tests live in `cli/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The target directory the guest tests build the distributed bundle in
/// (`cargo build -p ferroccid-ifd`): apart from the main one, whose
/// library the pcscd tests load with the `sim` feature.
pub fn vm_bundle_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("vm-bundle")
}

/// This build's cdylib, built (or found up to date) by cargo in the profile the tests
/// run in: `cargo test` builds only the rlib, so the .so next to the binaries may be
/// stale or missing.
pub fn fresh_cdylib() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "build",
            "-p",
            "ferroccid-ifd",
            "--lib",
            "--message-format=json",
        ])
        // The guest tests choose the backend at run time (FERROCCID_USB_BACKEND).
        .args(["--features", "nusb"])
        // Its own target directory: the bundle without the `sim` feature,
        // built without replacing the library the pcscd tests load from the
        // main one.
        .env("CARGO_TARGET_DIR", vm_bundle_target());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build -p ferroccid-ifd --lib failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "ferroccid_ifd")
        .filter_map(|v| v["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(std::path::PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .expect("cargo names libferroccid_ifd.so")
}

/// A scratch directory under `target/vm-out/NAME`, emptied first.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = repo_root().join("target/vm-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create target/vm-out dir");
    dir
}

/// Which card sits in QEMU's reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// vsmartcard's ISO 7816 card (its T=1-only ATR presented as T=0, see vscard-bridge.py).
    Vicc,
    /// The vicc card, not inserted until `rig card insert`.
    Absent,
    /// No card at all.
    None,
}

/// One guest run: options of `run-guest.sh`.
#[derive(Clone, Debug)]
pub struct Guest {
    card: Card,
    pcscd: Option<String>,
    pcap: Option<PathBuf>,
    extra: Option<PathBuf>,
    share: Option<PathBuf>,
    qemu_reader: bool,
    timeout_s: u32,
}

/// What a guest run produced.
#[derive(Debug)]
pub struct GuestRun {
    /// Exit status of the command inside the guest.
    pub status: i32,
    /// The guest console: the command's stdout and stderr.
    pub console: String,
    /// The harness's own messages (timings, failures).
    pub harness: String,
}

impl Default for Guest {
    fn default() -> Self {
        Guest {
            card: Card::Vicc,
            pcscd: None,
            pcap: None,
            extra: None,
            share: None,
            qemu_reader: true,
            timeout_s: 60,
        }
    }
}

impl Guest {
    /// A guest with the vicc card inserted, no pcscd.
    pub fn new() -> Self {
        Self::default()
    }

    /// The guest command's time limit, for runs longer than the 60 s
    /// default (the benchmark's rounds).
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_s = seconds;
        self
    }

    /// Choose the card.
    pub fn card(mut self, card: Card) -> Self {
        self.card = card;
        self
    }
    /// Start pcscd (libccid's bundle) before the command, with extra comma-separated args.
    pub fn pcscd(mut self, args: &str) -> Self {
        self.pcscd = Some(args.to_string());
        self
    }
    /// Record the reader's USB traffic into `path` (usbmon pcap).
    pub fn pcap(mut self, path: &Path) -> Self {
        self.pcap = Some(path.to_path_buf());
        self
    }
    /// Copy `dir` to `/extra` in the guest (on PATH there).
    pub fn extra(mut self, dir: &Path) -> Self {
        self.extra = Some(dir.to_path_buf());
        self
    }
    /// Share host `dir` at `/share` in the guest.
    pub fn share(mut self, dir: &Path) -> Self {
        self.share = Some(dir.to_path_buf());
        self
    }

    /// Leave QEMU's usb-ccid reader out (only an attached USB/IP device will be seen).
    pub fn without_qemu_reader(mut self) -> Self {
        self.qemu_reader = false;
        self
    }

    /// Boot, run `command` (a busybox sh command line), power off.
    /// Panics if the harness itself fails (status 124 timeout / 125 broken / 2 usage).
    pub fn run(&self, command: &str) -> GuestRun {
        let script = repo_root().join("tests/vm/run-guest.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("-t").arg(self.timeout_s.to_string());
        cmd.arg("-c").arg(match self.card {
            Card::Vicc => "vicc",
            Card::Absent => "absent",
            Card::None => "none",
        });
        if !self.qemu_reader {
            cmd.arg("-N");
        }
        if let Some(args) = &self.pcscd {
            if args.is_empty() {
                cmd.arg("-p");
            } else {
                cmd.arg("-P").arg(args);
            }
        }
        if let Some(p) = &self.pcap {
            cmd.arg("-w").arg(p);
        }
        if let Some(d) = &self.extra {
            cmd.arg("-e").arg(d);
        }
        if let Some(d) = &self.share {
            cmd.arg("-s").arg(d);
        }
        cmd.arg("--").arg(command);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let run = GuestRun {
            status: out.status.code().unwrap_or(-1),
            console: String::from_utf8_lossy(&out.stdout).into_owned(),
            harness: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("guest `{command}`:\n{}{}", run.console, run.harness);
        if matches!(run.status, 2 | 124 | 125 | -1) {
            panic!(
                "VM harness failed (status {}) for `{command}`:\n{}\n{}",
                run.status, run.console, run.harness
            );
        }
        run
    }
}

impl GuestRun {
    /// Panics (with the whole console) unless the command exited 0.
    pub fn success(self) -> Self {
        assert_eq!(
            self.status, 0,
            "guest command failed:\n{}\n{}",
            self.console, self.harness
        );
        self
    }
    /// Lines of the console starting with `prefix`, prefix removed.
    pub fn values<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.console
            .lines()
            .filter_map(move |l| l.strip_prefix(prefix))
            .map(str::trim)
    }
    /// The one value after `prefix`; panics if absent.
    pub fn value(&self, prefix: &str) -> String {
        self.values(prefix)
            .next()
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{}", self.console))
            .to_string()
    }
}

/// Decode a hex string (spaces allowed).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `> APDU` / `< RESPONSE` pairs printed by the guest's `pcsc-apdu`.
pub fn exchanges(run: &GuestRun) -> Vec<(String, String)> {
    let commands: Vec<&str> = run.values("> ").collect();
    let responses: Vec<&str> = run.values("< ").collect();
    assert_eq!(
        commands.len(),
        responses.len(),
        "unpaired APDUs in:\n{}",
        run.console
    );
    commands
        .into_iter()
        .zip(responses)
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .collect()
}

/// A directory for `Guest::extra` holding this build's `ferroccid` binary, stripped
/// (43 MB of debug info would slow every guest start).
pub fn ferroccid_extra(name: &str) -> PathBuf {
    let dir = out_dir(name);
    let binary = dir.join("ferroccid");
    std::fs::copy(env!("CARGO_BIN_EXE_ferroccid"), &binary).expect("copy the ferroccid binary");
    let status = Command::new("strip")
        .arg(&binary)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success(), "strip failed");
    dir
}
