//! GraphQL types, queries, mutations and the `roomChanged` subscription of rooms.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::{room, room_participant, room_recording};
use uuid::Uuid;

use super::event_types as t;
use super::service::{self, Audio, Kind, ParticipantStatus, RecordingStatus, RoomFilter, State};
use crate::auth::Permission;
use crate::contacts::graphql::Contact;
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx, batch_loader};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::live::graphql::{encode_cursor, start, stream};
use crate::users::graphql::User;

batch_loader!(
    RoomParticipants,
    Vec<room_participant::Model>,
    service::participants,
    "Participants per room, batched."
);
batch_loader!(
    RoomRecordings,
    Vec<room_recording::Model>,
    service::recordings,
    "Recordings per room, batched."
);

/// What a room carries.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RoomKind")]
pub enum RoomKindGql {
    /// A voice conference.
    Voice,
    /// A video room.
    Video,
}

impl From<RoomKindGql> for Kind {
    fn from(k: RoomKindGql) -> Self {
        match k {
            RoomKindGql::Voice => Self::Voice,
            RoomKindGql::Video => Self::Video,
        }
    }
}

impl From<Kind> for RoomKindGql {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Voice => Self::Voice,
            Kind::Video => Self::Video,
        }
    }
}

/// Where a room stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RoomState")]
pub enum RoomStateGql {
    /// Waiting for its start; it opens then, or when someone joins up to 10 minutes early.
    Scheduled,
    /// Open: participants may join.
    Open,
    /// Over: it stayed empty past the grace period, or reached its planned end.
    Completed,
    /// Ended by a user (`terminateRoom`).
    Terminated,
    /// The provider reported a failure; see `failureReason`.
    Failed,
}

impl From<State> for RoomStateGql {
    fn from(s: State) -> Self {
        match s {
            State::Scheduled => Self::Scheduled,
            State::Open => Self::Open,
            State::Completed => Self::Completed,
            State::Terminated => Self::Terminated,
            State::Failed => Self::Failed,
        }
    }
}

impl From<RoomStateGql> for State {
    fn from(s: RoomStateGql) -> Self {
        match s {
            RoomStateGql::Scheduled => Self::Scheduled,
            RoomStateGql::Open => Self::Open,
            RoomStateGql::Completed => Self::Completed,
            RoomStateGql::Terminated => Self::Terminated,
            RoomStateGql::Failed => Self::Failed,
        }
    }
}

/// Where a participant of a room stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RoomParticipantStatus")]
pub enum ParticipantStatusGql {
    /// Invited; has not connected yet.
    Invited,
    /// In the room now.
    Connected,
    /// Was in the room and left (or the room ended).
    Disconnected,
}

impl From<ParticipantStatus> for ParticipantStatusGql {
    fn from(s: ParticipantStatus) -> Self {
        match s {
            ParticipantStatus::Invited => Self::Invited,
            ParticipantStatus::Connected => Self::Connected,
            ParticipantStatus::Disconnected => Self::Disconnected,
        }
    }
}

/// A participant's microphone.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RoomAudioState")]
pub enum AudioGql {
    /// Muted: the others do not hear them.
    Muted,
    /// Unmuted.
    Unmuted,
}

impl From<Audio> for AudioGql {
    fn from(a: Audio) -> Self {
        match a {
            Audio::Muted => Self::Muted,
            Audio::Unmuted => Self::Unmuted,
        }
    }
}

impl From<AudioGql> for Audio {
    fn from(a: AudioGql) -> Self {
        match a {
            AudioGql::Muted => Self::Muted,
            AudioGql::Unmuted => Self::Unmuted,
        }
    }
}

/// Where a recording stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RoomRecordingStatus")]
pub enum RecordingStatusGql {
    /// Being processed (see `processingPercent`).
    Processing,
    /// Ready: duration and size are known.
    Completed,
    /// Could not be processed.
    Failed,
}

impl From<RecordingStatus> for RecordingStatusGql {
    fn from(s: RecordingStatus) -> Self {
        match s {
            RecordingStatus::Processing => Self::Processing,
            RecordingStatus::Completed => Self::Completed,
            RecordingStatus::Failed => Self::Failed,
        }
    }
}

/// A room.
#[derive(Clone)]
pub struct Room(pub room::Model);

