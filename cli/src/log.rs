//! Logs on stderr for every subcommand: `-v` info, `-vv` debug, `-vvv`
//! trace (every CCID frame, decoded as `ferroccid trace` decodes a
//! capture), or `FERROCCID_LOG` directives in `RUST_LOG` syntax on top of
//! that level (`FERROCCID_LOG=ferroccid::ccid=trace` for the frames alone).
//!
//! Each line starts with the time since the command started; an answer
//! from the reader also says how long after its command it came. The
//! driver masks PIN bytes before the events leave it
//! (`ferroccid::ccid::redact`); masked bytes read as 00 here, and the
//! line says how many there were.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use ferroccid::ccid::trace::TARGET as FRAME_TARGET;
use ferroccid::ccid::HEADER_LEN;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::{FormatTime, Uptime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::trace::Decoder;

/// The environment variable with filter directives (`RUST_LOG` syntax).
pub(crate) const LOG_ENV: &str = "FERROCCID_LOG";

/// The level `-v` repeated `verbosity` times asks for.
fn level_for(verbosity: u8) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::OFF,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the stderr subscriber, unless nothing is asked for (no `-v`,
/// no `FERROCCID_LOG`): then every event is disabled at its call site and
/// costs nothing.
pub(crate) fn init(verbosity: u8) {
    let directives = std::env::var(LOG_ENV).ok().filter(|d| !d.trim().is_empty());
    if verbosity == 0 && directives.is_none() {
        return;
    }
    let filter = filter(verbosity, directives.as_deref().unwrap_or_default());
    let timer = Uptime::default();
    let format = LiveFormat {
        timer,
        other: tracing_subscriber::fmt::format()
            .with_timer(timer)
            .with_ansi(false),
        frames: Mutex::new(Frames::default()),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(format)
        .try_init();
}

/// `directives` over the `-v` level, which a bare level among them
/// replaces (`-v` with `FERROCCID_LOG=debug` is debug). Directives that do
/// not parse are reported and the `-v` level kept.
fn filter(verbosity: u8, directives: &str) -> EnvFilter {
    let level = level_for(verbosity);
    let filter = match EnvFilter::builder().parse(directives) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("ferroccid: {LOG_ENV}: {e}; using the -v level only");
            return EnvFilter::default().add_directive(level.into());
        }
    };
    let has_level = directives
        .split(',')
        .map(str::trim)
        .any(|d| !d.is_empty() && d.parse::<LevelFilter>().is_ok());
    if has_level {
        filter
    } else {
        filter.add_directive(level.into())
    }
}

/// Frame events decoded, other events in the usual format.
struct LiveFormat {
    timer: Uptime,
    other: Format<Full, Uptime>,
    frames: Mutex<Frames>,
}

/// What carries over from frame to frame.
#[derive(Default)]
struct Frames {
    decoder: Decoder,
    /// When each command still unanswered was sent, by (bSlot, bSeq).
    sent: HashMap<(u8, u8), Instant>,
}

/// The fields of a frame event (`ferroccid::ccid::trace::trace_frame`).
#[derive(Default)]
struct FrameFields {
    direction: String,
    shown: Option<Vec<u8>>,
    masked: u64,
}

impl Visit for FrameFields {
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if field.name() == "frame" {
            self.shown = Some(value.to_vec());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "masked" {
            self.masked = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "direction" {
            self.direction = value.to_owned();
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

impl Frames {
    /// The decoded line for one frame, with the answer's delay.
    fn line(&mut self, fields: FrameFields, now: Instant) -> Option<String> {
        let mut bytes = fields.shown?;
        let masked = usize::try_from(fields.masked).unwrap_or(usize::MAX);
        bytes.resize(bytes.len().saturating_add(masked.min(1 << 20)), 0);
        let mut text = format!(
            "{:<4} {}",
            fields.direction,
            self.decoder.describe_live(&bytes, masked > 0)
        );
        if masked > 0 {
            text.push_str(&format!(" [{masked} bytes masked, shown as 00]"));
        }
        if bytes.len() >= HEADER_LEN {
            let address = (bytes[5], bytes[6]);
            if fields.direction == "send" {
                self.sent.insert(address, now);
            } else if let Some(sent) = self.sent.remove(&address) {
                let ms = now.duration_since(sent).as_secs_f64() * 1000.0;
                text.push_str(&format!(" ({ms:.3} ms after the command)"));
            }
        }
        Some(text)
    }
}

impl<S, N> FormatEvent<S, N> for LiveFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == FRAME_TARGET && *event.metadata().level() == Level::TRACE {
            let now = Instant::now();
            let mut fields = FrameFields::default();
            event.record(&mut fields);
            let line = self
                .frames
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .line(fields, now);
            if let Some(line) = line {
                self.timer.format_time(&mut writer)?;
                return writeln!(writer, " TRACE {FRAME_TARGET}: {line}");
            }
        }
        self.other.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(level_for(0), LevelFilter::OFF);
        assert_eq!(level_for(1), LevelFilter::INFO);
        assert_eq!(level_for(2), LevelFilter::DEBUG);
        assert_eq!(level_for(3), LevelFilter::TRACE);
        assert_eq!(level_for(9), LevelFilter::TRACE);
    }

    #[test]
    fn a_bare_level_in_the_environment_replaces_the_v_level() {
        let shown = |verbosity, directives| filter(verbosity, directives).to_string();
        assert_eq!(shown(1, ""), "info");
        assert_eq!(
            shown(2, "ferroccid::ccid=trace"),
            "ferroccid::ccid=trace,debug"
        );
        assert_eq!(shown(1, "warn"), "warn");
        assert_eq!(shown(0, "ferroccid=debug"), "ferroccid=debug,off");
    }

    #[test]
    fn an_answer_is_decoded_and_timed_against_its_command() {
        let mut frames = Frames::default();
        let t0 = Instant::now();
        // PC_to_RDR_XfrBlock slot 0 seq 7: VERIFY with 2 masked data bytes.
        let send = FrameFields {
            direction: "send".into(),
            shown: Some(vec![
                0x6F, 7, 0, 0, 0, 0, 7, 0, 0, 0, 0x00, 0x20, 0x00, 0x81, 0x02,
            ]),
            masked: 2,
        };
        let line = frames.line(send, t0).unwrap();
        assert!(
            line.starts_with("send PC_to_RDR_XfrBlock slot=0 seq=7 len=7"),
            "{line}"
        );
        assert!(line.contains("INS=20"), "{line}");
        assert!(line.contains("[2 bytes masked, shown as 00]"), "{line}");
        let recv = FrameFields {
            direction: "recv".into(),
            shown: Some(vec![0x80, 2, 0, 0, 0, 0, 7, 0, 0, 0, 0x90, 0x00]),
            masked: 0,
        };
        let line = frames
            .line(recv, t0 + std::time::Duration::from_micros(1500))
            .unwrap();
        assert!(line.contains("SW=9000"), "{line}");
        assert!(line.ends_with("(1.500 ms after the command)"), "{line}");
    }
}
