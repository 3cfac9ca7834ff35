//! Frames at TRACE level: one event per frame, with the message named, the
//! bytes as a field for subscribers that decode further (the CLI), and any
//! bytes [`super::redact`] masks written as `XX` and left out of the field.
use super::error::hex;
use super::message::{le32, offset, MessageType, HEADER_LEN};

/// The target of frame events, for filters (`ferroccid::ccid=trace`).
pub const TARGET: &str = "ferroccid::ccid";

/// One line describing `frame`: `PC_to_RDR_XfrBlock slot=0 seq=3 len=5: 00 84 00 00 08`.
/// Works on any bytes (unknown or truncated frames are described as such).
pub fn describe(frame: &[u8]) -> String {
    describe_masked(frame, frame.len())
}

/// [`describe`] with the bytes from offset `shown` on written as `XX`.
pub fn describe_masked(frame: &[u8], shown: usize) -> String {
    let shown = shown.min(frame.len());
    let mut text = hex(&frame[..shown]);
    for _ in shown..frame.len() {
        text.push_str(if text.is_empty() { "XX" } else { " XX" });
    }
    if frame.len() < HEADER_LEN {
        return format!("short CCID frame ({} bytes): {text}", frame.len());
    }
    let name = match MessageType::from_byte(frame[offset::MESSAGE_TYPE]) {
        Some(t) => t.name().to_string(),
        None => format!("unknown(0x{:02X})", frame[offset::MESSAGE_TYPE]),
    };
    let len = le32(frame, offset::LENGTH);
    let payload = match text.get(HEADER_LEN * 3..) {
        Some(bytes) => format!(": {bytes}"),
        None => String::new(),
    };
    format!(
        "{name} slot={} seq={} len={len}{payload}",
        frame[offset::SLOT],
        frame[offset::SEQ],
    )
}

/// Whether frame events are enabled: nothing is formatted otherwise.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::TRACE)
}

/// Logs `frame` at TRACE, its first `shown` bytes only (the rest masked);
/// `direction` is e.g. "send" or "recv". The text is only built when TRACE
/// is enabled for [`TARGET`].
pub fn trace_frame(direction: &str, frame: &[u8], shown: usize) {
    if !enabled() {
        return;
    }
    let shown = shown.min(frame.len());
    tracing::trace!(
        target: TARGET,
        direction,
        frame = &frame[..shown],
        masked = frame.len() - shown,
        "{direction} {}",
        describe_masked(frame, shown)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_bytes_read_xx() {
        let frame = [0x6F, 3, 0, 0, 0, 0, 2, 0, 0, 0, 0x12, 0x34, 0x56];
        assert_eq!(
            describe_masked(&frame, 11),
            "PC_to_RDR_XfrBlock slot=0 seq=2 len=3: 12 XX XX"
        );
        assert_eq!(
            describe(&frame),
            "PC_to_RDR_XfrBlock slot=0 seq=2 len=3: 12 34 56"
        );
        assert_eq!(
            describe_masked(&frame[..2], 0),
            "short CCID frame (2 bytes): XX XX"
        );
    }
}
