//! The credential-manager notifications end to end: Debian's pcscd (started by
//! tests/scripts/pcscd-run.sh) runs the bundle on a simulated reader; a real PC/SC
//! client verifies a wrong PIN, the right one, changes it and verifies the new one;
//! the card is pulled and put back. Two `ferroccid monitor --system` subscribers
//! receive the same events in the same order; a subscriber that stops reading is
//! disconnected while the APDUs go on; no PIN byte appears in any event or in
//! pcscd's log (the bundle logging at trace level).

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/scripts/pcscd-run.sh")
}

/// Stops the pcscd instance when the test ends, passed or not.
struct Pcscd(PathBuf);

impl Drop for Pcscd {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.0).status();
    }
}

/// `ferroccid monitor --system --json --count N` on the instance's socket.
fn subscriber(socket: &Path, count: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferroccid"))
        .args([
            "monitor",
            "--system",
            "--json",
            "--count",
            &count.to_string(),
        ])
        .env("FERROCCID_NOTIFY_SOCKET", socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferroccid monitor")
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The event names (with reference and tries) of a subscriber's JSON lines.
fn events(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|v| {
            let mut e = v["event"].as_str().unwrap().to_owned();
            if let Some(r) = v.get("reference") {
                e.push_str(&format!(" {r}"));
            }
            if let Some(t) = v.get("tries_left") {
                e.push_str(&format!(" tries {t}"));
            }
            e
        })
        .collect()
}

const PIN: &[u8] = b"123456";
const NEW_PIN: &[u8] = b"654321";

fn apdu(ins: u8, data: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, ins, 0x00, 0x81, data.len() as u8];
    apdu.extend_from_slice(data);
    apdu
}

