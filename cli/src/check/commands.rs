//! Bulk commands that need no card exchange: sequencing, error codes,
//! parameters, Abort, Escape and the message length limit.

use ferroccid::ccid::{MessageType, SlotError};
use ferroccid::REQUEST_ABORT;

use super::wire::{frame_with_seq, Answer, ANSWER_WAIT, COMMAND_FAILED, COMMAND_OK};
use super::{Check, Context, Verdict};

const POWER_ON: u8 = MessageType::IccPowerOn as u8;
const POWER_OFF: u8 = MessageType::IccPowerOff as u8;
const GET_SLOT_STATUS: u8 = MessageType::GetSlotStatus as u8;
const XFR_BLOCK: u8 = MessageType::XfrBlock as u8;
const DATA_BLOCK: u8 = MessageType::DataBlock as u8;
const SLOT_STATUS: u8 = MessageType::SlotStatus as u8;
const PARAMETERS_ANSWER: u8 = MessageType::Parameters as u8;
/// No command has this `bMessageType` (CCID §6.1 leaves 0x64 unassigned).
const UNASSIGNED_COMMAND: u8 = 0x64;
/// `bError` of a bad `bSlot` / `bPowerSelect` / `dwLength` (the offset of the field).
const ERROR_BAD_SLOT: u8 = 5;
const ERROR_BAD_POWER_SELECT: u8 = 7;
const ERROR_BAD_LENGTH: u8 = 1;
/// bmICCStatus values.
const ICC_ACTIVE: u8 = 0;
const ICC_INACTIVE: u8 = 1;
const ICC_ABSENT: u8 = 2;

/// Sends a command and checks its answer's type, bSlot, bSeq, dwLength
/// and bmCommandStatus; the answer, or the verdict that ends the check.
pub(crate) fn expect(
    cx: &mut Context<'_>,
    step: &str,
    frame: &[u8],
    answer_type: u8,
) -> Result<Answer, Verdict> {
    let answer = cx
        .wire
        .transact(frame)
        .map_err(|e| Verdict::fail(format!("{step}: {e}")))?;
    if let Some(why) = answer.mismatch(frame, answer_type) {
        return Err(Verdict::fail_on(format!("{step}: {why}"), &answer));
    }
    if answer.command_status() != COMMAND_OK {
        return Err(Verdict::fail_on(
            format!("{step}: failed with bError {:02X}", answer.error()),
            &answer,
        ));
    }
    Ok(answer)
}

/// A failure the reader must report: `bmCommandStatus` 1 and `bError` `error`.
fn expect_failure(
    cx: &mut Context<'_>,
    step: &str,
    frame: &[u8],
    answer_type: Option<u8>,
    error: u8,
) -> Verdict {
    let answer = match cx.wire.transact(frame) {
        Ok(a) => a,
        Err(e) => return Verdict::fail(format!("{step}: {e}")),
    };
    if let Some(why) = answer.mismatch(frame, answer_type.unwrap_or(answer.message_type())) {
        return Verdict::fail_on(format!("{step}: {why}"), &answer);
    }
    if answer.command_status() != COMMAND_FAILED || answer.error() != error {
        return Verdict::fail_on(
            format!(
                "{step}: bmCommandStatus {} bError {:02X}, expected 1 (failed) and {error:02X}",
                answer.command_status(),
                answer.error()
            ),
            &answer,
        );
    }
    Verdict::Pass
}

/// The verdict of a check written as steps that stop at the first problem.
pub(crate) fn finish(steps: Result<(), Verdict>) -> Verdict {
    steps.err().unwrap_or(Verdict::Pass)
}

/// The card's slot state, or n/a when no card is there to work with.
pub(crate) fn card_present(cx: &mut Context<'_>) -> Result<(), Verdict> {
    let frame = cx.wire.frame(GET_SLOT_STATUS, cx.slot, [0; 3], &[]);
    let answer = expect(cx, "GetSlotStatus", &frame, SLOT_STATUS)?;
    if answer.icc_status() == ICC_ABSENT {
        return Err(Verdict::not_applicable(format!(
            "no card in slot {}",
            cx.slot
        )));
    }
    Ok(())
}

/// IccPowerOn with `power_select`; the ATR.
pub(crate) fn power_on(cx: &mut Context<'_>, power_select: u8) -> Result<Answer, Verdict> {
    let frame = cx.wire.frame(POWER_ON, cx.slot, [power_select, 0, 0], &[]);
    let answer = expect(cx, "IccPowerOn", &frame, DATA_BLOCK)?;
    if !matches!(answer.data().first(), Some(0x3B | 0x3F)) {
        return Err(Verdict::fail_on(
            "IccPowerOn: the answer is no ATR (TS is neither 3B nor 3F, ISO/IEC 7816-3 §8.1)",
            &answer,
        ));
    }
    Ok(answer)
}

