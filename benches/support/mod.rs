//! A small benchmark harness shared by the `benches/*.rs` targets.
//!
//! Why not criterion: every figure here is a *ratio* of a subject against a
//! baseline measured in the same run, and the two are sampled in alternating
//! rounds (baseline, subject, subject, baseline, …) so that a neighbour's
//! build on this shared 2-core machine slows both sides alike instead of
//! skewing one. That is a dozen lines on top of `Instant`; criterion would
//! add a large dependency tree and still need a custom report for the ratio.
//!
//! Modes:
//! - full (`cargo bench`, which passes `--bench`): calibrated samples of about
//!   [`FULL_SAMPLE`] each, [`FULL_ROUNDS`] rounds;
//! - smoke (`cargo test --benches`, no `--bench` argument, or `--smoke`, or
//!   `FERROCCID_BENCH_SMOKE=1`): a couple of iterations per side, so the test
//!   command can check that every bench still runs and its results are still
//!   correct. Smoke figures are printed but are not measurements.
//!
//! A positional argument filters benchmarks by substring, as with libtest.

// Each bench binary uses only part of the harness.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Target duration of one full-mode sample.
pub const FULL_SAMPLE: Duration = Duration::from_millis(4);
/// Alternating rounds (one baseline and one subject sample each) in full mode.
pub const FULL_ROUNDS: usize = 31;

/// How seriously to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Calibrated, many rounds: the figures mean something.
    Full,
    /// Two tiny rounds: only checks that the bench runs.
    Smoke,
}

/// How a row's ratio reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// subject time ÷ baseline time: 1.00× means no overhead over the floor.
    Overhead,
    /// baseline time ÷ subject time: the subject's throughput gain.
    Speedup,
}

/// One measured comparison.
#[derive(Clone, Debug)]
pub struct Row {
    /// Benchmark name.
    pub name: String,
    /// Median time per iteration of the baseline, in nanoseconds.
    pub baseline_ns: f64,
    /// Median time per iteration of the subject, in nanoseconds.
    pub subject_ns: f64,
    /// Ratio of the medians, read as `reading` says.
    pub ratio: f64,
    /// 25th and 75th percentile of the per-round paired ratios.
    pub spread: (f64, f64),
    /// How the ratio reads.
    pub reading: Reading,
}

/// The harness of one bench binary.
pub struct Harness {
    title: &'static str,
    mode: Mode,
    filter: Option<String>,
    rows: Vec<Row>,
    sample: Duration,
    rounds: usize,
}

impl Harness {
    /// Reads the mode and filter from the command line and environment.
    pub fn from_args(title: &'static str) -> Harness {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let smoke_env = std::env::var("FERROCCID_BENCH_SMOKE").is_ok_and(|v| v == "1");
        let full = args.iter().any(|a| a == "--bench")
            && !args.iter().any(|a| a == "--smoke")
            && !smoke_env;
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        let mode = if full { Mode::Full } else { Mode::Smoke };
        println!("# {title} ({mode:?} mode)");
        Harness {
            title,
            mode,
            filter,
            rows: Vec::new(),
            sample: FULL_SAMPLE,
            rounds: FULL_ROUNDS,
        }
    }

    /// Longer (or shorter) full-mode samples and another round count, for
    /// work with a fixed cost per sample such as starting threads.
    pub fn with_samples(mut self, sample: Duration, rounds: usize) -> Harness {
        self.sample = sample;
        self.rounds = rounds;
        self
    }

