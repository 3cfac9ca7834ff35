//! Who may subscribe: the root-owned registry, the analogue of the
//! registry keys under which MPR finds its credential providers.
//!
//! Every `*.conf` file in the registry directory ([`super::DEFAULT_REGISTRY`])
//! holds lines `allow uid N`, `allow user NAME` or `allow group NAME`
//! (`#` starts a comment). A file counts only if it and the directory are
//! owned by root and writable by nobody else, so an unprivileged user
//! cannot register themselves. Root may always subscribe. Names are looked
//! up in /etc/passwd and /etc/group (users and groups from NSS services
//! such as LDAP must be given by uid); group membership is the
//! subscriber's primary group or a supplementary one
//! (`/proc/PID/status`). The registry is read at each connection, so a
//! change applies without restarting pcscd.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The subscriber's credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub(super) pid: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// Whether `peer` may subscribe, by the registry in `dir`.
pub(super) fn allows(dir: &Path, peer: Peer) -> bool {
    if peer.uid == 0 {
        return true;
    }
    if !root_only(dir) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
        .iter()
        .filter(|file| root_only(file))
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .any(|text| text.lines().any(|line| rule_allows(line, peer)))
}

/// Owned by root, not writable by group or others (not following a
/// symlink: its target's owner would not be what was checked).
fn root_only(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0)
}

fn rule_allows(line: &str, peer: Peer) -> bool {
    let line = line.split('#').next().unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["allow", "uid", n] => n.parse::<u32>().is_ok_and(|n| n == peer.uid),
        ["allow", "user", name] => id_of("/etc/passwd", name).is_some_and(|uid| uid == peer.uid),
        ["allow", "group", name] => id_of("/etc/group", name)
            .is_some_and(|gid| gid == peer.gid || groups_of(peer.pid).contains(&gid)),
        _ => false,
    }
}

/// The id (third field) of `name` in a passwd- or group-format file.
fn id_of(file: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The supplementary groups of process `pid`.
fn groups_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Groups:").map(|groups| {
                    groups
                        .split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer {
            pid: std::process::id(),
            uid,
            gid: 65534,
        }
    }

    #[test]
    fn rules_name_uids_users_and_groups() {
        assert!(rule_allows("allow uid 1000", peer(1000)));
        assert!(!rule_allows("allow uid 1000", peer(1001)));
        assert!(rule_allows("  allow uid 7 # a comment", peer(7)));
        assert!(!rule_allows("# allow uid 7", peer(7)));
        assert!(!rule_allows("allow everyone", peer(7)));
        // root is uid 0 in every /etc/passwd.
        assert!(rule_allows("allow user root", peer(0)));
        assert!(!rule_allows("allow user root", peer(1)));
        assert!(!rule_allows("allow user no-such-user-here", peer(1)));
    }

    #[test]
    fn a_registry_others_may_write_counts_for_nothing() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ferroccid-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("provider.conf"), "allow uid 4242\n").unwrap();
        std::fs::set_permissions(
            dir.join("provider.conf"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(dir.join("ignored.txt"), "allow uid 4343\n").unwrap();
        let running_as_root = std::fs::metadata(&dir).unwrap().uid() == 0;
        assert!(allows(&dir, peer(0)), "root may always subscribe");
        assert_eq!(allows(&dir, peer(4242)), running_as_root);
        assert!(!allows(&dir, peer(4343)), "only *.conf files register");
        std::fs::set_permissions(
            dir.join("provider.conf"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        assert!(
            !allows(&dir, peer(4242)),
            "a world-writable file registers nobody"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
