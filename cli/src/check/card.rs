//! Checks that need the card: time extensions around an exchange,
//! zero-length packets after frames of whole packets, and the slot-change
//! notifications of a card going out and in.
//!
//! The card is asked GET CHALLENGE (ISO/IEC 7816-4 §11.5.3), whose answer
//! length the checker picks and which changes nothing on the card. APDUs
//! go as they are at APDU level, as a T=0 TPDU (the reader handles the
//! procedure bytes) or in a T=1 I-block with an LRC; character level is
//! not driven.

use std::time::Duration;

use ferroccid::ccid::{ExchangeLevel, MessageType};

use super::commands::{card_present, finish, get_parameters, power_off, power_on};
use super::wire::{Answer, ANSWER_WAIT, COMMAND_OK};
use super::{Check, Context, Verdict};

const XFR_BLOCK: u8 = MessageType::XfrBlock as u8;
const DATA_BLOCK: u8 = MessageType::DataBlock as u8;
const GET_SLOT_STATUS: u8 = MessageType::GetSlotStatus as u8;
const SLOT_STATUS: u8 = MessageType::SlotStatus as u8;
/// RDR_to_PC_NotifySlotChange (CCID §6.3.1).
const NOTIFY_MESSAGE_TYPE: u8 = 0x50;
/// The IFSD the checker announces at TPDU level (ISO/IEC 7816-3 §11.4.2 maximum).
const IFSD: u8 = 254;

/// How APDUs reach the card.
enum Framing {
    Apdu,
    T0,
    /// `send_sequence`: N(S) of the next I-block.
    T1 {
        send_sequence: bool,
    },
}

impl Framing {
    /// Bytes the framing adds to a response APDU inside the CCID message.
    fn response_overhead(&self) -> usize {
        match self {
            Framing::T1 { .. } => 10 + 3 + 1,
            _ => 10,
        }
    }
}

/// Powers the card and finds how to talk to it.
fn prepare(cx: &mut Context<'_>) -> Result<Framing, Verdict> {
    card_present(cx)?;
    let level = cx.descriptor.exchange_level();
    if level == ExchangeLevel::Character {
        return Err(Verdict::not_applicable(
            "character level: the checker does not drive byte-by-byte exchanges",
        ));
    }
    power_on(cx, 0)?;
    if level != ExchangeLevel::Tpdu {
        return Ok(Framing::Apdu);
    }
    if !cx.descriptor.supports_t1() {
        return Ok(Framing::T0);
    }
    let (protocol, params) = get_parameters(cx, "GetParameters")?;
    if protocol == 0 {
        return Ok(Framing::T0);
    }
    if params[1] & 0x01 != 0 {
        return Err(Verdict::not_applicable(
            "the card uses a CRC; the checker frames T=1 blocks with an LRC only",
        ));
    }
    if !cx.descriptor.auto_ifsd() {
        // S(IFS request): without it the card chains answers above 32 bytes.
        let block = with_lrc(vec![0x00, 0xC1, 0x01, IFSD]);
        let frame = cx.wire.frame(XFR_BLOCK, cx.slot, [0; 3], &block);
        let answer = super::commands::expect(cx, "XfrBlock S(IFS request)", &frame, DATA_BLOCK)?;
        if answer.data().get(1) != Some(&0xE1) {
            return Err(Verdict::fail_on(
                "the card did not answer S(IFS request) with S(IFS response)",
                &answer,
            ));
        }
    }
    Ok(Framing::T1 {
        send_sequence: false,
    })
}

fn with_lrc(mut block: Vec<u8>) -> Vec<u8> {
    let lrc = block.iter().fold(0, |a, b| a ^ b);
    block.push(lrc);
    block
}

/// GET CHALLENGE for `length` bytes (1..=256).
fn get_challenge(length: usize) -> Vec<u8> {
    vec![0x00, 0x84, 0x00, 0x00, (length % 256) as u8]
}

