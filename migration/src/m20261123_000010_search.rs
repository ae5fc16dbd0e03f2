//! Full-text search over conversations: one row per searchable text in `search_documents`
//! (a conversation's subject, a message, a note, a contact's names, emails and phones), kept in
//! step with its source by database triggers, so every write path (whoever owns it) updates the
//! index in its own transaction without knowing about search.
//!
//! Why one document table maintained by triggers on both backends, rather than FTS tables or
//! generated `tsvector` columns on each source table:
//! - the source tables stay as their modules define them (no extra column to rewrite or load);
//! - a contact's text comes from JSON arrays (additional emails and phones), which a generated
//!   column cannot expand, and "is this message searchable" (not removed, redacted or anonymized)
//!   is decided once, in the trigger, instead of in every query;
//! - one index and one ranking query cover every source, with the tenant filter on one column.
//!
//! SQLite: `search_fts` is an FTS5 index with external content (`content='search_documents'`,
//! `content_rowid='id'`, tokenizer `unicode61 remove_diacritics 2`), synchronized by triggers on
//! `search_documents`. Its rowid is that table's `INTEGER PRIMARY KEY`, which `VACUUM` never
//! renumbers (the implicit rowid of the source tables, whose keys are UUIDs, could change).
//!
//! PostgreSQL: `search_documents.vector` is a stored generated `tsvector` (configuration `simple`:
//! no stemming, no stop words, any language) with a GIN index, over the text after
//! `switchboard_search_normalize`: Latin diacritics folded (so `jose` finds `José`, as SQLite's
//! `remove_diacritics` does) and punctuation turned into spaces (so the parser sees plain words,
//! as FTS5 does: `ann@example.com` is `ann`, `example`, `com` rather than one email token).
//! Queries fold their words with `switchboard_search_fold`.
//!
//! What is indexed:
//! - `SUBJECT`: `conversations.subject` unless the conversation is anonymized;
//! - `MESSAGE`: `messages.email_subject` and `text_body` (HTML is not indexed: messages carry
//!   their text version) unless the message is removed, redacted or anonymized;
//! - `NOTE`: `notes.body`;
//! - `CONTACT`: display name (plus first, middle and last names not already in it), primary and
//!   additional emails, primary and additional phones, unless the contact is anonymized. A contact
//!   document belongs to every conversation the contact requested (`conversations.requester_id`),
//!   found at query time, so a rename is one row and a requester change needs no re-indexing.
//!
//! Rows that exist when the migration runs are indexed by it (backfill).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Letters with diacritics folded by search (Latin-1, Latin Extended-A, the Romanian and pinyin
/// letters of Latin Extended-B, Vietnamese), the same letters SQLite's `remove_diacritics 2`
/// folds; [`FOLD_TO`] has their base letters at the same positions. PostgreSQL folds documents
/// and queries with this table; the highlighter uses it too, so it marks what the index matched.
pub const FOLD_FROM: &str = concat!(
    "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖòóôõöÙÚÛÜùúûüÝýÿ",
    "ĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇň",
    "ŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž",
    "ƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜȘșȚț",
    "ẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊị",
    "ỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ",
);

/// The base letters of [`FOLD_FROM`], position by position.
pub const FOLD_TO: &str = concat!(
    "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOoooooUUUUuuuuYyy",
    "AaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNn",
    "OoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz",
    "OoUuAaIiOoUuUuUuUuUuSsTt",
    "AaAaAaAaAaAaAaAaAaAaAaAaEeEeEeEeEeEeEeEeIiIi",
    "OoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUuYyYyYyYy",
);

/// Separator between the parts of a contact's document (names, each email, each phone).
pub const CONTACT_SEPARATOR: &str = " · ";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `strpos`/`instr` with (haystack, needle) arguments.
    fn position(self, haystack: &str, needle: &str) -> String {
        match self {
            Backend::Sqlite => format!("INSTR({haystack}, {needle})"),
            Backend::Postgres => format!("STRPOS({haystack}, {needle})"),
        }
    }

    fn newline(self) -> &'static str {
        match self {
            Backend::Sqlite => "CHAR(10)",
            Backend::Postgres => "CHR(10)",
        }
    }

    /// Null-safe "differs".
    fn differs(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("OLD.{column} IS NOT NEW.{column}"),
            // As text: `json` columns have no equality operator.
            Backend::Postgres => {
                format!("OLD.{column}::text IS DISTINCT FROM NEW.{column}::text")
            }
        }
    }

    /// The elements of a JSON array of strings as rows `(value, n)`, `n` from 0.
    fn json_strings(self, json: &str) -> String {
        match self {
            Backend::Sqlite => format!(
                "SELECT value, key AS n FROM json_each(CASE WHEN json_type({json}) = 'array' \
                 THEN {json} ELSE '[]' END)"
            ),
            Backend::Postgres => format!(
                "SELECT e.value, e.n - 1 AS n FROM jsonb_array_elements_text(CASE WHEN \
                 jsonb_typeof(({json})::jsonb) = 'array' THEN ({json})::jsonb ELSE '[]'::jsonb \
                 END) WITH ORDINALITY AS e(value, n)"
            ),
        }
    }

    fn string_agg(self, value: &str, separator: &str, order: &str) -> String {
        match self {
            Backend::Sqlite => format!("group_concat({value}, '{separator}' ORDER BY {order})"),
            Backend::Postgres => format!("string_agg({value}, '{separator}' ORDER BY {order})"),
        }
    }
}

