//! The offline provider: every task of the [`Llm`] port without a network, from the
//! local embeddings, keywords and templates. It is the embedded default (a fresh
//! machine has no API key) and the fallback when a configured endpoint fails, so it
//! must always answer, deterministically: the same input gives the same output.
//!
//! - Objectives: zero-shot, as the cosine between a product's embedding and short
//!   descriptions of what suits each objective, plus keywords in the product's own
//!   text and the merchant's tags. Objectives that only data can tell (slow movers, new
//!   launches, margins) are left to the data-derived tags the pipeline adds beside
//!   these; a merchant tag saying so (`slow_mover`, `new_launch`, `high_margin`) counts.
//! - Proposals: embedding neighbours of each anchor, complements (related, another
//!   category, not a near-copy) for fixed sets and add-ons, alike products for mix &
//!   match.
//! - Price advice: within the objective's cap, never more than half the margin.
//! - Copy and explanations: templates per objective and bundle type, in English,
//!   German, French and Spanish.
//! - Complementary kinds of product: none; that is knowledge a model or baskets bring.
//!
//! Vectors come from the catalog's embeddings when the caller has them (the pipeline
//! and `classify` always do); otherwise the product's text is embedded once and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::answer::{
    Appeal, Classified, Copy, Dropped, KindPair, PriceAdvice, Proposal, clean_text,
};
use super::answer::{MAX_BADGE_CHARS, MAX_DESCRIPTION_CHARS, MAX_REASON_CHARS, MAX_TITLE_CHARS};
use super::prompt::{BundleDoc, KindDoc, ProductDoc};
use super::provider::{Answer, Llm, TaskError};
use crate::domain::similarity::{NEAR_COPY, OFFLINE_ALIKE, OFFLINE_RELATED};
use crate::domain::{BundleType, Objective, Product};
use crate::embed::Embedder;
use crate::index::Matrix;
use crate::index::metric::kernels;

/// Cosine of two unit vectors; 0 when a caller's vectors do not match the embedder's.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() == b.len() {
        kernels().dot(a, b)
    } else {
        0.0
    }
}

/// Bumped whenever the heuristics change, so cached offline answers are not reused.
pub const OFFLINE_VERSION: &str = "offline.v1";

/// Cosine above which a product suits an objective by meaning alone (all-MiniLM-L6-v2;
/// measured on the fixture stores and Online Retail titles: related phrases score
/// 0.45–0.7, unrelated ones below 0.3).
const ZERO_SHOT_THRESHOLD: f32 = 0.42;

/// What each objective looks like, for zero-shot classification. Objectives that only
/// data can tell have none.
fn prototypes(o: Objective) -> &'static [&'static str] {
    match o {
        Objective::Seasonal => &[
            "Christmas decoration",
            "Halloween, Easter or Valentine's day item",
            "summer beach and garden item",
            "winter holiday season gift",
        ],
        Objective::Gift => &[
            "a gift set, ready to give as a present",
            "a keepsake present for her or for him",
            "gift box",
        ],
        Objective::Replenish => &[
            "consumable refill pack",
            "coffee, tea or food that is used up",
            "soap, paper or cleaning supplies bought again",
        ],
        Objective::ProtectMargin => &["premium luxury item", "handmade artisan deluxe edition"],
        Objective::IncreaseAov => &["small accessory added to an order", "add-on accessory"],
        Objective::CrossSell => &["accessory that goes with another product"],
        Objective::ClearSlowMovers | Objective::LaunchNew => &[],
    }
}

