//! The model caches on SQLite: vectors as little-endian bytes, tags as a JSON array.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;

use super::{ROWS_PER_INSERT, SqliteStore, insert_chunked, now};
use crate::store::StoreError;
use crate::store::caches::CacheStore;

#[async_trait]
impl CacheStore for SqliteStore {
    async fn cached_embeddings(
        &self,
        model_id: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for chunk in hashes.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT content_hash, dim, vector FROM embeddings WHERE model_id = ? AND content_hash IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(model_id);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                let hash: String = row.try_get(0)?;
                let dim: i64 = row.try_get(1)?;
                let bytes: &[u8] = row.try_get(2)?;
                out.insert(hash, decode_vector(bytes, dim)?);
            }
        }
        Ok(out)
    }

    async fn put_embeddings(
        &self,
        model_id: &str,
        dim: usize,
        items: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError> {
        let ts = now();
        let encoded: Vec<(&str, Vec<u8>)> = items
            .iter()
            .map(|(h, v)| (h.as_str(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let dim = dim as i64;
        let mut tx = self.pool.begin().await?;
        insert_chunked(
            &mut tx,
            model_id,
            "INSERT INTO embeddings (model_id, content_hash, dim, vector, created_at)",
            "ON CONFLICT (model_id, content_hash) DO UPDATE SET dim = excluded.dim, \
             vector = excluded.vector, created_at = excluded.created_at",
            5,
            &encoded,
            |q, model, (hash, bytes)| {
                q.bind(model)
                    .bind(*hash)
                    .bind(dim)
                    .bind(bytes.as_slice())
                    .bind(ts)
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cached_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for chunk in hashes.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT content_hash, tags FROM classifications \
                 WHERE model_id = ? AND prompt_version = ? AND content_hash IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(model_id).bind(prompt_version);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                let hash: String = row.try_get(0)?;
                let tags: String = row.try_get(1)?;
                let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| {
                    StoreError::Corrupt(format!("classification tags of {hash}: {e}"))
                })?;
                out.insert(hash, tags);
            }
        }
        Ok(out)
    }

    async fn put_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        items: &[(String, Vec<String>)],
    ) -> Result<(), StoreError> {
        let ts = now();
        let encoded: Vec<(&str, String)> = items
            .iter()
            .map(|(h, tags)| (h.as_str(), serde_json::json!(tags).to_string()))
            .collect();
        let mut tx = self.pool.begin().await?;
        insert_chunked(
            &mut tx,
            model_id,
            "INSERT INTO classifications (model_id, prompt_version, content_hash, tags, created_at)",
            "ON CONFLICT (model_id, prompt_version, content_hash) DO UPDATE SET \
             tags = excluded.tags, created_at = excluded.created_at",
            5,
            &encoded,
            |q, model, (hash, tags)| {
                q.bind(model)
                    .bind(prompt_version)
                    .bind(*hash)
                    .bind(tags.as_str())
                    .bind(ts)
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Little-endian f32s, `dim` of them.
fn decode_vector(bytes: &[u8], dim: i64) -> Result<Vec<f32>, StoreError> {
    if bytes.len() != dim.max(0) as usize * 4 {
        return Err(StoreError::Corrupt(format!(
            "embedding of {} bytes for dimension {dim}",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