/// One source of documents: its table, the document's columns as expressions over a row alias,
/// when a row is searchable, and which column changes matter.
struct Source {
    kind: &'static str,
    table: &'static str,
    /// Columns whose change re-indexes the row.
    watched: &'static [&'static str],
    conversation_id: fn(&str) -> String,
    contact_id: fn(&str) -> String,
    body: fn(Backend, &str) -> String,
    searchable: fn(&str) -> String,
}

fn not_blank(expr: &str) -> String {
    format!("TRIM(COALESCE({expr}, '')) <> ''")
}

fn subject_body(_: Backend, r: &str) -> String {
    format!("TRIM(COALESCE({r}.subject, ''))")
}

fn message_body(b: Backend, r: &str) -> String {
    let subject = format!("{r}.email_subject");
    let text = format!("{r}.text_body");
    format!(
        "CASE WHEN NOT ({s}) THEN TRIM(COALESCE({text}, '')) \
         WHEN NOT ({t}) THEN TRIM({subject}) \
         ELSE TRIM({subject}) || {nl} || TRIM({text}) END",
        s = not_blank(&subject),
        t = not_blank(&text),
        nl = b.newline(),
    )
}

fn note_body(_: Backend, r: &str) -> String {
    format!("TRIM(COALESCE({r}.body, ''))")
}

/// Names, then each email, then each phone, joined by [`CONTACT_SEPARATOR`]. The name part is the
/// display name followed by the first, middle and last names that are not already words of it.
fn contact_body(b: Backend, r: &str) -> String {
    let display = format!("' ' || LOWER(COALESCE({r}.display_name, '')) || ' '");
    let extra = |column: &str| {
        let value = format!("{r}.{column}");
        format!(
            "CASE WHEN {present} AND {pos} = 0 THEN ' ' || TRIM({value}) ELSE '' END",
            present = not_blank(&value),
            pos = b.position(&display, &format!("' ' || LOWER(TRIM({value})) || ' '")),
        )
    };
    let names = format!(
        "TRIM(COALESCE({r}.display_name, '') || {} || {} || {})",
        extra("first_name"),
        extra("middle_name"),
        extra("last_name"),
    );
    let parts = [
        format!("SELECT {names} AS part, 0 AS n"),
        format!("SELECT {r}.email, 1"),
        format!(
            "SELECT value, 100 + n FROM ({}) AS emails",
            b.json_strings(&format!("{r}.additional_emails"))
        ),
        format!("SELECT {r}.phone, 10000"),
        format!(
            "SELECT value, 10001 + n FROM ({}) AS phones",
            b.json_strings(&format!("{r}.additional_phones"))
        ),
    ]
    .join(" UNION ALL ");
    format!(
        "COALESCE((SELECT {agg} FROM ({parts}) AS parts WHERE {present}), '')",
        agg = b.string_agg("TRIM(part)", CONTACT_SEPARATOR, "n"),
        present = not_blank("part"),
    )
}

