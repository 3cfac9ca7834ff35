//! `sim` and `sim:PROFILE[.TAG]` readers inside pcscd (feature `sim`, for
//! the tests and demos; the distributed bundle is built without it): the
//! simulator's names open through its resolver, and a control-file watcher
//! lets a test insert and remove the simulated card from outside pcscd.
use std::any::Any;
use std::sync::Arc;

use ferroccid::{DeviceName, Transport, TransportError};
use ferroccid_sim::control::{control_key, watch_from_env};
use ferroccid_sim::profile::BUILTIN_NAMES;
use ferroccid_sim::SimHandle;

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

/// What the reader keeps alive once it knows its slot count: the
/// simulator's control-file watcher, if the environment names a directory.
pub(crate) type Attach = Box<dyn FnOnce(u8) -> Option<Box<dyn Any + Send + Sync>>>;

/// Opens the simulated reader `sim:PROFILE[.TAG]`: its transport, and what
/// attaches the control-file watcher once the reader is open.
pub(crate) fn open(profile: Option<&str>) -> Result<(Arc<dyn Transport>, Attach), TransportError> {
    ferroccid_sim::register();
    let name = DeviceName::Registered {
        scheme: ferroccid_sim::names::SCHEME.to_owned(),
        spec: sim_profile(profile),
    };
    let opened = ferroccid::open_name(&name)?;
    let handle = opened.handle::<SimHandle>().cloned();
    let key = control_key(profile);
    let attach: Attach = Box::new(move |slots| {
        let handle = handle?;
        match watch_from_env(&key, slots, handle)? {
            Ok(watcher) => Some(Box::new(watcher) as Box<dyn Any + Send + Sync>),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the simulator control directory");
                None
            }
        }
    });
    Ok((opened.transport, attach))
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
