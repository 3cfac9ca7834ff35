//! `ferroccid card [--reader NAME] <status|select|read|update|verify|change-pin|challenge|auth|lock|reconnect>`:
//! bring-up commands on top of the card service layer (`ferroccid_card`).
use super::apdu::spaced as hex;
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use ferroccid_card::{
    AttachOptions, CardManager, ChannelStatus, Disposition, Ef, ExtendedLength, FileInfo,
    Initialization, ListedReader, Pin, PinStatus, ProtocolChoice, Selection,
};

/// Arguments of `ferroccid card`.
#[derive(clap::Args)]
pub struct Args {
    /// Reader: a device name (`sim`, `usb:…`, `usbip:…`, `NAME#SLOT`),
    /// the whole or a unique part of a name `ferroccid list` or PC/SC
    /// shows, or `pcsc:READER` for a PC/SC reader through pcscd only.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Use extended-length APDUs even if the ATR does not announce them.
    #[arg(long)]
    pub extended: bool,
    /// Milliseconds a command waits while another program holds the
    /// card's lock (default: as long as it takes).
    #[arg(long, value_name = "MS")]
    pub lock_wait: Option<u64>,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `ferroccid card` subcommands.
#[derive(Subcommand)]
pub enum Action {
    /// Reader and card state: presence, power, protocol, ATR.
    Status,
    /// Select a file and print what the card tells about it.
    Select {
        /// FID path from the MF (`3F00/5000/5001`), or a FID.
        #[arg(required_unless_present = "aid")]
        path: Option<String>,
        /// Select a DF by name (AID, hex) instead.
        #[arg(long, conflicts_with = "path")]
        aid: Option<String>,
    },
    /// Select a file and write its contents to stdout (records: one per line, hex).
    Read {
        /// FID path from the MF (`3F00/2F00`), or a FID.
        path: String,
        /// First byte to read (transparent EFs).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Bytes to read (default: to the end).
        #[arg(long)]
        len: Option<usize>,
        /// Verify this PIN reference (hex, e.g. 81) first, PIN prompted.
        #[arg(long, value_parser = parse_byte)]
        pin: Option<u8>,
        /// Read PINs from stdin, one per line, instead of prompting.
        #[arg(long)]
        stdin: bool,
    },
    /// VERIFY a PIN (prompted without echo, or from stdin).
    Verify {
        /// Reference (P2) in hex.
        #[arg(long, default_value = "81", value_parser = parse_byte)]
        reference: u8,
        /// Read the PIN from stdin.
        #[arg(long)]
        stdin: bool,
    },
    /// CHANGE REFERENCE DATA: old PIN, then new PIN.
    ChangePin {
        /// Reference (P2) in hex.
        #[arg(long, default_value = "81", value_parser = parse_byte)]
        reference: u8,
        /// Read old and new PIN from stdin, one per line.
        #[arg(long)]
        stdin: bool,
    },
    /// GET CHALLENGE: random bytes from the card, printed as hex.
    Challenge {
        /// Number of bytes.
        #[arg(long, default_value_t = 8)]
        len: usize,
    },
    /// Select a transparent EF and write bytes into it (UPDATE BINARY).
    Update {
        /// FID path from the MF (`3F00/2F01`), or a FID.
        path: String,
        /// First byte to write.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// The bytes, in hex (default: stdin's bytes as they are).
        #[arg(long)]
        hex: Option<String>,
        /// Verify this PIN reference (hex, e.g. 81) first, PIN prompted.
        #[arg(long, value_parser = parse_byte)]
        pin: Option<u8>,
        /// Read the PIN from stdin instead of prompting (the bytes then
        /// come from --hex).
        #[arg(long, requires = "hex")]
        stdin: bool,
    },
    /// Card authentication: INTERNAL AUTHENTICATE (the card's answer to a
    /// challenge, printed as hex) or EXTERNAL AUTHENTICATE (a cryptogram).
    Auth {
        /// INTERNAL AUTHENTICATE over this challenge (hex).
        #[arg(
            long,
            required_unless_present = "external",
            conflicts_with = "external"
        )]
        internal: Option<String>,
        /// EXTERNAL AUTHENTICATE with this cryptogram (hex).
        #[arg(long)]
        external: Option<String>,
        /// Algorithm reference (P1), hex.
        #[arg(long, default_value = "00", value_parser = parse_byte)]
        algorithm: u8,
        /// Key reference (P2), hex.
        #[arg(long, default_value = "00", value_parser = parse_byte)]
        key: u8,
        /// Bytes expected from INTERNAL AUTHENTICATE (0: up to 256).
        #[arg(long, default_value_t = 0)]
        len: usize,
    },
    /// Hold the card's lock (SCardLock) for a while: other programs'
    /// commands to this card wait or fail with "locked" meanwhile.
    Lock {
        /// Seconds to hold it (fractions allowed).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Milliseconds to wait for the lock (default: as long as it takes).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
        /// What to do with the card on unlock.
        #[arg(long, value_enum, default_value_t = DispositionArg::Leave)]
        then: DispositionArg,
    },
    /// Reset (or not) and reconnect, then print the status.
    Reconnect {
        /// leave: keep the session; warm: RST with power kept; cold: power cycle.
        #[arg(long, value_enum, default_value_t = InitArg::Warm)]
        init: InitArg,
        /// The protocol to ask for.
        #[arg(long, value_enum, default_value_t = ProtocolArg::Any)]
        protocol: ProtocolArg,
    },
}

