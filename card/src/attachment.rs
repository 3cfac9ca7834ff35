//! What a card manager and its views (files, PIN, authentication) share:
//! the channel, the exchange policy, the event bus. Apart from `manage`
//! so that the views depend on it and not on the manager.
use std::sync::{Mutex, MutexGuard};

use super::apdu::{Command, Response};
use super::channel::CardChannel;
use super::error::{ChannelError, Error, Result};
use super::events::{EventBus, EventKind};
use super::exchange::{atr_announces_extended, Exchanger, ExtendedLength};

/// The mutable part of an attachment.
pub(crate) struct Inner {
    pub(crate) channel: Option<Box<dyn CardChannel>>,
    pub(crate) exchanger: Exchanger,
    /// The last known presence, so that removal and insertion are each
    /// announced once.
    pub(crate) card_present: bool,
    pub(crate) locked: bool,
}

/// What views share.
pub(crate) struct Attachment {
    pub(crate) reader: String,
    pub(crate) extended: ExtendedLength,
    pub(crate) events: EventBus,
    pub(crate) inner: Mutex<Inner>,
}

pub(crate) fn card_extended(policy: ExtendedLength, atr: &[u8]) -> bool {
    match policy {
        ExtendedLength::Yes => true,
        ExtendedLength::No => false,
        ExtendedLength::FromAtr => ferroccid::protocols::atr::Atr::parse(atr)
            .map(|atr| atr_announces_extended(atr.historical()))
            .unwrap_or(false),
    }
}

impl Attachment {
    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the channel; notes a card removal the channel reports.
    pub(crate) fn with_channel<T>(
        &self,
        f: impl FnOnce(&mut dyn CardChannel, &mut Exchanger) -> Result<T>,
    ) -> Result<T> {
        let mut inner = self.inner();
        let Inner {
            channel,
            exchanger,
            card_present,
            ..
        } = &mut *inner;
        let channel = channel
            .as_mut()
            .ok_or(Error::Channel(ChannelError::Detached))?;
        let result = f(channel.as_mut(), exchanger);
        match &result {
            Err(Error::Channel(ChannelError::CardRemoved | ChannelError::NoCard))
                if std::mem::take(card_present) =>
            {
                self.events.publish(&self.reader, EventKind::CardRemoved);
            }
            // A channel made to an empty reader connected the card that
            // arrived: its ATR decides extended length, as on attach.
            Ok(_) if !*card_present => {
                if let Ok(status) = channel.status() {
                    if status.present {
                        *card_present = true;
                        exchanger.set_card_extended(card_extended(self.extended, &status.atr));
                        self.events.publish(&self.reader, EventKind::CardInserted);
                    }
                }
            }
            _ => {}
        }
        result
    }

    /// One logical exchange; the response whatever its SW.
    pub(crate) fn exchange(&self, cmd: &Command<'_>) -> Result<Response> {
        self.with_channel(|channel, exchanger| exchanger.exchange(channel, cmd))
    }

    /// One logical exchange; the data when the SW is 9000.
    pub(crate) fn exchange_ok(&self, cmd: &Command<'_>) -> Result<Vec<u8>> {
        self.exchange(cmd)?.into_result()
    }

    /// Largest Nc and Ne of one APDU.
    pub(crate) fn limits(&self) -> Result<(usize, usize)> {
        self.with_channel(|channel, exchanger| {
            Ok((exchanger.max_nc(channel), exchanger.max_ne(channel)))
        })
    }

    pub(crate) fn publish(&self, kind: EventKind) {
        self.events.publish(&self.reader, kind);
    }
}
