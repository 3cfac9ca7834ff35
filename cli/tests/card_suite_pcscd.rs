//! The card service-layer suite (`card_suite/mod.rs`) through a real
//! pcscd: Debian's pcscd loads ferroccid's IFD bundle, whose readers are
//! simulated CCID readers (`sim:` device names); the service layer talks
//! to them through libpcsclite ([`ferroccid_card::PcscChannel`]).
//!
//! Two pcscd instances, started through `tests/scripts/pcscd-run.sh`:
//! one whose readers hold a T=1 card (extended APDUs by T=1 chaining),
//! one with a T=0 card (short APDUs; 61xx/6Cxx left to the service
//! layer, since the bundle does no automatic GET RESPONSE). Every suite
//! test takes a reader of its own with a fresh card, described by a JSON
//! profile (GemPC Twin descriptor, seeded GET CHALLENGE); cards are moved
//! through the simulator's control files (`sim/src/control.rs`).
//!
//! Fails loudly — never skips — when pcscd cannot be started.

#[macro_use]
#[path = "../../card/tests/card_suite/mod.rs"]
mod suite;

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::pcsc::{Context, ReaderState, Scope, ShareMode, State};
use ferroccid_card::*;
use ferroccid_card::{PcscChannel, PcscMonitor};
use ferroccid_sim::card::CardConfig;
use suite::{Fixture, SEED};

/// The GemPC Twin's class descriptor (TPDU level, T=0 and T=1), as in the
/// simulator's built-in `tpdu` profile.
const GEMPC_TWIN: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01";

/// Readers of each pcscd that the suite tests take one each of (the
/// suite has 11 tests; the T=1 instance has 4 more, and the monitor's
/// SCardGetStatusChange takes at most 16 reader states, the PnP one
/// included).
const SUITE_READERS: usize = 11;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    T1,
    T0,
}

impl Kind {
    fn preset(self) -> &'static str {
        match self {
            Kind::T1 => "t1",
            Kind::T0 => "t0",
        }
    }
    fn card(self) -> CardConfig {
        match self {
            Kind::T1 => CardConfig::t1(),
            Kind::T0 => CardConfig::t0(),
        }
    }
}

/// One running pcscd.
struct Pcscd {
    control: PathBuf,
    socket: PathBuf,
    /// Device names of the readers, in reader.conf order.
    devices: Vec<String>,
    next_suite_reader: AtomicUsize,
}

fn library() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target")
        });
    // Built with the `sim` feature by `cargo build --workspace
    // --features ferroccid-ifd/sim` (tests/run.sh).
    let lib = target.join("debug/libferroccid_ifd.so");
    assert!(
        lib.exists(),
        "{} missing: cargo build --workspace --features ferroccid-ifd/sim (pcscd loads it)",
        lib.display()
    );
    lib
}

/// A JSON simulator profile with one `kind` card seeded with [`SEED`].
fn write_profile(path: &Path, kind: Kind) {
    let json = format!(
        r#"{{
  "name": "suite-{preset}",
  "modelled_on": "Gemalto GemPC Twin (GemPCTwin.txt) with the demo card",
  "vid_pid": "08E6:3437",
  "manufacturer": "Gemplus",
  "product": "USB SmartCard Reader",
  "descriptor": "{GEMPC_TWIN}",
  "cards": [{{ "preset": "{preset}", "rng_seed": {SEED} }}]
}}"#,
        preset = kind.preset()
    );
    std::fs::write(path, json).unwrap();
}

