//! GraphQL types, queries and mutations of messages.

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, Union, Upload,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::{self, DeliveryStatus, InboundMessage, MessageOrder, Reaction, SendMessage};
use crate::attachments::graphql::Attachment;
use crate::attachments::service::IncomingFile;
use crate::auth::Permission;
use crate::contacts::graphql::Contact;
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ById, ContextExt, batch_loader, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;
use crate::users::graphql::User;

batch_loader!(
    MessageAttachments,
    Vec<entity::attachment::Model>,
    crate::attachments::service::of_messages,
    "Attachments per message, batched."
);
batch_loader!(
    MessageReactions,
    Vec<entity::message_reaction::Model>,
    service::reactions,
    "Reactions per message, batched."
);
batch_loader!(
    MessageStatusHistory,
    Vec<entity::message_status_event::Model>,
    service::status_history,
    "Delivery status history per message, batched."
);
batch_loader!(
    ConversationReads,
    Vec<entity::conversation_read::Model>,
    service::reads,
    "Read positions per conversation, batched."
);

/// Direction of a message.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "MessageDirection")]
pub enum MessageDirection {
    /// From a contact to the organization.
    Inbound,
    /// From the organization to contacts.
    Outbound,
}

impl MessageDirection {
    /// From the stored name.
    pub fn from_stored(name: &str) -> Self {
        if name == "INBOUND" {
            MessageDirection::Inbound
        } else {
            MessageDirection::Outbound
        }
    }
}

/// Where a message is on its way to the recipient.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "DeliveryStatus", remote = "service::DeliveryStatus")]
pub enum DeliveryStatusGql {
    /// Accepted, waiting to be sent (every outbound message starts here).
    Queued,
    /// Handed to the provider.
    Sent,
    /// The provider confirmed delivery (inbound messages are delivered when recorded).
    Delivered,
    /// The recipient read it.
    Read,
    /// Could not be delivered; `deliveryReason` says why.
    Failed,
    /// A scheduled message canceled before it was due; it is never sent.
    Canceled,
}

/// A reaction to a message.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ReactionType", remote = "service::Reaction")]
pub enum ReactionGql {
    /// Thumbs up.
    Like,
    /// Heart.
    Love,
    /// Laughing.
    Lol,
    /// Surprised.
    Wow,
    /// Sad.
    Sad,
    /// Thumbs down.
    Dislike,
}

/// Order of a conversation's messages.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(name = "MessageOrder", remote = "service::MessageOrder")]
pub enum MessageOrderGql {
    /// Oldest first (reading order).
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// The system as a message author (automatic replies, imports).
#[derive(SimpleObject, Clone)]
pub struct SystemAuthor {
    /// Always `Switchboard`.
    pub name: String,
}

/// Who wrote a message.
#[derive(Union)]
#[allow(clippy::large_enum_variant)]
pub enum MessageAuthor {
    /// A staff user.
    User(User),
    /// A contact.
    Contact(Contact),
    /// The system.
    System(SystemAuthor),
}

/// A staff user or a contact.
#[derive(Union)]
#[allow(clippy::large_enum_variant)]
pub enum UserOrContact {
    /// A staff user.
    User(User),
    /// A contact.
    Contact(Contact),
}

/// A user or contact by stored kind and id, through the request's loaders; `None` when deleted.
async fn user_or_contact(
    ctx: &Context<'_>,
    kind: &str,
    id: Uuid,
) -> async_graphql::Result<Option<UserOrContact>> {
    let app = ctx.app();
    Ok(if kind == "USER" {
        app.load::<entity::user::Entity>(id)
            .await?
            .map(|m| UserOrContact::User(User(m)))
    } else {
        app.load::<entity::contact::Entity>(id)
            .await?
            .map(|m| UserOrContact::Contact(Contact(m)))
    })
}

/// One step of a message's delivery status history.
#[derive(SimpleObject, Clone)]
pub struct DeliveryStatusChange {
    /// The status reached.
    pub status: DeliveryStatusGql,
    /// Why (for failures, the provider's reason), if known.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A reaction.
pub struct MessageReaction(entity::message_reaction::Model);

/// Someone's reaction to a message.
#[Object]
impl MessageReaction {
    /// The reaction.
    async fn reaction(&self) -> ReactionGql {
        Reaction::parse(&self.0.reaction)
            .unwrap_or(Reaction::Like)
            .into()
    }

