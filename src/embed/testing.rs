//! A deterministic embedder for unit tests: hashed word and character-trigram
//! features. Similar texts get similar vectors, with no model files at all.

use async_trait::async_trait;

use super::{EmbedError, Embedder};

pub struct HashingEmbedder {
    dim: usize,
}

impl HashingEmbedder {
    pub fn new(dim: usize) -> Self {
        HashingEmbedder { dim: dim.max(8) }
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
}
