//! Conversation search over the `search_documents` index (see migration 010): the database finds
//! and ranks, [`super::highlight`] marks the words.
//!
//! A conversation matches when every clause of the query matches at least one of its documents
//! (its subject, a message, a note, or its requester's names, emails and phones) and no excluded
//! phrase matches any of them; words need not be in the same text. Its score is the sum over
//! clauses of the best document score for that clause (FTS5 `bm25`, negated so higher is better;
//! PostgreSQL `ts_rank`); ties go to the most recent conversation (last message, then id).
//!
//! Statements per search, whatever the page size: the ranked page, its conversations, and (when
//! highlights are selected) the best three documents per conversation; plus the count when
//! `totalCount` is selected.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::conversation;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::highlight::{Matcher, snippet};
use super::query::{self, Phrase, SearchQuery};
use crate::auth::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::graphql::relay::{DEFAULT_PAGE_SIZE, PAGE_SIZE_RANGE};
use crate::tenancy;

/// Highlights per conversation, best first.
pub const MAX_HIGHLIGHTS: usize = 3;

/// Where a document's text comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The conversation's subject.
    Subject,
    /// A message (email subject and text).
    Message,
    /// An internal note.
    Note,
    /// The requester's names, emails and phones.
    Contact,
}

impl Source {
    fn from_stored(name: &str) -> Option<Self> {
        match name {
            "SUBJECT" => Some(Source::Subject),
            "MESSAGE" => Some(Source::Message),
            "NOTE" => Some(Source::Note),
            "CONTACT" => Some(Source::Contact),
            _ => None,
        }
    }
}

/// Conditions on the conversations searched; all given ones must hold.
#[derive(Clone, Debug, Default)]
pub struct SearchFilter {
    /// Stored statuses (`OPEN`, `PENDING`, `CLOSED`), any of them.
    pub statuses: Option<Vec<String>>,
    /// On this channel.
    pub channel_id: Option<Uuid>,
    /// Requested by this contact.
    pub requester_id: Option<Uuid>,
    /// Assigned to this user.
    pub assignee_id: Option<Uuid>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// One marked excerpt of a matching text.
#[derive(Clone, Debug)]
pub struct Highlight {
    /// Where the text comes from.
    pub source: Source,
    /// The id of the conversation (subject), message, note or contact.
    pub source_id: Uuid,
    /// HTML-escaped text with matched words in `<em>`…`</em>`.
    pub snippet: String,
    /// The text's own score.
    pub score: f64,
}

/// A matching conversation.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The conversation.
    pub conversation: conversation::Model,
    /// Relevance (higher is better; comparable within one search only).
    pub score: f64,
    /// The best matching texts (at most [`MAX_HIGHLIGHTS`]), best first.
    pub highlights: Vec<Highlight>,
}

/// A page of results.
pub struct SearchPage {
    /// Hits with their cursors, best first.
    pub items: Vec<(String, Hit)>,
    /// Whether more results follow.
    pub has_next_page: bool,
    /// Whether results come before (the page did not start at the first result).
    pub has_previous_page: bool,
}

/// A validated search, ready to run.
#[derive(Clone)]
pub struct Search {
    org_id: Uuid,
    query: SearchQuery,
    fingerprint: String,
    filter: SearchFilter,
}

const CONNECTION: &str = "searchConversations";

/// Checks the caller, the query and the filter; runs nothing.
pub fn prepare(principal: &Principal, text: &str, filter: SearchFilter) -> AppResult<Search> {
    principal.require(Permission::WorkConversations)?;
    let query = query::parse(text)?;
    let digest = Sha256::digest(text.as_bytes());
    let fingerprint = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Search {
        org_id: principal.org_id,
        query,
        fingerprint,
        filter,
    })
}

