//! Business rules for auto-responders, and the answer to each inbound message.
//!
//! An auto-responder belongs to one channel and has a trigger:
//! - `KEYWORD`: the message's text equals (`EXACT`) or contains (`CONTAINS`, on word
//!   boundaries) one of its keywords, ignoring case and surrounding spaces and punctuation;
//! - `OUT_OF_HOURS`: the message arrives outside its business hours (its own, in their
//!   timezone, or else the channel's);
//! - `FIRST_MESSAGE`: the message is the first one the contact wrote in the conversation;
//! - `OPT_OUT` / `OPT_IN`: the confirmation text for SMS consent keywords (see below).
//!
//! It answers only while enabled and between its `startsAt` and `endsAt` (either open). For
//! each inbound message from a contact, at most one reply is sent, in this order: SMS consent
//! keywords, then the oldest matching keyword responder, then out-of-hours, then
//! first-message. An out-of-hours responder answers a conversation at most once per
//! [`OUT_OF_HOURS_QUIET_HOURS`] hours, so a contact writing several messages at night gets one
//! answer.
//!
//! SMS consent keywords work on every SMS channel with no set-up: a message that is only `STOP`
//! or a synonym (`STOPALL UNSUBSCRIBE CANCEL END QUIT OPTOUT`) records the contact's SMS consent
//! as `OPTED_OUT` (source `SMS_KEYWORD:<word>`), `START` or a synonym (`UNSTOP YES SUBSCRIBE
//! OPTIN`) as `OPTED_IN`, and the channel answers with its `OPT_OUT` / `OPT_IN` responder's
//! text, or a default one. That confirmation is the one message sent to a contact who just
//! opted out.
//!
//! Replies are ordinary outbound messages by the system in the same conversation (queued for
//! delivery like any other), written in the transaction that stores the inbound message, and
//! logged in `auto_responder_replies`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::auto_responder as responder;
use entity::auto_responder_reply as reply;
use entity::{channel, contact, conversation, message};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::channels::service::{BusinessHours, check_hours};
use crate::contacts::service::{Consent, ConsentStatus, record_consent};
use crate::conversations::Party;
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::messages::service::{Direction, NewMessage, append, default_addresses};
use crate::tenancy;
use crate::validate::Errors;

/// Kind of the events' subject.
pub const SUBJECT: &str = "AutoResponder";
/// Longest name.
const MAX_NAME: usize = 100;
/// Longest reply (an SMS of ten segments).
const MAX_BODY: usize = 1_600;
/// Most keywords per responder.
const MAX_KEYWORDS: usize = 50;
/// Longest keyword.
const MAX_KEYWORD: usize = 100;
/// Hours an out-of-hours responder stays quiet in a conversation after answering it.
pub const OUT_OF_HOURS_QUIET_HOURS: i64 = 12;

/// Words that opt a contact out of SMS.
pub const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
];
/// Words that opt a contact back in to SMS.
pub const OPT_IN_WORDS: &[&str] = &["START", "UNSTOP", "YES", "SUBSCRIBE", "OPTIN"];
/// The confirmation of an opt-out when the channel has no `OPT_OUT` responder.
pub const DEFAULT_OPT_OUT_REPLY: &str =
    "You have been unsubscribed and will receive no more messages. Reply START to resubscribe.";
/// The confirmation of an opt-in when the channel has no `OPT_IN` responder.
pub const DEFAULT_OPT_IN_REPLY: &str =
    "You have been resubscribed and will receive messages again. Reply STOP to unsubscribe.";

stored_enum!(
    /// What makes a responder answer.
    Trigger {
        /// A keyword in the message.
        Keyword => "KEYWORD",
        /// A message outside business hours.
        OutOfHours => "OUT_OF_HOURS",
        /// The contact's first message in a conversation.
        FirstMessage => "FIRST_MESSAGE",
        /// An SMS opt-out keyword (the responder holds the confirmation).
        OptOut => "OPT_OUT",
        /// An SMS opt-in keyword (the responder holds the confirmation).
        OptIn => "OPT_IN",
    }
);

