//! A [`CardChannel`] over a PC/SC connection (pcscd through libpcsclite,
//! the `pcsc` crate), and reader/card events from SCardGetStatusChange.
//!
//! # Threading
//! A PC/SC transaction is tied to the card handle that began it, and the
//! `pcsc` crate models it as a guard borrowing the handle. To keep a
//! transaction open between two calls without self-referential types, the
//! handle lives on a worker thread: every operation is a job sent to that
//! thread, and while a transaction is open the worker runs jobs on the
//! guard instead of the handle. The [`PcscChannel`] itself only holds the
//! sending end.
//!
//! # Lock timeouts
//! pcsc-lite's SCardBeginTransaction does not return while another handle
//! holds the card: its client library retries on SCARD_E_SHARING_VIOLATION
//! until it is granted. To honour [`CardChannel::begin_transaction`]'s
//! timeout the worker polls first: it asks for an attribute of the card
//! (SCardGetAttrib checks the sharing state and answers
//! SCARD_E_SHARING_VIOLATION while another handle holds a transaction),
//! every [`LOCK_POLL_INTERVAL`], until the card is free or the deadline
//! passes, and only then calls SCardBeginTransaction. If a third party
//! takes the card in between, the begin blocks in libpcsclite; the caller
//! still gets [`ChannelError::Timeout`] at its deadline, and the worker
//! ends the late transaction as soon as it is granted — jobs sent to this
//! channel in the meantime wait for that.
//!
//! An exchange while another handle holds a transaction waits inside
//! libpcsclite, which retries SCARD_E_SHARING_VIOLATION every 100 ms for
//! as long as it takes. With a lock wait set, the channel first polls the
//! card the same way as for a begin, and answers [`ChannelError::Locked`]
//! if it is still held at the deadline. A third party that takes the card
//! between the poll and the exchange makes the exchange wait in
//! libpcsclite until that transaction ends.
//!
//! # An empty reader
//! SCardConnect needs a card. A channel to an empty reader holds no
//! handle: its status is the reader's, exchanges answer
//! [`ChannelError::NoCard`], and the first exchange after a card arrives
//! connects to it.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pcsc::{Attribute, Card, Context, Protocols, ReaderState, Scope, ShareMode, State, Status};

use super::apdu::{EXTENDED_MAX_APDU, SHORT_MAX_APDU, SHORT_MAX_NC, SHORT_MAX_NE};
use super::channel::{
    CardChannel, CardState, ChannelStatus, Disposition, Initialization, Protocol, ProtocolChoice,
};
use super::error::{ChannelError, Result};
use super::events::{EventBus, EventKind};
use ferroccid::ccid::secure::{PinModify, PinVerify};
use ferroccid::part10::{
    property, CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_GET_TLV_PROPERTIES, FEATURE_MODIFY_PIN_DIRECT,
    FEATURE_VERIFY_PIN_DIRECT, PIN_MODIFY_STRUCTURE_HEADER, PIN_VERIFY_STRUCTURE_HEADER,
};

/// How often a waiting [`CardChannel::begin_transaction`] looks whether the
/// card is free (pcsc-lite's own client polls every 100 ms).
pub(crate) const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long past its deadline a caller waits for the worker's own
/// timeout answer before giving up on a begin stuck in libpcsclite.
const BEGIN_MARGIN: Duration = Duration::from_millis(50);

/// Largest command APDU libpcsclite carries (`MAX_BUFFER_SIZE_EXTENDED`).
const PCSC_MAX_COMMAND: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;
/// Largest response: 65536 data bytes and SW1 SW2.
const PCSC_MAX_RESPONSE: usize = 65_536 + 2;

/// The coarse channel meaning of a PC/SC error code.
pub(crate) fn channel_error(e: pcsc::Error) -> ChannelError {
    use pcsc::Error as E;
    match e {
        E::NoSmartcard => ChannelError::NoCard,
        E::RemovedCard => ChannelError::CardRemoved,
        E::ResetCard => ChannelError::CardReset,
        E::UnpoweredCard => ChannelError::Unpowered,
        E::Timeout => ChannelError::Timeout,
        E::Cancelled => ChannelError::Cancelled,
        E::ReaderUnavailable | E::UnknownReader | E::NoReadersAvailable | E::NoService => {
            ChannelError::ReaderUnavailable
        }
        E::UnsupportedFeature | E::UnsupportedCard | E::UnknownCard => {
            ChannelError::Unsupported("refused by PC/SC")
        }
        other => ChannelError::Other(format!("PC/SC: {other}")),
    }
}

