//! The webhook provider: how a real carrier bridge plugs in. Each send is a `POST` of the message
//! as JSON to the channel's `providerSettings.url`, signed per Standard Webhooks with the
//! channel's ingest secret (`webhook-id: msg_<message id>`, the same on every attempt so the
//! bridge can drop repeats; `webhook-timestamp`; `webhook-signature: v1,…`), through the same
//! SSRF-safe client as webhook subscriptions (private addresses refused unless
//! `webhook_allow_private_addresses`; no redirects).
//!
//! The body: `{ type: "message.send", messageId, channelId, channelType, from, to, cc, bcc,
//! subject, text, html, messageIdHeader, inReplyTo, references, attempt }` (ids are the API's
//! global ids; the last three are email headers, `null`/`[]` otherwise).
//!
//! The answer: `2xx` with `{"providerMessageId": "…"}` accepts the message (`SENT`; the bridge
//! reports `DELIVERED`, `READ` or `FAILED` later on the ingest endpoint with that id); `4xx`
//! fails it for good with the status and the start of the body as reason; `5xx`, a timeout or
//! a connection error is retried with backoff; any other status fails it.
//!
//! Calls are placed the same way, one request per leg: `{ type: "call.place", callId,
//! channelId, kind, leg, from, to, contact, attempt }` with `webhook-id: call_<call id>` for the
//! contact's leg and `call_<call id>_agent` for the agent's. A click-to-call's first request is
//! the agent's leg (`leg: "AGENT"`, `to` the agent's number or app endpoint `client:…`,
//! `contact` the number to ring next); the bridge reports that leg with `"leg": "AGENT"` and,
//! once it is answered, gets the contact's leg (`leg: "CONTACT"`, `to` the contact). A `2xx`
//! answer with `{"providerCallId": "…"}` accepts the leg.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{Accepted, Outbound, OutboundCall, Provider, SendError, SendFuture};
use crate::config::Config;
use crate::graphql::relay::encode_id;
use crate::webhooks::service::{check_url, client};
use crate::webhooks::signing;

/// The start of an answer's body kept in a failure reason, in characters.
const REASON_CHARS: usize = 200;
/// The most of an answer's body read, in bytes.
const ANSWER_BYTES: usize = 4_096;

/// The first [`ANSWER_BYTES`] of an answer's body (the rest is not read).
async fn answer(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ANSWER_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The webhook provider.
pub struct Webhook {
    config: Arc<Config>,
}

impl Webhook {
    /// The provider with the server's configuration.
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }

    async fn post(
        &self,
        message: &Outbound,
        settings: &serde_json::Value,
    ) -> Result<Accepted, SendError> {
        let body = json!({
            "type": "message.send",
            "messageId": encode_id("Message", message.message_id),
            "channelId": encode_id("Channel", message.channel_id),
            "channelType": message.channel_type.map(|t| t.as_str()),
            "from": message.from,
            "to": message.to,
            "cc": message.cc,
            "bcc": message.bcc,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "messageIdHeader": message.message_id_header,
            "inReplyTo": message.in_reply_to,
            "references": message.references,
            "attempt": message.attempt,
        });
        let id = format!("msg_{}", message.message_id.simple());
        self.post_signed(
            &id,
            body,
            settings,
            message.signing_secret.as_deref(),
            "providerMessageId",
        )
        .await
    }

    /// POSTs `body` signed with `secret` under `webhook-id` `id` to the settings' `url`; a 2xx
    /// answer is accepted (with the id under `id_field` of a JSON answer), a 5xx or a network
    /// failure is transient, anything else permanent.
    async fn post_signed(
        &self,
        id: &str,
        body: serde_json::Value,
        settings: &serde_json::Value,
        secret: Option<&str>,
        id_field: &str,
    ) -> Result<Accepted, SendError> {
        let Some(url) = settings["url"].as_str() else {
            return Err(SendError::Permanent(
                "the channel's providerSettings have no url".into(),
            ));
        };
        let url = check_url(&self.config, url)
            .await
            .map_err(|why| SendError::Permanent(format!("not sent: {why}")))?;
        let Some(secret) = secret else {
            return Err(SendError::Permanent(
                "the channel has no ingest secret to sign sends with: rotate it first".into(),
            ));
        };
        let body = body.to_string();
        let timestamp = Utc::now().timestamp();
        let response = client(self.config.webhook_allow_private_addresses)
            .post(url)
            .timeout(Duration::from_secs(
                self.config.webhook_timeout_seconds.max(1),
            ))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signing::sign(secret, id, timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|error| {
                SendError::Transient(if error.is_timeout() {
                    "the provider's webhook timed out".into()
                } else if error.is_connect() {
                    "could not connect to the provider's webhook".into()
                } else {
                    "the request to the provider's webhook failed".into()
                })
            })?;
        let status = response.status();
        let text = answer(response).await;
        if status.is_success() {
            let provider_message_id = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v[id_field].as_str().map(str::to_string))
                .unwrap_or_default();
            return Ok(Accepted {
                provider_message_id,
                report: None,
            });
        }
        let mut start: String = text.trim().chars().take(REASON_CHARS).collect();
        if !start.is_empty() {
            start = format!(": {start}");
        }
        let reason = format!("the provider's webhook answered {}{start}", status.as_u16());
        if status.is_server_error() {
            Err(SendError::Transient(reason))
        } else {
            Err(SendError::Permanent(reason))
        }
    }
}

impl Provider for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(
        &'a self,
        message: &'a Outbound,
        settings: &'a serde_json::Value,
    ) -> SendFuture<'a> {
        Box::pin(self.post(message, settings))
    }

    fn place_call<'a>(
        &'a self,
        call: &'a OutboundCall,
        settings: &'a serde_json::Value,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let body = json!({
                "type": "call.place",
                "callId": encode_id("Call", call.call_id),
                "channelId": encode_id("Channel", call.channel_id),
                "kind": call.kind,
                "leg": call.leg.as_str(),
                "from": call.from,
                "to": call.to,
                "contact": call.contact,
                "attempt": call.attempt,
            });
            // Each leg is its own request: the bridge drops repeats of one leg, not the other.
            let id = match call.leg {
                crate::calls::CallLeg::Agent => format!("call_{}_agent", call.call_id.simple()),
                crate::calls::CallLeg::Contact => format!("call_{}", call.call_id.simple()),
            };
            self.post_signed(
                &id,
                body,
                settings,
                call.signing_secret.as_deref(),
                "providerCallId",
            )
            .await
        })
    }
}
