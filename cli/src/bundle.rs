//! The pcscd bundle: build it, install it with the udev rules, remove it,
//! and keep its reader list current.
//!
//! - `ferroccid bundle --out DIR [--lib PATH]` writes
//!   `DIR/ifd-ferroccid.bundle/Contents/{Info.plist, Linux/libferroccid.so}`;
//! - `ferroccid bundle refresh` rewrites the installed Info.plist's reader
//!   list and asks pcscd to pick it up (the udev rule runs it when a CCID
//!   interface appears);
//! - `ferroccid bundle prefer ferroccid|libccid` picks the driver for the
//!   readers both list;
//! - `ferroccid bundle restart-pcscd` restarts pcscd once it has no client;
//! - `ferroccid install` / `ferroccid uninstall` put the bundle, the udev
//!   rules and the binary in place, or take them away (the Debian package,
//!   built by tests/scripts/deb.sh, does the same with dpkg).
//!
//! pcscd 1.9.9 hands a USB reader to a bundle only when its VID:PID is
//! listed in Info.plist, and reads the bundles only when it starts. So the
//! list is what it already held + every reader known to be a CCID reader
//! ([`KNOWN_READERS`], which includes libccid's list) + the readers the
//! installed libccid lists + every CCID interface present; plugging in a
//! model seen anywhere before changes nothing. A reader that is new to the
//! list needs a pcscd restart, which waits until pcscd has no client
//! (`restart-pcscd --when-idle`): no other reader's client is cut.
//!
//! Both ferroccid and libccid list most readers. pcscd uses a specific
//! driver before a class driver (libccid's bundle is `CCIDCLASSDRIVER`),
//! and the class driver when the specific one fails to open the reader.
//! With [`Preference::Ferroccid`] (the default) ferroccid lists them all,
//! so it drives them and libccid is the fallback; with
//! [`Preference::Libccid`] ferroccid's list leaves out every reader
//! libccid lists.
//!
//! In the Debian package `Contents/Info.plist` is a symlink to
//! `/var/lib/ferroccid/Info.plist`: the generated list is state, and the packaged files
//! stay as dpkg installed them.
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
//! - queues at most one pcscd restart at a time (one systemd unit,
//!   [`RESTART_UNIT`]), which waits until pcscd has no client.

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
/// The transient systemd unit that waits for pcscd to be idle and
/// restarts it; its name makes it one at a time.
pub const RESTART_UNIT: &str = "ferroccid-pcscd-restart";
/// pcscd's socket (pcsc-lite's default; `PCSCLITE_CSOCK_NAME` overrides it,
/// as it does for pcscd and its clients).
const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
/// How long a queued restart waits for pcscd to have no client.
const IDLE_WAIT_DEFAULT: u64 = 24 * 3600;
/// The Info.plist key recording [`Preference`].
pub const PREFER_KEY: &str = "ifdFerroccidPrefer";
/// Every USB VID:PID known to be a CCID reader, with its name: libccid's
/// list and the reader corpus (regenerate with tests/scripts/known-readers.py).
pub const KNOWN_READERS: &str = include_str!("../data/known-readers.tsv");

/// Which driver pcscd should use for a reader both ferroccid and libccid
/// list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preference {
    /// ferroccid lists every known reader; libccid is pcscd's fallback.
    Ferroccid,
    /// ferroccid lists only readers libccid does not.
    Libccid,
}

impl Preference {
    fn as_str(self) -> &'static str {
        match self {
            Preference::Ferroccid => "ferroccid",
            Preference::Libccid => "libccid",
        }
    }

    /// The preference recorded in an Info.plist (ferroccid if none).
    fn of(text: &str) -> Preference {
        match plist::read_string(text, PREFER_KEY).as_deref() {
            Some("libccid") => Preference::Libccid,
            _ => Preference::Ferroccid,
        }
    }
}

/// [`KNOWN_READERS`] parsed.
pub fn known_reader_list() -> Vec<ReaderId> {
    KNOWN_READERS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let vendor_id = u16::from_str_radix(fields.next()?, 16).ok()?;
            let product_id = u16::from_str_radix(fields.next()?, 16).ok()?;
            let name = fields.next()?.to_owned();
            Some(ReaderId {
                vendor_id,
                product_id,
                name,
            })
        })
        .collect()
}

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
    /// Choose the driver for readers both ferroccid and libccid list.
    Prefer(PreferArgs),
    /// Restart pcscd so that it reads the bundles again.
    RestartPcscd(RestartArgs),
}

