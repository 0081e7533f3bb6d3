//! What a run produces: objectives, bundle types, and the bundle output shape.
//!
//! The JSON form of [`Bundle`] is a published schema (docs/generate-and-eval.md, "Bundle JSON"): merchants'
//! scripts read it, so fields are added, never renamed. Money fields end in `_minor`
//! and are integer minor units of `currency`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Currency;

/// What a bundle is for. The eight objectives of the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    IncreaseAov,
    ClearSlowMovers,
    ProtectMargin,
    LaunchNew,
    Seasonal,
    Gift,
    CrossSell,
    Replenish,
}

impl Objective {
    pub const ALL: [Objective; 8] = [
        Objective::IncreaseAov,
        Objective::ClearSlowMovers,
        Objective::ProtectMargin,
        Objective::LaunchNew,
        Objective::Seasonal,
        Objective::Gift,
        Objective::CrossSell,
        Objective::Replenish,
    ];

    /// What the objective means, in a sentence: for prompts, and for matching products
    /// to objectives by meaning.
    pub fn description(&self) -> &'static str {
        match self {
            Objective::IncreaseAov => {
                "raise the order value with products shoppers add to what they already buy"
            }
            Objective::ClearSlowMovers => {
                "sell products that sell slowly or are overstocked, paired with popular ones"
            }
            Objective::ProtectMargin => {
                "bundle high-margin products so that a small discount still earns well"
            }
            Objective::LaunchNew => "introduce newly launched products next to proven sellers",
            Objective::Seasonal => "products for a season, holiday or event",
            Objective::Gift => "products people buy as presents, ready to give together",
            Objective::CrossSell => {
                "complementary products from different categories that are used together"
            }
            Objective::Replenish => "consumables and refills that customers buy again and again",
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Objective::IncreaseAov => "increase_aov",
            Objective::ClearSlowMovers => "clear_slow_movers",
            Objective::ProtectMargin => "protect_margin",
            Objective::LaunchNew => "launch_new",
            Objective::Seasonal => "seasonal",
            Objective::Gift => "gift",
            Objective::CrossSell => "cross_sell",
            Objective::Replenish => "replenish",
        }
    }
}

/// The shape of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleType {
    /// A curated set of 2–4 products at one price.
    Fixed,
    /// Pick N from a group of alike products.
    MixMatch,
    /// Quantity breaks on one product.
    Volume,
    /// Buy X, get Y (the same or a cheaper complement).
    Bogo,
    /// An anchor product plus a discounted add-on ("frequently bought together").
    Addon,
}

impl BundleType {
    pub const ALL: [BundleType; 5] = [
        BundleType::Fixed,
        BundleType::MixMatch,
        BundleType::Volume,
        BundleType::Bogo,
        BundleType::Addon,
    ];

    /// What the offer is, in a sentence (for prompts).
    pub fn description(&self) -> &'static str {
        match self {
            BundleType::Fixed => "a curated set sold together at one price",
            BundleType::MixMatch => "pick any N from a group of alike products for one price",
            BundleType::Volume => "a discount for buying more of one product",
            BundleType::Bogo => "buy one, get the same or a cheaper complement discounted",
            BundleType::Addon => "a main product plus a discounted add-on",
        }
    }

    /// How many distinct products a bundle of this type holds.
    pub fn product_count(&self) -> std::ops::RangeInclusive<usize> {
        match self {
            BundleType::Fixed => 2..=4,
            BundleType::MixMatch => 2..=8,
            BundleType::Volume => 1..=1,
            // The same product twice, or a product and a cheaper complement.
            BundleType::Bogo => 1..=2,
            BundleType::Addon => 2..=2,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BundleType::Fixed => "fixed",
            BundleType::MixMatch => "mix_match",
            BundleType::Volume => "volume",
            BundleType::Bogo => "bogo",
            BundleType::Addon => "addon",
        }
    }
}

macro_rules! display_and_parse {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim().to_ascii_lowercase();
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == wanted)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $ty::ALL.iter().map(|v| v.as_str()).collect();
                        format!(
                            "unknown {} {s:?}; expected one of {}",
                            $what,
                            names.join(", ")
                        )
                    })
            }
        }
    };
}

display_and_parse!(Objective, "objective");
display_and_parse!(BundleType, "bundle type");

/// Who wrote a piece of text: the configured LLM or the offline templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextSource {
    Llm,
    Offline,
}

/// One product in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleItem {
    pub product_id: String,
    pub sku: Option<String>,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// `total = alpha·llm + beta·transactional + gamma·business`, each signal in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    pub total: f64,
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub llm: f64,
    pub transactional: f64,
    pub business: f64,
}

/// How the discount was chosen: both inputs and the reason are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingDecision {
    pub bayesian_pct: f64,
    pub llm_pct: Option<f64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleCopy {
    pub title: String,
    pub description: String,
    pub badge: String,
    pub source: TextSource,
}

impl BundleType {
    /// The kinds of justification a bundle of this type can have.
    pub fn justified_by(self) -> &'static [JustificationKind] {
        use JustificationKind::*;
        match self {
            BundleType::MixMatch => &[Alike],
            BundleType::Volume => &[Multiples],
            BundleType::Bogo => &[Multiples, CoPurchase, Complement, Proposal],
            BundleType::Fixed | BundleType::Addon => &[CoPurchase, Complement, Proposal],
        }
    }
}

/// The kinds of reason a bundle may be published for (see [`Justification`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JustificationKind {
    CoPurchase,
    Complement,
    Proposal,
    Alike,
    Multiples,
    /// The merchant's pin (never among an objective's evidence: it stands on its own).
    Pinned,
}

