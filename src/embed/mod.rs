//! Product embeddings: the text we embed for a product, the `Embedder` port, and the
//! cache that makes a second run embed only what changed.
//!
//! The local model (all-MiniLM-L6-v2, 384-d, ONNX through fastembed) is the default
//! and needs no network at run time: `scripts/setup` fetches it once into a cache
//! outside the repository. Vectors are L2-normalised so that inner product is cosine,
//! as the vector core expects. The cache key is (model id, hash of the exact text), so
//! a changed title re-embeds that product alone, and a different model never reuses
//! another model's vectors.

mod local;
#[cfg(any(test, feature = "testing"))]
mod testing;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use async_trait::async_trait;

use crate::domain::Product;
use crate::error::ErrorKind;
use crate::index::Matrix;
use crate::store::{Store, StoreError};

pub use local::{LocalEmbedder, LocalModelPaths};
#[cfg(any(test, feature = "testing"))]
pub use testing::HashingEmbedder;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "embedding model file {path} is missing; run scripts/setup to fetch it (or set {setting})"
    )]
    ModelMissing {
        path: PathBuf,
        setting: &'static str,
    },
    #[error(
        "cannot load ONNX Runtime from {path}: {reason}; run scripts/setup (or set BUNDLEFORGE__EMBED__ORT_LIB)"
    )]
    Runtime { path: PathBuf, reason: String },
    #[error("embedding model failed: {0}")]
    Model(String),
    #[error("the embedder returned {got} vectors for {expected} texts")]
    WrongCount { expected: usize, got: usize },
    #[error("wrong dimension: expected {expected}, got {got}")]
    WrongDimension { expected: usize, got: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding was cancelled")]
    Cancelled,
}

impl EmbedError {
    pub fn kind(&self) -> ErrorKind {
        use EmbedError::*;
        match self {
            Store(e) => e.kind(),
            Cancelled => ErrorKind::Cancelled,
            ModelMissing { .. }
            | Runtime { .. }
            | Model(_)
            | WrongCount { .. }
            | WrongDimension { .. } => ErrorKind::Internal,
        }
    }
}

impl From<crate::cancel::Cancelled> for EmbedError {
    fn from(_: crate::cancel::Cancelled) -> Self {
        EmbedError::Cancelled
    }
}

/// Turns texts into unit vectors. Implementations batch and parallelise internally.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model and its settings: vectors from different ids never mix.
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    /// One L2-normalised vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// [`Embedder::embed`] that stops with [`EmbedError::Cancelled`] once `cancel`
    /// is: between batches for CPU models, at once for remote ones.
    async fn embed_until(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        cancel.guard(self.embed(texts)).await?
    }

    /// [`Embedder::embed_until`], telling `progress` how many of `texts` are done as
    /// the embedder's batches finish, so a long embedding can be followed. This
    /// default can only tell once, at the end; embedders that batch tell per batch.
    async fn embed_reporting(
        &self,
        texts: &[String],
        cancel: &crate::cancel::CancelToken,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let vectors = self.embed_until(texts, cancel).await?;
        progress(texts.len());
        Ok(vectors)
    }
}

/// The text embedded for a product: its title, the merchant's own category (or type),
/// and the start of its description. Categories the engine derives are never part of
/// it, so the content hash stays stable from run to run.
pub fn product_text(p: &Product, description_chars: usize) -> String {
    let mut text = p.display_title();
    if let Some(cat) = p.product_type.as_deref().or(p.category.as_deref()) {
        text.push_str(" | ");
        text.push_str(cat);
    }
    if description_chars > 0 && !p.description.is_empty() {
        let cut: String = p.description.chars().take(description_chars).collect();
        // End on a word boundary so a half word does not become a token of its own.
        let cut = match cut.rfind(' ') {
            Some(i) if p.description.chars().count() > description_chars && i > 0 => &cut[..i],
            _ => cut.as_str(),
        };
        text.push_str(" | ");
        text.push_str(cut);
    }
    text
}

/// A stable 128-bit hex hash of the text (FNV-1a over two lanes): the cache key.
pub fn content_hash(text: &str) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for &byte in text.as_bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    format!("{a:016x}{b:016x}")
}

/// What embedding a catalog cost.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct EmbedStats {
    pub products: usize,
    pub embedded: usize,
    pub from_cache: usize,
}

/// Embeds every product (through the cache) into one matrix, row i = product i.
pub async fn embed_products(
    embedder: &dyn Embedder,
    store: &dyn Store,
    products: &[Product],
    description_chars: usize,
) -> Result<(Matrix, EmbedStats), EmbedError> {
    let never = crate::cancel::CancelToken::never();
    embed_products_until(embedder, store, products, description_chars, &never).await
}

/// [`embed_products`], stopping at `cancel`.
pub async fn embed_products_until(
    embedder: &dyn Embedder,
    store: &dyn Store,
    products: &[Product],
    description_chars: usize,
    cancel: &crate::cancel::CancelToken,
) -> Result<(Matrix, EmbedStats), EmbedError> {
    embed_products_reporting(
        embedder,
        store,
        products,
        description_chars,
        cancel,
        &|_: usize, _: usize| {},
    )
    .await
}

