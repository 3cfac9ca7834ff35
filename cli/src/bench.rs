//! `ferroccid bench [--reader NAME] [-n N] [--json] APDU…`: round-trip
//! latency percentiles and throughput of APDUs through the library's
//! direct path (no pcscd), for a reader on the bench.
//!
//! The APDUs are sent in turn, N rounds; each round trip is timed on its
//! own. A few warm-up rounds (not counted) come first, so the card's and
//! the reader's first-use costs do not skew the median.
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::apdu::{hex, open_reader, parse_apdu, ProtocolArg};

/// Arguments of `ferroccid bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A device name or a unique part of a reader's name, as for `apdu`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Rounds of the APDUs (each round sends every APDU once).
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub rounds: u32,
    /// Rounds sent first and not counted.
    #[arg(long, default_value_t = 10)]
    pub warmup: u32,
    /// The transmission protocol to select.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Any)]
    pub protocol: ProtocolArg,
    /// Print one JSON object: apdus, median_us, p90_us, p99_us, min_us,
    /// max_us, apdu_per_s, seconds, and the first response of each APDU.
    #[arg(long)]
    pub json: bool,
    /// Command APDUs in hex (default: GET CHALLENGE of 8 bytes).
    #[arg(value_name = "HEX")]
    pub apdus: Vec<String>,
}

/// The figures of a run.
#[derive(serde::Serialize, Debug)]
struct Figures {
    reader: String,
    apdus: usize,
    median_us: f64,
    p90_us: f64,
    p99_us: f64,
    min_us: f64,
    max_us: f64,
    apdu_per_s: f64,
    seconds: f64,
    responses: Vec<String>,
}

/// Run `ferroccid bench`.
pub fn run(args: Args) -> ExitCode {
    match bench(&args) {
        Ok(figures) => {
            if args.json {
                match serde_json::to_string_pretty(&figures) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("ferroccid bench: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!(
                    "{}: {} APDUs in {:.2} s: {:.0} APDU/s; round trip median {:.1} µs, \
                     p90 {:.1} µs, p99 {:.1} µs (min {:.1}, max {:.1})",
                    figures.reader,
                    figures.apdus,
                    figures.seconds,
                    figures.apdu_per_s,
                    figures.median_us,
                    figures.p90_us,
                    figures.p99_us,
                    figures.min_us,
                    figures.max_us
                );
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ferroccid bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> Result<Figures, String> {
    if args.rounds == 0 {
        return Err("-n must be at least 1".into());
    }
    let texts = if args.apdus.is_empty() {
        vec!["0084000008".to_string()]
    } else {
        args.apdus.clone()
    };
    let commands = texts
        .iter()
        .enumerate()
        .map(|(i, text)| parse_apdu(text).map_err(|e| format!("APDU #{}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let (reader, _device) = open_reader(&args.reader)?;
    let name = reader.info().name.clone();
    let slot = reader.slot(0).map_err(|e| format!("{name}: {e}"))?;
    slot.power_on().map_err(|e| format!("power on: {e}"))?;
    slot.set_protocol(args.protocol.into())
        .map_err(|e| format!("protocol selection: {e}"))?;
    let mut response = vec![0u8; 65536 + 2];
    let mut responses = Vec::new();
    for command in &commands {
        let n = slot
            .transmit(command, &mut response)
            .map_err(|e| format!("APDU {}: {e}", hex(command)))?;
        responses.push(hex(&response[..n]));
    }
    for _ in 0..args.warmup {
        for command in &commands {
            slot.transmit(command, &mut response)
                .map_err(|e| format!("warm-up, APDU {}: {e}", hex(command)))?;
        }
    }
    let total = args.rounds as usize * commands.len();
    let mut times = Vec::with_capacity(total);
    let progress = Progress::new(total);
    let started = Instant::now();
    for round in 0..args.rounds {
        for command in &commands {
            let t0 = Instant::now();
            slot.transmit(command, &mut response)
                .map_err(|e| format!("round {}, APDU {}: {e}", round + 1, hex(command)))?;
            times.push(t0.elapsed());
        }
        progress.show(times.len());
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.done();
    times.sort_unstable();
    Ok(Figures {
        reader: name,
        apdus: times.len(),
        median_us: micros(percentile(&times, 50.0)),
        p90_us: micros(percentile(&times, 90.0)),
        p99_us: micros(percentile(&times, 99.0)),
        min_us: micros(times[0]),
        max_us: micros(times[times.len() - 1]),
        apdu_per_s: times.len() as f64 / seconds,
        seconds,
        responses,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The nearest-rank percentile of sorted, non-empty `times`.
fn percentile(times: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

/// A progress line on stderr, twice a second, when stderr is a terminal
/// and the run is long.
struct Progress {
    total: usize,
    shown: bool,
    last: std::cell::Cell<Instant>,
    start: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            shown: std::io::stderr().is_terminal(),
            last: std::cell::Cell::new(now),
            start: now,
        }
    }

    fn show(&self, done: usize) {
        if !self.shown || self.last.get().elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last.set(Instant::now());
        let rate = done as f64 / self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{done}/{} APDUs, {rate:.0}/s   ", self.total);
        let _ = err.flush();
    }

    fn done(&self) {
        if self.shown && self.start.elapsed() >= Duration::from_millis(500) {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&times, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&times, 90.0), Duration::from_micros(90));
        assert_eq!(percentile(&times, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&times[..1], 99.0), Duration::from_micros(1));
        assert_eq!(percentile(&times[..3], 50.0), Duration::from_micros(2));
    }
}
