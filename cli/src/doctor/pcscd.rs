//! Is pcscd there for clients: does its socket accept connections (from
//! pcscd itself, or from systemd's pcscd.socket, which starts pcscd for
//! the first client)? And did it start after the bundles last changed
//! (it reads them only at start)?
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::report::{Check, Status};

/// Check name of [`check`].
pub const PCSCD: &str = "pcscd";

/// pcsc-lite's socket (compiled into pcscd and libpcsclite).
pub const SOCKET: &str = "/run/pcscd/pcscd.comm";

/// The environment variable libpcsclite takes the socket path from.
pub const SOCKET_ENV: &str = "PCSCLITE_CSOCK_NAME";

/// Where Debian's pcscd binary is.
const PCSCD_BINARY: &str = "/usr/sbin/pcscd";

/// Clock ticks per second of /proc/PID/stat's times: USER_HZ, 100 on
/// every Linux architecture (the kernel converts to it for user space).
const USER_HZ: u64 = 100;

/// The process ids whose `comm` is `pcscd`, under `proc_dir`; those in
/// this process's mount namespace first (another namespace's pcscd — a
/// container's, a test's — serves another socket).
pub fn processes(proc_dir: &Path) -> Vec<u32> {
    let namespace = |dir: PathBuf| std::fs::read_link(dir.join("ns/mnt")).ok();
    let ours = namespace(proc_dir.join("self"));
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    let mut pids: Vec<(bool, u32)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(proc_dir.join(format!("{pid}/comm")))
                .is_ok_and(|c| c.trim_end() == "pcscd")
        })
        .map(|pid| (namespace(proc_dir.join(pid.to_string())) != ours, pid))
        .collect();
    pids.sort_unstable();
    pids.into_iter().map(|(_, pid)| pid).collect()
}

/// When process `pid` started, as of `now`: its start in ticks after
/// boot (/proc/PID/stat field 22) against the time since boot
/// (/proc/uptime; /proc/stat's `btime` is whole seconds, too coarse for a
/// pcscd started just after a bundle changed). Rounded up to the next
/// tick, so a file written before the start never looks newer.
fn started(proc_dir: &Path, pid: u32, now: SystemTime) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(proc_dir.join(format!("{pid}/stat"))).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string(proc_dir.join("uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let boot = now.checked_sub(Duration::from_secs_f64(uptime))?;
    Some(boot + Duration::from_millis((ticks + 1) * 1000 / USER_HZ))
}

/// The bundles' Info.plist files changed after `since`.
fn changed_since(drivers_dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(drivers_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("Contents/Info.plist"))
        // metadata follows the package's symlink to /var/lib/ferroccid.
        .filter(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > since)
        })
        .collect()
}

/// Whether systemd manages this system (sd_booted(3)'s test).
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemctl is-active UNIT` says `active`.
fn unit_active(unit: &str) -> bool {
    std::process::Command::new("systemctl")
        .args(["is-active", "--quiet", unit])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether clients reach pcscd: something accepts connections on
/// `socket` (pcscd, or systemd's pcscd.socket that starts it). The
/// process list and systemd only explain the failures; a running pcscd
/// is also checked against bundles changed after it started.
pub fn check(proc_dir: &Path, socket: &Path, drivers_dir: &Path) -> Check {
    let pids = processes(proc_dir);
    let systemd = systemd_running();
    let shown = socket.display();
    let answers = UnixStream::connect(socket);
    if answers.is_ok() {
        let Some(&pid) = pids.first() else {
            let by = if systemd && unit_active("pcscd.socket") {
                "pcscd.socket (systemd starts pcscd with the first client)"
            } else {
                "a listener whose process is not visible here"
            };
            return Check::pass(PCSCD, format!("{shown} accepts connections: {by}"));
        };
        let stale = started(proc_dir, pid, SystemTime::now())
            .map(|at| changed_since(drivers_dir, at))
            .unwrap_or_default();
        if stale.is_empty() {
            return Check::pass(
                PCSCD,
                format!("pcscd runs (pid {pid}) and accepts connections on {shown}"),
            );
        }
        let files: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
        return Check::new(
            PCSCD,
            Status::Warn,
            format!(
                "pcscd runs (pid {pid}) but {} changed after it started; pcscd reads bundles \
                 only at start",
                files.join(", ")
            ),
            Some(restart_advice(systemd)),
        );
    }
    let start_advice = if !Path::new(PCSCD_BINARY).exists() {
        "`sudo apt install pcscd`".to_owned()
    } else if systemd {
        "`sudo systemctl enable --now pcscd.socket`".to_owned()
    } else {
        "start it: `sudo pcscd` (`sudo pcscd -f -d` shows its log)".to_owned()
    };
    let socket_there = std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket());
    match (pids.first(), socket_there) {
        (Some(&pid), _) => Check::new(
            PCSCD,
            Status::Fail,
            format!(
                "pcscd runs (pid {pid}) but nothing accepts connections on {shown}: it serves \
                 another socket (another mount namespace, or {SOCKET_ENV} set differently)"
            ),
            Some(format!(
                "{}; or point clients at its socket with {SOCKET_ENV}=PATH",
                restart_advice(systemd)
            )),
        ),
        (None, true) => Check::new(
            PCSCD,
            Status::Fail,
            format!("{shown} is left over: no pcscd process runs and nothing accepts connections"),
            Some(start_advice),
        ),
        (None, false) => Check::new(
            PCSCD,
            Status::Fail,
            format!("pcscd is not running and there is no {shown}"),
            Some(start_advice),
        ),
    }
}

fn restart_advice(systemd: bool) -> String {
    if systemd {
        "`sudo systemctl restart pcscd`".to_owned()
    } else {
        "restart pcscd: `sudo kill $(pidof pcscd)`, then `sudo pcscd`".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcscd_processes_are_found_by_comm_and_dated_from_stat() {
        let dir = std::env::temp_dir().join(format!("ferroccid-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, comm) in [(12, "bash\n"), (345, "pcscd\n")] {
            std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
            std::fs::write(dir.join(format!("{pid}/comm")), comm).unwrap();
        }
        // Field 22 (starttime) is 500 ticks: 5 s after boot; the name has
        // a space and a parenthesis.
        std::fs::write(
            dir.join("345/stat"),
            format!("345 (pc scd)) {}500 0\n", "0 ".repeat(19)),
        )
        .unwrap();
        std::fs::write(dir.join("uptime"), "7.50 1.00\n").unwrap();
        std::fs::create_dir_all(dir.join("self")).unwrap();
        assert_eq!(processes(&dir), [345]);
        // Booted 7.5 s before `now`, started 5 s after boot (rounded up
        // to the next 10 ms tick).
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            started(&dir, 345, now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(997_510))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