const SOURCES: [Source; 4] = [
    Source {
        kind: "SUBJECT",
        table: "conversations",
        watched: &["subject", "anonymized_at"],
        conversation_id: |r| format!("{r}.id"),
        contact_id: |_| "CAST(NULL AS uuid)".into(),
        body: subject_body,
        searchable: |r| format!("{r}.anonymized_at IS NULL"),
    },
    Source {
        kind: "MESSAGE",
        table: "messages",
        watched: &[
            "text_body",
            "email_subject",
            "removed_at",
            "redacted_at",
            "anonymized_at",
        ],
        conversation_id: |r| format!("{r}.conversation_id"),
        contact_id: |_| "CAST(NULL AS uuid)".into(),
        body: message_body,
        searchable: |r| {
            format!(
                "{r}.removed_at IS NULL AND {r}.redacted_at IS NULL AND {r}.anonymized_at IS NULL"
            )
        },
    },
    Source {
        kind: "NOTE",
        table: "notes",
        watched: &["body"],
        conversation_id: |r| format!("{r}.conversation_id"),
        contact_id: |_| "CAST(NULL AS uuid)".into(),
        body: note_body,
        searchable: |_| "1 = 1".into(),
    },
    Source {
        kind: "CONTACT",
        table: "contacts",
        watched: &[
            "display_name",
            "first_name",
            "middle_name",
            "last_name",
            "email",
            "phone",
            "additional_emails",
            "additional_phones",
            "anonymized_at",
        ],
        conversation_id: |_| "CAST(NULL AS uuid)".into(),
        contact_id: |r| format!("{r}.id"),
        body: contact_body,
        searchable: |r| format!("{r}.anonymized_at IS NULL"),
    },
];

const DOCUMENT_COLUMNS: &str = "org_id, source, source_id, conversation_id, contact_id, body";

impl Source {
    /// `INSERT … SELECT` of the documents of the rows of `from` (aliased `r`) that are searchable
    /// and have text: `from` is `None` inside a trigger, where the row is `NEW`.
    fn insert(&self, b: Backend, from: Option<&str>) -> String {
        let r = if from.is_some() { "r" } else { "NEW" };
        let from = from
            .map(|table| format!(" FROM {table} AS r"))
            .unwrap_or_default();
        format!(
            "INSERT INTO search_documents ({DOCUMENT_COLUMNS}) SELECT {DOCUMENT_COLUMNS} FROM \
             (SELECT {r}.org_id AS org_id, '{kind}' AS source, {r}.id AS source_id, \
             {conversation} AS conversation_id, {contact} AS contact_id, {body} AS body{from} \
             WHERE {searchable}) AS doc WHERE doc.body <> ''",
            kind = self.kind,
            conversation = (self.conversation_id)(r),
            contact = (self.contact_id)(r),
            body = (self.body)(b, r),
            searchable = (self.searchable)(r),
        )
    }

    fn delete_old(&self) -> String {
        format!(
            "DELETE FROM search_documents WHERE source_id = OLD.id AND source = '{}'",
            self.kind
        )
    }

