//! The attachment store on local disk. A file is first copied into a staging folder inside the
//! store (so the final rename stays on one file system) while its SHA-256 is computed; it gets its
//! final name `<organization id>/<attachment id>` only once every check passed, and a staged file
//! that is never persisted is deleted when dropped.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

const STAGING: &str = ".staging";
const CHUNK: usize = 64 * 1024;

/// Files under one folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A file copied into the staging folder, not yet part of the store. Deleted on drop unless
/// [`Store::persist`] took it.
#[derive(Debug)]
pub struct Staged {
    path: Option<PathBuf>,
    /// Bytes copied.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Err(error) = std::fs::remove_file(&path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %path.display(), "cannot delete a staged attachment");
        }
    }
}

/// Hex encoding of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// The store under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the file with `storage_key` lives.
    pub fn path(&self, storage_key: &str) -> PathBuf {
        self.root.join(storage_key)
    }

    /// The storage key of attachment `id` of organization `org_id`.
    pub fn key(org_id: Uuid, id: Uuid) -> String {
        format!("{}/{}", org_id.simple(), id.simple())
    }

    /// Copies `file` (from its start) into the staging folder, hashing it on the way.
    pub async fn stage(&self, file: std::fs::File) -> io::Result<Staged> {
        let dir = self.root.join(STAGING);
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{}.part", Uuid::now_v7().simple()));
        // From here on the guard removes the partial file on any failure.
        let mut staged = Staged {
            path: Some(path.clone()),
            size: 0,
            sha256: String::new(),
        };
        let mut source = tokio::fs::File::from_std(file);
        source.seek(SeekFrom::Start(0)).await?;
        let mut target = tokio::fs::File::create(&path).await?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = source.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            let chunk = buffer.get(..read).unwrap_or_default();
            hasher.update(chunk);
            target.write_all(chunk).await?;
            staged.size += read as u64;
        }
        target.flush().await?;
        target.sync_all().await?;
        staged.sha256 = hex(&hasher.finalize());
        Ok(staged)
    }

    /// Moves a staged file to `storage_key`; returns the final path.
    pub async fn persist(&self, mut staged: Staged, storage_key: &str) -> io::Result<PathBuf> {
        let target = self.path(storage_key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let Some(source) = staged.path.clone() else {
            return Err(io::Error::other("the staged file is gone"));
        };
        tokio::fs::rename(&source, &target).await?;
        staged.path = None;
        Ok(target)
    }

    /// Deletes files, logging (not failing) when one cannot be deleted.
    pub async fn remove_all(paths: impl IntoIterator<Item = impl AsRef<Path>>) {
        for path in paths {
            let path = path.as_ref();
            if let Err(error) = tokio::fs::remove_file(path).await
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(%error, path = %path.display(), "cannot delete an attachment file");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn staged_files_are_hashed_persisted_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello").unwrap();
        let staged = store.stage(file.try_clone().unwrap()).await.unwrap();
        assert_eq!(staged.size, 5);
        assert_eq!(
            staged.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let key = Store::key(Uuid::now_v7(), Uuid::now_v7());
        let path = store.persist(staged, &key).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");

        let dropped = store.stage(file).await.unwrap();
        drop(dropped);
        let staging: Vec<_> = std::fs::read_dir(dir.path().join(STAGING))
            .unwrap()
            .collect();
        assert!(staging.is_empty());
    }
}
