//! The merchant's word: what never to bundle, what to always publish, how deep to
//! discount. A store's rules are a TOML file (`bundleforge store-rules --store ID FILE`,
//! stored with the store); `[store_rules]` in the configuration takes the same keys and
//! applies to every store. Both apply at once: the lists add up, the lower discount
//! ceiling wins.
//!
//! ```toml
//! never_products = ["KT-0069", "gift-wrap"]     # variant, product or SKU ids
//! never_categories = ["Knives"]
//! never_pairs = [["CT-0001-BLK", "AP-0011"]]
//! max_discount_pct = 20
//!
//! [[pins]]
//! products = ["CT-0001-BLK", "CF-0104"]
//! type = "addon"              # default: fixed (volume for one product)
//! objective = "cross_sell"    # default: cross_sell (increase_aov for one product)
//! ```
//!
//! The guard enforces the lists and counts what they removed; pins are published
//! while valid (their products sellable and in stock, the margin floor kept, no list
//! against them) ahead of everything else. `eval` ignores pins: they are the merchant's
//! choice, not the engine's.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::{BundleType, Objective, Product};

/// The deepest discount a ceiling may allow.
const MAX_CEILING_PCT: u32 = 90;

/// A store's rules as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreRules {
    /// Products never to bundle: a variant id, a product id (all its variants) or a SKU.
    #[serde(default)]
    pub never_products: Vec<String>,
    /// Categories never to bundle (the product's category or type, case ignored).
    #[serde(default)]
    pub never_categories: Vec<String>,
    /// Pairs never to put in one bundle (ids as in `never_products`).
    #[serde(default)]
    pub never_pairs: Vec<[String; 2]>,
    /// Bundles always published while valid.
    #[serde(default)]
    pub pins: Vec<Pin>,
    /// No bundle of the store is discounted deeper than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_discount_pct: Option<u32>,
}

/// A bundle the merchant wants published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Ids as in `never_products`, anchor first (a product id: its first sellable
    /// variant).
    pub products: Vec<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<BundleType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Mix & match: how many of the group the shopper picks (default: all but one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<u32>,
}

impl Pin {
    pub fn bundle_type(&self) -> BundleType {
        self.bundle_type.unwrap_or(if self.products.len() == 1 {
            BundleType::Volume
        } else {
            BundleType::Fixed
        })
    }

    pub fn objective(&self) -> Objective {
        self.objective.unwrap_or(if self.products.len() == 1 {
            Objective::IncreaseAov
        } else {
            Objective::CrossSell
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreRulesError {
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {field}: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },
}

impl StoreRules {
    /// Reads and checks a rules file's text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<StoreRules, StoreRulesError> {
        let rules: StoreRules = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            StoreRulesError::Parse {
                source_name: source_name.to_owned(),
                message: format!("{}{}", at.unwrap_or_default(), e.message()),
            }
        })?;
        rules
            .validate()
            .map_err(|(field, message)| StoreRulesError::Invalid {
                source_name: source_name.to_owned(),
                field,
                message,
            })?;
        Ok(rules)
    }

