//! The local embedder: all-MiniLM-L6-v2 (int8 weights) run by ONNX Runtime through
//! fastembed, with mean pooling and L2 normalisation.
//!
//! ONNX Runtime is loaded from the shared library `scripts/setup` fetched (dlopen, not
//! linked), so a missing file is an error that names the setup command rather than a
//! crash. ONNX Runtime allows one environment per process: it is created once and
//! shared by every embedder.
//!
//! Texts are embedded in order of length, so each batch pads to a similar length:
//! padding every title to the longest one in a mixed batch wastes most of the work.
//! Small batches of short titles are too small to split well across cores inside one
//! model call, so each core runs its own single-threaded session on every other batch
//! (measured: 1.83× at 2 cores for intra-op threading, see BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use super::{EmbedError, Embedder};

/// Where the model and runtime live.
#[derive(Debug, Clone)]
pub struct LocalModelPaths {
    /// Folder with `model.onnx`, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json`, `tokenizer_config.json`.
    pub model_dir: PathBuf,
    /// ONNX Runtime's shared library (≥ 1.24).
    pub ort_lib: PathBuf,
}

impl LocalModelPaths {
    /// The cache `scripts/setup` fills: `$BUNDLEFORGE_CACHE`, else `~/.cache/bundleforge`.
    pub fn default_cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("BUNDLEFORGE_CACHE").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".cache").join("bundleforge")
    }

    /// The configured paths; empty settings mean the default cache.
    pub fn resolve(model_dir: &str, ort_lib: &str) -> Self {
        let cache = Self::default_cache_dir();
        LocalModelPaths {
            model_dir: if model_dir.is_empty() {
                cache.join("models").join("all-MiniLM-L6-v2-int8")
            } else {
                PathBuf::from(model_dir)
            },
            ort_lib: if ort_lib.is_empty() {
                cache.join("onnxruntime").join("libonnxruntime.so.1.31.1")
            } else {
                PathBuf::from(ort_lib)
            },
        }
    }
}

/// The one ONNX Runtime environment of this process.
fn environment(lib: &Path) -> Result<ort::environment::Environment, EmbedError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    let runtime_error = |reason: String| EmbedError::Runtime {
        path: lib.to_owned(),
        reason,
    };
    if !lib.exists() {
        return Err(runtime_error("the file does not exist".into()));
    }
    ENV.get_or_init(|| {
        let builder = ort::init_from(lib).map_err(|e| e.to_string())?;
        builder
            .with_name("bundleforge")
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(runtime_error)
}

fn read(path: PathBuf, setting: &'static str) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(&path).map_err(|_| EmbedError::ModelMissing { path, setting })
}

/// all-MiniLM-L6-v2 on the CPU: one single-threaded session per worker.
pub struct LocalEmbedder {
    sessions: Arc<Vec<Mutex<TextEmbedding>>>,
    model_id: String,
    batch_size: usize,
}

pub const LOCAL_MODEL_ID: &str = "all-MiniLM-L6-v2-int8/mean/v1";
pub const LOCAL_DIM: usize = 384;

impl LocalEmbedder {
    /// Loads the model. `threads` = 0 uses every core.
    pub fn load(
        paths: &LocalModelPaths,
        threads: usize,
        batch_size: usize,
    ) -> Result<Self, EmbedError> {
        let dir = &paths.model_dir;
        let setting = "BUNDLEFORGE__EMBED__MODEL_DIR";
        let onnx = read(dir.join("model.onnx"), setting)?;
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read(dir.join("tokenizer.json"), setting)?,
            config_file: read(dir.join("config.json"), setting)?,
            special_tokens_map_file: read(dir.join("special_tokens_map.json"), setting)?,
            tokenizer_config_file: read(dir.join("tokenizer_config.json"), setting)?,
        };
        let env = environment(&paths.ort_lib)?;
        let workers = crate::config::thread_count(threads);
        let mut sessions = Vec::with_capacity(workers);
        for _ in 0..workers {
            // Mean pooling is this model's training objective; fastembed's default (CLS)
            // would give worse neighbours.
            let model = UserDefinedEmbeddingModel::new(onnx.clone(), tokenizer_files.clone())
                .with_pooling(Pooling::Mean);
            let options = InitOptionsUserDefined::new()
                .with_environment(env.clone())
                .with_intra_threads(1)
                .with_max_length(128);
            let session = TextEmbedding::try_new_from_user_defined(model, options)
                .map_err(|e| EmbedError::Model(e.to_string()))?;
            sessions.push(Mutex::new(session));
        }
        Ok(LocalEmbedder {
            sessions: Arc::new(sessions),
            model_id: LOCAL_MODEL_ID.to_owned(),
            batch_size: batch_size.max(1),
        })
    }

    /// Embeds synchronously (call from a blocking thread).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        embed_sorted(
            &self.sessions,
            texts,
            self.batch_size,
            &crate::cancel::CancelToken::never(),
            &|_: usize| {},
        )
    }

    /// Embeds on a blocking thread (the model is CPU work: it stays off the async
    /// workers), stopping at `cancel` between batches. Batches finish on that thread;
    /// their counts come back over a channel to `progress`, called here, so it need
    /// not be `'static`.
    async fn embed_off_thread(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let sessions = Arc::clone(&self.sessions);
        let texts = texts.to_vec();
        let batch = self.batch_size;
        let cancel = cancel.clone();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let work = tokio::task::spawn_blocking(move || {
            let tell = |done: usize| {
                let _ = done_tx.send(done);
            };
            embed_sorted(&sessions, &texts, batch, &cancel, &tell)
        });
        // The channel closes when the work ends, however it ends.
        while let Some(done) = done_rx.recv().await {
            progress(done);
        }
        work.await
            .map_err(|e| EmbedError::Model(format!("embedding worker failed: {e}")))?
    }
}

