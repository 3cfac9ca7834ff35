//! Reader quirks as data: one row per known firmware fault, keyed by
//! VID:PID and a bcdDevice range, each with the reason it exists.
//!
//! The rows come from libccid, where they are `switch (readerID)` cases
//! spread over `ccid.c` (`ccid_open_hack_pre`), `commands.c` and
//! `ifdhandler.c`; the reason column says which function or comment each
//! one comes from. Here they are applied in one place, at
//! [`Reader::open`](super::Reader::open) (descriptor fixes) or looked up by
//! the slot logic (behaviour fixes).

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::ccid::descriptor::features;
use crate::ccid::ClassDescriptor;

/// What a quirk changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fix {
    /// Replace `dwMaxIFSD` with this value.
    MaxIfsd(u32),
    /// The reader announces an APDU exchange level but works at TPDU level.
    ForceTpduLevel,
    /// Replace `dwMaxDataRate` with this value (bit/s).
    MaxDataRate(u32),
    /// `dwMaxCCIDMessageLength` is announced as `announced` but the reader
    /// handles `actual`.
    MaxMessageLength {
        /// The wrong value the firmware reports.
        announced: u32,
        /// The value to use instead.
        actual: u32,
    },
    /// The reader may send zero-length bulk-IN packets, to be skipped.
    ZeroLengthPackets,
    /// The interrupt endpoint cannot be trusted: poll with GetSlotStatus.
    PollInsteadOfInterrupt,
    /// Add this much to every host-side timeout.
    ExtraTimeout(Duration),
    /// Power the card off before every power on (warm reset included).
    PowerOffBeforePowerOn,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub(crate) struct Quirk {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice values the fault is known for.
    pub bcd_device: RangeInclusive<u16>,
    /// Reader name, for the log.
    pub name: &'static str,
    /// The fix.
    pub fix: Fix,
    /// Why: what the firmware does wrong and where libccid documents it.
    pub reason: &'static str,
}

const ANY: RangeInclusive<u16> = 0x0000..=0xFFFF;

/// The table. Order does not matter: every matching row applies.
pub(crate) static QUIRKS: &[Quirk] = &[
    Quirk {
        vendor_id: 0x09BE,
        product_id: 0x0002,
        bcd_device: ANY,
        name: "MySmartPad",
        fix: Fix::MaxIfsd(254),
        reason: "announces a wrong dwMaxIFSD; libccid ccid_open_hack_pre forces 254",
    },
    Quirk {
        vendor_id: 0x0B81,
        product_id: 0x0200,
        bcd_device: ANY,
        name: "CL1356D",
        fix: Fix::ExtraTimeout(Duration::from_secs(60)),
        reason: "firmware needs time to initialise and answers slowly; libccid ccid_open_hack_pre sleeps and uses a 60 s read timeout",
    },
    Quirk {
        vendor_id: 0x08E6,
        product_id: 0x3437,
        bcd_device: 0x0200..=0x0200,
        name: "GemPC Twin",
        fix: Fix::ZeroLengthPackets,
        reason: "firmware 2.00 may send zero-length packets on USB 3 ports; libccid ccid_open_hack_pre 'ZLP fixup'",
    },
    Quirk {
        vendor_id: 0x08E6,
        product_id: 0x3438,
        bcd_device: 0x0200..=0x0200,
        name: "GemPC Key",
        fix: Fix::ZeroLengthPackets,
        reason: "firmware 2.00 may send zero-length packets on USB 3 ports; libccid ccid_open_hack_pre 'ZLP fixup'",
    },
    Quirk {
        vendor_id: 0x413C,
        product_id: 0x2101,
        bcd_device: 0x0200..=0x0200,
        name: "Dell smart card reader keyboard",
        fix: Fix::ZeroLengthPackets,
        reason: "same chipset as the GemPC Twin, firmware 2.00; libccid ccid_open_hack_pre 'ZLP fixup'",
    },
    Quirk {
        vendor_id: 0x0B97,
        product_id: 0x7762,
        bcd_device: ANY,
        name: "O2Micro OZ776",
        fix: Fix::MaxDataRate(9600),
        reason: "announces data rates it cannot do; libccid ccid_open_hack_pre sets dwMaxDataRate 9600",
    },
    Quirk {
        vendor_id: 0x0B97,
        product_id: 0x7772,
        bcd_device: ANY,
        name: "O2Micro OZ776 (7772)",
        fix: Fix::MaxDataRate(9600),
        reason: "announces data rates it cannot do; libccid ccid_open_hack_pre sets dwMaxDataRate 9600",
    },
    Quirk {
        vendor_id: 0x076B,
        product_id: 0x3022,
        bcd_device: ANY,
        name: "OMNIKEY CardMan 3121 (3022)",
        fix: Fix::ForceTpduLevel,
        reason: "announces an APDU exchange level but is in fact TPDU; libccid ccid_open_hack_pre (CARDMAN3121+1)",
    },
    Quirk {
        vendor_id: 0x0D46,
        product_id: 0x3010,
        bcd_device: ANY,
        name: "KOBIL TriBank",
        fix: Fix::PollInsteadOfInterrupt,
        reason: "the interrupt read never times out; libccid ccid_open_hack_pre disables the interrupt read",
    },
    Quirk {
        vendor_id: 0x04E6,
        product_id: 0x5111,
        bcd_device: ANY,
        name: "SCM SCR331-DI",
        fix: Fix::MaxMessageLength { announced: 263, actual: 270 },
        reason: "SCM firmware reports dwMaxCCIDMessageLength 263 instead of 270, which forbids a full 260-byte APDU; libccid commands.c BOGUS_SCM_FIRMWARE_FOR_dwMaxCCIDMessageLength",
    },
    Quirk {
        vendor_id: 0x04E6,
        product_id: 0x5120,
        bcd_device: ANY,
        name: "SCM SCR331-DI NTTCom",
        fix: Fix::MaxMessageLength { announced: 263, actual: 270 },
        reason: "SCM firmware reports dwMaxCCIDMessageLength 263 instead of 270; libccid commands.c BOGUS_SCM_FIRMWARE_FOR_dwMaxCCIDMessageLength",
    },
    Quirk {
        vendor_id: 0x04E6,
        product_id: 0x5121,
        bcd_device: ANY,
        name: "SCM SDI010",
        fix: Fix::MaxMessageLength { announced: 263, actual: 270 },
        reason: "SCM firmware reports dwMaxCCIDMessageLength 263 instead of 270; libccid commands.c BOGUS_SCM_FIRMWARE_FOR_dwMaxCCIDMessageLength",
    },
    Quirk {
        vendor_id: 0x0D46,
        product_id: 0x301D,
        bcd_device: ANY,
        name: "KOBIL IDToken",
        fix: Fix::PowerOffBeforePowerOn,
        reason: "the German eID card in this token must be powered off before a power on; libccid ifdhandler.c IFDHPowerICC",
    },
];

