//! Reading an inbox page in few statements: the page of conversations joined with the rows an inbox
//! list shows of each (requester, assignee, queue, channel, last message and its author, the
//! reader's unread count), and the page's tags joined with their links.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    channel, contact, conversation, conversation_read, conversation_tag, message, queue, tag, user,
};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, QueryFilter, QueryOrder, QueryResult, QueryTrait,
};
use uuid::Uuid;

use super::service::{ConversationFilter, OrderField, filtered, sort};
use crate::auth::{Permission, Principal};
use crate::error::AppResult;
use crate::graphql::relay::{Page, PageArgs, SortDirection, TotalCount, paginate_rows};
use crate::tenancy::OrgScoped;

/// What an inbox page reads along with each conversation, in the page's own statement.
#[derive(Clone, Copy, Debug, Default)]
pub struct Includes {
    /// The requesting contact.
    pub requester: bool,
    /// The assigned user.
    pub assignee: bool,
    /// The queue.
    pub queue: bool,
    /// The channel.
    pub channel: bool,
    /// The last message.
    pub last_message: bool,
    /// The last message's author, contact or user (implies `last_message`).
    pub author: bool,
    /// This reader's unread count and read position.
    pub unread_for: Option<Uuid>,
}

/// A conversation of a page with the rows [`Includes`] asked for: `None` when not asked for or
/// when there is none (no assignee, no queue, …).
#[derive(Debug)]
pub struct Row {
    /// The conversation.
    pub conversation: conversation::Model,
    /// Its requester.
    pub requester: Option<contact::Model>,
    /// Its assignee.
    pub assignee: Option<user::Model>,
    /// Its queue.
    pub queue: Option<queue::Model>,
    /// Its channel.
    pub channel: Option<channel::Model>,
    /// Its last message.
    pub last_message: Option<message::Model>,
    /// The last message's author when a contact.
    pub author_contact: Option<contact::Model>,
    /// The last message's author when a user.
    pub author_user: Option<user::Model>,
    /// Unread messages for the reader and the reader's read position.
    pub unread: Option<(i64, Option<DateTime<Utc>>)>,
}

impl std::borrow::Borrow<conversation::Model> for Row {
    fn borrow(&self) -> &conversation::Model {
        &self.conversation
    }
}

const REQUESTER: &str = "rq";
const ASSIGNEE: &str = "asg";
const QUEUE: &str = "q";
const CHANNEL: &str = "ch";
const LAST_MESSAGE: &str = "lm";
const AUTHOR_CONTACT: &str = "lmc";
const AUTHOR_USER: &str = "lmu";
const READ: &str = "rd";
const UNREAD: &str = "unread_count";

/// One page of the inbox (the conversations `filter` selects, in `order`) with what `includes`
/// asks for, in one statement whatever the page size.
pub async fn page(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: ConversationFilter,
    order: (OrderField, SortDirection),
    args: &PageArgs,
    includes: Includes,
) -> AppResult<(Page<Row>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let select = filtered(principal, filter);
    let total = TotalCount::of(db, select.clone());
    let page = paginate_rows(
        db,
        select,
        "conversations",
        &sort(order.0, order.1),
        args,
        |statement| widen(statement, includes),
        |row| decode(row, includes),
    )
    .await?;
    Ok((page, total))
}

/// Adds the joins and columns of `includes` around the page. Each join is a left join on the
/// referenced id within the conversation's organization, so it never adds or drops rows.
fn widen(query: &mut SelectStatement, includes: Includes) {
    use conversation::Column as C;
    let own = |column: C| Expr::col((conversation::Entity, column));
    if includes.requester {
        join::<contact::Entity>(query, REQUESTER, own(C::RequesterId));
    }
    if includes.assignee {
        join::<user::Entity>(query, ASSIGNEE, own(C::AssigneeId));
    }
    if includes.queue {
        join::<queue::Entity>(query, QUEUE, own(C::QueueId));
    }
    if includes.channel {
        join::<channel::Entity>(query, CHANNEL, own(C::ChannelId));
    }
    if includes.last_message || includes.author {
        join::<message::Entity>(query, LAST_MESSAGE, own(C::LastMessageId));
    }
    if includes.author {
        let author = |column: message::Column| Expr::col((Alias::new(LAST_MESSAGE), column));
        join::<contact::Entity>(
            query,
            AUTHOR_CONTACT,
            author(message::Column::AuthorContactId),
        );
        join::<user::Entity>(query, AUTHOR_USER, author(message::Column::AuthorUserId));
    }
    if let Some(reader) = includes.unread_for {
        read_position(query, reader);
    }
}

/// Adds `reader`'s read position of each conversation (`rd_last_read_at`) and unread count
/// (`unread_count`): messages after that position that someone else wrote and that are not
/// removed.
fn read_position(query: &mut SelectStatement, reader: Uuid) {
    use conversation::Column as C;
    use conversation_read::Column as R;
    use message::Column as M;
    let read = Alias::new(READ);
    query.join_as(
        JoinType::LeftJoin,
        conversation_read::Entity,
        read.clone(),
        Expr::col((read.clone(), R::ConversationId))
            .equals((conversation::Entity, C::Id))
            .and(Expr::col((read.clone(), R::ReaderId)).eq(reader)),
    );
    query.expr_as(
        R::LastReadAt.select_as(Expr::col((read.clone(), R::LastReadAt))),
        Alias::new(format!("{READ}_{}", R::LastReadAt.as_str())),
    );
    let unread = Alias::new("um");
    let column = |c: M| Expr::col((unread.clone(), c));
    let count = Query::select()
        .expr(Expr::col((unread.clone(), M::Id)).count())
        .from_as(message::Entity, unread.clone())
        .and_where(column(M::ConversationId).equals((conversation::Entity, C::Id)))
        .and_where(column(M::RemovedAt).is_null())
        .and_where(
            column(M::AuthorUserId)
                .is_null()
                .or(column(M::AuthorUserId).ne(reader)),
        )
        .and_where(
            Expr::col((read.clone(), R::LastReadAt))
                .is_null()
                .or(column(M::CreatedAt).gt(Expr::col((read, R::LastReadAt)))),
        )
        .to_owned();
    query.expr_as(
        Expr::SubQuery(None, Box::new(count.into())),
        Alias::new(UNREAD),
    );
}

