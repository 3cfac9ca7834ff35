//! The attachment to one card and its management (ISCardManage): attach,
//! detach, reconnect, lock, status, and the views created from it.
//!
//! A [`CardManager`] and the views made from it ([`FileAccess`],
//! [`Verifier`], [`Authenticator`]) share one attachment: one channel
//! behind one mutex, so that each logical exchange (with its GET RESPONSE
//! rounds) runs whole, even when views are used from several threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::apdu::{Command, Response};
use super::attachment::{card_extended, Attachment, Inner};
use super::auth::Authenticator;
use super::channel::{CardChannel, ChannelStatus, Disposition, Initialization, ProtocolChoice};
use super::error::{ChannelError, Error, Result};
use super::events::{EventBus, EventKind, Subscription};
use super::exchange::{Exchanger, ExtendedLength};
use super::file::FileAccess;
use super::names::{resolve, ListedReader, Route};
use super::slot::SlotChannel;
use super::verify::Verifier;

/// How to attach.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Whether the card takes extended-length APDUs.
    pub extended: ExtendedLength,
    /// Where events go; `None` = the process-wide [`EventBus::global`].
    pub events: Option<EventBus>,
    /// How long an exchange waits while another attachment holds the
    /// card's lock before failing with [`ChannelError::Locked`] (`None` =
    /// as long as it takes, as pcscd does).
    pub lock_wait: Option<Duration>,
    /// Readers [`CardManager::attach_by_ifd`] also knows by name, besides
    /// the USB and PC/SC readers it finds itself (a front end's simulated
    /// readers, say).
    pub readers: Vec<ListedReader>,
}

/// An attachment to a card (ISCardManage).
#[derive(Clone)]
pub struct CardManager {
    attachment: Arc<Attachment>,
}

impl std::fmt::Debug for CardManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardManager")
            .field("reader", &self.attachment.reader)
            .finish()
    }
}

impl CardManager {
    /// Attaches over an open connection (AttachByHandle): a ferroccid slot
    /// channel, a PC/SC card, or any other [`CardChannel`].
    pub fn attach_by_handle(
        channel: impl CardChannel + 'static,
        options: AttachOptions,
    ) -> Result<CardManager> {
        let mut channel: Box<dyn CardChannel> = Box::new(channel);
        channel.set_lock_wait(options.lock_wait);
        let status = channel.status()?;
        let extended = card_extended(options.extended, &status.atr);
        let attachment = Attachment {
            reader: status.reader.clone(),
            extended: options.extended,
            events: options.events.unwrap_or_else(EventBus::global),
            inner: Mutex::new(Inner {
                channel: Some(channel),
                exchanger: Exchanger::new(extended),
                card_present: status.present,
                locked: false,
            }),
        };
        Ok(CardManager {
            attachment: Arc::new(attachment),
        })
    }

    /// Attaches by reader name (AttachByIFD). The name is a ferroccid
    /// device name (`sim`, `usb:…`, `usbip:…`, optionally `#SLOT` for a
    /// slot other than 0), driven directly through [`SlotChannel`];
    /// `pcsc:READER`, a PC/SC reader through pcscd; or the whole or a
    /// unique part of a name `ferroccid list` or PC/SC shows (USB readers,
    /// `options.readers`, pcscd's readers). An empty reader attaches too:
    /// views answer [`ChannelError::NoCard`] until a card arrives.
    ///
    /// Errors: [`ChannelError::UnknownReader`] and
    /// [`ChannelError::AmbiguousReader`] for a name that fits no or
    /// several readers.
    pub fn attach_by_ifd(name: &str, options: AttachOptions) -> Result<CardManager> {
        match resolve(name, &options.readers)? {
            Route::Direct { device, slot } => {
                let (channel, _device) = SlotChannel::open(&device, slot)?;
                CardManager::attach_by_handle(channel, options)
            }
            #[cfg(feature = "pcsc")]
            Route::Pcsc(reader) => {
                CardManager::attach_pcsc(&reader, ::pcsc::ShareMode::Shared, options)
            }
        }
    }

    /// Makes an interface this crate does not define over this attachment
    /// (CreateInterface): see [`CardInterface`].
    pub fn create_interface<I: CardInterface>(&self) -> Result<I> {
        I::create(self.clone())
    }

    /// The reader's name.
    pub fn reader_name(&self) -> &str {
        &self.attachment.reader
    }

    /// Reader and card state: presence, power, protocol, ATR, reader name.
    /// A change of presence since the last look is published as an event.
    pub fn status(&self) -> Result<ChannelStatus> {
        let att = &self.attachment;
        let mut inner = att.inner();
        let channel = inner
            .channel
            .as_mut()
            .ok_or(Error::Channel(ChannelError::Detached))?;
        let status = channel.status()?;
        if status.present != inner.card_present {
            inner.card_present = status.present;
            att.publish(if status.present {
                EventKind::CardInserted
            } else {
                EventKind::CardRemoved
            });
        }
        Ok(status)
    }