/// Starts a pcscd with `SUITE_READERS` suite readers and `extra` named
/// readers, each with a fresh `kind` card.
fn start_pcscd(kind: Kind, extra: &[&str]) -> Pcscd {
    // Short paths: the device name becomes part of the PC/SC reader name.
    let dir = std::env::temp_dir().join(format!("fcs-{}-{}", kind.preset(), std::process::id()));
    let control = dir.join("ctl");
    let profiles = dir.join("p");
    std::fs::create_dir_all(&control).unwrap();
    std::fs::create_dir_all(&profiles).unwrap();
    let names: Vec<String> = (0..SUITE_READERS)
        .map(|i| format!("s{i}"))
        .chain(extra.iter().map(|e| e.to_string()))
        .collect();
    let devices: Vec<String> = names
        .iter()
        .map(|name| {
            if name.starts_with("sim:") {
                // A built-in simulator profile, used as it is.
                return name.clone();
            }
            let path = profiles.join(format!("{name}.json"));
            write_profile(&path, kind);
            format!("sim:{}", path.display())
        })
        .collect();
    let script =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/scripts/pcscd-run.sh");
    let status = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .arg(library())
        .args(&devices)
        .env("FERROCCID_SIM_CONTROL", &control)
        .env("WATCH_PID", std::process::id().to_string())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "pcscd did not start (see {}/pcscd.log); is pcscd installed (tests/scripts/install-deps.sh)?",
        dir.display()
    );
    Pcscd {
        socket: dir.join("run/pcscd.comm"),
        control,
        devices,
        next_suite_reader: AtomicUsize::new(0),
    }
}

/// The pcscd of `kind`. libpcsclite reads `PCSCLITE_CSOCK_NAME` once per
/// process, so one process talks to one pcscd: the T=0 instance is
/// started and used by a child process (see [`t0_card_suite`]).
fn pcscd(kind: Kind) -> &'static Pcscd {
    static T1: OnceLock<Pcscd> = OnceLock::new();
    static T0: OnceLock<Pcscd> = OnceLock::new();
    let cell = match kind {
        Kind::T1 => &T1,
        Kind::T0 => &T0,
    };
    cell.get_or_init(|| {
        let pcscd = match kind {
            Kind::T1 => start_pcscd(kind, &["lock", "events", "mon", "sim:pinpad"]),
            Kind::T0 => start_pcscd(kind, &[]),
        };
        std::env::set_var("PCSCLITE_CSOCK_NAME", &pcscd.socket);
        pcscd
    })
}