/// A voice conference or video room: opened at once or scheduled, with invited and connected
/// participants (users and contacts) and, when recorded, its recordings.
#[Object]
impl Room {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Room", self.0.id)
    }

    /// Voice or video.
    async fn kind(&self) -> RoomKindGql {
        Kind::parse(&self.0.kind).unwrap_or(Kind::Video).into()
    }

    /// Name (the subject of the call).
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where it stands.
    async fn state(&self) -> RoomStateGql {
        service::state_of(&self.0).into()
    }

    /// When it starts (its creation time when it was opened at once).
    async fn scheduled_start(&self) -> DateTime<Utc> {
        self.0.starts_at
    }

    /// Planned length in minutes.
    async fn duration_minutes(&self) -> i32 {
        self.0.duration_minutes
    }

    /// Its planned end (`scheduledStart` + `durationMinutes`): it completes then.
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }

    /// Most participants connected at once.
    async fn max_participants(&self) -> i32 {
        self.0.max_participants
    }

    /// Whether it is recorded (a recording is made when it completes or is terminated).
    async fn recorded(&self) -> bool {
        self.0.recorded
    }

    /// The conversation it belongs to, if any.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        Ok(match self.0.conversation_id {
            Some(id) => ctx
                .app()
                .load::<entity::conversation::Entity>(id)
                .await?
                .map(Conversation),
            None => None,
        })
    }

    /// Its participants (invited, connected and disconnected), in the order they were added.
    async fn participants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoomParticipant>> {
        Ok(ctx
            .app()
            .loader::<RoomParticipants>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(RoomParticipant)
            .collect())
    }

    /// How many participants are connected now.
    async fn connected_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let rows = ctx
            .app()
            .loader::<RoomParticipants>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let connected = ParticipantStatus::Connected.as_str();
        Ok(
            i32::try_from(rows.iter().filter(|p| p.status == connected).count())
                .unwrap_or(i32::MAX),
        )
    }

    /// Its recordings, oldest first.
    async fn recordings(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoomRecording>> {
        Ok(ctx
            .app()
            .loader::<RoomRecordings>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(RoomRecording)
            .collect())
    }

    /// Who created it; null when the user was deleted.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.created_by {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it opened.
    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.0.opened_at
    }

    /// When it completed, was terminated or failed.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }

    /// Why the provider failed it.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }
}

/// A participant of a room.
#[derive(Clone)]
pub struct RoomParticipant(pub room_participant::Model);

/// A user or a contact in a room: invited, connected or disconnected, muted or not.
#[Object]
impl RoomParticipant {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("RoomParticipant", self.0.id)
    }

    /// The room.
    async fn room(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Room>> {
        Ok(ctx
            .app()
            .load::<room::Entity>(self.0.room_id)
            .await?
            .map(Room))
    }

    /// The user, when a staff member takes part.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.user_id {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// The contact, when an end user takes part.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(match self.0.contact_id {
            Some(id) => ctx
                .app()
                .load::<entity::contact::Entity>(id)
                .await?
                .map(Contact),
            None => None,
        })
    }

    /// Where they stand.
    async fn status(&self) -> ParticipantStatusGql {
        ParticipantStatus::parse(&self.0.status)
            .unwrap_or(ParticipantStatus::Disconnected)
            .into()
    }

    /// Their microphone.
    async fn audio(&self) -> AudioGql {
        Audio::parse(&self.0.audio).unwrap_or(Audio::Muted).into()
    }

    /// Who invited them; null when they joined without an invitation.
    async fn invited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.invited_by {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// When they were invited.
    async fn invited_at(&self) -> Option<DateTime<Utc>> {
        self.0.invited_at
    }

    /// When they last connected.
    async fn joined_at(&self) -> Option<DateTime<Utc>> {
        self.0.joined_at
    }

    /// When they last disconnected.
    async fn left_at(&self) -> Option<DateTime<Utc>> {
        self.0.left_at
    }
}

/// A recording of a room.
#[derive(Clone)]
pub struct RoomRecording(pub room_recording::Model);

