//! The T=0 procedure-byte machine (ISO/IEC 7816-3 §10.3.3), for readers
//! that exchange characters rather than TPDUs.
//!
//! After the caller has sent the 5-byte header `CLA INS P1 P2 P3`, the card
//! answers with procedure bytes, each one telling the reader what comes
//! next:
//!
//! | byte | meaning |
//! |---|---|
//! | `60` (NULL) | the card is still working: restart WWT and keep waiting |
//! | INS (ACK) | transfer all remaining data bytes |
//! | INS ⊕ FF (ACK) | transfer the next data byte only |
//! | `6X` (≠ 60) or `9X` (SW1) | the status word follows: one more byte, SW2 |
//! | anything else | a protocol error |
//!
//! Data flows in one direction per TPDU: towards the card for case 3
//! (P3 = Lc) and case 1 (P3 = 0, no data), from the card for case 2
//! (P3 = Le, where 00 means 256).
//!
//! # Bounds
//!
//! Every ACK transfers at least one data byte (an ACK with nothing left is
//! [`ProcedureError::AckWithoutData`]), so one TPDU takes at most P3 ACKs
//! and P3 data bytes. NULL bytes move nothing and each restarts WWT: the
//! machine accepts at most [`ProcedureMachine::MAX_NULLS`] of them per TPDU,
//! then fails with [`ProcedureError::TooManyNulls`]. So the machine ends
//! (status word or error) after at most `MAX_NULLS + 2 × 256 + 3` bytes.
//! The cap is a generous backstop; the caller bounds the wall-clock time
//! (and may well allow far fewer NULLs, see [`ProcedureMachine::null_count`]).

use core::fmt;

/// Which way the data bytes of a TPDU flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Reader to card: case 3 (P3 = Lc data bytes) or case 1 (P3 = 0).
    ToCard,
    /// Card to reader: case 2 (P3 = Le data bytes, 00 meaning 256).
    FromCard,
}

/// What the caller does after feeding one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcedureEvent {
    /// NULL byte (0x60): the card asks for more time; restart the work
    /// waiting time and keep receiving.
    Null,
    /// ACK towards the card: send `len` data bytes starting at `offset` in
    /// the command data, then keep receiving procedure bytes.
    SendData {
        /// Index of the first data byte to send.
        offset: usize,
        /// How many bytes to send.
        len: usize,
    },
    /// ACK from the card: the next `len` received bytes are data; feed
    /// them, each comes back as [`ProcedureEvent::Data`].
    ExpectData {
        /// How many data bytes the card will now send.
        len: usize,
    },
    /// One response data byte, the `offset`-th of the TPDU's data.
    Data {
        /// The data byte.
        byte: u8,
        /// Its position in the response data.
        offset: usize,
    },
    /// SW1 received; SW2 is the next byte.
    AwaitSw2,
    /// The status word has arrived: the TPDU is complete.
    Done {
        /// First status byte.
        sw1: u8,
        /// Second status byte.
        sw2: u8,
    },
}

/// A byte the card had no right to send, or a call out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcedureError {
    /// INS values 6X and 9X are invalid (§10.3.2): their ACK could not be
    /// told apart from SW1.
    InvalidIns(u8),
    /// A procedure byte that is neither NULL, ACK nor SW1.
    UnexpectedByte(u8),
    /// An ACK while no data byte remains to be transferred.
    AckWithoutData(u8),
    /// A byte after the status word completed the TPDU.
    AfterCompletion(u8),
    /// More NULL bytes in one TPDU than [`ProcedureMachine::MAX_NULLS`].
    TooManyNulls,
}

impl fmt::Display for ProcedureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcedureError::InvalidIns(ins) => write!(f, "INS {ins:02X} is invalid under T=0"),
            ProcedureError::UnexpectedByte(b) => {
                write!(f, "unexpected procedure byte {b:02X}")
            }
            ProcedureError::AckWithoutData(b) => {
                write!(f, "ACK {b:02X} but no data byte remains")
            }
            ProcedureError::AfterCompletion(b) => {
                write!(f, "byte {b:02X} received after the status word")
            }
            ProcedureError::TooManyNulls => write!(
                f,
                "card sent more than {} NULL procedure bytes",
                ProcedureMachine::MAX_NULLS
            ),
        }
    }
}

