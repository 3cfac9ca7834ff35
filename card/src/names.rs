//! Which reader a name means (AttachByIFD): a ferroccid device name, a
//! `pcsc:` name, or the whole or a part of a name that `ferroccid list`
//! or PC/SC shows, so an application takes the names its user sees.

use ferroccid::{DeviceName, TransportInfo};

use super::error::{ChannelError, Error, Result};

/// A reader a front end lists that this crate cannot enumerate itself
/// (the simulator's readers, say), with the device name that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedReader {
    /// The name shown to the user.
    pub name: String,
    /// The ferroccid device name that opens it.
    pub device: String,
}

/// Where a name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A ferroccid device, driven directly, and the slot.
    Direct { device: String, slot: usize },
    /// A PC/SC reader, by its full name.
    #[cfg(feature = "pcsc")]
    Pcsc(String),
}

/// The name of a USB reader as `ferroccid list` shows it: manufacturer
/// and product strings (the product alone when it repeats the maker).
pub fn usb_reader_name(info: &TransportInfo) -> String {
    match (&info.manufacturer, &info.product) {
        (Some(m), Some(p)) if !p.starts_with(m.as_str()) => format!("{m} {p}"),
        (_, Some(p)) => p.clone(),
        (Some(m), None) => m.clone(),
        (None, None) => format!("USB reader {:04X}:{:04X}", info.vendor_id, info.product_id),
    }
}

/// A candidate for a name, and how it is described in an ambiguity.
struct Candidate {
    name: String,
    route: Route,
}

/// Resolves `name`: `pcsc:READER` among PC/SC readers only; a device name
/// this program opens (`sim`, `usb:…`, `usbip:…`, optionally `#SLOT`) as
/// itself; otherwise among the USB readers, `listed` and the PC/SC
/// readers, a name equal to it (case-insensitive), else the only one
/// containing it.
pub(crate) fn resolve(name: &str, listed: &[ListedReader]) -> Result<Route> {
    if let Some(reader) = name.strip_prefix("pcsc:") {
        return pick(reader, pcsc_candidates()?);
    }
    let (base, slot) = split_slot(name)?;
    if base
        .parse::<DeviceName>()
        .ok()
        .is_some_and(|n| ferroccid::can_open(&n))
    {
        return Ok(Route::Direct {
            device: base.to_owned(),
            slot,
        });
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    let usb = ferroccid::list_usb(ferroccid::UsbBackend::from_env()).unwrap_or_default();
    let direct = usb
        .iter()
        .map(|info| (usb_reader_name(info), info.name.clone()))
        .chain(listed.iter().map(|r| (r.name.clone(), r.device.clone())));
    for (shown, device) in direct {
        let route = Route::Direct { device, slot };
        if !candidates.iter().any(|c| c.route == route) {
            candidates.push(Candidate { name: shown, route });
        }
    }
    // pcscd not running, or not built in: only the direct readers count.
    candidates.extend(pcsc_candidates().unwrap_or_default());
    pick(base, candidates)
}

/// `NAME#SLOT` split into the name and the slot (0 without a suffix).
fn split_slot(name: &str) -> Result<(&str, usize)> {
    match name.rsplit_once('#') {
        Some((base, index)) => Ok((
            base,
            index
                .parse()
                .map_err(|_| Error::InvalidRequest("slot after # must be a number"))?,
        )),
        None => Ok((name, 0)),
    }
}

fn pick(wanted: &str, candidates: Vec<Candidate>) -> Result<Route> {
    let lower = wanted.to_lowercase();
    let exact: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.name.to_lowercase() == lower)
        .collect();
    let matching: Vec<&Candidate> = if exact.is_empty() {
        candidates
            .iter()
            .filter(|c| c.name.to_lowercase().contains(&lower))
            .collect()
    } else {
        exact
    };
    match matching.as_slice() {
        [one] => Ok(one.route.clone()),
        [] => Err(ChannelError::UnknownReader(wanted.to_owned()).into()),
        several => Err(ChannelError::AmbiguousReader(
            several
                .iter()
                .map(|c| match &c.route {
                    Route::Direct { device, .. } => format!("{} ({device})", c.name),
                    #[cfg(feature = "pcsc")]
                    Route::Pcsc(_) => format!("{} (PC/SC)", c.name),
                })
                .collect(),
        )
        .into()),
    }
}

#[cfg(feature = "pcsc")]
fn pcsc_candidates() -> Result<Vec<Candidate>> {
    Ok(super::pcsc::reader_names()?
        .into_iter()
        .map(|name| Candidate {
            route: Route::Pcsc(name.clone()),
            name,
        })
        .collect())
}

#[cfg(not(feature = "pcsc"))]
fn pcsc_candidates() -> Result<Vec<Candidate>> {
    Err(Error::InvalidRequest(
        "pcsc: readers need ferroccid built with the pcsc feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, device: &str) -> Candidate {
        Candidate {
            name: name.into(),
            route: Route::Direct {
                device: device.into(),
                slot: 0,
            },
        }
    }

    #[test]
    fn an_equal_name_wins_over_names_that_contain_it() {
        let route = pick(
            "sysmoOCTSIM",
            vec![
                candidate("sysmocom sysmoOCTSIM", "usb:1d50/6141"),
                candidate("sysmoocTSIM", "usb:1d50/6142"),
            ],
        )
        .unwrap();
        assert_eq!(
            route,
            Route::Direct {
                device: "usb:1d50/6142".into(),
                slot: 0
            }
        );
    }

    #[test]
    fn unknown_and_ambiguous_names_are_typed() {
        let readers = || {
            vec![
                candidate("Gemplus GemPC Twin", "usb:08e6/3437"),
                candidate("Gemplus GemPC Key", "usb:08e6/3438"),
            ]
        };
        assert_eq!(
            pick("omnikey", readers()),
            Err(Error::Channel(ChannelError::UnknownReader(
                "omnikey".into()
            )))
        );
        match pick("gempc", readers()) {
            Err(Error::Channel(ChannelError::AmbiguousReader(names))) => {
                assert_eq!(names.len(), 2, "{names:?}");
                assert!(names[0].contains("usb:08e6/3437"), "{names:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(pick("twin", readers()).is_ok(), "case-insensitive part");
    }
}