/// Sends `apdu` in one XfrBlock; the time extensions and the answer frame.
fn exchange(
    cx: &mut Context<'_>,
    framing: &mut Framing,
    apdu: &[u8],
) -> Result<(Vec<Answer>, Answer, Vec<u8>), Verdict> {
    let payload = match framing {
        Framing::T1 { send_sequence } => {
            let pcb = if *send_sequence { 0x40 } else { 0x00 };
            *send_sequence = !*send_sequence;
            let mut block = vec![0x00, pcb, apdu.len() as u8];
            block.extend_from_slice(apdu);
            with_lrc(block)
        }
        _ => apdu.to_vec(),
    };
    let frame = cx.wire.frame(XFR_BLOCK, cx.slot, [0; 3], &payload);
    let (extensions, answer) = cx
        .wire
        .exchange(&frame)
        .map_err(|e| Verdict::fail(format!("XfrBlock {}: {e}", crate::apdu::hex(apdu))))?;
    for frame_seen in extensions.iter().chain(Some(&answer)) {
        if let Some(why) = frame_seen.mismatch(&frame, DATA_BLOCK) {
            return Err(Verdict::fail_on(format!("XfrBlock: {why}"), frame_seen));
        }
    }
    if answer.command_status() != COMMAND_OK {
        return Err(Verdict::fail_on(
            format!("XfrBlock failed with bError {:02X}", answer.error()),
            &answer,
        ));
    }
    let response = match framing {
        Framing::T1 { .. } => {
            let block = answer.data();
            if block.len() < 4 || block[1] & 0x80 != 0 || block[1] & 0x20 != 0 {
                return Err(Verdict::not_applicable(
                    "the card did not answer with one unchained I-block",
                ));
            }
            block[3..block.len() - 1].to_vec()
        }
        _ => answer.data().to_vec(),
    };
    Ok((extensions, answer, response))
}

pub(crate) const TIME_EXTENSION: Check = Check {
    id: "time-extension",
    clause: "CCID 1.1 §6.2.6 (bmCommandStatus 2: time extension), §6.1.4 XfrBlock",
    run: |cx| finish(time_extension(cx)),
};

/// Every time-extension frame carries the command's bSlot and bSeq and the
/// answer's type, and the answer follows.
fn time_extension(cx: &mut Context<'_>) -> Result<(), Verdict> {
    let mut framing = prepare(cx)?;
    if let Some(hands) = cx.hands {
        hands.slow_down_next_answer(cx.slot, 2);
    }
    let (extensions, _, response) = exchange(cx, &mut framing, &get_challenge(8))?;
    power_off(cx)?;
    if extensions.is_empty() {
        return Err(Verdict::not_applicable(
            "the reader sent no time extension (only the simulator can be asked for one)",
        ));
    }
    if response.len() != 10 {
        return Err(Verdict::fail(format!(
            "after {} time extensions, GET CHALLENGE 8 answered {} bytes",
            extensions.len(),
            response.len()
        )));
    }
    Ok(())
}

pub(crate) const ZERO_LENGTH_PACKET: Check = Check {
    id: "zero-length-packet",
    clause:
        "CCID 1.1 §6 (a message of whole wMaxPacketSize packets ends with a zero-length packet)",
    run: |cx| finish(zero_length_packet(cx)),
};

