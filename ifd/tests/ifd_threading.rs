//! pcscd's threading contract, exercised on the safe [`Driver`] directly
//! (no pcscd) over the real reader stack and the simulated reader:
//! - the polling function runs without pcscd's lock, concurrently with
//!   transmit on the same Lun;
//! - TAG_IFD_STOP_POLLING_THREAD's function is called from another thread
//!   and must end a pending poll;
//! - IFDHCloseChannel can race an in-flight transmit.
//!
//! Every scenario runs many times, each bounded by a timeout: a deadlock
//! fails the test instead of hanging it.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferroccid::SlotWait;
use ferroccid_ifd::abi::*;
use ferroccid_ifd::IfdReader;
use ferroccid_ifd::{Capability, Driver, Options};

/// The control directory the simulators of this test binary watch.
fn control_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("ferroccid-ifd-threads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Set once, before any simulator is opened, and never changed.
        std::env::set_var("FERROCCID_SIM_CONTROL", &dir);
        dir
    })
}

fn driver() -> Arc<Driver> {
    control_dir();
    Arc::new(Driver::new(Box::new(IfdReader::open), Options::default()))
}

/// Runs `f` on its own thread and fails if it takes longer than `limit`.
fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no answer within {limit:?} (deadlock?)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

fn open_powered(driver: &Driver, lun: Dword, device: &str) {
    assert_eq!(driver.create_channel_by_name(lun, device), IFD_SUCCESS);
    let atr = driver.power(lun, IFD_POWER_UP).expect("power up");
    assert_eq!(atr[0], 0x3B, "direct convention TS");
    assert_eq!(
        driver.set_protocol(lun, SCARD_PROTOCOL_T1, 0, 0),
        IFD_SUCCESS
    );
}

const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

#[test]
fn polling_runs_concurrently_with_transmit_on_the_same_lun() {
    let driver = driver();
    let lun = 0x0000_0000;
    open_powered(&driver, lun, "sim:tpdu-t1.poll");
    assert!(matches!(
        driver.get_capability(lun, TAG_IFD_POLLING_THREAD_WITH_TIMEOUT),
        Ok(Capability::PollingFunction)
    ));
    let d = driver.clone();
    bounded("poll + transmit", Duration::from_secs(60), move || {
        let poller = {
            let d = d.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    assert_eq!(d.poll(lun, 20), IFD_SUCCESS);
                    assert_eq!(d.presence(lun), IFD_ICC_PRESENT);
                }
            })
        };
        for i in 0..300 {
            let mut rx = [0u8; 258];
            let n = d.transmit(lun, 1, &GET_CHALLENGE, &mut rx).unwrap();
            assert_eq!((n, sw(&rx[..n])), (10, 0x9000), "APDU {i}");
        }
        poller.join().unwrap();
    });
    assert_eq!(driver.close_channel(lun), IFD_SUCCESS);
}

#[test]
fn stop_polling_from_another_thread_ends_a_long_poll() {
    let driver = driver();
    let lun = 0x0001_0000;
    open_powered(&driver, lun, "sim:tpdu-t1.stop");
    for round in 0..40 {
        let d = driver.clone();
        let took = bounded("stop polling", Duration::from_secs(10), move || {
            let poller = {
                let d = d.clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    // pcscd's own timeout: ten minutes.
                    let code = d.poll(lun, 600_000);
                    (code, start.elapsed())
                })
            };
            // Sometimes before the poll starts, sometimes during it.
            std::thread::sleep(Duration::from_millis(round % 4 * 10));
            assert_eq!(d.stop_polling(lun), IFD_SUCCESS);
            poller.join().unwrap()
        });
        assert_eq!(took.0, IFD_SUCCESS, "round {round}");
        assert!(
            took.1 < Duration::from_secs(2),
            "round {round}: poll ended after {:?}",
            took.1
        );
    }
    assert_eq!(driver.close_channel(lun), IFD_SUCCESS);
}

