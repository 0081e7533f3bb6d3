//! The complement prior: which kinds of product other stores' shoppers buy together,
//! for a store whose own orders can't tell yet (a new store, a thin history, a new
//! category). Category-to-category counts mined from public basket data
//! (`bundleforge prior build`, see `scripts/build-prior`), shipped in
//! `prior/complement-prior.json`. Each source is kept apart, so that a store can be
//! evaluated without what was mined from its own orders.
//!
//! A store's products map onto a source's categories by meaning: the category's
//! vector is the mean of its typical titles' (or its name's) embeddings, and a product
//! maps to its nearest category when the cosine reaches `prior.min_similarity` and at
//! least half of its store category maps onto the source; a source is used only when
//! it covers [`STORE_COVERAGE`] of the store's products.

pub mod build;
pub mod mine;
pub mod named;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::index::Matrix;
use crate::index::metric::kernels;

/// A source applies to a store when its categories cover at least this share of the
/// store's products.
pub const STORE_COVERAGE: f64 = 0.2;

/// The format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The prior shipped with the engine.
pub const SHIPPED: &str = include_str!("../../prior/complement-prior.json");

#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    #[error("complement prior {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("complement prior {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

impl PriorError {
    /// The prior is the installation's file, not the caller's input: one that does not
    /// read is a broken installation; one that reads but does not validate was given
    /// wrong (`prior.file`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PriorError::Invalid { .. } => ErrorKind::BadInput,
            PriorError::Read { .. } => ErrorKind::Internal,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComplementPrior {
    pub version: u32,
    /// How the file was built (the command, for whoever rebuilds it).
    pub built_by: String,
    pub sources: Vec<PriorSource>,
}

/// One data set's categories and links, mined on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorSource {
    /// The data set, as a justification names it ("Groceries").
    pub name: String,
    pub baskets: u64,
    pub categories: Vec<PriorCategory>,
    pub links: Vec<PriorLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorCategory {
    pub name: String,
    /// Baskets holding the category.
    pub baskets: u32,
    /// Typical product titles (empty: the name says what it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// Two categories bought together: `count` baskets where chance predicts `expected`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorLink {
    pub a: String,
    pub b: String,
    pub count: u32,
    pub expected: f64,
}

impl PriorCategory {
    /// The texts whose mean embedding stands for the category.
    pub fn texts(&self) -> Vec<String> {
        if self.examples.is_empty() {
            vec![self.name.clone()]
        } else {
            self.examples.clone()
        }
    }
}

impl ComplementPrior {
    /// The shipped prior, parsed once per process (every run's context reads it).
    pub fn shipped() -> Result<Arc<ComplementPrior>, PriorError> {
        static PARSED: OnceLock<Arc<ComplementPrior>> = OnceLock::new();
        if let Some(prior) = PARSED.get() {
            return Ok(prior.clone());
        }
        let prior = Arc::new(ComplementPrior::parse(
            SHIPPED,
            "prior/complement-prior.json (built in)",
        )?);
        Ok(PARSED.get_or_init(|| prior).clone())
    }

    /// `prior.file`, or the shipped prior when it is empty.
    pub fn load(file: &str) -> Result<Arc<ComplementPrior>, PriorError> {
        if file.is_empty() {
            return ComplementPrior::shipped();
        }
        let text = std::fs::read_to_string(file).map_err(|source| PriorError::Read {
            file: file.to_owned(),
            source,
        })?;
        ComplementPrior::parse(&text, file).map(Arc::new)
    }