/// A recording of a recorded room, made when the room completed or was terminated, then
/// processed by the provider.
#[Object]
impl RoomRecording {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("RoomRecording", self.0.id)
    }

    /// The room.
    async fn room(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Room>> {
        Ok(ctx
            .app()
            .load::<room::Entity>(self.0.room_id)
            .await?
            .map(Room))
    }

    /// Where it stands.
    async fn status(&self) -> RecordingStatusGql {
        RecordingStatus::parse(&self.0.status)
            .unwrap_or(RecordingStatus::Failed)
            .into()
    }

    /// How far its processing is, 0–100.
    async fn processing_percent(&self) -> i32 {
        self.0.processing_percent
    }

    /// Length in seconds (the room's connected span); null until processed.
    async fn duration_seconds(&self) -> Option<i64> {
        self.0.duration_seconds
    }

    /// Size in bytes; null until processed.
    async fn size_bytes(&self) -> Option<i64> {
        self.0.size_bytes
    }

    /// When it was made (when the room ended).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When its processing completed.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

/// A participant's provider credentials.
#[derive(SimpleObject)]
pub struct RoomCredentials {
    /// The access token to hand to the provider's client: signed by the provider for this room
    /// and participant.
    pub token: String,
    /// When the token expires (join again for a fresh one).
    pub expires_at: DateTime<Utc>,
    /// The provider that issued it (`simulator` unless a real one is configured).
    pub provider: String,
}

/// Which rooms to list.
#[derive(InputObject, Default)]
pub struct RoomFilterInput {
    /// Only rooms in one of these states.
    pub states: Option<Vec<RoomStateGql>>,
    /// Only rooms of this kind.
    pub kind: Option<RoomKindGql>,
    /// Only rooms with this user among the participants (invited, connected or not).
    pub participant_user_id: Option<ID>,
}

/// Room queries.
#[derive(Default)]
pub struct RoomQuery;

#[Object]
impl RoomQuery {
    /// Rooms, newest first (AGENT).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which rooms.")] filter: Option<RoomFilterInput>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Room>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let participant_user_id = filter
            .participant_user_id
            .map(|id| decode_id(&id, "User"))
            .transpose()?;
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            RoomFilter {
                states: filter
                    .states
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                kind: filter.kind.map(Into::into),
                participant_user_id,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(Room), total))
    }

    /// A room by id; null when there is none (AGENT).
    async fn room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The room's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Room>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkConversations)?;
        let id = decode_id(&id, "Room")?;
        Ok(app.load::<room::Entity>(id).await?.map(Room))
    }
}

/// A new room.
#[derive(InputObject)]
pub struct CreateRoomInput {
    /// Voice conference or video room.
    pub kind: RoomKindGql,
    /// Name (the subject of the call).
    pub name: String,
    /// When it starts (in the future): the room is `SCHEDULED` until then. Leave it out to open
    /// the room now.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Planned length in minutes, 1–1440 (default 60): the room completes at its start plus this.
    pub duration_minutes: Option<i32>,
    /// Most participants connected at once, 2–100 (default 10).
    pub max_participants: Option<i32>,
    /// Whether it is recorded (default false).
    #[graphql(default)]
    pub recorded: bool,
    /// The conversation it belongs to.
    pub conversation_id: Option<ID>,
    /// Users to invite.
    #[graphql(default)]
    pub user_ids: Vec<ID>,
    /// Contacts to invite.
    #[graphql(default)]
    pub contact_ids: Vec<ID>,
}

/// Invites users and contacts to a room.
#[derive(InputObject)]
pub struct InviteToRoomInput {
    /// The room (scheduled or open).
    pub room_id: ID,
    /// Users to invite (at most 100).
    #[graphql(default)]
    pub user_ids: Vec<ID>,
    /// Contacts to invite (at most 100).
    #[graphql(default)]
    pub contact_ids: Vec<ID>,
}

/// Joins or leaves a room: the caller, or a contact on whose behalf the caller acts.
#[derive(InputObject)]
pub struct RoomPresenceInput {
    /// The room.
    pub room_id: ID,
    /// A contact joining or leaving (the caller hands them the credentials); leave it out for
    /// the caller themselves.
    pub contact_id: Option<ID>,
}

/// Mutes or unmutes a participant.
#[derive(InputObject)]
pub struct SetRoomAudioStateInput {
    /// The room.
    pub room_id: ID,
    /// The participant (connected).
    pub participant_id: ID,
    /// The new audio state.
    pub audio: AudioGql,
}

/// Names one room.
#[derive(InputObject)]
pub struct RoomIdInput {
    /// The room.
    pub room_id: ID,
}

