//! Relay conventions: opaque global ids, cursors, and cursor connections over SeaORM selects with
//! keyset pagination by `(sort key, id)`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{Enum, ID, Object, OutputType, SimpleObject, TypeName};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Asterisk, IntoCondition, IntoIden, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select, Value,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::tenancy::OrgScoped;

/// Smallest and largest page size.
pub const PAGE_SIZE_RANGE: std::ops::RangeInclusive<i32> = 1..=100;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Encodes a global id: the type name and the row id, opaque to clients.
pub fn encode_id(type_name: &str, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{type_name}:{}", id.simple())))
}

/// Decodes any global id into its type name and row id.
pub fn decode_any_id(id: &str) -> AppResult<(String, Uuid)> {
    let invalid = || AppError::BadUserInput(format!("{id:?} is not a valid id"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (type_name, raw) = text.split_once(':').ok_or_else(invalid)?;
    let uuid = Uuid::parse_str(raw).map_err(|_| invalid())?;
    Ok((type_name.to_string(), uuid))
}

/// Decodes a global id that must be of type `type_name`.
pub fn decode_id(id: &str, type_name: &str) -> AppResult<Uuid> {
    match decode_any_id(id)? {
        (found, uuid) if found == type_name => Ok(uuid),
        (found, _) => Err(AppError::BadUserInput(format!(
            "expected an id of a {type_name}, got an id of a {found}"
        ))),
    }
}

/// Sort direction.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Pagination arguments of a connection field.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    /// Items after this cursor.
    pub after: Option<String>,
    /// Items before this cursor.
    pub before: Option<String>,
    /// The first N items.
    pub first: Option<i32>,
    /// The last N items.
    pub last: Option<i32>,
}

/// A value of a sort column, as stored in a cursor.
#[derive(Clone, Debug, PartialEq)]
pub enum SortValue {
    /// A text column.
    Text(String),
    /// A timestamp column.
    Time(DateTime<Utc>),
    /// An integer column.
    Int(i64),
}

impl SortValue {
    fn encode(&self) -> serde_json::Value {
        match self {
            SortValue::Text(s) => serde_json::json!(["t", s]),
            SortValue::Time(t) => serde_json::json!(["d", t.to_rfc3339()]),
            SortValue::Int(i) => serde_json::json!(["i", i.to_string()]),
        }
    }

    fn decode(value: &serde_json::Value) -> Option<Self> {
        let kind = value.get(0)?.as_str()?;
        let raw = value.get(1)?.as_str()?;
        match kind {
            "t" => Some(SortValue::Text(raw.to_string())),
            "d" => DateTime::parse_from_rfc3339(raw)
                .ok()
                .map(|t| SortValue::Time(t.with_timezone(&Utc))),
            "i" => raw.parse().ok().map(SortValue::Int),
            _ => None,
        }
    }

    fn into_value(self) -> Value {
        match self {
            SortValue::Text(s) => s.into(),
            SortValue::Time(t) => t.into(),
            SortValue::Int(i) => i.into(),
        }
    }
}

/// How a connection is ordered: a column, its direction, and how to read it off a row. The row id
/// breaks ties, so every position is unique.
pub struct Sort<E: EntityTrait> {
    /// Name of the ordering, part of every cursor (a cursor of another ordering is refused).
    pub name: &'static str,
    /// The sort column.
    pub column: E::Column,
    /// The direction.
    pub direction: SortDirection,
    /// Reads the sort value of a row.
    pub value: fn(&E::Model) -> SortValue,
}

#[derive(Debug, PartialEq)]
struct Cursor {
    sort_value: SortValue,
    id: Uuid,
}

fn encode_cursor(connection: &str, sort: &str, value: &SortValue, id: Uuid) -> String {
    let json = serde_json::json!([connection, sort, value.encode(), id.simple().to_string()]);
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode_cursor(cursor: &str, connection: &str, sort: &str) -> AppResult<Cursor> {
    let invalid = || AppError::BadUserInput(format!("{cursor:?} is not a cursor of this list"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let matches = json.get(0).and_then(|v| v.as_str()) == Some(connection)
        && json.get(1).and_then(|v| v.as_str()) == Some(sort);
    if !matches {
        return Err(invalid());
    }
    let sort_value = json
        .get(2)
        .and_then(SortValue::decode)
        .ok_or_else(invalid)?;
    let id = json
        .get(3)
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(invalid)?;
    Ok(Cursor { sort_value, id })
}

/// One page of rows with their cursors.
pub struct Page<M> {
    /// Rows with their cursors, in connection order.
    pub items: Vec<(String, M)>,
    /// Whether rows exist after the page.
    pub has_next_page: bool,
    /// Whether rows exist before the page.
    pub has_previous_page: bool,
}

impl<M> Page<M> {
    /// Converts the rows.
    pub fn map<N>(self, f: impl Fn(M) -> N) -> Page<N> {
        Page {
            items: self.items.into_iter().map(|(c, m)| (c, f(m))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

/// The page size `args` ask for and whether the page is read backward (`last`, or `before`
/// alone); `BAD_USER_INPUT` for both `first` and `last` or a size out of range.
pub(crate) fn page_size(args: &PageArgs) -> AppResult<(i32, bool)> {
    let (size, backward) = match (args.first, args.last) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadUserInput(
                "pass either `first` or `last`, not both".into(),
            ));
        }
        (Some(n), None) => (n, false),
        (None, Some(n)) => (n, true),
        (None, None) => (
            DEFAULT_PAGE_SIZE,
            args.before.is_some() && args.after.is_none(),
        ),
    };
    if !PAGE_SIZE_RANGE.contains(&size) {
        return Err(AppError::BadUserInput(format!(
            "page size must be between {} and {}, got {size}",
            PAGE_SIZE_RANGE.start(),
            PAGE_SIZE_RANGE.end()
        )));
    }
    Ok((size, backward))
}

/// Rows strictly after (`forward`) or before a cursor position, in the sort's direction.
fn seek<E: OrgScoped>(sort: &Sort<E>, cursor: Cursor, after: bool) -> Condition {
    let ascending = (sort.direction == SortDirection::Asc) == after;
    let value = cursor.sort_value.into_value();
    let id_col = E::id_column();
    let (beyond, id_beyond) = if ascending {
        (sort.column.gt(value.clone()), id_col.gt(cursor.id))
    } else {
        (sort.column.lt(value.clone()), id_col.lt(cursor.id))
    };
    Condition::any().add(beyond).add(
        Condition::all()
            .add(sort.column.eq(value))
            .add(id_beyond)
            .into_condition(),
    )
}

/// Fetches one page of `select` (already filtered and scoped) with keyset pagination.
pub async fn paginate<E: OrgScoped>(
    db: &DatabaseConnection,
    select: Select<E>,
    connection: &'static str,
    sort: &Sort<E>,
    args: &PageArgs,
) -> AppResult<Page<E::Model>> {
    let (select, size, backward, _) = page_select(select, connection, sort, args)?;
    let rows = select.all(db).await?;
    Ok(finish_page(rows, size, backward, args, |m| {
        encode_cursor(connection, sort.name, &(sort.value)(m), E::model_id(m))
    }))
}

/// Like [`paginate`], with more read along: the page is selected first (as a derived table named
/// like `E`'s table, so column references to `E` still hold), then `extend` widens the statement
/// around it (joins and their columns, which must not change the rows), so the joins run on the
/// page's rows only, whatever the planner. Each row is decoded by `decode` from the raw result,
/// where `E`'s own columns keep their names, into a `T` that holds the row's model.
pub async fn paginate_rows<E, T>(
    db: &DatabaseConnection,
    select: Select<E>,
    connection: &'static str,
    sort: &Sort<E>,
    args: &PageArgs,
    extend: impl FnOnce(&mut SelectStatement),
    decode: impl Fn(&QueryResult) -> AppResult<T>,
) -> AppResult<Page<T>>
where
    E: OrgScoped,
    T: std::borrow::Borrow<E::Model>,
{
    let (select, size, backward, order) = page_select(select, connection, sort, args)?;
    let name = E::default().into_iden();
    let mut outer = Query::select();
    outer
        .column((name.clone(), Asterisk))
        .from_subquery(select.into_query(), name.clone())
        .order_by((name.clone(), sort.column), order.clone())
        .order_by((name, E::id_column()), order);
    extend(&mut outer);
    let statement = db.get_database_backend().build(&outer);
    let rows = db
        .query_all_raw(statement)
        .await?
        .iter()
        .map(decode)
        .collect::<AppResult<Vec<T>>>()?;
    Ok(finish_page(rows, size, backward, args, |row| {
        let m = row.borrow();
        encode_cursor(connection, sort.name, &(sort.value)(m), E::model_id(m))
    }))
}

/// `select` narrowed to the requested page (one row more, to know whether another follows),
/// with the page size and whether the page is read backward.
fn page_select<E: OrgScoped>(
    mut select: Select<E>,
    connection: &'static str,
    sort: &Sort<E>,
    args: &PageArgs,
) -> AppResult<(Select<E>, i32, bool, Order)> {
    let (size, backward) = page_size(args)?;
    if let Some(after) = &args.after {
        select = select.filter(seek(
            sort,
            decode_cursor(after, connection, sort.name)?,
            true,
        ));
    }
    if let Some(before) = &args.before {
        select = select.filter(seek(
            sort,
            decode_cursor(before, connection, sort.name)?,
            false,
        ));
    }
    let forward_order = match sort.direction {
        SortDirection::Asc => Order::Asc,
        SortDirection::Desc => Order::Desc,
    };
    let order = if backward {
        match forward_order {
            Order::Asc => Order::Desc,
            _ => Order::Asc,
        }
    } else {
        forward_order
    };
    let select = select
        .order_by(sort.column, order.clone())
        .order_by(E::id_column(), order.clone())
        .limit(size as u64 + 1);
    Ok((select, size, backward, order))
}

/// The page of the rows fetched for `size` (one more when another follows), in connection order,
/// with their cursors.
pub(crate) fn finish_page<T>(
    mut rows: Vec<T>,
    size: i32,
    backward: bool,
    args: &PageArgs,
    cursor: impl Fn(&T) -> String,
) -> Page<T> {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    if backward {
        rows.reverse();
    }
    let items = rows.into_iter().map(|row| (cursor(&row), row)).collect();
    Page {
        items,
        has_next_page: if backward {
            args.before.is_some()
        } else {
            more
        },
        has_previous_page: if backward { more } else { args.after.is_some() },
    }
}

type CountFuture = Pin<Box<dyn Future<Output = AppResult<u64>> + Send>>;

/// Counts the rows of a connection: run only when `totalCount` is selected.
#[derive(Clone)]
pub struct TotalCount(Arc<dyn Fn() -> CountFuture + Send + Sync>);

impl TotalCount {
    /// Counts the rows of `select`.
    pub fn of<E: EntityTrait>(db: &DatabaseConnection, select: Select<E>) -> Self
    where
        E::Model: Sync,
    {
        let db = db.clone();
        Self(Arc::new(move || {
            let db = db.clone();
            let select = select.clone();
            Box::pin(async move { Ok(select.count(&db).await?) })
        }))
    }
}

/// Information about the current page.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether more items follow the page.
    pub has_next_page: bool,
    /// Whether items come before the page.
    pub has_previous_page: bool,
    /// Cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page.
    pub end_cursor: Option<String>,
}

/// An edge: one item and its cursor.
pub struct Edge<N> {
    cursor: String,
    node: N,
}

/// An item of a list with its cursor.
#[Object(name_type)]
impl<N: OutputType> Edge<N> {
    /// Opaque position of this item, for `after`/`before`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The item.
    async fn node(&self) -> &N {
        &self.node
    }
}

impl<N: OutputType> TypeName for Edge<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Edge", N::type_name()).into()
    }
}

/// A page of a list, per the Relay cursor connection specification.
pub struct Connection<N> {
    edges: Vec<Edge<N>>,
    page_info: PageInfo,
    total: TotalCount,
}

impl<N> Connection<N> {
    /// A connection from a page and the counter of the whole list.
    pub fn new(page: Page<N>, total: TotalCount) -> Self {
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            start_cursor: page.items.first().map(|(c, _)| c.clone()),
            end_cursor: page.items.last().map(|(c, _)| c.clone()),
        };
        Self {
            edges: page
                .items
                .into_iter()
                .map(|(cursor, node)| Edge { cursor, node })
                .collect(),
            page_info,
            total,
        }
    }
}

/// A page of a list, per the Relay cursor connection specification.
#[Object(name_type)]
impl<N: OutputType> Connection<N> {
    /// The items of the page with their cursors.
    async fn edges(&self) -> &[Edge<N>] {
        &self.edges
    }

    /// The items of the page.
    async fn nodes(&self) -> Vec<&N> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    /// Where the page sits in the list.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Number of items in the whole list (all pages). Costs a count query: select it only when
    /// needed.
    async fn total_count(&self) -> async_graphql::Result<u64> {
        Ok((self.total.0)().await?)
    }
}

impl<N: OutputType> TypeName for Connection<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", N::type_name()).into()
    }
}