/// The PC/SC name of the reader for `device` ("ferroccid DEVICE 00 00").
fn reader_name(device: &str) -> String {
    let ctx = Context::establish(Scope::User).expect("cannot reach the test pcscd");
    let wanted = format!("ferroccid {device} ");
    let start = Instant::now();
    loop {
        let readers = ctx.list_readers_owned().unwrap_or_default();
        if let Some(r) = readers
            .iter()
            .find(|r| r.to_string_lossy().starts_with(&wanted))
        {
            return r.to_string_lossy().into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "reader for {device} not listed: {readers:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The control key of a device name (`sim/src/control.rs`): the profile
/// spec with `/` made file-name safe.
fn control_file(pcscd: &Pcscd, device: &str) -> PathBuf {
    let key = device.trim_start_matches("sim:").replace('/', "_");
    pcscd.control.join(format!("{key}.absent"))
}

/// Waits until pcscd reports the reader in `want` (and, for PRESENT, with
/// the card powered: an ATR and not mute).
fn wait_for_state(reader: &str, want: State) {
    let ctx = Context::establish(Scope::User).unwrap();
    let mut states = [ReaderState::new(
        CString::new(reader).unwrap(),
        State::UNAWARE,
    )];
    let start = Instant::now();
    let limit = Duration::from_secs(3);
    loop {
        let _ = ctx.get_status_change(Duration::from_millis(100), &mut states);
        let s = states[0].event_state();
        let reached = s.contains(want)
            && (want != State::PRESENT
                || (!states[0].atr().is_empty() && !s.intersects(State::MUTE)));
        if reached {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{reader}: {want:?} not reached within {limit:?} (state {s:?})"
        );
        states[0].sync_current_state();
    }
}

// ---------------------------------------------------------------- fixture

struct PcscdFixture {
    kind: Kind,
    device: String,
    reader: String,
    control: PathBuf,
}

impl PcscdFixture {
    /// A reader of the `kind` pcscd that no other test has used.
    fn new(kind: Kind) -> Self {
        let pcscd = pcscd(kind);
        let i = pcscd.next_suite_reader.fetch_add(1, Ordering::SeqCst);
        assert!(
            i < SUITE_READERS,
            "more suite tests than SUITE_READERS ({SUITE_READERS}): raise it"
        );
        Self::on(kind, pcscd.devices[i].clone())
    }

    fn named(kind: Kind, name: &str) -> Self {
        let pcscd = pcscd(kind);
        let device = pcscd
            .devices
            .iter()
            .find(|d| d.ends_with(&format!("/{name}.json")))
            .unwrap_or_else(|| panic!("no reader {name}"))
            .clone();
        Self::on(kind, device)
    }

    fn on(kind: Kind, device: String) -> Self {
        let pcscd = pcscd(kind);
        let reader = reader_name(&device);
        wait_for_state(&reader, State::PRESENT);
        PcscdFixture {
            kind,
            control: control_file(pcscd, &device),
            device,
            reader,
        }
    }
}

impl Fixture for PcscdFixture {
    fn attach_with(&self, options: AttachOptions) -> CardManager {
        CardManager::attach_pcsc(&self.reader, ShareMode::Shared, options)
            .unwrap_or_else(|e| panic!("attach {} ({}): {e}", self.reader, self.device))
    }
    fn remove_card(&self) {
        std::fs::write(&self.control, b"").unwrap();
        wait_for_state(&self.reader, State::EMPTY);
    }
    fn insert_card(&self) {
        std::fs::remove_file(&self.control).unwrap();
        wait_for_state(&self.reader, State::PRESENT);
    }
    fn atr(&self) -> Vec<u8> {
        self.kind.card().atr()
    }
    fn reader_name(&self) -> String {
        self.reader.clone()
    }
    fn apdu_count(&self) -> Option<usize> {
        None
    }
    fn extended(&self) -> bool {
        self.kind == Kind::T1
    }
    fn unpower_stays(&self) -> bool {
        false
    }
    /// pcsc-lite implements SCARD_EJECT_CARD as a CT-BCS "eject ICC"
    /// through the IFD handler's old v2 control entry, which a v3 bundle
    /// such as ferroccid's does not have: the card is left as it is.
    fn eject_acts_as(&self) -> Disposition {
        Disposition::Leave
    }
    fn connected_state(&self) -> CardState {
        CardState::Negotiable
    }
}

suite!(t1_card, PcscdFixture::new(Kind::T1));

// ---------------------------------------------------------------- T=0 card

/// Set in the child that runs the suite against the T=0 pcscd.
const T0_CHILD_ENV: &str = "FERROCCID_CARD_SUITE_PCSCD_T0";

/// The suite, each test on a reader of its own; failures collected by name.
fn run_whole_suite(kind: Kind) -> Vec<String> {
    type SuiteFn = fn(&dyn Fixture);
    let tests: [(&str, SuiteFn); SUITE_READERS] = [
        ("select_and_fcp", suite::select_and_fcp),
        ("read_binary", suite::read_binary),
        ("update_binary", suite::update_binary),
        ("records", suite::records),
        (
            "pin_verify_change_block_reset",
            suite::pin_verify_change_block_reset,
        ),
        ("authentication", suite::authentication),
        ("status_reconnect_detach", suite::status_reconnect_detach),
        ("removal_and_reconnect", suite::removal_and_reconnect),
        ("lock_between_attachments", suite::lock_between_attachments),
        (
            "events_from_threads_in_order",
            suite::events_from_threads_in_order,
        ),
        (
            "file_management_and_data_objects",
            suite::file_management_and_data_objects,
        ),
    ];
    let threads: Vec<_> = tests
        .into_iter()
        .map(|(name, test)| {
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || test(&PcscdFixture::new(kind)))
                .unwrap();
            (name, thread)
        })
        .collect();
    threads
        .into_iter()
        .filter_map(|(name, thread)| thread.join().is_err().then(|| name.to_owned()))
        .collect()
}

/// The child half of [`t0_card_suite`]; does nothing when run normally.
#[test]
fn t0_card_suite_child() {
    if std::env::var_os(T0_CHILD_ENV).is_none() {
        return;
    }
    let failed = run_whole_suite(Kind::T0);
    assert!(failed.is_empty(), "failed on the T=0 card: {failed:?}");
    println!("T0 SUITE PASSED");
}

/// The whole suite on T=0 cards through their own pcscd, in a child
/// process (libpcsclite talks to one pcscd per process).
#[test]
fn t0_card_suite() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "t0_card_suite_child", "--nocapture"])
        .env(T0_CHILD_ENV, "1")
        .env_remove("PCSCLITE_CSOCK_NAME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("T0 SUITE PASSED"),
        "T=0 suite through pcscd failed:\n{stdout}\n{stderr}"
    );
}

