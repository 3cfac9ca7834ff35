//! Steering a simulated reader from outside its process.
//!
//! pcscd loads the driver, and with it the simulator, into its own
//! process: a test or a demo cannot call [`SimHandle`] there. Instead the
//! simulator watches a directory named by the environment variable
//! [`CONTROL_ENV`] and turns files into card movements:
//!
//! | file | while it exists |
//! |---|---|
//! | `DIR/KEY.absent` | the cards of every slot are removed |
//! | `DIR/KEY.N.absent` | the card of slot `N` is removed |
//! | `DIR/KEY.unplugged` | the reader is unplugged (for good, once seen) |
//!
//! Deleting an `absent` file puts the card back (a new insertion). `KEY`
//! is the simulator part of the device name: `sim:tpdu-t1.remove` →
//! `tpdu-t1.remove`, plain `sim` → `tpdu` (see [`control_key`]). So
//! ```text
//! FERROCCID_SIM_CONTROL=/tmp/simctl pcscd -f -c reader.conf.d
//! touch /tmp/simctl/pinpad.absent     # card out
//! rm /tmp/simctl/pinpad.absent        # card in
//! ```
//! Files are looked at every [`POLL_INTERVAL`]; files are used rather than
//! a socket so a shell, a test and a human can all drive it with `touch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::transport::SimHandle;

/// The environment variable naming the control directory.
pub const CONTROL_ENV: &str = "FERROCCID_SIM_CONTROL";

/// How often the control files are looked at: well under the 1 s within
/// which a PC/SC client must see a card movement.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The control key of a simulator profile spec (`None` for plain `sim`):
/// the spec itself, with `/` (a profile file path) made file-name safe.
pub fn control_key(profile: Option<&str>) -> String {
    profile.unwrap_or("tpdu").replace('/', "_")
}

/// A running watcher; dropping it stops the thread.
pub struct ControlWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ControlWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Starts watching `dir` for the files of `key`, driving `handle` (a
/// reader with `slots` slots, all holding a card at start).
pub fn watch(
    dir: &Path,
    key: &str,
    slots: u8,
    handle: SimHandle,
) -> std::io::Result<ControlWatcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let files = Files {
        all_absent: dir.join(format!("{key}.absent")),
        slot_absent: (0..slots)
            .map(|s| dir.join(format!("{key}.{s}.absent")))
            .collect(),
        unplugged: dir.join(format!("{key}.unplugged")),
    };
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ferroccid-sim-control".into())
        .spawn(move || run(&files, &handle, &flag))?;
    Ok(ControlWatcher {
        stop,
        thread: Some(thread),
    })
}

/// [`watch`] in the directory named by [`CONTROL_ENV`], if it is set.
pub fn watch_from_env(
    key: &str,
    slots: u8,
    handle: SimHandle,
) -> Option<std::io::Result<ControlWatcher>> {
    let dir = PathBuf::from(std::env::var_os(CONTROL_ENV)?);
    Some(watch(&dir, key, slots, handle))
}

struct Files {
    all_absent: PathBuf,
    slot_absent: Vec<PathBuf>,
    unplugged: PathBuf,
}

fn run(files: &Files, handle: &SimHandle, stop: &AtomicBool) {
    // What the watcher last applied; the profile starts with cards in.
    let mut absent = vec![false; files.slot_absent.len()];
    while !stop.load(Ordering::SeqCst) {
        if files.unplugged.exists() {
            tracing::info!(file = %files.unplugged.display(), "simulated reader unplugged");
            handle.unplug();
            return;
        }
        let all = files.all_absent.exists();
        for (slot, (path, was_absent)) in files.slot_absent.iter().zip(&mut absent).enumerate() {
            let now_absent = all || path.exists();
            if now_absent != *was_absent {
                let slot = slot as u8;
                if now_absent {
                    tracing::info!(slot, "simulated card removed");
                    handle.remove_card(slot);
                } else {
                    tracing::info!(slot, "simulated card inserted");
                    handle.insert_card(slot);
                }
                *was_absent = now_absent;
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::transport::SimTransport;
    use std::time::Instant;

    fn card_in(handle: &SimHandle, slot: u8) -> bool {
        handle.inspect(|m| m.card(slot).is_some_and(|c| c.is_present()))
    }

    fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn files_move_cards_and_unplug() {
        let dir = std::env::temp_dir().join(format!("ferroccid-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_transport, handle) = SimTransport::open(Profile::from_name("4-slot").unwrap());
        let _watcher = watch(&dir, "4-slot.t", 4, handle.clone()).unwrap();
        let limit = Duration::from_secs(2);
        assert!(card_in(&handle, 2));
        std::fs::write(dir.join("4-slot.t.2.absent"), b"").unwrap();
        assert!(until(limit, || !card_in(&handle, 2)));
        assert!(card_in(&handle, 1), "only slot 2 was asked for");
        std::fs::remove_file(dir.join("4-slot.t.2.absent")).unwrap();
        assert!(until(limit, || card_in(&handle, 2)));
        std::fs::write(dir.join("4-slot.t.absent"), b"").unwrap();
        assert!(until(limit, || (0..4).all(|s| !card_in(&handle, s))));
        std::fs::remove_file(dir.join("4-slot.t.absent")).unwrap();
        assert!(until(limit, || (0..4).all(|s| card_in(&handle, s))));
        std::fs::write(dir.join("4-slot.t.unplugged"), b"").unwrap();
        use ferroccid::Transport;
        assert!(until(limit, || {
            let mut buf = [0u8; 8];
            matches!(
                _transport.control_in(0x02, 0, &mut buf, Duration::from_millis(10)),
                Err(ferroccid::TransportError::DeviceGone)
            )
        }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_follow_the_device_name() {
        assert_eq!(control_key(None), "tpdu");
        assert_eq!(control_key(Some("pinpad.a")), "pinpad.a");
        assert_eq!(control_key(Some("/etc/p.json")), "_etc_p.json");
    }
}