    /// Who reacted; null when they were deleted.
    async fn reactor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserOrContact>> {
        user_or_contact(ctx, &self.0.reactor_kind, self.0.reactor_id).await
    }

    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// How many times a message got one reaction.
#[derive(SimpleObject, Clone)]
pub struct ReactionCount {
    /// The reaction.
    pub reaction: ReactionGql,
    /// How many reacted so.
    pub count: i32,
}

/// A read receipt.
pub struct ReadReceipt(entity::conversation_read::Model);

/// Someone (a user or a contact) who read a message.
#[Object]
impl ReadReceipt {
    /// Who read it; null when they were deleted.
    async fn reader(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserOrContact>> {
        user_or_contact(ctx, &self.0.reader_kind, self.0.reader_id).await
    }

    /// How far the reader has read the conversation (at or after the message).
    async fn read_at(&self) -> DateTime<Utc> {
        self.0.last_read_at
    }
}

/// A message in a conversation.
#[derive(Clone)]
pub struct Message(pub entity::message::Model);

impl Message {
    fn hidden(&self) -> bool {
        self.0.removed_at.is_some()
    }

    fn personal_data_erased(&self) -> bool {
        self.0.anonymized_at.is_some()
    }

    fn addresses(&self, value: &Option<serde_json::Value>) -> Vec<String> {
        if self.personal_data_erased() {
            return Vec::new();
        }
        value
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    async fn reaction_rows(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<entity::message_reaction::Model>> {
        Ok(ctx
            .app()
            .loader::<MessageReactions>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
    }
}

/// A message in a conversation: text and/or HTML with attachments by a user, a contact or the
/// system, with its delivery status, reactions and read receipts. A removed message keeps its
/// place with its content hidden (null); a redacted one has its content erased.
#[Object]
impl Message {
    /// Globally unique id.
    pub async fn id(&self) -> ID {
        encode_id("Message", self.0.id)
    }

    /// The conversation it belongs to.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        Ok(ctx
            .app()
            .load::<entity::conversation::Entity>(self.0.conversation_id)
            .await?
            .map(Conversation))
    }

    /// Inbound (from a contact) or outbound.
    async fn direction(&self) -> MessageDirection {
        MessageDirection::from_stored(&self.0.direction)
    }

    /// Plain text body; null when removed or redacted.
    async fn text(&self) -> Option<&str> {
        (!self.hidden()).then_some(self.0.text_body.as_deref())?
    }

    /// HTML body; null when removed or redacted.
    async fn html(&self) -> Option<&str> {
        (!self.hidden()).then_some(self.0.html_body.as_deref())?
    }

    /// Email subject (email channels); null when removed or redacted.
    async fn email_subject(&self) -> Option<&str> {
        (!self.hidden() && !self.personal_data_erased())
            .then_some(self.0.email_subject.as_deref())?
    }

    /// Sender address: an email address or E.164 number, by channel type.
    async fn from(&self) -> Option<&str> {
        (!self.personal_data_erased()).then_some(self.0.from_address.as_deref())?
    }

    /// Recipients.
    async fn to(&self) -> Vec<String> {
        self.addresses(&self.0.to_addresses)
    }

    /// Copy recipients (email).
    async fn cc(&self) -> Vec<String> {
        self.addresses(&self.0.cc_addresses)
    }

    /// Blind copy recipients (email).
    async fn bcc(&self) -> Vec<String> {
        self.addresses(&self.0.bcc_addresses)
    }

    /// The client's id for it, unique in the organization (makes sending idempotent).
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }

