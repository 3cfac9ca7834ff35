//! The Debian package (tests/scripts/deb.sh) in the guest, with QEMU's usb-ccid
//! reader (08E6:4433, which libccid lists too) and Debian's pcscd and libccid:
//!
//! 1. the package's files, taken from the built `.deb` (`dpkg-deb -x`), go where
//!    dpkg puts them, and postinst's step runs (`ferroccid bundle refresh`, which
//!    creates the reader list behind the packaged Info.plist symlink): pcscd then
//!    drives QEMU's reader with ferroccid's bundle (the default preference), and
//!    after `ferroccid bundle prefer libccid` with libccid's, no file edited by hand;
//! 2. a client holds a transaction on QEMU's reader while a reader of a model no
//!    list knows (a simulated reader attached through the kernel's USB/IP client)
//!    is plugged: what the udev rule runs adds it to the list, the pcscd restart
//!    waits for the client, the client's transaction completes, and after the
//!    restart the new reader answers through pcscd.
//!
//! The guest has no udevd and no systemd: the test runs what the udev rule would
//! (`bundle refresh`), and `restart-pcscd --when-idle --exec` restarts pcscd the
//! way this guest starts it (systemd's unit does that on a real system).

#[path = "../../tests/vm/harness.rs"]
mod harness;

use harness::{out_dir, Card, Guest, GuestRun};
use std::path::PathBuf;
use std::process::Command;

/// The package tests/scripts/deb.sh built, built now (without lintian) if missing.
fn package() -> PathBuf {
    let root = harness::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let find = || {
        std::fs::read_dir(target.join("debian"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("ferroccid_") && name.ends_with(".deb")
            })
    };
    if let Some(deb) = find() {
        return deb;
    }
    let status = Command::new("bash")
        .arg(root.join("tests/scripts/deb.sh"))
        .env("NO_LINT", "1")
        .status()
        .expect("run tests/scripts/deb.sh");
    assert!(status.success(), "tests/scripts/deb.sh failed");
    find().expect("deb.sh built no package")
}

/// The package's files (`dpkg-deb -x`) plus the unlisted model's profile.
fn unpacked(name: &str) -> PathBuf {
    let dir = out_dir(name);
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(package())
        .arg(dir.join("pkg"))
        .status()
        .expect("dpkg-deb");
    assert!(status.success(), "dpkg-deb -x failed");
    std::fs::copy(
        harness::repo_root().join("fixtures/profiles/unlisted-model.json"),
        dir.join("unlisted-model.json"),
    )
    .unwrap();
    dir
}

/// Puts the package's files where dpkg would and runs postinst's list step.
const INSTALL: &str =
    "cp -a /extra/pkg/usr/lib/pcsc/drivers/ifd-ferroccid.bundle /usr/lib/pcsc/drivers/ && \
    cp /extra/pkg/usr/bin/ferroccid /usr/bin/ferroccid && mkdir -p /var/lib/ferroccid && \
    ferroccid bundle refresh --quiet --no-rescan";
/// pcscd in the foreground with debug logging, into `/tmp/pcscd.log`.
const START_PCSCD: &str =
    "{ rm -f /run/pcscd/pcscd.comm; (pcscd -f -d > /tmp/pcscd.log 2>&1 &); i=0; \
    until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
    [ -S /run/pcscd/pcscd.comm ]; }";
const STOP_PCSCD: &str = "{ kill $(pidof pcscd); i=0; \
    while pidof pcscd > /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; }";
/// SELECT MF and GET CHALLENGE: 9000 on QEMU's card and on the simulated one.
const SCRIPT: &str = "00A4000C023F00 0084000008";

/// The driver library pcscd started each reader with ("Attempting startup of NAME
/// using LIBRARY"), from lines tagged `tag`.
fn startups(run: &GuestRun, tag: &str) -> Vec<String> {
    run.values(tag).map(String::from).collect()
}

#[test]
fn the_packaged_bundle_drives_qemus_reader_and_the_preference_picks_the_driver() {
    let dir = unpacked("package-preference");
    let run = Guest::new()
        .extra(&dir)
        .run(&format!(
            "set -o pipefail; {INSTALL} && ls -l /usr/lib/pcsc/drivers/ifd-ferroccid.bundle/Contents/Info.plist | sed 's/^/plist: /' && \
             {START_PCSCD} && pcsc-apdu -w 5 {SCRIPT} | sed 's/^/pf:/' && \
             grep 'Attempting startup' /tmp/pcscd.log | sed 's/^.*using /pf-startup: /' && {STOP_PCSCD} && \
             ferroccid bundle prefer libccid --no-rescan | sed 's/^/prefer: /' && \
             {START_PCSCD} && pcsc-apdu -w 5 {SCRIPT} | sed 's/^/pl:/' && \
             grep 'Attempting startup' /tmp/pcscd.log | sed 's/^.*using /pl-startup: /' && {STOP_PCSCD} \
             || {{ echo FAILED; sed 's/^/pcscd-log:/' /tmp/pcscd.log; exit 1; }}"
        ))
        .success();
    assert!(
        run.value("plist: ")
            .ends_with("Info.plist -> /var/lib/ferroccid/Info.plist"),
        "{}",
        run.console
    );
    let ferroccid_lib = "/usr/lib/pcsc/drivers/ifd-ferroccid.bundle/Contents/Linux/libferroccid.so";
    let libccid_lib = "/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Linux/libccid.so";
    assert_eq!(
        startups(&run, "pf-startup: "),
        [ferroccid_lib],
        "{}",
        run.console
    );
    assert_eq!(
        startups(&run, "pl-startup: "),
        [libccid_lib],
        "{}",
        run.console
    );
    assert!(run.value("prefer: ").contains("pcscd uses libccid"));
    for tag in ["pf:", "pl:"] {
        let prefix = format!("{tag}< ");
        let answers: Vec<&str> = run.values(&prefix).collect();
        assert_eq!(answers.len(), 2, "{tag}\n{}", run.console);
        assert_eq!(answers[0], "9000", "{tag} SELECT MF");
        assert!(
            answers[1].len() == 20 && answers[1].ends_with("9000"),
            "{tag} GET CHALLENGE: {}",
            answers[1]
        );
    }
    // The same reader name under both drivers: the packaged list keeps libccid's
    // names, so configurations that name the reader keep working.
    assert_eq!(run.value("pf:reader: "), run.value("pl:reader: "));
}

