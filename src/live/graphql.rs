//! GraphQL subscriptions over the event bus. Each subscription first replays the organization's
//! committed events after its `after` cursor from the event log, then continues with live events,
//! skipping any it already replayed: no gap, no duplicate.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::{conversation, event, message};
use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::bus::{self, EventBus};
use crate::auth::Permission;
use crate::conversations::event_types;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::relay::decode_id;
use crate::messages::graphql::Message;
use crate::tenancy;

/// Items a subscription may have produced and not yet sent before it waits for its client.
const SUBSCRIBER_BUFFER: usize = 64;

const CURSOR_PREFIX: &str = "event:";

/// The cursor of the event with sequence `seq`.
pub(crate) fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

/// The sequence of a cursor; `BAD_USER_INPUT` for anything [`encode_cursor`] did not make.
pub(crate) fn decode_cursor(cursor: &str) -> AppResult<i64> {
    let forged = || AppError::BadUserInput(format!("`after` is not an event cursor: {cursor:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| forged())?;
    let text = String::from_utf8(bytes).map_err(|_| forged())?;
    text.strip_prefix(CURSOR_PREFIX)
        .and_then(|seq| seq.parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
        .ok_or_else(forged)
}

/// A message added to a conversation.
#[derive(SimpleObject)]
pub struct MessageAddedEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// The message as it is now.
    message: Message,
}

/// The message subscriptions.
#[derive(Default)]
pub struct MessageSubscription;

/// Messages as they are added and changed.
#[Subscription]
impl MessageSubscription {
    /// Messages added to conversations of the caller's organization (AGENT): of one
    /// conversation, of one channel, or all. With `after`, first the messages added after that
    /// cursor (still in the event log), then live ones.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only messages of this conversation.")] conversation_id: Option<ID>,
        #[graphql(desc = "Only messages of conversations on this channel.")] channel_id: Option<ID>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<MessageAddedEvent>> + use<>> {
        message_stream(
            ctx,
            ADDED,
            conversation_id,
            channel_id,
            after,
            |seq, _, model| MessageAddedEvent {
                cursor: encode_cursor(seq),
                message: Message(model),
            },
        )
        .await
    }

    /// Messages of the caller's organization that changed (AGENT): edited, redacted, removed, a
    /// reaction added or removed, the delivery status moved. By conversation, channel, or all;
    /// with `after`, first the changes after that cursor, then live ones. The message is given as
    /// it is when the event is delivered.
    async fn message_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only messages of this conversation.")] conversation_id: Option<ID>,
        #[graphql(desc = "Only messages of conversations on this channel.")] channel_id: Option<ID>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<MessageUpdatedEvent>> + use<>> {
        message_stream(
            ctx,
            UPDATED,
            conversation_id,
            channel_id,
            after,
            |seq, event_type, model| MessageUpdatedEvent {
                cursor: encode_cursor(seq),
                change: MessageChange::of(event_type),
                message: Message(model),
            },
        )
        .await
    }
}

/// The event types of `messageAdded`.
const ADDED: &[&str] = &[event_types::MESSAGE_ADDED];

/// The event types of `messageUpdated`.
const UPDATED: &[&str] = &[
    event_types::MESSAGE_EDITED,
    event_types::MESSAGE_REDACTED,
    event_types::MESSAGE_REMOVED,
    event_types::REACTION_ADDED,
    event_types::REACTION_REMOVED,
    event_types::MESSAGE_STATUS_CHANGED,
];

/// What changed in a message.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageChange {
    /// Its text or HTML was edited.
    Edited,
    /// Its content was redacted.
    Redacted,
    /// It was removed.
    Removed,
    /// A reaction was added.
    ReactionAdded,
    /// A reaction was removed.
    ReactionRemoved,
    /// Its delivery status moved.
    StatusChanged,
}

impl MessageChange {
    fn of(event_type: &str) -> Self {
        match event_type {
            event_types::MESSAGE_EDITED => Self::Edited,
            event_types::MESSAGE_REDACTED => Self::Redacted,
            event_types::MESSAGE_REMOVED => Self::Removed,
            event_types::REACTION_ADDED => Self::ReactionAdded,
            event_types::REACTION_REMOVED => Self::ReactionRemoved,
            _ => Self::StatusChanged,
        }
    }
}

/// A change to a message.
#[derive(SimpleObject)]
pub struct MessageUpdatedEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What changed.
    change: MessageChange,
    /// The message as it is now.
    message: Message,
}

/// A stream of the message events of `types` the caller may see, checked and started as the
/// message subscriptions' arguments say, each mapped by `make` from (sequence, event type,
/// message).
async fn message_stream<T: Send + 'static>(
    ctx: &Context<'_>,
    types: &'static [&'static str],
    conversation_id: Option<ID>,
    channel_id: Option<ID>,
    after: Option<String>,
    make: fn(i64, &str, message::Model) -> T,
) -> Result<impl Stream<Item = Result<T>> + use<T>> {
    let app = ctx.app();
    let principal = app.principal()?.clone();
    principal.require(Permission::WorkConversations)?;
    let db = app.db().clone();
    let org_id = principal.org_id;
    let conversation =
        existing::<conversation::Entity>(app, conversation_id, "Conversation", "conversation")
            .await?;
    let channel =
        existing::<entity::channel::Entity>(app, channel_id, "Channel", "channel").await?;
    let filter = MessageFilter {
        org_id,
        types,
        conversation,
        channel,
    };
    let start = start(&db, &app.state.bus, after.as_deref()).await?;
    let app = ctx.data::<Arc<RequestCtx>>()?.clone();
    Ok(stream(db, start, org_id, app, move |db, event| {
        let filter = filter.clone();
        async move {
            Ok(filter
                .message(&db, &event)
                .await?
                .map(|model| make(event.seq, &event.event_type, model)))
        }
    }))
}

