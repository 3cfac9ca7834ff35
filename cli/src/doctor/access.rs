//! May this user open the reader's device node? pcscd (root on Debian)
//! does not need it; the ferroccid CLI on a raw reader (`--reader usb:…`)
//! does, and the udev rule's GROUP="pcscd", MODE="0660" is how it gets it.
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use rustix::fs::{Access, AtFlags, CWD};

use super::report::{Check, Status};

/// Check name of [`check`].
pub const PERMISSIONS: &str = "permissions";

/// The group the udev rule gives reader nodes to.
pub const READER_GROUP: &str = "pcscd";

/// A name from an `/etc/passwd` or `/etc/group` style file, by id.
pub fn name_of(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2].parse() == Ok(id)).then(|| fields[0].to_owned())
    })
}

/// Whether `/etc/group` lists `user` as a member of `group`.
fn listed_member(group: &str, user: &str) -> bool {
    std::fs::read_to_string("/etc/group").is_ok_and(|text| {
        text.lines().any(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            fields.len() > 3 && fields[0] == group && fields[3].split(',').any(|m| m == user)
        })
    })
}

/// Who this process runs as: effective user name (or uid).
fn user_name() -> String {
    let uid = rustix::process::geteuid().as_raw();
    name_of("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

/// What to do when `user` cannot open a node of group `node_group`:
/// join the reader group when the rule applied, else get the rule
/// applied. `listed` says /etc/group already has the user in it (a new
/// login is all that is missing).
pub fn advice(node_group: Option<&str>, user: &str, listed: bool) -> String {
    match node_group {
        Some(READER_GROUP) if listed => format!(
            "{user} is in group {READER_GROUP} in /etc/group but this session is not: log out \
             and in again (or run `newgrp {READER_GROUP}`)"
        ),
        Some(READER_GROUP) => format!(
            "only needed to use the raw reader with the ferroccid CLI: `sudo usermod -aG \
             {READER_GROUP} {user}`, then log out and in again"
        ),
        _ => "the udev rule has not given the node to group pcscd: install it (see udev-rule), \
              then `sudo udevadm control --reload && sudo udevadm trigger --action=add \
              --subsystem-match=usb`, or replug the reader"
            .to_owned(),
    }
}

/// The device node's owner, group and mode, and whether this process may
/// open it for reading and writing (as usbfs needs).
pub fn check(node: Option<&Path>) -> Check {
    let Some(node) = node else {
        return Check::not_applicable(PERMISSIONS, "no USB device node (see usb-device)");
    };
    let meta = match std::fs::metadata(node) {
        Ok(meta) => meta,
        Err(e) => {
            return Check::new(
                PERMISSIONS,
                Status::Fail,
                format!("{}: {e}", node.display()),
                Some("the kernel made no device node: is devtmpfs mounted on /dev (`mount | grep devtmpfs`)?"),
            )
        }
    };
    let owner = name_of("/etc/passwd", meta.uid()).unwrap_or_else(|| meta.uid().to_string());
    let group = name_of("/etc/group", meta.gid());
    let shown = format!(
        "{}: {owner}:{} {:04o}",
        node.display(),
        group.clone().unwrap_or_else(|| meta.gid().to_string()),
        meta.mode() & 0o7777
    );
    let user = user_name();
    let allowed = rustix::fs::accessat(
        CWD,
        node,
        Access::READ_OK | Access::WRITE_OK,
        AtFlags::EACCESS,
    );
    match allowed {
        Ok(()) => Check::pass(PERMISSIONS, format!("{shown}; {user} may open it")),
        Err(e) => {
            let listed = group.as_deref().is_some_and(|g| listed_member(g, &user));
            Check::new(
                PERMISSIONS,
                Status::Warn,
                format!(
                    "{shown}; {user} may not open it for reading and writing ({e}): pcscd \
                     (root) is unaffected, the ferroccid CLI cannot use the raw reader"
                ),
                Some(advice(group.as_deref(), &user, listed)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_follows_the_nodes_group() {
        assert!(advice(Some("pcscd"), "alice", false).contains("usermod -aG pcscd alice"));
        assert!(advice(Some("pcscd"), "alice", true).contains("log out"));
        assert!(advice(Some("root"), "alice", false).contains("udevadm trigger"));
        assert!(advice(None, "alice", false).contains("udevadm trigger"));
    }
}
