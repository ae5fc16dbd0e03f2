//! Business rules of presence, over transactions; no GraphQL types here.
//!
//! Connection status is derived from the websocket connections instances record in
//! `presence_connections` (see [`super::registry`]): a user goes `ONLINE` with their first
//! connection anywhere, stays online while any remains and for the grace period after the last
//! one ended, then goes `OFFLINE` at the next sweep. A connection whose instance stopped renewing
//! it (a crash) expires and counts as ended at its expiry. Every change of connection status,
//! presence status, active channel types or capacity writes a `PRESENCE_CHANGED` event with the
//! presence after the change, in the same transaction.
//!
//! Time is an argument (`now`) of every function that depends on it, so tests step it instead of
//! sleeping.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy::{self, OrgScoped};
use crate::validate::Errors;

use entity::{presence_connection, presence_instance, team_member, user, user_presence};

/// The event type of every presence change.
pub const PRESENCE_CHANGED: &str = "PRESENCE_CHANGED";

/// Most open conversations of one channel type a user may take at once.
pub const MAX_CAPACITY: i32 = 1_000;

impl OrgScoped for user_presence::Entity {
    fn org_column() -> Self::Column {
        user_presence::Column::OrgId
    }
    fn id_column() -> Self::Column {
        user_presence::Column::UserId
    }
    fn model_id(model: &Self::Model) -> Uuid {
        model.user_id
    }
}

/// Whether a user is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// A websocket of the user is connected, or the last one ended less than the grace period
    /// ago.
    Online,
    /// Not connected.
    Offline,
}

impl ConnectionStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "ONLINE",
            Self::Offline => "OFFLINE",
        }
    }

    /// Parses a stored name (anything else is offline).
    pub fn parse(name: &str) -> Self {
        if name == "ONLINE" {
            Self::Online
        } else {
            Self::Offline
        }
    }
}

/// What the user says they are doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceStatus {
    /// Working: takes conversations.
    Working,
    /// Away from the desk.
    Away,
    /// Busy: connected but not to be disturbed.
    Busy,
}

impl PresenceStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "WORKING",
            Self::Away => "AWAY",
            Self::Busy => "BUSY",
        }
    }

    /// Parses a stored name (anything unknown is working, the default).
    pub fn parse(name: &str) -> Self {
        match name {
            "AWAY" => Self::Away,
            "BUSY" => Self::Busy,
            _ => Self::Working,
        }
    }
}

/// What a presence change changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Online or offline.
    ConnectionStatus,
    /// Working, away or busy.
    PresenceStatus,
    /// The channel types the user takes.
    ActiveChannels,
    /// The capacity per channel type.
    Capacity,
}

impl Change {
    const ALL: [Change; 4] = [
        Change::ConnectionStatus,
        Change::PresenceStatus,
        Change::ActiveChannels,
        Change::Capacity,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionStatus => "CONNECTION_STATUS",
            Self::PresenceStatus => "PRESENCE_STATUS",
            Self::ActiveChannels => "ACTIVE_CHANNELS",
            Self::Capacity => "CAPACITY",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A user's presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// The user.
    pub user_id: Uuid,
    /// Online or offline.
    pub connection_status: ConnectionStatus,
    /// Working, away or busy.
    pub presence_status: PresenceStatus,
    /// Channel types the user takes, in [`ChannelType::ALL`] order.
    pub active_channels: Vec<ChannelType>,
    /// Open conversations of each channel type the user takes at once, in [`ChannelType::ALL`]
    /// order.
    pub capacity: Vec<(ChannelType, i32)>,
    /// Last connect, disconnect, renewal while connected, or own presence change.
    pub last_seen: Option<DateTime<Utc>>,
}

impl Presence {
    /// The presence of a user who never connected nor set anything.
    pub fn initial(user_id: Uuid) -> Self {
        Self {
            user_id,
            connection_status: ConnectionStatus::Offline,
            presence_status: PresenceStatus::Working,
            active_channels: Vec::new(),
            capacity: Vec::new(),
            last_seen: None,
        }
    }

    /// The presence a stored row holds.
    pub fn of(model: &user_presence::Model) -> Self {
        Self {
            user_id: model.user_id,
            connection_status: ConnectionStatus::parse(&model.connection_status),
            presence_status: PresenceStatus::parse(&model.presence_status),
            active_channels: parse_channels(model.active_channels.split(',')),
            capacity: parse_capacity(&model.capacity),
            last_seen: model.last_seen,
        }
    }

