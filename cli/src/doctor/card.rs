//! A card in the reader and its ATR decoded: from PC/SC when pcscd shows
//! the reader, else by opening the reader directly (the simulator, or a
//! USB reader no one holds).
use ferroccid::protocols::atr::Atr;
use ferroccid::{open_name, DeviceName, Reader};

use super::pcsc::CardState;
use super::report::{Check, Status};

/// Check name of [`check`].
pub const CARD: &str = "card";

fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line about an ATR: protocols, Fi/Di, historical bytes.
pub fn summary(atr: &[u8]) -> Result<String, String> {
    let parsed = Atr::parse(atr).map_err(|e| format!("ATR {} does not parse: {e}", spaced(atr)))?;
    let protocols: Vec<String> = parsed
        .protocols()
        .iter()
        .map(|p| format!("T={p}"))
        .collect();
    Ok(format!(
        "ATR {}: {}, Fi {} Di {} (up to {} kHz), {} historical byte(s){}",
        spaced(atr),
        protocols.join(" and "),
        parsed.fi(),
        parsed.di(),
        parsed.f_max_khz(),
        parsed.historical().len(),
        match parsed.tck_ok() {
            Some(false) => ", wrong TCK",
            _ => "",
        }
    ))
}

fn from_state(card: &CardState, source: &str) -> Check {
    match card {
        CardState::Absent => Check::new(
            CARD,
            Status::Warn,
            format!("no card in the reader ({source})"),
            Some("insert a card (chip first, contacts up on most readers)"),
        ),
        CardState::Mute => Check::new(
            CARD,
            Status::Fail,
            format!("a card is in but does not answer reset ({source})"),
            Some("take the card out and put it back (the right way round); if it stays mute, try another card"),
        ),
        CardState::Present(atr) => match summary(atr) {
            Ok(line) => Check::pass(CARD, format!("{line} ({source}); `ferroccid atr {}` explains it byte by byte", spaced(atr).replace(' ', ""))),
            Err(e) => Check::new(
                CARD,
                Status::Warn,
                format!("{e} ({source})"),
                Some(format!("`ferroccid atr {}` shows where it goes wrong", spaced(atr).replace(' ', ""))),
            ),
        },
    }
}

/// The card through PC/SC (`pcsc`), else read directly from `device`
/// (when given: a device this process may open).
pub fn check(pcsc: Option<&CardState>, device: Option<&DeviceName>) -> Check {
    if let Some(card) = pcsc {
        return from_state(card, "through pcscd");
    }
    let Some(device) = device else {
        return Check::not_applicable(CARD, "not checked: the reader is not visible through PC/SC");
    };
    match direct(device) {
        Ok(card) => from_state(&card, "read directly, not through pcscd"),
        Err(e) => Check::not_applicable(
            CARD,
            format!("not checked: the reader is not visible through PC/SC and opening {device} directly failed: {e}"),
        ),
    }
}

/// Opens the reader, looks at slot 0 and powers the card if one is in.
fn direct(device: &DeviceName) -> Result<CardState, String> {
    let opened = open_name(device).map_err(|e| e.to_string())?;
    let reader = Reader::open(opened.transport.clone()).map_err(|e| e.to_string())?;
    let slot = reader.slot(0).map_err(|e| e.to_string())?;
    if !slot.status().map_err(|e| e.to_string())?.present {
        return Ok(CardState::Absent);
    }
    Ok(match slot.power_on() {
        Ok(atr) => CardState::Present(atr.as_bytes().to_vec()),
        Err(_) => CardState::Mute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atr_is_summarised_and_a_broken_one_is_a_warning() {
        let ok = summary(&[0x3B, 0x00]).unwrap();
        assert!(ok.contains("T=0") && ok.contains("Fi 372 Di 1"), "{ok}");
        let broken = from_state(&CardState::Present(vec![0x3B, 0x80]), "x");
        assert_eq!(broken.status, Status::Warn, "{broken:?}");
        assert_eq!(from_state(&CardState::Absent, "x").status, Status::Warn);
        assert_eq!(from_state(&CardState::Mute, "x").status, Status::Fail);
    }
}
