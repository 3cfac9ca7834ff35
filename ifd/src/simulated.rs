//! `sim` and `sim:PROFILE[.TAG]` readers inside pcscd (feature `sim`, for
//! the tests and demos; the distributed bundle is built without it): the
//! simulator's names open through its resolver, and a control-file watcher
//! lets a test insert and remove the simulated card from outside pcscd.
use ferroccid::DeviceName;
use ferroccid_sim::control::{control_key, watch_from_env};
use ferroccid_sim::profile::BUILTIN_NAMES;
use ferroccid_sim::SimHandle;

use crate::reader::{transport_error, IfdError, IfdReader};

/// Splits `PROFILE.TAG` into a built-in profile and a tag that only tells
/// several readers of one profile apart (reader.conf needs distinct
/// names, and the control files are keyed by it).
fn sim_profile(spec: Option<&str>) -> Option<String> {
    let spec = spec?;
    match spec.split_once('.') {
        Some((base, _)) if BUILTIN_NAMES.contains(&base) && !spec.ends_with(".json") => {
            Some(base.to_owned())
        }
        _ => Some(spec.to_owned()),
    }
}

/// Opens the simulated reader `sim:PROFILE[.TAG]` and, when the
/// environment names a control directory, watches its control file.
pub(crate) fn open(profile: Option<&str>) -> Result<IfdReader, IfdError> {
    ferroccid_sim::register();
    let name = DeviceName::Sim {
        profile: sim_profile(profile),
    };
    let opened = ferroccid::open_name(&name).map_err(transport_error)?;
    let handle = opened.handle::<SimHandle>().cloned();
    let mut reader = IfdReader::with_transport(opened.transport)?;
    if let Some(handle) = handle {
        let slots = reader.info().slots;
        match watch_from_env(&control_key(profile), slots, handle) {
            Some(Ok(watcher)) => reader.keep_alive(Box::new(watcher)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot watch the simulator control directory")
            }
            None => {}
        }
    }
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_select_the_builtin_profile() {
        assert_eq!(sim_profile(None), None);
        assert_eq!(sim_profile(Some("pinpad")).as_deref(), Some("pinpad"));
        assert_eq!(
            sim_profile(Some("tpdu-t1.remove")).as_deref(),
            Some("tpdu-t1")
        );
        assert_eq!(sim_profile(Some("my.json")).as_deref(), Some("my.json"));
    }
}