fn pcsc_disposition(d: Disposition) -> pcsc::Disposition {
    match d {
        Disposition::Leave => pcsc::Disposition::LeaveCard,
        Disposition::Reset => pcsc::Disposition::ResetCard,
        Disposition::Unpower => pcsc::Disposition::UnpowerCard,
        Disposition::Eject => pcsc::Disposition::EjectCard,
    }
}

fn pcsc_protocols(choice: ProtocolChoice) -> Protocols {
    match choice {
        ProtocolChoice::Any => Protocols::T0 | Protocols::T1,
        ProtocolChoice::T0 => Protocols::T0,
        ProtocolChoice::T1 => Protocols::T1,
    }
}

// ---------------------------------------------------------------- worker

/// What a job can do: the handle, or the transaction guard over it.
trait Conn {
    fn card(&self) -> &Card;
    fn reconnect(
        &mut self,
        share: ShareMode,
        protocols: Protocols,
        init: pcsc::Disposition,
    ) -> std::result::Result<(), pcsc::Error>;
}

impl Conn for Card {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(
        &mut self,
        share: ShareMode,
        protocols: Protocols,
        init: pcsc::Disposition,
    ) -> std::result::Result<(), pcsc::Error> {
        Card::reconnect(self, share, protocols, init)
    }
}

impl Conn for pcsc::Transaction<'_> {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(
        &mut self,
        share: ShareMode,
        protocols: Protocols,
        init: pcsc::Disposition,
    ) -> std::result::Result<(), pcsc::Error> {
        pcsc::Transaction::reconnect(self, share, protocols, init)
    }
}

type Job = Box<dyn FnOnce(&mut dyn Conn) + Send>;
type Reply = Sender<std::result::Result<(), ChannelError>>;

enum Message {
    Run(Job),
    Begin {
        deadline: Option<Instant>,
        reply: Reply,
    },
    End {
        disposition: pcsc::Disposition,
        reply: Reply,
    },
    Disconnect {
        disposition: pcsc::Disposition,
        reply: Reply,
    },
}

/// What ended a transaction.
enum AfterTransaction {
    Ended,
    Disconnect(pcsc::Disposition, Reply),
    Closed,
}

/// Polls until no other handle holds the card, or the deadline passes.
fn wait_until_free(
    card: &Card,
    deadline: Option<Instant>,
) -> std::result::Result<(), ChannelError> {
    let Some(deadline) = deadline else {
        // No deadline: libpcsclite's own wait is what the caller asked for.
        return Ok(());
    };
    let mut buf = [0u8; 64];
    loop {
        match card.get_attribute(Attribute::AtrString, &mut buf) {
            Err(pcsc::Error::SharingViolation) => {}
            _ => return Ok(()),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ChannelError::Timeout);
        }
        std::thread::sleep(LOCK_POLL_INTERVAL.min(deadline - now));
    }
}

/// Runs jobs on the transaction guard until the transaction ends.
fn serve_transaction(mut tx: pcsc::Transaction<'_>, rx: &Receiver<Message>) -> AfterTransaction {
    loop {
        match rx.recv() {
            // Dropping the guard ends the transaction, leaving the card.
            Err(_) => return AfterTransaction::Closed,
            Ok(Message::Run(job)) => job(&mut tx),
            Ok(Message::Begin { reply, .. }) => {
                let _ = reply.send(Err(ChannelError::Other(
                    "this handle already holds a transaction".into(),
                )));
            }
            Ok(Message::End { disposition, reply }) => {
                // SCardEndTransaction applies the disposition, then unlocks.
                let result = tx.end(disposition).map_err(|(_, e)| channel_error(e));
                let _ = reply.send(result);
                return AfterTransaction::Ended;
            }
            Ok(Message::Disconnect { disposition, reply }) => {
                return AfterTransaction::Disconnect(disposition, reply)
            }
        }
    }
}

fn serve(mut card: Card, rx: Receiver<Message>) {
    while let Ok(message) = rx.recv() {
        match message {
            Message::Run(job) => job(&mut card),
            Message::End { reply, .. } => {
                // Not in a transaction (it was never granted): nothing to end.
                let _ = reply.send(Ok(()));
            }
            Message::Disconnect { disposition, reply } => {
                let _ = reply.send(disconnect(card, disposition));
                return;
            }
            Message::Begin { deadline, reply } => {
                if let Err(e) = wait_until_free(&card, deadline) {
                    let _ = reply.send(Err(e));
                    continue;
                }
                let tx = match card.transaction2() {
                    Ok(tx) => tx,
                    Err((_, e)) => {
                        let _ = reply.send(Err(channel_error(e)));
                        continue;
                    }
                };
                if reply.send(Ok(())).is_err() {
                    // The caller timed out while libpcsclite waited: give
                    // the late grant straight back.
                    let _ = tx.end(pcsc::Disposition::LeaveCard);
                    continue;
                }
                match serve_transaction(tx, &rx) {
                    AfterTransaction::Ended => {}
                    AfterTransaction::Closed => break,
                    AfterTransaction::Disconnect(disposition, reply) => {
                        let _ = reply.send(disconnect(card, disposition));
                        return;
                    }
                }
            }
        }
    }
    // The channel was dropped without a disconnect: leave the card as it
    // is (the `pcsc` crate's drop would reset it under other handles).
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
}

