//! Shared helpers for the `reader_*` tests: class descriptors and CCID
//! frames written byte by byte from CCID rev 1.1 §5.1, §6.1 and §6.2
//! (independently of `ferroccid::ccid`'s encoder).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferroccid::testing::ScriptedTransport;
use ferroccid::{Reader, ReaderOptions};

/// dwFeatures exchange levels (CCID §5.1 offset 40).
pub const CHARACTER: u32 = 0x0000_0000;
pub const TPDU: u32 = 0x0001_0000;
pub const SHORT_APDU: u32 = 0x0002_0000;
pub const EXTENDED_APDU: u32 = 0x0004_0000;

/// A descriptor builder with the fields the tests vary.
#[derive(Clone, Copy)]
pub struct Desc {
    pub max_slot_index: u8,
    pub voltage_support: u8,
    pub protocols: u32,
    pub default_clock_khz: u32,
    pub max_data_rate: u32,
    pub num_data_rates: u8,
    pub max_ifsd: u32,
    pub features: u32,
    pub max_message_length: u32,
    pub max_busy_slots: u8,
}

impl Desc {
    pub fn new(level: u32) -> Desc {
        Desc {
            max_slot_index: 0,
            voltage_support: 0x07,
            protocols: 0x03,
            default_clock_khz: 4000,
            max_data_rate: 344_086,
            num_data_rates: 0,
            max_ifsd: 254,
            features: level,
            max_message_length: 271,
            max_busy_slots: 1,
        }
    }

    /// The 54 bytes of §5.1, little-endian multi-byte fields.
    pub fn bytes(&self) -> Vec<u8> {
        let mut d = vec![
            0x36,
            0x21,
            0x10,
            0x01,
            self.max_slot_index,
            self.voltage_support,
        ];
        d.extend_from_slice(&self.protocols.to_le_bytes());
        d.extend_from_slice(&self.default_clock_khz.to_le_bytes()); // dwDefaultClock
        d.extend_from_slice(&self.default_clock_khz.to_le_bytes()); // dwMaximumClock
        d.push(0); // bNumClockSupported
        d.extend_from_slice(&10_752u32.to_le_bytes()); // dwDataRate
        d.extend_from_slice(&self.max_data_rate.to_le_bytes());
        d.push(self.num_data_rates);
        d.extend_from_slice(&self.max_ifsd.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes()); // dwSynchProtocols
        d.extend_from_slice(&0u32.to_le_bytes()); // dwMechanical
        d.extend_from_slice(&self.features.to_le_bytes());
        d.extend_from_slice(&self.max_message_length.to_le_bytes());
        d.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, self.max_busy_slots]);
        assert_eq!(d.len(), 54);
        d
    }
}

/// A host→reader frame: type, dwLength, bSlot, bSeq, 3 specific bytes, data.
pub fn cmd(ty: u8, slot: u8, seq: u8, specific: [u8; 3], data: &[u8]) -> Vec<u8> {
    let mut f = vec![ty];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(&[slot, seq]);
    f.extend_from_slice(&specific);
    f.extend_from_slice(data);
    f
}

/// A reader→host frame: type, dwLength, bSlot, bSeq, bStatus, bError, byte 9, data.
pub fn rsp(ty: u8, slot: u8, seq: u8, status: u8, error: u8, b9: u8, data: &[u8]) -> Vec<u8> {
    cmd(ty, slot, seq, [status, error, b9], data)
}

/// PC_to_RDR_XfrBlock (0x6F) with bBWI and wLevelParameter.
pub fn xfr(slot: u8, seq: u8, bwi: u8, level: u16, data: &[u8]) -> Vec<u8> {
    let l = level.to_le_bytes();
    cmd(0x6F, slot, seq, [bwi, l[0], l[1]], data)
}