/// Words in a product's title, category, tags or description that mark an objective,
/// in the four languages of the templates. Matched as whole lower-case words or, for
/// multi-word entries, as phrases.
fn keywords(o: Objective) -> &'static [&'static str] {
    match o {
        Objective::Seasonal => &[
            "christmas",
            "xmas",
            "advent",
            "halloween",
            "easter",
            "valentine",
            "valentines",
            "summer",
            "winter",
            "seasonal",
            "holiday",
            "costume",
            "pumpkin",
            "ornament",
            "bauble",
            "santa",
            "snowman",
            "reindeer",
            "wreath",
            "swim",
            "beach",
            "weihnachten",
            "weihnachts",
            "ostern",
            "noël",
            "noel",
            "pâques",
            "navidad",
            "pascua",
        ],
        Objective::Gift => &[
            "gift",
            "gifts",
            "present",
            "keepsake",
            "gift set",
            "gift box",
            "gift_worthy",
            "geschenk",
            "cadeau",
            "regalo",
        ],
        // Words for the product itself, not its category: a mug in "Coffee & Tea" is
        // not a consumable.
        Objective::Replenish => &[
            "refill",
            "refills",
            "consumable",
            "pack of",
            "ground coffee",
            "whole bean",
            "coffee beans",
            "tea bags",
            "loose leaf",
            "capsules",
            "pods",
            "filters",
            "soap",
            "shampoo",
            "detergent",
            "nachfüllpack",
            "recharge",
            "recambio",
        ],
        Objective::ProtectMargin => &["premium", "luxury", "deluxe", "handmade", "high_margin"],
        Objective::ClearSlowMovers => &["slow_mover", "clearance", "overstock"],
        Objective::LaunchNew => &[
            "new_launch",
            "new arrival",
            "nouveauté",
            "neuheit",
            "novedad",
        ],
        Objective::IncreaseAov | Objective::CrossSell => &[],
    }
}

/// Lower-case words of a text, with a space on each side so phrases match whole.
fn word_text(parts: &[&str]) -> String {
    let mut out = String::from(" ");
    for part in parts {
        for word in part
            .to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
        {
            out.push_str(word);
            out.push(' ');
        }
    }
    out
}

fn has_keyword(words: &str, o: Objective) -> bool {
    keywords(o).iter().any(|k| {
        let phrase = format!(" {k} ");
        words.contains(&phrase)
    })
}

/// The text embedded for a product doc when the caller gave no vector for it.
fn doc_text(p: &ProductDoc) -> String {
    let mut text = p.title.clone();
    if let Some(c) = &p.category {
        text.push_str(" | ");
        text.push_str(c);
    }
    text
}

pub struct OfflineLlm {
    embedder: Arc<dyn Embedder>,
    /// Vectors by product id, from the catalog's embeddings.
    vectors: HashMap<String, Arc<[f32]>>,
    /// Vectors embedded here, by text.
    memo: Mutex<HashMap<String, Arc<[f32]>>>,
    /// Each objective's prototype vectors, embedded on first use.
    prototypes: OnceCell<Vec<(Objective, Vec<Vec<f32>>)>>,
}

impl OfflineLlm {
    /// Over a catalog and its embeddings (row `i` of `vectors` is `products[i]`).
    pub fn over_catalog(
        embedder: Arc<dyn Embedder>,
        products: &[Product],
        vectors: &Matrix,
    ) -> OfflineLlm {
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.variant_id.clone(), Arc::from(vectors.row(i))))
            .collect();
        OfflineLlm::new(embedder, by_id)
    }

    /// `vectors`: the catalog's embeddings by product id (may be empty).
    pub fn new(embedder: Arc<dyn Embedder>, vectors: HashMap<String, Arc<[f32]>>) -> OfflineLlm {
        OfflineLlm {
            embedder,
            vectors,
            memo: Mutex::new(HashMap::new()),
            prototypes: OnceCell::new(),
        }
    }

    /// One vector per product doc, in order: the catalog's, else embedded (once).
    async fn vectors_of(&self, docs: &[&ProductDoc]) -> Result<Vec<Arc<[f32]>>, TaskError> {
        let mut missing: Vec<String> = Vec::new();
        {
            let memo = self.memo.lock().map_err(|_| poisoned())?;
            for d in docs {
                let text = doc_text(d);
                if !self.vectors.contains_key(&d.id)
                    && !memo.contains_key(&text)
                    && !missing.contains(&text)
                {
                    missing.push(text);
                }
            }
        }
        if !missing.is_empty() {
            let embedded = self
                .embedder
                .embed(&missing)
                .await
                .map_err(|e| TaskError::Offline(e.to_string()))?;
            let mut memo = self.memo.lock().map_err(|_| poisoned())?;
            for (text, v) in missing.into_iter().zip(embedded) {
                memo.insert(text, v.into());
            }
        }
        let memo = self.memo.lock().map_err(|_| poisoned())?;
        docs.iter()
            .map(|d| {
                self.vectors
                    .get(&d.id)
                    .or_else(|| memo.get(&doc_text(d)))
                    .cloned()
                    .ok_or_else(|| TaskError::Offline(format!("no vector for {}", d.id)))
            })
            .collect()
    }

    async fn prototype_vectors(&self) -> Result<&[(Objective, Vec<Vec<f32>>)], TaskError> {
        let protos = self
            .prototypes
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                for o in Objective::ALL {
                    let texts: Vec<String> =
                        prototypes(o).iter().map(|s| (*s).to_owned()).collect();
                    if texts.is_empty() {
                        continue;
                    }
                    let vectors = self
                        .embedder
                        .embed(&texts)
                        .await
                        .map_err(|e| TaskError::Offline(e.to_string()))?;
                    out.push((o, vectors));
                }
                Ok::<_, TaskError>(out)
            })
            .await?;
        Ok(protos)
    }

    /// The objectives one product suits, in the order of [`Objective::ALL`].
    fn objectives_of(
        doc: &ProductDoc,
        vector: &[f32],
        protos: &[(Objective, Vec<Vec<f32>>)],
    ) -> Vec<Objective> {
        let tags: Vec<&str> = doc.tags.iter().map(String::as_str).collect();
        let words = word_text(
            &[
                doc.title.as_str(),
                doc.category.as_deref().unwrap_or(""),
                &tags.join(" "),
                &doc.description,
            ][..],
        );
        Objective::ALL
            .into_iter()
            .filter(|&o| {
                let by_meaning = protos.iter().any(|(p, vs)| {
                    *p == o && vs.iter().any(|v| dot(v, vector) >= ZERO_SHOT_THRESHOLD)
                });
                by_meaning || has_keyword(&words, o)
            })
            .collect()
    }
}