fn disconnect(card: Card, disposition: pcsc::Disposition) -> std::result::Result<(), ChannelError> {
    card.disconnect(disposition)
        .map_err(|(_, e)| channel_error(e))
}

// ---------------------------------------------------------------- limits

/// What the reader tells about itself once connected.
#[derive(Debug, Clone, Copy, Default)]
struct ReaderLimits {
    /// `dwMaxAPDUDataSize` (TLV properties) or SCARD_ATTR_MAXINPUT.
    max_apdu_data: usize,
    /// Control code of FEATURE_VERIFY_PIN_DIRECT.
    verify_pin: Option<u32>,
    /// Control code of FEATURE_MODIFY_PIN_DIRECT.
    modify_pin: Option<u32>,
}

/// The part 10 feature list: TLVs of a tag, length 4 and a big-endian
/// control code (part 10 §2.2).
fn parse_features(list: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let Some(value) = tail.get(..len) else { break };
        if let Ok(code) = <[u8; 4]>::try_from(value) {
            out.push((*tag, u32::from_be_bytes(code)));
        }
        rest = &tail[len..];
    }
    out
}

/// One value of FEATURE_GET_TLV_PROPERTIES: tag, length, little-endian
/// value (part 10 §2.6.14).
fn tlv_property(list: &[u8], wanted: u8) -> Option<u64> {
    let mut rest = list;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let value = tail.get(..len)?;
        if *tag == wanted && len <= 8 {
            return Some(
                value
                    .iter()
                    .rev()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            );
        }
        rest = &tail[len..];
    }
    None
}

fn read_limits(card: &Card) -> ReaderLimits {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE];
    let features = card
        .control(CM_IOCTL_GET_FEATURE_REQUEST.into(), &[], &mut buf)
        .map(parse_features)
        .unwrap_or_default();
    let code = |tag: u8| features.iter().find(|(t, _)| *t == tag).map(|(_, c)| *c);
    let from_properties = code(FEATURE_GET_TLV_PROPERTIES).and_then(|c| {
        let list = card.control(c.into(), &[], &mut buf).ok()?;
        tlv_property(list, property::DW_MAX_APDU_DATA_SIZE)
    });
    let max_apdu_data = from_properties.or_else(|| {
        let mut attr = [0u8; 8];
        let v = card.get_attribute(Attribute::Maxinput, &mut attr).ok()?;
        Some(
            v.iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    });
    ReaderLimits {
        max_apdu_data: max_apdu_data.map_or(SHORT_MAX_NC, |v| v as usize),
        verify_pin: code(FEATURE_VERIFY_PIN_DIRECT),
        modify_pin: code(FEATURE_MODIFY_PIN_DIRECT),
    }
}

// ---------------------------------------------------------------- PIN structures