    /// The presence of `user_id` from its row, if any.
    pub fn of_row(user_id: Uuid, model: Option<&user_presence::Model>) -> Self {
        model.map_or_else(|| Self::initial(user_id), Self::of)
    }

    /// The form stored in events.
    fn to_json(&self) -> Value {
        json!({
            "userId": self.user_id,
            "connectionStatus": self.connection_status.as_str(),
            "presenceStatus": self.presence_status.as_str(),
            "activeChannels": self.active_channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "capacity": capacity_json(&self.capacity),
            "lastSeen": self.last_seen,
        })
    }

    /// Reads [`Presence::to_json`]'s form back.
    pub fn from_json(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key).and_then(Value::as_str);
        Some(Self {
            user_id: Uuid::parse_str(text("userId")?).ok()?,
            connection_status: ConnectionStatus::parse(text("connectionStatus")?),
            presence_status: PresenceStatus::parse(text("presenceStatus")?),
            active_channels: parse_channels(
                value
                    .get("activeChannels")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            ),
            capacity: value
                .get("capacity")
                .map(parse_capacity)
                .unwrap_or_default(),
            last_seen: value
                .get("lastSeen")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .flatten(),
        })
    }
}

/// Channel types from their names, each once, in [`ChannelType::ALL`] order.
fn parse_channels<'a>(names: impl Iterator<Item = &'a str>) -> Vec<ChannelType> {
    let set: HashSet<ChannelType> = names.filter_map(ChannelType::parse).collect();
    ChannelType::ALL
        .into_iter()
        .filter(|c| set.contains(c))
        .collect()
}

fn channels_text(channels: &[ChannelType]) -> String {
    channels
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_capacity(value: &Value) -> Vec<(ChannelType, i32)> {
    let Some(map) = value.as_object() else {
        return Vec::new();
    };
    ChannelType::ALL
        .into_iter()
        .filter_map(|c| {
            let n = map.get(c.as_str())?.as_i64()?;
            Some((c, i32::try_from(n).ok()?))
        })
        .collect()
}

fn capacity_json(capacity: &[(ChannelType, i32)]) -> Value {
    let map: BTreeMap<&str, i32> = capacity.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    json!(map)
}

/// A websocket connection as recorded for presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Its id.
    pub id: Uuid,
    /// The user's organization.
    pub org_id: Uuid,
    /// The connected user.
    pub user_id: Uuid,
    /// The API token it authenticated with.
    pub token_id: Uuid,
    /// The instance holding it.
    pub instance_id: Uuid,
}

async fn row<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> AppResult<Option<user_presence::Model>> {
    Ok(user_presence::Entity::find_by_id(user_id).one(conn).await?)
}

