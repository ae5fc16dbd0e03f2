//! Typing indicators: `setTyping` sends a signal (never stored) that `typing(conversationId)`
//! subscribers of every instance receive. An indicator lapses at its `expiresAt` unless renewed:
//! a client typing for longer calls `setTyping` again before then.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::bus::{EventBus, Signal};
use crate::auth::{Permission, Principal};
use crate::conversations::graphql::Conversation;
use crate::conversations::service::find;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::payload::{UserError, input_id, split};
use crate::users::graphql::User;

/// How long a typing indicator lasts unless renewed.
pub const TYPING_TTL_SECONDS: i64 = 6;

/// Tells the conversation's `typing` subscribers that the caller types (AGENT), until `expires_at`,
/// or stopped. Checks that the caller may see the conversation; stores nothing.
pub async fn set_typing(
    db: &DatabaseConnection,
    bus: &EventBus,
    principal: &Principal,
    conversation_id: Uuid,
    typing: bool,
) -> AppResult<(entity::conversation::Model, DateTime<Utc>)> {
    principal.require(Permission::WorkConversations)?;
    let conversation = find(db, principal.org_id, conversation_id, "conversationId").await?;
    let now = Utc::now();
    let expires_at = if typing {
        now + Duration::seconds(TYPING_TTL_SECONDS)
    } else {
        now
    };
    bus.signal(
        db,
        Signal::Typing {
            org_id: principal.org_id,
            conversation_id,
            user_id: principal.user_id(),
            typing,
            expires_at,
        },
    )
    .await?;
    Ok((conversation, expires_at))
}

/// Input of `setTyping`.
#[derive(InputObject)]
pub struct SetTypingInput {
    /// The conversation typed in.
    pub conversation_id: ID,
    /// `true` while typing (send again before `expiresAt` to keep the indicator), `false` when
    /// stopped.
    #[graphql(default = true)]
    pub typing: bool,
}

/// Result of `setTyping`.
#[derive(SimpleObject)]
pub struct SetTypingPayload {
    /// The conversation; null when it failed.
    pub conversation: Option<Conversation>,
    /// When the indicator lapses unless renewed (now when `typing` was false); null when it
    /// failed.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The typing mutation.
#[derive(Default)]
pub struct TypingMutation;

#[Object]
impl TypingMutation {
    /// Shows the conversation's viewers that the caller is typing (AGENT), or that they stopped.
    /// Nothing is stored: subscribers of `typing` connected now receive it.
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetTypingInput,
    ) -> Result<SetTypingPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("conversationId", &input.conversation_id, "Conversation") {
            Ok(id) => set_typing(app.db(), &app.state.bus, principal, id, input.typing).await,
            Err(e) => Err(e),
        };
        let (done, user_errors) = split(result)?;
        let (conversation, expires_at) = match done {
            Some((conversation, at)) => (Some(Conversation(conversation)), Some(at)),
            None => (None, None),
        };
        Ok(SetTypingPayload {
            conversation,
            expires_at,
            user_errors,
        })
    }
}

/// Someone started or stopped typing in a conversation.
pub struct TypingEvent {
    conversation_id: Uuid,
    user_id: Uuid,
    typing: bool,
    expires_at: DateTime<Utc>,
}

/// Someone started or stopped typing in a conversation.
#[Object]
impl TypingEvent {
    /// The conversation's id.
    async fn conversation_id(&self) -> ID {
        crate::graphql::relay::encode_id("Conversation", self.conversation_id)
    }

    /// Who types; null for a user deleted since.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx
            .app()
            .load::<entity::user::Entity>(self.user_id)
            .await?
            .map(User))
    }

    /// Typing (`true`) or stopped (`false`).
    async fn typing(&self) -> bool {
        self.typing
    }

    /// When the indicator lapses unless a new event renews it.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// The typing subscription.
#[derive(Default)]
pub struct TypingSubscription;

/// Typing indicators.
#[Subscription]
impl TypingSubscription {
    /// Who starts and stops typing in a conversation (AGENT), from `setTyping` on any instance.
    /// Typing is not stored, so there is nothing to resume: the subscription takes no `after`.
    async fn typing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conversation.")] conversation_id: ID,
    ) -> Result<impl Stream<Item = TypingEvent> + use<>> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        let id = super::graphql::existing::<entity::conversation::Entity>(
            app,
            Some(conversation_id),
            "Conversation",
            "conversation",
        )
        .await?
        .ok_or_else(|| AppError::NotFound("conversation".into()))?;
        let org_id = principal.org_id;
        let receiver = app.state.bus.subscribe_signals();
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(async_graphql::futures_util::stream::unfold(
            receiver,
            move |mut receiver: broadcast::Receiver<Arc<Signal>>| {
                let app = app.clone();
                async move {
                    loop {
                        let signal = match receiver.recv().await {
                            Ok(signal) => signal,
                            // Missed indicators lapse by themselves.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        };
                        let Signal::Typing {
                            org_id: signal_org,
                            conversation_id,
                            user_id,
                            typing,
                            expires_at,
                        } = *signal;
                        if signal_org != org_id || conversation_id != id {
                            continue;
                        }
                        app.forget_loaded();
                        let event = TypingEvent {
                            conversation_id,
                            user_id,
                            typing,
                            expires_at,
                        };
                        return Some((event, receiver));
                    }
                }
            },
        ))
    }
}
