//! The pcscd bundle: build it, install it with the udev rules, remove it,
//! and keep its reader list current.
//!
//! - `ferroccid bundle --out DIR [--lib PATH]` writes
//!   `DIR/ifd-ferroccid.bundle/Contents/{Info.plist, Linux/libferroccid.so}`;
//! - `ferroccid bundle refresh` rewrites the installed Info.plist's reader
//!   list and asks pcscd to pick it up (the udev rule runs it when a CCID
//!   interface appears);
//! - `ferroccid install` / `ferroccid uninstall` put the bundle, the udev
//!   rules and the binary in place, or take them away.
//!
//! pcscd hands a USB reader to a bundle only when its VID:PID is listed in
//! Info.plist and reads the bundles only when it starts: so the list is
//! what the list already held + the readers the installed libccid lists +
//! every CCID interface present, and a refresh restarts pcscd.
//!
//! `bundle refresh` runs as root, from udev, for any device that shows an
//! interface of class 0x0B or 0xFF — that is, for whatever a stranger
//! plugs in. So it
//! - writes every file through a fresh, randomly named temporary file
//!   created with `O_CREAT|O_EXCL|O_NOFOLLOW` and renamed over the target
//!   (a planted symlink is never followed);
//! - runs under an exclusive `flock` on [`LOCK_FILE`] in the bundle
//!   directory (as do `bundle --out` and `install`), so concurrent runs
//!   never lose each other's readers;
//! - keeps the name of a reader already listed (a device cannot rename a
//!   known VID:PID), adds only interfaces whose CCID class descriptor
//!   parses, and adds at most [`MAX_ADDED_READERS`] readers beyond
//!   libccid's list in all;
//! - restarts pcscd at most once per [`RESTART_INTERVAL`] (the time is
//!   kept in [`RESTART_STATE`]); a refresh inside the interval queues one
//!   restart at its end with `systemd-run`, so the new reader still works.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroccid::ccid::descriptor::ClassDescriptor;
use ferroccid::{list_usb, UsbBackend};
use ferroccid_ifd::plist::{self, BundleConfig, ReaderId};
use ferroccid_ifd::COMMAND_TIMEOUT_KEY;

/// pcscd's USB drivers directory on Debian (compiled into pcscd).
const DRIVERS_DIR: &str = "/usr/lib/pcsc/drivers";
/// Where local udev rules go.
const UDEV_DIR: &str = "/etc/udev/rules.d";
/// The bundle's directory name.
const BUNDLE: &str = "ifd-ferroccid.bundle";
/// The library's file name inside `Contents/Linux/`.
const LIBRARY: &str = "libferroccid.so";
/// The library as cargo builds it (the `ferroccid-ifd` crate's cdylib),
/// next to this binary; it is installed as [`LIBRARY`].
const BUILT_LIBRARY: &str = "libferroccid_ifd.so";
/// The udev rules file name.
const RULES: &str = "92-ferroccid.rules";
/// The rules template; `@FERROCCID@` and `@DRIVERS@` are filled in.
const RULES_TEMPLATE: &str = include_str!("../../udev/92-ferroccid.rules");
/// libccid's bundle, whose reader list is kept.
const LIBCCID_BUNDLE: &str = "ifd-ccid.bundle";
/// The lock file in the bundle directory that serialises writers.
pub const LOCK_FILE: &str = ".ferroccid.lock";
/// How long a writer waits for the lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// The most readers the list holds beyond libccid's: a device that
/// reports a new VID:PID on each plug adds no more than this many.
pub const MAX_ADDED_READERS: usize = 64;
/// At most one pcscd restart by `bundle refresh` per this many seconds.
pub const RESTART_INTERVAL: u64 = 30;
/// File in the bundle directory holding the Unix time of the last (or
/// the queued) pcscd restart.
pub const RESTART_STATE: &str = ".ferroccid.restart";

/// The bundle commands (flattened into the top-level commands).
#[derive(clap::Subcommand)]
pub enum Command {
    /// Build the pcscd bundle, or `bundle refresh` its reader list.
    Bundle(BundleArgs),
    /// Install the bundle, the udev rules and this binary.
    Install(InstallArgs),
    /// Remove what `install` put in place.
    Uninstall(UninstallArgs),
}