stored_enum!(
    /// How keywords match.
    MatchKind {
        /// The whole message is the keyword.
        Exact => "EXACT",
        /// The message contains the keyword as whole words.
        Contains => "CONTAINS",
    }
);

/// Words of `text`, upper-cased, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect()
}

/// Whether `text` matches `keyword` as `kind` says (case-insensitive, ignoring punctuation and
/// spacing around words).
pub fn matches(kind: MatchKind, keyword: &str, text: &str) -> bool {
    let keyword = words(keyword);
    if keyword.is_empty() {
        return false;
    }
    let text = words(text);
    match kind {
        MatchKind::Exact => text == keyword,
        MatchKind::Contains => text.windows(keyword.len()).any(|w| w == keyword.as_slice()),
    }
}

/// The consent an SMS text asks for, with the word, when it is only a consent keyword.
pub fn consent_keyword(text: &str) -> Option<(ConsentStatus, String)> {
    let words = words(text);
    let [word] = words.as_slice() else {
        return None;
    };
    if OPT_OUT_WORDS.contains(&word.as_str()) {
        Some((ConsentStatus::OptedOut, word.clone()))
    } else if OPT_IN_WORDS.contains(&word.as_str()) {
        Some((ConsentStatus::OptedIn, word.clone()))
    } else {
        None
    }
}

/// A responder's fields. On update `None` leaves a field and `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct ResponderInput {
    /// The channel (create only).
    pub channel_id: Option<Uuid>,
    /// Name.
    pub name: Option<String>,
    /// Trigger (create only).
    pub trigger: Option<Trigger>,
    /// How keywords match (keyword responders; default `EXACT`).
    pub match_kind: Option<MatchKind>,
    /// Keywords (keyword responders).
    pub keywords: Option<Vec<String>>,
    /// The reply.
    pub body: Option<String>,
    /// Business hours (out-of-hours responders).
    pub business_hours: Option<Option<BusinessHours>>,
    /// Answers from then on.
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// Answers until then.
    pub ends_at: Option<Option<DateTime<Utc>>>,
    /// Whether it answers.
    pub enabled: Option<bool>,
}

async fn find<C: ConnectionTrait>(conn: &C, org_id: Uuid, id: Uuid) -> AppResult<responder::Model> {
    tenancy::by_id::<responder::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such auto-responder"))
}

