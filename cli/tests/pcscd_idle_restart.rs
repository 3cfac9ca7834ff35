//! `ferroccid bundle restart-pcscd --when-idle` against Debian's real pcscd
//! (started by tests/scripts/pcscd-run.sh on a simulated reader): while a
//! client is connected to pcscd's socket the restart waits; once the client
//! is gone it runs. This is what keeps a reader-list change from cutting
//! other readers' clients. Fails loudly when pcscd is missing.
//!
//! pcscd-run.sh binds the instance's socket directory over /run/pcscd in a
//! private mount namespace, so /proc/net/unix shows every instance's
//! connections under the same path, /run/pcscd/pcscd.comm: the waiter
//! counts the connections of the pcscd whose pid file is beside the socket
//! it is given (DIR/run/pcscd.pid), so other instances and their clients
//! (other tests, the system's pcscd) do not count.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn ferroccid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferroccid"))
}

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

#[test]
fn a_restart_waits_until_pcscd_has_no_client() {
    let dir = std::env::temp_dir().join(format!("ferroccid-idle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lib = Path::new(env!("CARGO_BIN_EXE_ferroccid")).with_file_name("libferroccid_ifd.so");
    let status = Command::new(script())
        .arg("start")
        .arg(&dir)
        .arg(&lib)
        .arg("sim:tpdu")
        .status()
        .expect("cannot run pcscd-run.sh");
    assert!(status.success(), "pcscd did not start");
    let pcscd = Pcscd(dir.clone());
    let marker = dir.join("restarted");
    let waiter = |max_wait: &str| {
        let mut command = ferroccid();
        command
            .args([
                "bundle",
                "restart-pcscd",
                "--when-idle",
                "--max-wait",
                max_wait,
            ])
            .arg("--exec")
            .arg(format!("touch '{}'", marker.display()))
            .env("PCSCLITE_CSOCK_NAME", dir.join("run/pcscd.comm"));
        command
    };

    // No client: restarted at once.
    let out = waiter("5").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists(), "an idle pcscd was not restarted");
    std::fs::remove_file(&marker).unwrap();

    // A client connected: the wait runs out and nothing is restarted.
    let client = UnixStream::connect(dir.join("run/pcscd.comm")).expect("connect to pcscd");
    let out = waiter("2").output().unwrap();
    assert!(!out.status.success(), "restarted with a client connected");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("still has 1 client"), "{said}");
    assert!(!marker.exists());

    // The client leaves while the waiter waits: it restarts soon after.
    let mut child = waiter("60").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "did not wait for the client"
    );
    assert!(!marker.exists());
    drop(client);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still waiting after the client left"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    assert!(marker.exists());
    // Stopped before its directory (and pid file) goes.
    drop(pcscd);
    let _ = std::fs::remove_dir_all(&dir);
}