/// `ferroccid bundle`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BundleArgs {
    #[command(subcommand)]
    refresh: Option<BundleCommand>,
    /// Directory to create `ifd-ferroccid.bundle` in.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The library (default: `libferroccid_ifd.so` next to this binary).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// `ifdLogLevel`: bit 0 errors, 1 info, 2 debug, 3 trace.
    #[arg(long, value_name = "MASK", default_value_t = 1)]
    log_level: u32,
    /// `ifdFerroccidCommandTimeout`: the ceiling on one command (seconds;
    /// the environment's FERROCCID_COMMAND_TIMEOUT wins over it).
    #[arg(long, value_name = "SECONDS", value_parser = command_timeout)]
    command_timeout: Option<String>,
}

fn command_timeout(value: &str) -> Result<String, String> {
    ferroccid::parse_command_time(value)
        .map(|d| format!("{}", d.as_secs_f64()))
        .ok_or_else(|| format!("{value:?} is not a number of seconds"))
}

/// `ferroccid bundle refresh`.
#[derive(clap::Subcommand)]
enum BundleCommand {
    /// Regenerate the installed Info.plist's reader list and rescan.
    Refresh(RefreshArgs),
}

#[derive(clap::Args)]
struct RefreshArgs {
    /// pcscd's USB drivers directory.
    #[arg(long, value_name = "DIR", default_value = DRIVERS_DIR)]
    drivers_dir: PathBuf,
    /// Do not restart pcscd.
    #[arg(long)]
    no_rescan: bool,
    /// Print nothing unless something fails (for udev).
    #[arg(long)]
    quiet: bool,
    /// Tests: take the USB interfaces from this JSON file
    /// (`[{"vendor_id", "product_id", "product", "class_descriptor"}]`)
    /// instead of the buses.
    #[arg(long, value_name = "FILE", hide = true)]
    usb_list: Option<PathBuf>,
    /// Tests: append the pcscd restart commands to this file instead of
    /// running them.
    #[arg(long, value_name = "FILE", hide = true)]
    restart_log: Option<PathBuf>,
}

/// `ferroccid install`.
#[derive(clap::Args)]
pub struct InstallArgs {
    /// Prefix for the binary (`PREFIX/bin/ferroccid`).
    #[arg(long, value_name = "DIR", default_value = "/usr/local")]
    prefix: PathBuf,
    /// pcscd's USB drivers directory.
    #[arg(long, value_name = "DIR", default_value = DRIVERS_DIR)]
    drivers_dir: PathBuf,
    /// udev rules directory.
    #[arg(long, value_name = "DIR", default_value = UDEV_DIR)]
    udev_dir: PathBuf,
    /// The library (default: `libferroccid_ifd.so` next to this binary).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// Do not restart pcscd or reload udev.
    #[arg(long)]
    no_rescan: bool,
}

/// `ferroccid uninstall`.
#[derive(clap::Args)]
pub struct UninstallArgs {
    /// Prefix the binary was installed under.
    #[arg(long, value_name = "DIR", default_value = "/usr/local")]
    prefix: PathBuf,
    /// pcscd's USB drivers directory.
    #[arg(long, value_name = "DIR", default_value = DRIVERS_DIR)]
    drivers_dir: PathBuf,
    /// udev rules directory.
    #[arg(long, value_name = "DIR", default_value = UDEV_DIR)]
    udev_dir: PathBuf,
    /// Do not restart pcscd or reload udev.
    #[arg(long)]
    no_rescan: bool,
}

/// Runs one of the bundle commands.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Bundle(BundleArgs {
            refresh: Some(BundleCommand::Refresh(args)),
            ..
        }) => refresh(&args),
        Command::Bundle(args) => match &args.out {
            Some(out) => build(
                out,
                args.lib.as_deref(),
                &config(args.log_level, args.command_timeout.clone()),
                Path::new(DRIVERS_DIR),
            )
            .map(|(bundle, _)| println!("{}", bundle.display())),
            None => Err("give --out DIR, or the `refresh` subcommand".into()),
        },
        Command::Install(args) => install(&args),
        Command::Uninstall(args) => uninstall(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferroccid: {message}");
            ExitCode::FAILURE
        }
    }
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