// ---------------------------------------------------------------- processes

/// Reader name for the child of `two_processes_compete_for_the_lock`.
const LOCK_ENV: &str = "FERROCCID_CARD_SUITE_PCSCD_LOCK";

/// The child half of `two_processes_compete_for_the_lock`: locks the card
/// through its own PC/SC context for 600 ms. Does nothing when run normally.
#[test]
fn lock_child_process() {
    let Ok(reader) = std::env::var(LOCK_ENV) else {
        return;
    };
    // PCSCLITE_CSOCK_NAME comes from the parent.
    let card = CardManager::attach_pcsc(&reader, ShareMode::Shared, AttachOptions::default())
        .expect("the child attaches");
    let lock = card.lock(Some(Duration::from_secs(5))).unwrap();
    card.file_access().select_fid(0x2F00).unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    card.file_access().select_fid(0x3F00).unwrap();
    lock.unlock(Disposition::Leave).unwrap();
    card.detach(Disposition::Leave).unwrap();
}

#[test]
fn two_processes_compete_for_the_lock() {
    let fx = PcscdFixture::named(Kind::T1, "lock");
    // Attach before the child locks: under another handle's transaction
    // pcsc-lite makes every call wait, SCardStatus of the attach included.
    let card = fx.attach(&EventBus::new());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_ENV, &fx.reader)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(|l| l.ok())
            .any(|l| l.contains("LOCKED")),
        "the child never took the lock"
    );
    let start = Instant::now();
    assert_eq!(
        card.lock(Some(Duration::from_millis(100))).err(),
        Some(Error::Channel(ChannelError::Timeout))
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    let start = Instant::now();
    let lock = card
        .lock(Some(Duration::from_secs(10)))
        .expect("granted once the child lets go");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "it waited for the child ({:?})",
        start.elapsed()
    );
    // Under our lock the card answers us.
    let files = card.file_access();
    assert_eq!(
        files.select_fid(0x2F00).unwrap().and_then(|f| f.fid),
        Some(0x2F00)
    );
    lock.unlock(Disposition::Leave).unwrap();
    assert!(child.wait().unwrap().success(), "the child failed");
}

// ---------------------------------------------------------------- events

fn for_reader(events: Vec<Event>, reader: &str) -> Vec<Event> {
    events.into_iter().filter(|e| e.reader == reader).collect()
}

