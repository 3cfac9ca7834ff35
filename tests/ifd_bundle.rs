//! `ferroccid bundle`, `bundle refresh`, `install`, `uninstall` into a
//! temporary root; a real pcscd loading the installed bundle from a
//! drivers directory (bind-mounted over /usr/lib/pcsc/drivers in its own
//! mount namespace); the udev rules checked by `udevadm verify` and line by
//! line. Fails loudly when pcscd or udevadm is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroccid::ifd::plist::{self, BundleConfig, ReaderId};

fn ferroccid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferroccid"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroccid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("cannot run ferroccid");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn library() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ferroccid")).with_file_name("libferroccid.so")
}

fn install(root: &Path) {
    run_ok(
        ferroccid()
            .arg("install")
            .arg("--prefix")
            .arg(root.join("usr/local"))
            .arg("--drivers-dir")
            .arg(root.join("drivers"))
            .arg("--udev-dir")
            .arg(root.join("udev"))
            .arg("--no-rescan"),
    );
}

#[test]
fn bundle_has_the_pcscd_layout_and_libccids_readers() {
    let out = temp("bundle-out");
    run_ok(ferroccid().arg("bundle").arg("--out").arg(&out));
    let contents = out.join("ifd-ferroccid.bundle/Contents");
    let so = std::fs::read(contents.join("Linux/libferroccid.so")).unwrap();
    assert_eq!(
        so,
        std::fs::read(library()).unwrap(),
        "the library is copied as built"
    );
    let text = std::fs::read_to_string(contents.join("Info.plist")).unwrap();
    // pcscd's bundleParse needs CFBundleExecutable naming the file in Linux/.
    assert_eq!(
        plist::read_string(&text, "CFBundleExecutable").as_deref(),
        Some("libferroccid.so")
    );
    let vendors = plist::read_array(&text, "ifdVendorID");
    assert_eq!(
        vendors.len(),
        plist::read_array(&text, "ifdProductID").len()
    );
    assert_eq!(
        vendors.len(),
        plist::read_array(&text, "ifdFriendlyName").len()
    );
    // Every reader of the installed libccid is listed too.
    let libccid =
        std::fs::read_to_string("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist")
            .expect("libccid's Info.plist (Debian package libccid, pulled in by pcscd)");
    let ours = plist::readers_of(&text);
    for reader in plist::readers_of(&libccid) {
        assert!(
            ours.iter()
                .any(|r| (r.vendor_id, r.product_id) == (reader.vendor_id, reader.product_id)),
            "{:04X}:{:04X} missing",
            reader.vendor_id,
            reader.product_id
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn install_refresh_uninstall_in_a_temporary_root() {
    let root = temp("install");
    install(&root);
    let bundle = root.join("drivers/ifd-ferroccid.bundle/Contents");
    assert!(bundle.join("Linux/libferroccid.so").is_file());
    assert!(root.join("usr/local/bin/ferroccid").is_file());
    let rules = std::fs::read_to_string(root.join("udev/92-ferroccid.rules")).unwrap();
    let refresh = format!(
        "{} bundle refresh --quiet --drivers-dir {}",
        root.join("usr/local/bin/ferroccid").display(),
        root.join("drivers").display()
    );
    assert!(rules.contains(&refresh), "{rules}");
    assert!(!rules.contains('@'), "placeholders left: {rules}");

    // A reader someone's refresh added before survives the next refresh.
    let plist_path = bundle.join("Info.plist");
    let text = std::fs::read_to_string(&plist_path).unwrap();
    let mut readers = plist::readers_of(&text);
    readers.push(ReaderId {
        vendor_id: 0xF00D,
        product_id: 0x0B0B,
        name: "seen once".into(),
    });
    let config = BundleConfig {
        executable: "libferroccid.so".into(),
        log_level: 5,
        driver_options: 0,
        class_driver: false,
    };
    std::fs::write(&plist_path, plist::render(&config, &readers)).unwrap();
    run_ok(
        ferroccid()
            .args(["bundle", "refresh", "--no-rescan", "--drivers-dir"])
            .arg(root.join("drivers")),
    );
    let after = std::fs::read_to_string(&plist_path).unwrap();
    assert!(plist::readers_of(&after)
        .iter()
        .any(|r| (r.vendor_id, r.product_id) == (0xF00D, 0x0B0B)));
    assert_eq!(
        plist::read_integer(&after, "ifdLogLevel"),
        Some(5),
        "log level kept"
    );

    run_ok(
        ferroccid()
            .arg("uninstall")
            .arg("--prefix")
            .arg(root.join("usr/local"))
            .arg("--drivers-dir")
            .arg(root.join("drivers"))
            .arg("--udev-dir")
            .arg(root.join("udev"))
            .arg("--no-rescan"),
    );
    assert!(!root.join("drivers/ifd-ferroccid.bundle").exists());
    assert!(!root.join("udev/92-ferroccid.rules").exists());
    assert!(!root.join("usr/local/bin/ferroccid").exists());
    let _ = std::fs::remove_dir_all(&root);
}

fn pcscd_run(dir: &Path, drivers: &Path, lib: &Path, devices: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/pcscd-run.sh");
    let status = Command::new(&script)
        .arg("start")
        .arg(dir)
        .arg(lib)
        .args(devices)
        .env("DRIVERS_DIR", drivers)
        .status()
        .expect("cannot run pcscd-run.sh");
    assert!(status.success(), "pcscd did not start: {}", dir.display());
    let out = Command::new("opensc-tool")
        .arg("-l")
        .env("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"))
        .output()
        .expect("opensc-tool missing: tests/scripts/install-deps.sh");
    let _ = Command::new(&script).arg("stop").arg(dir).status();
    let log = std::fs::read_to_string(dir.join("pcscd.log")).unwrap();
    format!("{}\n--- log\n{log}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn pcscd_loads_the_installed_bundle() {
    let root = temp("installed-pcscd");
    install(&root);
    let drivers = root.join("drivers");
    let lib = drivers.join("ifd-ferroccid.bundle/Contents/Linux/libferroccid.so");
    let out = pcscd_run(&root.join("pcscd"), &drivers, &lib, &["sim:tpdu"]);
    // The installed library drives a reader and sees its card...
    assert!(
        out.lines()
            .any(|l| l.contains("Yes") && l.contains("ferroccid sim:tpdu 00 00")),
        "{out}"
    );
    // ...and pcscd parsed the bundle in its drivers directory without error.
    assert!(!out.contains("Could not open bundle file"), "{out}");
    assert!(!out.contains("not defined for CFBundleExecutable"), "{out}");

    // Negative control: the same pcscd does complain about a bundle without
    // CFBundleExecutable in that directory, so the check above means something.
    let broken = drivers.join("ifd-broken.bundle/Contents");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("Info.plist"),
        "<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n<dict>\n\t<key>ifdVendorID</key>\n\t<string>0x1234</string>\n</dict>\n</plist>\n",
    )
    .unwrap();
    let out = pcscd_run(&root.join("pcscd2"), &drivers, &lib, &["sim:tpdu"]);
    assert!(
        out.contains("ifd-broken.bundle"),
        "pcscd did not read the bind-mounted drivers directory:\n{out}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Keys udev knows (udev(7)) that the rules may use.
const UDEV_KEYS: &[&str] = &[
    "ACTION",
    "SUBSYSTEM",
    "ENV",
    "ATTR",
    "GROUP",
    "MODE",
    "TAG",
    "RUN",
    "IMPORT",
    "GOTO",
    "LABEL",
];

#[test]
fn udev_rules_parse_and_put_uaccess_on_the_device_node() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("udev/92-ferroccid.rules"),
    )
    .unwrap();
    let mut uaccess_on_device = false;
    let mut refresh_on_interface = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // KEY[{attr}] OP "value", comma separated.
        let mut fields = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            let op_at = rest
                .find(['=', '!', '+', ':'])
                .unwrap_or_else(|| panic!("line {}: no operator in {rest:?}", n + 1));
            let key = rest[..op_at].trim();
            let base = key.split('{').next().unwrap();
            assert!(
                UDEV_KEYS.contains(&base),
                "line {}: unknown key {key}",
                n + 1
            );
            let after = &rest[op_at..];
            let op = ["==", "!=", "+=", ":=", "="]
                .into_iter()
                .find(|op| after.starts_with(op))
                .unwrap_or_else(|| panic!("line {}: bad operator in {after:?}", n + 1));
            let value = after[op.len()..].trim_start();
            assert!(value.starts_with('"'), "line {}: value not quoted", n + 1);
            let end = value[1..].find('"').expect("unterminated value") + 1;
            fields.push((key.to_owned(), op, value[1..end].to_owned()));
            rest = value[end + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else {
                assert!(rest.is_empty(), "line {}: junk {rest:?}", n + 1);
            }
        }
        let has = |k: &str, op: &str, v: &str| {
            fields
                .iter()
                .any(|(fk, fo, fv)| fk == k && *fo == op && fv == v)
        };
        if has("TAG", "+=", "uaccess") {
            assert!(
                has("ENV{DEVTYPE}", "==", "usb_device"),
                "line {}: uaccess not on the device node",
                n + 1
            );
            assert!(
                has("ENV{ID_USB_INTERFACES}", "==", "*:0b????:*"),
                "line {}",
                n + 1
            );
            uaccess_on_device = true;
        }
        if fields
            .iter()
            .any(|(k, _, v)| k == "RUN" && v.contains("bundle refresh"))
        {
            assert!(has("ENV{DEVTYPE}", "==", "usb_interface"));
            // CCID class, or vendor class for pre-standard readers whose
            // descriptor `bundle refresh` checks itself.
            assert!(
                has("ATTR{bInterfaceClass}", "==", "0b")
                    || has("ATTR{bInterfaceClass}", "==", "ff"),
                "line {}: refresh on an interface that cannot be a reader",
                n + 1
            );
            refresh_on_interface |= has("ATTR{bInterfaceClass}", "==", "0b");
        }
    }
    assert!(uaccess_on_device && refresh_on_interface);

    // udev's own parser, on the installed (placeholders filled) file.
    // Debian 12's udevadm (systemd 252) has no `verify`; `udevadm test`
    // reads every rules file and reports each bad line as FILE:LINE. In a
    // mount namespace, a temporary directory stands in for
    // /etc/udev/rules.d, with a deliberately bad file as control.
    Command::new("udevadm")
        .arg("--version")
        .output()
        .expect("udevadm missing: tests/scripts/install-deps.sh installs Debian's udev");
    let root = temp("udev-verify");
    install(&root);
    let rules_dir = root.join("udev");
    std::fs::write(rules_dir.join("93-control.rules"), "FOO==\"bar\"\n").unwrap();
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            "mount --bind \"$1\" /etc/udev/rules.d && exec udevadm test /sys/devices/virtual/net/lo",
        )
        .arg("sh")
        .arg(&rules_dir)
        .output()
        .expect("unshare missing");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Reading rules file: /etc/udev/rules.d/92-ferroccid.rules"),
        "{text}"
    );
    assert!(
        text.contains("93-control.rules:1 Invalid key"),
        "control not flagged:\n{text}"
    );
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("92-ferroccid.rules:"))
        // Debian's pcscd runs as root and creates no pcscd group; other
        // distributions have it. udev ignores the assignment then.
        .filter(|l| !l.contains("Unknown group 'pcscd'"))
        .collect();
    assert!(complaints.is_empty(), "udev rejects: {complaints:#?}");
    let _ = std::fs::remove_dir_all(&root);
}
