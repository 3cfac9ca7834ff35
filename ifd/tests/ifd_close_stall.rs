//! Closing one reader must not stall the others (issue 10, item 7).
//!
//! Two simulated readers in one [`Driver`]; the first one's transport
//! takes [`SLOW_POWER_OFF`] to carry PC_to_RDR_IccPowerOff, as a slow or
//! time-extending reader does. While `close_channel` powers that card
//! down, presence polling and transmits on the second reader must answer
//! at their normal speed: no driver-wide lock may be held across the USB
//! I/O of one reader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroccid::{Tap, TapHooks};
use ferroccid_ifd::abi::*;
use ferroccid_ifd::{Driver, Options};
use ferroccid_ifd::{IfdError, IfdReader};

/// How long the slow reader takes to send its power-off command.
const SLOW_POWER_OFF: Duration = Duration::from_millis(1500);
/// What "answers quickly" means for the other reader (its presence query
/// is one GetSlotStatus round trip to the simulator: well under 10 ms).
const QUICK: Duration = Duration::from_millis(200);
/// PC_to_RDR_IccPowerOff's bMessageType.
const ICC_POWER_OFF: u8 = 0x63;

/// [`Tap`] hooks that delay bulk-OUT of PC_to_RDR_IccPowerOff and say
/// when the delay starts.
struct SlowPowerOff {
    powering_off: Arc<AtomicBool>,
}

impl TapHooks for SlowPowerOff {
    fn on_bulk_out(&self, message: &[u8]) {
        if message.first() == Some(&ICC_POWER_OFF) {
            self.powering_off.store(true, Ordering::SeqCst);
            std::thread::sleep(SLOW_POWER_OFF);
        }
    }
}

/// A driver whose `slow:NAME` devices are the simulator `NAME` behind
/// [`SlowPowerOff`]; other names open as usual.
fn driver(powering_off: Arc<AtomicBool>) -> Arc<Driver> {
    let opener = move |name: &str| -> Result<IfdReader, IfdError> {
        match name.strip_prefix("slow:") {
            Some(sim) => {
                ferroccid_sim::register();
                let opened =
                    ferroccid::open(sim).map_err(|e| IfdError::Communication(e.to_string()))?;
                let slow = Tap::new(
                    opened.transport,
                    SlowPowerOff {
                        powering_off: powering_off.clone(),
                    },
                );
                IfdReader::with_transport(Arc::new(slow))
            }
            None => IfdReader::open(name),
        }
    };
    Arc::new(Driver::new(Box::new(opener), Options::default()))
}

fn open_powered(driver: &Driver, lun: Dword, device: &str) {
    assert_eq!(driver.create_channel_by_name(lun, device), IFD_SUCCESS);
    let atr = driver.power(lun, IFD_POWER_UP).expect("power up");
    assert_eq!(atr[0], 0x3B);
    assert_eq!(
        driver.set_protocol(lun, SCARD_PROTOCOL_T1, 0, 0),
        IFD_SUCCESS
    );
}

#[test]
fn closing_a_slow_reader_does_not_stall_presence_on_another() {
    let powering_off = Arc::new(AtomicBool::new(false));
    let driver = driver(powering_off.clone());
    let slow = 0x0000_0000;
    let other = 0x0001_0000;
    open_powered(&driver, slow, "slow:sim:tpdu-t1");
    open_powered(&driver, other, "sim:tpdu-t1.other");
    assert_eq!(driver.presence(other), IFD_ICC_PRESENT);

    let (done_tx, done_rx) = mpsc::channel();
    let closer = {
        let driver = driver.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let code = driver.close_channel(slow);
            let _ = done_tx.send(());
            (code, start.elapsed())
        })
    };
    let start = Instant::now();
    while !powering_off.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no power-off sent"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // The close is now inside its slow power-off: the other reader's
    // entry points answer at their own speed, repeatedly.
    let mut worst = Duration::ZERO;
    let mut queries = 0;
    while done_rx.try_recv().is_err() && queries < 10 {
        let t = Instant::now();
        assert_eq!(driver.presence(other), IFD_ICC_PRESENT);
        let mut rx = [0u8; 258];
        let n = driver
            .transmit(other, 1, &[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
            .expect("transmit on the other reader");
        assert_eq!(&rx[n - 2..n], &[0x90, 0x00]);
        worst = worst.max(t.elapsed());
        queries += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, took) = closer.join().unwrap();
    assert_eq!(code, IFD_SUCCESS);
    eprintln!("close took {took:?}; worst presence+transmit on the other reader {worst:?} over {queries} rounds");
    assert!(
        took >= SLOW_POWER_OFF,
        "the power-off was not slow: {took:?}"
    );
    assert!(
        worst < QUICK,
        "presence on another reader took {worst:?} while one reader was closing"
    );
    assert!(
        queries >= 5,
        "the close ended before the other reader was asked"
    );

    // The closed reader is gone, the other is untouched.
    assert_eq!(driver.presence(slow), IFD_NO_SUCH_DEVICE);
    assert_eq!(driver.presence(other), IFD_ICC_PRESENT);
    assert_eq!(driver.close_channel(other), IFD_SUCCESS);
}
