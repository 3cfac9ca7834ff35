//! Standing breaches of CCID a conformance checker must catch.
//!
//! Unlike the one-shot faults of [`super::fault`], a violation lasts for
//! the reader's whole life, as a firmware bug does. Each one breaks exactly
//! one rule, named like the `ferroccid check` check that tests it, so that
//! a test can demand that this check fails and every other one still
//! passes. A device name selects one with `sim:PROFILE?violate=ID`.

use crate::profile::Profile;

/// One breach of CCID Rev 1.1 (or ISO/IEC 7816-3), named by the check that catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// dwFeatures announces two exchange levels (TPDU and short APDU).
    Features,
    /// dwMaxCCIDMessageLength (256) cannot carry a T=1 block of dwMaxIFSD (254) bytes.
    MessageLength,
    /// GET_CLOCK_FREQUENCIES lists a clock above dwMaximumClock.
    ClockTable,
    /// GET_DATA_RATES lists a rate above dwMaxDataRate.
    DataRateTable,
    /// The SlotStatus answering IccPowerOff still says the card is active.
    PowerSequence,
    /// IccPowerOn at 5 V fails with bError 7 although bVoltageSupport offers 5 V.
    VoltageSelection,
    /// bSeq values of 0x80 and above come back with their top bit cleared.
    SeqEcho,
    /// A command to a slot beyond bMaxSlotIndex fails with CMD_NOT_SUPPORTED, not bError 5.
    BadSlot,
    /// An unknown bMessageType is answered as a success.
    UnknownCommand,
    /// GetParameters always reports bGuardTime 0, whatever SetParameters set.
    Parameters,
    /// PC_to_RDR_Abort is never answered.
    Abort,
    /// PC_to_RDR_Escape is answered with RDR_to_PC_SlotStatus.
    Escape,
    /// Removing a card raises no NotifySlotChange.
    NotifySlotChange,
    /// Time-extension frames carry the next bSeq instead of the command's.
    TimeExtension,
    /// A bulk-IN frame of a multiple of wMaxPacketSize ends without a zero-length packet.
    ZeroLengthPacket,
    /// A message of exactly dwMaxCCIDMessageLength is refused with bError 1.
    MessageLengthHonoured,
}

impl Violation {
    /// Every violation, in the order of the checks that catch them.
    pub const ALL: [Violation; 16] = [
        Violation::Features,
        Violation::MessageLength,
        Violation::ClockTable,
        Violation::DataRateTable,
        Violation::PowerSequence,
        Violation::VoltageSelection,
        Violation::SeqEcho,
        Violation::BadSlot,
        Violation::UnknownCommand,
        Violation::Parameters,
        Violation::Abort,
        Violation::Escape,
        Violation::NotifySlotChange,
        Violation::TimeExtension,
        Violation::ZeroLengthPacket,
        Violation::MessageLengthHonoured,
    ];

    /// The id of the check that catches it (and of `violate=ID`).
    pub fn id(self) -> &'static str {
        match self {
            Violation::Features => "features",
            Violation::MessageLength => "message-length",
            Violation::ClockTable => "clock-table",
            Violation::DataRateTable => "data-rate-table",
            Violation::PowerSequence => "power-sequence",
            Violation::VoltageSelection => "voltage-selection",
            Violation::SeqEcho => "seq-echo",
            Violation::BadSlot => "bad-slot",
            Violation::UnknownCommand => "unknown-command",
            Violation::Parameters => "parameters",
            Violation::Abort => "abort",
            Violation::Escape => "escape",
            Violation::NotifySlotChange => "notify-slot-change",
            Violation::TimeExtension => "time-extension",
            Violation::ZeroLengthPacket => "zero-length-packet",
            Violation::MessageLengthHonoured => "message-length-honoured",
        }
    }

    /// The violation whose [`id`](Violation::id) is `id`.
    pub fn from_id(id: &str) -> Option<Violation> {
        Violation::ALL.into_iter().find(|v| v.id() == id)
    }

    /// Bends what the reader announces (descriptor, clock and rate lists)
    /// for the violations that live there; the others act at run time.
    pub fn apply_to_profile(self, profile: &mut Profile) {
        let descriptor = profile.class_descriptor();
        match self {
            Violation::Features => {
                // Short APDU on top of whatever level is there.
                let features = descriptor.features | 0x0002_0000 | 0x0001_0000;
                profile.descriptor[40..44].copy_from_slice(&features.to_le_bytes());
            }
            Violation::MessageLength => {
                profile.descriptor[28..32].copy_from_slice(&254u32.to_le_bytes());
                profile.descriptor[44..48].copy_from_slice(&256u32.to_le_bytes());
            }
            Violation::ClockTable => {
                let above = descriptor
                    .maximum_clock_khz
                    .max(descriptor.default_clock_khz)
                    + 1000;
                profile.clock_frequencies_khz.push(above);
            }
            Violation::DataRateTable => {
                let above = descriptor.max_data_rate.max(descriptor.data_rate) + 1;
                profile.data_rates.push(above);
            }
            _ => {}
        }
    }

    /// Bends a frame about to be scheduled as the answer (`last`) or a
    /// time extension (not `last`) of a command of type `command` that
    /// carried `seq`.
    pub(crate) fn bend_frame(self, command: u8, seq: u8, last: bool, frame: &mut Vec<u8>) {
        match self {
            Violation::PowerSequence if last && command == 0x63 => frame[7] &= !0x03,
            Violation::SeqEcho if seq >= 0x80 => frame[6] = seq & 0x7F,
            Violation::Parameters if last && command == 0x6C && frame.len() > 12 => frame[12] = 0,
            Violation::Escape if last && command == 0x6B => {
                frame.truncate(10);
                frame[0] = 0x81;
                frame[1..5].fill(0);
            }
            Violation::TimeExtension if !last => frame[6] = seq.wrapping_add(1),
            _ => {}
        }
    }

    /// Whether bulk-IN transfers of a whole number of packets run on into
    /// the next frame, as when a reader sends no zero-length packet.
    pub fn drops_zero_length_packets(self) -> bool {
        self == Violation::ZeroLengthPacket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        for v in Violation::ALL {
            assert_eq!(Violation::from_id(v.id()), Some(v));
        }
        let mut ids: Vec<_> = Violation::ALL.iter().map(|v| v.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Violation::ALL.len());
        assert_eq!(Violation::from_id("nonsense"), None);
    }

    #[test]
    fn descriptor_violations_change_the_descriptor() {
        let clean = Profile::from_name("tpdu").unwrap();
        for v in [Violation::Features, Violation::MessageLength] {
            let mut p = clean.clone();
            v.apply_to_profile(&mut p);
            assert_ne!(p.descriptor, clean.descriptor, "{v:?}");
        }
    }
}