    fn changed(&self, b: Backend) -> String {
        self.watched
            .iter()
            .map(|c| b.differs(c))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    fn sqlite_triggers(&self) -> Vec<String> {
        let b = Backend::Sqlite;
        let (table, name) = (self.table, self.table);
        vec![
            format!(
                "CREATE TRIGGER search_{name}_ai AFTER INSERT ON {table} BEGIN {}; END",
                self.insert(b, None)
            ),
            format!(
                "CREATE TRIGGER search_{name}_au AFTER UPDATE OF {cols} ON {table} WHEN {changed} \
                 BEGIN {delete}; {insert}; END",
                cols = self.watched.join(", "),
                changed = self.changed(b),
                delete = self.delete_old(),
                insert = self.insert(b, None),
            ),
            format!(
                "CREATE TRIGGER search_{name}_ad AFTER DELETE ON {table} BEGIN {}; END",
                self.delete_old()
            ),
        ]
    }

    fn postgres_triggers(&self) -> Vec<String> {
        let b = Backend::Postgres;
        let name = self.table;
        vec![
            format!(
                "CREATE FUNCTION switchboard_search_{name}() RETURNS trigger LANGUAGE plpgsql AS \
                 $fn$ BEGIN \
                 IF TG_OP = 'UPDATE' THEN IF NOT ({changed}) THEN RETURN NULL; END IF; END IF; \
                 IF TG_OP <> 'INSERT' THEN {delete}; END IF; \
                 IF TG_OP <> 'DELETE' THEN {insert}; END IF; \
                 RETURN NULL; END $fn$",
                changed = self.changed(b),
                delete = self.delete_old(),
                insert = self.insert(b, None),
            ),
            format!(
                "CREATE TRIGGER search_{name} AFTER INSERT OR DELETE OR UPDATE OF {cols} ON \
                 {table} FOR EACH ROW EXECUTE FUNCTION switchboard_search_{name}()",
                cols = self.watched.join(", "),
                table = self.table,
            ),
        ]
    }
}

fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn sqlite_up() -> Vec<String> {
    let mut statements = vec![
        "CREATE TABLE search_documents (\
         id INTEGER PRIMARY KEY, \
         org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE, \
         source TEXT NOT NULL, \
         source_id BLOB NOT NULL, \
         conversation_id BLOB REFERENCES conversations (id) ON DELETE CASCADE, \
         contact_id BLOB REFERENCES contacts (id) ON DELETE CASCADE, \
         body TEXT NOT NULL)"
            .to_string(),
        "CREATE VIRTUAL TABLE search_fts USING fts5(body, content='search_documents', \
         content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
            .to_string(),
        "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN \
         INSERT INTO search_fts (rowid, body) VALUES (NEW.id, NEW.body); END"
            .to_string(),
        "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN \
         INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', OLD.id, OLD.body); END"
            .to_string(),
        "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN \
         INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', OLD.id, OLD.body); \
         INSERT INTO search_fts (rowid, body) VALUES (NEW.id, NEW.body); END"
            .to_string(),
    ];
    statements.extend(indexes());
    for source in &SOURCES {
        statements.extend(source.sqlite_triggers());
        statements.push(source.insert(Backend::Sqlite, Some(source.table)));
    }
    statements
}

fn postgres_up() -> Vec<String> {
    let from = sql_string(FOLD_FROM);
    let to = sql_string(FOLD_TO);
    let mut statements = vec![
        format!(
            "CREATE FUNCTION switchboard_search_fold(value text) RETURNS text LANGUAGE sql \
             IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT pg_catalog.translate(value, {from}, \
             {to}) $fn$"
        ),
        format!(
            "CREATE FUNCTION switchboard_search_normalize(value text) RETURNS text LANGUAGE sql \
             IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT pg_catalog.regexp_replace(\
             pg_catalog.translate(value, {from}, {to}), '[[:punct:]]+', ' ', 'g') $fn$"
        ),
        "CREATE TABLE search_documents (\
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE, \
         source text NOT NULL, \
         source_id uuid NOT NULL, \
         conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE, \
         contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE, \
         body text NOT NULL, \
         vector tsvector GENERATED ALWAYS AS \
         (to_tsvector('simple'::regconfig, switchboard_search_normalize(body))) STORED)"
            .to_string(),
        "CREATE INDEX ix_search_documents_vector ON search_documents USING GIN (vector)"
            .to_string(),
    ];
    statements.extend(indexes());
    for source in &SOURCES {
        statements.extend(source.postgres_triggers());
        statements.push(source.insert(Backend::Postgres, Some(source.table)));
    }
    statements
}

fn indexes() -> Vec<String> {
    vec![
        "CREATE UNIQUE INDEX ux_search_documents_source ON search_documents (source_id, source)"
            .into(),
        "CREATE INDEX ix_search_documents_conversation ON search_documents (conversation_id)"
            .into(),
        "CREATE INDEX ix_search_documents_contact ON search_documents (contact_id)".into(),
        "CREATE INDEX ix_search_documents_org ON search_documents (org_id)".into(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Sqlite => sqlite_up(),
            DbBackend::Postgres => postgres_up(),
            other => {
                return Err(DbErr::Migration(format!(
                    "search is not available on {other:?}"
                )));
            }
        };
        let db = manager.get_connection();
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let mut statements = Vec::new();
        for source in &SOURCES {
            let table = source.table;
            if backend == DbBackend::Postgres {
                statements.push(format!("DROP TRIGGER IF EXISTS search_{table} ON {table}"));
                statements.push(format!(
                    "DROP FUNCTION IF EXISTS switchboard_search_{table}()"
                ));
            } else {
                for suffix in ["ai", "au", "ad"] {
                    statements.push(format!("DROP TRIGGER IF EXISTS search_{table}_{suffix}"));
                }
            }
        }
        if backend == DbBackend::Sqlite {
            statements.push("DROP TABLE IF EXISTS search_fts".into());
        }
        statements.push("DROP TABLE IF EXISTS search_documents".into());
        if backend == DbBackend::Postgres {
            statements.push("DROP FUNCTION IF EXISTS switchboard_search_normalize(text)".into());
            statements.push("DROP FUNCTION IF EXISTS switchboard_search_fold(text)".into());
        }
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_table_pairs_every_letter() {
        assert_eq!(FOLD_FROM.chars().count(), FOLD_TO.chars().count());
        let pairs: Vec<(char, char)> = FOLD_FROM.chars().zip(FOLD_TO.chars()).collect();
        for (from, to) in pairs {
            assert!(to.is_ascii_alphabetic(), "{from} → {to}");
            assert_eq!(
                from.is_uppercase(),
                to.is_ascii_uppercase(),
                "{from} → {to}"
            );
        }
    }
}