/// RDR_to_PC_DataBlock (0x80), card present and active, bChainParameter.
pub fn data_block(slot: u8, seq: u8, chain: u8, data: &[u8]) -> Vec<u8> {
    rsp(0x80, slot, seq, 0x00, 0x00, chain, data)
}

/// RDR_to_PC_SlotStatus (0x81).
pub fn slot_status(slot: u8, seq: u8, status: u8, error: u8) -> Vec<u8> {
    rsp(0x81, slot, seq, status, error, 0, &[])
}

/// PC_to_RDR_IccPowerOn (0x62) with bPowerSelect.
pub fn power_on(slot: u8, seq: u8, select: u8) -> Vec<u8> {
    cmd(0x62, slot, seq, [select, 0, 0], &[])
}

/// PC_to_RDR_SetParameters (0x61) with bProtocolNum.
pub fn set_parameters(slot: u8, seq: u8, protocol: u8, data: &[u8]) -> Vec<u8> {
    cmd(0x61, slot, seq, [protocol, 0, 0], data)
}

/// RDR_to_PC_Parameters (0x82) echoing `data`.
pub fn parameters(slot: u8, seq: u8, protocol: u8, data: &[u8]) -> Vec<u8> {
    rsp(0x82, slot, seq, 0, 0, protocol, data)
}

/// T=1 block with LRC (ISO/IEC 7816-3 §11.3): NAD PCB LEN INF LRC.
pub fn t1_block(pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    let lrc = b.iter().fold(0, |x, y| x ^ y);
    b.push(lrc);
    b
}

/// T=1-only ATR: TS 3B, T0 80 (TD1), TD1 01 (T=1), TCK 81.
pub const ATR_T1: [u8; 4] = [0x3B, 0x80, 0x01, 0x81];
/// T=0-only ATR without interface or historical bytes.
pub const ATR_T0: [u8; 2] = [0x3B, 0x00];

/// SetParameters T=1 payload for ATR_T1 on a 4 MHz reader: Fi/Di 11,
/// bmTCCKST1 10 (LRC, direct), guard 0, BWI 4 / CWI 13 (defaults), clock
/// stop 0, IFSC 32, NAD 0.
pub const T1_PARAMS: [u8; 7] = [0x11, 0x10, 0x00, 0x4D, 0x00, 0x20, 0x00];
/// SetParameters T=0 payload for ATR_T0: Fi/Di 11, direct, guard 0, WI 10, no clock stop.
pub const T0_PARAMS: [u8; 5] = [0x11, 0x00, 0x00, 0x0A, 0x00];

/// Options with short waits so that failing tests fail fast.
pub fn fast_options() -> ReaderOptions {
    ReaderOptions {
        margin: Duration::from_millis(300),
        busy_delay: Duration::from_millis(1),
        ..ReaderOptions::default()
    }
}

/// Opens a reader over `t` with [`fast_options`].
pub fn open(t: &Arc<ScriptedTransport>) -> Reader {
    Reader::open_with(t.clone(), fast_options()).expect("reader opens")
}

/// Script: power on at 5 V (seq `seq`) answered with `atr`.
pub fn script_power_on(t: ScriptedTransport, seq: u8, atr: &[u8]) -> ScriptedTransport {
    t.expect_out(&power_on(0, seq, 1))
        .reply(&data_block(0, seq, 0, atr))
}

/// Script: T=1 set-up on a TPDU reader without auto IFSD: SetParameters
/// (seq), then S(IFS request 254) (seq+1) answered S(IFS response 254).
pub fn script_t1_setup(t: ScriptedTransport, seq: u8) -> ScriptedTransport {
    t.expect_out(&set_parameters(0, seq, 1, &T1_PARAMS))
        .reply(&parameters(0, seq, 1, &T1_PARAMS))
        .expect_out(&xfr(0, seq + 1, 0, 0, &t1_block(0xC1, &[0xFE])))
        .reply(&data_block(0, seq + 1, 0, &t1_block(0xE1, &[0xFE])))
}