/// PIN_VERIFY_STRUCTURE of `reader.h` (packed, little-endian words).
pub(crate) fn pin_verify_structure(p: &PinVerify<'_>) -> Vec<u8> {
    let mut s = Vec::with_capacity(PIN_VERIFY_STRUCTURE_HEADER + p.apdu.len());
    s.extend_from_slice(&[p.timeout, 0, p.format_string, p.pin_block_string]);
    s.push(p.pin_length_format);
    s.extend_from_slice(&p.pin_max_extra_digit.to_le_bytes());
    s.extend_from_slice(&[p.entry_validation_condition, p.number_message]);
    s.extend_from_slice(&p.lang_id.to_le_bytes());
    s.push(p.msg_index);
    s.extend_from_slice(&p.teo_prologue);
    s.extend_from_slice(&(p.apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(p.apdu);
    s
}

/// PIN_MODIFY_STRUCTURE of `reader.h` (packed, little-endian words; all
/// three message indexes are always present in the PC/SC form).
pub(crate) fn pin_modify_structure(p: &PinModify<'_>) -> Vec<u8> {
    let mut s = Vec::with_capacity(PIN_MODIFY_STRUCTURE_HEADER + p.apdu.len());
    s.extend_from_slice(&[p.timeout, 0, p.format_string, p.pin_block_string]);
    s.extend_from_slice(&[
        p.pin_length_format,
        p.insertion_offset_old,
        p.insertion_offset_new,
    ]);
    s.extend_from_slice(&p.pin_max_extra_digit.to_le_bytes());
    s.extend_from_slice(&[
        p.confirm_pin,
        p.entry_validation_condition,
        p.number_message,
    ]);
    s.extend_from_slice(&p.lang_id.to_le_bytes());
    s.extend_from_slice(&p.msg_index);
    s.extend_from_slice(&p.teo_prologue);
    s.extend_from_slice(&(p.apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(p.apdu);
    s
}

// ---------------------------------------------------------------- channel

/// What SCardGetStatusChange tells about a reader.
struct ReaderNow {
    present: bool,
    powered: bool,
    atr: Vec<u8>,
    /// Card insertions and removals counted by pcsc-lite (16 bits).
    events: u32,
}

/// A connection to the card in a PC/SC reader.
///
/// While another handle holds a transaction, pcsc-lite makes every call
/// of this handle (status included) wait until it ends.
pub struct PcscChannel {
    reader: CString,
    reader_name: String,
    share_mode: ShareMode,
    /// For reader state when the handle itself cannot tell (after a
    /// removal or a reset by someone else).
    context: Context,
    worker: Option<(Sender<Message>, JoinHandle<()>)>,
    limits: ReaderLimits,
    protocol: Option<Protocol>,
    /// The reader's card event counter when the card was last connected:
    /// a different count later means the card was swapped, not reset.
    card_events: Option<u32>,
    /// Made to an empty reader, no card connected yet.
    awaiting_card: bool,
    /// How long an exchange retries while another handle holds the card.
    lock_wait: Option<Duration>,
}

impl std::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("reader", &self.reader_name)
            .field("share_mode", &self.share_mode)
            .finish()
    }
}

/// A card's protocol as the channel names it.
fn protocol_of(p: Option<pcsc::Protocol>) -> Option<Protocol> {
    p.map(|p| match p {
        pcsc::Protocol::T0 => Protocol::T0,
        pcsc::Protocol::T1 => Protocol::T1,
        pcsc::Protocol::RAW => Protocol::Other(0xFF),
    })
}

impl PcscChannel {
    /// Connects to the card in `reader` (a PC/SC reader name, as
    /// SCardListReaders gives it) with `share_mode`, any protocol.
    pub fn connect(reader: &str, share_mode: ShareMode) -> std::result::Result<Self, ChannelError> {
        let context = Context::establish(Scope::User).map_err(channel_error)?;
        let name = CString::new(reader)
            .map_err(|_| ChannelError::Other("reader name with a NUL byte".into()))?;
        match context.connect(&name, share_mode, Protocols::T0 | Protocols::T1) {
            Ok(card) => Self::with_card(context, name, card, share_mode),
            Err(pcsc::Error::NoSmartcard) => Ok(PcscChannel {
                reader_name: name.to_string_lossy().into_owned(),
                reader: name,
                share_mode,
                context,
                worker: None,
                limits: ReaderLimits::default(),
                protocol: None,
                card_events: None,
                awaiting_card: true,
                lock_wait: None,
            }),
            Err(e) => Err(channel_error(e)),
        }
    }

    /// On a channel made to an empty reader: connects the card that has
    /// arrived since, or says there is none.
    fn connect_arrived_card(&mut self) -> std::result::Result<(), ChannelError> {
        if !self.awaiting_card {
            return Ok(());
        }
        let card = self
            .context
            .connect(&self.reader, self.share_mode, Protocols::T0 | Protocols::T1)
            .map_err(channel_error)?;
        self.start(card)?;
        self.awaiting_card = false;
        Ok(())
    }

    /// Wraps an open connection (AttachByHandle). `reader` is its reader's
    /// name; `share_mode` the mode it was opened with (used on reconnect).
    pub fn from_card(card: Card, share_mode: ShareMode) -> std::result::Result<Self, ChannelError> {
        let context = Context::establish(Scope::User).map_err(channel_error)?;
        let status = card.status2_owned().map_err(channel_error)?;
        let name = status
            .reader_names()
            .first()
            .cloned()
            .ok_or_else(|| ChannelError::Other("SCardStatus named no reader".into()))?;
        Self::with_card(context, name, card, share_mode)
    }

    fn with_card(
        context: Context,
        reader: CString,
        card: Card,
        share_mode: ShareMode,
    ) -> std::result::Result<Self, ChannelError> {
        let mut channel = PcscChannel {
            reader_name: reader.to_string_lossy().into_owned(),
            reader,
            share_mode,
            context,
            worker: None,
            limits: ReaderLimits::default(),
            protocol: None,
            card_events: None,
            awaiting_card: false,
            lock_wait: None,
        };
        channel.start(card)?;
        Ok(channel)
    }

    /// Reads what the card's handle tells and hands it to a worker thread.
    fn start(&mut self, card: Card) -> std::result::Result<(), ChannelError> {
        self.limits = read_limits(&card);
        self.protocol = protocol_of(
            card.status2_owned()
                .ok()
                .and_then(|status| status.protocol2()),
        );
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ferroccid-pcsc".into())
            .spawn(move || serve(card, rx))
            .map_err(|e| ChannelError::Other(format!("worker thread: {e}")))?;
        self.worker = Some((tx, thread));
        self.card_events = self.reader_state().ok().map(|s| s.events);
        Ok(())
    }

    /// The PC/SC reader name.
    pub fn reader_name(&self) -> &str {
        &self.reader_name
    }

    fn sender(&self) -> std::result::Result<&Sender<Message>, ChannelError> {
        match &self.worker {
            Some((tx, _)) => Ok(tx),
            None if self.awaiting_card => Err(ChannelError::NoCard),
            None => Err(ChannelError::Detached),
        }
    }

    /// Runs `f` on the worker's handle (or transaction) and waits for it.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> T + Send + 'static,
    ) -> std::result::Result<T, ChannelError> {
        let (reply, answer) = mpsc::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.sender()?
            .send(Message::Run(job))
            .map_err(|_| ChannelError::Detached)?;
        answer.recv().map_err(|_| ChannelError::Detached)
    }

    fn request(
        &self,
        make: impl FnOnce(Reply) -> Message,
        wait: Option<Duration>,
    ) -> std::result::Result<(), ChannelError> {
        let (reply, answer) = mpsc::channel();
        self.sender()?
            .send(make(reply))
            .map_err(|_| ChannelError::Detached)?;
        match wait {
            None => answer.recv().map_err(|_| ChannelError::Detached)?,
            Some(wait) => match answer.recv_timeout(wait) {
                Ok(result) => result,
                Err(RecvTimeoutError::Timeout) => Err(ChannelError::Timeout),
                Err(RecvTimeoutError::Disconnected) => Err(ChannelError::Detached),
            },
        }
    }

    /// The reader's state from SCardGetStatusChange.
    fn reader_state(&self) -> std::result::Result<ReaderNow, ChannelError> {
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        self.context
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(channel_error)?;
        let s = states[0].event_state();
        if s.intersects(State::UNKNOWN | State::UNAVAILABLE | State::IGNORE) {
            return Err(ChannelError::ReaderUnavailable);
        }
        let present = s.contains(State::PRESENT);
        Ok(ReaderNow {
            present,
            powered: present && !s.intersects(State::UNPOWERED | State::MUTE),
            atr: states[0].atr().to_vec(),
            events: states[0].event_count(),
        })
    }

    /// A handle error, told apart by the reader state: while the reader is
    /// empty it is [`ChannelError::NoCard`]; with a card in that came after
    /// our connection (the reader's event counter moved — pcsc-lite may
    /// call that a reset) it is [`ChannelError::CardRemoved`].
    fn handle_error(&self, e: pcsc::Error) -> ChannelError {
        match e {
            pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::ResetCard => {
                match self.reader_state() {
                    Ok(now) if !now.present => ChannelError::NoCard,
                    Ok(now) if self.card_events.is_some_and(|c| c != now.events) => {
                        ChannelError::CardRemoved
                    }
                    _ => channel_error(e),
                }
            }
            other => channel_error(other),
        }
    }

    /// Status from the reader's state, when no handle can tell: powered
    /// or not, but the card's mode is this handle's to know.
    fn status_from_reader(&self) -> std::result::Result<ChannelStatus, ChannelError> {
        let now = self.reader_state()?;
        Ok(ChannelStatus {
            reader: self.reader_name.clone(),
            state: match (now.present, now.powered) {
                (false, _) => CardState::Absent,
                (true, false) => CardState::Swallowed,
                (true, true) => CardState::Powered,
            },
            present: now.present,
            powered: now.powered,
            protocol: None,
            atr: if now.powered { now.atr } else { Vec::new() },
        })
    }

    fn refresh(&mut self) {
        let limits = self.run(|conn| {
            let card = conn.card();
            let protocol = card.status2_owned().ok().and_then(|s| s.protocol2());
            (read_limits(card), protocol)
        });
        if let Ok((limits, protocol)) = limits {
            self.limits = limits;
            self.protocol = protocol_of(protocol);
        }
    }

    /// SCardControl with a feature code; the driver's answer.
    fn control(&self, code: u32, input: Vec<u8>) -> std::result::Result<Vec<u8>, ChannelError> {
        self.run(move |conn| {
            let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE];
            conn.card()
                .control(code.into(), &input, &mut buf)
                .map(<[u8]>::to_vec)
        })?
        .map_err(|e| self.handle_error(e))
    }
}

