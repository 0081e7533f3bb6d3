//! Caches of model output by content hash: embedding vectors, and the objective tags a
//! language model gave, so a text seen before is not sent again.

use std::collections::HashMap;

use async_trait::async_trait;

use super::StoreError;

/// What the models answered, kept by content hash so a re-run asks again only for
/// what changed: embeddings and objective tags.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// Cached embedding vectors of `model_id` for those content hashes that have one.
    async fn cached_embeddings(
        &self,
        model_id: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>, StoreError>;

    /// Stores vectors by (model id, content hash); an existing entry is replaced.
    async fn put_embeddings(
        &self,
        model_id: &str,
        dim: usize,
        items: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError>;

    /// Cached objective tags of `model_id` and `prompt_version` for those content
    /// hashes that have them.
    async fn cached_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError>;

    /// Stores tags by (model id, prompt version, content hash); an existing entry is
    /// replaced.
    async fn put_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        items: &[(String, Vec<String>)],
    ) -> Result<(), StoreError>;
}
