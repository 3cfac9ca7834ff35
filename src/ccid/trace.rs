//! Hex dumps of frames at TRACE level, with the message named.
use super::error::hex;
use super::message::{le32, offset, MessageType, HEADER_LEN};

/// One line describing `frame`: `PC_to_RDR_XfrBlock slot=0 seq=3 len=5: 00 84 00 00 08`.
/// Works on any bytes (unknown or truncated frames are described as such).
pub fn describe(frame: &[u8]) -> String {
    if frame.len() < HEADER_LEN {
        return format!("short CCID frame ({} bytes): {}", frame.len(), hex(frame));
    }
    let name = match MessageType::from_byte(frame[offset::MESSAGE_TYPE]) {
        Some(t) => t.name().to_string(),
        None => format!("unknown(0x{:02X})", frame[offset::MESSAGE_TYPE]),
    };
    let len = le32(frame, offset::LENGTH);
    format!(
        "{name} slot={} seq={} len={len}: {}",
        frame[offset::SLOT],
        frame[offset::SEQ],
        hex(&frame[HEADER_LEN..])
    )
}

/// Log `frame` at TRACE; `direction` is e.g. "send" or "recv". The text is
/// only built when TRACE is enabled for this module.
pub fn trace_frame(direction: &str, frame: &[u8]) {
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(target: "ferroccid::ccid", "{direction} {}", describe(frame));
    }
}
