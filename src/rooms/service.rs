//! Business rules of rooms, over a transaction.
//!
//! A room is created `OPEN` (no `scheduledStart`) or `SCHEDULED` (a `scheduledStart` in the
//! future). A scheduled room opens at its start (a `room.open` job), or earlier when someone joins
//! within [`JOIN_EARLY_MINUTES`] of it. Every room has a planned end (start + duration): a
//! `room.end` job completes it then, disconnecting whoever is still connected. When the last
//! connected participant leaves, the room remembers since when it is empty and a `room.empty` job
//! completes it after the grace period (`--room-empty-grace-seconds`) if nobody joined meanwhile.
//! A user may terminate a scheduled or open room (its creator or a TEAM_LEAD); the provider may
//! fail it, and a recording, by reporting so on a channel's ingest endpoint ([`report`]).
//! Completed, terminated and failed rooms are over: nobody joins again.
//!
//! Joining connects a participant (a user as themselves, or a contact on whose behalf an agent
//! asks) and returns the provider's credentials: a token signed with the room's secret, valid for
//! [`CREDENTIAL_TTL_MINUTES`] (see [`super::credentials`]). At most `maxParticipants` are
//! connected at once. Connected participants may mute and unmute themselves; the room's creator
//! and TEAM_LEADs may also mute and unmute the others.
//!
//! A recorded room that had someone connected gets a recording when it completes or is terminated
//! (`PROCESSING`); a `room.recording` job processes it (the simulator's processing: the length is
//! the room's connected span, the size estimated from its kind's bitrate) and marks it
//! `COMPLETED`. Every change records an event (subject `Room`) in its transaction.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{contact, room, room_participant, room_recording, user};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::credentials::{self, Claims, PROVIDER};
use super::event_types;
use crate::auth::{Permission, Principal, Role};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::jobs::{JobContext, JobError, JobResult, Jobs, NewJob, Outcome};
use crate::tenancy;
use crate::validate::Errors;

/// Subject kind of room events.
pub const SUBJECT: &str = "Room";
/// Kind of the job that opens a scheduled room at its start.
pub const OPEN_JOB: &str = "room.open";
/// Kind of the job that completes a room at its planned end.
pub const END_JOB: &str = "room.end";
/// Kind of the job that completes a room that stayed empty for the grace period.
pub const EMPTY_JOB: &str = "room.empty";
/// Kind of the job that processes a recording.
pub const RECORDING_JOB: &str = "room.recording";
/// Longest name.
pub const MAX_NAME: usize = 200;
/// Planned length when none is given.
pub const DEFAULT_DURATION_MINUTES: i32 = 60;
/// Longest planned length (a day).
pub const MAX_DURATION_MINUTES: i32 = 24 * 60;
/// Participants connected at once when no limit is given.
pub const DEFAULT_MAX_PARTICIPANTS: i32 = 10;
/// Highest limit of participants connected at once.
pub const MAX_PARTICIPANTS: i32 = 100;
/// Most users, and most contacts, invited by one call.
pub const MAX_INVITES: usize = 100;
/// How long before its start a scheduled room may be joined (which opens it).
pub const JOIN_EARLY_MINUTES: i64 = 10;
/// How long credentials are valid.
pub const CREDENTIAL_TTL_MINUTES: i64 = 60;
/// Estimated recording bytes per second of a video room (1.5 Mbit/s).
pub const VIDEO_BYTES_PER_SECOND: i64 = 187_500;
/// Estimated recording bytes per second of a voice conference (32 kbit/s).
pub const VOICE_BYTES_PER_SECOND: i64 = 4_000;

stored_enum!(
    /// What a room carries.
    Kind {
        /// A voice conference.
        Voice => "VOICE",
        /// A video room.
        Video => "VIDEO",
    }
);

stored_enum!(
    /// Where a room stands.
    State {
        /// Waiting for its start.
        Scheduled => "SCHEDULED",
        /// Open: participants may join.
        Open => "OPEN",
        /// Over: empty past the grace period, or at its end.
        Completed => "COMPLETED",
        /// Ended by a user.
        Terminated => "TERMINATED",
        /// The provider failed it.
        Failed => "FAILED",
    }
);

stored_enum!(
    /// Where a participant stands.
    ParticipantStatus {
        /// Invited, never connected.
        Invited => "INVITED",
        /// In the room.
        Connected => "CONNECTED",
        /// Was in the room, left.
        Disconnected => "DISCONNECTED",
    }
);

stored_enum!(
    /// A participant's microphone.
    Audio {
        /// Muted.
        Muted => "MUTED",
        /// Heard.
        Unmuted => "UNMUTED",
    }
);

stored_enum!(
    /// Where a recording stands.
    RecordingStatus {
        /// Being processed.
        Processing => "PROCESSING",
        /// Ready.
        Completed => "COMPLETED",
        /// Could not be processed.
        Failed => "FAILED",
    }
);

/// The state of `model`.
pub fn state_of(model: &room::Model) -> State {
    State::parse(&model.state).unwrap_or(State::Failed)
}