#[test]
fn a_new_reader_model_appears_without_cutting_another_readers_transaction() {
    let dir = unpacked("package-new-model");
    // The restart this guest can do: pcscd is not a service here.
    let restart = "kill $(pidof pcscd); while pidof pcscd >/dev/null; do sleep 0.1; done; \
        rm -f /run/pcscd/pcscd.comm; (pcscd -f -d > /tmp/pcscd2.log 2>&1 &)";
    let run = Guest::new()
        .card(Card::Vicc)
        .extra(&dir)
        .timeout(150)
        .run(&format!(
            "set -o pipefail; {INSTALL} && {START_PCSCD} && rig modules usbip && ip link set lo up && \
             (pcsc-apdu -w 5 -h /tmp/go {SCRIPT} > /tmp/client.out 2>&1; echo client-exit: $? >> /tmp/client.out) & \
             i=0; until grep -q holding /tmp/client.out || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; \
             grep -q holding /tmp/client.out || {{ cat /tmp/client.out; exit 1; }}; \
             (ferroccid sim --usbip 127.0.0.1:3240 --profile /extra/unlisted-model.json > /tmp/sim.log 2>&1 &); \
             i=0; until usbip attach -r 127.0.0.1 -b 1-1 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             i=0; until grep -qsx cc1d /sys/bus/usb/devices/*/idProduct || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             grep -qsx cc1d /sys/bus/usb/devices/*/idProduct && echo plugged: yes; \
             ferroccid bundle refresh --drivers-dir /usr/lib/pcsc/drivers 2>&1 | sed 's/^/refresh: /'; \
             (ferroccid bundle restart-pcscd --when-idle --max-wait 60 --exec '{restart}' > /tmp/restart.out 2>&1; \
              echo restart-exit: $? >> /tmp/restart.out) & \
             sleep 3; echo restarted-while-held: $(grep -c restart-exit /tmp/restart.out); \
             touch /tmp/go; i=0; until grep -q client-exit /tmp/client.out || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; \
             sed 's/^/client: /' /tmp/client.out; \
             i=0; until grep -q restart-exit /tmp/restart.out || [ $i -ge 150 ]; do sleep 0.1; i=$((i+1)); done; \
             sed 's/^/restart: /' /tmp/restart.out; \
             i=0; until [ -S /run/pcscd/pcscd.comm ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; \
             pcsc-apdu -w 10 -r 'Bench CCID' {SCRIPT} 2>&1 | sed 's/^/new: /'; \
             grep 'Attempting startup' /tmp/pcscd2.log | sed 's/^.*Attempting startup of /startup: /'"
        ));
    let console = &run.console;
    assert_eq!(run.value("plugged: "), "yes", "{console}");
    assert!(
        run.values("refresh: ").any(|l| l.contains("(1 new)")),
        "the refresh udev runs did not add the new model:\n{console}"
    );
    assert_eq!(
        run.value("restarted-while-held: "),
        "0",
        "pcscd was restarted while a client held a transaction:\n{console}"
    );
    // The client's transaction survived: the script ran again inside it and
    // SCardEndTransaction succeeded.
    let client: Vec<&str> = run.values("client: ").collect();
    assert!(client.contains(&"transaction: ended"), "{console}");
    assert!(client.contains(&"client-exit: 0"), "{console}");
    assert_eq!(
        client.iter().filter(|l| l.starts_with("again< ")).count(),
        2,
        "{console}"
    );
    assert!(
        run.values("restart: ").any(|l| l == "restart-exit: 0"),
        "{console}"
    );
    // After the restart the new model is a PC/SC reader, driven by ferroccid.
    let new: Vec<&str> = run.values("new: ").collect();
    assert!(
        new.iter()
            .any(|l| l.starts_with("reader: ") && l.contains("Bench CCID")),
        "{console}"
    );
    let answers: Vec<&&str> = new.iter().filter(|l| l.starts_with("< ")).collect();
    assert_eq!(answers.len(), 2, "{console}");
    assert_eq!(*answers[0], "< 9000");
    assert!(
        run.values("startup: ").any(|l| l.contains("Bench CCID")
            && l.ends_with("ifd-ferroccid.bundle/Contents/Linux/libferroccid.so")),
        "{console}"
    );
}