pub(crate) fn power_off(cx: &mut Context<'_>) -> Result<Answer, Verdict> {
    let frame = cx.wire.frame(POWER_OFF, cx.slot, [0; 3], &[]);
    expect(cx, "IccPowerOff", &frame, SLOT_STATUS)
}

pub(crate) const SEQ_ECHO: Check = Check {
    id: "seq-echo",
    clause: "CCID 1.1 §6.2 bSeq (the answer repeats the command's)",
    run: seq_echo,
};

/// GetSlotStatus with bSeq values across the whole byte.
fn seq_echo(cx: &mut Context<'_>) -> Verdict {
    for seq in [0x00, 0x01, 0x7F, 0x80, 0xA5, 0xFF] {
        let frame = frame_with_seq(GET_SLOT_STATUS, cx.slot, seq, [0; 3], &[]);
        let answer = match cx.wire.transact(&frame) {
            Ok(a) => a,
            Err(e) => return Verdict::fail(format!("GetSlotStatus bSeq {seq:02X}: {e}")),
        };
        if answer.seq() != seq {
            return Verdict::fail_on(
                format!(
                    "GetSlotStatus bSeq {seq:02X} answered with bSeq {:02X}",
                    answer.seq()
                ),
                &answer,
            );
        }
    }
    Verdict::Pass
}

pub(crate) const BAD_SLOT_INDEX: Check = Check {
    id: "bad-slot",
    clause: "CCID 1.1 §6.2.6 (bError 5: bSlot does not exist)",
    run: |cx| {
        let slot = cx.descriptor.max_slot_index.wrapping_add(1);
        let frame = cx.wire.frame(GET_SLOT_STATUS, slot, [0; 3], &[]);
        let step = format!("GetSlotStatus to slot {slot}");
        expect_failure(cx, &step, &frame, Some(SLOT_STATUS), ERROR_BAD_SLOT)
    },
};

pub(crate) const UNKNOWN_COMMAND: Check = Check {
    id: "unknown-command",
    clause: "CCID 1.1 §6.2.6 (CMD_NOT_SUPPORTED)",
    run: |cx| {
        let frame = cx.wire.frame(UNASSIGNED_COMMAND, cx.slot, [0; 3], &[]);
        let error = SlotError::CommandNotSupported.to_byte();
        expect_failure(cx, "bMessageType 64", &frame, None, error)
    },
};

pub(crate) const POWER_SEQUENCE: Check = Check {
    id: "power-sequence",
    clause:
        "CCID 1.1 §6.1.1 IccPowerOn, §6.1.2 IccPowerOff, §6.1.3 GetSlotStatus, §6.2.6 bmICCStatus",
    run: power_sequence,
};

/// Off, status, on, status, off, status: each answer's bmICCStatus agrees.
fn power_sequence(cx: &mut Context<'_>) -> Verdict {
    finish(power_sequence_steps(cx))
}

fn power_sequence_steps(cx: &mut Context<'_>) -> Result<(), Verdict> {
    card_present(cx)?;
    icc_is(power_off(cx)?, "IccPowerOff", ICC_INACTIVE)?;
    icc_is(
        slot_status(cx)?,
        "GetSlotStatus after IccPowerOff",
        ICC_INACTIVE,
    )?;
    icc_is(power_on(cx, 0)?, "IccPowerOn", ICC_ACTIVE)?;
    icc_is(
        slot_status(cx)?,
        "GetSlotStatus after IccPowerOn",
        ICC_ACTIVE,
    )?;
    icc_is(power_off(cx)?, "IccPowerOff", ICC_INACTIVE)?;
    icc_is(
        slot_status(cx)?,
        "GetSlotStatus after IccPowerOff",
        ICC_INACTIVE,
    )
}

fn slot_status(cx: &mut Context<'_>) -> Result<Answer, Verdict> {
    let frame = cx.wire.frame(GET_SLOT_STATUS, cx.slot, [0; 3], &[]);
    expect(cx, "GetSlotStatus", &frame, SLOT_STATUS)
}

fn icc_is(answer: Answer, step: &str, expected: u8) -> Result<(), Verdict> {
    if answer.icc_status() == expected {
        return Ok(());
    }
    Err(Verdict::fail_on(
        format!(
            "{step}: bmICCStatus {}, expected {expected}",
            answer.icc_status()
        ),
        &answer,
    ))
}

pub(crate) const VOLTAGE_SELECTION: Check = Check {
    id: "voltage-selection",
    clause: "CCID 1.1 §6.1.1 bPowerSelect, §5.1 bVoltageSupport",
    run: voltage_selection,
};