/// Whether a room in `state` is over.
fn ended(state: State) -> bool {
    matches!(state, State::Completed | State::Terminated | State::Failed)
}

/// A room as given on creation.
#[derive(Clone, Debug)]
pub struct RoomInput {
    /// Voice or video.
    pub kind: Kind,
    /// Name.
    pub name: String,
    /// When it starts (in the future); `None` opens it now.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Planned length in minutes.
    pub duration_minutes: Option<i32>,
    /// Most participants connected at once.
    pub max_participants: Option<i32>,
    /// Whether it is recorded.
    pub recorded: bool,
    /// The conversation it belongs to.
    pub conversation_id: Option<Uuid>,
    /// Users to invite.
    pub user_ids: Vec<Uuid>,
    /// Contacts to invite.
    pub contact_ids: Vec<Uuid>,
}

/// Provider credentials of one participant.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The signed token.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The provider that issued it.
    pub provider: &'static str,
}

/// What joining returns.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The room after the join.
    pub room: room::Model,
    /// The connected participant.
    pub participant: room_participant::Model,
    /// Their credentials.
    pub credentials: Credentials,
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    model: &room::Model,
    actor: Option<Uuid>,
    event_type: &str,
    payload: Value,
) -> AppResult<()> {
    events::record(
        conn,
        model.org_id,
        actor,
        event_type,
        Subject::new(SUBJECT, model.id),
        payload,
    )
    .await?;
    Ok(())
}

fn participant_payload(p: &room_participant::Model) -> Value {
    json!({
        "participantId": p.id,
        "userId": p.user_id,
        "contactId": p.contact_id,
        "status": p.status,
        "audio": p.audio,
    })
}

fn invalid_state(message: impl Into<String>) -> AppError {
    AppError::invalid("roomId", UserErrorCode::InvalidState, message)
}