    /// The first broken rule as (field, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let blank = |s: &String| s.trim().is_empty();
        if let Some(i) = self.never_products.iter().position(blank) {
            return Err((format!("never_products[{i}]"), "is empty".into()));
        }
        if let Some(i) = self.never_categories.iter().position(blank) {
            return Err((format!("never_categories[{i}]"), "is empty".into()));
        }
        for (i, [a, b]) in self.never_pairs.iter().enumerate() {
            if blank(a) || blank(b) {
                return Err((format!("never_pairs[{i}]"), "holds an empty id".into()));
            }
            if a == b {
                return Err((
                    format!("never_pairs[{i}]"),
                    format!("pairs {a:?} with itself"),
                ));
            }
        }
        if let Some(d) = self.max_discount_pct
            && d > MAX_CEILING_PCT
        {
            return Err((
                "max_discount_pct".into(),
                format!("{d} is above {MAX_CEILING_PCT}"),
            ));
        }
        for (i, pin) in self.pins.iter().enumerate() {
            let field = format!("pins[{i}]");
            let t = pin.bundle_type();
            if pin.products.iter().any(blank) {
                return Err((format!("{field}.products"), "holds an empty id".into()));
            }
            let distinct: HashSet<&String> = pin.products.iter().collect();
            if distinct.len() < pin.products.len() {
                return Err((format!("{field}.products"), "names a product twice".into()));
            }
            if !t.product_count().contains(&pin.products.len()) {
                return Err((
                    format!("{field}.products"),
                    format!(
                        "a {} bundle holds {}–{} products, not {}",
                        t.as_str(),
                        t.product_count().start(),
                        t.product_count().end(),
                        pin.products.len()
                    ),
                ));
            }
            match (t, pin.pick) {
                (BundleType::MixMatch, Some(p)) if p < 2 || p as usize >= pin.products.len() => {
                    return Err((
                        format!("{field}.pick"),
                        format!("{p} must be at least 2 and below the group's size"),
                    ));
                }
                (BundleType::MixMatch, _) => {}
                (_, Some(_)) => {
                    return Err((
                        format!("{field}.pick"),
                        "only a mix_match bundle has a pick".into(),
                    ));
                }
                (_, None) => {}
            }
        }
        Ok(())
    }

    /// Both sets of rules at once: lists added up (each entry once), the lower ceiling.
    pub fn merged(&self, other: &StoreRules) -> StoreRules {
        fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
            let mut out = a.to_vec();
            for x in b {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
            out
        }
        StoreRules {
            never_products: union(&self.never_products, &other.never_products),
            never_categories: union(&self.never_categories, &other.never_categories),
            never_pairs: union(&self.never_pairs, &other.never_pairs),
            pins: union(&self.pins, &other.pins),
            max_discount_pct: match (self.max_discount_pct, other.max_discount_pct) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == StoreRules::default()
    }

    /// Every id the rules name, each once, in order of appearance.
    pub fn ids(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.never_products
            .iter()
            .chain(self.never_pairs.iter().flatten())
            .chain(self.pins.iter().flat_map(|p| &p.products))
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect()
    }
}

/// Whether an id names a product: its variant id, product id or SKU.
pub fn names(id: &str, p: &Product) -> bool {
    p.variant_id == id || p.product_id == id || p.sku.as_deref() == Some(id)
}

/// Whether a product is in one of the categories (its category or type, case ignored).
pub fn in_categories(categories: &[String], p: &Product) -> bool {
    categories.iter().any(|c| {
        [&p.category, &p.product_type]
            .into_iter()
            .flatten()
            .any(|x| x.trim().eq_ignore_ascii_case(c.trim()))
    })
}

/// A store's rules over its catalog (product indices), as the guard and phase 1 use
/// them.
#[derive(Debug, Clone, Default)]
pub struct ResolvedRules {
    /// Per product: never bundled (by id or category).
    pub never: Vec<bool>,
    /// Pairs never together, as (smaller, larger) product indices.
    pub never_pairs: HashSet<(u32, u32)>,
    pub pins: Vec<ResolvedPin>,
    pub max_discount_pct: Option<u32>,
}

/// A pin over the catalog.
#[derive(Debug, Clone)]
pub struct ResolvedPin {
    pub pin: Pin,
    /// Product indices, anchor first; `Err` names the id the catalog lacks.
    pub products: Result<Vec<u32>, String>,
}