/// Cursors are positions in the ranked list: `after` a cursor means "skip that many results".
/// A cursor names its list and a digest of the query text, so it can't be used with another
/// query. Results that change rank between two requests can move across page boundaries.
fn encode_cursor(fingerprint: &str, position: u64) -> String {
    let json = serde_json::json!([CONNECTION, fingerprint, position]);
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode_cursor(cursor: &str, fingerprint: &str) -> AppResult<u64> {
    let invalid = || AppError::BadUserInput(format!("{cursor:?} is not a cursor of this search"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let matches = json.get(0).and_then(|v| v.as_str()) == Some(CONNECTION)
        && json.get(1).and_then(|v| v.as_str()) == Some(fingerprint);
    if !matches {
        return Err(invalid());
    }
    json.get(2).and_then(|v| v.as_u64()).ok_or_else(invalid)
}

/// Checks `first` and `after` before anything runs: `(size, offset)`.
pub fn page_window(
    search: &Search,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<(u64, u64)> {
    let size = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !PAGE_SIZE_RANGE.contains(&size) {
        return Err(AppError::BadUserInput(format!(
            "page size must be between {} and {}, got {size}",
            PAGE_SIZE_RANGE.start(),
            PAGE_SIZE_RANGE.end()
        )));
    }
    let offset = after
        .map(|c| decode_cursor(c, &search.fingerprint))
        .transpose()?
        .unwrap_or(0);
    Ok((size as u64, offset))
}

/// SQL text with its bound values, placeholders written for the backend.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    fn bind_list(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// Documents of the caller's organization matching `phrases` (any of them), as rows
/// `(k, doc_id, cid, kid, score)`; `restrict` adds a condition on the document `d`.
fn matching_documents(
    sql: &mut Sql,
    search: &Search,
    k: usize,
    phrases: &[Phrase],
    restrict: &dyn Fn(&mut Sql),
) {
    match sql.backend {
        DbBackend::Postgres => {
            sql.push(&format!(
                "SELECT {k} AS k, d.id AS doc_id, d.conversation_id AS cid, d.contact_id AS kid, \
                 ts_rank(d.vector, q.query, 1)::float8 AS score FROM search_documents AS d, \
                 (SELECT to_tsquery('simple', switchboard_search_fold("
            ));
            sql.bind(query::tsquery_any(phrases));
            sql.push("))) AS q(query) WHERE d.vector @@ q.query AND d.org_id = ");
        }
        _ => {
            sql.push(&format!(
                "SELECT {k} AS k, d.id AS doc_id, d.conversation_id AS cid, d.contact_id AS kid, \
                 -bm25(search_fts) AS score FROM search_fts CROSS JOIN search_documents AS d \
                 ON d.id = search_fts.rowid WHERE search_fts MATCH "
            ));
            sql.bind(query::fts5_any(phrases));
            sql.push(" AND d.org_id = ");
        }
    }
    sql.bind(search.org_id);
    restrict(sql);
}

/// The conversation conditions of the filter, on alias `c`.
fn filter_conditions(sql: &mut Sql, filter: &SearchFilter) {
    if let Some(statuses) = &filter.statuses {
        sql.push(" AND c.status IN ");
        if statuses.is_empty() {
            sql.push("(NULL)");
        } else {
            sql.bind_list(statuses.iter().map(|s| Value::from(s.clone())));
        }
    }
    let uuids = [
        ("c.channel_id", filter.channel_id),
        ("c.requester_id", filter.requester_id),
        ("c.assignee_id", filter.assignee_id),
    ];
    for (column, value) in uuids {
        if let Some(id) = value {
            sql.push(&format!(" AND {column} = ")).bind(id);
        }
    }
    if let Some(after) = filter.created_after {
        sql.push(" AND c.created_at >= ").bind(after);
    }
    if let Some(before) = filter.created_before {
        sql.push(" AND c.created_at < ").bind(before);
    }
}

/// `WITH hits …, matched …, per_clause …`: per matching conversation of the organization (after
/// the filter), per clause `k` (0 = excluded phrases), the best document score.
fn ranked_ctes(sql: &mut Sql, search: &Search) {
    sql.push("WITH hits AS MATERIALIZED (");
    let no_restriction = |_: &mut Sql| {};
    for (i, clause) in search.query.clauses.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        matching_documents(sql, search, i + 1, &clause.alternatives, &no_restriction);
    }
    if !search.query.excluded.is_empty() {
        sql.push(" UNION ALL ");
        matching_documents(sql, search, 0, &search.query.excluded, &no_restriction);
    }
    // On SQLite, `CROSS JOIN` keeps the hits as the outer loop and `+c.org_id` keeps the
    // organization's indexes out of the join: conversations are looked up by id and by
    // requester, never scanned per organization (SQLite picks join order and indexes from
    // statistics that may be missing; PostgreSQL plans from its own).
    let (join, org) = match sql.backend {
        DbBackend::Postgres => ("JOIN", "c.org_id"),
        _ => ("CROSS JOIN", "+c.org_id"),
    };
    sql.push("), matched AS (");
    for (i, on) in ["c.id = h.cid", "c.requester_id = h.kid"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(&format!(
            "SELECT c.id AS id, c.last_message_at AS lm, h.k AS k, h.score AS score \
             FROM hits AS h {join} conversations AS c ON {on} WHERE {org} = "
        ));
        sql.bind(search.org_id);
        filter_conditions(sql, &search.filter);
    }
    sql.push(
        "), per_clause AS (SELECT id, lm, k, MAX(score) AS best FROM matched GROUP BY id, lm, k) ",
    );
}

fn qualifying(search: &Search) -> String {
    format!(
        "GROUP BY id, lm HAVING COUNT(*) = {} AND MIN(k) > 0",
        search.query.clauses.len()
    )
}

fn page_sql(backend: DbBackend, search: &Search, size: u64, offset: u64) -> Sql {
    let mut sql = Sql::new(backend);
    ranked_ctes(&mut sql, search);
    sql.push(&format!(
        "SELECT id, SUM(best) AS score FROM per_clause {} \
         ORDER BY score DESC, lm DESC, id DESC LIMIT ",
        qualifying(search)
    ));
    sql.bind((size + 1) as i64)
        .push(" OFFSET ")
        .bind(offset as i64);
    sql
}

fn count_sql(backend: DbBackend, search: &Search) -> Sql {
    let mut sql = Sql::new(backend);
    ranked_ctes(&mut sql, search);
    sql.push(&format!(
        "SELECT COUNT(*) AS n FROM (SELECT id FROM per_clause {}) AS t",
        qualifying(search)
    ));
    sql
}

/// The best [`MAX_HIGHLIGHTS`] documents matching any clause per conversation (by id) and per
/// contact (by id); the caller merges a conversation's own with its requester's.
fn highlight_sql(
    backend: DbBackend,
    search: &Search,
    conversation_ids: &[Uuid],
    requester_ids: &[Uuid],
) -> Sql {
    let mut sql = Sql::new(backend);
    sql.push("WITH hits AS MATERIALIZED (");
    let restrict = |sql: &mut Sql| {
        sql.push(" AND (d.conversation_id IN ");
        sql.bind_list(conversation_ids.iter().map(|id| Value::from(*id)));
        sql.push(" OR d.contact_id IN ");
        sql.bind_list(requester_ids.iter().map(|id| Value::from(*id)));
        sql.push(")");
    };
    for (i, clause) in search.query.clauses.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        matching_documents(&mut sql, search, i + 1, &clause.alternatives, &restrict);
    }
    sql.push(
        "), docs AS (SELECT doc_id, SUM(score) AS score FROM hits GROUP BY doc_id), \
         ranked AS (SELECT d.id AS id, docs.score AS score, ROW_NUMBER() OVER (PARTITION BY \
         COALESCE(d.conversation_id, d.contact_id) ORDER BY docs.score DESC, d.id DESC) AS n \
         FROM docs JOIN search_documents AS d ON d.id = docs.doc_id) \
         SELECT d.id AS id, d.source AS source, d.source_id AS source_id, \
         d.conversation_id AS conversation_id, d.contact_id AS contact_id, r.score AS score, \
         d.body AS body FROM ranked AS r JOIN search_documents AS d ON d.id = r.id \
         WHERE r.n <= ",
    );
    sql.bind(MAX_HIGHLIGHTS as i64);
    sql
}

/// Runs one page of the search.
pub async fn page(
    db: &DatabaseConnection,
    search: &Search,
    size: u64,
    offset: u64,
    with_highlights: bool,
) -> AppResult<SearchPage> {
    let sql = page_sql(db.get_database_backend(), search, size, offset);
    let rows = db.query_all_raw(sql.statement()).await?;
    let mut ranked = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("", "id")?;
        let score: f64 = row.try_get("", "score")?;
        ranked.push((id, score));
    }
    let has_next_page = ranked.len() as u64 > size;
    ranked.truncate(size as usize);

    let mut conversations: HashMap<Uuid, conversation::Model> =
        tenancy::by_ids::<conversation::Entity>(search.org_id, ranked.iter().map(|(id, _)| *id))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
    let hits: Vec<Hit> = ranked
        .into_iter()
        .filter_map(|(id, score)| {
            conversations.remove(&id).map(|conversation| Hit {
                conversation,
                score,
                highlights: Vec::new(),
            })
        })
        .collect();
    let hits = if with_highlights && !hits.is_empty() {
        highlight(db, search, hits).await?
    } else {
        hits
    };
    let items = hits
        .into_iter()
        .enumerate()
        .map(|(i, hit)| {
            (
                encode_cursor(&search.fingerprint, offset + i as u64 + 1),
                hit,
            )
        })
        .collect();
    Ok(SearchPage {
        items,
        has_next_page,
        has_previous_page: offset > 0,
    })
}

/// Number of matching conversations.
pub async fn count(db: &DatabaseConnection, search: &Search) -> AppResult<u64> {
    let sql = count_sql(db.get_database_backend(), search);
    let row = db.query_one_raw(sql.statement()).await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}

struct Document {
    id: i64,
    source: Source,
    source_id: Uuid,
    conversation_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    score: f64,
    body: String,
}

/// Adds the best [`MAX_HIGHLIGHTS`] matching texts to each hit: one statement for the page.
async fn highlight(
    db: &DatabaseConnection,
    search: &Search,
    mut hits: Vec<Hit>,
) -> AppResult<Vec<Hit>> {
    let conversation_ids: Vec<Uuid> = hits.iter().map(|h| h.conversation.id).collect();
    let requester_ids = tenancy::distinct(
        &hits
            .iter()
            .map(|h| h.conversation.requester_id)
            .collect::<Vec<_>>(),
    );
    let sql = highlight_sql(
        db.get_database_backend(),
        search,
        &conversation_ids,
        &requester_ids,
    );
    let rows = db.query_all_raw(sql.statement()).await?;
    let mut documents = Vec::with_capacity(rows.len());
    for row in rows {
        let source: String = row.try_get("", "source")?;
        let Some(source) = Source::from_stored(&source) else {
            continue;
        };
        documents.push(Document {
            id: row.try_get("", "id")?,
            source,
            source_id: row.try_get("", "source_id")?,
            conversation_id: row.try_get("", "conversation_id")?,
            contact_id: row.try_get("", "contact_id")?,
            score: row.try_get("", "score")?,
            body: row.try_get("", "body")?,
        });
    }
    documents.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.id.cmp(&a.id)));
    let matcher = Matcher::new(search.query.positive_phrases());
    let mut snippets: HashMap<i64, String> = HashMap::new();
    for hit in &mut hits {
        let conversation = &hit.conversation;
        for document in documents
            .iter()
            .filter(|d| {
                d.conversation_id == Some(conversation.id)
                    || d.contact_id == Some(conversation.requester_id)
            })
            .take(MAX_HIGHLIGHTS)
        {
            let snippet = snippets
                .entry(document.id)
                .or_insert_with(|| snippet(&document.body, &matcher))
                .clone();
            hit.highlights.push(Highlight {
                source: document.source,
                source_id: document.source_id,
                snippet,
                score: document.score,
            });
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::Database;

    use super::*;

    /// SQLite plans each statement from statistics that may be missing (a new database, before
    /// the periodic `ANALYZE`): whatever they are, a search must start from the full-text matches
    /// and look conversations up by id or requester, never walk an organization's documents or
    /// conversations.
    #[tokio::test]
    async fn sqlite_plans_start_from_the_matches() -> Result<(), Box<dyn std::error::Error>> {
        let db = Database::connect("sqlite::memory:").await?;
        Migrator::up(&db, None).await?;
        let search = Search {
            org_id: Uuid::now_v7(),
            query: query::parse("refund* \"late delivery\" OR invoice -spam")
                .map_err(|e| e.public_message())?,
            fingerprint: String::new(),
            filter: SearchFilter {
                statuses: Some(vec!["OPEN".into()]),
                channel_id: Some(Uuid::now_v7()),
                requester_id: None,
                assignee_id: Some(Uuid::now_v7()),
                created_after: Some(Utc::now()),
                created_before: None,
            },
        };
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        for sql in [
            page_sql(DbBackend::Sqlite, &search, 20, 40),
            count_sql(DbBackend::Sqlite, &search),
            highlight_sql(DbBackend::Sqlite, &search, &ids, &ids),
        ] {
            let explain = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", sql.text),
                sql.values,
            );
            let plan: Vec<String> = db
                .query_all_raw(explain)
                .await?
                .iter()
                .map(|row| row.try_get::<String>("", "detail"))
                .collect::<Result<_, _>>()?;
            let text = plan.join("\n");
            assert!(text.contains("SCAN search_fts VIRTUAL TABLE"), "{text}");
            for line in &plan {
                assert!(
                    !line.contains("ix_search_documents_org")
                        && !line.contains("ix_conversations_org")
                        && line.split(' ').take(2).collect::<Vec<_>>() != ["SCAN", "c"]
                        && line.split(' ').take(2).collect::<Vec<_>>() != ["SCAN", "d"],
                    "{line} in\n{text}"
                );
            }
        }
        Ok(())
    }
}