/// The room `id` of `org_id`, locked for the transaction; `NOT_FOUND` at `field`.
async fn find_for_update<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<room::Model> {
    tenancy::by_id::<room::Entity>(org_id, id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such room"))
}

/// Whether `principal` moderates `room`: its creator, or a TEAM_LEAD and above.
fn moderates(principal: &Principal, room: &room::Model) -> bool {
    principal.has_role(Role::TeamLead) || room.created_by == Some(principal.user_id())
}

/// Checks the invitees: users of the organization and active, contacts of the organization and
/// not anonymized. Field paths are `userIds.<i>` and `contactIds.<i>`.
async fn check_invitees<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    user_ids: &[Uuid],
    contact_ids: &[Uuid],
) -> AppResult<()> {
    let mut errors = Vec::new();
    match tenancy::require_all::<user::Entity, _>(conn, org_id, user_ids, "userIds", "no such user")
        .await
    {
        Ok(users) => {
            for (i, id) in user_ids.iter().enumerate() {
                if users.get(id).is_some_and(|u| u.status != "ACTIVE") {
                    errors.push(crate::error::FieldError::new(
                        &format!("userIds.{i}"),
                        UserErrorCode::InvalidState,
                        "the user is deactivated",
                    ));
                }
            }
        }
        Err(e) => errors.extend(e.into_field_errors()?),
    }
    match tenancy::require_all::<contact::Entity, _>(
        conn,
        org_id,
        contact_ids,
        "contactIds",
        "no such contact",
    )
    .await
    {
        Ok(contacts) => {
            for (i, id) in contact_ids.iter().enumerate() {
                if contacts.get(id).is_some_and(|c| c.anonymized_at.is_some()) {
                    errors.push(crate::error::FieldError::new(
                        &format!("contactIds.{i}"),
                        UserErrorCode::InvalidState,
                        "the contact is anonymized",
                    ));
                }
            }
        }
        Err(e) => errors.extend(e.into_field_errors()?),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

fn check_invite_counts(errors: &mut Errors, user_ids: &[Uuid], contact_ids: &[Uuid]) {
    for (field, count) in [
        ("userIds", user_ids.len()),
        ("contactIds", contact_ids.len()),
    ] {
        if count > MAX_INVITES {
            errors.add(
                field,
                UserErrorCode::TooLong,
                format!("at most {MAX_INVITES} {field} per call"),
            );
        }
    }
}

/// Invites the users and contacts not yet participants of `room`; returns the new participants.
async fn add_invites<C: ConnectionTrait>(
    conn: &C,
    room: &room::Model,
    user_ids: &[Uuid],
    contact_ids: &[Uuid],
    actor: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<room_participant::Model>> {
    let existing = participants_of(conn, room.org_id, room.id).await?;
    let mut added = Vec::new();
    let wanted = user_ids
        .iter()
        .map(|id| (Some(*id), None))
        .chain(contact_ids.iter().map(|id| (None, Some(*id))));
    for (user_id, contact_id) in wanted {
        let known = existing.iter().any(|p| {
            (user_id.is_some() && p.user_id == user_id)
                || (contact_id.is_some() && p.contact_id == contact_id)
        });
        if known {
            continue;
        }
        let participant = room_participant::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(room.org_id),
            room_id: Set(room.id),
            user_id: Set(user_id),
            contact_id: Set(contact_id),
            status: Set(ParticipantStatus::Invited.as_str().into()),
            audio: Set(Audio::Unmuted.as_str().into()),
            invited_by: Set(Some(actor)),
            invited_at: Set(Some(now)),
            joined_at: Set(None),
            left_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(conn)
        .await?;
        record(
            conn,
            room,
            Some(actor),
            event_types::PARTICIPANT_INVITED,
            participant_payload(&participant),
        )
        .await?;
        added.push(participant);
    }
    Ok(added)
}

/// Creates a room (AGENT): open now, or scheduled when `scheduled_start` is given (it must be in
/// the future), inviting the given users and contacts.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: RoomInput,
    now: DateTime<Utc>,
) -> AppResult<room::Model> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, MAX_NAME);
    let duration = input.duration_minutes.unwrap_or(DEFAULT_DURATION_MINUTES);
    if !(1..=MAX_DURATION_MINUTES).contains(&duration) {
        errors.add(
            "durationMinutes",
            UserErrorCode::Invalid,
            format!("durationMinutes must be between 1 and {MAX_DURATION_MINUTES}"),
        );
    }
    let max = input.max_participants.unwrap_or(DEFAULT_MAX_PARTICIPANTS);
    if !(2..=MAX_PARTICIPANTS).contains(&max) {
        errors.add(
            "maxParticipants",
            UserErrorCode::Invalid,
            format!("maxParticipants must be between 2 and {MAX_PARTICIPANTS}"),
        );
    }
    if input.scheduled_start.is_some_and(|at| at <= now) {
        errors.add(
            "scheduledStart",
            UserErrorCode::Invalid,
            "scheduledStart must be in the future; leave it out to open the room now",
        );
    }
    let user_ids = tenancy::distinct(&input.user_ids);
    let contact_ids = tenancy::distinct(&input.contact_ids);
    check_invite_counts(&mut errors, &user_ids, &contact_ids);
    errors.finish()?;

    let txn = db::begin_write(db).await?;
    if let Some(conversation_id) = input.conversation_id
        && tenancy::by_id::<entity::conversation::Entity>(principal.org_id, conversation_id)
            .one(&txn)
            .await?
            .is_none()
    {
        return Err(AppError::invalid(
            "conversationId",
            UserErrorCode::NotFound,
            "no such conversation",
        ));
    }
    check_invitees(&txn, principal.org_id, &user_ids, &contact_ids).await?;
    let starts_at = input.scheduled_start.unwrap_or(now);
    let ends_at = starts_at + Duration::minutes(i64::from(duration));
    let state = if input.scheduled_start.is_some() {
        State::Scheduled
    } else {
        State::Open
    };
    let model = room::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        kind: Set(input.kind.as_str().into()),
        name: Set(name),
        state: Set(state.as_str().into()),
        starts_at: Set(starts_at),
        duration_minutes: Set(duration),
        ends_at: Set(ends_at),
        max_participants: Set(max),
        recorded: Set(input.recorded),
        conversation_id: Set(input.conversation_id),
        secret: Set(credentials::new_secret()),
        opened_at: Set((state == State::Open).then_some(now)),
        first_connected_at: Set(None),
        empty_since: Set(None),
        ended_at: Set(None),
        failure_reason: Set(None),
        created_by: Set(Some(principal.user_id())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    record(
        &txn,
        &model,
        Some(principal.user_id()),
        event_types::CREATED,
        json!({
            "name": model.name,
            "kind": model.kind,
            "state": model.state,
            "startsAt": model.starts_at,
            "endsAt": model.ends_at,
        }),
    )
    .await?;
    add_invites(
        &txn,
        &model,
        &user_ids,
        &contact_ids,
        principal.user_id(),
        now,
    )
    .await?;
    if state == State::Scheduled {
        crate::jobs::enqueue(&txn, room_job(OPEN_JOB, &model, starts_at)).await?;
    }
    crate::jobs::enqueue(&txn, room_job(END_JOB, &model, ends_at)).await?;
    txn.commit().await?;
    Ok(model)
}

fn room_job(kind: &str, model: &room::Model, at: DateTime<Utc>) -> NewJob {
    NewJob::new(kind, json!({ "roomId": model.id }))
        .org(model.org_id)
        .at(at)
}

/// Invites users and contacts to a scheduled or open room (AGENT); those already participants
/// are left as they are.
pub async fn invite(
    db: &DatabaseConnection,
    principal: &Principal,
    room_id: Uuid,
    user_ids: &[Uuid],
    contact_ids: &[Uuid],
    now: DateTime<Utc>,
) -> AppResult<room::Model> {
    principal.require(Permission::WorkConversations)?;
    let user_ids = tenancy::distinct(user_ids);
    let contact_ids = tenancy::distinct(contact_ids);
    let mut errors = Errors::default();
    if user_ids.is_empty() && contact_ids.is_empty() {
        errors.add(
            "userIds",
            UserErrorCode::Required,
            "give userIds or contactIds to invite",
        );
    }
    check_invite_counts(&mut errors, &user_ids, &contact_ids);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, room_id, "roomId").await?;
    let state = state_of(&current);
    if ended(state) {
        return Err(invalid_state(format!(
            "the room is {}: nobody can be invited any more",
            state.as_str()
        )));
    }
    check_invitees(&txn, principal.org_id, &user_ids, &contact_ids).await?;
    let added = add_invites(
        &txn,
        &current,
        &user_ids,
        &contact_ids,
        principal.user_id(),
        now,
    )
    .await?;
    let current = if added.is_empty() {
        current
    } else {
        touch(&txn, current, now).await?
    };
    txn.commit().await?;
    Ok(current)
}