/// A bulk-OUT message of exactly one packet is taken as one message, and
/// a bulk-IN answer of exactly one packet ends there.
fn zero_length_packet(cx: &mut Context<'_>) -> Result<(), Verdict> {
    let Some(endpoints) = cx.info.endpoints else {
        return Err(Verdict::not_applicable(
            "the endpoints' packet sizes are unknown",
        ));
    };
    let out_packet = usize::from(endpoints.bulk_out.max_packet_size);
    let in_packet = usize::from(endpoints.bulk_in.max_packet_size);
    if out_packet > cx.descriptor.max_message_length as usize {
        return Err(Verdict::not_applicable(
            "dwMaxCCIDMessageLength is below one bulk-OUT packet",
        ));
    }
    card_present(cx)?;
    // Out: to an unpowered card, so that no byte reaches it.
    power_off(cx)?;
    let frame = cx
        .wire
        .frame(XFR_BLOCK, cx.slot, [0; 3], &vec![0; out_packet - 10]);
    let step = format!("XfrBlock of {out_packet} bytes (one bulk-OUT packet)");
    let answer = cx
        .wire
        .transact(&frame)
        .map_err(|e| Verdict::fail(format!("{step}: {e}")))?;
    if let Some(why) = answer.mismatch(&frame, DATA_BLOCK) {
        return Err(Verdict::fail_on(format!("{step}: {why}"), &answer));
    }
    let status = cx.wire.frame(GET_SLOT_STATUS, cx.slot, [0; 3], &[]);
    super::commands::expect(
        cx,
        &format!("GetSlotStatus after the {step}"),
        &status,
        SLOT_STATUS,
    )?;
    // In: an answer of exactly one bulk-IN packet.
    let mut framing = prepare(cx)?;
    let wanted = in_packet
        .checked_sub(framing.response_overhead() + 2)
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| {
            Verdict::not_applicable(format!(
                "no GET CHALLENGE answer fills one {in_packet}-byte bulk-IN packet"
            ))
        })?;
    let answer = match exchange(cx, &mut framing, &get_challenge(wanted)) {
        Err(Verdict::Fail { detail, frame }) if detail.contains("no answer") => {
            return Err(Verdict::Fail {
                detail: format!(
                    "{detail}: a {in_packet}-byte answer (one whole packet) did not end the \
                     transfer; a zero-length packet must follow it"
                ),
                frame,
            })
        }
        other => other?.1,
    };
    power_off(cx)?;
    if answer.0.len() != in_packet {
        return Err(Verdict::not_applicable(format!(
            "GET CHALLENGE {wanted} came back in {} bytes, not one {in_packet}-byte packet",
            answer.0.len()
        )));
    }
    Ok(())
}

pub(crate) const NOTIFY_SLOT_CHANGE: Check = Check {
    id: "notify-slot-change",
    clause: "CCID 1.1 §6.3.1 RDR_to_PC_NotifySlotChange",
    run: |cx| finish(notify_slot_change(cx)),
};

/// Removing and inserting the card each raise a NotifySlotChange with the
/// slot's "changed" bit and its new presence.
fn notify_slot_change(cx: &mut Context<'_>) -> Result<(), Verdict> {
    let Some(hands) = cx.hands else {
        return Err(Verdict::not_applicable(
            "moving the card needs a hand (the simulator has one)",
        ));
    };
    if cx.info.endpoints.is_some_and(|e| e.interrupt_in.is_none()) {
        return Err(Verdict::not_applicable(
            "the reader has no interrupt-IN endpoint",
        ));
    }
    card_present(cx)?;
    let transport = cx.wire.transport();
    let mut buf = [0u8; 64];
    while transport
        .interrupt_in(&mut buf, Duration::from_millis(50))
        .is_ok()
    {}
    let slot = usize::from(cx.slot);
    for (event, present) in [("removal", false), ("insertion", true)] {
        if present {
            hands.insert_card(cx.slot);
        } else {
            hands.remove_card(cx.slot);
        }
        let n = transport.interrupt_in(&mut buf, ANSWER_WAIT).map_err(|e| {
            Verdict::fail(format!("no NotifySlotChange after the card's {event}: {e}"))
        })?;
        let message = Answer(buf[..n].to_vec());
        let bits = buf
            .get(1 + slot / 4)
            .filter(|_| n > 1 + slot / 4 && buf[0] == NOTIFY_MESSAGE_TYPE)
            .map(|b| (b >> (2 * (slot % 4))) & 0x03);
        let expected = 0x02 | u8::from(present);
        if bits != Some(expected) {
            return Err(Verdict::fail_on(
                format!(
                    "after the card's {event}: not a NotifySlotChange with slot {slot} \
                     {} and changed",
                    if present { "present" } else { "absent" }
                ),
                &message,
            ));
        }
    }
    Ok(())
}