    /// Who wrote it; null when the author was deleted.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MessageAuthor>> {
        let app = ctx.app();
        Ok(match (self.0.author_user_id, self.0.author_contact_id) {
            (Some(id), _) => app
                .load::<entity::user::Entity>(id)
                .await?
                .map(|m| MessageAuthor::User(User(m))),
            (None, Some(id)) => app
                .load::<entity::contact::Entity>(id)
                .await?
                .map(|m| MessageAuthor::Contact(Contact(m))),
            (None, None) if self.0.author_kind == "SYSTEM" => {
                Some(MessageAuthor::System(SystemAuthor {
                    name: "Switchboard".into(),
                }))
            }
            (None, None) => None,
        })
    }

    /// Current delivery status.
    async fn delivery_status(&self) -> DeliveryStatusGql {
        DeliveryStatus::parse(&self.0.delivery_status).into()
    }

    /// Why it failed (or the provider's last remark), if known.
    async fn delivery_reason(&self) -> Option<&str> {
        self.0.delivery_reason.as_deref()
    }

    /// Every delivery status it went through, oldest first.
    async fn delivery_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<DeliveryStatusChange>> {
        let rows = ctx
            .app()
            .loader::<MessageStatusHistory>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| DeliveryStatusChange {
                status: DeliveryStatus::parse(&r.status).into(),
                reason: r.reason,
                at: r.created_at,
            })
            .collect())
    }

