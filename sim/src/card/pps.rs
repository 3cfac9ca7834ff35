//! Card side of protocol and parameters selection (ISO/IEC 7816-3 §9).

use super::config::CardConfig;

/// What the card makes of a PPS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PpsAnswer {
    /// The PPS response the card sends.
    pub response: Vec<u8>,
    /// The protocol now in use.
    pub protocol: u8,
    /// Fi/Di byte now in use (0x11 when PPS1 was not echoed).
    pub fi_di: u8,
}

/// Answers a PPS request, or returns `None` when the card stays silent
/// (malformed request, wrong PCK, protocol not offered, or a specific-mode
/// card asked for something else than its specific parameters).
///
/// In negotiable mode, PPS1 is echoed when it asks exactly the card's TA1
/// value; any other PPS1 is refused by leaving it out of the response, which
/// means Fd/Dd (F=372, D=1). PPS2 and PPS3 are never echoed (not supported).
pub(crate) fn answer(config: &CardConfig, request: &[u8]) -> Option<PpsAnswer> {
    let (&ppss, rest) = request.split_first()?;
    let &pps0 = rest.first()?;
    let optional = (4..7).filter(|bit| pps0 & (1 << bit) != 0).count();
    if ppss != 0xFF || request.len() != 3 + optional || request.iter().fold(0u8, |a, b| a ^ b) != 0
    {
        return None;
    }
    let protocol = pps0 & 0x0F;
    let pps1 = (pps0 & 0x10 != 0).then(|| request[2]);
    let acceptable = match config.specific_mode {
        Some(mode) => protocol == mode.protocol && pps1.is_none_or(|p| p == config.fi_di()),
        None => config.protocols.offers(protocol),
    };
    if !acceptable {
        return None;
    }
    let accepted = pps1.filter(|&p| p == config.fi_di());
    let mut response = vec![0xFF, protocol | if accepted.is_some() { 0x10 } else { 0 }];
    response.extend(accepted);
    response.push(response.iter().fold(0, |a, b| a ^ b));
    Some(PpsAnswer {
        response,
        protocol,
        fi_di: accepted.unwrap_or(0x11),
    })
}
