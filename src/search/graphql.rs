//! GraphQL types and the query of conversation search.

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::{self, Hit, Search, SearchFilter, Source};
use crate::contacts::graphql::Contact;
use crate::conversations::graphql::{Conversation, ConversationStatusGql};
use crate::graphql::context::{ContextExt, page_selects};
use crate::graphql::relay::{PageInfo, decode_id, encode_id};
use crate::messages::graphql::Message;
use crate::tenancy;

/// Where a highlighted text comes from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "SearchSource", remote = "service::Source")]
pub enum SearchSourceGql {
    /// The conversation's subject.
    Subject,
    /// A message: its email subject and text.
    Message,
    /// An internal note.
    Note,
    /// The requester's names, emails and phones.
    Contact,
}

/// A marked excerpt of a text that matched.
pub struct SearchHighlight {
    highlight: service::Highlight,
    message: Option<entity::message::Model>,
}

/// A marked excerpt of a text that matched the search.
#[Object]
impl SearchHighlight {
    /// Where the text comes from.
    async fn source(&self) -> SearchSourceGql {
        self.highlight.source.into()
    }

    /// The excerpt as HTML: matched words wrapped in `<em>`…`</em>`, everything else escaped (safe
    /// to render as HTML), whitespace collapsed, `…` where text was left out. Texts of up to 24
    /// words are shown whole.
    async fn snippet(&self) -> &str {
        &self.highlight.snippet
    }

    /// The message, when the source is `MESSAGE`.
    async fn message(&self) -> Option<Message> {
        self.message.clone().map(Message)
    }

    /// The note's global id, when the source is `NOTE`.
    async fn note_id(&self) -> Option<ID> {
        (self.highlight.source == Source::Note).then(|| encode_id("Note", self.highlight.source_id))
    }

    /// The contact (the conversation's requester), when the source is `CONTACT`.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        if self.highlight.source != Source::Contact {
            return Ok(None);
        }
        let contact = ctx
            .app()
            .load::<entity::contact::Entity>(self.highlight.source_id)
            .await?;
        Ok(contact.map(Contact))
    }
}

/// A conversation that matched a search.
pub struct ConversationSearchResult {
    conversation: entity::conversation::Model,
    score: f64,
    highlights: Vec<SearchHighlight>,
}

/// A conversation that matched a search, with why.
#[Object]
impl ConversationSearchResult {
    /// The conversation.
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    /// Relevance: higher is better. Only comparable between results of the same search.
    async fn score(&self) -> f64 {
        self.score
    }

    /// The best matching texts of the conversation, best first (at most 3).
    async fn highlights(&self) -> &[SearchHighlight] {
        &self.highlights
    }
}

/// A search result with its cursor.
pub struct ConversationSearchResultEdge {
    cursor: String,
    node: ConversationSearchResult,
}

/// A search result with its cursor.
#[Object]
impl ConversationSearchResultEdge {
    /// Opaque position of this result, for `after`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The result.
    async fn node(&self) -> &ConversationSearchResult {
        &self.node
    }
}

/// A page of search results, best first.
pub struct ConversationSearchResultConnection {
    edges: Vec<ConversationSearchResultEdge>,
    page_info: PageInfo,
    search: Search,
}

/// A page of search results, best first (relevance, then the most recent last message). Cursors
/// are positions in the ranked list: a result whose rank changes between two requests can move
/// across a page boundary.
#[Object]
impl ConversationSearchResultConnection {
    /// The results of the page with their cursors.
    async fn edges(&self) -> &[ConversationSearchResultEdge] {
        &self.edges
    }

    /// The results of the page.
    async fn nodes(&self) -> Vec<&ConversationSearchResult> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    /// Where the page sits in the results.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Number of matching conversations (all pages). Costs a query: select it only when needed.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(service::count(ctx.app().db(), &self.search).await?)
    }
}