    /// Resets (or not) and re-establishes the channel without detaching,
    /// for example after the card was pulled and put back.
    pub fn reconnect(
        &self,
        init: Initialization,
        protocol: ProtocolChoice,
    ) -> Result<ChannelStatus> {
        let att = &self.attachment;
        let mut inner = att.inner();
        let channel = inner
            .channel
            .as_mut()
            .ok_or(Error::Channel(ChannelError::Detached))?;
        let result = channel.reconnect(init, protocol);
        match result {
            Ok(status) => {
                let extended = card_extended(att.extended, &status.atr);
                inner.exchanger.set_card_extended(extended);
                if status.present && !inner.card_present {
                    att.publish(EventKind::CardInserted);
                }
                inner.card_present = status.present;
                Ok(status)
            }
            Err(e @ (ChannelError::NoCard | ChannelError::CardRemoved)) => {
                if std::mem::take(&mut inner.card_present) {
                    att.publish(EventKind::CardRemoved);
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends the attachment, leaving the card as `disposition` says. Views
    /// made from it answer [`ChannelError::Detached`] from now on.
    pub fn detach(self, disposition: Disposition) -> Result<()> {
        let mut inner = self.attachment.inner();
        let mut channel = inner
            .channel
            .take()
            .ok_or(Error::Channel(ChannelError::Detached))?;
        if std::mem::take(&mut inner.locked) {
            // Best effort: the disconnect below ends the transaction anyway.
            let _ = channel.end_transaction(Disposition::Leave);
        }
        channel.disconnect(disposition)?;
        Ok(())
    }

    /// Takes exclusive use of the card (SCardLock), waiting at most
    /// `timeout` (`None` = as long as it takes). Other attachments, in this
    /// process or another, wait until the returned guard is dropped or
    /// [`CardLock::unlock`]ed; views of this attachment keep working.
    pub fn lock(&self, timeout: Option<Duration>) -> Result<CardLock> {
        let mut inner = self.attachment.inner();
        if inner.locked {
            return Err(Error::InvalidRequest(
                "this attachment already holds the lock",
            ));
        }
        let channel = inner
            .channel
            .as_mut()
            .ok_or(Error::Channel(ChannelError::Detached))?;
        channel.begin_transaction(timeout)?;
        inner.locked = true;
        Ok(CardLock {
            attachment: Some(Arc::clone(&self.attachment)),
        })
    }

    /// Sends a command APDU with the GET RESPONSE and 6Cxx procedures; the
    /// response whatever its status word.
    pub fn transmit(&self, cmd: &Command<'_>) -> Result<Response> {
        self.attachment.exchange(cmd)
    }

    /// File access (ISCardFileAccess) over this attachment.
    pub fn file_access(&self) -> FileAccess {
        FileAccess::new(Arc::clone(&self.attachment))
    }

    /// PIN verification and change (ISCardVerify) over this attachment.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(Arc::clone(&self.attachment))
    }

    /// Card authentication (ISCardAuth) over this attachment.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator::new(Arc::clone(&self.attachment))
    }

    /// The bus this attachment publishes on.
    pub fn events(&self) -> &EventBus {
        &self.attachment.events
    }

    /// Receives this bus's events from now on.
    pub fn subscribe(&self) -> Subscription {
        self.attachment.events.subscribe()
    }
}

/// An interface over an attachment that this crate does not define, the
/// counterpart of the service provider's CreateInterface: an application
/// or a card vendor implements it over the [`CardManager`] it is given
/// (transmit, lock, status, reconnect, and the crate's own views), and
/// gets it with [`CardManager::create_interface`]. It shares the
/// attachment, its lock and its events with every other view.
pub trait CardInterface: Sized {
    /// Makes the interface over `card` (for example, SELECTs its
    /// application).
    fn create(card: CardManager) -> Result<Self>;
}

/// Exclusive use of a card; released on drop (leaving the card as is) or
/// by [`CardLock::unlock`] with a disposition.
pub struct CardLock {
    attachment: Option<Arc<Attachment>>,
}

impl std::fmt::Debug for CardLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardLock")
    }
}

impl CardLock {
    /// Releases the lock, leaving the card as `disposition` says (SCardUnlock).
    pub fn unlock(mut self, disposition: Disposition) -> Result<()> {
        self.release(disposition)
    }

    fn release(&mut self, disposition: Disposition) -> Result<()> {
        let Some(attachment) = self.attachment.take() else {
            return Ok(());
        };
        let mut inner = attachment.inner();
        if !std::mem::take(&mut inner.locked) {
            return Ok(());
        }
        match inner.channel.as_mut() {
            Some(channel) => Ok(channel.end_transaction(disposition)?),
            None => Ok(()),
        }
    }
}

impl Drop for CardLock {
    fn drop(&mut self) {
        if let Err(e) = self.release(Disposition::Leave) {
            tracing::warn!(error = %e, "releasing the card lock failed");
        }
    }
}

#[cfg(feature = "pcsc")]
impl CardManager {
    /// Attaches to the card in a PC/SC reader through pcscd (AttachByIFD
    /// for PC/SC reader names).
    pub fn attach_pcsc(
        reader: &str,
        share_mode: ::pcsc::ShareMode,
        options: AttachOptions,
    ) -> Result<CardManager> {
        CardManager::attach_by_handle(
            super::pcsc::PcscChannel::connect(reader, share_mode)?,
            options,
        )
    }

    /// Attaches over an open `pcsc::Card` (AttachByHandle), opened with
    /// `share_mode`.
    pub fn attach_pcsc_card(
        card: ::pcsc::Card,
        share_mode: ::pcsc::ShareMode,
        options: AttachOptions,
    ) -> Result<CardManager> {
        CardManager::attach_by_handle(
            super::pcsc::PcscChannel::from_card(card, share_mode)?,
            options,
        )
    }
}