fn poisoned() -> TaskError {
    TaskError::Offline("a lock was poisoned by a panic elsewhere".into())
}

/// Same category when both are known; unknown categories never match.
fn same_category(a: &ProductDoc, b: &ProductDoc) -> bool {
    match (&a.category, &b.category) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

/// A price string's amount ("12.50 GBP" → 12.5), for ordering only.
fn amount(price: &str) -> f64 {
    price
        .split_whitespace()
        .next()
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[async_trait]
impl Llm for OfflineLlm {
    fn model_id(&self) -> String {
        format!("{OFFLINE_VERSION}:{}", self.embedder.model_id())
    }

    async fn classify(&self, products: &[ProductDoc]) -> Result<Answer<Classified>, TaskError> {
        let protos = self.prototype_vectors().await?;
        let docs: Vec<&ProductDoc> = products.iter().collect();
        let vectors = self.vectors_of(&docs).await?;
        let items = products
            .iter()
            .zip(&vectors)
            .enumerate()
            .map(|(i, (doc, v))| Classified {
                product: i,
                tags: Self::objectives_of(doc, v, protos),
            })
            .collect();
        Ok(Answer {
            items,
            dropped: Dropped::default(),
        })
    }

    async fn propose(
        &self,
        objective: Objective,
        anchors: &[ProductDoc],
        candidates: &[ProductDoc],
        max_bundles: usize,
    ) -> Result<Answer<Proposal>, TaskError> {
        let all: Vec<&ProductDoc> = anchors.iter().chain(candidates).collect();
        let vectors = self.vectors_of(&all).await?;
        let mut items = Vec::new();
        for a in 0..anchors.len() {
            if items.len() >= max_bundles {
                break;
            }
            // Every other offered product by closeness, ties by position.
            let mut near: Vec<(usize, f32)> = (0..all.len())
                .filter(|&j| j != a && all[j].id != all[a].id)
                .map(|j| (j, dot(&vectors[a], &vectors[j])))
                .collect();
            near.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            let complements: Vec<usize> = near
                .iter()
                .filter(|&&(j, s)| {
                    (OFFLINE_RELATED..NEAR_COPY).contains(&s) && !same_category(all[a], all[j])
                })
                .map(|&(j, _)| j)
                .collect();
            let alike: Vec<usize> = near
                .iter()
                .filter(|&&(_, s)| s >= OFFLINE_ALIKE)
                .map(|&(j, _)| j)
                .take(5)
                .collect();
            let title = &all[a].title;
            let mut push = |bundle_type: BundleType, products: Vec<usize>, reason: String| {
                if items.len() < max_bundles
                    && bundle_type.product_count().contains(&products.len())
                {
                    items.push(Proposal {
                        bundle_type,
                        products,
                        reason: clean_text(&reason, MAX_REASON_CHARS),
                    });
                }
            };
            if complements.len() >= 2 {
                let set = vec![a, complements[0], complements[1]];
                push(
                    BundleType::Fixed,
                    set,
                    format!("{title} with two related products from other categories"),
                );
            }
            if let Some(&c) = complements.first() {
                push(
                    BundleType::Addon,
                    vec![a, c],
                    format!("{} is a natural add-on to {title}", all[c].title),
                );
            }
            if alike.len() >= 2 {
                let mut group = vec![a];
                group.extend(alike.iter().copied());
                push(
                    BundleType::MixMatch,
                    group,
                    format!("{title} and similar products to pick from"),
                );
            }
            // BOGO: the same product, or a cheaper complement.
            let cheaper = complements
                .iter()
                .copied()
                .find(|&c| amount(&all[c].price) < amount(&all[a].price));
            match cheaper {
                Some(c) => push(
                    BundleType::Bogo,
                    vec![a, c],
                    format!("buy {title}, get {} discounted", all[c].title),
                ),
                None => push(
                    BundleType::Bogo,
                    vec![a],
                    format!("buy {title}, get another discounted"),
                ),
            }
            if matches!(
                objective,
                Objective::Replenish | Objective::ClearSlowMovers | Objective::IncreaseAov
            ) {
                push(
                    BundleType::Volume,
                    vec![a],
                    format!("{title} in larger quantities"),
                );
            }
        }
        Ok(Answer {
            items,
            dropped: Dropped::default(),
        })
    }

    async fn advise_price(&self, bundles: &[BundleDoc]) -> Result<Answer<PriceAdvice>, TaskError> {
        let items = bundles
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let half_margin = (b.margin_pct.max(0) / 2).min(100) as u8;
                let max = b.cap_pct.min(half_margin);
                let min = max / 3;
                PriceAdvice {
                    bundle: i,
                    min_pct: min,
                    max_pct: max,
                    reason: format!(
                        "Up to {max} %: within the objective's cap of {} % and half the bundle's {} % margin.",
                        b.cap_pct, b.margin_pct
                    ),
                }
            })
            .collect();
        Ok(Answer {
            items,
            dropped: Dropped::default(),
        })
    }

    async fn write_copy(
        &self,
        bundles: &[BundleDoc],
        locale: &str,
    ) -> Result<Answer<Copy>, TaskError> {
        let items = bundles
            .iter()
            .enumerate()
            .map(|(i, b)| template_copy(i, b, locale))
            .collect();
        Ok(Answer {
            items,
            dropped: Dropped::default(),
        })
    }

    async fn rate_appeal(&self, bundles: &[BundleDoc]) -> Result<Answer<Appeal>, TaskError> {
        let mut items = Vec::with_capacity(bundles.len());
        for (i, b) in bundles.iter().enumerate() {
            let docs: Vec<&ProductDoc> = b.products.iter().collect();
            let vectors = self.vectors_of(&docs).await?;
            let mut sum = 0.0f32;
            let mut pairs = 0u32;
            for x in 0..vectors.len() {
                for y in x + 1..vectors.len() {
                    sum += dot(&vectors[x], &vectors[y]);
                    pairs += 1;
                }
            }
            // One product (volume, BOGO of the same item) is as coherent as it gets.
            let coherence = if pairs == 0 { 0.6 } else { sum / pairs as f32 };
            let score = (4.0 + 6.0 * coherence.clamp(0.0, 1.0)).round() as u8;
            items.push(Appeal {
                bundle: i,
                score,
                reason: format!("products fit together with closeness {coherence:.2}"),
            });
        }
        Ok(Answer {
            items,
            dropped: Dropped::default(),
        })
    }

    /// None: which kinds complement each other is knowledge, not closeness in meaning
    /// (the complement prior holds what baskets taught; this provider adds nothing).
    async fn name_complements(
        &self,
        _kinds: &[KindDoc],
        _max_pairs: usize,
    ) -> Result<Answer<KindPair>, TaskError> {
        Ok(Answer {
            items: Vec::new(),
            dropped: Dropped::default(),
        })
    }
}