/// Which conversations to search. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct ConversationSearchFilter {
    /// In one of these statuses.
    pub status: Option<Vec<ConversationStatusGql>>,
    /// Requested by this contact.
    pub requester_id: Option<ID>,
    /// Assigned to this user.
    pub assignee_id: Option<ID>,
    /// On this channel.
    pub channel_id: Option<ID>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

impl ConversationSearchFilter {
    fn into_service(self) -> async_graphql::Result<SearchFilter> {
        let id =
            |id: Option<ID>, type_name: &str| id.map(|id| decode_id(&id, type_name)).transpose();
        Ok(SearchFilter {
            statuses: self.status.map(|statuses| {
                statuses
                    .into_iter()
                    .map(|s| {
                        crate::conversations::service::Status::from(s)
                            .as_str()
                            .to_string()
                    })
                    .collect()
            }),
            channel_id: id(self.channel_id, "Channel")?,
            requester_id: id(self.requester_id, "Contact")?,
            assignee_id: id(self.assignee_id, "User")?,
            created_after: self.created_after,
            created_before: self.created_before,
        })
    }
}

/// Search queries.
#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Full-text search over the organization's conversations: subjects, messages (email subject
    /// and text; not removed, redacted or anonymized ones), internal notes, and the requester's
    /// names, emails and phones. One result per conversation, best first, with up to 3
    /// highlighted excerpts.
    ///
    /// Query language: words are ANDed and may be anywhere in the conversation; `"quoted
    /// phrase"`; `word*` for a prefix; `a OR b`; `-word` or `NOT word` to exclude. Case and Latin
    /// diacritics are ignored, words are not stemmed, punctuation separates words. At most 256
    /// characters and 16 words or phrases.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, None, child_complexity)"
    )]
    async fn search_conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to look for (at most 256 characters).")] query: String,
        #[graphql(desc = "Only conversations matching this filter.")] filter: Option<
            ConversationSearchFilter,
        >,
        #[graphql(desc = "The first N results (1-100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Results after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<ConversationSearchResultConnection> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default().into_service()?;
        let search = service::prepare(app.principal()?, &query, filter)?;
        let (size, offset) = service::page_window(&search, first, after.as_deref())?;
        let with_highlights = page_selects(ctx, &["highlights"]);
        let page = service::page(app.db(), &search, size, offset, with_highlights).await?;

        let message_ids: Vec<Uuid> = page
            .items
            .iter()
            .flat_map(|(_, hit)| hit.highlights.iter())
            .filter(|h| h.source == Source::Message)
            .map(|h| h.source_id)
            .collect();
        let mut messages: HashMap<Uuid, entity::message::Model> =
            if message_ids.is_empty() || !page_selects(ctx, &["highlights", "message"]) {
                HashMap::new()
            } else {
                let org_id = app.principal()?.org_id;
                tenancy::by_ids::<entity::message::Entity>(org_id, message_ids)
                    .all(app.db())
                    .await?
                    .into_iter()
                    .map(|m| (m.id, m))
                    .collect()
            };
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            start_cursor: page.items.first().map(|(c, _)| c.clone()),
            end_cursor: page.items.last().map(|(c, _)| c.clone()),
        };
        let edges = page
            .items
            .into_iter()
            .map(|(cursor, hit)| {
                let Hit {
                    conversation,
                    score,
                    highlights,
                } = hit;
                let highlights = highlights
                    .into_iter()
                    .map(|h| SearchHighlight {
                        message: (h.source == Source::Message)
                            .then(|| messages.remove(&h.source_id))
                            .flatten(),
                        highlight: h,
                    })
                    .collect();
                ConversationSearchResultEdge {
                    cursor,
                    node: ConversationSearchResult {
                        conversation,
                        score,
                        highlights,
                    },
                }
            })
            .collect();
        Ok(ConversationSearchResultConnection {
            edges,
            page_info,
            search,
        })
    }
}
