//! Exclusive use of a device across threads and processes: an in-process
//! lock (so threads wait on a condition variable, not in a poll loop) plus
//! an advisory `flock` on a lock file named after the device, so that two
//! processes driving the same reader directly cannot interleave APDUs.
//!
//! Lock files live in `$XDG_RUNTIME_DIR/ferroccid/` (or
//! `/tmp/ferroccid-<uid>/`); they are never deleted, because deleting a
//! file another process is about to lock would split the lock in two.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use super::error::ChannelError;

/// How often a waiter retries the file lock held by another process.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
struct LocalLock {
    held: Mutex<bool>,
    released: Condvar,
}

/// The lock of one device (a reader slot), shared by every holder of the
/// same lock file path in this process.
#[derive(Debug, Clone)]
pub struct DeviceLock {
    path: PathBuf,
    local: Arc<LocalLock>,
}

/// Exclusive use, until dropped.
#[derive(Debug)]
pub struct DeviceLockGuard {
    /// Closing the file releases the `flock`.
    _file: File,
    local: Arc<LocalLock>,
}

impl Drop for DeviceLockGuard {
    fn drop(&mut self) {
        let mut held = self.local.held.lock().unwrap_or_else(|e| e.into_inner());
        *held = false;
        self.local.released.notify_one();
    }
}

/// The directory of lock files.
pub(crate) fn lock_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("ferroccid"),
        _ => std::env::temp_dir().join(format!("ferroccid-{}", rustix::process::getuid().as_raw())),
    }
}

/// The file name for a device name: readable characters kept, the rest
/// replaced, and a hash of the whole name so that two names differing only
/// in replaced characters do not share a lock.
fn file_name(device: &str) -> String {
    let readable: String = device
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a, 64 bits: stable across builds, unlike std's hasher.
    let hash = device.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{readable}-{hash:016x}.lock")
}

impl DeviceLock {
    /// The lock of the device with this name (a ferroccid device name such
    /// as `sim` or `usb:1050:0407:001:004`).
    pub fn for_device(device: &str) -> DeviceLock {
        DeviceLock::at_path(lock_dir().join(file_name(device)))
    }

    /// The lock backed by this file.
    pub fn at_path(path: impl AsRef<Path>) -> DeviceLock {
        static LOCALS: OnceLock<Mutex<HashMap<PathBuf, Arc<LocalLock>>>> = OnceLock::new();
        let path = path.as_ref().to_path_buf();
        let local = LOCALS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.clone())
            .or_default()
            .clone();
        DeviceLock { path, local }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock, waiting at most `timeout` (`None` = forever).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<DeviceLockGuard, ChannelError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // First among the threads of this process.
        {
            let mut held = self.local.held.lock().unwrap_or_else(|e| e.into_inner());
            while *held {
                held = match deadline {
                    None => self
                        .local
                        .released
                        .wait(held)
                        .unwrap_or_else(|e| e.into_inner()),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(ChannelError::Timeout);
                        }
                        self.local
                            .released
                            .wait_timeout(held, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
            }
            *held = true;
        }
        // Then among processes; on failure give the in-process lock back.
        match self.lock_file(deadline) {
            Ok(file) => Ok(DeviceLockGuard {
                _file: file,
                local: Arc::clone(&self.local),
            }),
            Err(e) => {
                let mut held = self.local.held.lock().unwrap_or_else(|e| e.into_inner());
                *held = false;
                self.local.released.notify_one();
                Err(e)
            }
        }
    }

    fn lock_file(&self, deadline: Option<Instant>) -> Result<File, ChannelError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ChannelError::Other(format!("lock directory {}: {e}", dir.display()))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| ChannelError::Other(format!("lock file {}: {e}", self.path.display())))?;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(ChannelError::Other(format!(
                        "flock {}: {e}",
                        self.path.display()
                    )))
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ChannelError::Timeout);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}