/// Result of a mutation on a room.
#[derive(SimpleObject)]
pub struct RoomPayload {
    /// The room after the change; null when it failed.
    pub room: Option<Room>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl RoomPayload {
    fn from(result: AppResult<room::Model>) -> async_graphql::Result<Self> {
        let (room, user_errors) = split(result)?;
        Ok(Self {
            room: room.map(Room),
            user_errors,
        })
    }
}

/// Result of joining a room.
#[derive(SimpleObject)]
pub struct JoinRoomPayload {
    /// The room after the join; null when it failed.
    pub room: Option<Room>,
    /// The connected participant; null when it failed.
    pub participant: Option<RoomParticipant>,
    /// The participant's provider credentials; null when it failed.
    pub credentials: Option<RoomCredentials>,
    /// Why the join was refused (a room that is over or not open yet: `INVALID_STATE`; a full
    /// room: `LIMIT_EXCEEDED`); empty on success.
    pub user_errors: Vec<UserError>,
}

/// Result of a change to one participant.
#[derive(SimpleObject)]
pub struct RoomParticipantPayload {
    /// The room after the change; null when it failed.
    pub room: Option<Room>,
    /// The participant after the change; null when it failed.
    pub participant: Option<RoomParticipant>,
    /// Why the change was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl RoomParticipantPayload {
    fn from(
        result: AppResult<(room::Model, room_participant::Model)>,
    ) -> async_graphql::Result<Self> {
        let (done, user_errors) = split(result)?;
        let (room, participant) = match done {
            Some((room, participant)) => (Some(Room(room)), Some(RoomParticipant(participant))),
            None => (None, None),
        };
        Ok(Self {
            room,
            participant,
            user_errors,
        })
    }
}

fn ids(field: &str, ids: &[ID], type_name: &str) -> AppResult<Vec<Uuid>> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| input_id(&format!("{field}.{i}"), id, type_name))
        .collect()
}

/// Room mutations.
#[derive(Default)]
pub struct RoomMutation;

#[Object]
impl RoomMutation {
    /// Creates a room (AGENT): open now, or `SCHEDULED` with a `scheduledStart` in the future,
    /// inviting the given users and contacts. It completes at its planned end.
    async fn create_room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateRoomInput,
    ) -> async_graphql::Result<RoomPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            let input = service::RoomInput {
                kind: input.kind.into(),
                name: input.name,
                scheduled_start: input.scheduled_start,
                duration_minutes: input.duration_minutes,
                max_participants: input.max_participants,
                recorded: input.recorded,
                conversation_id: input
                    .conversation_id
                    .map(|id| input_id("conversationId", &id, "Conversation"))
                    .transpose()?,
                user_ids: ids("userIds", &input.user_ids, "User")?,
                contact_ids: ids("contactIds", &input.contact_ids, "Contact")?,
            };
            service::create(app.db(), principal, input, now).await
        }
        .await;
        RoomPayload::from(result)
    }

    /// Invites users and contacts to a scheduled or open room (AGENT); those already taking part
    /// stay as they are.
    async fn invite_to_room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: InviteToRoomInput,
    ) -> async_graphql::Result<RoomPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            let room_id = input_id("roomId", &input.room_id, "Room")?;
            let user_ids = ids("userIds", &input.user_ids, "User")?;
            let contact_ids = ids("contactIds", &input.contact_ids, "Contact")?;
            service::invite(app.db(), principal, room_id, &user_ids, &contact_ids, now).await
        }
        .await;
        RoomPayload::from(result)
    }

    /// Connects the caller (or a contact, with `contactId`) to a room and returns the provider's
    /// credentials (AGENT). The room must be open, or scheduled to start within 10 minutes (it
    /// opens then), and have fewer than `maxParticipants` connected. Someone already connected
    /// gets fresh credentials.
    async fn join_room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RoomPresenceInput,
    ) -> async_graphql::Result<JoinRoomPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            let room_id = input_id("roomId", &input.room_id, "Room")?;
            let contact_id = input
                .contact_id
                .map(|id| input_id("contactId", &id, "Contact"))
                .transpose()?;
            service::join(app.db(), principal, room_id, contact_id, now).await
        }
        .await;
        let (joined, user_errors) = split(result)?;
        Ok(match joined {
            Some(joined) => JoinRoomPayload {
                room: Some(Room(joined.room)),
                participant: Some(RoomParticipant(joined.participant)),
                credentials: Some(RoomCredentials {
                    token: joined.credentials.token,
                    expires_at: joined.credentials.expires_at,
                    provider: joined.credentials.provider.into(),
                }),
                user_errors,
            },
            None => JoinRoomPayload {
                room: None,
                participant: None,
                credentials: None,
                user_errors,
            },
        })
    }

    /// Disconnects the caller (or a contact, with `contactId`) from a room (AGENT). When nobody
    /// is left, the room completes after the grace period unless someone joins meanwhile.
    async fn leave_room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RoomPresenceInput,
    ) -> async_graphql::Result<RoomParticipantPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let grace = app.state.config.room_empty_grace_seconds;
        let result = async {
            let room_id = input_id("roomId", &input.room_id, "Room")?;
            let contact_id = input
                .contact_id
                .map(|id| input_id("contactId", &id, "Contact"))
                .transpose()?;
            service::leave(app.db(), principal, room_id, contact_id, now, grace).await
        }
        .await;
        RoomParticipantPayload::from(result)
    }

    /// Mutes or unmutes a connected participant (AGENT). The caller must be connected to the
    /// room (`FORBIDDEN` otherwise); changing someone else's audio needs the room's creator or a
    /// TEAM_LEAD.
    async fn set_room_audio_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetRoomAudioStateInput,
    ) -> async_graphql::Result<RoomParticipantPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            let room_id = input_id("roomId", &input.room_id, "Room")?;
            let participant_id =
                input_id("participantId", &input.participant_id, "RoomParticipant")?;
            service::set_audio(
                app.db(),
                principal,
                room_id,
                participant_id,
                input.audio.into(),
                now,
            )
            .await
        }
        .await;
        RoomParticipantPayload::from(result)
    }

    /// Terminates a scheduled or open room (its creator or a TEAM_LEAD): everyone is
    /// disconnected; a recorded room's recording is made.
    async fn terminate_room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RoomIdInput,
    ) -> async_graphql::Result<RoomPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            let room_id = input_id("roomId", &input.room_id, "Room")?;
            service::terminate(app.db(), principal, room_id, now).await
        }
        .await;
        RoomPayload::from(result)
    }
}