#[test]
fn close_racing_an_in_flight_transmit_is_safe() {
    let driver = driver();
    for round in 0..25u32 {
        let lun = 0x0002_0000;
        open_powered(&driver, lun, "sim:tpdu-t1.close");
        let d = driver.clone();
        bounded(
            "close during transmit",
            Duration::from_secs(30),
            move || {
                let sender = {
                    let d = d.clone();
                    std::thread::spawn(move || {
                        let mut ok = 0;
                        let mut rx = [0u8; 258];
                        loop {
                            match d.transmit(lun, 1, &GET_CHALLENGE, &mut rx) {
                                Ok(n) => {
                                    assert_eq!(sw(&rx[..n]), 0x9000);
                                    ok += 1;
                                }
                                // The close powered the card down under
                                // us (libccid answers the same): go on.
                                Err(IFD_ICC_NOT_PRESENT) => {}
                                // After the close: the Lun is gone.
                                Err(code) => {
                                    assert_eq!(code, IFD_NO_SUCH_DEVICE, "unexpected code");
                                    return ok;
                                }
                            }
                        }
                    })
                };
                let poller = {
                    let d = d.clone();
                    std::thread::spawn(move || while d.poll(lun, 5) == IFD_SUCCESS {})
                };
                std::thread::sleep(Duration::from_millis(u64::from(round % 5) * 3));
                assert_eq!(d.stop_polling(lun), IFD_SUCCESS);
                assert_eq!(d.close_channel(lun), IFD_SUCCESS);
                sender.join().unwrap();
                poller.join().unwrap();
                // The Lun can be opened again right away.
            },
        );
    }
}

#[test]
fn remove_and_reinsert_between_two_presence_queries_is_seen() {
    let driver = driver();
    let lun = 0x0003_0000;
    open_powered(&driver, lun, "sim:tpdu-t1.swap");
    assert_eq!(driver.presence(lun), IFD_ICC_PRESENT);
    let flag = control_dir().join("tpdu-t1.swap.absent");
    std::fs::write(&flag, b"").unwrap();
    // The poll wakes on the removal (interrupt endpoint), well within 1 s.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        driver.poll(lun, 100);
        if driver.presence(lun) == IFD_ICC_NOT_PRESENT {
            break;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "removal not seen in 1 s"
    );
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(driver.poll(lun, 2000), IFD_SUCCESS);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(driver.presence(lun), IFD_ICC_PRESENT);
    let atr = driver.power(lun, IFD_POWER_UP).unwrap();
    assert_eq!(atr[0], 0x3B);
    assert_eq!(driver.presence(lun), IFD_ICC_PRESENT);
    // Now out and in again with no presence query in between: the next
    // query must still report the card gone once (its session is lost).
    std::fs::write(&flag, b"").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&flag).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(driver.presence(lun), IFD_ICC_NOT_PRESENT);
    assert_eq!(driver.presence(lun), IFD_ICC_PRESENT);
    assert_eq!(driver.close_channel(lun), IFD_SUCCESS);
}

/// A wait of `Duration::MAX` (`IfdReader` takes any Duration; pcscd's
/// i32 milliseconds cannot reach it) waits, and a stop ends it: no
/// `Instant + Duration` overflow panic.
#[test]
fn a_wait_of_duration_max_waits_and_is_stopped() {
    control_dir();
    let reader = Arc::new(IfdReader::open("sim:tpdu-t1.forever").expect("open"));
    // The first waits report the card found at open.
    while reader.wait_for_change(0, Duration::from_millis(100)) != Ok(SlotWait::Timeout) {}
    let took = bounded("Duration::MAX wait", Duration::from_secs(10), move || {
        let waiter = {
            let reader = reader.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = reader.wait_for_change(0, Duration::MAX);
                (r, start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        reader.cancel_wait();
        waiter.join().expect("the wait panicked")
    });
    assert!(
        matches!(took.0, Ok(SlotWait::Cancelled) | Ok(SlotWait::Changed)),
        "{:?}",
        took.0
    );
    assert!(
        took.1 >= Duration::from_millis(150),
        "returned at once: {:?}",
        took.1
    );
}