impl Drop for PcscChannel {
    fn drop(&mut self) {
        if let Some((tx, thread)) = self.worker.take() {
            // Closing the queue makes the worker leave the card and exit.
            drop(tx);
            let _ = thread.join();
        }
    }
}

impl CardChannel for PcscChannel {
    fn transmit(
        &mut self,
        cmd: &[u8],
        resp: &mut [u8],
    ) -> std::result::Result<usize, ChannelError> {
        self.connect_arrived_card()?;
        if let Some(deadline) = self.lock_wait.and_then(|t| Instant::now().checked_add(t)) {
            // Free, or held by this handle's own transaction.
            self.run(move |conn| wait_until_free(conn.card(), Some(deadline)))?
                .map_err(|e| match e {
                    ChannelError::Timeout => ChannelError::Locked,
                    e => e,
                })?;
        }
        let room = resp.len().min(PCSC_MAX_RESPONSE);
        let command = cmd.to_vec();
        let answer = self.run(move |conn| {
            let mut buf = vec![0u8; room];
            conn.card()
                .transmit2(&command, &mut buf)
                .map(<[u8]>::to_vec)
        })?;
        match answer {
            Ok(answer) => {
                resp[..answer.len()].copy_from_slice(&answer);
                Ok(answer.len())
            }
            Err((pcsc::Error::InsufficientBuffer, needed)) => {
                Err(ChannelError::BufferTooSmall { needed })
            }
            Err((e, _)) => Err(self.handle_error(e)),
        }
    }