/// What happened to a room.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomChange {
    /// Created.
    Created,
    /// A scheduled room opened.
    Opened,
    /// A user or contact was invited.
    ParticipantInvited,
    /// A participant connected.
    ParticipantJoined,
    /// A participant disconnected.
    ParticipantLeft,
    /// A participant was muted or unmuted.
    AudioChanged,
    /// Completed (empty past the grace period, or at its end).
    Completed,
    /// Terminated by a user.
    Terminated,
    /// Failed.
    Failed,
    /// A recording finished processing.
    RecordingReady,
}

impl RoomChange {
    fn of(event_type: &str) -> Option<Self> {
        Some(match event_type {
            t::CREATED => Self::Created,
            t::OPENED => Self::Opened,
            t::PARTICIPANT_INVITED => Self::ParticipantInvited,
            t::PARTICIPANT_JOINED => Self::ParticipantJoined,
            t::PARTICIPANT_LEFT => Self::ParticipantLeft,
            t::AUDIO_CHANGED => Self::AudioChanged,
            t::COMPLETED => Self::Completed,
            t::TERMINATED => Self::Terminated,
            t::FAILED => Self::Failed,
            t::RECORDING_READY => Self::RecordingReady,
            _ => return None,
        })
    }
}

/// A change of a room.
#[derive(SimpleObject)]
pub struct RoomChangedEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What happened.
    change: RoomChange,
    /// The participant the change is about (invited, joined, left, audio), as it is now.
    participant: Option<RoomParticipant>,
    /// The room as it is when the event is delivered.
    room: Room,
}

/// The room subscription.
#[derive(Default)]
pub struct RoomSubscription;

/// Rooms as they change.
#[Subscription]
impl RoomSubscription {
    /// A room's changes (AGENT): state, participants joining and leaving, audio, recordings.
    /// With `after`, first the changes after that cursor, then live ones.
    async fn room_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The room.")] room_id: ID,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<RoomChangedEvent>> + use<>>
    {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::WorkConversations)?;
        let id = decode_id(&room_id, "Room")?;
        if app.load::<room::Entity>(id).await?.is_none() {
            return Err(AppError::NotFound("room".into()).into());
        }
        let db = app.db().clone();
        let org_id = principal.org_id;
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(
            db,
            start,
            org_id,
            app,
            move |db, event| async move {
                if event.subject_type != service::SUBJECT || event.subject_id != id {
                    return Ok(None);
                }
                let Some(change) = RoomChange::of(&event.event_type) else {
                    return Ok(None);
                };
                let Some(model) = crate::tenancy::by_id::<room::Entity>(org_id, id)
                    .one(&db)
                    .await?
                else {
                    return Ok(None);
                };
                let participant = match event.payload["participantId"]
                    .as_str()
                    .and_then(|p| Uuid::parse_str(p).ok())
                {
                    Some(participant_id) => {
                        crate::tenancy::by_id::<room_participant::Entity>(org_id, participant_id)
                            .one(&db)
                            .await?
                            .map(RoomParticipant)
                    }
                    None => None,
                };
                Ok(Some(RoomChangedEvent {
                    cursor: encode_cursor(event.seq),
                    change,
                    participant,
                    room: Room(model),
                }))
            },
        ))
    }
}
