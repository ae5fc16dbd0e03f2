//! SeaORM entities for Switchboard. No GraphQL here: the API layer converts these models into its own
//! output types, so storage-only columns (hashes, secrets) never reach the schema.

pub mod anonymization_request;
pub mod api_token;
pub mod attachment;
pub mod channel;
pub mod contact;
pub mod contact_attribute_value;
pub mod contact_group;
pub mod contact_group_member;
pub mod contact_tag;
pub mod conversation;
pub mod conversation_attribute_value;
pub mod conversation_offer;
pub mod conversation_participant;
pub mod conversation_read;
pub mod conversation_tag;
pub mod custom_attribute_definition;
pub mod event;
pub mod idempotency_key;
pub mod job;
pub mod message;
pub mod message_reaction;
pub mod message_status_event;
pub mod note;
pub mod organization;
pub mod presence_connection;
pub mod queue;
pub mod queue_member;
pub mod send_throttle;
pub mod tag;
pub mod team;
pub mod team_member;
pub mod user;
pub mod user_presence;