async fn touch<C: ConnectionTrait>(
    conn: &C,
    current: room::Model,
    now: DateTime<Utc>,
) -> AppResult<room::Model> {
    let mut model = current.into_active_model();
    model.updated_at = Set(now);
    Ok(model.update(conn).await?)
}

/// The participants of one room, oldest first.
async fn participants_of<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    room_id: Uuid,
) -> AppResult<Vec<room_participant::Model>> {
    Ok(tenancy::in_org::<room_participant::Entity>(org_id)
        .filter(room_participant::Column::RoomId.eq(room_id))
        .order_by_asc(room_participant::Column::CreatedAt)
        .order_by_asc(room_participant::Column::Id)
        .all(conn)
        .await?)
}

async fn connected_count<C: ConnectionTrait>(conn: &C, room_id: Uuid) -> AppResult<i64> {
    let count = room_participant::Entity::find()
        .filter(room_participant::Column::RoomId.eq(room_id))
        .filter(room_participant::Column::Status.eq(ParticipantStatus::Connected.as_str()))
        .count(conn)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// Who joins or leaves: the caller, or a contact on whose behalf the caller acts.
async fn find_participant<C: ConnectionTrait>(
    conn: &C,
    room: &room::Model,
    user_id: Option<Uuid>,
    contact_id: Option<Uuid>,
) -> AppResult<Option<room_participant::Model>> {
    let mut select = tenancy::in_org::<room_participant::Entity>(room.org_id)
        .filter(room_participant::Column::RoomId.eq(room.id));
    select = match (user_id, contact_id) {
        (_, Some(contact_id)) => select.filter(room_participant::Column::ContactId.eq(contact_id)),
        (Some(user_id), None) => select.filter(room_participant::Column::UserId.eq(user_id)),
        (None, None) => return Ok(None),
    };
    Ok(select.one(conn).await?)
}

/// Connects the caller (or, with `contact_id`, that contact) to a room (AGENT) and returns the
/// provider's credentials. A scheduled room within [`JOIN_EARLY_MINUTES`] of its start opens.
/// Someone already connected gets fresh credentials and nothing else changes.
pub async fn join(
    db: &DatabaseConnection,
    principal: &Principal,
    room_id: Uuid,
    contact_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<Joined> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let mut current = find_for_update(&txn, principal.org_id, room_id, "roomId").await?;
    if let Some(contact_id) = contact_id {
        match tenancy::by_id::<contact::Entity>(principal.org_id, contact_id)
            .one(&txn)
            .await?
        {
            None => {
                return Err(AppError::invalid(
                    "contactId",
                    UserErrorCode::NotFound,
                    "no such contact",
                ));
            }
            Some(c) if c.anonymized_at.is_some() => {
                return Err(AppError::invalid(
                    "contactId",
                    UserErrorCode::InvalidState,
                    "the contact is anonymized",
                ));
            }
            Some(_) => {}
        }
    }
    let state = state_of(&current);
    if ended(state) {
        return Err(invalid_state(format!(
            "the room is {}: it can no longer be joined",
            state.as_str()
        )));
    }
    if now >= current.ends_at {
        return Err(invalid_state(format!(
            "the room's time is over (it ended at {})",
            current.ends_at.to_rfc3339()
        )));
    }
    let opens = current.starts_at - Duration::minutes(JOIN_EARLY_MINUTES);
    if state == State::Scheduled && now < opens {
        return Err(invalid_state(format!(
            "the room is SCHEDULED for {}: it can be joined from {}",
            current.starts_at.to_rfc3339(),
            opens.to_rfc3339()
        )));
    }
    let user_id = contact_id.is_none().then(|| principal.user_id());
    let existing = find_participant(&txn, &current, user_id, contact_id).await?;
    if let Some(participant) = existing
        .as_ref()
        .filter(|p| p.status == ParticipantStatus::Connected.as_str())
    {
        let credentials = issue(&current, participant, now);
        let participant = participant.clone();
        txn.commit().await?;
        return Ok(Joined {
            room: current,
            participant,
            credentials,
        });
    }
    let connected = connected_count(&txn, current.id).await?;
    if connected >= i64::from(current.max_participants) {
        return Err(AppError::invalid(
            "roomId",
            UserErrorCode::LimitExceeded,
            format!(
                "the room is full: {} participants are connected, its maximum",
                current.max_participants
            ),
        ));
    }
    let actor = Some(principal.user_id());
    if state == State::Scheduled {
        let mut model = current.into_active_model();
        model.state = Set(State::Open.as_str().into());
        model.opened_at = Set(Some(now));
        model.updated_at = Set(now);
        current = model.update(&txn).await?;
        record(
            &txn,
            &current,
            actor,
            event_types::OPENED,
            json!({ "early": true }),
        )
        .await?;
    }
    let participant = match existing {
        Some(existing) => {
            let mut model = existing.into_active_model();
            model.status = Set(ParticipantStatus::Connected.as_str().into());
            model.joined_at = Set(Some(now));
            model.left_at = Set(None);
            model.updated_at = Set(now);
            model.update(&txn).await?
        }
        None => {
            room_participant::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_id: Set(current.org_id),
                room_id: Set(current.id),
                user_id: Set(user_id),
                contact_id: Set(contact_id),
                status: Set(ParticipantStatus::Connected.as_str().into()),
                audio: Set(Audio::Unmuted.as_str().into()),
                invited_by: Set(None),
                invited_at: Set(None),
                joined_at: Set(Some(now)),
                left_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?
        }
    };
    let mut model = current.into_active_model();
    if model.first_connected_at.as_ref().is_none() {
        model.first_connected_at = Set(Some(now));
    }
    model.empty_since = Set(None);
    model.updated_at = Set(now);
    let current = model.update(&txn).await?;
    record(
        &txn,
        &current,
        actor,
        event_types::PARTICIPANT_JOINED,
        participant_payload(&participant),
    )
    .await?;
    let credentials = issue(&current, &participant, now);
    txn.commit().await?;
    Ok(Joined {
        room: current,
        participant,
        credentials,
    })
}

fn issue(
    room: &room::Model,
    participant: &room_participant::Model,
    now: DateTime<Utc>,
) -> Credentials {
    let expires_at = now + Duration::minutes(CREDENTIAL_TTL_MINUTES);
    let token = credentials::issue(
        &room.secret,
        &Claims {
            room: room.id,
            participant: participant.id,
            exp: expires_at.timestamp(),
        },
    );
    Credentials {
        token,
        expires_at,
        provider: PROVIDER,
    }
}

/// Disconnects the caller (or, with `contact_id`, that contact) from a room (AGENT). When nobody
/// is left connected, the room completes after `grace_seconds` unless someone joins meanwhile.
pub async fn leave(
    db: &DatabaseConnection,
    principal: &Principal,
    room_id: Uuid,
    contact_id: Option<Uuid>,
    now: DateTime<Utc>,
    grace_seconds: u64,
) -> AppResult<(room::Model, room_participant::Model)> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, room_id, "roomId").await?;
    let user_id = contact_id.is_none().then(|| principal.user_id());
    let participant = find_participant(&txn, &current, user_id, contact_id)
        .await?
        .filter(|p| p.status == ParticipantStatus::Connected.as_str())
        .ok_or_else(|| {
            let (field, who) = if contact_id.is_some() {
                ("contactId", "the contact is")
            } else {
                ("roomId", "you are")
            };
            AppError::invalid(
                field,
                UserErrorCode::InvalidState,
                format!("{who} not connected to this room"),
            )
        })?;
    let mut model = participant.into_active_model();
    model.status = Set(ParticipantStatus::Disconnected.as_str().into());
    model.left_at = Set(Some(now));
    model.updated_at = Set(now);
    let participant = model.update(&txn).await?;
    let empty = connected_count(&txn, current.id).await? == 0;
    let mut model = current.into_active_model();
    if empty {
        model.empty_since = Set(Some(now));
    }
    model.updated_at = Set(now);
    let current = model.update(&txn).await?;
    record(
        &txn,
        &current,
        Some(principal.user_id()),
        event_types::PARTICIPANT_LEFT,
        participant_payload(&participant),
    )
    .await?;
    if empty {
        let grace = Duration::seconds(i64::try_from(grace_seconds).unwrap_or(i64::MAX / 2));
        crate::jobs::enqueue(&txn, room_job(EMPTY_JOB, &current, now + grace)).await?;
    }
    txn.commit().await?;
    Ok((current, participant))
}