/// Each announced class powers the card (or the card refuses it, bError
/// ICC_MUTE / ICC_CLASS_NOT_SUPPORTED); each class not announced is
/// refused with bError 7.
fn voltage_selection(cx: &mut Context<'_>) -> Verdict {
    finish(voltage_selection_steps(cx))
}

fn voltage_selection_steps(cx: &mut Context<'_>) -> Result<(), Verdict> {
    card_present(cx)?;
    let card_refusals = [
        SlotError::IccMute.to_byte(),
        SlotError::IccClassNotSupported.to_byte(),
    ];
    for (select, bit, volts) in [(1u8, 0x01u8, "5 V"), (2, 0x02, "3 V"), (3, 0x04, "1.8 V")] {
        let frame = cx.wire.frame(POWER_ON, cx.slot, [select, 0, 0], &[]);
        let step = format!("IccPowerOn at {volts} (bPowerSelect {select})");
        if cx.descriptor.voltage_support & bit == 0 {
            match expect_failure(cx, &step, &frame, Some(DATA_BLOCK), ERROR_BAD_POWER_SELECT) {
                Verdict::Pass => continue,
                verdict => return Err(verdict),
            }
        }
        let answer = cx
            .wire
            .transact(&frame)
            .map_err(|e| Verdict::fail(format!("{step}: {e}")))?;
        if let Some(why) = answer.mismatch(&frame, DATA_BLOCK) {
            return Err(Verdict::fail_on(format!("{step}: {why}"), &answer));
        }
        let refused_by_card =
            answer.command_status() == COMMAND_FAILED && card_refusals.contains(&answer.error());
        if answer.command_status() != COMMAND_OK && !refused_by_card {
            return Err(Verdict::fail_on(
                format!(
                    "{step}: bVoltageSupport {:02X} offers it, yet bError {:02X}",
                    cx.descriptor.voltage_support,
                    answer.error()
                ),
                &answer,
            ));
        }
        power_off(cx)?;
    }
    Ok(())
}

pub(crate) const PARAMETERS: Check = Check {
    id: "parameters",
    clause: "CCID 1.1 §6.1.5 GetParameters, §6.1.6 ResetParameters, §6.1.7 SetParameters, §6.2.3",
    run: parameters,
};

/// Get, Set (bGuardTime changed), Get gives what was set, Reset, Get gives
/// what Reset answered.
fn parameters(cx: &mut Context<'_>) -> Verdict {
    finish(parameters_steps(cx))
}

fn parameters_steps(cx: &mut Context<'_>) -> Result<(), Verdict> {
    card_present(cx)?;
    power_on(cx, 0)?;
    let initial = get_parameters(cx, "GetParameters")?;
    let (protocol, mut wanted) = initial;
    // bGuardTimeT0 / bGuardTimeT1: the third byte in both structures.
    wanted[2] = if wanted[2] == 2 { 3 } else { 2 };
    let set = cx.wire.frame(
        MessageType::SetParameters as u8,
        cx.slot,
        [protocol, 0, 0],
        &wanted,
    );
    let answer = expect(cx, "SetParameters", &set, PARAMETERS_ANSWER)?;
    if answer.data() != wanted.as_slice() {
        return Err(Verdict::fail_on(
            "SetParameters answered other parameters than it was given",
            &answer,
        ));
    }
    let (_, now) = get_parameters(cx, "GetParameters after SetParameters")?;
    if now != wanted {
        return Err(Verdict::fail(format!(
            "GetParameters after SetParameters {}: {}",
            crate::apdu::hex(&wanted),
            crate::apdu::hex(&now)
        )));
    }
    let reset = cx
        .wire
        .frame(MessageType::ResetParameters as u8, cx.slot, [0; 3], &[]);
    let reset = expect(cx, "ResetParameters", &reset, PARAMETERS_ANSWER)?;
    let (_, after) = get_parameters(cx, "GetParameters after ResetParameters")?;
    if after != reset.data() {
        return Err(Verdict::fail_on(
            format!(
                "GetParameters after ResetParameters gives {}, not what ResetParameters answered",
                crate::apdu::hex(&after)
            ),
            &reset,
        ));
    }
    power_off(cx)?;
    Ok(())
}

/// bProtocolNum and abProtocolDataStructure, checked for size (5 bytes
/// for T=0, 7 for T=1).
pub(crate) fn get_parameters(cx: &mut Context<'_>, step: &str) -> Result<(u8, Vec<u8>), Verdict> {
    let frame = cx
        .wire
        .frame(MessageType::GetParameters as u8, cx.slot, [0; 3], &[]);
    let answer = expect(cx, step, &frame, PARAMETERS_ANSWER)?;
    let protocol = answer.0[9];
    let size_ok = matches!((protocol, answer.data().len()), (0, 5) | (1, 7));
    if !size_ok {
        return Err(Verdict::fail_on(
            format!(
                "{step}: bProtocolNum {protocol} with {} bytes of parameters",
                answer.data().len()
            ),
            &answer,
        ));
    }
    Ok((protocol, answer.data().to_vec()))
}