    fn status(&mut self) -> std::result::Result<ChannelStatus, ChannelError> {
        if self.awaiting_card {
            return self.status_from_reader();
        }
        let answer = self.run(|conn| conn.card().status2_owned())?;
        match answer {
            Ok(status) => {
                let s = status.status();
                let state = [
                    (Status::SPECIFIC, CardState::Specific),
                    (Status::NEGOTIABLE, CardState::Negotiable),
                    (Status::POWERED, CardState::Powered),
                    (Status::SWALLOWED, CardState::Swallowed),
                    (Status::PRESENT, CardState::Present),
                ]
                .into_iter()
                .find(|(bit, _)| s.contains(*bit))
                .map_or(CardState::Absent, |(_, state)| state);
                let present = s.intersects(
                    Status::PRESENT
                        | Status::SWALLOWED
                        | Status::POWERED
                        | Status::NEGOTIABLE
                        | Status::SPECIFIC,
                );
                let powered = s.intersects(Status::POWERED | Status::NEGOTIABLE | Status::SPECIFIC);
                Ok(ChannelStatus {
                    reader: self.reader_name.clone(),
                    state,
                    present,
                    powered,
                    protocol: if powered {
                        protocol_of(status.protocol2())
                    } else {
                        None
                    },
                    atr: if powered {
                        status.atr().to_vec()
                    } else {
                        Vec::new()
                    },
                })
            }
            // The handle is stale; the reader still knows the truth.
            Err(
                pcsc::Error::RemovedCard
                | pcsc::Error::ResetCard
                | pcsc::Error::NoSmartcard
                | pcsc::Error::UnpoweredCard,
            ) => self.status_from_reader(),
            Err(e) => Err(channel_error(e)),
        }
    }

