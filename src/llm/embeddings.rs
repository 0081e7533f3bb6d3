//! Embeddings from an OpenAI-compatible endpoint (`text-embedding-3-small` by default),
//! through the chat client's limits, retries and breaker. Chosen only by
//! `embed.provider = "openai"`.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures_util::future::try_join_all;

use super::client::ChatClient;
use crate::config::{EmbedSettings, LlmSettings};
use crate::embed::{EmbedError, Embedder};
use crate::index::metric::normalise;

/// Inputs per request: the API takes up to 2,048, but smaller requests retry cheaply
/// and run in parallel under the concurrency bound.
const INPUTS_PER_REQUEST: usize = 100;

pub struct OpenAiEmbedder {
    client: ChatClient,
    model: String,
    dim: usize,
    id: String,
}

impl OpenAiEmbedder {
    pub fn new(embed: &EmbedSettings, llm: &LlmSettings) -> Result<OpenAiEmbedder, EmbedError> {
        let pick = |own: &str, shared: &str| {
            if own.trim().is_empty() {
                shared.to_owned()
            } else {
                own.to_owned()
            }
        };
        let endpoint = LlmSettings {
            base_url: pick(&embed.base_url, &llm.base_url),
            api_key: if embed.api_key.is_empty() {
                llm.api_key.clone()
            } else {
                embed.api_key.clone()
            },
            ..llm.clone()
        };
        let client = ChatClient::new(&endpoint).map_err(|e| EmbedError::Model(e.to_string()))?;
        Ok(OpenAiEmbedder {
            client,
            model: embed.openai_model.clone(),
            dim: embed.openai_dimensions,
            id: format!("openai:{}:{}", embed.openai_model, embed.openai_dimensions),
        })
    }

    /// The client, for its usage figures.
    pub fn client(&self) -> &ChatClient {
        &self.client
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counting(texts, &|_: usize| {}).await
    }

    async fn embed_reporting(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        cancel.guard(self.embed_counting(texts, progress)).await?
    }
}

impl OpenAiEmbedder {
    /// Embeds in requests of [`INPUTS_PER_REQUEST`] inputs at once, telling
    /// `progress` the texts done as each request is answered.
    async fn embed_counting(
        &self,
        texts: &[String],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let done = AtomicUsize::new(0);
        let done = &done;
        let batches = texts.chunks(INPUTS_PER_REQUEST).map(|batch| async move {
            let vectors = self
                .client
                .embeddings(&self.model, self.dim, batch)
                .await
                .map_err(|e| EmbedError::Model(e.to_string()))?;
            progress(done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len());
            Ok::<_, EmbedError>(vectors)
        });
        let mut out = Vec::with_capacity(texts.len());
        for batch in try_join_all(batches).await? {
            for mut v in batch {
                if v.len() != self.dim {
                    return Err(EmbedError::WrongDimension {
                        expected: self.dim,
                        got: v.len(),
                    });
                }
                // OpenAI's vectors are unit length already; other servers' may not be.
                normalise(&mut v);
                out.push(v);
            }
        }
        if out.len() != texts.len() {
            return Err(EmbedError::WrongCount {
                expected: texts.len(),
                got: out.len(),
            });
        }
        Ok(out)
    }
}