/// The languages the templates are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    De,
    Fr,
    Es,
}

impl Language {
    /// A locale's language; English when the templates lack it.
    pub fn of(locale: &str) -> Language {
        match super::prompt::primary_language(locale).as_str() {
            "de" => Language::De,
            "fr" => Language::Fr,
            "es" => Language::Es,
            _ => Language::En,
        }
    }
}

/// "Choose any 3: a, b, c" in the language.
fn choose(lang: Language, pick: u32, names: &str) -> String {
    match lang {
        Language::En => format!("Choose any {pick}: {names}"),
        Language::De => format!("Beliebige {pick} wählen: {names}"),
        Language::Fr => format!("{pick} au choix : {names}"),
        Language::Es => format!("Elige {pick}: {names}"),
    }
}

/// The title of a bundle of type `t` over its product names.
fn title(lang: Language, t: BundleType, names: &[&str], pick: u32, discount: u8) -> String {
    let first = names.first().copied().unwrap_or("");
    let second = names.get(1).copied().unwrap_or(first);
    // What an add-on's shopper gets at the discount: every product after the first.
    let added = if names.len() > 2 {
        names[1..].join(" + ")
    } else {
        second.to_owned()
    };
    let n = pick;
    use Language::*;
    match (t, lang) {
        (BundleType::Fixed, En) => format!("The {first} set"),
        (BundleType::Fixed, De) => format!("Das {first}-Set"),
        (BundleType::Fixed, Fr) => format!("Le coffret {first}"),
        (BundleType::Fixed, Es) => format!("El set {first}"),
        (BundleType::MixMatch, En) => format!("Mix & match: any {n} for one price"),
        (BundleType::MixMatch, De) => format!("Frei kombinieren: {n} zum Sonderpreis"),
        (BundleType::MixMatch, Fr) => format!("Au choix : {n} pour un prix"),
        (BundleType::MixMatch, Es) => format!("Combina {n} a un precio"),
        (BundleType::Volume, En) => format!("{first}: buy more, save more"),
        (BundleType::Volume, De) => format!("{first}: mehr kaufen, mehr sparen"),
        (BundleType::Volume, Fr) => format!("{first} : plus vous achetez, plus vous économisez"),
        (BundleType::Volume, Es) => format!("{first}: compra más, ahorra más"),
        // The offer first: a long product name is cut at the end, never the offer.
        (BundleType::Bogo, En) if names.len() < 2 => format!("{discount}% off a second {first}"),
        (BundleType::Bogo, En) => format!("{discount}% off {second} with {first}"),
        (BundleType::Bogo, De) if names.len() < 2 => {
            format!("{discount}% Rabatt auf ein zweites {first}")
        }
        (BundleType::Bogo, De) => format!("{discount}% Rabatt auf {second} zu {first}"),
        (BundleType::Bogo, Fr) if names.len() < 2 => format!("-{discount}% sur un second {first}"),
        (BundleType::Bogo, Fr) => format!("-{discount}% sur {second} avec {first}"),
        (BundleType::Bogo, Es) if names.len() < 2 => {
            format!("{discount}% dto. en un segundo {first}")
        }
        (BundleType::Bogo, Es) => format!("{discount}% dto. en {second} con {first}"),
        // An add-on states its offer on the add-on, as the Shopify discount applies it.
        (BundleType::Addon, En) => format!("Add {added} at {discount}% off to {first}"),
        (BundleType::Addon, De) => format!("{discount}% Rabatt auf {added} zu {first}"),
        (BundleType::Addon, Fr) => format!("-{discount}% sur {added} avec {first}"),
        (BundleType::Addon, Es) => format!("{discount}% dto. en {added} con {first}"),
    }
}

