//! The permission matrix (DESIGN §5): which role each action needs.

use super::Role;

/// An action that needs a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// See the organization and its staff directory.
    ReadDirectory,
    /// Manage one's own tokens and password.
    ManageOwnCredentials,
    /// Create, update, deactivate users and change roles.
    ManageUsers,
    /// Change the organization's profile and settings.
    ManageOrganization,
    /// Grant or remove the OWNER role, or change an owner.
    ManageOwners,
    /// See and revoke other users' tokens, create tokens for them.
    ManageOthersTokens,
    /// Read and work contacts (create, update, tag, set attribute values, add to and remove from
    /// contact groups; read contact groups).
    WorkContacts,
    /// Manage teams, queues, tags, contact groups (and later templates, broadcasts, campaigns).
    ManageRouting,
    /// Manage custom attribute definitions.
    ManageCustomAttributes,
    /// Anonymize contacts, conversations and messages.
    Anonymize,
    /// Read and work conversations, messages, notes and attachments (create, reply, claim, assign,
    /// transfer, close, tag, rate, …) and read channels and the activity log.
    WorkConversations,
    /// Create, update and archive channels.
    ManageChannels,
    /// Manage webhook subscriptions and see their deliveries.
    ManageWebhooks,
}

/// The lowest role that holds `permission`.
pub fn minimum_role(permission: Permission) -> Role {
    match permission {
        Permission::ReadDirectory
        | Permission::ManageOwnCredentials
        | Permission::WorkContacts
        | Permission::WorkConversations => Role::Agent,
        Permission::ManageRouting => Role::TeamLead,
        Permission::ManageUsers
        | Permission::ManageOrganization
        | Permission::ManageCustomAttributes
        | Permission::Anonymize
        | Permission::ManageChannels
        | Permission::ManageWebhooks => Role::Admin,
        Permission::ManageOwners | Permission::ManageOthersTokens => Role::Owner,
    }
}