    pub fn parse(text: &str, file: &str) -> Result<ComplementPrior, PriorError> {
        let invalid = |message: String| PriorError::Invalid {
            file: file.to_owned(),
            message,
        };
        let prior: ComplementPrior =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if prior.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "version {} (this build reads version {FORMAT_VERSION}; rebuild it with scripts/build-prior)",
                prior.version
            )));
        }
        let mut names = HashSet::new();
        for s in &prior.sources {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("source {:?} appears twice", s.name)));
            }
            let known: HashSet<&str> = s.categories.iter().map(|c| c.name.as_str()).collect();
            if known.len() != s.categories.len() {
                return Err(invalid(format!(
                    "source {:?}: a category appears twice",
                    s.name
                )));
            }
            for l in &s.links {
                for c in [&l.a, &l.b] {
                    if !known.contains(c.as_str()) {
                        return Err(invalid(format!(
                            "source {:?}: link {:?}–{:?} names an unknown category {c:?}",
                            s.name, l.a, l.b
                        )));
                    }
                }
                if l.a == l.b || !(l.expected.is_finite() && l.expected > 0.0) {
                    return Err(invalid(format!(
                        "source {:?}: link {:?}–{:?} is not two categories with a positive expectation",
                        s.name, l.a, l.b
                    )));
                }
            }
        }
        Ok(prior)
    }

    /// Sources mined from this store's own orders: most of their typical titles are
    /// titles of the store's products.
    pub fn mined_from<'a>(&self, titles: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let titles: HashSet<String> = titles.into_iter().map(comparable).collect();
        self.sources
            .iter()
            .filter(|s| {
                let texts: Vec<String> = s.categories.iter().flat_map(|c| c.texts()).collect();
                let hits = texts
                    .iter()
                    .filter(|t| titles.contains(&comparable(t)))
                    .count();
                !texts.is_empty() && hits * 2 >= texts.len()
            })
            .map(|s| s.name.clone())
            .collect()
    }
}

fn comparable(title: &str) -> String {
    title
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which sources a run used, and why one was left out.
#[derive(Debug, Clone, Serialize)]
pub struct SourceUse {
    pub name: String,
    pub used: bool,
    /// Store products mapped onto the source's categories.
    pub products_mapped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out: Option<String>,
}

/// The prior's support for a pair: the strongest source's numbers, and every source
/// that supports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorSupport {
    pub data_sets: Vec<String>,
    /// The two prior categories in the strongest source.
    pub categories: [String; 2],
    pub count: u32,
    pub shrunk_lift: f64,
}

/// One source, ready for lookups.
#[derive(Debug, Clone, Default)]
struct SourceIndex {
    name: String,
    categories: Vec<String>,
    /// (smaller, larger) category index → (count, expected).
    links: HashMap<(u32, u32), (u32, f64)>,
    /// Each category's linked categories.
    linked: Vec<Vec<u32>>,
    /// Store products mapped onto each category.
    members: Vec<Vec<u32>>,
}

/// The prior as it applies to one store's products.
#[derive(Debug, Clone, Default)]
pub struct PriorMatch {
    pub sources: Vec<SourceUse>,
    used: Vec<SourceIndex>,
    /// Each product's category in each used source and its cosine (`None`: nothing
    /// near enough).
    product: Vec<Vec<Option<(u32, f32)>>>,
}

