//! The directory objects made through the API, in SQLite: the
//! `directory_objects` table (`migrations/0007_directory.sql`). The file's
//! objects are never written here; `config::directory` joins the two.

use chrono::Utc;
use sqlx::Row;

use super::sqlite::SqliteStore;
use super::sqlite_write::WriteTx;
use super::{to_ms, Result};
use crate::config::directory::{Declared, Kind};

/// One change to the stored directory, written in one transaction.
#[derive(Debug, Clone)]
pub enum DirectoryWrite {
    /// Create or replace the object with this kind and key.
    Put(Declared),
    /// Remove it.
    Delete { kind: Kind, key: String },
}

impl SqliteStore {
    /// Every stored directory object, in the order they were first made.
    pub async fn directory_objects(&self) -> Result<Vec<Declared>> {
        let rows = sqlx::query("SELECT kind, key, body FROM directory_objects ORDER BY seq")
            .fetch_all(self.readers())
            .await
            .map_err(self.err("listing the directory"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r
                .try_get("kind")
                .map_err(self.err("reading the directory"))?;
            let key: String = r
                .try_get("key")
                .map_err(self.err("reading the directory"))?;
            let body: String = r
                .try_get("body")
                .map_err(self.err("reading the directory"))?;
            let kind = Kind::parse(&kind)
                .ok_or_else(|| self.corrupt(format!("directory_objects.kind = {kind:?}")))?;
            let table: toml::Table = serde_json::from_str(&body).map_err(|e| {
                self.corrupt(format!(
                    "directory_objects {kind} {key:?}: the body is not a table: {e}"
                ))
            })?;
            out.push(Declared { kind, key, table });
        }
        Ok(out)
    }

    /// Apply `write`; once this returns `Ok` the change is on disk
    /// (`synchronous=FULL`). A replaced object keeps its place in the order.
    pub async fn write_directory(&self, write: &DirectoryWrite) -> Result<()> {
        let mut tx = WriteTx::begin(self).await?;
        match write {
            DirectoryWrite::Put(d) => {
                let body = serde_json::to_string(&d.table).map_err(|e| {
                    self.corrupt(format!("{} {:?} cannot be stored: {e}", d.kind, d.key))
                })?;
                sqlx::query(
                    "INSERT INTO directory_objects (kind, key, body, updated_at_ms) \
                     VALUES (?, ?, ?, ?) \
                     ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(d.kind.table())
                .bind(&d.key)
                .bind(body)
                .bind(to_ms(Utc::now()))
                .execute(&mut *tx)
                .await
                .map_err(self.err("writing a directory object"))?;
            }
            DirectoryWrite::Delete { kind, key } => {
                sqlx::query("DELETE FROM directory_objects WHERE kind = ? AND key = ?")
                    .bind(kind.table())
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err("removing a directory object"))?;
            }
        }
        tx.commit(self, "writing the directory").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Put, replace (keeping the order), delete, and read back.
    #[tokio::test]
    async fn directory_objects_round_trip() {
        let store = SqliteStore::open_in_memory()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let obj = |kind, key: &str, name: &str| {
            let mut t = toml::Table::new();
            t.insert(kind_key(kind).into(), key.into());
            t.insert("description".into(), name.into());
            Declared::new(kind, t)
        };
        fn kind_key(k: Kind) -> &'static str {
            k.key_member()
        }
        for d in [
            obj(Kind::Users, "a", "one"),
            obj(Kind::Flows, "F", "two"),
            obj(Kind::Users, "a", "three"),
        ] {
            store
                .write_directory(&DirectoryWrite::Put(d))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let all = store
            .directory_objects()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            all,
            vec![obj(Kind::Users, "a", "three"), obj(Kind::Flows, "F", "two")]
        );
        store
            .write_directory(&DirectoryWrite::Delete {
                kind: Kind::Users,
                key: "a".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let all = store
            .directory_objects()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, vec![obj(Kind::Flows, "F", "two")]);
    }
}