/// Mutes or unmutes a connected participant. The caller must be connected to the room; changing
/// someone else's audio needs the room's creator or a TEAM_LEAD.
pub async fn set_audio(
    db: &DatabaseConnection,
    principal: &Principal,
    room_id: Uuid,
    participant_id: Uuid,
    audio: Audio,
    now: DateTime<Utc>,
) -> AppResult<(room::Model, room_participant::Model)> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, room_id, "roomId").await?;
    let connected = ParticipantStatus::Connected.as_str();
    let me = find_participant(&txn, &current, Some(principal.user_id()), None)
        .await?
        .filter(|p| p.status == connected);
    let Some(me) = me else {
        return Err(AppError::invalid(
            "roomId",
            UserErrorCode::Forbidden,
            "you are not connected to this room: only its connected participants can mute or unmute",
        ));
    };
    let target = tenancy::by_id::<room_participant::Entity>(principal.org_id, participant_id)
        .filter(room_participant::Column::RoomId.eq(current.id))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "participantId",
                UserErrorCode::NotFound,
                "no such participant in this room",
            )
        })?;
    if target.id != me.id && !moderates(principal, &current) {
        return Err(AppError::invalid(
            "participantId",
            UserErrorCode::Forbidden,
            "only the room's creator or a TEAM_LEAD can mute or unmute another participant",
        ));
    }
    if target.status != connected {
        return Err(AppError::invalid(
            "participantId",
            UserErrorCode::InvalidState,
            "the participant is not connected",
        ));
    }
    if target.audio == audio.as_str() {
        txn.commit().await?;
        return Ok((current, target));
    }
    let mut model = target.into_active_model();
    model.audio = Set(audio.as_str().into());
    model.updated_at = Set(now);
    let target = model.update(&txn).await?;
    let current = touch(&txn, current, now).await?;
    record(
        &txn,
        &current,
        Some(principal.user_id()),
        event_types::AUDIO_CHANGED,
        participant_payload(&target),
    )
    .await?;
    txn.commit().await?;
    Ok((current, target))
}