    /// Attached files, in upload order; empty when removed or redacted.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Attachment>> {
        if self.hidden() {
            return Ok(Vec::new());
        }
        let rows = ctx
            .app()
            .loader::<MessageAttachments>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Attachment).collect())
    }

    /// Reactions, oldest first.
    async fn reactions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MessageReaction>> {
        Ok(self
            .reaction_rows(ctx)
            .await?
            .into_iter()
            .map(MessageReaction)
            .collect())
    }

    /// How many of each reaction it got (reactions it did not get are left out).
    async fn reaction_counts(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ReactionCount>> {
        let rows = self.reaction_rows(ctx).await?;
        Ok(Reaction::ALL
            .into_iter()
            .filter_map(|reaction| {
                let count = rows
                    .iter()
                    .filter(|r| r.reaction == reaction.as_str())
                    .count();
                (count > 0).then(|| ReactionCount {
                    reaction: reaction.into(),
                    count: i32::try_from(count).unwrap_or(i32::MAX),
                })
            })
            .collect())
    }

    /// Who has read it (users and contacts whose read position in the conversation is at or
    /// after it), its author left out; earliest reader first.
    async fn read_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ReadReceipt>> {
        let reads = ctx
            .app()
            .loader::<ConversationReads>()?
            .load_one(self.0.conversation_id)
            .await?
            .unwrap_or_default();
        let author = self.0.author_user_id.or(self.0.author_contact_id);
        Ok(reads
            .into_iter()
            .filter(|r| r.last_read_at >= self.0.created_at && Some(r.reader_id) != author)
            .map(ReadReceipt)
            .collect())
    }

    /// When its body was last edited.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }

    /// When its content was redacted.
    async fn redacted_at(&self) -> Option<DateTime<Utc>> {
        self.0.redacted_at
    }

    /// When it was removed.
    async fn removed_at(&self) -> Option<DateTime<Utc>> {
        self.0.removed_at
    }

    /// When it is to be sent, if it was scheduled.
    async fn scheduled_at(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_at
    }

    /// When it was created (sent or received).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Loads the nested data a page of messages selects (authors, conversation, attachments,
/// reactions and reactors, delivery history, read receipts and readers) with a fixed number of
/// queries each and feeds the request's loaders, so the statement count does not depend on the
/// page size.
async fn prefetch(
    ctx: &Context<'_>,
    messages: &[entity::message::Model],
) -> async_graphql::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let selects = |path: &[&str]| page_selects(ctx, path);
    let app = ctx.app();
    let org_id = app.principal()?.org_id;
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let conversation_ids = crate::tenancy::distinct(
        &messages
            .iter()
            .map(|m| m.conversation_id)
            .collect::<Vec<_>>(),
    );
    let mut users: Vec<Uuid> = Vec::new();
    let mut contacts: Vec<Uuid> = Vec::new();
    let mut add = |kind: &str, id: Uuid| {
        if kind == "USER" {
            users.push(id);
        } else {
            contacts.push(id);
        }
    };
    if selects(&["author"]) {
        for m in messages {
            if let Some(id) = m.author_user_id {
                add("USER", id);
            }
            if let Some(id) = m.author_contact_id {
                add("CONTACT", id);
            }
        }
    }
    if selects(&["conversation"]) {
        app.loader::<ById<entity::conversation::Entity>>()?
            .load_many(conversation_ids.iter().copied())
            .await?;
    }
    if selects(&["attachments"]) {
        let mut map = crate::attachments::service::of_messages(app.db(), org_id, &ids).await?;
        app.loader::<MessageAttachments>()?
            .feed_many(
                ids.iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
    }
    if selects(&["deliveryHistory"]) {
        let mut map = service::status_history(app.db(), org_id, &ids).await?;
        app.loader::<MessageStatusHistory>()?
            .feed_many(
                ids.iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
    }
    if selects(&["reactions"]) || selects(&["reactionCounts"]) {
        let mut map = service::reactions(app.db(), org_id, &ids).await?;
        if selects(&["reactions", "reactor"]) {
            for r in map.values().flatten() {
                add(&r.reactor_kind, r.reactor_id);
            }
        }
        app.loader::<MessageReactions>()?
            .feed_many(
                ids.iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
    }
    if selects(&["readBy"]) {
        let mut map = service::reads(app.db(), org_id, &conversation_ids).await?;
        if selects(&["readBy", "reader"]) {
            for r in map.values().flatten() {
                add(&r.reader_kind, r.reader_id);
            }
        }
        app.loader::<ConversationReads>()?
            .feed_many(
                conversation_ids
                    .iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
    }
    if !users.is_empty() {
        app.loader::<ById<entity::user::Entity>>()?
            .load_many(crate::tenancy::distinct(&users))
            .await?;
    }
    if !contacts.is_empty() {
        app.loader::<ById<entity::contact::Entity>>()?
            .load_many(crate::tenancy::distinct(&contacts))
            .await?;
    }
    Ok(())
}

/// A page of a conversation's messages (the `messages` field of `Conversation`).
pub async fn messages_connection(
    ctx: &Context<'_>,
    conversation_id: Uuid,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
    order: Option<MessageOrderGql>,
) -> async_graphql::Result<Connection<Message>> {
    let app = ctx.app();
    let args = PageArgs {
        after,
        before,
        first,
        last,
    };
    let order: MessageOrder = order.unwrap_or_default().into();
    let (page, total) =
        service::list(app.db(), app.principal()?, conversation_id, order, &args).await?;
    let models: Vec<entity::message::Model> = page.items.iter().map(|(_, m)| m.clone()).collect();
    prefetch(ctx, &models).await?;
    Ok(Connection::new(page.map(Message), total))
}

/// Message queries.
#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// A message by id; null when there is none.
    async fn message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The message's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Message>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkConversations)?;
        let id = decode_id(&id, "Message")?;
        Ok(app.load::<entity::message::Entity>(id).await?.map(Message))
    }
}

/// An outbound message to send.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The conversation.
    pub conversation_id: ID,
    /// Plain text body (SMS: at most 1,600 characters).
    pub text: Option<String>,
    /// HTML body (not on SMS and WhatsApp).
    pub html: Option<String>,
    /// Email subject (email channels only).
    pub email_subject: Option<String>,
    /// Recipients: email addresses or E.164 numbers by channel type; by default the requester's.
    pub to: Option<Vec<String>>,
    /// Copy recipients (email channels only).
    pub cc: Option<Vec<String>>,
    /// Blind copy recipients (email channels only).
    pub bcc: Option<Vec<String>>,
    /// Sender address; by default the channel's address.
    pub from: Option<String>,
    /// Files to attach (at most 10; send the request as multipart/form-data per the GraphQL
    /// multipart request specification).
    pub attachments: Option<Vec<Upload>>,
    /// Your id for the message, unique in the organization: a retry with the same id returns the
    /// first message instead of sending again.
    pub external_id: Option<String>,
    /// When to send it, if later; must be in the future.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// An inbound message to record.
#[derive(InputObject)]
pub struct RecordInboundMessageInput {
    /// The conversation; the message comes from its requester.
    pub conversation_id: ID,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body (not on SMS and WhatsApp).
    pub html: Option<String>,
    /// Sender address; by default the requester's email address or phone number.
    pub from: Option<String>,
    /// Recipients; by default the channel's address.
    pub to: Option<Vec<String>>,
    /// Email subject (email channels only).
    pub email_subject: Option<String>,
    /// The provider's id for the message, unique in the organization: recording it again returns
    /// the first message.
    pub external_id: Option<String>,
    /// When it was received; now by default.
    pub received_at: Option<DateTime<Utc>>,
}

/// A new body for a message.
#[derive(InputObject)]
pub struct EditMessageInput {
    /// The message (outbound, written by the caller).
    pub message_id: ID,
    /// New plain text; omitted keeps it, null clears it.
    pub text: MaybeUndefined<String>,
    /// New HTML; omitted keeps it, null clears it.
    pub html: MaybeUndefined<String>,
}

/// A message to redact.
#[derive(InputObject)]
pub struct RedactMessageInput {
    /// The message.
    pub message_id: ID,
    /// Why (kept in the activity log); at most 500 characters.
    pub reason: Option<String>,
}

/// A scheduled message to cancel.
#[derive(InputObject)]
pub struct CancelScheduledMessageInput {
    /// The message.
    pub message_id: ID,
}

/// A message to remove.
#[derive(InputObject)]
pub struct RemoveMessageInput {
    /// The message.
    pub message_id: ID,
}

/// The caller's reaction to a message.
#[derive(InputObject)]
pub struct ReactionInput {
    /// The message.
    pub message_id: ID,
    /// The reaction.
    pub reaction: ReactionGql,
}

/// A contact's read receipt.
#[derive(InputObject)]
pub struct RecordReadReceiptInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The contact who read it: the requester or a contact participant.
    pub contact_id: ID,
    /// How far they read; now by default; not in the future.
    pub read_at: Option<DateTime<Utc>>,
}

/// Result of a mutation on one message.
#[derive(SimpleObject)]
pub struct MessagePayload {
    /// The message after the change; null when it failed.
    pub message: Option<Message>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl MessagePayload {
    fn from(result: AppResult<entity::message::Model>) -> async_graphql::Result<Self> {
        let (message, user_errors) = split(result)?;
        Ok(Self {
            message: message.map(Message),
            user_errors,
        })
    }
}

/// Result of recording a read receipt.
#[derive(SimpleObject)]
pub struct RecordReadReceiptPayload {
    /// The conversation; null when it failed.
    pub conversation: Option<Conversation>,
    /// The contact's read position after the call (it never moves backwards).
    pub read_at: Option<DateTime<Utc>>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

fn uploads(ctx: &Context<'_>, uploads: Option<Vec<Upload>>) -> AppResult<Vec<IncomingFile>> {
    uploads
        .unwrap_or_default()
        .iter()
        .map(|upload| {
            let value = upload.value(ctx).map_err(AppError::internal)?;
            let size = value.content.metadata().map_err(AppError::internal)?.len();
            Ok(IncomingFile {
                filename: value.filename,
                content_type: value.content_type,
                file: value.content,
                size,
            })
        })
        .collect()
}

/// Message mutations.
#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Sends an outbound message by the caller, `QUEUED` for delivery, with attachments
    /// (AGENT). Refused on archived channels, to contacts who opted out of SMS or WhatsApp, and
    /// in anonymized conversations. With an `externalId` a retry returns the first message.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SendMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        let files = uploads(ctx, input.attachments)?;
        let result = match input_id("conversationId", &input.conversation_id, "Conversation") {
            Ok(conversation_id) => {
                let send = SendMessage {
                    conversation_id,
                    text: input.text,
                    html: input.html,
                    email_subject: input.email_subject,
                    to: input.to,
                    cc: input.cc,
                    bcc: input.bcc,
                    from: input.from,
                    external_id: input.external_id,
                    scheduled_at: input.scheduled_at,
                };
                service::send(app.db(), &app.state.config, principal, send, files).await
            }
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Records a message received from the conversation's requester, `DELIVERED`; reopens a
    /// pending or closed conversation (AGENT). With an `externalId` recording it again returns
    /// the first message.
    async fn record_inbound_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RecordInboundMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("conversationId", &input.conversation_id, "Conversation") {
            Ok(conversation_id) => {
                let inbound = InboundMessage {
                    conversation_id,
                    text: input.text,
                    html: input.html,
                    from: input.from,
                    to: input.to,
                    email_subject: input.email_subject,
                    external_id: input.external_id,
                    received_at: input.received_at,
                    ..Default::default()
                };
                service::record_inbound(app.db(), &app.state.config, principal, inbound).await
            }
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Changes the body of an outbound message the caller wrote (AGENT); removed and redacted
    /// messages cannot be edited.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: EditMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => {
                service::edit(
                    app.db(),
                    &app.state.config,
                    principal,
                    id,
                    patch(input.text),
                    patch(input.html),
                )
                .await
            }
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Erases a message's text, HTML, subject and attachments; the message keeps its place with
    /// `redactedAt` set (AGENT).
    async fn redact_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RedactMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => {
                service::redact(app.db(), &app.state.config, principal, id, input.reason).await
            }
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Removes a message: it keeps its place with `removedAt` set and its content hidden
    /// (AGENT).
    async fn remove_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RemoveMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => service::remove(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Cancels a scheduled outbound message before it is due (AGENT): it becomes `CANCELED`
    /// and is never sent. Messages already due, sent or not scheduled are refused with
    /// `INVALID_STATE`.
    async fn cancel_scheduled_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CancelScheduledMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => service::cancel_scheduled(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Adds the caller's reaction to a message; adding it twice changes nothing (AGENT).
    /// Removed and redacted messages take no reactions.
    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ReactionInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => service::add_reaction(app.db(), principal, id, input.reaction.into()).await,
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Removes the caller's reaction from a message; removing one that is not there changes
    /// nothing (AGENT).
    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ReactionInput,
    ) -> async_graphql::Result<MessagePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("messageId", &input.message_id, "Message") {
            Ok(id) => {
                service::remove_reaction(app.db(), principal, id, input.reaction.into()).await
            }
            Err(e) => Err(e),
        };
        MessagePayload::from(result)
    }

    /// Records that a contact of a conversation (its requester or a contact participant) read
    /// it up to `readAt`; read positions never move backwards (AGENT).
    async fn record_read_receipt(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RecordReadReceiptInput,
    ) -> async_graphql::Result<RecordReadReceiptPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let ids = input_id("conversationId", &input.conversation_id, "Conversation").and_then(
            |conversation| {
                Ok((
                    conversation,
                    input_id("contactId", &input.contact_id, "Contact")?,
                ))
            },
        );
        let result = match ids {
            Ok((conversation, contact)) => {
                service::record_read_receipt(
                    app.db(),
                    principal,
                    conversation,
                    contact,
                    input.read_at,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let (done, user_errors) = split(result)?;
        let (conversation, read_at) = match done {
            Some((conversation, read_at)) => (Some(Conversation(conversation)), Some(read_at)),
            None => (None, None),
        };
        Ok(RecordReadReceiptPayload {
            conversation,
            read_at,
            user_errors,
        })
    }
}