#[derive(clap::Args)]
struct PreferArgs {
    /// ferroccid (the default) or libccid.
    driver: Preference,
    /// pcscd's USB drivers directory.
    #[arg(long, value_name = "DIR", default_value = DRIVERS_DIR)]
    drivers_dir: PathBuf,
    /// Do not restart pcscd.
    #[arg(long)]
    no_rescan: bool,
}

#[derive(clap::Args)]
struct RestartArgs {
    /// Wait until pcscd has no client before restarting it (at most
    /// --max-wait); without it, restart at once.
    #[arg(long)]
    when_idle: bool,
    /// With --when-idle: give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = IDLE_WAIT_DEFAULT)]
    max_wait: u64,
    /// Queue the restart in the background (a transient systemd unit that
    /// runs `restart-pcscd --when-idle`) and return at once.
    #[arg(long, conflicts_with = "when_idle")]
    queue: bool,
    /// Run this shell command instead of `systemctl try-restart
    /// pcscd.service` (systems without systemd; tests).
    #[arg(long, value_name = "COMMAND")]
    exec: Option<String>,
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
        Command::Bundle(BundleArgs {
            refresh: Some(BundleCommand::Prefer(args)),
            ..
        }) => prefer(&args),
        Command::Bundle(BundleArgs {
            refresh: Some(BundleCommand::RestartPcscd(args)),
            ..
        }) => restart_command(&args),
        Command::Bundle(args) => match &args.out {
            Some(out) => build(
                out,
                args.lib.as_deref(),
                &config(
                    args.log_level,
                    args.command_timeout.clone(),
                    Preference::Ferroccid,
                ),
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
/// first of duplicates), then the known readers and libccid's, then the
/// `found` interfaces, of which only as many are added as keep the readers
/// beyond those at [`MAX_ADDED_READERS`]. With [`Preference::Libccid`],
/// no reader libccid lists.
fn known_readers(
    drivers_dir: &Path,
    existing: Option<&str>,
    found: Vec<ReaderId>,
    prefer: Preference,
) -> Vec<ReaderId> {
    let id = |r: &ReaderId| (r.vendor_id, r.product_id);
    let libccid = libccid_readers(drivers_dir);
    let libccid_ids: HashSet<(u16, u16)> = libccid.iter().map(id).collect();
    let known = known_reader_list();
    let base: HashSet<(u16, u16)> = libccid_ids
        .iter()
        .copied()
        .chain(known.iter().map(id))
        .collect();
    let mut readers = existing.map(plist::readers_of).unwrap_or_default();
    readers.extend(known);
    readers.extend(libccid);
    if prefer == Preference::Libccid {
        readers.retain(|r| !libccid_ids.contains(&id(r)));
    }
    let mut listed: HashSet<(u16, u16)> = readers.iter().map(id).collect();
    let mut added = listed.difference(&base).count();
    let mut refused = 0;
    for reader in found {
        let key = id(&reader);
        if listed.contains(&key) || libccid_ids.contains(&key) {
            // Listed, or libccid's (so listed unless libccid is preferred).
            continue;
        }
        if added >= MAX_ADDED_READERS {
            refused += 1;
            continue;
        }
        listed.insert(key);
        added += 1;
        readers.push(reader);
    }
    if refused > 0 {
        eprintln!(
            "ferroccid: the reader list already holds {MAX_ADDED_READERS} readers beyond \
             the known ones; {refused} new VID:PID not added (delete Info.plist and run \
             `ferroccid bundle refresh` to start the list over)"
        );
    }
    readers
}

/// The bundle's settings besides the reader list: the library's
/// [`BundleConfig`], the command timeout and the preference.
#[derive(Clone)]
struct Settings {
    bundle: BundleConfig,
    command_timeout: Option<String>,
    prefer: Preference,
}

fn config(log_level: u32, command_timeout: Option<String>, prefer: Preference) -> Settings {
    Settings {
        bundle: BundleConfig {
            executable: LIBRARY.into(),
            log_level,
            driver_options: 0,
            class_driver: false,
        },
        command_timeout,
        prefer,
    }
}

/// The settings an Info.plist records (defaults where it has none).
fn settings_of(text: &str) -> Settings {
    config(
        plist::read_integer(text, "ifdLogLevel").unwrap_or(1),
        plist::read_string(text, COMMAND_TIMEOUT_KEY),
        Preference::of(text),
    )
}

/// Info.plist text: [`plist::render`] plus the ferroccid keys it does not
/// know.
fn render(settings: &Settings, readers: &[ReaderId]) -> String {
    let mut text = plist::render(&settings.bundle, readers);
    if let Some(seconds) = &settings.command_timeout {
        text = plist::with_string_key(&text, COMMAND_TIMEOUT_KEY, seconds);
    }
    plist::with_string_key(&text, PREFER_KEY, settings.prefer.as_str())
}

/// Where a bundle's Info.plist text really lives: `Contents/Info.plist`
/// itself, or, when that is a symlink (the Debian package's, to
/// `/var/lib/ferroccid/Info.plist`), the symlink's target. The target is followed only if
/// its directory belongs to the owner of `Contents/` and nobody else may
/// write there: a planted link cannot redirect a root refresh.
fn plist_home(contents: &Path) -> Result<(PathBuf, String), String> {
    let link = contents.join("Info.plist");
    let is_link = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Ok((contents.to_path_buf(), "Info.plist".into()));
    }
    let target = contents.join(std::fs::read_link(&link).map_err(io(&link))?);
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(format!("{}: bad symlink", link.display()));
    };
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(contents).map_err(io(contents))?.uid();
    let dir_meta = std::fs::metadata(dir).map_err(io(dir))?;
    if dir_meta.uid() != owner || dir_meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} points into {}, which the bundle's owner does not own or others may write",
            link.display(),
            dir.display()
        ));
    }
    Ok((dir.to_path_buf(), name.to_string_lossy().into_owned()))
}