fn badge(lang: Language, t: BundleType, discount: u8) -> String {
    use Language::*;
    match (t, lang) {
        (BundleType::Bogo, En) => "Buy one, get one".into(),
        (BundleType::Bogo, De) => "Kauf eins, spar beim zweiten".into(),
        (BundleType::Bogo, Fr) => "Un acheté, un remisé".into(),
        (BundleType::Bogo, Es) => "Compra uno, ahorra".into(),
        (BundleType::Volume, En) => "Volume saving".into(),
        (BundleType::Volume, De) => "Mengenrabatt".into(),
        (BundleType::Volume, Fr) => "Prix dégressif".into(),
        (BundleType::Volume, Es) => "Ahorro por volumen".into(),
        (_, En) => format!("Save {discount}%"),
        (_, De) => format!("{discount}% sparen"),
        (_, Fr) => format!("-{discount}%"),
        (_, Es) => format!("Ahorra {discount}%"),
    }
}

/// What a bundle does for a shopper (description) and for the merchant (the first
/// sentence of the explanation): a row per objective, in the order `pitch` numbers
/// them, each row in English, German, French and Spanish.
const PITCHES: [[(&str, &str); 4]; 8] = [
    // IncreaseAov
    [
        (
            "Everything you need in one go, for less than buying each on its own.",
            "These products are often bought together, so the bundle raises the order value.",
        ),
        (
            "Alles, was Sie brauchen, auf einmal und günstiger als einzeln.",
            "Diese Produkte werden oft zusammen gekauft; das Bundle hebt den Bestellwert.",
        ),
        (
            "Tout ce qu'il vous faut en une fois, pour moins cher qu'à l'unité.",
            "Ces produits s'achètent souvent ensemble : le lot augmente le panier moyen.",
        ),
        (
            "Todo lo que necesitas de una vez, por menos que por separado.",
            "Estos productos se compran a menudo juntos: el pack sube el valor del pedido.",
        ),
    ],
    // ClearSlowMovers
    [
        (
            "A great pairing at a price that won't last.",
            "It pairs a slow-selling product with a popular one to move its stock.",
        ),
        (
            "Eine tolle Kombination zu einem Preis, der nicht lange bleibt.",
            "Es kombiniert ein langsam verkauftes Produkt mit einem beliebten, um Bestand abzubauen.",
        ),
        (
            "Une belle association à un prix qui ne durera pas.",
            "Il associe un produit qui se vend lentement à un produit populaire pour écouler le stock.",
        ),
        (
            "Una gran combinación a un precio que no durará.",
            "Combina un producto de venta lenta con uno popular para mover su stock.",
        ),
    ],
    // ProtectMargin
    [
        (
            "Our premium picks, together.",
            "It bundles high-margin products, so a small discount still earns well.",
        ),
        (
            "Unsere Premium-Auswahl, zusammen.",
            "Es bündelt margenstarke Produkte, sodass ein kleiner Rabatt gut verdient.",
        ),
        (
            "Nos produits premium, réunis.",
            "Il réunit des produits à forte marge : une petite remise reste rentable.",
        ),
        (
            "Nuestra selección premium, junta.",
            "Agrupa productos de alto margen, así un pequeño descuento sigue siendo rentable.",
        ),
    ],
    // LaunchNew
    [
        (
            "Discover something new alongside a favourite.",
            "It introduces a new product next to a proven seller.",
        ),
        (
            "Entdecken Sie Neues zusammen mit einem Favoriten.",
            "Es stellt ein neues Produkt neben einen bewährten Bestseller.",
        ),
        (
            "Découvrez une nouveauté avec un favori.",
            "Il présente un nouveau produit à côté d'une valeur sûre.",
        ),
        (
            "Descubre una novedad junto a un favorito.",
            "Presenta un producto nuevo junto a uno de eficacia probada.",
        ),
    ],
    // Seasonal
    [
        (
            "Ready for the season, all in one bundle.",
            "Its products suit the season, when shoppers look for them.",
        ),
        (
            "Bereit für die Saison, alles in einem Bundle.",
            "Die Produkte passen zur Saison, in der Kunden danach suchen.",
        ),
        (
            "Prêt pour la saison, tout en un lot.",
            "Ses produits sont de saison, quand les clients les cherchent.",
        ),
        (
            "Listo para la temporada, todo en un pack.",
            "Sus productos son de temporada, cuando los clientes los buscan.",
        ),
    ],
    // Gift
    [
        (
            "A gift that's ready to give.",
            "Its products are bought as presents and make a complete gift together.",
        ),
        (
            "Ein Geschenk, fertig zum Verschenken.",
            "Die Produkte werden gern verschenkt und ergeben zusammen ein komplettes Geschenk.",
        ),
        (
            "Un cadeau prêt à offrir.",
            "Ses produits s'offrent volontiers et forment ensemble un cadeau complet.",
        ),
        (
            "Un regalo listo para regalar.",
            "Sus productos se compran para regalar y juntos forman un regalo completo.",
        ),
    ],
    // CrossSell
    [
        (
            "Made to go together.",
            "It combines complementary products from different categories that are used together.",
        ),
        (
            "Wie füreinander gemacht.",
            "Es kombiniert sich ergänzende Produkte aus verschiedenen Kategorien.",
        ),
        (
            "Faits pour aller ensemble.",
            "Il combine des produits complémentaires de catégories différentes.",
        ),
        (
            "Hechos para ir juntos.",
            "Combina productos complementarios de categorías distintas.",
        ),
    ],
    // Replenish
    [
        (
            "Stock up on what you use every day.",
            "Customers buy these again and again, so a multi-buy brings them back sooner.",
        ),
        (
            "Vorrat für den täglichen Bedarf.",
            "Kunden kaufen diese Produkte immer wieder; ein Mehrfachkauf bindet sie.",
        ),
        (
            "Faites le plein de l'essentiel.",
            "Les clients les rachètent souvent : un achat groupé les fait revenir.",
        ),
        (
            "Abastécete de lo que usas cada día.",
            "Los clientes los compran una y otra vez: un multipack los fideliza.",
        ),
    ],
];

