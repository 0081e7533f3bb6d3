//! Complements a configured language model names between a store's own kinds of
//! product (its categories, each shown with a few example titles): the knowledge a
//! merchandiser has and baskets may not, for kinds the complement prior has no link
//! for (mugs are not in a grocery's baskets). One call per context; the offline
//! provider names none. A named link is the weakest evidence there is: it counts only
//! where the store's orders can't tell and the prior does not link the products (see
//! `justify::kinds_link`).

use std::collections::HashMap;

use serde::Serialize;

use crate::domain::StoreData;
use crate::llm::answer::{KindPair, clean_text};
use crate::llm::prompt::KindDoc;

/// Kinds a prompt shows at most (the store's largest): a long tail of one-product
/// categories would only make the prompt long.
pub const MAX_KINDS: usize = 150;
/// Example titles shown per kind.
pub const EXAMPLES: usize = 4;
/// Pairs asked for at most.
pub const MAX_PAIRS: usize = 60;
/// Longest example title shown, in characters.
const EXAMPLE_CHARS: usize = 80;

/// The kinds to ask about: the store categories of eligible products, largest first
/// (at most [`MAX_KINDS`], two or more), each with up to [`EXAMPLES`] distinct titles
/// (best sellers first). Returns the prompt's documents and each one's category.
pub fn kinds(
    data: &StoreData,
    categories: &[String],
    eligible: impl Fn(usize) -> bool,
    units: impl Fn(usize) -> i64,
) -> (Vec<KindDoc>, Vec<String>) {
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in categories.iter().enumerate() {
        if eligible(i) && !c.is_empty() {
            members.entry(c.as_str()).or_default().push(i);
        }
    }
    let mut order: Vec<(&str, Vec<usize>)> = members.into_iter().collect();
    order.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    order.truncate(MAX_KINDS);
    if order.len() < 2 {
        return (Vec::new(), Vec::new());
    }
    let mut docs = Vec::with_capacity(order.len());
    let mut names = Vec::with_capacity(order.len());
    for (k, (category, mut items)) in order.into_iter().enumerate() {
        items.sort_by(|&a, &b| units(b).cmp(&units(a)).then(a.cmp(&b)));
        let mut examples: Vec<String> = Vec::new();
        for i in items {
            let title = clean_text(&data.products[i].title, EXAMPLE_CHARS);
            if !title.is_empty() && !examples.contains(&title) {
                examples.push(title);
            }
            if examples.len() == EXAMPLES {
                break;
            }
        }
        docs.push(KindDoc {
            id: format!("k{}", k + 1),
            name: category.to_owned(),
            examples,
        });
        names.push(category.to_owned());
    }
    (docs, names)
}

/// Pairs asked for, for this many kinds.
pub fn max_pairs(kinds: usize) -> usize {
    (kinds * 2).min(MAX_PAIRS)
}

/// A pair of store categories the model linked, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedPair {
    pub categories: [String; 2],
    pub reason: String,
}

/// The model's complements for one store.
#[derive(Debug, Clone, Default)]
pub struct NamedComplements {
    /// (smaller, larger) category → the model's reason.
    links: HashMap<(String, String), String>,
    /// Each category's linked categories, in the model's order.
    linked: HashMap<String, Vec<String>>,
    /// The model was asked (a model is configured and the store has two kinds or more).
    pub asked: bool,
    pub kinds: usize,
    pub pairs: Vec<NamedPair>,
}

impl NamedComplements {
    /// The model's answer over `names` (the kinds' categories, in prompt order).
    pub fn from_pairs(names: &[String], pairs: &[KindPair]) -> NamedComplements {
        let mut out = NamedComplements {
            asked: true,
            kinds: names.len(),
            ..NamedComplements::default()
        };
        for p in pairs {
            let (Some(a), Some(b)) = (names.get(p.a), names.get(p.b)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let key = if a < b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            if out.links.contains_key(&key) {
                continue;
            }
            out.links.insert(key, p.reason.clone());
            out.linked.entry(a.clone()).or_default().push(b.clone());
            out.linked.entry(b.clone()).or_default().push(a.clone());
            out.pairs.push(NamedPair {
                categories: [a.clone(), b.clone()],
                reason: p.reason.clone(),
            });
        }
        out
    }

    /// Why the model says categories `a` and `b` go together, if it does.
    pub fn reason(&self, a: &str, b: &str) -> Option<&str> {
        let key = if a < b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        };
        self.links.get(&key).map(String::as_str)
    }

    /// The categories the model links with `category`, its clearest first.
    pub fn linked(&self, category: &str) -> &[String] {
        self.linked.get(category).map_or(&[], Vec::as_slice)
    }

    /// What the run reports: kinds shown and pairs named (`None`: not asked).
    pub fn summary(&self) -> Option<NamedSummary> {
        self.asked.then(|| NamedSummary {
            kinds: self.kinds,
            pairs: self.pairs.clone(),
        })
    }
}

/// `run.model_complements`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedSummary {
    pub kinds: usize,
    pub pairs: Vec<NamedPair>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_map_back_to_categories_either_way_round() {
        let names = vec![
            "coffee".to_owned(),
            "drinkware".to_owned(),
            "tea".to_owned(),
        ];
        let pairs = [
            KindPair {
                a: 0,
                b: 1,
                reason: "Coffee is drunk from a mug.".into(),
            },
            KindPair {
                a: 1,
                b: 2,
                reason: "Tea too.".into(),
            },
            KindPair {
                a: 0,
                b: 9,
                reason: "out of range".into(),
            },
        ];
        let named = NamedComplements::from_pairs(&names, &pairs);
        assert_eq!(
            named.reason("drinkware", "coffee"),
            Some("Coffee is drunk from a mug.")
        );
        assert_eq!(named.reason("coffee", "tea"), None);
        assert_eq!(named.linked("drinkware"), ["coffee", "tea"]);
        assert_eq!(named.pairs.len(), 2);
        assert!(NamedComplements::default().summary().is_none());
        assert_eq!(named.summary().map(|s| s.kinds), Some(3));
    }
}