impl JustificationKind {
    pub const ALL: [JustificationKind; 5] = [
        JustificationKind::CoPurchase,
        JustificationKind::Complement,
        JustificationKind::Proposal,
        JustificationKind::Alike,
        JustificationKind::Multiples,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JustificationKind::CoPurchase => "co_purchase",
            JustificationKind::Complement => "complement",
            JustificationKind::Proposal => "proposal",
            JustificationKind::Alike => "alike",
            JustificationKind::Multiples => "multiples",
            JustificationKind::Pinned => "pinned",
        }
    }
}

/// One checkable reason a bundle (or one partner in it) is there, with the numbers a
/// merchandiser can verify. Product ids are variant ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Justification {
    /// The products are bought together more than chance predicts: `count` orders hold
    /// them all where independence predicts `expected`; `shrunk_lift` =
    /// (count + κ) / (expected + κ).
    CoPurchase {
        products: Vec<String>,
        count: u32,
        expected: f64,
        shrunk_lift: f64,
    },
    /// Related in meaning but not a near-copy, from categories that go together:
    /// `category_lift` is the shrunk lift of orders holding both categories.
    Complement {
        products: Vec<String>,
        similarity: f32,
        categories: Vec<String>,
        category_orders: u32,
        category_lift: f64,
        /// Where the category evidence comes from: `store` (this store's orders),
        /// `prior` (other stores' baskets, where this store's orders can't tell yet) or
        /// `model` (a language model named the two categories, where neither can).
        source: String,
        /// With `prior`: the data sets whose baskets pair the two kinds of product…
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        data_sets: Vec<String>,
        /// …and the categories of the strongest one that the products map onto.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prior_categories: Vec<String>,
        /// With `model`: the model's reason.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// A language model proposed the set and the store's orders don't contradict it.
    Proposal {
        products: Vec<String>,
        reason: String,
        count: u32,
        expected: f64,
    },
    /// A mix & match group: one category, each product near the first in meaning, one
    /// price band; `orders_with_pick` orders already held `pick` or more of it, where
    /// independence predicts `expected_with_pick`.
    Alike {
        products: Vec<String>,
        category: String,
        min_similarity: f32,
        price_low_minor: i64,
        price_high_minor: i64,
        orders_with_pick: u32,
        expected_with_pick: f64,
    },
    /// One product bought in multiples or again: `multi_unit_orders` of its `orders`
    /// held two or more units; `repeat_rate` as the store statistics define it.
    Multiples {
        product: String,
        orders: u32,
        multi_unit_orders: u32,
        repeat_rate: f64,
    },
    /// The merchant pinned the set in the store's rules (see `store-rules`); the data's
    /// own reasons, where it has them, follow.
    Pinned { products: Vec<String> },
}

impl Justification {
    pub fn kind(&self) -> JustificationKind {
        match self {
            Justification::CoPurchase { .. } => JustificationKind::CoPurchase,
            Justification::Complement { .. } => JustificationKind::Complement,
            Justification::Proposal { .. } => JustificationKind::Proposal,
            Justification::Alike { .. } => JustificationKind::Alike,
            Justification::Multiples { .. } => JustificationKind::Multiples,
            Justification::Pinned { .. } => JustificationKind::Pinned,
        }
    }
}

/// Why the bundle exists, for a merchandiser: prose plus the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub text: String,
    /// Why it may be published: never empty on a published bundle.
    #[serde(default)]
    pub justification: Vec<Justification>,
    /// Association rules supporting the set (free-form objects, e.g. lhs, rhs, lift).
    pub rules: Vec<serde_json::Value>,
    /// Semantic neighbours that support the set.
    pub neighbours: Vec<serde_json::Value>,
    pub source: TextSource,
}

/// A finished, priced, explained bundle. Its `id` derives from its content (objective,
/// type, products and quantities), so the same bundle keeps its id across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub id: String,
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub products: Vec<BundleItem>,
    /// Mix & match: how many of the group a shopper picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<u32>,
    /// Volume breaks: the quantity tiers (the discount applies from the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<u32>,
    pub currency: Currency,
    pub list_price_minor: i64,
    pub final_price_minor: i64,
    /// Percent, 0–100.
    pub discount_pct: f64,
    /// BOGO and add-on: the whole percentage off what the shopper gets (the second
    /// unit, or the products after the first): the offer as the copy states it and
    /// `shopify.json` applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gets_discount_pct: Option<u32>,
    pub expected_margin_minor: i64,
    /// True when some product's cost was assumed (no cost in the data).
    pub cost_assumed: bool,
    /// True when some product's inventory is not tracked (it passed the stock check,
    /// as Shopify treats untracked items).
    #[serde(default)]
    pub inventory_untracked: bool,
    pub pareto_rank: u32,
    pub score: ScoreBreakdown,
    pub pricing: PricingDecision,
    pub copy: BundleCopy,
    pub explanation: Explanation,
    /// A merchant approved this bundle before; this run kept it (see
    /// [`crate::pipeline::approvals`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalMark>,
}

/// How a run carried a bundle a merchant approved in an earlier run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalMark {
    /// The run it was approved in.
    pub approved_in_run: String,
    pub decided_by: String,
    /// RFC 3339 UTC, milliseconds.
    pub decided_at: String,
    /// `unchanged` (published as approved) or `repriced` (its products' prices
    /// changed; this run priced it again within its objective's range).
    pub kept: String,
    /// What differs from the approved bundle, one line each; empty when unchanged.
    pub changes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_and_types_round_trip_through_their_names() {
        for o in Objective::ALL {
            assert_eq!(o.as_str().parse::<Objective>().unwrap(), o);
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for t in BundleType::ALL {
            assert_eq!(t.as_str().parse::<BundleType>().unwrap(), t);
        }
        let err = "upsell".parse::<Objective>().unwrap_err();
        assert!(err.contains("increase_aov"), "{err}");
    }
}