/// Where in the exchange the machine stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a procedure byte.
    Procedure,
    /// Receiving `left` more data bytes of the current ACK.
    Receiving { left: usize },
    /// SW1 seen, SW2 next.
    Sw2 { sw1: u8 },
    /// Status word received.
    Done,
}

/// The procedure-byte machine for one T=0 TPDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcedureMachine {
    ins: u8,
    direction: Direction,
    /// Data bytes announced by P3.
    total: usize,
    /// Data bytes already transferred (sent or received).
    transferred: usize,
    nulls: u32,
    state: State,
}

impl ProcedureMachine {
    /// NULL bytes accepted in one TPDU. Each restarts WWT (about 1 s at the
    /// default WI and 3.57 MHz, at least about 18 ms for any card), so
    /// 100 000 NULLs is about half an hour of card work or more: enough for any
    /// legitimate computation, while the wall-clock limit is the caller's.
    pub const MAX_NULLS: u32 = 100_000;

    /// A machine for the TPDU whose header `CLA INS P1 P2 P3` the caller
    /// is sending.
    pub fn new(header: [u8; 5], direction: Direction) -> Result<Self, ProcedureError> {
        let ins = header[1];
        if matches!(ins & 0xF0, 0x60 | 0x90) {
            return Err(ProcedureError::InvalidIns(ins));
        }
        let p3 = usize::from(header[4]);
        let total = match direction {
            Direction::ToCard => p3,
            Direction::FromCard if p3 == 0 => 256,
            Direction::FromCard => p3,
        };
        Ok(ProcedureMachine {
            ins,
            direction,
            total,
            transferred: 0,
            nulls: 0,
            state: State::Procedure,
        })
    }

    /// Feeds one byte received from the card.
    pub fn feed(&mut self, byte: u8) -> Result<ProcedureEvent, ProcedureError> {
        match self.state {
            State::Done => Err(ProcedureError::AfterCompletion(byte)),
            State::Sw2 { sw1 } => {
                self.state = State::Done;
                Ok(ProcedureEvent::Done { sw1, sw2: byte })
            }
            State::Receiving { left } => {
                let offset = self.transferred;
                self.transferred += 1;
                self.state = if left > 1 {
                    State::Receiving { left: left - 1 }
                } else {
                    State::Procedure
                };
                Ok(ProcedureEvent::Data { byte, offset })
            }
            State::Procedure => self.procedure_byte(byte),
        }
    }

    /// Interprets a byte received while a procedure byte is due.
    fn procedure_byte(&mut self, byte: u8) -> Result<ProcedureEvent, ProcedureError> {
        if byte == 0x60 {
            if self.nulls >= Self::MAX_NULLS {
                return Err(ProcedureError::TooManyNulls);
            }
            self.nulls += 1;
            return Ok(ProcedureEvent::Null);
        }
        if matches!(byte & 0xF0, 0x60 | 0x90) {
            self.state = State::Sw2 { sw1: byte };
            return Ok(ProcedureEvent::AwaitSw2);
        }
        let len = if byte == self.ins {
            self.remaining()
        } else if byte == self.ins ^ 0xFF {
            self.remaining().min(1)
        } else {
            return Err(ProcedureError::UnexpectedByte(byte));
        };
        if len == 0 {
            return Err(ProcedureError::AckWithoutData(byte));
        }
        match self.direction {
            Direction::ToCard => {
                let offset = self.transferred;
                self.transferred += len;
                Ok(ProcedureEvent::SendData { offset, len })
            }
            Direction::FromCard => {
                self.state = State::Receiving { left: len };
                Ok(ProcedureEvent::ExpectData { len })
            }
        }
    }

    /// Data bytes P3 announced that have not been transferred yet.
    pub fn remaining(&self) -> usize {
        self.total - self.transferred
    }

    /// Data bytes transferred so far (sent, or received and fed).
    pub fn transferred(&self) -> usize {
        self.transferred
    }

    /// NULL bytes received so far (at most [`Self::MAX_NULLS`]): a caller
    /// that wants a tighter bound, tied to its timeouts, checks this.
    pub fn null_count(&self) -> u32 {
        self.nulls
    }

    /// Whether the status word has been received.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The direction given at construction.
    pub fn direction(&self) -> Direction {
        self.direction
    }
}
