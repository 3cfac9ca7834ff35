//! `ferroccid atr <HEX> [--json]`: decode an Answer-to-Reset.
//!
//! The human-readable output explains every byte, for bring-up work; `--json`
//! prints one object with fixed keys for scripts. An ATR that breaks ISO/IEC
//! 7816-3 but can still be read (a wrong or missing TCK, T=15 in TD1, RFU
//! values, bytes after the end) is decoded all the same, since bring-up
//! needs to see it, and then exits non-zero with each problem and its
//! offset on stderr (and in `problems` with `--json`). One that cannot be
//! read (bad TS, truncated) exits non-zero with the reason and offset on
//! stderr (and `{"error": ...}` on stdout with `--json`).
use ferroccid::protocols::atr::{AnomalyKind, Atr, Convention, InterfaceByte, InterfaceKind};
use ferroccid::protocols::edc::Edc;
use ferroccid::protocols::params;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::process::ExitCode;

/// Arguments of `ferroccid atr`.
#[derive(clap::Args)]
pub struct Args {
    /// The ATR as hex (spaces and colons allowed).
    pub hex: Vec<String>,
    /// Print one JSON object instead of the human-readable decode.
    #[arg(long)]
    pub json: bool,
    /// The card clock for the times (etu, WWT, BWT, CWT), in kHz; default
    /// --reader's dwDefaultClock, else 4000 (what most readers announce).
    #[arg(long, value_name = "KHZ", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clock_khz: Option<u32>,
    /// Take the clock from this reader's CCID descriptor (dwDefaultClock).
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
}

/// The clock most readers announce as dwDefaultClock (CCID §5.1).
const TYPICAL_CLOCK_KHZ: u32 = 4000;

/// The clock for the times: `--clock-khz`, else `--reader`'s default.
fn clock_khz(args: &Args) -> Result<u32, String> {
    if let Some(khz) = args.clock_khz {
        return Ok(khz);
    }
    let Some(name) = &args.reader else {
        return Ok(TYPICAL_CLOCK_KHZ);
    };
    let device_name = super::list::resolve(name)?;
    let device = ferroccid::open_name(&device_name)
        .map_err(|e| format!("cannot open {device_name}: {e}"))?;
    let descriptor = device
        .transport
        .info()
        .class_descriptor
        .clone()
        .ok_or_else(|| format!("{device_name} has no CCID class descriptor"))?;
    let parsed = ferroccid::ccid::descriptor::ClassDescriptor::parse(&descriptor)
        .map_err(|e| format!("{device_name}: {e}"))?;
    Ok(parsed.default_clock_khz.max(1))
}

/// The card's times at a clock (ISO/IEC 7816-3:2006): the etu before and
/// after a PPS to the ATR's Fi/Di (§7.1), T=0's waiting time (§10.2),
/// T=1's character and block waiting times (§11.4.3).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Times {
    clock_khz: u32,
    initial_etu_us: f64,
    etu_us: f64,
    wwt_us: f64,
    cwt_us: f64,
    bwt_us: f64,
}

fn times(atr: &Atr, clock_khz: u32) -> Times {
    let f_mhz = f64::from(clock_khz) / 1000.0;
    let fi = f64::from(atr.fi());
    let etu = fi / (f64::from(atr.di()) * f_mhz);
    Times {
        clock_khz,
        initial_etu_us: 372.0 / f_mhz,
        etu_us: etu,
        wwt_us: 960.0 * f64::from(atr.wi()) * fi / f_mhz,
        cwt_us: (11.0 + 2f64.powi(i32::from(atr.cwi()))) * etu,
        bwt_us: 11.0 * etu + 2f64.powi(i32::from(atr.bwi())) * 960.0 * 372.0 / f_mhz,
    }
}

