//! `bundleforge prior build`: the prior's sources from basket files of category names
//! and from stored stores' orders. A store's categories are its merchant's own, or
//! clusters of its products' titles where it has none (as a run derives them), each
//! described by its most typical titles.

use std::collections::HashMap;
use std::path::PathBuf;

use super::mine::{category_basket_lines, source_from_baskets};
use super::{ComplementPrior, FORMAT_VERSION, PriorError, PriorSource};
use crate::domain::StoreId;
use crate::embed::{EmbedError, Embedder};
use crate::index::Matrix;
use crate::index::clusters::{self, CLUSTER_PREFIX};
use crate::index::metric::kernels;
use crate::store::{Store, StoreError};

/// Typical titles kept per category.
const EXAMPLES: usize = 6;
/// Products per derived kind where a store has no categories.
const PRODUCTS_PER_KIND: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Prior(#[from] PriorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("store {0} has no orders to mine")]
    NoOrders(String),
}

/// What to mine: (data set name, file) and (data set name, stored store).
pub struct BuildInput {
    pub category_baskets: Vec<(String, PathBuf)>,
    pub stores: Vec<(String, StoreId)>,
    pub built_by: String,
}

pub async fn build(
    input: &BuildInput,
    store: &dyn Store,
    embedder: &dyn Embedder,
    description_chars: usize,
) -> Result<ComplementPrior, BuildError> {
    let mut sources = Vec::new();
    for (name, path) in &input.category_baskets {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Read {
            file: file.clone(),
            source,
        })?;
        let source = source_from_baskets(name, category_basket_lines(&text), &HashMap::new());
        if source.baskets == 0 {
            return Err(PriorError::Invalid {
                file,
                message: "no baskets (one basket per line, category names separated by commas)"
                    .into(),
            }
            .into());
        }
        sources.push(source);
    }
    for (name, id) in &input.stores {
        sources.push(store_source(name, id, store, embedder, description_chars).await?);
    }
    let prior = ComplementPrior {
        version: FORMAT_VERSION,
        built_by: input.built_by.clone(),
        sources,
    };
    // What we write must read back.
    let text = serde_json::to_string(&prior).map_err(|e| PriorError::Invalid {
        file: "the built prior".into(),
        message: e.to_string(),
    })?;
    ComplementPrior::parse(&text, "the built prior")?;
    Ok(prior)
}

async fn store_source(
    name: &str,
    id: &StoreId,
    store: &dyn Store,
    embedder: &dyn Embedder,
    description_chars: usize,
) -> Result<PriorSource, BuildError> {
    let data = store.load(id).await?;
    if data.orders.is_empty() {
        return Err(BuildError::NoOrders(id.to_string()));
    }
    let (vectors, _) =
        crate::embed::embed_products(embedder, store, &data.products, description_chars).await?;
    // Finer than a run's clusters: a kind of product, not a department, so that what
    // goes with what shows (a department holds most of an order already).
    let own = data.products.iter().map(|p| p.own_category()).collect();
    let labels = clusters::label_missing(own, &vectors, 0, |n| n / PRODUCTS_PER_KIND);
    let titles: Vec<String> = data.products.iter().map(|p| p.display_title()).collect();
    let names = describe(&labels, &titles, &vectors);
    let examples: HashMap<String, Vec<String>> = names
        .values()
        .map(|(name, examples)| (name.clone(), examples.clone()))
        .collect();
    let baskets = data.orders.iter().map(|o| {
        o.lines
            .iter()
            .filter_map(|l| l.item)
            .filter_map(|i| labels.get(i as usize))
            .filter_map(|label| names.get(label).map(|(n, _)| n.as_str()))
            .collect::<Vec<&str>>()
    });
    Ok(source_from_baskets(name, baskets, &examples))
}

/// Each category's name and typical titles (the ones nearest its centroid, one per
/// distinct title). A derived cluster is named after its most typical title.
fn describe(
    labels: &[String],
    titles: &[String],
    vectors: &Matrix,
) -> HashMap<String, (String, Vec<String>)> {
    let kern = kernels();
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, label) in labels.iter().enumerate() {
        members.entry(label.as_str()).or_default().push(i);
    }
    let mut members: Vec<(&str, Vec<usize>)> = members.into_iter().collect();
    members.sort_unstable();
    let mut out: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (label, rows) in members {
        let mut centre = vec![0.0f32; vectors.dim()];
        for &r in &rows {
            for (c, x) in centre.iter_mut().zip(vectors.row(r)) {
                *c += x;
            }
        }
        crate::index::metric::normalise(&mut centre);
        let mut ranked: Vec<(usize, f32)> = rows
            .iter()
            .map(|&r| (r, kern.dot(&centre, vectors.row(r))))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut examples: Vec<String> = Vec::new();
        for (r, _) in ranked {
            let t = titles[r].trim();
            if !t.is_empty() && !examples.iter().any(|e| e.eq_ignore_ascii_case(t)) {
                examples.push(t.to_owned());
            }
            if examples.len() == EXAMPLES {
                break;
            }
        }
        let name = if label.starts_with(CLUSTER_PREFIX) {
            match examples.first() {
                Some(t) => format!("{} and alike", t.to_lowercase()),
                None => label.to_owned(),
            }
        } else {
            label.to_owned()
        };
        // Two clusters may share a typical title (products of one description).
        let mut unique = name.clone();
        let mut n = 2;
        while !taken.insert(unique.clone()) {
            unique = format!("{name} ({n})");
            n += 1;
        }
        let name = unique;
        out.insert(label.to_owned(), (name, examples));
    }
    out
}
