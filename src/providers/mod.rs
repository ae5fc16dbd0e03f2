//! Carrier interface (DESIGN §7.4): a channel sends its outbound messages through its provider.
//!
//! [`Provider::send`] hands one message over and answers accepted (with the provider's message id
//! and, when the provider knows it already, the delivery report to expect and when), a transient
//! error (retried with backoff) or a permanent error (the message fails with the reason). Real
//! carriers report delivery later through the ingest endpoint; the [`simulator`] says up front
//! what it will report, and the delivery job records it with the send (immediate reports) or
//! schedules it as a job of its own (delayed ones).
//!
//! Built: `simulator` (the default), [`webhook`] (a signed POST of each send to the channel's
//! `providerSettings.url`; the carrier bridge reports statuses and inbound messages on the ingest
//! endpoint) and [`smtp`] (email to the channel's SMTP server).

pub mod simulator;
pub mod smtp;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;

use crate::channels::ChannelType;
use crate::channels::service::Provider as ProviderKind;
use crate::config::Config;

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
    /// The channel it goes out on.
    pub channel_id: uuid::Uuid,
    /// The channel's ingest secret: the webhook provider signs its sends with it.
    pub signing_secret: Option<String>,
    /// Email `Message-ID` header.
    pub message_id_header: Option<String>,
    /// Email `In-Reply-To`: the latest earlier message of the conversation with a `Message-ID`.
    pub in_reply_to: Option<String>,
    /// Email `References`: the earlier `Message-ID`s of the conversation, oldest first.
    pub references: Vec<String>,
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

/// One outbound call, as a provider gets it to place.
#[derive(Clone, Debug)]
pub struct OutboundCall {
    /// The call's id (providers use it as their idempotency key and name it when they report).
    pub call_id: uuid::Uuid,
    /// The channel it goes out on.
    pub channel_id: uuid::Uuid,
    /// `CLICK_TO_CALL`, `CALLBACK` or `CAMPAIGN`.
    pub kind: String,
    /// Calling number (the channel's).
    pub from: String,
    /// The leg to ring: the agent's (click-to-call rings it first) or the contact's.
    pub leg: crate::calls::CallLeg,
    /// Number (or the agent's app endpoint, `client:…`) to ring on this leg.
    pub to: String,
    /// The contact's number (rung on the contact's leg, after the agent's).
    pub contact: String,
    /// Which attempt this is (1 for the first).
    pub attempt: i32,
    /// The channel's ingest secret: the webhook provider signs with it.
    pub signing_secret: Option<String>,
}

/// A carrier of one kind.
pub trait Provider: Send + Sync {
    /// The provider's stored name (`simulator`, `webhook`, `smtp`).
    fn name(&self) -> &'static str;

    /// Hands `message` over, with the channel's provider settings.
    fn send<'a>(&'a self, message: &'a Outbound, settings: &'a serde_json::Value)
    -> SendFuture<'a>;

    /// Asks the carrier to place `call` (it reports the call's progress on the ingest
    /// endpoint, naming `callId` and its own `providerCallId`). Providers without calls refuse
    /// permanently.
    fn place_call<'a>(
        &'a self,
        call: &'a OutboundCall,
        settings: &'a serde_json::Value,
    ) -> SendFuture<'a> {
        let _ = (call, settings);
        let name = self.name();
        Box::pin(async move {
            Err(SendError::Permanent(format!(
                "the {name} provider does not place calls"
            )))
        })
    }
}

/// The providers of this instance, by kind.
pub struct Providers {
    simulator: Arc<dyn Provider>,
    webhook: Arc<dyn Provider>,
    smtp: Arc<dyn Provider>,
}

impl Providers {
    /// The providers, configured by `config` (private addresses for webhooks, timeouts, the
    /// SMTP password).
    pub fn new(config: Arc<Config>) -> Self {
        Self {
            simulator: Arc::new(simulator::Simulator),
            webhook: Arc::new(webhook::Webhook::new(config.clone())),
            smtp: Arc::new(smtp::Smtp::new(config)),
        }
    }

    /// The provider of a channel whose provider is stored as `name`; a permanent error when there
    /// is none for it.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Provider>, SendError> {
        match ProviderKind::parse(name) {
            Some(ProviderKind::Simulator) => Ok(self.simulator.clone()),
            Some(ProviderKind::Webhook) => Ok(self.webhook.clone()),
            Some(ProviderKind::Smtp) => Ok(self.smtp.clone()),
            None => Err(SendError::Permanent(format!(
                "the channel has an unknown provider {name:?}"
            ))),
        }
    }
}