/// The id of an optional filter argument naming an `E` of the caller's organization;
/// `NOT_FOUND` (as `what`) when there is none.
pub(crate) async fn existing<E>(
    app: &RequestCtx,
    id: Option<ID>,
    type_name: &str,
    what: &'static str,
) -> AppResult<Option<Uuid>>
where
    E: tenancy::OrgScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    let Some(id) = id else {
        return Ok(None);
    };
    let id = decode_id(&id, type_name)?;
    match app.load::<E>(id).await? {
        Some(_) => Ok(Some(id)),
        None => Err(AppError::NotFound(what.into())),
    }
}

/// Where a stream starts: the cursor's sequence (checked against the log's end), or the log's
/// end. The receiver is subscribed before the end is read, so nothing committed in between is
/// missed.
pub(crate) struct Start {
    receiver: broadcast::Receiver<Arc<event::Model>>,
    after: i64,
}

pub(crate) async fn start(
    db: &DatabaseConnection,
    bus: &EventBus,
    after: Option<&str>,
) -> AppResult<Start> {
    let receiver = bus.subscribe();
    let end = bus::last_seq(db).await?;
    match after {
        Some(cursor) => {
            let after = decode_cursor(cursor)?;
            if after > end {
                return Err(AppError::BadUserInput(
                    "`after` is a cursor from the future: no such event yet".into(),
                ));
            }
            Ok(Start { receiver, after })
        }
        None => Ok(Start {
            receiver,
            after: end,
        }),
    }
}

#[derive(Clone)]
struct MessageFilter {
    org_id: Uuid,
    types: &'static [&'static str],
    conversation: Option<Uuid>,
    channel: Option<Uuid>,
}

impl MessageFilter {
    async fn message(
        &self,
        db: &DatabaseConnection,
        event: &event::Model,
    ) -> AppResult<Option<message::Model>> {
        if !self.types.contains(&event.event_type.as_str())
            || self.conversation.is_some_and(|c| c != event.subject_id)
        {
            return Ok(None);
        }
        let Some(id) = event
            .payload
            .get("messageId")
            .and_then(|v| v.as_str())
            .and_then(|v| Uuid::parse_str(v).ok())
        else {
            return Ok(None);
        };
        let Some(model) = tenancy::by_id::<message::Entity>(self.org_id, id)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        if let Some(channel) = self.channel {
            let on_channel =
                tenancy::by_id::<conversation::Entity>(self.org_id, model.conversation_id)
                    .one(db)
                    .await?
                    .is_some_and(|c| c.channel_id == Some(channel));
            if !on_channel {
                return Ok(None);
            }
        }
        Ok(Some(model))
    }
}

/// Sends what an event mapped to (nothing when it was skipped); `false` when the stream is over:
/// the subscriber left, or an error was sent (which ends it).
async fn forward<T>(sender: &mpsc::Sender<Result<T>>, mapped: AppResult<Option<T>>) -> bool {
    match mapped {
        Ok(None) => true,
        Ok(Some(item)) => sender.send(Ok(item)).await.is_ok(),
        Err(error) => {
            let _ = sender.send(Err(error.into())).await;
            false
        }
    }
}

/// The events of `org_id`'s organization after `start`, replayed then live, mapped by `map`
/// (`None` skips an event). A subscriber that falls behind the bus gets an error telling it to
/// resume with its last cursor, and the stream ends.
pub(crate) fn stream<T, F, Fut>(
    db: DatabaseConnection,
    start: Start,
    org_id: Uuid,
    app: Arc<RequestCtx>,
    map: F,
) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    F: Fn(DatabaseConnection, Arc<event::Model>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<Option<T>>> + Send,
{
    let (sender, receiver) = mpsc::channel::<Result<T>>(SUBSCRIBER_BUFFER);
    tokio::spawn(async move {
        let Start {
            mut receiver,
            after: mut last,
        } = start;
        // What committed after the start (for a fresh subscription, usually nothing).
        loop {
            let rows = match bus::after(&db, Some(org_id), last, bus::READ_BATCH).await {
                Ok(rows) => rows,
                Err(error) => {
                    let _ = sender.send(Err(error.into())).await;
                    return;
                }
            };
            let full = rows.len() as u64 == bus::READ_BATCH;
            for row in rows {
                last = row.seq;
                if !forward(&sender, map(db.clone(), Arc::new(row)).await).await {
                    return;
                }
            }
            if !full {
                break;
            }
        }
        loop {
            let received = tokio::select! {
                () = sender.closed() => return,
                received = receiver.recv() => received,
            };
            let event = match received {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let _ = sender
                        .send(Err(AppError::Conflict(format!(
                            "this subscriber fell {missed} events behind and was stopped; \
                             subscribe again with `after` set to the last cursor received"
                        ))
                        .into()))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if event.seq <= last {
                continue;
            }
            last = event.seq;
            if event.org_id != org_id {
                continue;
            }
            if !forward(&sender, map(db.clone(), event).await).await {
                return;
            }
        }
    });
    async_graphql::futures_util::stream::unfold(receiver, move |mut receiver| {
        let app = app.clone();
        async move {
            let item = receiver.recv().await?;
            // The event's fields are resolved after this returns: from fresh loaders.
            app.forget_loaded();
            Some((item, receiver))
        }
    })
}