/// [`embed_products_until`], telling `progress` (products done, products) as the
/// model's batches finish; products found in the cache are done at once. A plain
/// callback, so the engine's progress events need not be known here.
pub async fn embed_products_reporting(
    embedder: &dyn Embedder,
    store: &dyn Store,
    products: &[Product],
    description_chars: usize,
    cancel: &crate::cancel::CancelToken,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Matrix, EmbedStats), EmbedError> {
    let texts: Vec<String> = products
        .iter()
        .map(|p| product_text(p, description_chars))
        .collect();
    embed_texts_reporting(embedder, store, &texts, cancel, progress).await
}

/// Embeds texts (through the cache) into one matrix, row i = text i.
pub async fn embed_texts_until(
    embedder: &dyn Embedder,
    store: &dyn Store,
    texts: &[String],
    cancel: &crate::cancel::CancelToken,
) -> Result<(Matrix, EmbedStats), EmbedError> {
    embed_texts_reporting(embedder, store, texts, cancel, &|_: usize, _: usize| {}).await
}

/// [`embed_texts_until`], telling `progress` (texts done, texts): the cached ones (and
/// repeats of a text being embedded) at once, the rest as the model's batches finish.
pub async fn embed_texts_reporting(
    embedder: &dyn Embedder,
    store: &dyn Store,
    texts: &[String],
    cancel: &crate::cancel::CancelToken,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Matrix, EmbedStats), EmbedError> {
    let hashes: Vec<String> = texts.iter().map(|t| content_hash(t)).collect();
    let model = embedder.model_id().to_owned();
    let dim = embedder.dim();
    let cached = store.cached_embeddings(&model, &hashes).await?;

    // Each distinct missing text is embedded once, even if products share it.
    let mut missing: Vec<usize> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, h) in hashes.iter().enumerate() {
        if !cached.contains_key(h) && seen.insert(h.as_str()) {
            missing.push(i);
        }
    }
    let new_texts: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
    let total = texts.len();
    let at_once = total - new_texts.len();
    progress(at_once, total);
    let new_vectors = if new_texts.is_empty() {
        Vec::new()
    } else {
        let embedded = |n: usize| progress(at_once + n.min(new_texts.len()), total);
        embedder
            .embed_reporting(&new_texts, cancel, &embedded)
            .await?
    };
    if new_vectors.len() != new_texts.len() {
        return Err(EmbedError::WrongCount {
            expected: new_texts.len(),
            got: new_vectors.len(),
        });
    }
    let mut fresh: HashMap<String, Vec<f32>> = HashMap::with_capacity(missing.len());
    let mut to_store = Vec::with_capacity(missing.len());
    for (&i, v) in missing.iter().zip(new_vectors) {
        if v.len() != dim {
            return Err(EmbedError::WrongDimension {
                expected: dim,
                got: v.len(),
            });
        }
        to_store.push((hashes[i].clone(), v.clone()));
        fresh.insert(hashes[i].clone(), v);
    }
    if !to_store.is_empty() {
        store.put_embeddings(&model, dim, &to_store).await?;
    }

    let mut matrix = Matrix::zeros(texts.len(), dim);
    let mut from_cache = 0;
    for (i, h) in hashes.iter().enumerate() {
        let v = match cached.get(h) {
            Some(v) => {
                from_cache += 1;
                v
            }
            None => fresh
                .get(h)
                .ok_or_else(|| EmbedError::Model(format!("no vector for text {i}")))?,
        };
        if v.len() != dim {
            return Err(EmbedError::WrongDimension {
                expected: dim,
                got: v.len(),
            });
        }
        matrix.row_mut(i).copy_from_slice(v);
    }
    // Cached vectors were normalised when made; normalising again costs nothing and
    // guards against a foreign writer.
    matrix.normalise_rows();
    Ok((
        matrix,
        EmbedStats {
            products: texts.len(),
            embedded: missing.len(),
            from_cache,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    fn product(title: &str, cat: Option<&str>, desc: &str) -> Product {
        Product {
            variant_id: "v".into(),
            product_id: "p".into(),
            sku: None,
            handle: None,
            title: title.into(),
            variant_title: None,
            description: desc.into(),
            category: cat.map(Into::into),
            product_type: None,
            vendor: None,
            tags: vec![],
            price: Money::new(100, Currency::USD),
            compare_at_price: None,
            cost: None,
            inventory: None,
            status: None,
            created_at: None,
            gift_card: false,
            inventory_item_id: None,
        }
    }

    #[test]
    fn product_text_is_title_category_and_the_start_of_the_description() {
        let p = product(
            "Green Tea",
            Some("Tea"),
            "A fresh sencha from Shizuoka with grassy notes and a long finish",
        );
        assert_eq!(
            product_text(&p, 30),
            "Green Tea | Tea | A fresh sencha from Shizuoka"
        );
        assert_eq!(product_text(&p, 0), "Green Tea | Tea");
        assert_eq!(product_text(&product("Mug", None, ""), 100), "Mug");
    }

    #[test]
    fn content_hashes_are_stable_and_distinguish_texts() {
        assert_eq!(content_hash("Green Tea"), content_hash("Green Tea"));
        assert_ne!(content_hash("Green Tea"), content_hash("Green tea"));
        assert_eq!(content_hash("").len(), 32);
    }
}