/// Checks a responder as it would be stored (`model` holds the result of the changes) and its
/// channel.
async fn check<C: ConnectionTrait>(
    conn: &C,
    errors: &mut Errors,
    model: &responder::Model,
) -> AppResult<()> {
    let channel = tenancy::by_id::<channel::Entity>(model.org_id, model.channel_id)
        .one(conn)
        .await?;
    let Some(channel) = channel else {
        errors.add("channelId", UserErrorCode::NotFound, "no such channel");
        return Ok(());
    };
    if channel.status == "ARCHIVED" {
        errors.add(
            "channelId",
            UserErrorCode::InvalidState,
            "the channel is archived",
        );
    }
    let trigger = Trigger::parse(&model.trigger);
    let keywords: Vec<String> = serde_json::from_value(model.keywords.clone()).unwrap_or_default();
    match trigger {
        Some(Trigger::Keyword) if keywords.is_empty() => errors.add(
            "keywords",
            UserErrorCode::Required,
            "a KEYWORD responder needs at least one keyword",
        ),
        Some(Trigger::Keyword) => {
            let sms = ChannelType::parse(&channel.channel_type) == Some(ChannelType::Sms);
            for (i, keyword) in keywords.iter().enumerate() {
                if sms && consent_keyword(keyword).is_some() {
                    errors.add(
                        &format!("keywords.{i}"),
                        UserErrorCode::Invalid,
                        format!(
                            "{keyword:?} is an SMS consent keyword: set its confirmation with an OPT_OUT or OPT_IN responder"
                        ),
                    );
                }
            }
        }
        Some(Trigger::OutOfHours)
            if model.business_hours.is_none() && BusinessHours::of(&channel).is_none() =>
        {
            errors.add(
                "businessHours",
                UserErrorCode::Required,
                "an OUT_OF_HOURS responder needs business hours: give them, or set the channel's",
            )
        }
        Some(Trigger::OptOut | Trigger::OptIn) => {
            if ChannelType::parse(&channel.channel_type) != Some(ChannelType::Sms) {
                errors.add(
                    "trigger",
                    UserErrorCode::Invalid,
                    "OPT_OUT and OPT_IN responders are for SMS channels",
                );
            } else {
                let same = tenancy::in_org::<responder::Entity>(model.org_id)
                    .filter(responder::Column::ChannelId.eq(model.channel_id))
                    .filter(responder::Column::Trigger.eq(model.trigger.clone()))
                    .filter(responder::Column::Id.ne(model.id))
                    .count(conn)
                    .await?;
                if same > 0 {
                    errors.add(
                        "trigger",
                        UserErrorCode::Taken,
                        format!("the channel already has an {} responder", model.trigger),
                    );
                }
            }
        }
        _ => {}
    }
    if let (Some(starts), Some(ends)) = (model.starts_at, model.ends_at)
        && ends <= starts
    {
        errors.add(
            "endsAt",
            UserErrorCode::Invalid,
            "endsAt must be after startsAt",
        );
    }
    Ok(())
}

/// Validates the fields given, into `model`.
fn apply(errors: &mut Errors, model: &mut responder::Model, input: ResponderInput) {
    if let Some(name) = input.name {
        model.name = errors.required_text("name", &name, MAX_NAME);
    }
    if let Some(body) = input.body {
        model.body = errors.required_text("body", &body, MAX_BODY);
    }
    if let Some(kind) = input.match_kind {
        model.match_kind = Some(kind.as_str().into());
    }
    if let Some(keywords) = input.keywords {
        if keywords.len() > MAX_KEYWORDS {
            errors.add(
                "keywords",
                UserErrorCode::TooLong,
                format!("at most {MAX_KEYWORDS} keywords"),
            );
        }
        let mut kept: Vec<String> = Vec::new();
        for (i, keyword) in keywords.iter().enumerate() {
            let field = format!("keywords.{i}");
            let text = errors.required_text(&field, keyword, MAX_KEYWORD);
            if !text.is_empty() && words(&text).is_empty() {
                errors.add(&field, UserErrorCode::Invalid, "a keyword needs a word");
            } else if !text.is_empty()
                && !kept.iter().any(|k| k.to_uppercase() == text.to_uppercase())
            {
                kept.push(text);
            }
        }
        model.keywords = json!(kept);
    }
    if let Some(hours) = input.business_hours {
        model.business_hours = hours.map(|h| {
            let checked = check_hours(errors, h);
            serde_json::to_value(checked).unwrap_or_default()
        });
    }
    if let Some(starts_at) = input.starts_at {
        model.starts_at = starts_at;
    }
    if let Some(ends_at) = input.ends_at {
        model.ends_at = ends_at;
    }
    if let Some(enabled) = input.enabled {
        model.enabled = enabled;
    }
    if model.trigger != Trigger::Keyword.as_str() {
        if model.match_kind.is_some() || model.keywords.as_array().is_some_and(|k| !k.is_empty()) {
            errors.add(
                "keywords",
                UserErrorCode::Invalid,
                "only KEYWORD responders have keywords and a match kind",
            );
        }
    } else if model.match_kind.is_none() {
        model.match_kind = Some(MatchKind::Exact.as_str().into());
    }
    if model.trigger != Trigger::OutOfHours.as_str() && model.business_hours.is_some() {
        errors.add(
            "businessHours",
            UserErrorCode::Invalid,
            "only OUT_OF_HOURS responders have business hours",
        );
    }
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    kind: &str,
    model: &responder::Model,
) -> AppResult<()> {
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        kind,
        Subject::new(SUBJECT, model.id),
        json!({ "name": model.name, "trigger": model.trigger, "enabled": model.enabled }),
    )
    .await?;
    Ok(())
}