    /// The mode this run measures in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether `name` passes the command-line filter.
    pub fn selected(&self, name: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| name.contains(f))
    }

    /// Compares `subject` against `baseline`, each called once per
    /// iteration. Iteration counts are always even (state machines that
    /// alternate, like T=1 sequence numbers, come back to where they were).
    pub fn compare(
        &mut self,
        name: &str,
        mut baseline: impl FnMut(),
        mut subject: impl FnMut(),
    ) -> Option<&Row> {
        self.compare_batched(
            name,
            Reading::Overhead,
            |n| {
                for _ in 0..n {
                    baseline();
                }
            },
            |n| {
                for _ in 0..n {
                    subject();
                }
            },
        )
    }

    /// Like [`Harness::compare`], but each closure runs `n` iterations
    /// itself (for work that is split over threads).
    pub fn compare_batched(
        &mut self,
        name: &str,
        reading: Reading,
        mut baseline: impl FnMut(u64),
        mut subject: impl FnMut(u64),
    ) -> Option<&Row> {
        if !self.selected(name) {
            return None;
        }
        let (iters, rounds) = match self.mode {
            Mode::Smoke => (2, 2),
            Mode::Full => {
                // Warm up, then size the sample on the slower side.
                baseline(2);
                subject(2);
                (
                    calibrate(&mut baseline, &mut subject, self.sample),
                    self.rounds,
                )
            }
        };
        let mut base_ns = Vec::with_capacity(rounds);
        let mut subj_ns = Vec::with_capacity(rounds);
        let mut paired = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // Alternate which side goes first so neither always runs on a
            // cache warmed (or a CPU slowed) by the other.
            let (b, s) = if round % 2 == 0 {
                let b = time(&mut baseline, iters);
                (b, time(&mut subject, iters))
            } else {
                let s = time(&mut subject, iters);
                (time(&mut baseline, iters), s)
            };
            base_ns.push(b);
            subj_ns.push(s);
            paired.push(match reading {
                Reading::Overhead => s / b,
                Reading::Speedup => b / s,
            });
        }
        let (b, s) = (median(&mut base_ns), median(&mut subj_ns));
        let ratio = match reading {
            Reading::Overhead => s / b,
            Reading::Speedup => b / s,
        };
        paired.sort_by(f64::total_cmp);
        let spread = (percentile(&paired, 0.25), percentile(&paired, 0.75));
        let row = Row {
            name: name.to_string(),
            baseline_ns: b,
            subject_ns: s,
            ratio,
            spread,
            reading,
        };
        println!("{}", format_row(&row, self.mode));
        self.rows.push(row);
        self.rows.last()
    }

    /// Prints the summary table (Markdown, ready for `benches/README.md`).
    pub fn finish(self) {
        println!();
        println!("## {} — summary ({:?} mode)", self.title, self.mode);
        println!();
        println!("| benchmark | baseline median | subject median | ratio | p25–p75 |");
        println!("|---|---:|---:|---:|---:|");
        for r in &self.rows {
            let what = match r.reading {
                Reading::Overhead => "",
                Reading::Speedup => " throughput",
            };
            println!(
                "| {} | {} | {} | {:.2}×{what} | {:.2}–{:.2} |",
                r.name,
                human(r.baseline_ns),
                human(r.subject_ns),
                r.ratio,
                r.spread.0,
                r.spread.1
            );
        }
        if self.mode == Mode::Smoke {
            println!();
            println!("(smoke mode: a few iterations only; these figures are not measurements)");
        }
    }
}

/// Iterations (even) so that the slower side takes about `sample`.
fn calibrate(
    baseline: &mut impl FnMut(u64),
    subject: &mut impl FnMut(u64),
    sample: Duration,
) -> u64 {
    let target = sample.as_nanos() as f64;
    let mut n = 2u64;
    loop {
        let slowest = time(baseline, n).max(time(subject, n)) * n as f64;
        if slowest >= target / 4.0 || n >= 1 << 30 {
            let scaled = (target / slowest.max(1.0)) * n as f64;
            return ((scaled as u64).max(2) + 1) & !1;
        }
        n *= 4;
    }
}

/// Nanoseconds per iteration of one sample of `n` iterations.
fn time(f: &mut impl FnMut(u64), n: u64) -> f64 {
    let start = Instant::now();
    f(black_box(n));
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

/// Linear-interpolated percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Nanoseconds in the unit that keeps three significant digits readable.
pub fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

fn format_row(r: &Row, mode: Mode) -> String {
    let (what, tag) = match (r.reading, mode) {
        (Reading::Overhead, Mode::Full) => ("overhead", ""),
        (Reading::Speedup, Mode::Full) => ("throughput", ""),
        (Reading::Overhead, Mode::Smoke) => ("overhead", "  [smoke]"),
        (Reading::Speedup, Mode::Smoke) => ("throughput", "  [smoke]"),
    };
    format!(
        "{:<44} baseline {:>10}  subject {:>10}  {what} {:>6.2}×  (p25–p75 {:.2}–{:.2}){tag}",
        r.name,
        human(r.baseline_ns),
        human(r.subject_ns),
        r.ratio,
        r.spread.0,
        r.spread.1
    )
}