impl ResolvedRules {
    /// `sellable(i)`: whether product i may be sold (a product id pins its first one).
    pub fn resolve(
        rules: &StoreRules,
        products: &[Product],
        sellable: impl Fn(usize) -> bool,
    ) -> ResolvedRules {
        let never: Vec<bool> = products
            .iter()
            .map(|p| {
                rules.never_products.iter().any(|id| names(id, p))
                    || in_categories(&rules.never_categories, p)
            })
            .collect();
        let matching = |id: &str| -> Vec<u32> {
            (0..products.len() as u32)
                .filter(|&i| names(id, &products[i as usize]))
                .collect()
        };
        let mut never_pairs = HashSet::new();
        for [a, b] in &rules.never_pairs {
            for &x in &matching(a) {
                for &y in &matching(b) {
                    if x != y {
                        never_pairs.insert((x.min(y), x.max(y)));
                    }
                }
            }
        }
        let pins = rules
            .pins
            .iter()
            .map(|pin| {
                let products = pin
                    .products
                    .iter()
                    .map(|id| {
                        let found = matching(id);
                        // An exact variant id wins; else the first sellable variant.
                        found
                            .iter()
                            .copied()
                            .find(|&i| products[i as usize].variant_id == *id)
                            .or_else(|| found.iter().copied().find(|&i| sellable(i as usize)))
                            .or_else(|| found.first().copied())
                            .ok_or_else(|| id.clone())
                    })
                    .collect::<Result<Vec<u32>, String>>();
                ResolvedPin {
                    pin: pin.clone(),
                    products,
                }
            })
            .collect();
        ResolvedRules {
            never,
            never_pairs,
            pins,
            max_discount_pct: rules.max_discount_pct,
        }
    }

    /// Which rule a product set breaks, if any.
    pub fn breaks(&self, products: &[u32]) -> Option<RuleBroken> {
        if products
            .iter()
            .any(|&i| self.never.get(i as usize).copied().unwrap_or(false))
        {
            return Some(RuleBroken::NeverProduct);
        }
        for (x, &a) in products.iter().enumerate() {
            for &b in &products[x + 1..] {
                if self.never_pairs.contains(&(a.min(b), a.max(b))) {
                    return Some(RuleBroken::NeverPair);
                }
            }
        }
        None
    }

    /// The objective's discount range under the ceiling.
    pub fn ceiling(&self, range: (u32, u32)) -> (u32, u32) {
        match self.max_discount_pct {
            Some(c) => (range.0.min(c), range.1.min(c)),
            None => range,
        }
    }
}

/// A store rule a product set breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleBroken {
    /// A product (or its category) is never to be bundled.
    NeverProduct,
    /// Two of the products are never to be together.
    NeverPair,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_reads_with_every_key_and_names_what_is_wrong() {
        let text = r#"
never_products = ["KT-1"]
never_categories = ["Knives"]
never_pairs = [["A", "B"]]
max_discount_pct = 20

[[pins]]
products = ["A", "C"]
type = "addon"
"#;
        let rules = StoreRules::parse(text, "rules.toml").unwrap();
        assert_eq!(rules.pins[0].bundle_type(), BundleType::Addon);
        assert_eq!(rules.pins[0].objective(), Objective::CrossSell);
        assert_eq!(rules.max_discount_pct, Some(20));

        let err = StoreRules::parse("never_product = [\"x\"]", "rules.toml").unwrap_err();
        assert!(err.to_string().starts_with("rules.toml: "), "{err}");
        assert!(err.to_string().contains("never_product"), "{err}");

        let err = StoreRules::parse("max_discount_pct = 95", "r.toml").unwrap_err();
        assert_eq!(err.to_string(), "r.toml: max_discount_pct: 95 is above 90");

        let err = StoreRules::parse(
            "[[pins]]\nproducts = [\"A\", \"B\", \"C\"]\ntype = \"mix_match\"\npick = 3",
            "r.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("pins[0].pick"), "{err}");
        let err = StoreRules::parse("[[pins]]\nproducts = [\"A\", \"A\"]", "r.toml").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn merged_rules_add_up_and_keep_the_lower_ceiling() {
        let a = StoreRules {
            never_products: vec!["x".into()],
            max_discount_pct: Some(30),
            ..StoreRules::default()
        };
        let b = StoreRules {
            never_products: vec!["x".into(), "y".into()],
            max_discount_pct: Some(15),
            ..StoreRules::default()
        };
        let m = a.merged(&b);
        assert_eq!(m.never_products, vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(m.max_discount_pct, Some(15));
        assert_eq!(a.merged(&StoreRules::default()).max_discount_pct, Some(30));
        assert_eq!(
            ResolvedRules {
                max_discount_pct: Some(5),
                ..ResolvedRules::default()
            }
            .ceiling((10, 25)),
            (5, 5)
        );
    }
}