/// Condition helper: `column = value` when `value` is set.
pub fn eq_if<C: ColumnTrait, V: Into<Value>>(column: C, value: Option<V>) -> Condition {
    match value {
        Some(v) => Condition::all().add(column.eq(v)),
        None => Condition::all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_check_type() {
        let id = Uuid::now_v7();
        let global = encode_id("User", id);
        assert_eq!(decode_id(&global, "User").ok(), Some(id));
        assert!(decode_id(&global, "ApiToken").is_err());
        assert!(decode_any_id("not-an-id").is_err());
    }

    #[test]
    fn cursors_are_bound_to_their_list_and_order() {
        let id = Uuid::now_v7();
        let value = SortValue::Text("Ann".into());
        let cursor = encode_cursor("users", "DISPLAY_NAME", &value, id);
        assert_eq!(
            decode_cursor(&cursor, "users", "DISPLAY_NAME").ok(),
            Some(Cursor {
                sort_value: value,
                id
            })
        );
        assert!(decode_cursor(&cursor, "apiTokens", "DISPLAY_NAME").is_err());
        assert!(decode_cursor(&cursor, "users", "CREATED_AT").is_err());
        assert!(decode_cursor("Zm9yZ2Vk", "users", "DISPLAY_NAME").is_err());
    }
}
