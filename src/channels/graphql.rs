//! GraphQL types of channels.

use async_graphql::Enum;

/// The medium of a channel.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChannelType", remote = "super::ChannelType")]
pub enum ChannelTypeGql {
    /// Email.
    Email,
    /// SMS and MMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Website chat widget.
    Chat,
    /// Phone calls.
    Voice,
    /// Video calls.
    Video,
}