/// What the bundle does for a shopper (description) and for the merchant (the first
/// sentence of the explanation), by objective.
fn pitch(lang: Language, o: Objective) -> (&'static str, &'static str) {
    use Objective::*;
    // A row per objective: a new objective does not compile without its own.
    let row = match o {
        IncreaseAov => 0,
        ClearSlowMovers => 1,
        ProtectMargin => 2,
        LaunchNew => 3,
        Seasonal => 4,
        Gift => 5,
        CrossSell => 6,
        Replenish => 7,
    };
    let column = match lang {
        Language::En => 0,
        Language::De => 1,
        Language::Fr => 2,
        Language::Es => 3,
    };
    PITCHES[row][column]
}

/// The second sentence of an explanation: the numbers a merchandiser checks.
fn evidence(lang: Language, b: &BundleDoc, discount: u8) -> String {
    use Language::*;
    match lang {
        En => format!(
            "At {discount}% off its list price of {} it keeps a margin of about {}% before the discount.",
            b.list_price, b.margin_pct
        ),
        De => format!(
            "Mit {discount}% Rabatt auf den Listenpreis von {} bleibt vor Rabatt eine Marge von etwa {}%.",
            b.list_price, b.margin_pct
        ),
        Fr => format!(
            "À -{discount}% sur un prix catalogue de {}, la marge avant remise est d'environ {}%.",
            b.list_price, b.margin_pct
        ),
        Es => format!(
            "Con un {discount}% de descuento sobre {} conserva un margen de aproximadamente {}% antes del descuento.",
            b.list_price, b.margin_pct
        ),
    }
}