/// Terminates a scheduled or open room (its creator or a TEAM_LEAD): everyone is disconnected.
pub async fn terminate(
    db: &DatabaseConnection,
    principal: &Principal,
    room_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<room::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, room_id, "roomId").await?;
    let state = state_of(&current);
    if ended(state) {
        return Err(invalid_state(format!(
            "the room is {}: only a SCHEDULED or OPEN room can be terminated",
            state.as_str()
        )));
    }
    if !moderates(principal, &current) {
        return Err(AppError::invalid(
            "roomId",
            UserErrorCode::Forbidden,
            "only the room's creator or a TEAM_LEAD can terminate it",
        ));
    }
    let ended = end(
        &txn,
        current,
        State::Terminated,
        Some(principal.user_id()),
        now,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(ended)
}

/// Fails `current` (not over) with `reason` inside `txn`: everyone is disconnected; no
/// recording is made.
async fn fail_in<C: ConnectionTrait>(
    txn: &C,
    current: room::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<room::Model> {
    let mut model = current.into_active_model();
    model.failure_reason = Set(Some(reason.to_string()));
    let current = model.update(txn).await?;
    end(
        txn,
        current,
        State::Failed,
        None,
        now,
        json!({ "reason": reason }),
    )
    .await
}

/// A room event as a provider reports it on a channel's ingest endpoint (`"type": "room"`).
#[derive(Clone, Debug)]
pub struct RoomReport {
    /// The room.
    pub room_id: Uuid,
    /// The room failed (the only state a provider reports).
    pub failed: bool,
    /// Why.
    pub reason: Option<String>,
    /// A recording of the room that could not be processed.
    pub failed_recording_id: Option<Uuid>,
}

/// What a room report did.
#[derive(Clone, Debug)]
pub struct RoomReported {
    /// The room after the report.
    pub room: room::Model,
    /// The recording reported on, after the report.
    pub recording: Option<room_recording::Model>,
    /// Why nothing changed, when nothing did.
    pub ignored: Option<String>,
}

/// Applies a provider's room report for organization `org_id` in one transaction: a room that
/// is not over yet fails with the reason (everyone disconnected, no recording); a
/// recording still processing fails (`ROOM_RECORDING_FAILED`). A room that is over already, or a
/// recording that is done already, is left as it is (`ignored` says why). No such room or
/// recording in the organization: `NotFound`.
pub async fn report(
    db: &DatabaseConnection,
    org_id: Uuid,
    input: RoomReport,
    now: DateTime<Utc>,
) -> AppResult<RoomReported> {
    let txn = db::begin_write(db).await?;
    let mut room = tenancy::by_id::<room::Entity>(org_id, input.room_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound("room".into()))?;
    let recording = match input.failed_recording_id {
        Some(id) => Some(
            tenancy::by_id::<room_recording::Entity>(org_id, id)
                .filter(room_recording::Column::RoomId.eq(room.id))
                .one(&txn)
                .await?
                .ok_or_else(|| AppError::NotFound("recording".into()))?,
        ),
        None => None,
    };
    let reason = input
        .reason
        .unwrap_or_else(|| "the provider reported a failure".to_string());
    let mut ignored = Vec::new();
    if input.failed {
        if ended(state_of(&room)) {
            ignored.push(format!("the room is {} already", room.state));
        } else {
            room = fail_in(&txn, room, &reason, now).await?;
        }
    }
    let recording = match recording {
        Some(recording) if recording.status != RecordingStatus::Processing.as_str() => {
            ignored.push(format!("the recording is {} already", recording.status));
            Some(recording)
        }
        Some(recording) => {
            let mut model = recording.into_active_model();
            model.status = Set(RecordingStatus::Failed.as_str().into());
            model.updated_at = Set(now);
            let recording = model.update(&txn).await?;
            record(
                &txn,
                &room,
                None,
                event_types::RECORDING_FAILED,
                json!({ "recordingId": recording.id, "reason": reason }),
            )
            .await?;
            Some(recording)
        }
        None => None,
    };
    txn.commit().await?;
    Ok(RoomReported {
        room,
        recording,
        ignored: (!ignored.is_empty()).then(|| ignored.join("; ")),
    })
}

/// Ends `current` as `state` inside `conn`: disconnects whoever is connected, records the event
/// (with the disconnected participants and `extra`), and for a recorded room that had someone
/// connected (completed or terminated), starts its recording.
async fn end<C: ConnectionTrait>(
    conn: &C,
    current: room::Model,
    state: State,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
    extra: Value,
) -> AppResult<room::Model> {
    let connected = room_participant::Entity::find()
        .filter(room_participant::Column::RoomId.eq(current.id))
        .filter(room_participant::Column::Status.eq(ParticipantStatus::Connected.as_str()))
        .all(conn)
        .await?;
    if !connected.is_empty() {
        room_participant::Entity::update_many()
            .col_expr(
                room_participant::Column::Status,
                Expr::value(ParticipantStatus::Disconnected.as_str()),
            )
            .col_expr(room_participant::Column::LeftAt, Expr::value(now))
            .col_expr(room_participant::Column::UpdatedAt, Expr::value(now))
            .filter(room_participant::Column::Id.is_in(connected.iter().map(|p| p.id)))
            .exec(conn)
            .await?;
    }
    let mut model = current.into_active_model();
    model.state = Set(state.as_str().into());
    model.ended_at = Set(Some(now));
    model.empty_since = Set(None);
    model.updated_at = Set(now);
    let ended = model.update(conn).await?;
    let mut payload = json!({
        "disconnectedParticipantIds": connected.iter().map(|p| p.id).collect::<Vec<_>>(),
    });
    if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
        payload.extend(extra);
    }
    let event = match state {
        State::Terminated => event_types::TERMINATED,
        State::Failed => event_types::FAILED,
        _ => event_types::COMPLETED,
    };
    record(conn, &ended, actor, event, payload).await?;
    if ended.recorded
        && ended.first_connected_at.is_some()
        && matches!(state, State::Completed | State::Terminated)
    {
        let recording = room_recording::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(ended.org_id),
            room_id: Set(ended.id),
            status: Set(RecordingStatus::Processing.as_str().into()),
            processing_percent: Set(0),
            duration_seconds: Set(None),
            size_bytes: Set(None),
            completed_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(conn)
        .await?;
        crate::jobs::enqueue(
            conn,
            NewJob::new(RECORDING_JOB, json!({ "recordingId": recording.id }))
                .org(ended.org_id)
                .at(now),
        )
        .await?;
    }
    Ok(ended)
}