/// The library: `--lib`, else next to the running binary.
fn library(lib: Option<&Path>) -> Result<PathBuf, String> {
    let path = match lib {
        Some(lib) => lib.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate this binary: {e}"))?
            .with_file_name(BUILT_LIBRARY),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found (build it with `cargo build --release -p ferroccid-ifd`, or pass --lib)",
            path.display()
        ))
    }
}

/// The interfaces on the USB buses (or, for tests, in `usb_list`) that
/// are readers: only those whose CCID class descriptor parses.
fn found_readers(usb_list: Option<&Path>) -> Vec<ReaderId> {
    let found: Vec<Interface> = match usb_list {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(found) => found,
            Err(e) => {
                eprintln!("ferroccid: {}: {e}", path.display());
                Vec::new()
            }
        },
        None => match list_usb(UsbBackend::from_env()) {
            Ok(found) => found
                .into_iter()
                .map(|i| Interface {
                    vendor_id: i.vendor_id,
                    product_id: i.product_id,
                    product: i.product,
                    class_descriptor: i.class_descriptor,
                })
                .collect(),
            Err(e) => {
                eprintln!("ferroccid: cannot list USB readers ({e}); keeping the known list");
                Vec::new()
            }
        },
    };
    found
        .into_iter()
        .filter(|i| {
            let parses = i
                .class_descriptor
                .as_deref()
                .is_some_and(|d| ClassDescriptor::parse(d).is_ok());
            if !parses {
                eprintln!(
                    "ferroccid: {:04X}:{:04X} has no valid CCID class descriptor; not listed",
                    i.vendor_id, i.product_id
                );
            }
            parses
        })
        .map(|i| ReaderId {
            vendor_id: i.vendor_id,
            product_id: i.product_id,
            name: i
                .product
                .unwrap_or_else(|| format!("{:04X}:{:04X}", i.vendor_id, i.product_id)),
        })
        .collect()
}

/// One USB interface as `found_readers` needs it.
#[derive(serde::Deserialize)]
struct Interface {
    vendor_id: u16,
    product_id: u16,
    product: Option<String>,
    class_descriptor: Option<Vec<u8>>,
}

/// The readers of libccid's bundle in the target drivers directory and in
/// the system's.
fn libccid_readers(drivers_dir: &Path) -> Vec<ReaderId> {
    let mut readers = Vec::new();
    for dir in [drivers_dir, Path::new(DRIVERS_DIR)] {
        let libccid = dir.join(LIBCCID_BUNDLE).join("Contents/Info.plist");
        if let Ok(text) = std::fs::read_to_string(libccid) {
            readers.extend(plist::readers_of(&text));
        }
    }
    readers
}

/// Every reader the Info.plist should list: what it already lists first
/// (so a device never renames a known VID:PID: `plist::render` keeps the
/// first of duplicates), then libccid's, then the `found` interfaces, of
/// which only as many are added as keep the readers beyond libccid's at
/// [`MAX_ADDED_READERS`].
fn known_readers(
    drivers_dir: &Path,
    existing: Option<&str>,
    found: Vec<ReaderId>,
) -> Vec<ReaderId> {
    let libccid = libccid_readers(drivers_dir);
    let libccid_ids: HashSet<(u16, u16)> = libccid
        .iter()
        .map(|r| (r.vendor_id, r.product_id))
        .collect();
    let mut readers = existing.map(plist::readers_of).unwrap_or_default();
    readers.extend(libccid);
    let mut listed: HashSet<(u16, u16)> = readers
        .iter()
        .map(|r| (r.vendor_id, r.product_id))
        .collect();
    let mut added = listed.difference(&libccid_ids).count();
    let mut refused = 0;
    for reader in found {
        let id = (reader.vendor_id, reader.product_id);
        if listed.contains(&id) {
            continue;
        }
        if added >= MAX_ADDED_READERS {
            refused += 1;
            continue;
        }
        listed.insert(id);
        added += 1;
        readers.push(reader);
    }
    if refused > 0 {
        eprintln!(
            "ferroccid: the reader list already holds {MAX_ADDED_READERS} readers beyond \
             libccid's; {refused} new VID:PID not added (delete Info.plist and run \
             `ferroccid install` to start the list over)"
        );
    }
    readers
}