/// Card movements seen by SCardGetStatusChange arrive on the bus once
/// each, in order, including a removal and re-insertion quicker than one
/// round of the monitor.
#[test]
fn monitor_publishes_card_events_in_order() {
    let fx = PcscdFixture::named(Kind::T1, "events");
    let bus = EventBus::new();
    let events = bus.subscribe();
    let monitor = PcscMonitor::start(bus.clone()).expect("monitor starts");
    fx.remove_card();
    fx.insert_card();
    fx.remove_card();
    fx.insert_card();
    // Out and back in within 150 ms: three simulator polls, fewer than
    // the monitor may need to look.
    std::fs::write(&fx.control, b"").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    std::fs::remove_file(&fx.control).unwrap();
    wait_for_state(&fx.reader, State::PRESENT);
    // The monitor may run behind on a busy machine: wait for six events
    // (at most 10 s), then a little longer for any duplicate.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 6 && Instant::now() < deadline {
        if let Some(event) = events.recv_timeout(Duration::from_millis(100)) {
            got.extend(for_reader(vec![event], &fx.reader));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    got.extend(for_reader(events.drain(), &fx.reader));
    drop(monitor);
    let kinds: Vec<EventKind> = got.iter().map(|e| e.kind).collect();
    use EventKind::{CardInserted as In, CardRemoved as Out};
    assert_eq!(kinds, [Out, In, Out, In, Out, In], "{got:?}");
    assert!(
        got.windows(2).all(|w| w[0].seq < w[1].seq),
        "in bus order: {got:?}"
    );
    // Nothing after the monitor is dropped.
    fx.remove_card();
    fx.insert_card();
    assert!(for_reader(events.drain(), &fx.reader).is_empty());
}

/// A PcscChannel made from an open `pcsc::Card` (AttachByHandle) sees the
/// same card and reports its reader's limits.
#[test]
fn attach_by_pcsc_handle() {
    let fx = PcscdFixture::named(Kind::T1, "lock");
    let ctx = Context::establish(Scope::User).unwrap();
    let card = ctx
        .connect(
            &CString::new(fx.reader.clone()).unwrap(),
            ShareMode::Shared,
            ::pcsc::Protocols::ANY,
        )
        .unwrap();
    let channel = PcscChannel::from_card(card, ShareMode::Shared).unwrap();
    assert_eq!(channel.reader_name(), fx.reader);
    // T=1 through a TPDU reader: the bundle announces dwMaxAPDUDataSize
    // 65536, so extended APDUs are carried.
    assert!(channel.supports_extended());
    assert!(channel.max_command_len() > 261);
    assert!(!channel.has_pinpad(), "the GemPC Twin has no pinpad");
    let manager = CardManager::attach_by_handle(channel, AttachOptions::default()).unwrap();
    let status = manager.status().unwrap();
    assert_eq!(status.atr, CardConfig::t1().atr());
    assert_eq!(status.protocol, Some(Protocol::T1));
    assert!(status.present && status.powered);
    manager.detach(Disposition::Leave).unwrap();
}

// ---------------------------------------------------------------- by name, CLI

/// AttachByIFD with a `pcsc:` name goes through pcscd: the full PC/SC
/// name, or a part of it only one reader has.
#[test]
fn attach_by_ifd_with_a_pcsc_name() {
    let fx = PcscdFixture::named(Kind::T1, "lock");
    for name in [format!("pcsc:{}", fx.reader), "pcsc:/lock.json".to_owned()] {
        let card = CardManager::attach_by_ifd(&name, AttachOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = card.status().unwrap();
        assert_eq!(status.reader, fx.reader, "{name}");
        assert_eq!(status.atr, CardConfig::t1().atr());
        assert_eq!(status.protocol, Some(Protocol::T1));
        card.detach(Disposition::Leave).unwrap();
    }
    assert_eq!(
        CardManager::attach_by_ifd("pcsc:no such reader", AttachOptions::default()).err(),
        Some(Error::Channel(ChannelError::UnknownReader(
            "no such reader".into()
        )))
    );
    // Every reader of this pcscd has "ferroccid" in its name.
    assert!(matches!(
        CardManager::attach_by_ifd("pcsc:ferroccid", AttachOptions::default()),
        Err(Error::Channel(ChannelError::AmbiguousReader(names))) if names.len() > 1
    ));
    // Without the prefix, a PC/SC name (or a part only it has) is found
    // among the PC/SC readers too.
    for name in [fx.reader.clone(), "/lock.json".to_owned()] {
        let card = CardManager::attach_by_ifd(&name, AttachOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(card.status().unwrap().reader, fx.reader, "{name}");
        card.detach(Disposition::Leave).unwrap();
    }
}

/// `ferroccid monitor --reader pcsc:PART` prints the reader and its card
/// first, then each card movement as it happens.
#[test]
fn cli_monitor_over_pcsc() {
    let fx = PcscdFixture::named(Kind::T1, "mon");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args(["monitor", "--reader", "pcsc:/mon.json", "--count", "4"])
        .env("PCSCLITE_CSOCK_NAME", &pcscd(Kind::T1).socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferroccid runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || {
        lines
            .next()
            .expect("monitor output ended early")
            .expect("readable output")
    };
    let first = next();
    assert!(
        first.contains(&fx.reader) && first.ends_with("ReaderAdded"),
        "{first}"
    );
    let second = next();
    assert!(second.ends_with("CardInserted"), "{second}");
    fx.remove_card();
    let third = next();
    assert!(
        third.contains(&fx.reader) && third.ends_with("CardRemoved"),
        "{third}"
    );
    fx.insert_card();
    let fourth = next();
    assert!(fourth.ends_with("CardInserted"), "{fourth}");
    let status = child.wait().unwrap();
    assert!(status.success(), "monitor exit status {status}");
}

// ---------------------------------------------------------------- pinpad

/// PIN entry on the simulated GemPC Pinpad through pcscd: the part 10
/// features FEATURE_VERIFY_PIN_DIRECT and FEATURE_MODIFY_PIN_DIRECT, with
/// the PIN typed by the pad (the profile's user types 123456, the demo
/// card's PIN, and 654321 as the new one).
#[test]
fn pinpad_verify_and_change_over_pcsc() {
    use ferroccid::ccid::secure::{PinModify, PinVerify};
    let fx = PcscdFixture::on(Kind::T1, "sim:pinpad".to_owned());
    let bus = EventBus::new();
    let events = bus.subscribe();
    let card = fx.attach(&bus);
    let pins = card.verifier();
    assert!(
        pins.has_pinpad().unwrap(),
        "FEATURE_VERIFY_PIN_DIRECT listed"
    );
    let verify_apdu = [0x00, 0x20, 0x00, 0x81, 0x06, 0, 0, 0, 0, 0, 0];
    let verify = PinVerify {
        timeout: 0,
        format_string: 0x82,
        pin_block_string: 0x06,
        pin_length_format: 0,
        pin_max_extra_digit: 0x0408,
        entry_validation_condition: 0x02,
        number_message: 0x01,
        lang_id: 0x0409,
        msg_index: 0,
        teo_prologue: [0; 3],
        apdu: &verify_apdu,
    };
    pins.verify_on_pinpad(suite::PIN_REF, &verify).unwrap();
    assert_eq!(
        pins.pin_status(suite::PIN_REF).unwrap(),
        PinStatus::Verified
    );
    let modify_apdu = [
        0x00, 0x24, 0x00, 0x81, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let modify = PinModify {
        timeout: 0,
        format_string: 0x82,
        pin_block_string: 0x06,
        pin_length_format: 0,
        insertion_offset_old: 0,
        insertion_offset_new: 6,
        pin_max_extra_digit: 0x0408,
        confirm_pin: 0x03,
        entry_validation_condition: 0x02,
        number_message: 0x03,
        lang_id: 0x0409,
        msg_index: [0, 1, 2],
        teo_prologue: [0; 3],
        apdu: &modify_apdu,
    };
    pins.change_on_pinpad(suite::PIN_REF, &modify).unwrap();
    pins.verify(suite::PIN_REF, &Pin::from("654321")).unwrap();
    let r = suite::PIN_REF;
    assert_eq!(
        suite::kinds(&events.drain()),
        [
            EventKind::PinVerified { reference: r },
            EventKind::PinChanged { reference: r },
            EventKind::PinVerified { reference: r },
        ]
    );
    card.detach(Disposition::Leave).unwrap();
}