/// Which rooms to list.
#[derive(Clone, Debug, Default)]
pub struct RoomFilter {
    /// In one of these states.
    pub states: Vec<State>,
    /// Of this kind.
    pub kind: Option<Kind>,
    /// With this user among the participants (invited, connected or disconnected).
    pub participant_user_id: Option<Uuid>,
}

/// One page of rooms, newest first (AGENT).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: RoomFilter,
    args: &PageArgs,
) -> AppResult<(Page<room::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let mut select = tenancy::in_org::<room::Entity>(principal.org_id);
    if !filter.states.is_empty() {
        select = select.filter(room::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    if let Some(kind) = filter.kind {
        select = select.filter(room::Column::Kind.eq(kind.as_str()));
    }
    if let Some(user_id) = filter.participant_user_id {
        select = select.filter(
            room::Column::Id.in_subquery(
                Query::select()
                    .column(room_participant::Column::RoomId)
                    .from(room_participant::Entity)
                    .and_where(room_participant::Column::OrgId.eq(principal.org_id))
                    .and_where(room_participant::Column::UserId.eq(user_id))
                    .to_owned(),
            ),
        );
    }
    let sort = Sort {
        name: "CREATED",
        column: room::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &room::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "rooms", &sort, args).await?;
    Ok((page, total))
}

/// The participants of each of `room_ids`, oldest first (for the dataloader).
pub async fn participants<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    room_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<room_participant::Model>>> {
    let rows = tenancy::in_org::<room_participant::Entity>(org_id)
        .filter(room_participant::Column::RoomId.is_in(room_ids.iter().copied()))
        .order_by_asc(room_participant::Column::CreatedAt)
        .order_by_asc(room_participant::Column::Id)
        .all(conn)
        .await?;
    let mut map: HashMap<Uuid, Vec<room_participant::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.room_id).or_default().push(row);
    }
    Ok(map)
}

/// The recordings of each of `room_ids`, oldest first (for the dataloader).
pub async fn recordings<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    room_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<room_recording::Model>>> {
    let rows = tenancy::in_org::<room_recording::Entity>(org_id)
        .filter(room_recording::Column::RoomId.is_in(room_ids.iter().copied()))
        .order_by_asc(room_recording::Column::CreatedAt)
        .order_by_asc(room_recording::Column::Id)
        .all(conn)
        .await?;
    let mut map: HashMap<Uuid, Vec<room_recording::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.room_id).or_default().push(row);
    }
    Ok(map)
}