fn config(log_level: u32, command_timeout: Option<String>) -> (BundleConfig, Option<String>) {
    (
        BundleConfig {
            executable: LIBRARY.into(),
            log_level,
            driver_options: 0,
            class_driver: false,
        },
        command_timeout,
    )
}

/// Info.plist text: [`plist::render`] plus the ferroccid keys it does not
/// know.
fn render(config: &(BundleConfig, Option<String>), readers: &[ReaderId]) -> String {
    let text = plist::render(&config.0, readers);
    match &config.1 {
        Some(seconds) => plist::with_string_key(&text, COMMAND_TIMEOUT_KEY, seconds),
        None => text,
    }
}

/// Writes the bundle under `out` (the reader list also takes libccid's
/// from `drivers_dir`); returns the bundle's path.
fn build(
    out: &Path,
    lib: Option<&Path>,
    config: &(BundleConfig, Option<String>),
    drivers_dir: &Path,
) -> Result<(PathBuf, usize), String> {
    let lib = library(lib)?;
    let bundle = out.join(BUNDLE);
    let linux = bundle.join("Contents/Linux");
    std::fs::create_dir_all(&linux).map_err(io(&linux))?;
    let _lock = lock_bundle(&bundle)?;
    // A fresh file renamed over the old one: a running pcscd keeps its
    // mapping of the old file intact.
    let mut source = File::open(&lib).map_err(io(&lib))?;
    replace_file(&linux, LIBRARY, 0o755, |file| {
        std::io::copy(&mut source, file).map(|_| ())
    })?;
    let contents = bundle.join("Contents");
    let existing = std::fs::read_to_string(contents.join("Info.plist")).ok();
    let mut config = config.clone();
    if config.1.is_none() {
        config.1 = existing
            .as_deref()
            .and_then(|t| plist::read_string(t, COMMAND_TIMEOUT_KEY));
    }
    let readers = known_readers(drivers_dir, existing.as_deref(), found_readers(None));
    write_text(&contents, "Info.plist", &render(&config, &readers))?;
    Ok((bundle, readers.len()))
}

/// Replaces `dir/name` with `text` (see [`replace_file`]).
fn write_text(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    replace_file(dir, name, 0o644, |file| {
        std::io::Write::write_all(file, text.as_bytes())
    })
}

