//! Credential-manager notifications: what the reader sees of logons and
//! password changes, published from inside pcscd to local subscribers.
//!
//! The seed's providers (NPLogonNotify / NPPasswordChangeNotify) run in
//! other processes and are called from the system context; on Linux that
//! context is pcscd, which runs this bundle. So the bundle publishes
//! - card inserted / removed (from pcscd's presence polling),
//! - PIN verified, failed, blocked and changed, classified from the
//!   card's answer to VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER
//!   ([`classify`]) sent as APDUs or through the PIN pad,
//!
//! never a PIN byte: an event carries the reader, the slot, the reference
//! (P2) and the tries left, nothing of the command's data.
//!
//! Transport ([`server`]): a Unix stream socket the bundle listens on
//! (`/run/ferroccid/notify` unless [`SOCKET_ENV`] says otherwise), one JSON
//! object per line. A Unix socket rather than the D-Bus system bus: the
//! bundle runs inside pcscd as root and must stay small and free of an
//! async runtime, and `SO_PEERCRED` gives the subscriber's uid for the
//! access check without a bus policy file. Who may subscribe is the
//! root-owned registry ([`registry`], the analogue of MPR's registry
//! keys). Delivery never blocks pcscd: publishing is a `try_send` into a
//! bounded queue, and a subscriber whose socket buffer is full is
//! disconnected rather than waited for.

mod classify;
mod registry;
mod server;

pub(crate) use classify::{classify_apdu, classify_pin_pad, may_classify, PinPadOperation};
pub(crate) use server::{publish, queue as start, NotifyKind};

/// The environment variable that moves the socket (tests; pcscd's
/// environment is root's).
pub const SOCKET_ENV: &str = "FERROCCID_NOTIFY_SOCKET";
/// The environment variable that moves the registry directory.
pub const REGISTRY_ENV: &str = "FERROCCID_NOTIFY_REGISTRY";
/// Where the socket is by default.
pub const DEFAULT_SOCKET: &str = "/run/ferroccid/notify";
/// The registry directory by default: `*.conf` files, owned by root.
pub const DEFAULT_REGISTRY: &str = "/etc/ferroccid/notify.d";