/// Writes the bundle under `out` (the reader list also takes libccid's
/// from `drivers_dir`); returns the bundle's path.
fn build(
    out: &Path,
    lib: Option<&Path>,
    settings: &Settings,
    drivers_dir: &Path,
) -> Result<(PathBuf, usize), String> {
    let lib = library(lib)?;
    let bundle = out.join(BUNDLE);
    let contents = bundle.join("Contents");
    let linux = contents.join("Linux");
    std::fs::create_dir_all(&linux).map_err(io(&linux))?;
    let (home, name) = plist_home(&contents)?;
    let _lock = lock_dir(&home)?;
    // A fresh file renamed over the old one: a running pcscd keeps its
    // mapping of the old file intact.
    let mut source = File::open(&lib).map_err(io(&lib))?;
    replace_file(&linux, LIBRARY, 0o755, |file| {
        std::io::copy(&mut source, file).map(|_| ())
    })?;
    let existing = std::fs::read_to_string(home.join(&name)).ok();
    let mut settings = settings.clone();
    if let Some(old) = existing.as_deref().map(settings_of) {
        settings.command_timeout = settings.command_timeout.or(old.command_timeout);
        settings.prefer = old.prefer;
    }
    let readers = known_readers(
        drivers_dir,
        existing.as_deref(),
        found_readers(None),
        settings.prefer,
    );
    write_text(&home, &name, &render(&settings, &readers))?;
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

/// An exclusive `flock` on [`LOCK_FILE`] beside the bundle's Info.plist,
/// released on drop.
struct BundleLock(#[allow(dead_code)] File);

fn lock_dir(dir: &Path) -> Result<BundleLock, String> {
    let path = dir.join(LOCK_FILE);
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

/// The bundle's `Contents/` in `drivers_dir`, where its Info.plist lives
/// (see [`plist_home`]), and that file's text if there is one. A missing
/// Info.plist is an error unless it is the target of the package's
/// symlink (the package's first refresh creates it).
fn installed_plist(drivers_dir: &Path) -> Result<(PathBuf, String, Option<String>), String> {
    let contents = drivers_dir.join(BUNDLE).join("Contents");
    if !contents.is_dir() {
        return Err(format!("{}: not installed", contents.display()));
    }
    let (home, name) = plist_home(&contents)?;
    let path = home.join(&name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((home, name, Some(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && home != contents => {
            Ok((home, name, None))
        }
        Err(e) => Err(io(&path)(e)),
    }
}

fn ids(readers: &[ReaderId]) -> HashSet<(u16, u16)> {
    readers
        .iter()
        .map(|r| (r.vendor_id, r.product_id))
        .collect()
}

fn refresh(args: &RefreshArgs) -> Result<(), String> {
    // Listing USB takes no lock; everything from reading the old list to
    // queueing the restart happens under it.
    let found = found_readers(args.usb_list.as_deref());
    let (home, name, _) = installed_plist(&args.drivers_dir)?;
    let _lock = lock_dir(&home)?;
    let (_, _, existing) = installed_plist(&args.drivers_dir)?;
    let settings = existing
        .as_deref()
        .map_or_else(|| config(1, None, Preference::Ferroccid), settings_of);
    let before = existing
        .as_deref()
        .map(plist::readers_of)
        .unwrap_or_default();
    let readers = known_readers(
        &args.drivers_dir,
        existing.as_deref(),
        found,
        settings.prefer,
    );
    let text = render(&settings, &readers);
    let path = home.join(&name);
    if existing.as_deref() == Some(text.as_str()) {
        if !args.quiet {
            println!("{}: {} readers, unchanged", path.display(), readers.len());
        }
        return Ok(());
    }
    write_text(&home, &name, &text)?;
    let after = plist::readers_of(&text);
    let new = ids(&after).difference(&ids(&before)).count();
    if !args.quiet {
        println!("{}: {} readers ({new} new)", path.display(), after.len());
    }
    // pcscd needs a restart only for a changed reader list.
    if ids(&after) != ids(&before) && !args.no_rescan {
        queue_restart(args.quiet, args.restart_log.as_deref());
    }
    Ok(())
}

fn prefer(args: &PreferArgs) -> Result<(), String> {
    let (home, name, _) = installed_plist(&args.drivers_dir)?;
    let _lock = lock_dir(&home)?;
    let (_, _, existing) = installed_plist(&args.drivers_dir)?;
    let mut settings = existing
        .as_deref()
        .map_or_else(|| config(1, None, args.driver), settings_of);
    settings.prefer = args.driver;
    let readers = known_readers(
        &args.drivers_dir,
        existing.as_deref(),
        Vec::new(),
        args.driver,
    );
    let text = render(&settings, &readers);
    write_text(&home, &name, &text)?;
    let libccid = ids(&libccid_readers(&args.drivers_dir));
    let both = ids(&readers).intersection(&libccid).count();
    println!(
        "{}: {} readers; pcscd uses {} for the {} readers libccid lists{}",
        home.join(&name).display(),
        readers.len(),
        args.driver.as_str(),
        libccid.len(),
        match args.driver {
            Preference::Ferroccid => format!(" ({both} listed by ferroccid too)"),
            Preference::Libccid => String::new(),
        }
    );
    if !args.no_rescan {
        queue_restart(false, None);
    }
    Ok(())
}

/// Whether systemd is the running init (sd_booted's test).
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Queues one pcscd restart that waits until pcscd has no client: a
/// transient systemd unit ([`RESTART_UNIT`]) running `restart-pcscd
/// --when-idle`. pcscd reads bundles only when it starts; a restart while a
/// client is connected would cut every reader's clients. udev kills what a
/// RUN rule leaves running, hence systemd. One queued restart serves every
/// change made before it runs. For tests, `log` receives the command
/// instead.
fn queue_restart(quiet: bool, log: Option<&Path>) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/ferroccid"));
    let exe = exe.display().to_string();
    let command = [
        "systemd-run",
        "--no-block",
        "--collect",
        "--quiet",
        "--unit",
        RESTART_UNIT,
        &exe,
        "bundle",
        "restart-pcscd",
        "--when-idle",
    ];
    if let Some(log) = log {
        let line = format!("{}\n", command.join(" "));
        let _ = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        return;
    }
    if !systemd_running() {
        if !quiet {
            eprintln!(
                "ferroccid: systemd is not running: restart pcscd once its clients are done \
                 to load the new reader list"
            );
        }
        return;
    }
    let queued = std::process::Command::new("systemctl")
        .args(["is-active", "--quiet", RESTART_UNIT])
        .status()
        .is_ok_and(|s| s.success());
    if queued {
        return;
    }
    match std::process::Command::new(command[0])
        .args(&command[1..])
        .status()
    {
        Ok(status) if status.success() => {
            if !quiet {
                println!("pcscd will restart once it has no client ({RESTART_UNIT}.service)");
            }
        }
        Ok(status) => eprintln!("ferroccid: {}: {status}", command.join(" ")),
        Err(e) => eprintln!("ferroccid: {}: {e}", command[0]),
    }
}

/// The same wait and restart as [`queue_restart`], in shell, for when
/// this binary is going away (`uninstall`; the package's postrm has its
/// own copy).
fn queue_shell_restart() {
    if !systemd_running() {
        eprintln!("ferroccid: systemd is not running: restart pcscd to unload the bundle");
        return;
    }
    let script = format!(
        "i=0; while [ $i -lt {IDLE_WAIT_DEFAULT} ] && awk -v s={PCSCD_SOCKET} \
         '$8 == s && $6 == \"03\" {{ f = 1 }} END {{ exit !f }}' /proc/net/unix; \
         do sleep 1; i=$((i+1)); done; systemctl try-restart pcscd.service"
    );
    let _ = std::process::Command::new("systemd-run")
        .args(["--no-block", "--collect", "--quiet", "--unit", RESTART_UNIT])
        .args(["sh", "-c", &script])
        .status();
}

/// The number of clients connected to pcscd: the connections pcscd
/// accepted on its socket. pcscd writes its pid beside the socket
/// (`pcscd.pid`); the clients are the sockets in that process's fd table
/// that /proc/net/unix lists as connected (St 03) with a path (the server
/// end of an accepted connection carries the listener's path; columns:
/// Num RefCount Protocol Flags Type St Inode Path). Counting by process
/// rather than by path keeps two pcscd instances apart (each in its own
/// mount namespace shows the same path). Without a pid file, the
/// connections bound to `socket`'s path are counted.
pub(crate) fn pcscd_clients(socket: &Path) -> Result<usize, String> {
    let table =
        std::fs::read_to_string("/proc/net/unix").map_err(io(Path::new("/proc/net/unix")))?;
    // (inode, path) of every connected socket that has a path.
    let connected: Vec<(&str, &str)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 8 && fields[5] == "03").then(|| (fields[6], fields[7]))
        })
        .collect();
    let pid = socket
        .parent()
        .map(|dir| dir.join("pcscd.pid"))
        .and_then(|file| std::fs::read_to_string(file).ok())
        // pcscd writes the pid with a newline and a NUL after it.
        .and_then(|text| {
            text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                .parse::<u32>()
                .ok()
        });
    let Some(pid) = pid else {
        let socket = socket.to_string_lossy();
        return Ok(connected.iter().filter(|(_, path)| *path == socket).count());
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("pcscd (pid {pid}): /proc/{pid}/fd: {e}"))?;
    let inodes: HashSet<String> = fds
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    Ok(connected
        .iter()
        .filter(|(inode, _)| inodes.contains(*inode))
        .count())
}

/// pcscd's socket: `PCSCLITE_CSOCK_NAME`, else the compiled-in default.
fn pcscd_socket() -> PathBuf {
    std::env::var_os("PCSCLITE_CSOCK_NAME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PCSCD_SOCKET.into())
}

/// `bundle restart-pcscd`.
fn restart_command(args: &RestartArgs) -> Result<(), String> {
    if args.queue {
        queue_restart(false, None);
        return Ok(());
    }
    if args.when_idle {
        let socket = pcscd_socket();
        let deadline = Instant::now() + Duration::from_secs(args.max_wait);
        loop {
            let clients = pcscd_clients(&socket)?;
            if clients == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "pcscd still has {clients} client(s) after {} s; not restarted \
                     (restart it when convenient: systemctl restart pcscd)",
                    args.max_wait
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let (program, arguments): (&str, Vec<&str>) = match &args.exec {
        Some(command) => ("sh", vec!["-c", command]),
        None if systemd_running() => ("systemctl", vec!["try-restart", "pcscd.service"]),
        None => ("invoke-rc.d", vec!["pcscd", "restart"]),
    };
    let status = std::process::Command::new(program)
        .args(&arguments)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {status}", arguments.join(" ")))
    }
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
        &config(1, None, Preference::Ferroccid),
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
        queue_restart(false, None);
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
        queue_shell_restart();
    }
    Ok(())
}

fn reload_udev() {
    let _ = std::process::Command::new("udevadm")
        .args(["control", "--reload"])
        .status();
}
