//! `ferroccid doctor` against staged faults: a temporary directory holds a
//! sysfs USB device (descriptors built with the driver's
//! `emit_configuration`), its device node, udev rules directories, a pcscd
//! drivers directory with bundles, an empty process list and a socket
//! path, and each test breaks one of them. The permission fault runs the
//! doctor as user nobody (setpriv). A real pcscd is in `doctor_pcscd.rs`,
//! QEMU's reader in `vm_doctor.rs`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;

use ferroccid::descriptors::{emit_configuration, EndpointDescription, InterfaceDescription};
use ferroccid_ifd::plist::{render, BundleConfig, ReaderId};
use serde_json::Value;

/// The GemPC Twin's class descriptor (TPDU level, T=0 and T=1).
const GEMPC_TWIN: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01";
const VID: u16 = 0x08E6;
const PID: u16 = 0x3437;

fn bytes(hex: &str) -> Vec<u8> {
    hex.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// A staged machine under a temporary directory.
struct Stage {
    root: PathBuf,
}

impl Stage {
    fn new(name: &str) -> Stage {
        let root =
            std::env::temp_dir().join(format!("ferroccid-doctor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "sys", "dev", "udev-etc", "udev-lib", "drivers", "proc", "run",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        // user nobody must reach everything (the permission test).
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        Stage { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A USB device `1-1` on bus 1 address 2 with one interface of
    /// `class` followed by `extra` (the class descriptor), and its node.
    fn device(&self, class: u8, extra: Vec<u8>) {
        let dir = self.path("sys/1-1");
        std::fs::create_dir_all(&dir).unwrap();
        for (attr, value) in [
            ("busnum", "1".to_owned()),
            ("devnum", "2".to_owned()),
            ("idVendor", format!("{VID:04x}")),
            ("idProduct", format!("{PID:04x}")),
            ("bcdDevice", "0200".to_owned()),
            ("manufacturer", "Gemalto".to_owned()),
            ("product", "PC Twin Reader".to_owned()),
            ("bConfigurationValue", "1".to_owned()),
        ] {
            std::fs::write(dir.join(attr), format!("{value}\n")).unwrap();
        }
        let endpoint = |address, attributes| EndpointDescription {
            address,
            attributes,
            max_packet_size: 64,
        };
        let config = emit_configuration(&InterfaceDescription {
            number: 0,
            class,
            endpoints: vec![endpoint(0x01, 2), endpoint(0x82, 2), endpoint(0x83, 3)],
            extra,
            ..Default::default()
        });
        let mut descriptors = vec![18, 1, 0x10, 0x01, 0, 0, 0, 64];
        descriptors.extend(VID.to_le_bytes());
        descriptors.extend(PID.to_le_bytes());
        descriptors.extend([0x00, 0x02, 1, 2, 0, 1]);
        descriptors.extend(config);
        std::fs::write(dir.join("descriptors"), descriptors).unwrap();
        let node = self.node();
        std::fs::create_dir_all(node.parent().unwrap()).unwrap();
        std::fs::write(&node, "").unwrap();
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o660)).unwrap();
    }

    fn reader(&self) {
        self.device(0x0B, bytes(GEMPC_TWIN));
    }

    fn node(&self) -> PathBuf {
        self.path("dev/bus/usb/001/002")
    }

    fn rule(&self, dir: &str) {
        let rules = include_str!("../../udev/92-ferroccid.rules");
        std::fs::write(self.path(dir).join("92-ferroccid.rules"), rules).unwrap();
    }

    /// A bundle `dir` listing `readers`; `name` is its CFBundleName.
    fn bundle(&self, dir: &str, name: &str, readers: &[(u16, u16, &str)]) {
        let contents = self.path("drivers").join(dir).join("Contents");
        std::fs::create_dir_all(contents.join("Linux")).unwrap();
        let config = BundleConfig {
            executable: "lib.so".into(),
            log_level: 1,
            driver_options: 0,
            class_driver: name == "CCIDCLASSDRIVER",
        };
        let readers: Vec<ReaderId> = readers
            .iter()
            .map(|&(vendor_id, product_id, name)| ReaderId {
                vendor_id,
                product_id,
                name: name.into(),
            })
            .collect();
        let text = render(&config, &readers).replace(
            "<key>CFBundleName</key>\n\t<string>ferroccid</string>",
            &format!("<key>CFBundleName</key>\n\t<string>{name}</string>"),
        );
        std::fs::write(contents.join("Info.plist"), text).unwrap();
        std::fs::write(contents.join("Linux/lib.so"), "").unwrap();
    }

    /// `ferroccid doctor --json` with every root staged (`extra` args
    /// first), as `prefix` (e.g. setpriv …) if given.
    fn doctor(&self, prefix: &[&str], extra: &[&str]) -> (i32, Value) {
        let binary = env!("CARGO_BIN_EXE_ferroccid");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.arg("doctor")
            .args(extra)
            .arg("--json")
            .arg("--sysfs-dir")
            .arg(self.path("sys"))
            .arg("--dev-dir")
            .arg(self.path("dev"))
            .arg("--udev-dir")
            .arg(self.path("udev-etc"))
            .arg("--udev-dir")
            .arg(self.path("udev-lib"))
            .arg("--drivers-dir")
            .arg(self.path("drivers"))
            .arg("--proc-dir")
            .arg(self.path("proc"))
            .arg("--pcscd-socket")
            .arg(self.path("run/pcscd.comm"))
            .env_remove("PCSCLITE_CSOCK_NAME");
        let out = cmd.output().expect("run ferroccid doctor");
        let text = String::from_utf8_lossy(&out.stdout);
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{cmd:?}: not JSON ({e}):\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), json)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The check named `name` of a report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

fn advice(report: &Value, name: &str) -> String {
    check(report, name)["advice"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} gives no advice: {report:#}"))
        .to_owned()
}

fn detail(report: &Value, name: &str) -> String {
    check(report, name)["detail"].as_str().unwrap().to_owned()
}

#[test]
fn the_checks_run_in_order_and_name_status_detail_advice() {
    let stage = Stage::new("order");
    stage.reader();
    let (_, report) = stage.doctor(&[], &[]);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "usb-device",
            "ccid-descriptor",
            "permissions",
            "udev-rule",
            "pcscd-bundle",
            "pcscd",
            "pcsc-reader",
            "card"
        ]
    );
    for c in report["checks"].as_array().unwrap() {
        assert!(c["detail"].is_string(), "{c}");
        assert!(c["advice"].is_string() || c["advice"].is_null(), "{c}");
        assert!(
            ["pass", "warn", "fail", "not_applicable"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        // Every failure says what to do.
        if c["status"] == "fail" {
            assert!(c["advice"].is_string(), "{c}");
        }
    }
    assert!(
        report["reader"]
            .as_str()
            .unwrap()
            .starts_with("usb:08e6/3437"),
        "{report:#}"
    );
}

#[test]
fn a_set_up_reader_passes_the_usb_and_bundle_checks() {
    let stage = Stage::new("good");
    stage.reader();
    stage.rule("udev-lib");
    stage.bundle(
        "ifd-ccid.bundle",
        "CCIDCLASSDRIVER",
        &[(VID, PID, "Gemalto PC Twin Reader")],
    );
    stage.bundle(
        "ifd-ferroccid.bundle",
        "ferroccid",
        &[(VID, PID, "Gemalto PC Twin Reader")],
    );
    let (code, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "usb-device"), "pass", "{report:#}");
    assert!(detail(&report, "usb-device").contains("class 0x0B (CCID)"));
    assert_eq!(status(&report, "ccid-descriptor"), "pass");
    assert!(
        detail(&report, "ccid-descriptor").contains("tpdu level"),
        "{report:#}"
    );
    assert_eq!(status(&report, "permissions"), "pass", "{report:#}");
    // The staged node is root's, not pcscd's: installed, not applied.
    assert_eq!(status(&report, "udev-rule"), "warn", "{report:#}");
    assert!(detail(&report, "udev-rule").contains("udev-lib/92-ferroccid.rules is installed"));
    assert!(advice(&report, "udev-rule").contains("udevadm trigger"));
    assert_eq!(status(&report, "pcscd-bundle"), "pass", "{report:#}");
    let bundles = detail(&report, "pcscd-bundle");
    assert!(
        bundles.contains("ifd-ccid.bundle (class driver"),
        "{bundles}"
    );
    assert!(
        bundles.ends_with("pcscd uses ifd-ferroccid.bundle"),
        "{bundles}"
    );
    // No pcscd in the staged machine: not usable, and said so.
    assert_eq!(status(&report, "pcscd"), "fail");
    assert_eq!(report["usable"], false);
    assert_eq!(code, 1);
}

#[test]
fn a_missing_udev_rule_fails_with_the_install_command_and_a_mask_too() {
    let stage = Stage::new("rule");
    stage.reader();
    let (code, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "udev-rule"), "fail", "{report:#}");
    assert!(advice(&report, "udev-rule").contains("sudo ferroccid install"));
    assert_ne!(code, 0);
    // The rule in the lower directory, masked from the higher one.
    stage.rule("udev-lib");
    std::os::unix::fs::symlink("/dev/null", stage.path("udev-etc/92-ferroccid.rules")).unwrap();
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "udev-rule"), "fail", "{report:#}");
    assert!(detail(&report, "udev-rule").contains("masks"));
    // Unmasked: installed.
    std::fs::remove_file(stage.path("udev-etc/92-ferroccid.rules")).unwrap();
    let (_, report) = stage.doctor(&[], &[]);
    assert_ne!(status(&report, "udev-rule"), "fail", "{report:#}");
}

