//! The publisher: a bounded queue from pcscd's threads to one thread that
//! owns the socket and the subscribers.
//!
//! Nothing here waits on a subscriber. [`publish`] (called on pcscd's
//! transmit, control and presence paths) only `try_send`s into a queue of
//! [`QUEUE_LEN`] events and counts what it had to drop. The publishing
//! thread writes each line to each subscriber with `MSG_DONTWAIT`; a
//! subscriber that has not read enough to take a whole line is
//! disconnected (its kernel buffer, about 200 KiB, is the only backlog).

use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::registry::{self, Peer};

/// Events waiting for the publishing thread; more are dropped (counted).
pub(crate) const QUEUE_LEN: usize = 1024;

/// What happened on a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyKind {
    /// pcscd saw a card arrive.
    CardInserted,
    /// pcscd saw the card go.
    CardRemoved,
    /// VERIFY (or the PIN pad's) answered 9000: the logon.
    PinVerified { reference: u8 },
    /// A wrong PIN, with the tries the card says are left.
    PinFailed { reference: u8, tries_left: u8 },
    /// The reference is blocked (6983, or 63C0).
    PinBlocked { reference: u8 },
    /// CHANGE REFERENCE DATA or RESET RETRY COUNTER answered 9000: the
    /// password change.
    PinChanged { reference: u8 },
}

pub(crate) struct Message {
    reader: Arc<str>,
    slot: u8,
    kind: NotifyKind,
}

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Hands an event to the publishing thread (started on first use), or
/// drops it if the queue is full or the socket could not be made. Never
/// blocks; allocates nothing (the reader name is shared).
pub(crate) fn publish(reader: &Arc<str>, slot: u8, kind: NotifyKind) {
    let Some(queue) = queue() else {
        return;
    };
    let message = Message {
        reader: Arc::clone(reader),
        slot,
        kind,
    };
    if queue.try_send(message).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The queue to the publishing thread, which the first call starts
/// (pcscd opening a reader does, so subscribers can connect before the
/// first event).
pub(crate) fn queue() -> Option<&'static SyncSender<Message>> {
    static QUEUE: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    QUEUE.get_or_init(start).as_ref()
}

fn socket_path() -> PathBuf {
    std::env::var_os(super::SOCKET_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| super::DEFAULT_SOCKET.into())
}

fn registry_dir() -> PathBuf {
    std::env::var_os(super::REGISTRY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| super::DEFAULT_REGISTRY.into())
}

/// Binds the socket and starts the publishing thread.
fn start() -> Option<SyncSender<Message>> {
    let path = socket_path();
    let listener = match bind(&path) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "notifications off: cannot listen");
            return None;
        }
    };
    let (sender, receiver) = sync_channel(QUEUE_LEN);
    let spawned = std::thread::Builder::new()
        .name("ferroccid-notify".into())
        .spawn(move || serve(listener, receiver, registry_dir()));
    match spawned {
        Ok(_) => {
            tracing::info!(path = %path.display(), "publishing card and PIN events");
            Some(sender)
        }
        Err(error) => {
            tracing::warn!(%error, "notifications off: no thread");
            None
        }
    }
}

/// Listens at `path`: the directory is made if missing, a stale socket
/// (left by a pcscd that died) replaced, anything else there refused.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "not a socket; left alone",
            ))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)?;
    // Anyone may connect; the registry decides who stays.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn serve(listener: UnixListener, queue: Receiver<Message>, registry: PathBuf) {
    let mut subscribers: Vec<UnixStream> = Vec::new();
    let mut seq: u64 = 0;
    loop {
        match queue.recv_timeout(Duration::from_millis(100)) {
            Ok(message) => {
                seq += 1;
                let line = render(seq, &message, DROPPED.load(Ordering::Relaxed));
                subscribers.retain(|s| send_line(s, &line));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while let Ok((stream, _)) = listener.accept() {
            if let Some(stream) = admit(stream, &registry, seq) {
                subscribers.push(stream);
            }
        }
    }
}

/// A new subscriber, if the registry allows its uid: told the last
/// sequence number, so that it knows it is in and from where.
fn admit(stream: UnixStream, registry: &Path, seq: u64) -> Option<UnixStream> {
    let cred = rustix::net::sockopt::socket_peercred(&stream).ok()?;
    let peer = Peer {
        pid: cred.pid.as_raw_nonzero().get().unsigned_abs(),
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    };
    if !registry::allows(registry, peer) {
        tracing::info!(
            uid = peer.uid,
            "notification subscriber refused: not in the registry"
        );
        let mut stream = stream;
        let _ = stream.write_all(b"{\"error\":\"not registered\"}\n");
        return None;
    }
    stream.set_nonblocking(true).ok()?;
    send_line(&stream, &format!("{{\"subscribed\":true,\"seq\":{seq}}}\n")).then_some(stream)
}

/// Writes the whole line now or gives up on the subscriber.
fn send_line(stream: &UnixStream, line: &str) -> bool {
    use rustix::net::{send, SendFlags};
    match send(
        stream,
        line.as_bytes(),
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    ) {
        Ok(n) if n == line.len() => true,
        Ok(_) | Err(_) => {
            tracing::info!("notification subscriber dropped: not reading");
            false
        }
    }
}

/// One event as a JSON line. The reader name is the device name pcscd
/// gave the bundle; it is escaped, nothing else is free text.
fn render(seq: u64, message: &Message, dropped: u64) -> String {
    let (event, reference, tries) = match message.kind {
        NotifyKind::CardInserted => ("card-inserted", None, None),
        NotifyKind::CardRemoved => ("card-removed", None, None),
        NotifyKind::PinVerified { reference } => ("pin-verified", Some(reference), None),
        NotifyKind::PinFailed {
            reference,
            tries_left,
        } => ("pin-failed", Some(reference), Some(tries_left)),
        NotifyKind::PinBlocked { reference } => ("pin-blocked", Some(reference), None),
        NotifyKind::PinChanged { reference } => ("pin-changed", Some(reference), None),
    };
    let mut line = format!(
        "{{\"seq\":{seq},\"reader\":\"{}\",\"slot\":{},\"event\":\"{event}\"",
        escape(&message.reader),
        message.slot
    );
    if let Some(reference) = reference {
        line.push_str(&format!(",\"reference\":{reference}"));
    }
    if let Some(tries) = tries {
        line.push_str(&format!(",\"tries_left\":{tries}"));
    }
    if dropped > 0 {
        line.push_str(&format!(",\"dropped_before\":{dropped}"));
    }
    line.push_str("}\n");
    line
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_as_one_json_line_without_free_text() {
        let message = Message {
            reader: Arc::from("usb:08e6/3437:libudev:0:/dev/bus/usb/001/002 \"x\"\n"),
            slot: 1,
            kind: NotifyKind::PinFailed {
                reference: 0x81,
                tries_left: 2,
            },
        };
        let line = render(7, &message, 0);
        assert_eq!(
            line,
            "{\"seq\":7,\"reader\":\"usb:08e6/3437:libudev:0:/dev/bus/usb/001/002 \\\"x\\\"\\u000a\",\"slot\":1,\"event\":\"pin-failed\",\"reference\":129,\"tries_left\":2}\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }
}
