//! `ferroccid bundle`, `bundle refresh`, `install`, `uninstall` into a
//! temporary root; a real pcscd loading the installed bundle from a
//! drivers directory (bind-mounted over /usr/lib/pcsc/drivers in its own
//! mount namespace); the udev rules checked by `udevadm verify` and line by
//! line. Fails loudly when pcscd or udevadm is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroccid_ifd::plist::{self, BundleConfig, ReaderId};

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
    // The `ferroccid-ifd` cdylib, built with the `sim` feature by
    // `cargo build --workspace --features ferroccid-ifd/sim` (tests/run.sh).
    Path::new(env!("CARGO_BIN_EXE_ferroccid")).with_file_name("libferroccid_ifd.so")
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
    // The command time ceiling an administrator set is kept too, by a
    // refresh and by a new install.
    std::fs::write(
        &plist_path,
        plist::with_string_key(&after, "ifdFerroccidCommandTimeout", "300"),
    )
    .unwrap();
    let out = refresh_with(
        &root,
        "ceiling",
        serde_json::json!([interface(0xFEDA, 7, "new")]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    install(&root);
    let after = std::fs::read_to_string(&plist_path).unwrap();
    assert_eq!(
        plist::read_string(&after, "ifdFerroccidCommandTimeout").as_deref(),
        Some("300")
    );
    assert!(name_of(&plist::readers_of(&after), 0xFEDA, 7).is_some());

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
    let script =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/scripts/pcscd-run.sh");
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
fn udev_rules_parse_and_give_the_device_node_to_pcscd_without_uaccess() {
    let text = std::fs::read_to_string(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("udev/92-ferroccid.rules"),
    )
    .unwrap();
    let mut group_on_device = false;
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
        // No uaccess: usbfs access is per device, so it would hand the
        // console user every interface of a composite device (FIDO, OTP,
        // firmware update) and the CCID interface ahead of pcscd.
        assert!(
            !fields
                .iter()
                .any(|(k, _, v)| k == "TAG" && v.contains("uaccess")),
            "line {}: uaccess tag",
            n + 1
        );
        if has("GROUP", "=", "pcscd") {
            assert!(
                has("ENV{DEVTYPE}", "==", "usb_device"),
                "line {}: group not on the device node",
                n + 1
            );
            assert!(
                has("ENV{ID_USB_INTERFACES}", "==", "*:0b????:*"),
                "line {}",
                n + 1
            );
            assert!(has("MODE", "=", "0660"), "line {}", n + 1);
            group_on_device = true;
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
    assert!(group_on_device && refresh_on_interface);

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

/// A valid 54-byte CCID class descriptor (the simulator's).
fn good_descriptor() -> Vec<u8> {
    ferroccid_sim::register();
    let opened = ferroccid::open("sim").unwrap();
    let descriptor = opened.transport.info().class_descriptor.clone();
    descriptor.expect("the simulator has a class descriptor")
}

/// Runs `bundle refresh` on `root` as udev would, with `interfaces` (JSON
/// objects) standing in for the USB buses and the restart commands logged
/// to `root/restarts`.
fn refresh_with(root: &Path, name: &str, interfaces: serde_json::Value) -> std::process::Output {
    let list = root.join(format!("usb-{name}.json"));
    std::fs::write(&list, interfaces.to_string()).unwrap();
    ferroccid()
        .args(["bundle", "refresh", "--quiet", "--drivers-dir"])
        .arg(root.join("drivers"))
        .arg("--usb-list")
        .arg(&list)
        .arg("--restart-log")
        .arg(root.join("restarts"))
        .output()
        .expect("cannot run ferroccid")
}

fn interface(vendor_id: u16, product_id: u16, product: &str) -> serde_json::Value {
    serde_json::json!({
        "vendor_id": vendor_id,
        "product_id": product_id,
        "product": product,
        "class_descriptor": good_descriptor(),
    })
}

fn listed(root: &Path) -> Vec<ReaderId> {
    let text =
        std::fs::read_to_string(root.join("drivers/ifd-ferroccid.bundle/Contents/Info.plist"))
            .unwrap();
    // The three arrays stay in step (a torn write would not).
    let vendors = plist::read_array(&text, "ifdVendorID").len();
    assert_eq!(vendors, plist::read_array(&text, "ifdProductID").len());
    assert_eq!(vendors, plist::read_array(&text, "ifdFriendlyName").len());
    assert!(text.ends_with("</plist>\n"), "torn Info.plist");
    plist::readers_of(&text)
}

fn name_of(readers: &[ReaderId], vendor_id: u16, product_id: u16) -> Option<String> {
    readers
        .iter()
        .find(|r| (r.vendor_id, r.product_id) == (vendor_id, product_id))
        .map(|r| r.name.clone())
}

#[test]
fn refresh_and_install_never_follow_planted_symlinks() {
    let root = temp("symlinks");
    install(&root);
    let contents = root.join("drivers/ifd-ferroccid.bundle/Contents");
    let victim = root.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // The fixed temporary names of the old code, and a few guesses more.
    let planted = [
        contents.join("Info.plist.new"),
        contents.join("Linux/.libferroccid.so.new"),
        root.join("usr/local/bin/.ferroccid.new"),
    ];
    for link in &planted {
        std::os::unix::fs::symlink(&victim, link).unwrap();
    }
    // A refresh that has something to write: the list changed on disk.
    let plist_path = contents.join("Info.plist");
    let text = std::fs::read_to_string(&plist_path).unwrap();
    std::fs::write(&plist_path, text.replace("\t<key>", "  <key>")).unwrap();
    run_ok(
        ferroccid()
            .args(["bundle", "refresh", "--no-rescan", "--drivers-dir"])
            .arg(root.join("drivers")),
    );
    install(&root);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for link in &planted {
        let meta = std::fs::symlink_metadata(link).unwrap();
        assert!(meta.file_type().is_symlink(), "{} replaced", link.display());
    }
    for file in [
        plist_path.clone(),
        contents.join("Linux/libferroccid.so"),
        root.join("usr/local/bin/ferroccid"),
        root.join("udev/92-ferroccid.rules"),
    ] {
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{} is not a file",
            file.display()
        );
    }
    assert!(std::fs::read_to_string(&plist_path)
        .unwrap()
        .contains("\t<key>ifdVendorID</key>"));
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&contents)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn concurrent_refreshes_keep_every_reader() {
    let root = temp("concurrent");
    install(&root);
    const RUNS: u16 = 12;
    for round in 0..3u16 {
        let children: Vec<_> = (0..RUNS)
            .map(|i| {
                let list = root.join(format!("usb-{round}-{i}.json"));
                let reader = interface(0xFEE0 + round, 0x0100 + i, &format!("reader {round}.{i}"));
                std::fs::write(&list, serde_json::json!([reader]).to_string()).unwrap();
                ferroccid()
                    .args([
                        "bundle",
                        "refresh",
                        "--quiet",
                        "--no-rescan",
                        "--drivers-dir",
                    ])
                    .arg(root.join("drivers"))
                    .arg("--usb-list")
                    .arg(&list)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let readers = listed(&root);
        for i in 0..RUNS {
            assert_eq!(
                name_of(&readers, 0xFEE0 + round, 0x0100 + i).as_deref(),
                Some(format!("reader {round}.{i}").as_str()),
                "round {round}: reader {i} lost"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_device_cannot_rename_a_listed_reader() {
    let root = temp("rename");
    install(&root);
    let out = refresh_with(
        &root,
        "first",
        serde_json::json!([interface(0xFEDC, 0x0001, "Bench reader")]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        name_of(&listed(&root), 0xFEDC, 0x0001).as_deref(),
        Some("Bench reader")
    );
    // Another device (or the same, reflashed) reports the same VID:PID.
    let out = refresh_with(
        &root,
        "second",
        serde_json::json!([interface(0xFEDC, 0x0001, "Totally Legit Bank Reader")]),
    );
    assert!(out.status.success());
    assert_eq!(
        name_of(&listed(&root), 0xFEDC, 0x0001).as_deref(),
        Some("Bench reader")
    );
    // libccid's names are not taken over either.
    let libccid =
        std::fs::read_to_string("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist")
            .unwrap();
    let known = plist::readers_of(&libccid)[0].clone();
    let out = refresh_with(
        &root,
        "third",
        serde_json::json!([interface(known.vendor_id, known.product_id, "renamed")]),
    );
    assert!(out.status.success());
    assert_eq!(
        name_of(&listed(&root), known.vendor_id, known.product_id),
        Some(known.name)
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn refresh_adds_a_bounded_number_of_readers_and_only_valid_ones() {
    let root = temp("growth");
    install(&root);
    let libccid =
        std::fs::read_to_string("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist")
            .unwrap();
    // The readers beyond libccid's and the packaged list of known readers.
    let known: std::collections::HashSet<(u16, u16)> = plist::readers_of(&libccid)
        .iter()
        .map(|r| (r.vendor_id, r.product_id))
        .chain(
            include_str!("../data/known-readers.tsv")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    (
                        u16::from_str_radix(f[0], 16).unwrap(),
                        u16::from_str_radix(f[1], 16).unwrap(),
                    )
                }),
        )
        .collect();
    let extra = |root: &Path| {
        listed(root)
            .iter()
            .filter(|r| !known.contains(&(r.vendor_id, r.product_id)))
            .count()
    };
    let before = extra(&root);
    // Interfaces whose class descriptor is missing or does not parse.
    let mut broken = good_descriptor();
    broken[0] = 0x35;
    let out = refresh_with(
        &root,
        "invalid",
        serde_json::json!([
            {"vendor_id": 0xFEEE, "product_id": 1, "product": "none", "class_descriptor": null},
            {"vendor_id": 0xFEEE, "product_id": 2, "product": "bad", "class_descriptor": broken},
            {"vendor_id": 0xFEEE, "product_id": 3, "product": "short", "class_descriptor": [0x36, 0x21, 0x10]},
        ]),
    );
    assert!(out.status.success());
    assert_eq!(
        extra(&root),
        before,
        "an interface without a valid descriptor was listed"
    );
    // A device that reports a new VID:PID on every plug: 3 × 100 plugs.
    for batch in 0..3u16 {
        let plugs: Vec<_> = (0..100u16)
            .map(|i| interface(0xFEF0, batch * 100 + i, "chameleon"))
            .collect();
        let out = refresh_with(
            &root,
            &format!("batch{batch}"),
            serde_json::Value::Array(plugs),
        );
        assert!(out.status.success());
    }
    let added = extra(&root);
    assert_eq!(
        added,
        64.max(before),
        "the list holds at most 64 readers beyond the known ones"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_changed_reader_list_queues_one_restart_that_waits_for_pcscd_to_be_idle() {
    let root = temp("restarts");
    install(&root);
    let restarts = || {
        std::fs::read_to_string(root.join("restarts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Nothing new: no restart.
    let out = refresh_with(&root, "none", serde_json::json!([]));
    assert!(out.status.success());
    assert!(restarts().is_empty());
    // A known reader model (QEMU's, listed by the packaged list): no restart.
    let out = refresh_with(
        &root,
        "known",
        serde_json::json!([interface(0x08E6, 0x4433, "q")]),
    );
    assert!(out.status.success());
    assert!(restarts().is_empty(), "{:?}", restarts());
    // A new reader: one restart queued, as a systemd unit that waits for
    // pcscd to have no client.
    let out = refresh_with(&root, "a", serde_json::json!([interface(0xFED0, 1, "a")]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = restarts();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with(
            "systemd-run --no-block --collect --quiet --unit ferroccid-pcscd-restart "
        ) && log[0].ends_with(" bundle restart-pcscd --when-idle"),
        "{}",
        log[0]
    );
    let readers = listed(&root);
    assert!(name_of(&readers, 0xFED0, 1).is_some());
    let _ = std::fs::remove_dir_all(&root);
}

/// The VID:PIDs of the Debian libccid's Info.plist.
fn libccid_ids() -> std::collections::HashSet<(u16, u16)> {
    let text = std::fs::read_to_string("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist")
        .expect("libccid's Info.plist (Debian package libccid, pulled in by pcscd)");
    plist::readers_of(&text)
        .iter()
        .map(|r| (r.vendor_id, r.product_id))
        .collect()
}

#[test]
fn prefer_libccid_leaves_out_libccids_readers_and_prefer_ferroccid_takes_them_back() {
    let root = temp("prefer");
    install(&root);
    let libccid = libccid_ids();
    let ours = |root: &Path| -> std::collections::HashSet<(u16, u16)> {
        listed(root)
            .iter()
            .map(|r| (r.vendor_id, r.product_id))
            .collect()
    };
    assert!(
        libccid.is_subset(&ours(&root)),
        "ferroccid is preferred by default"
    );
    let out = refresh_with(
        &root,
        "x",
        serde_json::json!([interface(0xFED1, 7, "bench")]),
    );
    assert!(out.status.success());
    let prefer = |driver: &str| {
        run_ok(
            ferroccid()
                .args(["bundle", "prefer", driver, "--no-rescan", "--drivers-dir"])
                .arg(root.join("drivers")),
        )
    };
    let said = prefer("libccid");
    assert!(said.contains("pcscd uses libccid"), "{said}");
    let now = ours(&root);
    assert!(
        now.is_disjoint(&libccid),
        "a reader libccid lists is still ours"
    );
    assert!(
        now.contains(&(0xFED1, 7)),
        "a reader only ferroccid knew was dropped"
    );
    // QEMU's reader is libccid's: the preference survives a refresh, and a
    // plugged reader libccid lists is not added back.
    let out = refresh_with(
        &root,
        "y",
        serde_json::json!([interface(0x08E6, 0x4433, "q")]),
    );
    assert!(out.status.success());
    assert!(ours(&root).is_disjoint(&libccid));
    let text =
        std::fs::read_to_string(root.join("drivers/ifd-ferroccid.bundle/Contents/Info.plist"))
            .unwrap();
    assert_eq!(
        plist::read_string(&text, "ifdFerroccidPrefer").as_deref(),
        Some("libccid")
    );
    // And back.
    prefer("ferroccid");
    let now = ours(&root);
    assert!(libccid.is_subset(&now));
    assert!(now.contains(&(0xFED1, 7)));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_symlinked_info_plist_is_written_at_its_target_and_stays_a_symlink() {
    // The Debian package's layout: Contents/Info.plist -> a state file the
    // first refresh creates.
    let root = temp("symlinked");
    let contents = root.join("drivers/ifd-ferroccid.bundle/Contents");
    std::fs::create_dir_all(contents.join("Linux")).unwrap();
    let state = root.join("var/lib/ferroccid");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink(state.join("Info.plist"), contents.join("Info.plist")).unwrap();
    let out = refresh_with(
        &root,
        "first",
        serde_json::json!([interface(0xFED2, 1, "new")]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::symlink_metadata(contents.join("Info.plist")).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "the packaged symlink was replaced"
    );
    let readers = listed(&root);
    assert!(name_of(&readers, 0xFED2, 1).is_some());
    assert!(libccid_ids()
        .iter()
        .all(|&(v, p)| name_of(&readers, v, p).is_some()));
    assert!(state.join(".ferroccid.lock").exists());
    // A target directory others may write is refused.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = refresh_with(
        &root,
        "second",
        serde_json::json!([interface(0xFED2, 2, "more")]),
    );
    assert!(
        !out.status.success(),
        "followed a link into a world-writable directory"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("others may write"));
    let _ = std::fs::remove_dir_all(&root);
}