#[test]
fn subscribers_get_the_same_ordered_pin_and_card_events_and_never_a_pin() {
    let dir = std::env::temp_dir().join(format!("ferroccid-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let control = dir.join("control");
    std::fs::create_dir_all(&control).unwrap();
    let lib = Path::new(env!("CARGO_BIN_EXE_ferroccid")).with_file_name("libferroccid_ifd.so");
    let status = Command::new(script())
        .arg("start")
        .arg(&dir)
        .arg(&lib)
        .arg("sim:tpdu")
        .arg("sim:pinpad")
        .env("FERROCCID_SIM_CONTROL", &control)
        .env("FERROCCID_LOG", "trace")
        .status()
        .expect("cannot run pcscd-run.sh");
    assert!(status.success(), "pcscd did not start");
    let pcscd = Pcscd(dir.clone());
    let socket = dir.join("notify/notify");
    wait_until("the bundle's socket", Duration::from_secs(10), || {
        socket.exists()
    });

    // A client that stops reading after the greeting.
    let mut stalled = UnixStream::connect(&socket).expect("connect");
    let mut greeting = String::new();
    BufReader::new(stalled.try_clone().unwrap())
        .read_line(&mut greeting)
        .unwrap();
    assert!(greeting.contains("\"subscribed\":true"), "{greeting}");

    const EXPECTED: usize = 8;
    let monitors = [subscriber(&socket, EXPECTED), subscriber(&socket, EXPECTED)];
    // Both are in once the bundle greeted them (they say so on stderr).
    std::thread::sleep(Duration::from_millis(500));

    std::env::set_var("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"));
    let context = pcsc::Context::establish(pcsc::Scope::System).expect("PC/SC context");
    // pcscd answers before it has started every reader, and numbers them
    // in the order it reads its configuration.
    wait_until("both readers", Duration::from_secs(10), || {
        let mut names = [0u8; 2048];
        context
            .list_readers(&mut names)
            .is_ok_and(|list| list.count() == 2)
    });
    let named = |part: &str| -> std::ffi::CString {
        let mut names = [0u8; 2048];
        let found = context
            .list_readers(&mut names)
            .unwrap()
            .find(|n| n.to_string_lossy().contains(part))
            .unwrap_or_else(|| panic!("no reader named like {part}"))
            .to_owned();
        found
    };
    let tpdu = named("sim:tpdu");
    let reader = tpdu.as_c_str();
    let card = context
        .connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect to the simulated card");
    let mut buffer = [0u8; 258];
    let mut transmit =
        |apdu: &[u8]| -> Vec<u8> { card.transmit(apdu, &mut buffer).expect("transmit").to_vec() };
    {
        assert_eq!(transmit(&apdu(0x20, b"000000")), [0x63, 0xC2]);
        assert_eq!(transmit(&apdu(0x20, PIN)), [0x90, 0x00]);
        assert_eq!(
            transmit(&apdu(0x24, &[PIN, NEW_PIN].concat())),
            [0x90, 0x00]
        );
        assert_eq!(transmit(&apdu(0x20, NEW_PIN)), [0x90, 0x00]);
        // Not events: a state query and other commands.
        assert_eq!(transmit(&[0x00, 0x20, 0x00, 0x81]), [0x90, 0x00]);
        assert_eq!(transmit(&[0x00, 0x84, 0x00, 0x00, 0x08]).len(), 10);
    }
    drop(card);
    // The card out and back in, through the simulator's control files.
    let absent = control.join("tpdu.absent");
    std::fs::write(&absent, b"").unwrap();
    wait_until("card removed", Duration::from_secs(5), || {
        let state = &mut [pcsc::ReaderState::new(reader, pcsc::State::UNAWARE)];
        context
            .get_status_change(Duration::from_millis(200), state)
            .is_ok()
            && state[0].event_state().contains(pcsc::State::EMPTY)
    });
    std::fs::remove_file(&absent).unwrap();
    wait_until("card back", Duration::from_secs(5), || {
        let state = &mut [pcsc::ReaderState::new(reader, pcsc::State::UNAWARE)];
        context
            .get_status_change(Duration::from_millis(200), state)
            .is_ok()
            && state[0].event_state().contains(pcsc::State::PRESENT)
    });

    // The PIN pad's verify and modify (PC/SC part 10), on the pinpad reader:
    // the simulated user types 123456, then 654321 as the new PIN.
    let pinpad = named("sim:pinpad");
    let card = context
        .connect(&pinpad, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect to the pinpad reader's card");
    let mut buf = [0u8; 258];
    let features = card
        .control(pcsc::ctl_code(3400), &[], &mut buf)
        .unwrap()
        .to_vec();
    let code = |tag: u8| -> u32 {
        let tlv = features
            .chunks(6)
            .find(|tlv| tlv[0] == tag)
            .unwrap_or_else(|| panic!("feature {tag:#x} not listed: {features:02X?}"));
        u32::from_be_bytes([tlv[2], tlv[3], tlv[4], tlv[5]])
    };
    // PIN_VERIFY_STRUCTURE: ASCII PIN in a 6-byte block at offset 0.
    let mut verify = vec![
        30, 0, 0x82, 0x06, 0x00, 0x08, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00, 0, 0, 0,
    ];
    let template = [
        0x00, 0x20, 0x00, 0x81, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    verify.extend_from_slice(&(template.len() as u32).to_le_bytes());
    verify.extend_from_slice(&template);
    let answer = card
        .control(code(0x06) as _, &verify, &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(answer, [0x90, 0x00]);
    // PIN_MODIFY_STRUCTURE: current PIN at byte 0, new at byte 6, confirmed.
    let mut modify = vec![
        30, 0, 0x82, 0x06, 0x00, 0x00, 0x06, 0x08, 0x04, 0x03, 0x02, 0x03, 0x09, 0x04, 0x00, 0x01,
        0x02, 0, 0, 0,
    ];
    let template = [
        0x00, 0x24, 0x00, 0x81, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF,
    ];
    modify.extend_from_slice(&(template.len() as u32).to_le_bytes());
    modify.extend_from_slice(&template);
    let answer = card
        .control(code(0x07) as _, &modify, &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(answer, [0x90, 0x00]);
    drop(card);

    let mut seen = Vec::new();
    for monitor in monitors {
        let out = monitor.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        seen.push(lines);
    }
    assert_eq!(
        events(&seen[0]),
        [
            "pin-failed 129 tries 2",
            "pin-verified 129",
            "pin-changed 129",
            "pin-verified 129",
            "card-removed",
            "card-inserted",
            "pin-verified 129",
            "pin-changed 129"
        ]
    );
    assert_eq!(
        seen[0], seen[1],
        "both subscribers got the same events, numbered alike"
    );
    let seqs: Vec<u64> = seen[0].iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let readers: Vec<&str> = seen[0]
        .iter()
        .map(|v| v["reader"].as_str().unwrap())
        .collect();
    assert_eq!(readers[..6], ["sim:tpdu"; 6]);
    assert_eq!(readers[6..], ["sim:pinpad"; 2], "the PIN pad's events");
    assert!(seen[0].iter().all(|v| v["slot"] == 0));

    // Many events while the stalled client still reads nothing: the APDUs go
    // on, and the bundle lets that client go instead of waiting for it.
    let card = context
        .connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect again");
    let mut buffer = [0u8; 258];
    let rounds = 4000;
    let start = Instant::now();
    for _ in 0..rounds {
        let answer = card
            .transmit(&apdu(0x20, NEW_PIN), &mut buffer)
            .expect("transmit");
        assert_eq!(answer, [0x90, 0x00]);
    }
    let with_stalled = start.elapsed();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut backlog = Vec::new();
    let read = stalled.read_to_end(&mut backlog);
    assert!(
        read.is_ok(),
        "the stalled subscriber was not disconnected: {read:?}"
    );
    let delivered = backlog.iter().filter(|&&b| b == b'\n').count();
    assert!(
        delivered < rounds,
        "all {rounds} events reached a client that read nothing ({delivered})"
    );
    // The same with no subscriber left, for the figure (not asserted).
    let start = Instant::now();
    for _ in 0..rounds {
        card.transmit(&apdu(0x20, NEW_PIN), &mut buffer)
            .expect("transmit");
    }
    let without = start.elapsed();
    eprintln!(
        "{rounds} VERIFY through pcscd: {} µs each with a stalled subscriber (cut after \
         {delivered} events), {} µs each with none: ratio {:.2}",
        with_stalled.as_micros() / rounds as u128,
        without.as_micros() / rounds as u128,
        with_stalled.as_secs_f64() / without.as_secs_f64()
    );

    // No PIN byte, in hex or as text, in any event or in pcscd's log.
    let log = std::fs::read_to_string(dir.join("pcscd.log")).unwrap();
    assert!(
        log.contains("ferroccid"),
        "the bundle logged nothing:\n{log}"
    );
    let events_text = format!("{seen:?}{}", String::from_utf8_lossy(&backlog));
    for pin in [PIN, NEW_PIN, b"000000"] {
        let hex: String = pin.iter().map(|b| format!("{b:02X}")).collect();
        let spaced: String = pin.iter().map(|b| format!("{b:02X} ")).collect();
        for text in [&events_text, &log] {
            assert!(!text.to_uppercase().contains(&hex), "PIN {hex} logged");
            assert!(
                !text.to_uppercase().contains(spaced.trim_end()),
                "PIN {spaced} logged"
            );
        }
        assert!(!events_text.contains(std::str::from_utf8(pin).unwrap()));
    }
    // Stopped before its directory (and pid file) goes.
    drop(pcscd);
    let _ = std::fs::remove_dir_all(&dir);
}
