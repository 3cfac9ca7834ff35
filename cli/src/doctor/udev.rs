//! Is ferroccid's udev rule installed, and did it apply to the reader's
//! node? The rule gives the node to group pcscd and, when a reader is
//! plugged in, adds its VID:PID to the bundle (`bundle refresh`).
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::access::{name_of, READER_GROUP};
use super::report::{Check, Status};

/// Check name of [`check`].
pub const UDEV_RULE: &str = "udev-rule";

/// ferroccid's rules file (the package's in /usr/lib, `ferroccid
/// install`'s in /etc).
pub const RULES: &str = "92-ferroccid.rules";

/// udev's rules directories, highest priority first (udev(7)): a file in
/// an earlier one hides a file of the same name in a later one.
pub const RULES_DIRS: [&str; 4] = [
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
];

/// Which file udev uses for `name`: the first in `dirs` that exists.
/// `Err` carries the path when that file is a mask (a link to /dev/null
/// or empty), which disables the rules of that name everywhere.
pub fn effective_rule(dirs: &[PathBuf], name: &str) -> Option<Result<PathBuf, PathBuf>> {
    dirs.iter().map(|d| d.join(name)).find_map(|path| {
        let link = std::fs::symlink_metadata(&path).ok()?;
        let masked = std::fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"))
            || (!link.file_type().is_symlink() && link.len() == 0);
        Some(if masked { Err(path) } else { Ok(path) })
    })
}

/// Other rules for CCID readers (libccid's), for the detail.
fn other_rules(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("ccid") && name != RULES && !found.iter().any(|f| f.ends_with(&name)) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// The rule's presence; with `node`, also whether it applied (group
/// pcscd, group read-write).
/// `not_usb` says why the rule does not matter, if it does not.
pub fn check(not_usb: Option<&str>, dirs: &[PathBuf], node: Option<&Path>) -> Check {
    if let Some(reason) = not_usb {
        return Check::not_applicable(UDEV_RULE, reason);
    }
    let others = other_rules(dirs);
    let also = if others.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
        format!(" (also present: {})", shown.join(", "))
    };
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let rule = match effective_rule(dirs, RULES) {
        None => {
            return Check::new(
                UDEV_RULE,
                Status::Fail,
                format!("no {RULES} in {}{also}", searched.join(", ")),
                Some(
                    "`sudo ferroccid install` (or install the ferroccid package), then replug \
                     the reader",
                ),
            )
        }
        Some(Err(mask)) => {
            return Check::new(
                UDEV_RULE,
                Status::Fail,
                format!(
                    "{} masks {RULES} (a link to /dev/null or empty){also}",
                    mask.display()
                ),
                Some(format!(
                    "`sudo rm {}`, then `sudo udevadm control --reload` and replug the reader",
                    mask.display()
                )),
            )
        }
        Some(Ok(rule)) => rule,
    };
    let installed = format!("{} is installed{also}", rule.display());
    let Some(meta) = node.and_then(|n| std::fs::metadata(n).ok()) else {
        return Check::pass(UDEV_RULE, installed);
    };
    let group_ok = name_of("/etc/group", meta.gid()).as_deref() == Some(READER_GROUP);
    let mode_ok = meta.mode() & 0o060 == 0o060;
    if group_ok && mode_ok {
        Check::pass(
            UDEV_RULE,
            format!("{installed} and applied to the device node"),
        )
    } else {
        Check::new(
            UDEV_RULE,
            Status::Warn,
            format!(
                "{installed} but the device node is not group {READER_GROUP} with mode 0660: \
                 the rule did not run for this device (udev not running, or rule added after \
                 the reader was plugged in)"
            ),
            Some(
                "`sudo udevadm control --reload && sudo udevadm trigger --action=add \
                 --subsystem-match=usb`, or replug the reader",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferroccid-udev-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        dir
    }

    #[test]
    fn etc_hides_lib_and_a_dev_null_link_masks() {
        let root = temp("mask");
        let dirs = [root.join("etc"), root.join("lib")];
        assert_eq!(effective_rule(&dirs, RULES), None);
        std::fs::write(root.join("lib").join(RULES), "GROUP=\"pcscd\"\n").unwrap();
        assert_eq!(
            effective_rule(&dirs, RULES),
            Some(Ok(root.join("lib").join(RULES)))
        );
        std::os::unix::fs::symlink("/dev/null", root.join("etc").join(RULES)).unwrap();
        assert_eq!(
            effective_rule(&dirs, RULES),
            Some(Err(root.join("etc").join(RULES)))
        );
        let check = check(None, &dirs, None);
        assert_eq!(check.status, Status::Fail);
        assert!(check.advice.unwrap().contains("sudo rm"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