pub(crate) const ESCAPE: Check = Check {
    id: "escape",
    clause: "CCID 1.1 §6.1.8 PC_to_RDR_Escape, §6.2.4 RDR_to_PC_Escape",
    run: |cx| {
        // Empty: no vendor command is asked for, only the framing is tested.
        let frame = cx
            .wire
            .frame(MessageType::Escape as u8, cx.slot, [0; 3], &[]);
        let answer = match cx.wire.transact(&frame) {
            Ok(a) => a,
            Err(e) => return Verdict::fail(format!("PC_to_RDR_Escape: {e}")),
        };
        match answer.mismatch(&frame, MessageType::EscapeResponse as u8) {
            Some(why) => Verdict::fail_on(format!("PC_to_RDR_Escape: {why}"), &answer),
            None => Verdict::Pass,
        }
    },
};

pub(crate) const ABORT: Check = Check {
    id: "abort",
    clause: "CCID 1.1 §5.3.1 ABORT, §6.1.13 PC_to_RDR_Abort",
    run: abort,
};

/// The ABORT class request, then PC_to_RDR_Abort with the same bSlot and
/// bSeq, answered by a successful SlotStatus.
fn abort(cx: &mut Context<'_>) -> Verdict {
    let frame = cx
        .wire
        .frame(MessageType::Abort as u8, cx.slot, [0; 3], &[]);
    let value = u16::from(frame[6]) << 8 | u16::from(cx.slot);
    if let Err(e) = cx
        .wire
        .transport()
        .control_out(REQUEST_ABORT, value, &[], ANSWER_WAIT)
    {
        return Verdict::fail(format!("the ABORT class request (wValue {value:04X}): {e}"));
    }
    match expect(cx, "PC_to_RDR_Abort", &frame, SLOT_STATUS) {
        Ok(_) => Verdict::Pass,
        Err(verdict) => verdict,
    }
}

pub(crate) const MESSAGE_LENGTH_HONOURED: Check = Check {
    id: "message-length-honoured",
    clause: "CCID 1.1 §5.1 dwMaxCCIDMessageLength, §6.2.6 (bError 1: dwLength)",
    run: message_length_honoured,
};

/// A message of exactly dwMaxCCIDMessageLength is taken, one byte more is
/// refused with bError 1, and nothing the reader sent this session was
/// longer. The messages are XfrBlocks to an unpowered card, so that no
/// byte reaches a card.
fn message_length_honoured(cx: &mut Context<'_>) -> Verdict {
    finish(message_length_honoured_steps(cx))
}

fn message_length_honoured_steps(cx: &mut Context<'_>) -> Result<(), Verdict> {
    let max = cx.descriptor.max_message_length as usize;
    if max < 10 {
        return Err(Verdict::fail(format!(
            "dwMaxCCIDMessageLength {max} is below a header"
        )));
    }
    power_off(cx)?;
    let fits = cx
        .wire
        .frame(XFR_BLOCK, cx.slot, [0; 3], &vec![0; max - 10]);
    let answer = cx
        .wire
        .transact(&fits)
        .map_err(|e| Verdict::fail(format!("XfrBlock of {max} bytes: {e}")))?;
    if let Some(why) = answer.mismatch(&fits, DATA_BLOCK) {
        return Err(Verdict::fail_on(
            format!("XfrBlock of {max} bytes: {why}"),
            &answer,
        ));
    }
    if answer.command_status() == COMMAND_FAILED && answer.error() == ERROR_BAD_LENGTH {
        return Err(Verdict::fail_on(
            format!("XfrBlock of exactly dwMaxCCIDMessageLength ({max}) bytes refused as too long"),
            &answer,
        ));
    }
    let over = cx.wire.frame(XFR_BLOCK, cx.slot, [0; 3], &vec![0; max - 9]);
    let step = format!("XfrBlock of {} bytes", max + 1);
    match expect_failure(cx, &step, &over, Some(DATA_BLOCK), ERROR_BAD_LENGTH) {
        Verdict::Pass => {}
        verdict => return Err(verdict),
    }
    if let Some(longest) = cx.wire.longest.as_ref().filter(|l| l.0.len() > max) {
        return Err(Verdict::fail_on(
            format!(
                "the reader sent a {}-byte message, more than dwMaxCCIDMessageLength {max}",
                longest.0.len()
            ),
            longest,
        ));
    }
    Ok(())
}
