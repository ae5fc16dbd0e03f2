//! Carrier interface (DESIGN §7.4): a channel sends its outbound messages through its provider.
//!
//! [`Provider::send`] hands one message over and answers accepted (with the provider's message id
//! and, when the provider knows it already, the delivery report to expect and when), a transient
//! error (retried with backoff) or a permanent error (the message fails with the reason). Real
//! carriers report delivery later through the ingest endpoint; the [`simulator`] says up front
//! what it will report, and the delivery job schedules that report as a job of its own.
//!
//! Built: `simulator` (the default). `webhook` and `smtp` channels are accepted by the channel
//! API but have no provider yet: their messages fail with a reason saying so.

pub mod simulator;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;

use crate::channels::ChannelType;
use crate::channels::service::Provider as ProviderKind;

/// One outbound message, as a provider gets it.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// The message's id (providers use it as their idempotency key).
    pub message_id: uuid::Uuid,
    /// The channel's medium.
    pub channel_type: Option<ChannelType>,
    /// Sender address.
    pub from: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients (email).
    pub cc: Vec<String>,
    /// Blind copy recipients (email).
    pub bcc: Vec<String>,
    /// Email subject.
    pub subject: Option<String>,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Which attempt this is (1 for the first).
    pub attempt: i32,
}

/// How a delivery ended, as a provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// Delivered to the recipient.
    Delivered,
    /// Could not be delivered, with the reason.
    Failed(String),
}

/// A provider took the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id of the message.
    pub provider_message_id: String,
    /// The report to expect and how long after the send, when the provider knows it now.
    pub report: Option<(Report, Duration)>,
}

/// A provider did not take the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// May work later (carrier unavailable, timeout): retry.
    Transient(String),
    /// Will never work (no such number, rejected): fail with the reason.
    Permanent(String),
}

/// A send, boxed.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, SendError>> + Send + 'a>>;

/// A carrier of one kind.
pub trait Provider: Send + Sync {
    /// The provider's stored name (`simulator`, `webhook`, `smtp`).
    fn name(&self) -> &'static str;

    /// Hands `message` over, with the channel's provider settings.
    fn send<'a>(&'a self, message: &'a Outbound, settings: &'a serde_json::Value)
    -> SendFuture<'a>;
}

/// The providers of this instance, by kind.
pub struct Providers {
    simulator: Arc<dyn Provider>,
}

impl Default for Providers {
    fn default() -> Self {
        Self {
            simulator: Arc::new(simulator::Simulator),
        }
    }
}

impl Providers {
    /// The provider of a channel whose provider is stored as `name`; a permanent error when there
    /// is none for it.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Provider>, SendError> {
        match ProviderKind::parse(name) {
            Some(ProviderKind::Simulator) => Ok(self.simulator.clone()),
            Some(ProviderKind::Webhook) => Err(SendError::Permanent(
                "the channel's webhook provider is not available yet".into(),
            )),
            Some(ProviderKind::Smtp) => Err(SendError::Permanent(
                "the channel's SMTP provider is not available yet".into(),
            )),
            None => Err(SendError::Permanent(format!(
                "the channel has an unknown provider {name:?}"
            ))),
        }
    }
}