/// The stored row of a user, created with the initial presence when there is none.
async fn row_or_initial<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<user_presence::Model> {
    if let Some(model) = row(conn, user_id).await? {
        return Ok(model);
    }
    let initial = Presence::initial(user_id);
    Ok(user_presence::ActiveModel {
        user_id: Set(user_id),
        org_id: Set(org_id),
        connection_status: Set(initial.connection_status.as_str().into()),
        presence_status: Set(initial.presence_status.as_str().into()),
        active_channels: Set(String::new()),
        capacity: Set(json!({})),
        last_seen: Set(None),
        offline_at: Set(None),
        online_since: Set(None),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?)
}

/// Writes the `PRESENCE_CHANGED` event of `presence` with what changed, and the teams the user is
/// in at the time (what `presenceChanged(teamId:)` filters on). Going offline passes the online
/// stretch that ended (`online: { from, to }` in the payload: the `agent_online_time` metric).
async fn record_change<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    actor: Option<Uuid>,
    presence: &Presence,
    changes: &[Change],
    online: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> AppResult<()> {
    let team_ids: Vec<Uuid> = team_member::Entity::find()
        .select_only()
        .column(team_member::Column::TeamId)
        .filter(team_member::Column::OrgId.eq(org_id))
        .filter(team_member::Column::UserId.eq(presence.user_id))
        .into_tuple()
        .all(conn)
        .await?;
    let mut payload = json!({
        "changes": changes.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "presence": presence.to_json(),
        "teamIds": team_ids,
    });
    if let Some((from, to)) = online {
        payload["online"] = json!({ "from": from, "to": to });
    }
    events::record(
        conn,
        org_id,
        actor,
        PRESENCE_CHANGED,
        Subject::new("User", presence.user_id),
        payload,
    )
    .await?;
    Ok(())
}

/// Extends the expiry of `instance_id` to `expires_at` (never shortening it), recording the
/// instance when it has no row.
async fn hold_instance<C: ConnectionTrait>(
    conn: &C,
    instance_id: Uuid,
    expires_at: DateTime<Utc>,
) -> AppResult<()> {
    presence_instance::Entity::insert(presence_instance::ActiveModel {
        id: Set(instance_id),
        expires_at: Set(expires_at),
    })
    .on_conflict(
        OnConflict::column(presence_instance::Column::Id)
            .update_column(presence_instance::Column::ExpiresAt)
            .action_and_where(sea_orm::sea_query::ExprTrait::lt(
                Expr::col((
                    presence_instance::Entity,
                    presence_instance::Column::ExpiresAt,
                )),
                Expr::col((
                    sea_orm::sea_query::Alias::new("excluded"),
                    presence_instance::Column::ExpiresAt,
                )),
            ))
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Records a new connection, held by its instance until `now + ttl` at least (the instance's
/// heartbeat renews that); the user goes online if they were offline (and a pending offline is
/// cancelled). Returns whether the user went online (an event was written).
pub async fn connect(
    db: &DatabaseConnection,
    connection: &Connection,
    now: DateTime<Utc>,
    ttl: Duration,
) -> AppResult<bool> {
    let txn = db::begin_write(db).await?;
    // The instance first: a sweep ending that instance's connections (PostgreSQL: it locks the
    // instance's row) then either ran before (and this records it again) or waits for this.
    hold_instance(&*txn, connection.instance_id, now + ttl).await?;
    presence_connection::ActiveModel {
        id: Set(connection.id),
        org_id: Set(connection.org_id),
        user_id: Set(connection.user_id),
        token_id: Set(connection.token_id),
        instance_id: Set(connection.instance_id),
        connected_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let current = row_or_initial(&txn, connection.org_id, connection.user_id, now).await?;
    let went_online = current.connection_status != ConnectionStatus::Online.as_str();
    let mut model = current.into_active_model();
    model.connection_status = Set(ConnectionStatus::Online.as_str().into());
    model.offline_at = Set(None);
    if went_online {
        model.online_since = Set(Some(now));
    }
    model.last_seen = Set(Some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    if went_online {
        record_change(
            &txn,
            connection.org_id,
            Some(connection.user_id),
            &Presence::of(&updated),
            &[Change::ConnectionStatus],
            None,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(went_online)
}

/// Ends a connection. When it was the user's last, they go offline at `now + grace` (at once
/// when `grace` is zero). Returns whether the user went offline (an event was written). A
/// connection already gone (swept) changes nothing.
pub async fn disconnect(
    db: &DatabaseConnection,
    connection_id: Uuid,
    now: DateTime<Utc>,
    grace: Duration,
) -> AppResult<bool> {
    let txn = db::begin_write(db).await?;
    let Some(connection) = presence_connection::Entity::find_by_id(connection_id)
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    presence_connection::Entity::delete_by_id(connection_id)
        .exec(&txn)
        .await?;
    let went_offline =
        last_one_ended(&txn, connection.org_id, connection.user_id, now, grace).await?;
    txn.commit().await?;
    Ok(went_offline)
}

/// Ends every connection `instance_id` holds (the instance shuts down) in one transaction; each
/// user left without a connection goes offline as [`disconnect`] says. Returns the users who
/// went offline.
pub async fn disconnect_instance(
    db: &DatabaseConnection,
    instance_id: Uuid,
    now: DateTime<Utc>,
    grace: Duration,
) -> AppResult<u64> {
    let txn = db::begin_write(db).await?;
    let users: HashSet<(Uuid, Uuid)> = presence_connection::Entity::find()
        .filter(presence_connection::Column::InstanceId.eq(instance_id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| (c.org_id, c.user_id))
        .collect();
    presence_connection::Entity::delete_many()
        .filter(presence_connection::Column::InstanceId.eq(instance_id))
        .exec(&txn)
        .await?;
    presence_instance::Entity::delete_by_id(instance_id)
        .exec(&txn)
        .await?;
    let mut offline = 0;
    for (org_id, user_id) in users {
        if last_one_ended(&txn, org_id, user_id, now, grace).await? {
            offline += 1;
        }
    }
    txn.commit().await?;
    Ok(offline)
}

/// After a connection of `user_id` ended: the user was seen now, and when it was their last
/// connection they go offline at `now + grace` (at once when `grace` is zero). Returns whether
/// they went offline (an event was written).
async fn last_one_ended(
    txn: &sea_orm::DatabaseTransaction,
    org_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
    grace: Duration,
) -> AppResult<bool> {
    let remaining = presence_connection::Entity::find()
        .filter(presence_connection::Column::UserId.eq(user_id))
        .count(txn)
        .await?;
    let Some(current) = row(txn, user_id).await? else {
        return Ok(false);
    };
    let online = current.connection_status == ConnectionStatus::Online.as_str();
    let online_since = current.online_since;
    let mut model = current.into_active_model();
    model.last_seen = Set(Some(now));
    model.updated_at = Set(now);
    let went_offline = online && remaining == 0 && grace <= Duration::zero();
    if went_offline {
        model.connection_status = Set(ConnectionStatus::Offline.as_str().into());
        model.offline_at = Set(None);
    } else if online && remaining == 0 {
        model.offline_at = Set(Some(now + grace));
    }
    let updated = model.update(txn).await?;
    if went_offline {
        record_change(
            txn,
            org_id,
            Some(user_id),
            &Presence::of(&updated),
            &[Change::ConnectionStatus],
            online_since.map(|from| (from, now)),
        )
        .await?;
    }
    Ok(went_offline)
}

/// Extends to `now + ttl` the expiry of `instance_id`, and with it of every connection it holds
/// (one row written whatever their number), and records that their users were seen. Returns
/// whether the instance still had its row: when it had not (it was stalled past its expiry and
/// another instance's sweep ended its connections), the row is recorded again and the caller
/// records its connections again.
pub async fn renew(
    db: &DatabaseConnection,
    instance_id: Uuid,
    now: DateTime<Utc>,
    ttl: Duration,
) -> AppResult<bool> {
    let txn = db::begin_write(db).await?;
    let renewed = presence_instance::Entity::update_many()
        .col_expr(presence_instance::Column::ExpiresAt, Expr::value(now + ttl))
        .filter(presence_instance::Column::Id.eq(instance_id))
        .exec(&txn)
        .await?
        .rows_affected
        > 0;
    if renewed {
        user_presence::Entity::update_many()
            .col_expr(user_presence::Column::LastSeen, Expr::value(Some(now)))
            .filter(
                user_presence::Column::UserId.in_subquery(
                    Query::select()
                        .distinct()
                        .column(presence_connection::Column::UserId)
                        .from(presence_connection::Entity)
                        .and_where(presence_connection::Column::InstanceId.eq(instance_id))
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
    } else {
        hold_instance(&*txn, instance_id, now + ttl).await?;
    }
    txn.commit().await?;
    Ok(renewed)
}

/// The ids of the connections recorded for `instance_id`.
pub async fn connection_ids(
    db: &DatabaseConnection,
    instance_id: Uuid,
) -> AppResult<HashSet<Uuid>> {
    let ids: Vec<Uuid> = presence_connection::Entity::find()
        .select_only()
        .column(presence_connection::Column::Id)
        .filter(presence_connection::Column::InstanceId.eq(instance_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired connections removed (their instance stopped renewing them).
    pub expired: u64,
    /// Users who went offline (each with an event).
    pub offline: u64,
}

/// Users online without any connection: their grace period runs or is over.
fn online_without_connection() -> sea_orm::Select<user_presence::Entity> {
    user_presence::Entity::find()
        .filter(user_presence::Column::ConnectionStatus.eq(ConnectionStatus::Online.as_str()))
        .filter(
            user_presence::Column::UserId.not_in_subquery(
                Query::select()
                    .column(presence_connection::Column::UserId)
                    .from(presence_connection::Entity)
                    .to_owned(),
            ),
        )
}

/// Removes the connections of instances that expired by `now` (they stopped renewing: each
/// connection counts as ended at its instance's expiry) and takes offline every user whose last connection ended more than
/// `grace` before `now`. Any instance may run it at any time; it only reads when there is
/// nothing to do.
pub async fn sweep(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    grace: Duration,
) -> AppResult<Swept> {
    let expired_exists = presence_instance::Entity::find()
        .select_only()
        .column(presence_instance::Column::Id)
        .filter(presence_instance::Column::ExpiresAt.lte(now))
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some();
    let due_exists = online_without_connection()
        .filter(
            sea_orm::Condition::any()
                .add(user_presence::Column::OfflineAt.is_null())
                .add(user_presence::Column::OfflineAt.lte(now)),
        )
        .select_only()
        .column(user_presence::Column::UserId)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some();
    if !expired_exists && !due_exists {
        return Ok(Swept::default());
    }
    let txn = db::begin_write(db).await?;
    // Locked (PostgreSQL) so that an instance recording a connection meanwhile waits, then
    // records its row again: its new connection is never ended with the old ones.
    let instances: Vec<(Uuid, DateTime<Utc>)> = presence_instance::Entity::find()
        .select_only()
        .column(presence_instance::Column::Id)
        .column(presence_instance::Column::ExpiresAt)
        .filter(presence_instance::Column::ExpiresAt.lte(now))
        .lock_exclusive()
        .into_tuple()
        .all(&txn)
        .await?;
    let expiry: HashMap<Uuid, DateTime<Utc>> = instances.iter().copied().collect();
    let ids: Vec<Uuid> = instances.iter().map(|(id, _)| *id).collect();
    let expired: Vec<(Uuid, Uuid)> = if ids.is_empty() {
        Vec::new()
    } else {
        presence_connection::Entity::find()
            .select_only()
            .column(presence_connection::Column::UserId)
            .column(presence_connection::Column::InstanceId)
            .filter(presence_connection::Column::InstanceId.is_in(ids.clone()))
            .into_tuple()
            .all(&*txn)
            .await?
    };
    // Each connection ended when its instance expired; a user's last one counts.
    let mut ended: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for (user_id, instance_id) in expired {
        let Some(&expires_at) = expiry.get(&instance_id) else {
            continue;
        };
        let at = ended.entry(user_id).or_insert(expires_at);
        *at = (*at).max(expires_at);
    }
    let mut removed = 0;
    if !ids.is_empty() {
        removed = presence_connection::Entity::delete_many()
            .filter(presence_connection::Column::InstanceId.is_in(ids.clone()))
            .exec(&txn)
            .await?
            .rows_affected;
        presence_instance::Entity::delete_many()
            .filter(presence_instance::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
    }
    let mut offline = 0;
    for current in online_without_connection().all(&txn).await? {
        let offline_at = current
            .offline_at
            .unwrap_or_else(|| ended.get(&current.user_id).map_or(now, |at| *at) + grace);
        let org_id = current.org_id;
        let pending = current.offline_at.is_none();
        let online_since = current.online_since;
        let mut model = current.into_active_model();
        if offline_at <= now {
            model.connection_status = Set(ConnectionStatus::Offline.as_str().into());
            model.offline_at = Set(None);
            model.updated_at = Set(now);
            let updated = model.update(&txn).await?;
            record_change(
                &txn,
                org_id,
                None,
                &Presence::of(&updated),
                &[Change::ConnectionStatus],
                online_since.map(|from| (from, offline_at.max(from))),
            )
            .await?;
            offline += 1;
        } else if pending {
            model.offline_at = Set(Some(offline_at));
            model.update(&txn).await?;
        }
    }
    txn.commit().await?;
    Ok(Swept {
        expired: removed,
        offline,
    })
}

/// A change a user (or an admin) makes to a presence; `None` leaves a part as it is.
#[derive(Clone, Debug, Default)]
pub struct PresenceUpdate {
    /// New presence status.
    pub presence_status: Option<PresenceStatus>,
    /// The channel types taken (replaces them).
    pub active_channels: Option<Vec<ChannelType>>,
    /// The capacity per channel type (replaces the whole set).
    pub capacity: Option<Vec<(ChannelType, i32)>>,
}

fn validate(update: &PresenceUpdate) -> AppResult<()> {
    let mut errors = Errors::default();
    if let Some(channels) = &update.active_channels {
        let mut seen = HashSet::new();
        for (i, channel) in channels.iter().enumerate() {
            if !seen.insert(*channel) {
                errors.add(
                    &format!("activeChannels.{i}"),
                    UserErrorCode::Invalid,
                    format!("{} is listed twice", channel.as_str()),
                );
            }
        }
    }
    if let Some(capacity) = &update.capacity {
        let mut seen = HashSet::new();
        for (i, (channel, conversations)) in capacity.iter().enumerate() {
            if !(0..=MAX_CAPACITY).contains(conversations) {
                errors.add(
                    &format!("capacity.{i}.conversations"),
                    UserErrorCode::Invalid,
                    format!("must be between 0 and {MAX_CAPACITY}"),
                );
            }
            if !seen.insert(*channel) {
                errors.add(
                    &format!("capacity.{i}.channelType"),
                    UserErrorCode::Invalid,
                    format!("{} is listed twice", channel.as_str()),
                );
            }
        }
    }
    errors.finish()
}

/// Changes the presence of `user_id` (the caller's when `None`). Anyone may change their own;
/// another user's needs ADMIN. Writes one event listing what changed, none when nothing did.
pub async fn set(
    db: &DatabaseConnection,
    principal: &Principal,
    user_id: Option<Uuid>,
    update: &PresenceUpdate,
    now: DateTime<Utc>,
) -> AppResult<Presence> {
    let target = user_id.unwrap_or_else(|| principal.user_id());
    let own = target == principal.user_id();
    if own {
        principal.require(Permission::ReadDirectory)?;
    } else {
        principal.require(Permission::ManageUsers)?;
    }
    validate(update)?;
    let txn = db::begin_write(db).await?;
    if !own
        && tenancy::by_id::<user::Entity>(principal.org_id, target)
            .one(&txn)
            .await?
            .is_none()
    {
        return Err(AppError::invalid(
            "userId",
            UserErrorCode::NotFound,
            "no such user",
        ));
    }
    let current = row_or_initial(&txn, principal.org_id, target, now).await?;
    let before = Presence::of(&current);
    let mut model = current.into_active_model();
    let mut changes = Vec::new();
    if let Some(status) = update.presence_status
        && status != before.presence_status
    {
        changes.push(Change::PresenceStatus);
        model.presence_status = Set(status.as_str().into());
    }
    if let Some(channels) = &update.active_channels {
        let channels = parse_channels(channels.iter().map(|c| c.as_str()));
        if channels != before.active_channels {
            changes.push(Change::ActiveChannels);
            model.active_channels = Set(channels_text(&channels));
        }
    }
    if let Some(capacity) = &update.capacity {
        let capacity = parse_capacity(&capacity_json(capacity));
        if capacity != before.capacity {
            changes.push(Change::Capacity);
            model.capacity = Set(capacity_json(&capacity));
        }
    }
    if own {
        model.last_seen = Set(Some(now));
    }
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    let presence = Presence::of(&updated);
    if !changes.is_empty() {
        record_change(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            &presence,
            &changes,
            None,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(presence)
}

/// The stored presence rows of these users of `org_id`, by user id (one query); users without a
/// row have the initial presence.
pub async fn rows_of(
    db: &DatabaseConnection,
    org_id: Uuid,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, user_presence::Model>> {
    Ok(
        tenancy::by_ids::<user_presence::Entity>(org_id, user_ids.iter().copied())
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.user_id, m))
            .collect(),
    )
}

/// Which users' presence to list. All given conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct PresenceFilter {
    /// Users online or offline.
    pub connection_status: Option<ConnectionStatus>,
    /// Users in this presence status.
    pub presence_status: Option<PresenceStatus>,
    /// Users who take this channel type.
    pub channel_type: Option<ChannelType>,
    /// Members of this team.
    pub team_id: Option<Uuid>,
}

/// Users of `org_id` whose presence row matches `condition`.
fn with_row(org_id: Uuid, condition: sea_orm::sea_query::SimpleExpr) -> sea_orm::Condition {
    sea_orm::Condition::all().add(
        user::Column::Id.in_subquery(
            Query::select()
                .column(user_presence::Column::UserId)
                .from(user_presence::Entity)
                .and_where(user_presence::Column::OrgId.eq(org_id))
                .and_where(condition)
                .to_owned(),
        ),
    )
}

/// Users of `org_id` whose presence row, if they have one, does not match `condition` (users
/// without a row have the initial presence).
fn without_row(org_id: Uuid, condition: sea_orm::sea_query::SimpleExpr) -> sea_orm::Condition {
    sea_orm::Condition::all().add(
        user::Column::Id.not_in_subquery(
            Query::select()
                .column(user_presence::Column::UserId)
                .from(user_presence::Entity)
                .and_where(user_presence::Column::OrgId.eq(org_id))
                .and_where(condition)
                .to_owned(),
        ),
    )
}

/// One page of the presence of the organization's active users, by display name. With a team
/// that is not in the organization: `NOT_FOUND`.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &PresenceFilter,
    args: &PageArgs,
) -> AppResult<(Page<(user::Model, Presence)>, TotalCount)> {
    principal.require(Permission::ReadDirectory)?;
    let org_id = principal.org_id;
    let mut select =
        tenancy::in_org::<user::Entity>(org_id).filter(user::Column::Status.eq("ACTIVE"));
    if let Some(team_id) = filter.team_id {
        if tenancy::by_id::<entity::team::Entity>(org_id, team_id)
            .one(db)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("team".into()));
        }
        select = select.filter(
            user::Column::Id.in_subquery(
                Query::select()
                    .column(team_member::Column::UserId)
                    .from(team_member::Entity)
                    .and_where(team_member::Column::OrgId.eq(org_id))
                    .and_where(team_member::Column::TeamId.eq(team_id))
                    .to_owned(),
            ),
        );
    }
    let status = user_presence::Column::ConnectionStatus;
    select = match filter.connection_status {
        Some(ConnectionStatus::Online) => select.filter(with_row(
            org_id,
            status.eq(ConnectionStatus::Online.as_str()),
        )),
        Some(ConnectionStatus::Offline) => select.filter(without_row(
            org_id,
            status.eq(ConnectionStatus::Online.as_str()),
        )),
        None => select,
    };
    let presence_status = user_presence::Column::PresenceStatus;
    select = match filter.presence_status {
        Some(PresenceStatus::Working) => select.filter(without_row(
            org_id,
            presence_status.ne(PresenceStatus::Working.as_str()),
        )),
        Some(other) => select.filter(with_row(org_id, presence_status.eq(other.as_str()))),
        None => select,
    };
    if let Some(channel) = filter.channel_type {
        // No channel type's name is part of another's, so a match in the list is the type.
        select = select.filter(with_row(
            org_id,
            user_presence::Column::ActiveChannels.like(format!("%{}%", channel.as_str())),
        ));
    }
    let sort = Sort {
        name: "DISPLAY_NAME",
        column: user::Column::DisplayName,
        direction: SortDirection::Asc,
        value: |m: &user::Model| SortValue::Text(m.display_name.clone()),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "presence", &sort, args).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|(_, u)| u.id).collect();
    let rows = rows_of(db, org_id, &ids).await?;
    let page = page.map(|u| {
        let presence = Presence::of_row(u.id, rows.get(&u.id));
        (u, presence)
    });
    Ok((page, total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_survives_the_event_payload_round_trip() {
        let presence = Presence {
            user_id: Uuid::now_v7(),
            connection_status: ConnectionStatus::Online,
            presence_status: PresenceStatus::Busy,
            active_channels: vec![ChannelType::Email, ChannelType::Chat],
            capacity: vec![(ChannelType::Email, 3), (ChannelType::Chat, 0)],
            last_seen: Some(Utc::now()),
        };
        assert_eq!(Presence::from_json(&presence.to_json()), Some(presence));
    }

    #[test]
    fn capacity_outside_its_range_and_listed_twice_is_refused_with_every_error() {
        let update = PresenceUpdate {
            presence_status: None,
            active_channels: Some(vec![ChannelType::Sms, ChannelType::Sms]),
            capacity: Some(vec![(ChannelType::Email, -1), (ChannelType::Email, 1_001)]),
        };
        let Err(AppError::Validation(errors)) = validate(&update) else {
            panic!("expected a validation failure");
        };
        let fields: Vec<String> = errors.iter().map(|e| e.field.join(".")).collect();
        assert_eq!(
            fields,
            [
                "input.activeChannels.1",
                "input.capacity.0.conversations",
                "input.capacity.1.conversations",
                "input.capacity.1.channelType",
            ]
        );
    }
}