#[test]
fn libccid_or_a_vendor_bundle_taking_the_reader_is_reported() {
    let stage = Stage::new("bundles");
    stage.reader();
    stage.rule("udev-etc");
    // No bundle lists it: pcscd ignores the reader.
    stage.bundle(
        "ifd-ferroccid.bundle",
        "ferroccid",
        &[(0x1234, 0x5678, "other")],
    );
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd-bundle"), "fail", "{report:#}");
    assert!(detail(&report, "pcscd-bundle").contains("pcscd ignores this reader"));
    assert!(advice(&report, "pcscd-bundle").contains("ferroccid bundle refresh"));
    assert_eq!(
        status(&report, "pcsc-reader"),
        "not_applicable",
        "{report:#}"
    );
    // libccid (a class driver) lists it and ferroccid does not: libccid.
    stage.bundle(
        "ifd-ccid.bundle",
        "CCIDCLASSDRIVER",
        &[(VID, PID, "Gemalto PC Twin Reader")],
    );
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd-bundle"), "warn", "{report:#}");
    assert!(detail(&report, "pcscd-bundle").contains("pcscd uses ifd-ccid.bundle"));
    assert!(advice(&report, "pcscd-bundle").contains("ferroccid bundle refresh"));
    // ferroccid lists it too: the specific driver wins over the class driver.
    stage.bundle(
        "ifd-ferroccid.bundle",
        "ferroccid",
        &[(0x1234, 0x5678, "other"), (VID, PID, "Twin via ferroccid")],
    );
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd-bundle"), "pass", "{report:#}");
    // A second specific driver: one of them wins (readdir order), and
    // when it is not ferroccid's the advice says to move it away.
    stage.bundle(
        "ifd-vendor.bundle",
        "VendorDriver",
        &[(VID, PID, "Twin via vendor")],
    );
    let (_, report) = stage.doctor(&[], &[]);
    let bundles = detail(&report, "pcscd-bundle");
    assert!(
        bundles.contains("ifd-vendor.bundle (specific driver"),
        "{bundles}"
    );
    if bundles.ends_with("pcscd uses ifd-vendor.bundle, not ferroccid") {
        assert_eq!(status(&report, "pcscd-bundle"), "warn");
        assert!(advice(&report, "pcscd-bundle").contains("outranks"));
    } else {
        assert!(
            bundles.ends_with("pcscd uses ifd-ferroccid.bundle"),
            "{bundles}"
        );
    }
    // The chosen bundle's library gone: pcscd cannot load it.
    std::fs::remove_dir_all(stage.path("drivers/ifd-vendor.bundle")).unwrap();
    std::fs::remove_file(stage.path("drivers/ifd-ferroccid.bundle/Contents/Linux/lib.so")).unwrap();
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd-bundle"), "fail", "{report:#}");
    assert!(detail(&report, "pcscd-bundle").contains("is missing"));
}

#[test]
fn pcscd_stopped_fails_and_says_how_to_start_it() {
    let stage = Stage::new("pcscd");
    stage.reader();
    let (code, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd"), "fail", "{report:#}");
    assert!(
        detail(&report, "pcscd").contains("not running"),
        "{report:#}"
    );
    assert!(advice(&report, "pcscd").contains("pcscd"), "{report:#}");
    assert_eq!(status(&report, "pcsc-reader"), "not_applicable");
    assert_ne!(code, 0);
    // A socket left behind by a pcscd that died: nothing accepts on it.
    let listener = std::os::unix::net::UnixListener::bind(stage.path("run/pcscd.comm")).unwrap();
    drop(listener);
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "pcscd"), "fail", "{report:#}");
    assert!(detail(&report, "pcscd").contains("left over"), "{report:#}");
    // A pcscd process that serves another socket.
    std::fs::remove_file(stage.path("run/pcscd.comm")).unwrap();
    std::fs::create_dir_all(stage.path("proc/4242")).unwrap();
    std::fs::write(stage.path("proc/4242/comm"), "pcscd\n").unwrap();
    let (_, report) = stage.doctor(&[], &[]);
    assert!(
        detail(&report, "pcscd").contains("pcscd runs (pid 4242) but nothing accepts"),
        "{report:#}"
    );
}

#[test]
fn a_user_who_may_not_open_the_node_is_told_what_to_do() {
    let stage = Stage::new("nobody");
    stage.reader();
    stage.rule("udev-etc");
    // As root, it may.
    let (_, report) = stage.doctor(&[], &[]);
    assert_eq!(status(&report, "permissions"), "pass", "{report:#}");
    // As nobody, the root-owned 0660 node is closed; the group is not
    // pcscd, so the rule did not apply.
    let (_, report) = stage.doctor(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &[],
    );
    assert_eq!(status(&report, "permissions"), "warn", "{report:#}");
    let text = detail(&report, "permissions");
    assert!(
        text.contains("001/002: root:root 0660") && text.contains("may not open"),
        "{text}"
    );
    assert!(
        advice(&report, "permissions").contains("udevadm trigger"),
        "{report:#}"
    );
    // Made world-writable, nobody may.
    std::fs::set_permissions(stage.node(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, report) = stage.doctor(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &[],
    );
    assert_eq!(status(&report, "permissions"), "pass", "{report:#}");
}

#[test]
fn a_device_that_is_no_reader_fails_the_usb_checks() {
    let stage = Stage::new("notreader");
    // A HID interface only: no CCID interface.
    stage.device(0x03, Vec::new());
    let (_, report) = stage.doctor(&[], &["--reader", "usb:08e6/3437"]);
    assert_eq!(status(&report, "usb-device"), "fail", "{report:#}");
    assert!(detail(&report, "usb-device").contains("none is a CCID interface"));
    assert!(advice(&report, "usb-device").contains("lsusb -v -d 08e6:3437"));
    assert_eq!(status(&report, "ccid-descriptor"), "not_applicable");
    // Class 0x0B without its class descriptor.
    stage.device(0x0B, Vec::new());
    let (_, report) = stage.doctor(&[], &["--reader", "Twin"]);
    assert_eq!(status(&report, "usb-device"), "pass", "{report:#}");
    assert_eq!(status(&report, "ccid-descriptor"), "fail", "{report:#}");
    // Nothing with that VID:PID at all.
    let (code, report) = stage.doctor(&[], &["--reader", "usb:1234/5678"]);
    assert_eq!(status(&report, "usb-device"), "fail", "{report:#}");
    assert!(detail(&report, "usb-device").contains("no USB device 1234:5678"));
    assert_ne!(code, 0);
}

#[test]
fn the_simulator_has_no_usb_checks_and_its_card_is_read_directly() {
    let stage = Stage::new("sim");
    let (code, report) = stage.doctor(&[], &["--reader", "sim"]);
    for name in [
        "usb-device",
        "ccid-descriptor",
        "permissions",
        "udev-rule",
        "pcscd-bundle",
    ] {
        assert_eq!(
            status(&report, name),
            "not_applicable",
            "{name}: {report:#}"
        );
    }
    assert_eq!(status(&report, "card"), "pass", "{report:#}");
    let card = detail(&report, "card");
    assert!(
        card.starts_with("ATR 3B ") && card.contains("read directly"),
        "{card}"
    );
    // Without pcscd it is not usable through PC/SC.
    assert_eq!(status(&report, "pcscd"), "fail");
    assert_eq!(code, 1);
}

#[test]
fn the_text_output_shows_each_check_and_its_remedy() {
    let stage = Stage::new("text");
    stage.reader();
    let out = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .arg("doctor")
        .arg("--sysfs-dir")
        .arg(stage.path("sys"))
        .arg("--dev-dir")
        .arg(stage.path("dev"))
        .arg("--udev-dir")
        .arg(stage.path("udev-etc"))
        .arg("--drivers-dir")
        .arg(stage.path("drivers"))
        .arg("--proc-dir")
        .arg(stage.path("proc"))
        .arg("--pcscd-socket")
        .arg(stage.path("run/pcscd.comm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("FAIL  udev-rule")),
        "{text}"
    );
    assert!(text.contains("-> `sudo ferroccid install`"), "{text}");
    assert!(
        text.ends_with("The reader is not usable: udev-rule, pcscd-bundle, pcscd failed.\n"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}