/// `--then` values: SCARD_LEAVE_CARD … SCARD_EJECT_CARD.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DispositionArg {
    /// Leave the card as it is.
    Leave,
    /// Warm reset.
    Reset,
    /// Power the card off.
    Unpower,
    /// Eject (unpower where the reader has no mechanism).
    Eject,
}

impl From<DispositionArg> for Disposition {
    fn from(d: DispositionArg) -> Self {
        match d {
            DispositionArg::Leave => Disposition::Leave,
            DispositionArg::Reset => Disposition::Reset,
            DispositionArg::Unpower => Disposition::Unpower,
            DispositionArg::Eject => Disposition::Eject,
        }
    }
}

/// `--init` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum InitArg {
    /// No reset.
    Leave,
    /// Warm reset.
    Warm,
    /// Cold reset.
    Cold,
}

/// `--protocol` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ProtocolArg {
    /// Whichever the card and reader agree on.
    Any,
    /// T=0.
    T0,
    /// T=1.
    T1,
}

fn parse_byte(text: &str) -> Result<u8, String> {
    u8::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("{text}: {e}"))
}

fn parse_path(text: &str) -> Result<Vec<u16>, String> {
    text.split(['/', ':'])
        .filter(|s| !s.is_empty())
        .map(|s| u16::from_str_radix(s, 16).map_err(|e| format!("FID {s}: {e}")))
        .collect()
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if clean.len() % 2 != 0 || clean.is_empty() {
        return Err(format!("{text}: not an even number of hex digits"));
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Reads a PIN: a line of stdin, or a prompt without echo on the terminal.
fn read_pin(prompt: &str, stdin: bool) -> Result<Pin, String> {
    let text = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading stdin: {e}"))?;
        zeroize::Zeroizing::new(line)
    } else {
        zeroize::Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| format!("{e}"))?)
    };
    let pin = text.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err("empty PIN".into());
    }
    Ok(Pin::from(pin))
}

fn describe(info: &Option<FileInfo>) -> String {
    let Some(info) = info else {
        return "selected (no FCP returned)".into();
    };
    let mut lines = Vec::new();
    if let Some(fid) = info.fid {
        lines.push(format!("FID         {fid:04X}"));
    }
    if let Some(kind) = info.kind {
        lines.push(format!("type        {kind:?}"));
    }
    if let Some(name) = &info.df_name {
        lines.push(format!("DF name     {}", hex(name)));
    }
    if let Some(size) = info.size {
        lines.push(format!("size        {size}"));
    }
    if let (Some(max), Some(count)) = (info.max_record_size, info.record_count) {
        lines.push(format!("records     {count} (max {max} bytes)"));
    }
    if let Some(Some(sfi)) = info.sfi {
        lines.push(format!("SFI         {sfi}"));
    }
    if let Some(lcs) = info.life_cycle {
        lines.push(format!("life cycle  {lcs:?}"));
    }
    lines.join("\n")
}