/// Copy from the templates, for bundle `index` of a batch.
pub fn template_copy(index: usize, b: &BundleDoc, locale: &str) -> Copy {
    let lang = Language::of(locale);
    let discount = b.discount_pct.unwrap_or(0);
    // A BOGO's or add-on's title states the percentage off what the shopper gets.
    let title_discount = b.gets_discount_pct.unwrap_or(discount);
    let names: Vec<&str> = b.products.iter().map(|p| p.title.as_str()).collect();
    let (description, why) = pitch(lang, b.objective);
    // Mix & match: the group to choose from, and how many (the numeral, always).
    let pick = b.pick.unwrap_or(2);
    let list = if b.bundle_type == BundleType::MixMatch {
        choose(lang, pick, &names.join(", "))
    } else {
        names.join(" + ")
    };
    Copy {
        bundle: index,
        title: clean_text(
            &title(lang, b.bundle_type, &names, pick, title_discount),
            MAX_TITLE_CHARS,
        ),
        description: clean_text(&format!("{list}. {description}"), MAX_DESCRIPTION_CHARS),
        badge: clean_text(&badge(lang, b.bundle_type, discount), MAX_BADGE_CHARS),
        explanation: clean_text(
            &format!("{why} {}", evidence(lang, b, discount)),
            MAX_REASON_CHARS,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashingEmbedder;

    fn doc(id: &str, title: &str, category: &str, price: &str) -> ProductDoc {
        ProductDoc {
            id: id.into(),
            title: title.into(),
            category: Some(category.into()),
            tags: vec![],
            price: price.into(),
            description: String::new(),
        }
    }

    #[test]
    fn mix_and_match_copy_states_its_pick_as_a_numeral() {
        let mut b = bundle(Objective::Replenish, BundleType::MixMatch);
        b.pick = Some(3);
        let c = template_copy(0, &b, "en");
        assert!(c.title.contains("any 3"), "{}", c.title);
        assert!(c.description.contains("Choose any 3"), "{}", c.description);
    }

    fn offline() -> OfflineLlm {
        OfflineLlm::new(Arc::new(HashingEmbedder::new(64)), HashMap::new())
    }

    fn bundle(objective: Objective, t: BundleType) -> BundleDoc {
        BundleDoc {
            id: "b1".into(),
            objective,
            bundle_type: t,
            products: vec![
                doc("p1", "Espresso cup", "Kitchen", "8.00 USD"),
                doc("p2", "Coffee beans", "Coffee", "12.00 USD"),
            ],
            pick: None,
            list_price: "20.00 USD".into(),
            price: None,
            discount_pct: Some(10),
            gets_discount_pct: None,
            cap_pct: 20,
            margin_pct: 30,
        }
    }

    #[tokio::test]
    async fn keywords_and_merchant_tags_classify_offline() {
        let mut tagged = doc("p3", "Blue mug", "Kitchen", "5.00 USD");
        tagged.tags = vec!["slow_mover".into()];
        let products = [
            doc("p1", "Christmas tree bauble", "Decor", "3.00 USD"),
            doc("p2", "Coffee beans refill pack", "Coffee", "12.00 USD"),
            tagged,
        ];
        let answer = offline().classify(&products).await.unwrap();
        assert_eq!(answer.items.len(), 3);
        assert!(answer.items[0].tags.contains(&Objective::Seasonal));
        assert!(answer.items[1].tags.contains(&Objective::Replenish));
        assert!(answer.items[2].tags.contains(&Objective::ClearSlowMovers));
        assert!(!answer.items[2].tags.contains(&Objective::Seasonal));
    }

    #[tokio::test]
    async fn offline_answers_are_deterministic() {
        let products = [
            doc("p1", "Green tea", "Tea", "4.00 USD"),
            doc("p2", "Green tea mug", "Kitchen", "9.00 USD"),
            doc("p3", "Tea strainer", "Kitchen", "3.00 USD"),
            doc("p4", "Black tea", "Tea", "4.00 USD"),
        ];
        let a = offline()
            .propose(Objective::CrossSell, &products[..1], &products[1..], 10)
            .await
            .unwrap();
        let b = offline()
            .propose(Objective::CrossSell, &products[..1], &products[1..], 10)
            .await
            .unwrap();
        assert_eq!(a, b);
        assert!(!a.items.is_empty());
        for p in &a.items {
            assert!(p.bundle_type.product_count().contains(&p.products.len()));
            assert!(p.products.iter().all(|&i| i < products.len()));
            assert_eq!(p.products[0], 0, "every proposal starts at its anchor");
        }
    }

    #[tokio::test]
    async fn price_advice_stays_within_the_cap_and_half_the_margin() {
        let mut b = bundle(Objective::IncreaseAov, BundleType::Fixed);
        b.margin_pct = 16;
        let answer = offline().advise_price(&[b]).await.unwrap();
        let a = &answer.items[0];
        assert_eq!((a.min_pct, a.max_pct), (2, 8));
        let mut b = bundle(Objective::IncreaseAov, BundleType::Fixed);
        b.margin_pct = -5;
        let answer = offline().advise_price(&[b]).await.unwrap();
        assert_eq!(answer.items[0].max_pct, 0);
    }

    #[tokio::test]
    async fn copy_is_written_in_four_languages_for_every_objective_and_type() {
        let llm = offline();
        for locale in ["en", "de-DE", "fr_FR", "es"] {
            for o in Objective::ALL {
                for t in BundleType::ALL {
                    let answer = llm.write_copy(&[bundle(o, t)], locale).await.unwrap();
                    let c = &answer.items[0];
                    assert!(!c.title.is_empty() && !c.description.is_empty());
                    assert!(!c.explanation.is_empty() && !c.badge.is_empty());
                    // Two sentences for the merchant.
                    assert_eq!(c.explanation.matches(". ").count() + 1, 2, "{c:?}");
                }
            }
        }
        let de = template_copy(0, &bundle(Objective::Gift, BundleType::Fixed), "de");
        assert!(de.description.contains("Geschenk"), "{de:?}");
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let words = word_text(&["Teapot with strainer"]);
        assert!(
            !has_keyword(&words, Objective::Replenish),
            "teapot is not tea"
        );
        let words = word_text(&["Earl Grey tea, pack of 20"]);
        assert!(has_keyword(&words, Objective::Replenish));
    }
}
