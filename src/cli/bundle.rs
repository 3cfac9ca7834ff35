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
//! every CCID-class interface present + the readers the installed libccid
//! lists + what the list already held, and a refresh restarts pcscd.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferroccid::device::{list_usb, UsbBackend};
use ferroccid::ifd::plist::{self, BundleConfig, ReaderId};

/// pcscd's USB drivers directory on Debian (compiled into pcscd).
const DRIVERS_DIR: &str = "/usr/lib/pcsc/drivers";
/// Where local udev rules go.
const UDEV_DIR: &str = "/etc/udev/rules.d";
/// The bundle's directory name.
const BUNDLE: &str = "ifd-ferroccid.bundle";
/// The library's file name inside `Contents/Linux/`.
const LIBRARY: &str = "libferroccid.so";
/// The udev rules file name.
const RULES: &str = "92-ferroccid.rules";
/// The rules template; `@FERROCCID@` and `@DRIVERS@` are filled in.
const RULES_TEMPLATE: &str = include_str!("../../udev/92-ferroccid.rules");
/// libccid's bundle, whose reader list is kept.
const LIBCCID_BUNDLE: &str = "ifd-ccid.bundle";

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
    /// The library (default: `libferroccid.so` next to this binary).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// `ifdLogLevel`: bit 0 errors, 1 info, 2 debug, 3 trace.
    #[arg(long, value_name = "MASK", default_value_t = 1)]
    log_level: u32,
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
    /// The library (default: `libferroccid.so` next to this binary).
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
                args.log_level,
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
            .with_file_name(LIBRARY),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found (build it with `cargo build --lib`, or pass --lib)",
            path.display()
        ))
    }
}

/// Every reader the Info.plist should list.
fn known_readers(drivers_dir: &Path, existing: Option<&str>) -> Vec<ReaderId> {
    let mut readers = Vec::new();
    match list_usb(UsbBackend::from_env()) {
        Ok(found) => readers.extend(found.into_iter().map(|i| {
            ReaderId {
                vendor_id: i.vendor_id,
                product_id: i.product_id,
                name: i
                    .product
                    .unwrap_or_else(|| format!("{:04X}:{:04X}", i.vendor_id, i.product_id)),
            }
        })),
        Err(e) => eprintln!("ferroccid: cannot list USB readers ({e}); keeping the known list"),
    }
    // libccid's list, from the target drivers directory and the system's.
    for dir in [drivers_dir, Path::new(DRIVERS_DIR)] {
        let libccid = dir.join(LIBCCID_BUNDLE).join("Contents/Info.plist");
        if let Ok(text) = std::fs::read_to_string(libccid) {
            readers.extend(plist::readers_of(&text));
        }
    }
    if let Some(text) = existing {
        readers.extend(plist::readers_of(text));
    }
    readers
}

fn config(log_level: u32) -> BundleConfig {
    BundleConfig {
        executable: LIBRARY.into(),
        log_level,
        driver_options: 0,
        class_driver: false,
    }
}

/// Writes the bundle under `out` (the reader list also takes libccid's
/// from `drivers_dir`); returns the bundle's path.
fn build(
    out: &Path,
    lib: Option<&Path>,
    log_level: u32,
    drivers_dir: &Path,
) -> Result<(PathBuf, usize), String> {
    let lib = library(lib)?;
    let bundle = out.join(BUNDLE);
    let linux = bundle.join("Contents/Linux");
    std::fs::create_dir_all(&linux).map_err(io(&linux))?;
    let target = linux.join(LIBRARY);
    // Copy to a temporary name and rename: a running pcscd keeps its
    // mapping of the old file intact.
    let temporary = linux.join(format!(".{LIBRARY}.new"));
    std::fs::copy(&lib, &temporary).map_err(io(&temporary))?;
    std::fs::rename(&temporary, &target).map_err(io(&target))?;
    let plist_path = bundle.join("Contents/Info.plist");
    let existing = std::fs::read_to_string(&plist_path).ok();
    let readers = known_readers(drivers_dir, existing.as_deref());
    write_plist(&plist_path, &plist::render(&config(log_level), &readers))?;
    Ok((bundle, readers.len()))
}

fn write_plist(path: &Path, text: &str) -> Result<(), String> {
    let temporary = path.with_extension("plist.new");
    std::fs::write(&temporary, text).map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))
}

fn refresh(args: &RefreshArgs) -> Result<(), String> {
    let plist_path = args.drivers_dir.join(BUNDLE).join("Contents/Info.plist");
    let existing = std::fs::read_to_string(&plist_path).map_err(io(&plist_path))?;
    let log_level = plist::read_integer(&existing, "ifdLogLevel").unwrap_or(1);
    let before = plist::readers_of(&existing);
    let readers = known_readers(&args.drivers_dir, Some(&existing));
    let text = plist::render(&config(log_level), &readers);
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
    write_plist(&plist_path, &text)?;
    if !args.quiet {
        println!(
            "{}: {} readers ({} new)",
            plist_path.display(),
            after.len(),
            after.len().saturating_sub(before.len())
        );
    }
    if !args.no_rescan {
        restart_pcscd(args.quiet);
    }
    Ok(())
}

/// pcscd reads bundles only at start (`pcscd --hotplug` rescans USB but
/// keeps its driver table), so a changed list needs a restart. Debian's
/// pcscd is socket-activated: `try-restart` restarts it only if running.
/// `--no-block` queues the restart and returns at once: udev kills
/// programs of a RUN rule that take long, and a restart waits for pcscd to
/// stop.
fn restart_pcscd(quiet: bool) {
    match std::process::Command::new("systemctl")
        .args(["--no-block", "try-restart", "pcscd.service"])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("ferroccid: systemctl try-restart pcscd.service: {status}"),
        Err(_) if !quiet => {
            eprintln!("ferroccid: no systemctl; restart pcscd to load the new reader list")
        }
        Err(_) => {}
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
        let temporary = bin_dir.join(".ferroccid.new");
        std::fs::copy(&me, &temporary).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &binary).map_err(io(&binary))?;
    }
    let (bundle, readers) = build(&args.drivers_dir, args.lib.as_deref(), 1, &args.drivers_dir)?;
    std::fs::create_dir_all(&args.udev_dir).map_err(io(&args.udev_dir))?;
    let rules_path = args.udev_dir.join(RULES);
    std::fs::write(&rules_path, rules(&binary, &args.drivers_dir)).map_err(io(&rules_path))?;
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