    fn reconnect(
        &mut self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> std::result::Result<ChannelStatus, ChannelError> {
        if self.awaiting_card {
            self.connect_arrived_card()?;
        }
        let share = self.share_mode;
        let protocols = pcsc_protocols(protocol);
        let init = match init {
            Initialization::Leave => pcsc::Disposition::LeaveCard,
            Initialization::Warm => pcsc::Disposition::ResetCard,
            Initialization::Cold => pcsc::Disposition::UnpowerCard,
        };
        self.run(move |conn| conn.reconnect(share, protocols, init))?
            .map_err(|e| self.handle_error(e))?;
        self.card_events = self.reader_state().ok().map(|s| s.events);
        self.refresh();
        self.status()
    }

    fn disconnect(&mut self, disposition: Disposition) -> std::result::Result<(), ChannelError> {
        if std::mem::take(&mut self.awaiting_card) {
            // No card was ever connected: nothing to leave in any state.
            return Ok(());
        }
        let disposition = pcsc_disposition(disposition);
        let result = self.request(|reply| Message::Disconnect { disposition, reply }, None);
        if let Some((tx, thread)) = self.worker.take() {
            drop(tx);
            let _ = thread.join();
        }
        result
    }

    fn begin_transaction(
        &mut self,
        timeout: Option<Duration>,
    ) -> std::result::Result<(), ChannelError> {
        self.connect_arrived_card()?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // The worker answers Timeout itself at the deadline; the margin
        // covers a begin stuck in libpcsclite after the card looked free.
        let wait = timeout.map(|t| t.saturating_add(BEGIN_MARGIN));
        self.request(|reply| Message::Begin { deadline, reply }, wait)
    }

    fn end_transaction(
        &mut self,
        disposition: Disposition,
    ) -> std::result::Result<(), ChannelError> {
        let disposition = pcsc_disposition(disposition);
        self.request(|reply| Message::End { disposition, reply }, None)
    }

    fn set_lock_wait(&mut self, wait: Option<Duration>) {
        self.lock_wait = wait;
    }

    fn max_command_len(&self) -> usize {
        if self.supports_extended() {
            (4 + 3 + self.limits.max_apdu_data.min(65_535) + 3)
                .clamp(SHORT_MAX_APDU, PCSC_MAX_COMMAND.min(EXTENDED_MAX_APDU))
        } else {
            SHORT_MAX_APDU
        }
    }

    fn max_response_len(&self) -> usize {
        if self.supports_extended() {
            PCSC_MAX_RESPONSE
        } else {
            SHORT_MAX_NE + 2
        }
    }

    fn supports_extended(&self) -> bool {
        // T=0 carries short APDUs only (ISO/IEC 7816-3 §12.1); a reader
        // with dwMaxAPDUDataSize ≤ 255 (or none) takes short APDUs only.
        self.limits.max_apdu_data > SHORT_MAX_NC && self.protocol != Some(Protocol::T0)
    }

    fn has_pinpad(&self) -> bool {
        self.limits.verify_pin.is_some()
    }

    fn verify_pin_secure(
        &mut self,
        params: &PinVerify<'_>,
    ) -> std::result::Result<Vec<u8>, ChannelError> {
        let code = self
            .limits
            .verify_pin
            .ok_or(ChannelError::Unsupported("no FEATURE_VERIFY_PIN_DIRECT"))?;
        self.control(code, pin_verify_structure(params))
    }

    fn modify_pin_secure(
        &mut self,
        params: &PinModify<'_>,
    ) -> std::result::Result<Vec<u8>, ChannelError> {
        let code = self
            .limits
            .modify_pin
            .ok_or(ChannelError::Unsupported("no FEATURE_MODIFY_PIN_DIRECT"))?;
        self.control(code, pin_modify_structure(params))
    }
}

/// The names of the PC/SC readers pcscd knows.
pub(crate) fn reader_names() -> Result<Vec<String>> {
    let context = Context::establish(Scope::User).map_err(channel_error)?;
    let readers = match context.list_readers_owned() {
        Ok(readers) => readers,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(channel_error(e).into()),
    };
    Ok(readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect())
}

// ---------------------------------------------------------------- events

/// Reader and card events from pcscd, published on an [`EventBus`]:
/// reader added / removed (through `\\?PnP?\Notification`) and card
/// inserted / removed (SCardGetStatusChange on every reader). A removal
/// and re-insertion between two wake-ups is still reported as both: the
/// event counter pcsc-lite keeps in the high word of the reader state
/// tells how many card events happened.
pub struct PcscMonitor {
    context: Context,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PcscMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscMonitor")
    }
}

/// What the monitor knows of one reader besides its `ReaderState`.
struct Watched {
    name: String,
    present: bool,
    /// The card event counter at the last look (`None` before the first).
    count: Option<u32>,
}

impl PcscMonitor {
    /// Starts watching every reader; events go to `bus`. The readers and
    /// cards there now are the starting point: only changes are published.
    pub fn start(bus: EventBus) -> std::result::Result<PcscMonitor, ChannelError> {
        PcscMonitor::start_inner(bus, false)
    }

    /// Like [`PcscMonitor::start`], but the readers there now are first
    /// published as added (and their cards as inserted), so a subscriber
    /// sees the whole state before the changes.
    pub fn start_announcing(bus: EventBus) -> std::result::Result<PcscMonitor, ChannelError> {
        PcscMonitor::start_inner(bus, true)
    }

