//! Business rules of attachments: what may be uploaded, storing a message's files with their rows,
//! and reading them back.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::Utc;
use entity::attachment;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, QueryFilter, QueryOrder,
    Set,
};
use uuid::Uuid;

use super::MAX_PER_MESSAGE;
use super::store::{Staged, Store};
use crate::config::Config;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::tenancy;
use crate::validate::Errors;

/// A file as received with a request, before any check.
#[derive(Debug)]
pub struct IncomingFile {
    /// The name the client gave.
    pub filename: String,
    /// The content type the client declared, if any.
    pub content_type: Option<String>,
    /// The received bytes (a temporary file).
    pub file: std::fs::File,
    /// Its size in bytes.
    pub size: u64,
}

/// A checked file, ready to be staged.
#[derive(Debug)]
pub struct CheckedFile {
    /// Cleaned file name.
    pub filename: String,
    /// Normalised content type (lower case, no parameters).
    pub content_type: String,
    /// The received bytes.
    pub file: std::fs::File,
}

/// A file copied into the store's staging folder with its metadata.
#[derive(Debug)]
pub struct StagedFile {
    /// Cleaned file name.
    pub filename: String,
    /// Normalised content type.
    pub content_type: String,
    /// The staged copy (size and checksum).
    pub staged: Staged,
}

/// The limits uploads are checked against, from the configuration.
#[derive(Clone, Debug)]
pub struct UploadRules {
    /// Largest file in bytes.
    pub max_bytes: u64,
    /// Allowed content types (lower case).
    pub types: Vec<String>,
}

impl UploadRules {
    /// The configured rules.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_bytes: config.max_attachment_bytes as u64,
            types: config
                .attachment_types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

/// The essence of a content type: `text/plain; charset=utf-8` → `text/plain`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A file name safe to store and to put in a header: the last path segment, without control
/// characters, at most 255 characters; `attachment` when nothing is left.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "attachment".into()
    } else {
        cleaned.to_string()
    }
}

/// Checks the files of one message (count, size, content type) without touching the disk.
/// Errors are on `field` (count) and `field.<index>` (each file).
pub fn check(
    errors: &mut Errors,
    rules: &UploadRules,
    field: &str,
    files: Vec<IncomingFile>,
) -> Vec<CheckedFile> {
    if files.len() > MAX_PER_MESSAGE {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!(
                "a message takes at most {MAX_PER_MESSAGE} attachments, got {}",
                files.len()
            ),
        );
    }
    let mut checked = Vec::with_capacity(files.len());
    for (i, file) in files.into_iter().enumerate() {
        let path = format!("{field}.{i}");
        let filename = clean_filename(&file.filename);
        let content_type = file
            .content_type
            .as_deref()
            .map(essence)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "application/octet-stream".into());
        if !rules.types.contains(&content_type) {
            errors.add(
                &path,
                UserErrorCode::Invalid,
                format!(
                    "{filename:?} has content type {content_type}, which is not allowed; allowed: {}",
                    rules.types.join(", ")
                ),
            );
        }
        if file.size > rules.max_bytes {
            errors.add(
                &path,
                UserErrorCode::TooLong,
                format!(
                    "{filename:?} is {} bytes; attachments may have at most {} bytes",
                    file.size, rules.max_bytes
                ),
            );
        } else if file.size == 0 {
            errors.add(
                &path,
                UserErrorCode::Invalid,
                format!("{filename:?} is empty"),
            );
        }
        checked.push(CheckedFile {
            filename,
            content_type,
            file: file.file,
        });
    }
    checked
}

/// Copies checked files into the store's staging folder (hashing them). Staged copies are deleted
/// when dropped, so a later failure leaves nothing behind.
pub async fn stage(store: &Store, files: Vec<CheckedFile>) -> AppResult<Vec<StagedFile>> {
    let mut staged = Vec::with_capacity(files.len());
    for file in files {
        let copy = store.stage(file.file).await.map_err(AppError::internal)?;
        staged.push(StagedFile {
            filename: file.filename,
            content_type: file.content_type,
            staged: copy,
        });
    }
    Ok(staged)
}

/// Moves staged files into the store under their attachment ids and inserts their rows for
/// `message_id`, inside `conn`. Returns the rows and the final paths; the caller deletes those
/// paths when its transaction does not commit. Paths already moved when this fails are deleted
/// here.
pub async fn attach<C: ConnectionTrait>(
    conn: &C,
    store: &Store,
    org_id: Uuid,
    message_id: Uuid,
    uploaded_by: Option<Uuid>,
    files: Vec<StagedFile>,
) -> AppResult<(Vec<attachment::Model>, Vec<PathBuf>)> {
    let mut rows = Vec::with_capacity(files.len());
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        let result = attach_one(conn, store, org_id, message_id, uploaded_by, file).await;
        match result {
            Ok((row, path)) => {
                rows.push(row);
                paths.push(path);
            }
            Err(error) => {
                Store::remove_all(&paths).await;
                return Err(error);
            }
        }
    }
    Ok((rows, paths))
}

async fn attach_one<C: ConnectionTrait>(
    conn: &C,
    store: &Store,
    org_id: Uuid,
    message_id: Uuid,
    uploaded_by: Option<Uuid>,
    file: StagedFile,
) -> AppResult<(attachment::Model, PathBuf)> {
    let id = Uuid::now_v7();
    let key = Store::key(org_id, id);
    let size = i64::try_from(file.staged.size).map_err(AppError::internal)?;
    let sha256 = file.staged.sha256.clone();
    let path = store
        .persist(file.staged, &key)
        .await
        .map_err(AppError::internal)?;
    let row = attachment::ActiveModel {
        id: Set(id),
        org_id: Set(org_id),
        message_id: Set(Some(message_id)),
        filename: Set(file.filename),
        content_type: Set(file.content_type),
        size_bytes: Set(size),
        sha256: Set(sha256),
        storage_key: Set(key),
        uploaded_by: Set(uploaded_by),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await;
    match row {
        Ok(row) => Ok((row, path)),
        Err(error) => {
            Store::remove_all([&path]).await;
            Err(error.into())
        }
    }
}

/// The attachments of `message_id`, for deletion with it.
pub async fn of_message<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    message_id: Uuid,
) -> AppResult<Vec<attachment::Model>> {
    Ok(tenancy::in_org::<attachment::Entity>(org_id)
        .filter(attachment::Column::MessageId.eq(message_id))
        .all(conn)
        .await?)
}

/// Attachments per message, in upload order, batched.
pub async fn of_messages(
    db: &DatabaseConnection,
    org_id: Uuid,
    message_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<attachment::Model>>> {
    let rows = tenancy::in_org::<attachment::Entity>(org_id)
        .filter(attachment::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(attachment::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<attachment::Model>> = HashMap::new();
    for row in rows {
        if let Some(message_id) = row.message_id {
            map.entry(message_id).or_default().push(row);
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_content_types_are_cleaned() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\ann\\photo.png"), "photo.png");
        assert_eq!(clean_filename("re\u{0}port\n.pdf"), "report.pdf");
        assert_eq!(clean_filename(".."), "attachment");
        assert_eq!(clean_filename(""), "attachment");
        assert_eq!(essence("Text/Plain; charset=UTF-8"), "text/plain");
    }
}