/// Registers the room job handlers.
pub fn register(jobs: &Jobs) {
    jobs.register(OPEN_JOB, open_job);
    jobs.register(END_JOB, end_job);
    jobs.register(EMPTY_JOB, empty_job);
    jobs.register(RECORDING_JOB, recording_job);
}

fn payload_id(payload: &Value, key: &str) -> Result<Uuid, JobError> {
    payload[key]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent(format!("the job's payload has no {key}")))
}

/// The job's room, locked, in a new write transaction; `None` when it is gone.
async fn locked_room(ctx: &JobContext) -> Result<Option<(db::WriteTxn, room::Model)>, JobError> {
    let id = payload_id(&ctx.job.payload, "roomId")?;
    let txn = db::begin_write(&ctx.db).await?;
    let found = room::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    Ok(found.map(|room| (txn, room)))
}

/// Opens a scheduled room at its start.
async fn open_job(ctx: JobContext) -> JobResult {
    let now = ctx.now();
    let Some((txn, current)) = locked_room(&ctx).await? else {
        return Ok(Outcome::Done);
    };
    if state_of(&current) != State::Scheduled {
        return Ok(Outcome::Done);
    }
    if now < current.starts_at {
        return Ok(Outcome::Defer {
            at: current.starts_at,
            payload: None,
        });
    }
    let mut model = current.into_active_model();
    model.state = Set(State::Open.as_str().into());
    model.opened_at = Set(Some(now));
    model.updated_at = Set(now);
    let opened = model.update(&txn).await?;
    record(
        &txn,
        &opened,
        None,
        event_types::OPENED,
        json!({ "early": false }),
    )
    .await?;
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

/// Completes a room at its planned end.
async fn end_job(ctx: JobContext) -> JobResult {
    let now = ctx.now();
    let Some((txn, current)) = locked_room(&ctx).await? else {
        return Ok(Outcome::Done);
    };
    if ended(state_of(&current)) {
        return Ok(Outcome::Done);
    }
    if now < current.ends_at {
        return Ok(Outcome::Defer {
            at: current.ends_at,
            payload: None,
        });
    }
    end(
        &txn,
        current,
        State::Completed,
        None,
        now,
        json!({ "reason": "ENDED" }),
    )
    .await?;
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

/// Completes a room that stayed empty for the grace period.
async fn empty_job(ctx: JobContext) -> JobResult {
    let now = ctx.now();
    let Some((txn, current)) = locked_room(&ctx).await? else {
        return Ok(Outcome::Done);
    };
    let Some(empty_since) = current.empty_since else {
        // Someone joined meanwhile (or it ended): nothing to do.
        return Ok(Outcome::Done);
    };
    if state_of(&current) != State::Open || connected_count(&txn, current.id).await? > 0 {
        return Ok(Outcome::Done);
    }
    let grace = i64::try_from(ctx.config.room_empty_grace_seconds).unwrap_or(i64::MAX / 2);
    let due = empty_since + Duration::seconds(grace);
    if now < due {
        return Ok(Outcome::Defer {
            at: due,
            payload: None,
        });
    }
    end(
        &txn,
        current,
        State::Completed,
        None,
        now,
        json!({ "reason": "EMPTY" }),
    )
    .await?;
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

/// The simulator's processing of a recording: its length is the room's connected span (first
/// connection to its end), its size estimated from the kind's bitrate.
async fn recording_job(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "recordingId")?;
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    let Some(recording) = room_recording::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|r| r.status == RecordingStatus::Processing.as_str())
    else {
        return Ok(Outcome::Done);
    };
    let Some(current) = room::Entity::find_by_id(recording.room_id)
        .one(&txn)
        .await?
    else {
        return Ok(Outcome::Done);
    };
    let seconds = match (current.first_connected_at, current.ended_at) {
        (Some(from), Some(to)) => (to - from).num_seconds().max(0),
        _ => 0,
    };
    let rate = match Kind::parse(&current.kind) {
        Some(Kind::Video) => VIDEO_BYTES_PER_SECOND,
        _ => VOICE_BYTES_PER_SECOND,
    };
    let mut model = recording.into_active_model();
    model.status = Set(RecordingStatus::Completed.as_str().into());
    model.processing_percent = Set(100);
    model.duration_seconds = Set(Some(seconds));
    model.size_bytes = Set(Some(seconds.saturating_mul(rate)));
    model.completed_at = Set(Some(now));
    model.updated_at = Set(now);
    let recording = model.update(&txn).await?;
    record(
        &txn,
        &current,
        None,
        event_types::RECORDING_READY,
        json!({
            "recordingId": recording.id,
            "durationSeconds": recording.duration_seconds,
            "sizeBytes": recording.size_bytes,
        }),
    )
    .await?;
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}