/// Replaces `dir/name` atomically: `fill` writes a new temporary file in
/// `dir`, created with `O_CREAT|O_EXCL|O_NOFOLLOW` under an unpredictable
/// name (so nothing planted there is followed or reused), which is then
/// synced and renamed over `name` (rename replaces a symlink, never
/// writes through it).
fn replace_file(
    dir: &Path,
    name: &str,
    mode: u32,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), String> {
    let target = dir.join(name);
    let (temporary, mut file) = create_temporary(dir, name)?;
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| fill(&mut file))
        .and_then(|()| file.sync_all());
    drop(file);
    let result = written
        .map_err(io(&temporary))
        .and_then(|()| std::fs::rename(&temporary, &target).map_err(io(&target)));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn create_temporary(dir: &Path, name: &str) -> Result<(PathBuf, File), String> {
    let mut last = None;
    for _ in 0..16 {
        let path = dir.join(format!(".{name}.{:016x}.tmp", random_u64()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(format!(
        "{}: no free temporary name ({})",
        dir.display(),
        last.map_or_else(String::new, |e| e.to_string())
    ))
}

/// 64 unpredictable bits: the kernel's random source, else std's
/// randomly keyed hasher over the time and process id.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_ne_bytes(bytes);
    }
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// An exclusive `flock` on the bundle's [`LOCK_FILE`], released on drop.
struct BundleLock(#[allow(dead_code)] File);

fn lock_bundle(bundle: &Path) -> Result<BundleLock, String> {
    let path = bundle.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io(&path))?;
    let start = Instant::now();
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(BundleLock(file)),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                if start.elapsed() > LOCK_WAIT {
                    return Err(format!(
                        "{}: still locked by another ferroccid after {LOCK_WAIT:?}",
                        path.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("{}: flock: {e}", path.display())),
        }
    }
}

fn refresh(args: &RefreshArgs) -> Result<(), String> {
    let bundle = args.drivers_dir.join(BUNDLE);
    let contents = bundle.join("Contents");
    let plist_path = contents.join("Info.plist");
    if !plist_path.is_file() {
        return Err(format!("{}: not installed", plist_path.display()));
    }
    // Listing USB takes no lock; everything from reading the old list to
    // deciding on the restart happens under it.
    let found = found_readers(args.usb_list.as_deref());
    let _lock = lock_bundle(&bundle)?;
    let existing = std::fs::read_to_string(&plist_path).map_err(io(&plist_path))?;
    let log_level = plist::read_integer(&existing, "ifdLogLevel").unwrap_or(1);
    let command_timeout = plist::read_string(&existing, COMMAND_TIMEOUT_KEY);
    let before = plist::readers_of(&existing);
    let readers = known_readers(&args.drivers_dir, Some(&existing), found);
    let text = render(&config(log_level, command_timeout), &readers);
    let after = plist::readers_of(&text);
    if after == before && text == existing {
        if !args.quiet {
            println!(
                "{}: {} readers, unchanged",
                plist_path.display(),
                after.len()
            );
        }
        return Ok(());
    }
    write_text(&contents, "Info.plist", &text)?;
    if !args.quiet {
        println!(
            "{}: {} readers ({} new)",
            plist_path.display(),
            after.len(),
            after.len().saturating_sub(before.len())
        );
    }
    if !args.no_rescan {
        restart_pcscd_limited(&bundle, args.quiet, args.restart_log.as_deref());
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a refresh does about pcscd, given the time recorded in
/// [`RESTART_STATE`] (`last`, 0 if none) and `now`: restart now, queue one
/// at the end of the interval, or nothing (one is queued already).
#[derive(Debug, PartialEq, Eq)]
enum Restart {
    Now,
    At(u64),
    Queued,
}

fn restart_decision(last: u64, now: u64) -> Restart {
    // A recorded time far ahead is a clock that went back, or garbage.
    let last = if last > now.saturating_add(RESTART_INTERVAL) {
        0
    } else {
        last
    };
    if now >= last.saturating_add(RESTART_INTERVAL) {
        Restart::Now
    } else if last > now {
        Restart::Queued
    } else {
        Restart::At(last + RESTART_INTERVAL)
    }
}

/// Restarts pcscd, at most once per [`RESTART_INTERVAL`] (called with the
/// bundle lock held, so the state file has one writer).
fn restart_pcscd_limited(bundle: &Path, quiet: bool, log: Option<&Path>) {
    let state = bundle.join(RESTART_STATE);
    let last = std::fs::read_to_string(&state)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let now = unix_now();
    let when = match restart_decision(last, now) {
        Restart::Queued => return,
        Restart::Now => {
            run_restart(
                &["systemctl", "--no-block", "try-restart", "pcscd.service"],
                quiet,
                log,
            );
            now
        }
        Restart::At(at) => {
            let delay = format!("--on-active={}s", at - now);
            let queued = run_restart(
                &[
                    "systemd-run",
                    "--no-block",
                    "--collect",
                    &delay,
                    "systemctl",
                    "--no-block",
                    "try-restart",
                    "pcscd.service",
                ],
                quiet,
                log,
            );
            if !queued {
                return;
            }
            at
        }
    };
    if let Err(e) = write_text(bundle, RESTART_STATE, &format!("{when}\n")) {
        eprintln!("ferroccid: {e}");
    }
}

/// Runs `command` (or, for tests, appends it to `log`); true on success.
fn run_restart(command: &[&str], quiet: bool, log: Option<&Path>) -> bool {
    if let Some(log) = log {
        let line = format!("{}\n", command.join(" "));
        return OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
            .is_ok();
    }
    match std::process::Command::new(command[0])
        .args(&command[1..])
        .status()
    {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("ferroccid: {}: {status}", command.join(" "));
            false
        }
        Err(_) => {
            if !quiet {
                eprintln!(
                    "ferroccid: no {}; restart pcscd to load the new reader list",
                    command[0]
                );
            }
            false
        }
    }
}

/// pcscd reads bundles only at start (`pcscd --hotplug` rescans USB but
/// keeps its driver table), so a changed list needs a restart. Debian's
/// pcscd is socket-activated: `try-restart` restarts it only if running.
/// `--no-block` queues the restart and returns at once: udev kills
/// programs of a RUN rule that take long, and a restart waits for pcscd to
/// stop.
fn restart_pcscd(quiet: bool) {
    run_restart(
        &["systemctl", "--no-block", "try-restart", "pcscd.service"],
        quiet,
        None,
    );
}

fn rules(binary: &Path, drivers_dir: &Path) -> String {
    RULES_TEMPLATE
        .replace("@FERROCCID@", &binary.display().to_string())
        .replace("@DRIVERS@", &drivers_dir.display().to_string())
}

fn install(args: &InstallArgs) -> Result<(), String> {
    let bin_dir = args.prefix.join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(io(&bin_dir))?;
    let binary = bin_dir.join("ferroccid");
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    if me != binary {
        let mut source = File::open(&me).map_err(io(&me))?;
        replace_file(&bin_dir, "ferroccid", 0o755, |file| {
            std::io::copy(&mut source, file).map(|_| ())
        })?;
    }
    let (bundle, readers) = build(
        &args.drivers_dir,
        args.lib.as_deref(),
        &config(1, None),
        &args.drivers_dir,
    )?;
    std::fs::create_dir_all(&args.udev_dir).map_err(io(&args.udev_dir))?;
    let rules_path = args.udev_dir.join(RULES);
    write_text(&args.udev_dir, RULES, &rules(&binary, &args.drivers_dir))?;
    println!("installed {}", binary.display());
    println!("installed {} ({readers} readers)", bundle.display());
    println!("installed {}", rules_path.display());
    if !args.no_rescan {
        ensure_pcscd_group();
        reload_udev();
        restart_pcscd(false);
    }
    Ok(())
}

/// The udev rules give CCID readers to group `pcscd` (as upstream libccid
/// does); Debian's pcscd runs as root and ships no such group, so a real
/// install creates it as a system group. Staged installs (`--no-rescan`)
/// touch no system state and skip this.
fn ensure_pcscd_group() {
    let exists = std::process::Command::new("getent")
        .args(["group", "pcscd"])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        return;
    }
    match std::process::Command::new("groupadd")
        .args(["--system", "pcscd"])
        .status()
    {
        Ok(status) if status.success() => println!("created system group pcscd"),
        Ok(status) => eprintln!("ferroccid: groupadd --system pcscd: {status}"),
        Err(e) => eprintln!("ferroccid: cannot run groupadd to create group pcscd: {e}"),
    }
}

fn uninstall(args: &UninstallArgs) -> Result<(), String> {
    let bundle = args.drivers_dir.join(BUNDLE);
    if bundle.exists() {
        std::fs::remove_dir_all(&bundle).map_err(io(&bundle))?;
        println!("removed {}", bundle.display());
    }
    let rules_path = args.udev_dir.join(RULES);
    if rules_path.exists() {
        std::fs::remove_file(&rules_path).map_err(io(&rules_path))?;
        println!("removed {}", rules_path.display());
    }
    let binary = args.prefix.join("bin/ferroccid");
    if binary.exists() {
        std::fs::remove_file(&binary).map_err(io(&binary))?;
        println!("removed {}", binary.display());
    }
    if !args.no_rescan {
        reload_udev();
        restart_pcscd(false);
    }
    Ok(())
}

fn reload_udev() {
    let _ = std::process::Command::new("udevadm")
        .args(["control", "--reload"])
        .status();
}