/// Creates an auto-responder (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: ResponderInput,
) -> AppResult<responder::Model> {
    principal.require(Permission::ManageRouting)?;
    let now = Utc::now();
    let mut errors = Errors::default();
    let mut model = responder::Model {
        id: Uuid::now_v7(),
        org_id: principal.org_id,
        channel_id: input.channel_id.unwrap_or_default(),
        name: String::new(),
        trigger: input.trigger.unwrap_or(Trigger::Keyword).as_str().into(),
        match_kind: None,
        keywords: json!([]),
        body: String::new(),
        business_hours: None,
        starts_at: None,
        ends_at: None,
        enabled: true,
        created_by: Some(principal.user_id()),
        created_at: now,
        updated_at: now,
    };
    let input = ResponderInput {
        name: Some(input.name.unwrap_or_default()),
        body: Some(input.body.unwrap_or_default()),
        ..input
    };
    apply(&mut errors, &mut model, input);
    let txn = db::begin_write(db).await?;
    check(&txn, &mut errors, &model).await?;
    errors.finish()?;
    let model = responder::ActiveModel::from(model)
        .reset_all()
        .insert(&txn)
        .await?;
    record(&txn, principal, "AUTO_RESPONDER_CREATED", &model).await?;
    txn.commit().await?;
    Ok(model)
}

/// Changes an auto-responder (TEAM_LEAD); its channel and trigger stay.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    input: ResponderInput,
) -> AppResult<responder::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let mut model = current.clone();
    let mut errors = Errors::default();
    apply(&mut errors, &mut model, input);
    check(&txn, &mut errors, &model).await?;
    errors.finish()?;
    model.updated_at = Utc::now();
    let mut active = current.into_active_model();
    active.name = Set(model.name);
    active.match_kind = Set(model.match_kind);
    active.keywords = Set(model.keywords);
    active.body = Set(model.body);
    active.business_hours = Set(model.business_hours);
    active.starts_at = Set(model.starts_at);
    active.ends_at = Set(model.ends_at);
    active.enabled = Set(model.enabled);
    active.updated_at = Set(model.updated_at);
    let updated = active.update(&txn).await?;
    record(&txn, principal, "AUTO_RESPONDER_UPDATED", &updated).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes an auto-responder (TEAM_LEAD); its replies stay, without it.
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    responder::Entity::delete_by_id(id).exec(&txn).await?;
    record(&txn, principal, "AUTO_RESPONDER_DELETED", &current).await?;
    txn.commit().await?;
    Ok(id)
}

/// Which responders to list.
#[derive(Clone, Debug, Default)]
pub struct ResponderFilter {
    /// Of this channel.
    pub channel_id: Option<Uuid>,
    /// With this trigger.
    pub trigger: Option<Trigger>,
    /// Enabled or not.
    pub enabled: Option<bool>,
}

/// One page of the organization's responders, oldest first (the order keywords are tried in).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: ResponderFilter,
    args: &PageArgs,
) -> AppResult<(Page<responder::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let mut select = tenancy::in_org::<responder::Entity>(principal.org_id);
    if let Some(channel) = filter.channel_id {
        select = select.filter(responder::Column::ChannelId.eq(channel));
    }
    if let Some(trigger) = filter.trigger {
        select = select.filter(responder::Column::Trigger.eq(trigger.as_str()));
    }
    if let Some(enabled) = filter.enabled {
        select = select.filter(responder::Column::Enabled.eq(enabled));
    }
    let sort = Sort {
        name: "CREATED_AT",
        column: responder::Column::CreatedAt,
        direction: SortDirection::Asc,
        value: |m: &responder::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "autoResponders", &sort, args).await?;
    Ok((page, total))
}

