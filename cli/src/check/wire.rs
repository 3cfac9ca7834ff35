//! Raw CCID frames to and from the reader under test, each answer waited
//! for a bounded time.
//!
//! The checker bypasses `Reader` on purpose: it must send frames the
//! driver never would (a bad slot, an unknown type, a message one byte too
//! long) and see every answer as it came, time extensions included.

use std::time::Duration;

use ferroccid::{Transport, TransportError};

/// How long one answer (or time-extension frame) may take: a broken
/// reader fails its check instead of hanging the checker.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// Time extensions accepted before a command counts as never answered.
const MAX_TIME_EXTENSIONS: usize = 20;
/// Large enough for any CCID message (65536 data bytes and the header) and a
/// frame that ran on into the next one.
const RECEIVE_BUFFER: usize = 2 * (65536 + 1024);
/// Sequence numbers the checker uses stay below this, so that only the
/// seq-echo check sends values with the top bit set.
const SEQ_LIMIT: u8 = 0x80;

/// `bmCommandStatus` (bits 6–7 of `bStatus`).
pub(crate) const COMMAND_OK: u8 = 0;
pub(crate) const COMMAND_FAILED: u8 = 1;
pub(crate) const COMMAND_TIME_EXTENSION: u8 = 2;

/// A frame received from the reader, read through its header fields.
#[derive(Debug, Clone)]
pub(crate) struct Answer(pub Vec<u8>);

impl Answer {
    pub(crate) fn message_type(&self) -> u8 {
        self.0.first().copied().unwrap_or(0)
    }
    /// `dwLength`, 0 for a frame shorter than a header.
    pub(crate) fn declared_len(&self) -> usize {
        match self.0.get(1..5) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            None => 0,
        }
    }
    pub(crate) fn slot(&self) -> u8 {
        self.0.get(5).copied().unwrap_or(0xFF)
    }
    pub(crate) fn seq(&self) -> u8 {
        self.0.get(6).copied().unwrap_or(0xFF)
    }
    /// `bmICCStatus`: 0 active, 1 present and inactive, 2 absent.
    pub(crate) fn icc_status(&self) -> u8 {
        self.0.get(7).map_or(3, |s| s & 0x03)
    }
    pub(crate) fn command_status(&self) -> u8 {
        self.0.get(7).map_or(3, |s| s >> 6)
    }
    pub(crate) fn error(&self) -> u8 {
        self.0.get(8).copied().unwrap_or(0)
    }
    /// `abData`.
    pub(crate) fn data(&self) -> &[u8] {
        self.0.get(10..).unwrap_or(&[])
    }
    /// The frame in hex, for a failure report.
    pub(crate) fn hex(&self) -> String {
        crate::apdu::hex(&self.0)
    }

    /// Why this is not a well-formed answer of type `expected` to the
    /// command `sent` (bSlot, bSeq, dwLength), if it is not.
    pub(crate) fn mismatch(&self, sent: &[u8], expected: u8) -> Option<String> {
        if self.0.len() < 10 {
            return Some(format!("{} bytes, shorter than a header", self.0.len()));
        }
        if self.message_type() != expected {
            return Some(format!(
                "bMessageType {:02X}, expected {expected:02X}",
                self.message_type()
            ));
        }
        if self.declared_len() != self.0.len() - 10 {
            return Some(format!(
                "dwLength {} but {} data bytes",
                self.declared_len(),
                self.0.len() - 10
            ));
        }
        if self.slot() != sent[5] || self.seq() != sent[6] {
            return Some(format!(
                "sent bSlot {} bSeq {:02X}, answer bSlot {} bSeq {:02X}",
                sent[5],
                sent[6],
                self.slot(),
                self.seq()
            ));
        }
        None
    }
}

/// What went wrong getting an answer.
#[derive(Debug)]
pub(crate) enum WireError {
    /// Nothing came within [`ANSWER_WAIT`].
    NoAnswer,
    /// The transport failed (stall, unplug…).
    Transport(TransportError),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::NoAnswer => write!(f, "no answer within {} s", ANSWER_WAIT.as_secs()),
            WireError::Transport(e) => write!(f, "transport error: {e}"),
        }
    }
}

/// The checker's end of the bulk pipes.
pub(crate) struct Wire<'t> {
    transport: &'t dyn Transport,
    seq: u8,
    buf: Vec<u8>,
    /// The longest frame received so far, for the message-length check.
    pub(crate) longest: Option<Answer>,
}

impl<'t> Wire<'t> {
    pub(crate) fn new(transport: &'t dyn Transport) -> Self {
        Wire {
            transport,
            seq: 0,
            buf: vec![0; RECEIVE_BUFFER],
            longest: None,
        }
    }

    pub(crate) fn transport(&self) -> &'t dyn Transport {
        self.transport
    }

    /// A command frame with the next sequence number.
    pub(crate) fn frame(
        &mut self,
        message_type: u8,
        slot: u8,
        header: [u8; 3],
        data: &[u8],
    ) -> Vec<u8> {
        self.seq = (self.seq + 1) % SEQ_LIMIT;
        frame_with_seq(message_type, slot, self.seq, header, data)
    }

    /// Sends `frame` as it is.
    pub(crate) fn send(&mut self, frame: &[u8]) -> Result<(), WireError> {
        self.transport
            .bulk_out(frame, ANSWER_WAIT)
            .map_err(WireError::Transport)
    }

    /// One bulk-IN transfer, as it came.
    pub(crate) fn receive(&mut self) -> Result<Answer, WireError> {
        let n = match self.transport.bulk_in(&mut self.buf, ANSWER_WAIT) {
            Ok(n) => n,
            Err(TransportError::Timeout) => return Err(WireError::NoAnswer),
            Err(e) => return Err(WireError::Transport(e)),
        };
        let answer = Answer(self.buf[..n].to_vec());
        if self.longest.as_ref().is_none_or(|l| l.0.len() < n) {
            self.longest = Some(answer.clone());
        }
        Ok(answer)
    }

    /// Sends `frame` and returns its answer with the time-extension
    /// frames that came before it.
    pub(crate) fn exchange(&mut self, frame: &[u8]) -> Result<(Vec<Answer>, Answer), WireError> {
        self.send(frame)?;
        let mut extensions = Vec::new();
        loop {
            let answer = self.receive()?;
            if answer.command_status() != COMMAND_TIME_EXTENSION
                || extensions.len() >= MAX_TIME_EXTENSIONS
            {
                return Ok((extensions, answer));
            }
            extensions.push(answer);
        }
    }

    /// Sends `frame` and returns its answer, time extensions skipped.
    pub(crate) fn transact(&mut self, frame: &[u8]) -> Result<Answer, WireError> {
        self.exchange(frame).map(|(_, answer)| answer)
    }

    /// Reads and drops whatever a previous check left on bulk-IN (a late
    /// answer must not be taken for the next one).
    pub(crate) fn drain(&mut self) {
        while self
            .transport
            .bulk_in(&mut self.buf, Duration::from_millis(50))
            .is_ok()
        {}
    }
}

/// A command frame: the 10-byte header, then `data`.
pub(crate) fn frame_with_seq(
    message_type: u8,
    slot: u8,
    seq: u8,
    header: [u8; 3],
    data: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(10 + data.len());
    frame.push(message_type);
    frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
    frame.extend_from_slice(&[slot, seq]);
    frame.extend_from_slice(&header);
    frame.extend_from_slice(data);
    frame
}
