//! Channels: an organization's endpoints on one medium. For now the channel types, which queues
//! already use for per-channel timeouts.

pub mod graphql;
pub mod service;
pub mod throttle;

/// The medium of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelType {
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

impl ChannelType {
    /// All channel types.
    pub const ALL: [ChannelType; 7] = [
        ChannelType::Email,
        ChannelType::Sms,
        ChannelType::Whatsapp,
        ChannelType::Messenger,
        ChannelType::Chat,
        ChannelType::Voice,
        ChannelType::Video,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Email => "EMAIL",
            ChannelType::Sms => "SMS",
            ChannelType::Whatsapp => "WHATSAPP",
            ChannelType::Messenger => "MESSENGER",
            ChannelType::Chat => "CHAT",
            ChannelType::Voice => "VOICE",
            ChannelType::Video => "VIDEO",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<ChannelType> {
        ChannelType::ALL.into_iter().find(|c| c.as_str() == name)
    }
}