/// How many replies each of `ids` sent: one grouped count for all of them.
pub async fn reply_counts(
    db: &DatabaseConnection,
    org_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, u64>> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    let rows: Vec<(Option<Uuid>, i64)> = tenancy::in_org::<reply::Entity>(org_id)
        .select_only()
        .column(reply::Column::ResponderId)
        .column_as(Expr::col(reply::Column::Id).count(), "n")
        .filter(reply::Column::ResponderId.is_in(ids.iter().copied()))
        .group_by(reply::Column::ResponderId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, n)| Some((id?, u64::try_from(n).unwrap_or_default())))
        .collect())
}

fn active_at(model: &responder::Model, at: DateTime<Utc>) -> bool {
    model.enabled && model.starts_at.is_none_or(|s| s <= at) && model.ends_at.is_none_or(|e| at < e)
}

/// Answers `inbound`, a message the contact `contact_id` just wrote in `conversation`, inside
/// the transaction that stores it (see the module documentation). `first` tells whether it is
/// the contact's first message in the conversation. Returns whether a reply was sent.
pub async fn on_inbound<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
    inbound: &message::Model,
    contact_id: Uuid,
    first: bool,
) -> AppResult<bool> {
    let Some(channel_id) = conversation.channel_id else {
        return Ok(false);
    };
    let Some(channel) = channel::Entity::find_by_id(channel_id).one(conn).await? else {
        return Ok(false);
    };
    if channel.status == "ARCHIVED" {
        return Ok(false);
    }
    let text = inbound.text_body.as_deref().unwrap_or_default();
    let at = inbound.created_at;
    let responders = responder::Entity::find()
        .filter(responder::Column::ChannelId.eq(channel.id))
        .filter(responder::Column::Enabled.eq(true))
        .order_by_asc(responder::Column::CreatedAt)
        .order_by_asc(responder::Column::Id)
        .all(conn)
        .await?;
    let active: Vec<&responder::Model> = responders.iter().filter(|r| active_at(r, at)).collect();
    let of = |trigger: Trigger| {
        active
            .iter()
            .copied()
            .filter(move |r| r.trigger == trigger.as_str())
    };

    if ChannelType::parse(&channel.channel_type) == Some(ChannelType::Sms)
        && let Some((status, word)) = consent_keyword(text)
    {
        let Some(contact) = contact::Entity::find_by_id(contact_id).one(conn).await? else {
            return Ok(false);
        };
        if contact.anonymized_at.is_some() {
            return Ok(false);
        }
        let (trigger, default) = match status {
            ConsentStatus::OptedOut => (Trigger::OptOut, DEFAULT_OPT_OUT_REPLY),
            ConsentStatus::OptedIn => (Trigger::OptIn, DEFAULT_OPT_IN_REPLY),
        };
        let contact = record_consent(
            conn,
            conversation.org_id,
            None,
            contact,
            Consent {
                channel: ChannelType::Sms,
                status,
                at,
                source: Some(format!("SMS_KEYWORD:{word}")),
            },
        )
        .await?;
        let confirmation = of(trigger).next();
        let body = confirmation.map_or(default, |r| r.body.as_str());
        return send_reply(
            conn,
            conversation,
            &channel,
            &contact,
            inbound,
            confirmation.map(|r| r.id),
            body,
        )
        .await;
    }

    let keyword = of(Trigger::Keyword).find(|r| {
        let kind = r
            .match_kind
            .as_deref()
            .and_then(MatchKind::parse)
            .unwrap_or(MatchKind::Exact);
        let keywords: Vec<String> = serde_json::from_value(r.keywords.clone()).unwrap_or_default();
        keywords.iter().any(|k| matches(kind, k, text))
    });
    let mut chosen = keyword;
    if chosen.is_none() {
        for candidate in of(Trigger::OutOfHours) {
            let hours = candidate
                .business_hours
                .as_ref()
                .and_then(|h| serde_json::from_value::<BusinessHours>(h.clone()).ok())
                .or_else(|| BusinessHours::of(&channel));
            let Some(hours) = hours else { continue };
            if hours.is_open_at(at) {
                continue;
            }
            let quiet_since = at - Duration::hours(OUT_OF_HOURS_QUIET_HOURS);
            let answered = reply::Entity::find()
                .filter(reply::Column::ResponderId.eq(candidate.id))
                .filter(reply::Column::ConversationId.eq(conversation.id))
                .filter(reply::Column::CreatedAt.gt(quiet_since))
                .count(conn)
                .await?;
            if answered == 0 {
                chosen = Some(candidate);
                break;
            }
        }
    }
    if chosen.is_none() && first {
        chosen = of(Trigger::FirstMessage).next();
    }
    let Some(chosen) = chosen else {
        return Ok(false);
    };
    let Some(contact) = contact::Entity::find_by_id(contact_id).one(conn).await? else {
        return Ok(false);
    };
    send_reply(
        conn,
        conversation,
        &channel,
        &contact,
        inbound,
        Some(chosen.id),
        &chosen.body,
    )
    .await
}