/// The rows that apply to a device.
pub(crate) fn lookup(
    vendor_id: u16,
    product_id: u16,
    bcd_device: u16,
) -> impl Iterator<Item = &'static Quirk> {
    QUIRKS.iter().filter(move |q| {
        q.vendor_id == vendor_id && q.product_id == product_id && q.bcd_device.contains(&bcd_device)
    })
}

/// The behaviour fixes in effect for one reader (descriptor fixes are
/// applied to the descriptor itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Active {
    /// Skip zero-length bulk-IN transfers.
    pub zero_length_packets: bool,
    /// Poll instead of reading the interrupt endpoint.
    pub poll_instead_of_interrupt: bool,
    /// Added to every host-side timeout.
    pub extra_timeout: Duration,
    /// Power off before power on.
    pub power_off_before_power_on: bool,
    /// Names and reasons of the rows applied, for the log.
    pub applied: Vec<(&'static str, &'static str)>,
}

/// Applies every matching row: descriptor fixes to `descriptor`, the rest
/// into the returned [`Active`].
pub(crate) fn apply(
    vendor_id: u16,
    product_id: u16,
    bcd_device: u16,
    descriptor: &mut ClassDescriptor,
) -> Active {
    let mut active = Active::default();
    for q in lookup(vendor_id, product_id, bcd_device) {
        match q.fix {
            Fix::MaxIfsd(v) => descriptor.max_ifsd = v,
            Fix::ForceTpduLevel => {
                descriptor.features =
                    (descriptor.features & !features::EXCHANGE_LEVEL_MASK) | features::TPDU;
            }
            Fix::MaxDataRate(v) => descriptor.max_data_rate = v,
            Fix::MaxMessageLength { announced, actual } => {
                if descriptor.max_message_length == announced {
                    descriptor.max_message_length = actual;
                }
            }
            Fix::ZeroLengthPackets => active.zero_length_packets = true,
            Fix::PollInsteadOfInterrupt => active.poll_instead_of_interrupt = true,
            Fix::ExtraTimeout(d) => active.extra_timeout += d,
            Fix::PowerOffBeforePowerOn => active.power_off_before_power_on = true,
        }
        tracing::info!(reader = q.name, reason = q.reason, "reader quirk applied");
        active.applied.push((q.name, q.reason));
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_reason_and_a_real_range() {
        for q in QUIRKS {
            assert!(q.reason.contains("libccid"), "{} cites no source", q.name);
            assert!(q.bcd_device.start() <= q.bcd_device.end());
        }
    }

    #[test]
    fn bcd_device_range_limits_a_row() {
        assert_eq!(lookup(0x08E6, 0x3437, 0x0200).count(), 1);
        assert_eq!(lookup(0x08E6, 0x3437, 0x0201).count(), 0);
        assert_eq!(lookup(0x1234, 0x5678, 0x0100).count(), 0);
    }
}