/// Run `ferroccid card`.
pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferroccid card: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: Args) -> Result<(), String> {
    let options = AttachOptions {
        extended: if args.extended {
            ExtendedLength::Yes
        } else {
            ExtendedLength::FromAtr
        },
        events: None,
        lock_wait: args.lock_wait.map(Duration::from_millis),
        // The simulated readers `ferroccid list` shows, by name too.
        readers: super::list::readers()
            .0
            .into_iter()
            .filter(|r| r.simulated)
            .map(|r| ListedReader {
                name: r.name,
                device: r.device,
            })
            .collect(),
    };
    let card = CardManager::attach_by_ifd(&args.reader, options)
        .map_err(|e| format!("{}: {e}", args.reader))?;
    let files = card.file_access();
    let mut out = std::io::stdout().lock();
    let print = |out: &mut dyn Write, text: &str| {
        // A closed stdout (`| head`) is not an error of ours.
        let _ = writeln!(out, "{text}");
    };
    match args.action {
        Action::Status => {
            let s = card.status().map_err(|e| e.to_string())?;
            print(&mut out, &describe_status(&s));
        }
        Action::Select { path, aid } => {
            let info = match (path, aid) {
                (_, Some(aid)) => files.select(Selection::DfName(&parse_hex(&aid)?)),
                (Some(path), None) => files.select_path(&parse_path(&path)?),
                (None, None) => return Err("give a path or --aid".into()),
            }
            .map_err(|e| e.to_string())?;
            print(&mut out, &describe(&info));
        }
        Action::Read {
            path,
            offset,
            len,
            pin,
            stdin,
        } => {
            if let Some(reference) = pin {
                let pin = read_pin("PIN: ", stdin)?;
                card.verifier()
                    .verify(reference, &pin)
                    .map_err(|e| e.to_string())?;
            }
            let info = files
                .select_path(&parse_path(&path)?)
                .map_err(|e| e.to_string())?;
            let records = info.as_ref().and_then(|i| i.kind).is_some_and(
                |k| matches!(k, ferroccid_card::FileKind::WorkingEf(s) if s.is_record()),
            );
            if records {
                for record in files
                    .read_all_records(Ef::Current)
                    .map_err(|e| e.to_string())?
                {
                    print(&mut out, &hex(&record));
                }
            } else {
                let data = files
                    .read_binary(Ef::Current, offset, len)
                    .map_err(|e| e.to_string())?;
                let _ = out.write_all(&data);
            }
        }
        Action::Verify { reference, stdin } => {
            let pins = card.verifier();
            let pin = read_pin("PIN: ", stdin)?;
            match pins.verify(reference, &pin) {
                Ok(()) => print(&mut out, "PIN verified"),
                Err(e) => {
                    let left = match pins.pin_status(reference) {
                        Ok(PinStatus::TriesLeft(n)) => format!(" ({n} tries left)"),
                        Ok(PinStatus::Blocked) => " (blocked)".into(),
                        _ => String::new(),
                    };
                    return Err(format!("{e}{left}"));
                }
            }
        }
        Action::ChangePin { reference, stdin } => {
            let old = read_pin("old PIN: ", stdin)?;
            let new = read_pin("new PIN: ", stdin)?;
            if !stdin && read_pin("new PIN again: ", false)? != new {
                return Err("the new PINs differ".into());
            }
            card.verifier()
                .change_pin(reference, &old, &new)
                .map_err(|e| e.to_string())?;
            print(&mut out, "PIN changed");
        }
        Action::Challenge { len } => {
            let bytes = card
                .authenticator()
                .get_challenge(len)
                .map_err(|e| e.to_string())?;
            print(&mut out, &hex(&bytes));
        }
        Action::Update {
            path,
            offset,
            hex: bytes,
            pin,
            stdin,
        } => {
            if let Some(reference) = pin {
                let pin = read_pin("PIN: ", stdin)?;
                card.verifier()
                    .verify(reference, &pin)
                    .map_err(|e| e.to_string())?;
            }
            let data = match bytes {
                Some(text) => parse_hex(&text)?,
                None => {
                    let mut data = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut data)
                        .map_err(|e| format!("reading stdin: {e}"))?;
                    data
                }
            };
            files
                .select_path(&parse_path(&path)?)
                .map_err(|e| e.to_string())?;
            files
                .update_binary(Ef::Current, offset, &data)
                .map_err(|e| e.to_string())?;
            print(
                &mut out,
                &format!("{} bytes written at {offset}", data.len()),
            );
        }
        Action::Auth {
            internal,
            external,
            algorithm,
            key,
            len,
        } => {
            let auth = card.authenticator();
            if let Some(challenge) = internal {
                let answer = auth
                    .internal_authenticate(algorithm, key, &parse_hex(&challenge)?, len)
                    .map_err(|e| e.to_string())?;
                print(&mut out, &hex(&answer));
            } else if let Some(cryptogram) = external {
                auth.external_authenticate(algorithm, key, &parse_hex(&cryptogram)?)
                    .map_err(|e| e.to_string())?;
                print(&mut out, "card accepted the cryptogram");
            }
        }
        Action::Lock {
            seconds,
            timeout,
            then,
        } => {
            let hold = Duration::try_from_secs_f64(seconds)
                .map_err(|e| format!("--seconds {seconds}: {e}"))?;
            let lock = card
                .lock(timeout.map(Duration::from_millis))
                .map_err(|e| e.to_string())?;
            print(&mut out, &format!("locked for {seconds} s"));
            let _ = out.flush();
            std::thread::sleep(hold);
            lock.unlock(then.into()).map_err(|e| e.to_string())?;
            print(&mut out, "unlocked");
        }
        Action::Reconnect { init, protocol } => {
            let init = match init {
                InitArg::Leave => Initialization::Leave,
                InitArg::Warm => Initialization::Warm,
                InitArg::Cold => Initialization::Cold,
            };
            let protocol = match protocol {
                ProtocolArg::Any => ProtocolChoice::Any,
                ProtocolArg::T0 => ProtocolChoice::T0,
                ProtocolArg::T1 => ProtocolChoice::T1,
            };
            let s = card.reconnect(init, protocol).map_err(|e| e.to_string())?;
            print(&mut out, &describe_status(&s));
        }
    }
    Ok(())
}

/// The lines of `card status` (and `card reconnect`).
fn describe_status(s: &ChannelStatus) -> String {
    let mut lines = vec![
        format!("reader      {}", s.reader),
        format!("state       {}", s.state.as_str()),
        format!("present     {}", s.present),
        format!("powered     {}", s.powered),
    ];
    if let Some(p) = s.protocol {
        lines.push(format!("protocol    {p:?}"));
    }
    if !s.atr.is_empty() {
        lines.push(format!("ATR         {}", hex(&s.atr)));
    }
    lines.join("\n")
}
