//! A deterministic embedder for unit tests: hashed word and character-trigram
//! features. Similar texts get similar vectors, with no model files at all.

use async_trait::async_trait;

use super::{EmbedError, Embedder};

pub struct HashingEmbedder {
    dim: usize,
    /// Texts per batch when progress is followed (`embed.batch_size`'s default).
    batch_size: usize,
}

impl HashingEmbedder {
    pub fn new(dim: usize) -> Self {
        HashingEmbedder {
            dim: dim.max(8),
            batch_size: 16,
        }
    }

    /// Batches of `n` texts, as the local model's `embed.batch_size`: each tells its
    /// progress, so tests can follow an embedding batch by batch.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dim];
        let lower = text.to_lowercase();
        let mut add = |feature: &str, weight: f32| {
            let h = super::content_hash(feature);
            let bucket = usize::from_str_radix(&h[..8], 16).unwrap_or(0) % self.dim;
            let sign = if h.as_bytes()[8].is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            v[bucket] += sign * weight;
        };
        for word in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            add(word, 1.0);
            let chars: Vec<char> = format!(" {word} ").chars().collect();
            for tri in chars.windows(3) {
                add(&tri.iter().collect::<String>(), 0.3);
            }
        }
        crate::index::metric::normalise(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn model_id(&self) -> &str {
        "test/hashing"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }

    async fn embed_reporting(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            cancel.check()?;
            vectors.extend(batch.iter().map(|t| self.vector(t)));
            progress(vectors.len());
        }
        Ok(vectors)
    }
}
