//! `Services`: the ports of a process, built once from settings and shared by every
//! run in it (the CLI's one run, the server's many jobs, a cohort's variants). Nothing
//! else builds a store, an embedder or a model client, so there is one database pool,
//! one embedding model in memory and one set of model-account limits per process.
//!
//! The embedding model loads on first use: commands and requests that never embed
//! never pay for it.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::Settings;
use crate::embed::{EmbedError, Embedder};
use crate::llm::gateway::Gateway;
use crate::llm::offline::OfflineLlm;
use crate::llm::provider::{ModelClient, TaskError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("language model: {0}")]
    Llm(#[from] TaskError),
}

pub struct Services {
    pub store: Arc<dyn Store>,
    pub model: ModelClient,
    pub settings: Arc<Settings>,
    embedder: OnceCell<Arc<dyn Embedder>>,
}

impl Services {
    /// The configured database (migrated), the configured model client; the embedder
    /// on first use.
    pub async fn from_settings(settings: Settings) -> Result<Services, ServicesError> {
        let store: Arc<dyn Store> = Arc::from(crate::store::open(&settings.database.url).await?);
        Services::with_store(store, settings)
    }

    /// Over a store the caller opened.
    pub fn with_store(
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Services, ServicesError> {
        Ok(Services {
            store,
            model: ModelClient::from_settings(&settings.llm)?,
            settings: Arc::new(settings),
            embedder: OnceCell::new(),
        })
    }

    /// The language model as one command sees it: the process's client with a usage
    /// book of its own, its calls within the budget from `started`, and `offline` for
    /// whatever the model does not answer.
    pub fn gateway(&self, offline: OfflineLlm, started: std::time::Instant) -> Gateway {
        Gateway::new(
            self.model.for_run(started),
            Arc::new(offline),
            &self.settings.llm,
        )
    }

    /// With a given embedder instead of the configured one (tests, benches).
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Services {
        self.embedder = OnceCell::new_with(Some(embedder));
        self
    }

    /// The embedder, loaded on first use (model loading is CPU work: it runs on a
    /// blocking thread).
    pub async fn embedder(&self) -> Result<Arc<dyn Embedder>, EmbedError> {
        self.embedder
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                tokio::task::spawn_blocking(move || embedder_from_settings(&settings))
                    .await
                    .map_err(|e| EmbedError::Model(format!("model loader failed: {e}")))?
            })
            .await
            .cloned()
    }
}

/// The embedder the settings name (`embed.provider`; the chat settings only supply
/// the OpenAI endpoint's limits, and its address when `embed` names none).
pub fn embedder_from_settings(
    settings: &crate::config::Settings,
) -> Result<std::sync::Arc<dyn Embedder>, EmbedError> {
    let llm = &settings.llm;
    // One set of model sessions serves every run of the process, so `pipeline.threads`
    // caps them once, here.
    let threads = settings.threads_for(settings.embed.threads);
    let settings = &settings.embed;
    use crate::config::EmbedProvider;
    match settings.provider {
        EmbedProvider::Openai => Ok(std::sync::Arc::new(
            crate::llm::embeddings::OpenAiEmbedder::new(settings, llm)?,
        )),
        EmbedProvider::Local => {
            let paths =
                crate::embed::LocalModelPaths::resolve(&settings.model_dir, &settings.ort_lib);
            Ok(std::sync::Arc::new(crate::embed::LocalEmbedder::load(
                &paths,
                threads,
                settings.batch_size,
            )?))
        }
    }
}

/// The model files the configured embedder needs that are not on disk (none for a
/// remote embedder): what `/readyz` checks, without loading the model.
pub fn missing_model_files(settings: &crate::config::Settings) -> Vec<std::path::PathBuf> {
    use crate::config::EmbedProvider;
    let embed = &settings.embed;
    match embed.provider {
        EmbedProvider::Openai => Vec::new(),
        EmbedProvider::Local => {
            let paths = crate::embed::LocalModelPaths::resolve(&embed.model_dir, &embed.ort_lib);
            let files = [
                "model.onnx",
                "tokenizer.json",
                "config.json",
                "special_tokens_map.json",
                "tokenizer_config.json",
            ];
            files
                .iter()
                .map(|f| paths.model_dir.join(f))
                .chain(std::iter::once(paths.ort_lib.clone()))
                .filter(|p| !p.is_file())
                .collect()
        }
    }
}
