//! The SMTP provider: email channels send through their SMTP server (`lettre`, rustls).
//!
//! Settings (`providerSettings`): `host` (required), `port` (default 25 with `tls: NONE`, 587
//! with `STARTTLS`, 465 with `TLS`), `tls` (`NONE`: plain text; `STARTTLS` (default): upgrade,
//! refusing a server that cannot; `TLS`: implicit TLS) and `username` (authenticates with the
//! server's `smtp_password` setting, `SWITCHBOARD_SMTP_PASSWORD`; secrets are never stored in
//! provider settings).
//!
//! The mail: `From` the message's sender (the channel's address), `To`, `Cc` (and the `Bcc`
//! recipients in the envelope only), `Subject`, `Message-ID` (the stored header), `In-Reply-To`
//! and `References` (the conversation's earlier `Message-ID`s, so mail clients thread), and the text
//! and/or HTML body (both: `multipart/alternative`). The server's `5xx` answer fails the message
//! for good with its text as reason; a `4xx` answer, a connection error or a timeout is retried.
//! Accepted mail is `SENT` with the `Message-ID` as the provider's id (bounces can be reported
//! on the ingest endpoint with it).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Accepted, Outbound, Provider, SendError, SendFuture};
use crate::config::Config;

/// The SMTP provider.
pub struct Smtp {
    config: Arc<Config>,
}

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    None,
    StartTls,
    Tls,
}

fn mailbox(address: &str, field: &str) -> Result<Mailbox, SendError> {
    address
        .parse()
        .map_err(|_| SendError::Permanent(format!("{field} address {address:?} is not valid")))
}

/// The mail of `message`.
fn mail(message: &Outbound) -> Result<Message, SendError> {
    let from = message
        .from
        .as_deref()
        .ok_or_else(|| SendError::Permanent("the message has no sender address".into()))?;
    let mut builder = Message::builder()
        .from(mailbox(from, "the sender")?)
        .message_id(message.message_id_header.clone());
    for to in &message.to {
        builder = builder.to(mailbox(to, "a recipient")?);
    }
    for cc in &message.cc {
        builder = builder.cc(mailbox(cc, "a copy recipient")?);
    }
    for bcc in &message.bcc {
        builder = builder.bcc(mailbox(bcc, "a blind copy recipient")?);
    }
    if let Some(parent) = &message.in_reply_to {
        builder = builder.in_reply_to(parent.clone());
    }
    if !message.references.is_empty() {
        builder = builder.references(message.references.join(" "));
    }
    if let Some(subject) = &message.subject {
        builder = builder.subject(subject);
    }
    let built = match (&message.text, &message.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        )),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
        (text, None) => builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.clone().unwrap_or_default()),
    };
    built.map_err(|error| SendError::Permanent(format!("the mail cannot be built: {error}")))
}

impl Smtp {
    /// The provider with the server's configuration.
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }

    fn transport(
        &self,
        settings: &serde_json::Value,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let host = settings["host"]
            .as_str()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                SendError::Permanent("the channel's providerSettings have no host".into())
            })?;
        let security = match settings["tls"].as_str() {
            Some("NONE") => Security::None,
            Some("TLS") => Security::Tls,
            _ => Security::StartTls,
        };
        let tls_error =
            |error: lettre::transport::smtp::Error| SendError::Permanent(format!("TLS: {error}"));
        let (builder, default_port) = match security {
            Security::None => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                25,
            ),
            Security::StartTls => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?,
                587,
            ),
            Security::Tls => (
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?,
                465,
            ),
        };
        let port = settings["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(default_port);
        let mut builder = builder.port(port).timeout(Some(Duration::from_secs(
            self.config.smtp_timeout_seconds.max(1),
        )));
        if let Some(username) = settings["username"].as_str() {
            let password = self.config.smtp_password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.to_string(), password));
        }
        Ok(builder.build())
    }

    async fn deliver(
        &self,
        message: &Outbound,
        settings: &serde_json::Value,
    ) -> Result<Accepted, SendError> {
        let transport = self.transport(settings)?;
        let mail = mail(message)?;
        match transport.send(mail).await {
            Ok(_) => Ok(Accepted {
                provider_message_id: message.message_id_header.clone().unwrap_or_default(),
                report: None,
            }),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(format!(
                "the SMTP server refused the message: {error}"
            ))),
            Err(error) if error.is_timeout() => Err(SendError::Transient(
                "the SMTP server did not answer in time".into(),
            )),
            Err(error) if error.is_transient() => Err(SendError::Transient(format!(
                "the SMTP server deferred the message: {error}"
            ))),
            Err(error) => Err(SendError::Transient(format!(
                "could not talk to the SMTP server: {error}"
            ))),
        }
    }
}

impl Provider for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(
        &'a self,
        message: &'a Outbound,
        settings: &'a serde_json::Value,
    ) -> SendFuture<'a> {
        Box::pin(self.deliver(message, settings))
    }
}