/// Vectors with the index of the text they belong to.
type Placed = Vec<(usize, Vec<f32>)>;

/// Embeds `texts` in batches of `batch_size` over the sessions, telling `progress`
/// the texts done after each batch (from whichever thread ran it).
fn embed_sorted(
    sessions: &[Mutex<TextEmbedding>],
    texts: &[String],
    batch_size: usize,
    cancel: &crate::cancel::CancelToken,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<f32>>, EmbedError> {
    // Length order (bytes are a good proxy for tokens here) keeps padding small.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| (texts[i].len(), i));
    let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
    let workers = sessions.len().clamp(1, batches.len().max(1));
    let done = AtomicUsize::new(0);
    // Worker w takes batches w, w + workers, …: neighbouring batches have similar
    // lengths, so the work splits evenly.
    let run = |w: usize| -> Result<Placed, EmbedError> {
        let mine: Vec<&[usize]> = batches.iter().copied().skip(w).step_by(workers).collect();
        let mut session = sessions[w]
            .lock()
            .map_err(|_| EmbedError::Model("the embedding model panicked earlier".into()))?;
        let mut out = Vec::new();
        for batch in mine {
            if cancel.is_cancelled() {
                return Err(EmbedError::Cancelled);
            }
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let vectors = session
                .embed(&batch_texts, Some(batch_size))
                .map_err(|e| EmbedError::Model(e.to_string()))?;
            if vectors.len() != batch.len() {
                return Err(EmbedError::WrongCount {
                    expected: batch.len(),
                    got: vectors.len(),
                });
            }
            out.extend(batch.iter().copied().zip(vectors));
            progress(done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len());
        }
        Ok(out)
    };
    let parts: Vec<Result<Placed, EmbedError>> = if workers == 1 {
        vec![run(0)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers).map(|w| s.spawn(move || run(w))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut out = vec![Vec::new(); texts.len()];
    for part in parts {
        for (slot, mut v) in part? {
            crate::index::metric::normalise(&mut v);
            out[slot] = v;
        }
    }
    Ok(out)
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        LOCAL_DIM
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let never = crate::cancel::CancelToken::never();
        self.embed_off_thread(texts, &never, &|_: usize| {}).await
    }

    async fn embed_until(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_off_thread(texts, cancel, &|_: usize| {}).await
    }

    async fn embed_reporting(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_off_thread(texts, cancel, progress).await
    }
}