/// The unread position of [`read_position`] as decoded from a row that has it.
fn decode_unread(row: &QueryResult) -> AppResult<(i64, Option<DateTime<Utc>>)> {
    Ok((
        row.try_get::<i64>("", UNREAD)?,
        row.try_get::<Option<DateTime<Utc>>>(
            &format!("{READ}_"),
            conversation_read::Column::LastReadAt.as_str(),
        )?,
    ))
}

/// Unread count and read position of `reader` for each of these conversations of `org_id`, with
/// one statement (for conversations read outside an inbox page).
pub async fn unread_counts<Conn: ConnectionTrait>(
    conn: &Conn,
    org_id: Uuid,
    reader: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, (i64, Option<DateTime<Utc>>)>> {
    use conversation::Column as C;
    if conversation_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = Query::select();
    query
        .column((conversation::Entity, C::Id))
        .from(conversation::Entity)
        .and_where(Expr::col((conversation::Entity, C::OrgId)).eq(org_id))
        .and_where(
            Expr::col((conversation::Entity, C::Id)).is_in(conversation_ids.iter().copied()),
        );
    read_position(&mut query, reader);
    let rows = conn
        .query_all_raw(conn.get_database_backend().build(&query))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get::<Uuid>("", "id")?, decode_unread(row)?)))
        .collect()
}

/// Left-joins `J` as `alias` on `J.id = key` within the conversation's organization, selecting
/// every column of `J` as `{alias}_{column}`.
fn join<J: OrgScoped>(query: &mut SelectStatement, alias: &str, key: Expr) {
    let table = Alias::new(alias);
    query.join_as(
        JoinType::LeftJoin,
        J::default(),
        table.clone(),
        Expr::col((table.clone(), J::id_column())).eq(key).and(
            Expr::col((table.clone(), J::org_column()))
                .equals((conversation::Entity, conversation::Column::OrgId)),
        ),
    );
    for column in J::Column::iter() {
        query.expr_as(
            column.select_as(Expr::col((table.clone(), column))),
            Alias::new(format!("{alias}_{}", column.as_str())),
        );
    }
}

/// The row of `J` joined as `alias`, if the join found one.
fn joined<J: EntityTrait>(
    row: &QueryResult,
    alias: &str,
    wanted: bool,
) -> AppResult<Option<J::Model>>
where
    J::Model: FromQueryResult,
{
    if !wanted {
        return Ok(None);
    }
    let prefix = format!("{alias}_");
    if row.try_get::<Option<Uuid>>(&prefix, "id")?.is_none() {
        return Ok(None);
    }
    Ok(Some(J::Model::from_query_result(row, &prefix)?))
}

fn decode(row: &QueryResult, includes: Includes) -> AppResult<Row> {
    let unread = match includes.unread_for {
        Some(_) => Some(decode_unread(row)?),
        None => None,
    };
    Ok(Row {
        conversation: conversation::Model::from_query_result(row, "")?,
        requester: joined::<contact::Entity>(row, REQUESTER, includes.requester)?,
        assignee: joined::<user::Entity>(row, ASSIGNEE, includes.assignee)?,
        queue: joined::<queue::Entity>(row, QUEUE, includes.queue)?,
        channel: joined::<channel::Entity>(row, CHANNEL, includes.channel)?,
        last_message: joined::<message::Entity>(
            row,
            LAST_MESSAGE,
            includes.last_message || includes.author,
        )?,
        author_contact: joined::<contact::Entity>(row, AUTHOR_CONTACT, includes.author)?,
        author_user: joined::<user::Entity>(row, AUTHOR_USER, includes.author)?,
        unread,
    })
}

/// The active and inactive tags of each of these conversations, by name, with one statement.
pub async fn tags<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<tag::Model>>> {
    let mut out: HashMap<Uuid, Vec<tag::Model>> = HashMap::new();
    if conversation_ids.is_empty() {
        return Ok(out);
    }
    let link = Alias::new("ct");
    let owner = "ct_conversation_id";
    let mut select = tag::Entity::find().filter(tag::Column::OrgId.eq(org_id));
    let query = QueryTrait::query(&mut select);
    query
        .join_as(
            JoinType::InnerJoin,
            conversation_tag::Entity,
            link.clone(),
            Expr::col((link.clone(), conversation_tag::Column::TagId))
                .equals((tag::Entity, tag::Column::Id))
                .and(Expr::col((link.clone(), conversation_tag::Column::OrgId)).eq(org_id)),
        )
        .expr_as(
            Expr::col((link.clone(), conversation_tag::Column::ConversationId)),
            Alias::new(owner),
        )
        .and_where(
            Expr::col((link, conversation_tag::Column::ConversationId))
                .is_in(conversation_ids.iter().copied()),
        );
    let select = select.order_by_asc(tag::Column::NameKey);
    let rows = conn
        .query_all_raw(select.build(conn.get_database_backend()))
        .await?;
    for row in rows {
        let conversation: Uuid = row.try_get("", owner)?;
        out.entry(conversation)
            .or_default()
            .push(tag::Model::from_query_result(&row, "")?);
    }
    Ok(out)
}
