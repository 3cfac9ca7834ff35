//! The class descriptor against itself, the endpoints and the clock and
//! data-rate lists the reader answers on the control pipe.

use ferroccid::ccid::descriptor::features;
use ferroccid::ccid::ExchangeLevel;
use ferroccid::{TransportError, REQUEST_GET_CLOCK_FREQUENCIES, REQUEST_GET_DATA_RATES};

use super::wire::ANSWER_WAIT;
use super::{Check, Context, Verdict};

/// Header, prologue and LRC around a T=1 block's information field (ISO/IEC 7816-3 §11.3.1).
const T1_BLOCK_OVERHEAD: u32 = 10 + 3 + 1;
/// The largest information field ISO/IEC 7816-3 §11.4.2 allows.
const MAX_IFS: u32 = 254;
/// Bounds on dwMaxCCIDMessageLength for extended APDU readers (CCID §5.1).
const EXTENDED_APDU_MESSAGE: std::ops::RangeInclusive<u32> = (261 + 10)..=(65544 + 10);

pub(crate) const FEATURES: Check = Check {
    id: "features",
    clause: "CCID 1.1 §5.1 dwFeatures",
    run: features,
};

/// One exchange level at most; automatic PPS and automatic parameter
/// negotiation exclusive; an APDU level configures the card itself.
fn features(cx: &mut Context<'_>) -> Verdict {
    let d = &cx.descriptor;
    if !d.exchange_level_is_valid() {
        return Verdict::fail(format!(
            "dwFeatures {:08X} announces more than one exchange level",
            d.features
        ));
    }
    if d.auto_pps() && d.auto_parameter_negotiation() {
        return Verdict::fail(format!(
            "dwFeatures {:08X} has both 00000040 (automatic parameter negotiation) and \
             00000080 (automatic PPS); only one may be present",
            d.features
        ));
    }
    let apdu = matches!(
        d.exchange_level(),
        ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu
    );
    if apdu && !d.has_feature(features::AUTO_PARAMETERS_FROM_ATR) {
        return Verdict::fail(format!(
            "dwFeatures {:08X}: an APDU-level reader without 00000002 (parameters from the ATR)",
            d.features
        ));
    }
    Verdict::Pass
}

pub(crate) const MESSAGE_LENGTH: Check = Check {
    id: "message-length",
    clause: "CCID 1.1 §5.1 dwMaxCCIDMessageLength; ISO/IEC 7816-3 §11.4.2",
    run: message_length,
};

/// Long enough for a bulk-OUT packet, an extended APDU when announced,
/// and a T=1 block of dwMaxIFSD bytes at TPDU level.
fn message_length(cx: &mut Context<'_>) -> Verdict {
    let d = &cx.descriptor;
    let max = d.max_message_length;
    if let Some(endpoints) = &cx.info.endpoints {
        let packet = u32::from(endpoints.bulk_out.max_packet_size);
        if max < packet {
            return Verdict::fail(format!(
                "dwMaxCCIDMessageLength {max} is below the bulk-OUT wMaxPacketSize {packet}"
            ));
        }
    }
    if d.exchange_level() == ExchangeLevel::ExtendedApdu && !EXTENDED_APDU_MESSAGE.contains(&max) {
        return Verdict::fail(format!(
            "extended APDU level but dwMaxCCIDMessageLength {max} is outside 271..=65554"
        ));
    }
    if d.exchange_level() == ExchangeLevel::Tpdu && d.supports_t1() {
        if d.max_ifsd > MAX_IFS {
            return Verdict::fail(format!("dwMaxIFSD {} is above 254", d.max_ifsd));
        }
        if max < d.max_ifsd + T1_BLOCK_OVERHEAD {
            return Verdict::fail(format!(
                "dwMaxCCIDMessageLength {max} cannot carry a T=1 block of dwMaxIFSD {} bytes \
                 (needs {})",
                d.max_ifsd,
                d.max_ifsd + T1_BLOCK_OVERHEAD
            ));
        }
    }
    Verdict::Pass
}

pub(crate) const CLOCK_TABLE: Check = Check {
    id: "clock-table",
    clause: "CCID 1.1 §5.1 bNumClockSupported, §5.3.2 GET_CLOCK_FREQUENCIES",
    run: |cx| {
        let d = &cx.descriptor;
        let range = (
            d.default_clock_khz,
            d.maximum_clock_khz.max(d.default_clock_khz),
        );
        list_matches(
            cx,
            REQUEST_GET_CLOCK_FREQUENCIES,
            d.num_clock_supported,
            range,
            "kHz",
        )
    },
};

pub(crate) const DATA_RATE_TABLE: Check = Check {
    id: "data-rate-table",
    clause: "CCID 1.1 §5.1 bNumDataRatesSupported, §5.3.3 GET_DATA_RATES",
    run: |cx| {
        let d = &cx.descriptor;
        let range = (d.data_rate, d.max_data_rate.max(d.data_rate));
        list_matches(
            cx,
            REQUEST_GET_DATA_RATES,
            d.num_data_rates_supported,
            range,
            "bps",
        )
    },
};

/// A list request answers `count` values (when `count` is not 0: the
/// request is then mandatory), each within `range` (default..=maximum).
fn list_matches(
    cx: &mut Context<'_>,
    request: u8,
    count: u8,
    (low, high): (u32, u32),
    unit: &str,
) -> Verdict {
    let mut buf = vec![0u8; 4 * 256];
    let n = match cx
        .wire
        .transport()
        .control_in(request, 0, &mut buf, ANSWER_WAIT)
    {
        Ok(n) => n,
        Err(TransportError::Stall | TransportError::Timeout) if count == 0 => {
            return Verdict::not_applicable(
                "the descriptor announces no list and the reader gives none",
            )
        }
        Err(e) => {
            return Verdict::fail(format!(
                "the descriptor announces {count} values but request {request:#04x} failed: {e}"
            ))
        }
    };
    let answer = super::wire::Answer(buf[..n].to_vec());
    if n % 4 != 0 {
        return Verdict::fail_on(format!("{n} bytes, not a list of u32"), &answer);
    }
    let values: Vec<u32> = buf[..n]
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if count != 0 && values.len() != usize::from(count) {
        return Verdict::fail_on(
            format!("{} values, the descriptor announces {count}", values.len()),
            &answer,
        );
    }
    if let Some(v) = values.iter().find(|&&v| v < low || v > high) {
        return Verdict::fail_on(
            format!("{v} {unit} is outside the descriptor's {low}..={high} {unit}"),
            &answer,
        );
    }
    Verdict::Pass
}
