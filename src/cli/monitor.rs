//! `ferroccid monitor [--reader NAME]`: prints reader, card and PIN events
//! of the card service layer as they happen, one line each.
use std::process::ExitCode;
use std::time::Duration;

use ferroccid::card::{AttachOptions, CardManager, ChannelError, Error, EventBus, EventKind};

/// Arguments of `ferroccid monitor`.
#[derive(clap::Args)]
pub struct Args {
    /// Reader device name (`sim`, `usb:…`, `usbip:…`, `NAME#SLOT`).
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// How often to look at the reader, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub interval: u64,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Run `ferroccid monitor`.
pub fn run(args: Args) -> ExitCode {
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
            println!("{:>6} {:<24} {:?}", event.seq, event.reader, event.kind);
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return ExitCode::SUCCESS;
            }
        }
        std::thread::sleep(interval);
    }
}
