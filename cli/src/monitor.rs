//! `ferroccid monitor [--reader NAME | --pcsc]`: prints reader, card and PIN
//! events of the card service layer as they happen, one line each. A
//! ferroccid device is watched directly; `--pcsc` watches every reader of
//! pcscd, and `--reader pcsc:PART` those of its readers whose name
//! contains PART (through `ferroccid_card::PcscMonitor`). `--system`
//! subscribes to the events pcscd's ferroccid bundle publishes: cards
//! inserted and removed, PINs verified, failed, blocked and changed (the
//! credential-manager notifications; `ferroccid_ifd::NOTIFY_SOCKET_ENV`).
use std::process::ExitCode;
use std::time::Duration;

use ferroccid_card::{AttachOptions, CardManager, ChannelError, Error, EventBus, EventKind};

/// Arguments of `ferroccid monitor`.
#[derive(clap::Args)]
pub struct Args {
    /// Reader device name (`sim`, `usb:…`, `usbip:…`, `NAME#SLOT`), or
    /// `pcsc:PART` for the pcscd readers whose name contains PART.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Watch every reader of pcscd (readers added and removed, cards
    /// inserted and removed); the readers there now come first.
    #[arg(long, conflicts_with = "reader")]
    pub pcsc: bool,
    /// Subscribe to the card and PIN events (logon, password change) that
    /// pcscd's ferroccid bundle publishes on its socket
    /// (FERROCCID_NOTIFY_SOCKET, default /run/ferroccid/notify). Root may
    /// always subscribe; other users when /etc/ferroccid/notify.d allows.
    #[arg(long, conflicts_with_all = ["reader", "pcsc"])]
    pub system: bool,
    /// With --system: print each event as the bundle's JSON line.
    #[arg(long, requires = "system")]
    pub json: bool,
    /// How often to look at the reader, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub interval: u64,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

fn print_event(event: &ferroccid_card::Event) {
    println!("{:>6} {:<24} {:?}", event.seq, event.reader, event.kind);
}

/// Run `ferroccid monitor`.
pub fn run(args: Args) -> ExitCode {
    if args.system {
        return run_system(&args);
    }
    if args.pcsc {
        return run_pcsc(None, &args);
    }
    if let Some(part) = args.reader.strip_prefix("pcsc:") {
        return run_pcsc(Some(part), &args);
    }
    let bus = EventBus::global();
    let events = bus.subscribe();
    let interval = Duration::from_millis(args.interval.max(10));
    let mut printed = 0u64;
    let mut attached: Option<CardManager> = None;
    loop {
        if attached.is_none() {
            match CardManager::attach_by_ifd(&args.reader, AttachOptions::default()) {
                Ok(card) => {
                    bus.publish(card.reader_name(), EventKind::ReaderAdded);
                    if card.status().is_ok_and(|s| s.present) {
                        bus.publish(card.reader_name(), EventKind::CardInserted);
                    }
                    attached = Some(card);
                }
                Err(Error::Channel(ChannelError::NoCard)) => {}
                Err(e) => {
                    eprintln!("ferroccid monitor: {}: {e}", args.reader);
                    return ExitCode::FAILURE;
                }
            }
        } else if let Some(card) = &attached {
            if let Err(Error::Channel(ChannelError::ReaderUnavailable)) = card.status() {
                bus.publish(card.reader_name(), EventKind::ReaderRemoved);
                attached = None;
            }
        }
        while let Some(event) = events.try_recv() {
            print_event(&event);
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return ExitCode::SUCCESS;
            }
        }
        std::thread::sleep(interval);
    }
}

/// Watches pcscd's readers; `part` keeps the events of readers whose name
/// contains it.
#[cfg(feature = "pcsc")]
fn run_pcsc(part: Option<&str>, args: &Args) -> ExitCode {
    use std::io::Write;
    let bus = EventBus::new();
    let events = bus.subscribe();
    let _monitor = match ferroccid_card::PcscMonitor::start_announcing(bus) {
        Ok(monitor) => monitor,
        Err(e) => {
            eprintln!("ferroccid monitor: pcscd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let interval = Duration::from_millis(args.interval.max(10));
    let mut printed = 0u64;
    loop {
        let Some(event) = events.recv_timeout(interval) else {
            continue;
        };
        if part.is_some_and(|p| !event.reader.contains(p)) {
            continue;
        }
        print_event(&event);
        // Each line as it happens, also into a pipe.
        let _ = std::io::stdout().flush();
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            return ExitCode::SUCCESS;
        }
    }
}

#[cfg(not(feature = "pcsc"))]
fn run_pcsc(_: Option<&str>, _: &Args) -> ExitCode {
    eprintln!("ferroccid monitor: built without the pcsc feature");
    ExitCode::FAILURE
}

/// `--system`: reads the bundle's event lines until `--count` events or
/// until the bundle closes the connection.
fn run_system(args: &Args) -> ExitCode {
    use std::io::{BufRead as _, Write as _};
    let path = std::env::var_os(ferroccid_ifd::NOTIFY_SOCKET_ENV)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ferroccid_ifd::DEFAULT_SOCKET.into());
    let stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!(
                "ferroccid monitor: {}: {e} (is pcscd running with ferroccid's bundle?)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut lines = std::io::BufReader::new(stream).lines();
    let mut printed = 0u64;
    let mut subscribed = false;
    while let Some(Ok(line)) = lines.next() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            eprintln!("ferroccid monitor: not an event: {line}");
            return ExitCode::FAILURE;
        };
        if let Some(error) = value.get("error") {
            eprintln!(
                "ferroccid monitor: {}: refused: {error} (see /etc/ferroccid/notify.d)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        if value.get("subscribed").is_some() {
            subscribed = true;
            eprintln!("ferroccid monitor: subscribed to {}", path.display());
            continue;
        }
        if args.json {
            println!("{line}");
        } else {
            println!("{}", describe_system_event(&value));
        }
        let _ = std::io::stdout().flush();
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!(
        "ferroccid monitor: {} closed the connection{}",
        path.display(),
        if subscribed {
            " (pcscd stopped, or this monitor did not keep up)"
        } else {
            ""
        }
    );
    ExitCode::FAILURE
}

/// One event line for people: sequence, reader and slot, what happened.
fn describe_system_event(event: &serde_json::Value) -> String {
    let field = |name: &str| event.get(name).and_then(serde_json::Value::as_u64);
    let mut text = format!(
        "{:>6} {} slot {} {}",
        field("seq").unwrap_or(0),
        event.get("reader").and_then(|r| r.as_str()).unwrap_or("?"),
        field("slot").unwrap_or(0),
        event.get("event").and_then(|e| e.as_str()).unwrap_or("?"),
    );
    if let Some(reference) = field("reference") {
        text.push_str(&format!(" reference 0x{reference:02X}"));
    }
    if let Some(tries) = field("tries_left") {
        text.push_str(&format!(", {tries} tries left"));
    }
    if let Some(dropped) = field("dropped_before") {
        text.push_str(&format!(" ({dropped} events dropped before)"));
    }
    text
}