/// Run `ferroccid atr`.
pub fn run(args: Args) -> ExitCode {
    let clock = match clock_khz(&args) {
        Ok(khz) => khz,
        Err(message) => {
            eprintln!("ferroccid atr: {message}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = parse_hex(&args.hex.join(" "))
        .and_then(|bytes| Atr::parse_lenient(&bytes).map_err(|e| format!("invalid ATR: {e}")));
    let atr = match parsed {
        Ok(atr) => atr,
        Err(message) => {
            eprintln!("ferroccid atr: {message}");
            if args.json {
                println!("{}", json!({ "error": message }));
            }
            return ExitCode::FAILURE;
        }
    };
    let times = times(&atr, clock);
    if args.json {
        let mut value = to_json(&atr);
        value["times"] = json!({
            "clock_khz": times.clock_khz,
            "initial_etu_us": round3(times.initial_etu_us),
            "etu_us": round3(times.etu_us),
            "wwt_us": round3(times.wwt_us),
            "cwt_us": round3(times.cwt_us),
            "bwt_us": round3(times.bwt_us),
        });
        println!("{value}");
    } else {
        print!("{}", describe(&atr));
        print!("{}", describe_times(&atr, &times));
    }
    let problems = problems(&atr);
    for problem in &problems {
        eprintln!("ferroccid atr: invalid ATR: {problem}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The times, for people.
fn describe_times(atr: &Atr, t: &Times) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Times at {} kHz{}: etu {:.3} µs (initial, Fd/Dd 372/1: {:.3} µs)",
        t.clock_khz,
        if t.clock_khz > atr.f_max_khz() {
            " (above the card's f(max)!)"
        } else {
            ""
        },
        t.etu_us,
        t.initial_etu_us
    );
    let _ = writeln!(
        out,
        "  T=0 WWT {:.0} µs (960 x WI {} x Fi {} / f); T=1 CWT {:.0} µs ((11 + 2^{}) etu), BWT {:.0} µs (11 etu + 2^{} x 960 x 372 / f)",
        t.wwt_us,
        atr.wi(),
        atr.fi(),
        t.cwt_us,
        atr.cwi(),
        t.bwt_us,
        atr.bwi()
    );
    out
}

/// One way the ATR breaks ISO/IEC 7816-3, and the byte concerned.
struct Problem {
    offset: usize,
    what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)
    }
}

/// Hex digits with optional spaces, colons or a `0x` prefix, into bytes.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let digits: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if digits.is_empty() {
        return Err("no ATR given".into());
    }
    if let Some((i, c)) = digits
        .iter()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(format!("not a hex digit: {c:?} at digit {i}"));
    }
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    Ok(digits
        .chunks(2)
        .map(|pair| {
            let s: String = pair.iter().collect();
            u8::from_str_radix(&s, 16).expect("checked hex")
        })
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn spaced(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(" ")
}

/// Everything wrong with an ATR that could still be decoded, in ATR order.
fn problems(atr: &Atr) -> Vec<Problem> {
    let mut out: Vec<Problem> = atr
        .anomalies()
        .map(|a| Problem {
            offset: usize::from(a.offset),
            what: a.kind.describe().to_owned(),
        })
        .collect();
    if let (Some(tck), Some(false)) = (atr.tck(), atr.tck_ok()) {
        let bytes = atr.as_bytes();
        let expected = bytes[1..bytes.len() - 1].iter().fold(0, |x, b| x ^ b);
        out.push(Problem {
            offset: bytes.len() - 1,
            what: format!("bad TCK {tck:02X} ({expected:02X} expected: T0 to TCK must XOR to 00)"),
        });
    }
    out.sort_by_key(|p| p.offset);
    out
}

/// f(max) in MHz as an integer when whole (5), else a decimal (7.5).
fn f_max_mhz(khz: u32) -> Value {
    if khz % 1000 == 0 {
        json!(khz / 1000)
    } else {
        json!(khz as f64 / 1000.0)
    }
}

fn to_json(atr: &Atr) -> Value {
    let specific = atr.specific_mode();
    json!({
        "atr": hex(atr.as_bytes()),
        "convention": match atr.convention() {
            Convention::Direct => "direct",
            Convention::Inverse => "inverse",
        },
        "protocols": atr.protocols().iter().collect::<Vec<u8>>(),
        "default_protocol": atr.default_protocol(),
        "ta1": atr.ta1(),
        "fi": atr.fi(),
        "di": atr.di(),
        "f_max_mhz": f_max_mhz(atr.f_max_khz()),
        "specific_mode": specific.is_some(),
        "specific_protocol": specific.map(|m| m.protocol),
        "n": atr.n(),
        "wi": atr.wi(),
        "ifsc": atr.ifsc(),
        "cwi": atr.cwi(),
        "bwi": atr.bwi(),
        "edc": match atr.edc() {
            Edc::Lrc => "lrc",
            Edc::Crc => "crc",
        },
        "historical": hex(atr.historical()),
        "tck": atr.tck().map(|t| format!("{t:02X}")),
        "tck_ok": atr.tck_ok(),
        "problems": problems(atr)
            .iter()
            .map(|p| json!({ "offset": p.offset, "problem": p.what }))
            .collect::<Vec<_>>(),
    })
}

fn mhz(khz: u32) -> String {
    if khz % 1000 == 0 {
        format!("{} MHz", khz / 1000)
    } else {
        format!("{} MHz", khz as f64 / 1000.0)
    }
}

fn presence(y: u8, i: u8) -> String {
    let names: Vec<String> = [(0x10, "TA"), (0x20, "TB"), (0x40, "TC"), (0x80, "TD")]
        .iter()
        .filter(|(bit, _)| y & bit != 0)
        .map(|(_, n)| format!("{n}{i}"))
        .collect();
    if names.is_empty() {
        "no more interface bytes".into()
    } else {
        format!("then {}", names.join(" "))
    }
}

/// One line explaining an interface byte; `first_t1`/`first_t15` say
/// whether it is the first of its kind specific to T=1 / global after T=15.
fn explain(b: &InterfaceByte, first_t1: bool, first_t15: bool) -> String {
    let v = b.value;
    match (b.i, b.kind, b.after_protocol) {
        (_, InterfaceKind::Td, _) => {
            let t = v & 0x0F;
            let what = match t {
                15 => "T=15: global interface bytes follow".to_string(),
                4..=13 => format!("T={t} (RFU)"),
                _ => format!("protocol T={t}"),
            };
            format!("{what}; {}", presence(v, b.i + 1))
        }
        (1, InterfaceKind::Ta, _) => {
            let fi = params::fi_fmax(v >> 4);
            let di = params::di(v & 0x0F);
            match (fi, di) {
                (Some((fi, fmax)), Some(di)) => format!(
                    "Fi={fi}, Di={di}, f(max)={}: {} clock cycles per etu, {} bit/s at 4 MHz",
                    mhz(fmax),
                    fi as f64 / di as f64,
                    params::baud_rate(4_000, fi, di)
                ),
                _ => format!(
                    "FI={:X} DI={:X} includes an RFU index: card used at Fd=372, Dd=1",
                    v >> 4,
                    v & 0x0F
                ),
            }
        }
        (1, InterfaceKind::Tb, _) => "Vpp/Ipp (deprecated since 2006, ignored)".into(),
        (1, InterfaceKind::Tc, _) => match v {
            255 => "N=255: guard time 12 etu for T=0, 11 etu for T=1".into(),
            n => format!(
                "N={n}: extra guard time, {} etu between characters",
                12 + n as u16
            ),
        },
        (2, InterfaceKind::Ta, _) => format!(
            "specific mode, T={}; {}; parameters {}",
            v & 0x0F,
            if v & 0x80 != 0 {
                "unable to change mode"
            } else {
                "able to change mode after a warm reset"
            },
            if v & 0x10 != 0 {
                "implicit (not from TA1)"
            } else {
                "from TA1"
            }
        ),
        (2, InterfaceKind::Tb, _) => "PI2 programming voltage (deprecated, ignored)".into(),
        (2, InterfaceKind::Tc, Some(0)) => {
            format!("WI={v}: work waiting time 960 x {v} x Fi clock cycles (T=0)")
        }
        (_, InterfaceKind::Ta, Some(1)) if first_t1 => match v {
            0x00 | 0xFF => format!("IFSC={v} (RFU)"),
            _ => format!("IFSC={v} bytes (T=1)"),
        },
        (_, InterfaceKind::Tb, Some(1)) if first_t1 => {
            format!("BWI={}, CWI={} (T=1)", v >> 4, v & 0x0F)
        }
        (_, InterfaceKind::Tc, Some(1)) if first_t1 => format!(
            "error detection code {} (T=1)",
            if v & 1 != 0 { "CRC" } else { "LRC" }
        ),
        (_, InterfaceKind::Ta, Some(15)) if first_t15 => {
            let clock = ["not supported", "state L", "state H", "no preference"][(v >> 6) as usize];
            let mut classes = Vec::new();
            for (bit, name) in [(1, "A (5 V)"), (2, "B (3 V)"), (4, "C (1.8 V)")] {
                if v & bit != 0 {
                    classes.push(name);
                }
            }
            format!(
                "clock stop {clock}; classes {}",
                if classes.is_empty() {
                    "none".into()
                } else {
                    classes.join(", ")
                }
            )
        }
        (_, InterfaceKind::Tb, Some(15)) if first_t15 => format!("SPU use {v:02X}"),
        (_, _, Some(t)) => format!("specific to T={t}, not interpreted"),
        (_, _, None) => "not interpreted".into(),
    }
}

fn describe(atr: &Atr) -> String {
    let mut out = String::new();
    let bytes = atr.as_bytes();
    let _ = writeln!(out, "ATR: {}", spaced(bytes));
    let _ = writeln!(
        out,
        "TS  = {:02X}  {} convention",
        bytes[0],
        match atr.convention() {
            Convention::Direct => "direct",
            Convention::Inverse => "inverse",
        }
    );
    let t0 = atr.t0();
    let _ = writeln!(
        out,
        "T0  = {t0:02X}  K={} historical bytes; {}",
        t0 & 0x0F,
        presence(t0, 1)
    );
    let mut seen_t1 = [false; 3];
    let mut seen_t15 = [false; 2];
    for b in atr.interface_bytes() {
        let slot = match b.kind {
            InterfaceKind::Ta => 0,
            InterfaceKind::Tb => 1,
            InterfaceKind::Tc => 2,
            InterfaceKind::Td => 3,
        };
        let first_t1 = b.i > 2 && b.after_protocol == Some(1) && slot < 3 && !seen_t1[slot];
        if first_t1 {
            seen_t1[slot] = true;
        }
        let first_t15 = b.i > 2 && b.after_protocol == Some(15) && slot < 2 && !seen_t15[slot];
        if first_t15 {
            seen_t15[slot] = true;
        }
        let name = format!("{}{}", b.kind.name(), b.i);
        let _ = writeln!(
            out,
            "{name:<3} = {:02X}  {}",
            b.value,
            explain(&b, first_t1, first_t15)
        );
    }
    let _ = writeln!(
        out,
        "Historical bytes ({}): {}",
        atr.historical().len(),
        spaced(atr.historical())
    );
    match (atr.tck(), atr.tck_ok()) {
        (Some(tck), Some(true)) => {
            let _ = writeln!(out, "TCK = {tck:02X}  correct");
        }
        (Some(tck), _) => {
            let _ = writeln!(out, "TCK = {tck:02X}  WRONG: XOR of T0..TCK is not 0");
        }
        _ if atr.anomalies().any(|a| a.kind == AnomalyKind::MissingTck) => {
            let _ = writeln!(
                out,
                "TCK absent, but required: a protocol other than T=0 is indicated"
            );
        }
        _ => {
            let _ = writeln!(out, "TCK absent (only T=0 indicated)");
        }
    }
    let offered: Vec<String> = atr.protocols().iter().map(|t| format!("T={t}")).collect();
    let mode = match atr.specific_mode() {
        Some(m) => format!("specific mode T={}", m.protocol),
        None => "negotiable mode".into(),
    };
    let _ = writeln!(
        out,
        "Protocols: {}; default T={} ({mode})",
        offered.join(", "),
        atr.default_protocol()
    );
    let _ = writeln!(
        out,
        "Parameters: Fi={} Di={} f(max)={} N={} WI={} IFSC={} CWI={} BWI={} EDC={}",
        atr.fi(),
        atr.di(),
        mhz(atr.f_max_khz()),
        atr.n(),
        atr.wi(),
        atr.ifsc(),
        atr.cwi(),
        atr.bwi(),
        match atr.edc() {
            Edc::Lrc => "LRC",
            Edc::Crc => "CRC",
        }
    );
    for problem in problems(atr) {
        let _ = writeln!(out, "Invalid: {problem}");
    }
    out
}