/// Appends the reply `body` to the conversation, as the system, and logs it.
async fn send_reply<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
    channel: &channel::Model,
    contact: &contact::Model,
    inbound: &message::Model,
    responder_id: Option<Uuid>,
    body: &str,
) -> AppResult<bool> {
    // The conversation as the inbound message left it.
    let Some(current) = conversation::Entity::find_by_id(conversation.id)
        .one(conn)
        .await?
    else {
        return Ok(false);
    };
    let mut new = NewMessage::text(Party::System, Direction::Outbound, body);
    let (from, to) = default_addresses(channel, contact, Direction::Outbound);
    new.from_address = from;
    new.to = match inbound.from_address.clone() {
        Some(theirs) if !to.is_empty() => vec![theirs],
        _ => to,
    };
    if ChannelType::parse(&channel.channel_type) == Some(ChannelType::Email) {
        let subject = inbound
            .email_subject
            .as_deref()
            .or(current.subject.as_deref())
            .unwrap_or_default();
        new.email_subject = Some(if subject.to_lowercase().starts_with("re:") {
            subject.to_string()
        } else {
            format!("Re: {subject}").trim_end().to_string()
        });
    }
    new.created_at = Utc::now().max(inbound.created_at);
    let (message, _) = Box::pin(append(conn, current, new, None)).await?;
    reply::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(conversation.org_id),
        responder_id: Set(responder_id),
        conversation_id: Set(conversation.id),
        inbound_message_id: Set(inbound.id),
        message_id: Set(message.id),
        created_at: Set(message.created_at),
    }
    .insert(conn)
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_ignoring_case_and_punctuation() {
        assert!(matches(MatchKind::Exact, "hours", "  Hours?! "));
        assert!(!matches(MatchKind::Exact, "hours", "opening hours"));
        assert!(matches(
            MatchKind::Contains,
            "opening hours",
            "what are your Opening hours?"
        ));
        assert!(!matches(MatchKind::Contains, "hour", "what are your hours"));
        assert!(!matches(MatchKind::Contains, "!!", "anything"));
    }

    #[test]
    fn consent_keywords_are_the_whole_message() {
        assert_eq!(
            consent_keyword(" stop. "),
            Some((ConsentStatus::OptedOut, "STOP".into()))
        );
        assert_eq!(
            consent_keyword("Unsubscribe"),
            Some((ConsentStatus::OptedOut, "UNSUBSCRIBE".into()))
        );
        assert_eq!(
            consent_keyword("START"),
            Some((ConsentStatus::OptedIn, "START".into()))
        );
        assert_eq!(consent_keyword("please stop calling"), None);
        assert_eq!(consent_keyword(""), None);
    }
}