impl PriorMatch {
    /// Maps `products` (unit rows) onto the used sources' categories. `category_vectors`
    /// holds one unit row per category of each used source, in order; `store_categories`
    /// is each product's category in the store.
    ///
    /// A source speaks for a store category only when at least half of its products
    /// map onto the source: a grocery source knows a store's coffee shelf, but not the
    /// bread bin in a homeware store's kitchen storage (near "white bread" in meaning,
    /// alone among its kind).
    pub fn build(
        prior: &ComplementPrior,
        leave_out: &HashMap<String, String>,
        category_vectors: &[Matrix],
        products: &Matrix,
        store_categories: &[String],
        min_similarity: f32,
    ) -> PriorMatch {
        let kern = kernels();
        let mut out = PriorMatch {
            product: vec![Vec::new(); products.rows()],
            ..PriorMatch::default()
        };
        let mut vectors = category_vectors.iter();
        for s in &prior.sources {
            if let Some(why) = leave_out.get(&s.name) {
                out.sources.push(SourceUse {
                    name: s.name.clone(),
                    used: false,
                    products_mapped: 0,
                    left_out: Some(why.clone()),
                });
                continue;
            }
            let Some(cats) = vectors.next() else { break };
            let index: HashMap<&str, u32> = s
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.as_str(), i as u32))
                .collect();
            let mut source = SourceIndex {
                name: s.name.clone(),
                categories: s.categories.iter().map(|c| c.name.clone()).collect(),
                linked: vec![Vec::new(); s.categories.len()],
                members: vec![Vec::new(); s.categories.len()],
                ..SourceIndex::default()
            };
            for l in &s.links {
                if let (Some(&x), Some(&y)) = (index.get(l.a.as_str()), index.get(l.b.as_str())) {
                    source
                        .links
                        .insert((x.min(y), x.max(y)), (l.count, l.expected));
                    source.linked[x as usize].push(y);
                    source.linked[y as usize].push(x);
                }
            }
            // Strongest links first (raw lift: the run shrinks with its own prior).
            for (x, list) in source.linked.iter_mut().enumerate() {
                let lift = |y: u32| {
                    let key = (y.min(x as u32), y.max(x as u32));
                    source
                        .links
                        .get(&key)
                        .map_or(0.0, |&(c, e)| f64::from(c) / e)
                };
                list.sort_by(|&p, &q| lift(q).total_cmp(&lift(p)).then(p.cmp(&q)));
            }
            let hits: Vec<Option<(u32, f32)>> = (0..products.rows())
                .map(|i| {
                    let v = products.row(i);
                    (0..cats.rows())
                        .map(|c| (c as u32, kern.dot(cats.row(c), v)))
                        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                        .filter(|&(_, s)| s >= min_similarity)
                })
                .collect();
            // (products, mapped) per store category.
            let mut shelf: HashMap<&str, (usize, usize)> = HashMap::new();
            for (i, hit) in hits.iter().enumerate() {
                let c = store_categories.get(i).map_or("", String::as_str);
                let e = shelf.entry(c).or_default();
                e.0 += 1;
                e.1 += usize::from(hit.is_some());
            }
            let hits: Vec<Option<(u32, f32)>> = hits
                .into_iter()
                .enumerate()
                .map(|(i, hit)| {
                    let c = store_categories.get(i).map_or("", String::as_str);
                    hit.filter(|_| shelf.get(c).is_some_and(|&(n, m)| 2 * m >= n))
                })
                .collect();
            let mapped = hits.iter().flatten().count();
            // A source speaks for stores of its kind: one that knows a few shelves of
            // a store knows them by coincidence of words.
            if (mapped as f64) < STORE_COVERAGE * products.rows() as f64 {
                out.sources.push(SourceUse {
                    name: s.name.clone(),
                    used: false,
                    products_mapped: mapped,
                    left_out: Some(format!(
                        "its categories cover {mapped} of the store's {} products (a source speaks for stores of its kind: {:.0} % at least)",
                        products.rows(),
                        STORE_COVERAGE * 100.0
                    )),
                });
                continue;
            }
            for (i, (slot, hit)) in out.product.iter_mut().zip(hits).enumerate() {
                if let Some((c, _)) = hit {
                    source.members[c as usize].push(i as u32);
                }
                slot.push(hit);
            }
            out.sources.push(SourceUse {
                name: s.name.clone(),
                used: true,
                products_mapped: mapped,
                left_out: None,
            });
            out.used.push(source);
        }
        out
    }

    /// The prior category a product maps to in each used source, with its cosine.
    pub fn categories_of(&self, product: u32) -> Vec<(&str, &str, f32)> {
        let Some(slots) = self.product.get(product as usize) else {
            return Vec::new();
        };
        slots
            .iter()
            .zip(&self.used)
            .filter_map(|(c, s)| {
                c.map(|(c, cos)| (s.name.as_str(), s.categories[c as usize].as_str(), cos))
            })
            .collect()
    }

    /// Whether the prior says `a` and `b` go together: in some source both map, onto
    /// different categories whose shrunk lift (count + κ) / (expected + κ) reaches
    /// `min_lift`.
    pub fn support(&self, a: u32, b: u32, prior_count: f64, min_lift: f64) -> Option<PriorSupport> {
        let (pa, pb) = (self.product.get(a as usize)?, self.product.get(b as usize)?);
        let mut best: Option<PriorSupport> = None;
        let mut data_sets = Vec::new();
        for (k, s) in self.used.iter().enumerate() {
            let (Some((x, _)), Some((y, _))) = (pa[k], pb[k]) else {
                continue;
            };
            if x == y {
                continue;
            }
            let Some(&(count, expected)) = s.links.get(&(x.min(y), x.max(y))) else {
                continue;
            };
            let shrunk_lift = (f64::from(count) + prior_count) / (expected + prior_count);
            if shrunk_lift < min_lift {
                continue;
            }
            data_sets.push(s.name.clone());
            if best.as_ref().is_none_or(|b| shrunk_lift > b.shrunk_lift) {
                best = Some(PriorSupport {
                    data_sets: Vec::new(),
                    categories: [
                        s.categories[x as usize].clone(),
                        s.categories[y as usize].clone(),
                    ],
                    count,
                    shrunk_lift,
                });
            }
        }
        best.map(|b| PriorSupport { data_sets, ..b })
    }

    /// Store products in the categories the prior links with `a`'s, strongest link
    /// first, at most `limit` categories per source.
    pub fn linked_members(&self, a: u32, limit: usize) -> Vec<&[u32]> {
        let Some(slots) = self.product.get(a as usize) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (slot, s) in slots.iter().zip(&self.used) {
            let Some((x, _)) = slot else { continue };
            out.extend(
                s.linked[*x as usize]
                    .iter()
                    .map(|&y| s.members[y as usize].as_slice())
                    .filter(|m| !m.is_empty())
                    .take(limit),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior() -> ComplementPrior {
        // Milk meets cereal in 30 of 110 baskets where chance predicts 40 × 40 / 110.
        let text = "milk,cereal\n".repeat(30)
            + &"bread,jam\n".repeat(60)
            + &"milk,jam\n".repeat(10)
            + &"cereal,bread\n".repeat(10);
        let source = mine::source_from_baskets(
            "Test baskets",
            mine::category_basket_lines(&text),
            &HashMap::new(),
        );
        ComplementPrior {
            version: FORMAT_VERSION,
            built_by: "test".into(),
            sources: vec![source],
        }
    }

    fn unit(rows: &[Vec<f32>]) -> Matrix {
        let mut m = Matrix::from_rows(rows[0].len(), rows).expect("rows");
        m.normalise_rows();
        m
    }

    #[test]
    fn products_map_by_meaning_and_pairs_are_supported_by_linked_categories() {
        let p = prior();
        // Categories sorted by name: bread, cereal, jam, milk.
        let cats = unit(&[
            vec![1.0, 0.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0, 0.0],
            vec![0.0, 0.0, 1.0, 0.0],
            vec![0.0, 0.0, 0.0, 1.0],
        ]);
        // Products: a milk, a cereal, a second milk, and a tent near nothing.
        let products = unit(&[
            vec![0.1, 0.0, 0.0, 1.0],
            vec![0.0, 1.0, 0.0, 0.2],
            vec![0.0, 0.1, 0.0, 1.0],
            vec![0.5, 0.5, 0.5, 0.5],
        ]);
        let shelves: Vec<String> = ["dairy", "breakfast", "dairy", "camping"]
            .map(String::from)
            .to_vec();
        let m = PriorMatch::build(
            &p,
            &HashMap::new(),
            std::slice::from_ref(&cats),
            &products,
            &shelves,
            0.8,
        );
        assert_eq!(m.sources[0].products_mapped, 3);
        let mapped = m.categories_of(0);
        assert_eq!((mapped[0].0, mapped[0].1), ("Test baskets", "milk"));
        assert!(mapped[0].2 > 0.99);
        assert!(m.categories_of(3).is_empty(), "nothing is near the tent");
        let s = m
            .support(0, 1, 1.0, 1.5)
            .expect("milk and cereal are linked");
        assert_eq!(s.data_sets, ["Test baskets"]);
        assert_eq!(s.categories, ["milk".to_owned(), "cereal".to_owned()]);
        assert_eq!(s.count, 30);
        assert_eq!(
            m.support(0, 2, 1.0, 1.5),
            None,
            "one category is no complement"
        );
        assert_eq!(m.support(0, 3, 1.0, 1.5), None);
        assert_eq!(m.linked_members(0, 3), [&[1u32][..]]);
        // A lift bar above the link's leaves nothing.
        assert_eq!(m.support(0, 1, 1.0, 5.0), None);

        // The cereal alone on a shelf of things the source doesn't know is not mapped.
        let products = unit(&[
            vec![0.1, 0.0, 0.0, 1.0],
            vec![0.0, 1.0, 0.0, 0.2],
            vec![0.5, 0.5, 0.5, 0.5],
            vec![0.5, 0.5, 0.5, 0.5],
        ]);
        let shelves: Vec<String> = ["dairy", "kitchen", "kitchen", "kitchen"]
            .map(String::from)
            .to_vec();
        let m = PriorMatch::build(&p, &HashMap::new(), &[cats], &products, &shelves, 0.8);
        assert!(m.categories_of(1).is_empty());
        assert_eq!(m.support(0, 1, 1.0, 1.5), None);
        assert_eq!(m.sources[0].products_mapped, 1);
    }

    #[test]
    fn a_source_left_out_maps_nothing_and_says_why() {
        let p = prior();
        let products = unit(&[vec![0.0, 0.0, 0.0, 1.0]]);
        let leave = HashMap::from([(
            "Test baskets".to_owned(),
            "mined from this store".to_owned(),
        )]);
        let m = PriorMatch::build(&p, &leave, &[], &products, &["dairy".to_owned()], 0.5);
        assert!(!m.sources[0].used);
        assert_eq!(
            m.sources[0].left_out.as_deref(),
            Some("mined from this store")
        );
        assert!(m.categories_of(0).is_empty());
    }

    #[test]
    fn a_source_is_recognised_as_mined_from_a_store_by_its_titles() {
        let mut p = prior();
        assert_eq!(p.mined_from(["Milk", "CEREAL", "bread"]), ["Test baskets"]);
        assert!(
            p.mined_from(["Milk", "Tent"]).is_empty(),
            "one of four is not most"
        );
        p.sources[0].categories[0].examples = vec!["Sourdough  Loaf".into()];
        assert_eq!(p.mined_from(["sourdough loaf", "milk"]), ["Test baskets"]);
    }

    #[test]
    fn a_file_is_checked_before_use() {
        let mut p = prior();
        let ok = serde_json::to_string(&p).expect("json");
        assert!(ComplementPrior::parse(&ok, "f.json").is_ok());
        p.version = 9;
        let e = ComplementPrior::parse(&serde_json::to_string(&p).expect("json"), "f.json");
        assert!(e.unwrap_err().to_string().contains("f.json: version 9"));
        let mut p = prior();
        p.sources[0].links[0].b = "tents".into();
        let e = ComplementPrior::parse(&serde_json::to_string(&p).expect("json"), "f.json");
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("unknown category \"tents\"")
        );
        assert!(
            ComplementPrior::shipped().is_ok(),
            "the shipped prior reads"
        );
    }
}