    fn start_inner(
        bus: EventBus,
        announce: bool,
    ) -> std::result::Result<PcscMonitor, ChannelError> {
        let context = Context::establish(Scope::User).map_err(channel_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut watch = MonitorLoop {
            context: context.clone(),
            bus,
            states: vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)],
            readers: Vec::new(),
        };
        // The first look happens here, so that a change made after
        // `start` returns is a change and not the starting point.
        watch.rescan(announce)?;
        watch.poll(Duration::ZERO, announce)?;
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferroccid-pcsc-events".into())
            .spawn(move || watch.run(&flag))
            .map_err(|e| ChannelError::Other(format!("event thread: {e}")))?;
        Ok(PcscMonitor {
            context,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for PcscMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.context.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// More card movements than this between two looks at a reader are not
/// believed (see [`MonitorLoop`]): nobody swaps cards that fast.
const MAX_MOVES_PER_LOOK: u32 = 64;

/// The card movements between two looks at a reader: from `was` to `now`
/// presence with `counted` card events in between (pcsc-lite counts every
/// insertion and every removal). Movements alternate, so a slow look still
/// reports each one: out-in-out-in is two pairs, not one.
pub fn card_moves(was: bool, now: bool, counted: u32) -> Vec<EventKind> {
    // The parity of the count must match the change; if the counter and
    // the state disagree, the state wins.
    let changed = was != now;
    let mut moves = counted as usize;
    if changed && moves % 2 == 0 {
        moves += 1;
    } else if !changed && moves % 2 == 1 {
        moves -= 1;
    }
    (0..moves)
        .map(|i| {
            // The first move leaves `was`; then they alternate.
            let inserted = (i % 2 == 0) != was;
            if inserted {
                EventKind::CardInserted
            } else {
                EventKind::CardRemoved
            }
        })
        .collect()
}

struct MonitorLoop {
    context: Context,
    bus: EventBus,
    /// The PnP pseudo-reader, then one state per watched reader.
    states: Vec<ReaderState>,
    /// Parallel to `states[1..]`.
    readers: Vec<Watched>,
}

/// How long one SCardGetStatusChange waits before the stop flag is
/// looked at again (a cancel wakes it sooner).
const MONITOR_WAKE: Duration = Duration::from_secs(1);

impl MonitorLoop {
    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.poll(MONITOR_WAKE, true) {
                Ok(()) | Err(ChannelError::Timeout) | Err(ChannelError::Cancelled) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PC/SC event monitor stopped");
                    return;
                }
            }
        }
    }

    /// Compares the reader list with the watched one.
    fn rescan(&mut self, publish: bool) -> std::result::Result<(), ChannelError> {
        let listed = match self.context.list_readers_owned() {
            Ok(listed) => listed,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(channel_error(e)),
        };
        let mut i = 0;
        while i < self.readers.len() {
            if listed
                .iter()
                .any(|r| r.as_c_str() == self.states[i + 1].name())
            {
                i += 1;
                continue;
            }
            let watched = self.readers.remove(i);
            self.states.remove(i + 1);
            if publish {
                if watched.present {
                    self.bus.publish(&watched.name, EventKind::CardRemoved);
                }
                self.bus.publish(&watched.name, EventKind::ReaderRemoved);
            }
        }
        for name in listed {
            if self.states[1..].iter().any(|s| s.name() == name.as_c_str()) {
                continue;
            }
            let display = name.to_string_lossy().into_owned();
            if publish {
                self.bus.publish(&display, EventKind::ReaderAdded);
            }
            self.states.push(ReaderState::new(name, State::UNAWARE));
            self.readers.push(Watched {
                name: display,
                present: false,
                count: None,
            });
        }
        Ok(())
    }

    /// One SCardGetStatusChange round over the PnP pseudo-reader and every
    /// watched reader; with `publish`, changes go to the bus.
    fn poll(&mut self, timeout: Duration, publish: bool) -> std::result::Result<(), ChannelError> {
        match self.context.get_status_change(timeout, &mut self.states) {
            Ok(()) => {}
            // The first look (zero timeout) finds nothing new.
            Err(pcsc::Error::Timeout) if timeout.is_zero() => {}
            Err(e) => return Err(channel_error(e)),
        }
        let readers_changed = self.states[0].event_state().contains(State::CHANGED);
        self.states[0].sync_current_state();
        for (watched, state) in self.readers.iter_mut().zip(&mut self.states[1..]) {
            let now = state.event_state();
            let gone = now.intersects(State::UNKNOWN | State::IGNORE);
            let present = now.contains(State::PRESENT) && !gone;
            // Card events the reader counted since the last look (16 bits).
            // A reader that is gone reports its counter as 0: not a count
            // of anything (it would read as ~65 000 moves), so only the
            // presence change is published. A count beyond what a person
            // can do between two looks is pcscd's fault, and is bounded so
            // a hostile or confused daemon cannot flood the bus.
            let counted = if gone {
                0
            } else {
                watched.count.map_or(0, |before| {
                    (state.event_count().wrapping_sub(before) & 0xFFFF).min(MAX_MOVES_PER_LOOK)
                })
            };
            if publish && watched.count.is_some() {
                for kind in card_moves(watched.present, present, counted) {
                    self.bus.publish(&watched.name, kind);
                }
            } else if publish && present {
                // A reader added with a card in it.
                self.bus.publish(&watched.name, EventKind::CardInserted);
            }
            watched.present = present;
            watched.count = Some(state.event_count());
            state.sync_current_state();
        }
        if readers_changed {
            self.rescan(publish)?;
        }
        Ok(())
    }
}
