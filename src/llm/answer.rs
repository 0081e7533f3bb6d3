//! Validation of model answers. A model's answer is untrusted input, like a merchant's
//! file: it may be wrapped in a markdown fence, name products that do not exist, repeat
//! them, invent objectives, or carry text meant to steer whoever reads it. Only what the
//! schema asks for is read; ids must be among those the prompt offered (by position in
//! the batch, never looked up by name elsewhere); every text the model writes passes
//! [`not_plain_text`] (copy in the gateway, reasons here); what is dropped is counted
//! and may be logged, and never reaches a merchant.

use serde::Serialize;
use serde_json::Value;

use crate::domain::{BundleType, Objective};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("the answer does not have the expected shape: {0}")]
    WrongShape(String),
}

/// What validation left out of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Ids the prompt did not offer.
    pub unknown_ids: usize,
    /// Ids given twice for one item.
    pub duplicate_ids: usize,
    /// Entries with an invalid enum, number out of range, missing field, empty text,
    /// or a text that is not plain text ([`not_plain_text`]).
    pub invalid_entries: usize,
}

impl Dropped {
    pub fn add(&mut self, other: &Dropped) {
        self.unknown_ids += other.unknown_ids;
        self.duplicate_ids += other.duplicate_ids;
        self.invalid_entries += other.invalid_entries;
    }

    pub fn is_empty(&self) -> bool {
        *self == Dropped::default()
    }
}

/// The JSON object inside an answer: surrounding whitespace and one markdown code fence
/// (```` ```json … ``` ````) are removed; nothing else is repaired.
pub fn parse_json(text: &str) -> Result<Value, AnswerError> {
    let body = strip_fence(text.trim());
    let value: Value =
        serde_json::from_str(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(AnswerError::WrongShape("expected a JSON object".into()))
    }
}

fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    // The info string ("json") runs to the end of the fence's first line.
    let rest = rest.split_once('\n').map_or("", |(_, body)| body);
    rest.trim_end().strip_suffix("```").unwrap_or(rest).trim()
}

/// Plain text for a merchant: control characters and runs of whitespace become one
/// space, and the text is cut to `max_chars` characters (at a word boundary when one is
/// near).
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control() || crate::ingest::plain::is_unsafe(c))
    {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() <= max_chars {
        return out;
    }
    let cut: String = out.chars().take(max_chars).collect();
    match cut.rfind(' ') {
        Some(space) if space * 4 >= cut.len() * 3 => cut[..space].to_owned(),
        _ => cut,
    }
}

/// What in a model-written text is not plain text, unless `data` (the lower-cased
/// text of the store's own products the prompt carried) holds it too: a tag (`<script`,
/// `</p`, `<!--`), an inline event handler (`onerror=`), a scheme (`javascript:`,
/// `data:`), a spreadsheet formula at its start (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`)
/// or a link (`http://`, `https://`, `www.`). Every text a model writes is published as
/// plain text, in JSON and spreadsheets alike, so the one check serves copy and reasons.
pub fn not_plain_text(text: &str, data: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    if lower
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!')))
    {
        Some("markup")
    } else if has_event_handler(&lower) {
        Some("an event handler")
    } else if ["javascript:", "data:", "vbscript:"]
        .iter()
        .any(|s| lower.contains(s))
    {
        Some("a script scheme")
    } else if opens_a_formula(&lower) {
        Some("a spreadsheet formula")
    } else {
        links(&lower)
            .any(|link| !data.contains(link))
            .then_some("a link")
    }
}

/// Whether `text` opens as a spreadsheet reads a formula: `=`, `@`, a tab or carriage
/// return, or `+`/`-` unless a number and words follow (`-20% today`, `+1 free mug`
/// are copy; `+cmd|…`, `-2+3` and `-20% +cmd` are formulas).
fn opens_a_formula(text: &str) -> bool {
    match text.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        // Both signs are one byte.
        Some('+' | '-') => !number_then_words(&text[1..]),
        _ => false,
    }
}

/// Whether `rest` is a number (`20`, `3.5`, `20%`) that ends the text or is followed
/// by a space and a word.
fn number_then_words(rest: &str) -> bool {
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(rest.len());
    let after = &rest[end..];
    let after = after.strip_prefix('%').unwrap_or(after);
    after.is_empty()
        || after
            .strip_prefix(' ')
            .is_some_and(|words| words.starts_with(char::is_alphabetic))
}

/// Each link in `lower`: from `http://`, `https://` or `www.` to the next space, quote
/// or bracket.
fn links(lower: &str) -> impl Iterator<Item = &str> {
    let starts: Vec<usize> = ["http://", "https://", "www."]
        .iter()
        .flat_map(|p| lower.match_indices(p).map(|(i, _)| i))
        .collect();
    starts.into_iter().map(move |i| {
        let rest = &lower[i..];
        let end = rest
            .find(|c: char| c.is_whitespace() || "\"'()<>[]".contains(c))
            .unwrap_or(rest.len());
        rest[..end].trim_end_matches(['.', ',', '!', '?', ';', ':'])
    })
}

/// `on` + letters + `=` (`onerror=`, `onload =`), as HTML event attributes are written.
fn has_event_handler(lower: &str) -> bool {
    let b = lower.as_bytes();
    let mut i = 0;
    while let Some(at) = lower[i..].find("on") {
        let start = i + at;
        let boundary = start == 0 || !b[start - 1].is_ascii_alphanumeric();
        let mut j = start + 2;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let letters = j - start - 2;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if boundary && letters >= 3 && j < b.len() && b[j] == b'=' {
            return true;
        }
        i = start + 2;
    }
    false
}

/// An entry's `reason`, cleaned (empty when it has none); `None` when it is not plain
/// text ([`not_plain_text`]), and the entry is then dropped as copy that fails the check
/// is. Reasons are checked without the store's data, so no link passes: nothing a
/// reason explains needs one.
fn reason_of(entry: &Value) -> Option<String> {
    let reason = entry
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| clean_text(r, MAX_REASON_CHARS))
        .unwrap_or_default();
    match not_plain_text(&reason, "") {
        None => Some(reason),
        Some(found) => {
            tracing::warn!(
                found,
                "A model's reason is not plain text; its entry is dropped"
            );
            None
        }
    }
}

/// The array under `key`, or a shape error.
fn entries<'a>(answer: &'a Value, key: &str) -> Result<&'a [Value], AnswerError> {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| AnswerError::WrongShape(format!("expected an array under {key:?}")))
}

/// An id as the model wrote it: models turn numeric-looking ids into numbers.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Looks ids up among those offered, counting what is unknown or repeated.
struct Offered<'a> {
    ids: &'a [&'a str],
    seen: Vec<bool>,
}

impl<'a> Offered<'a> {
    fn new(ids: &'a [&'a str]) -> Self {
        Offered {
            ids,
            seen: vec![false; ids.len()],
        }
    }

    /// The position of `v` among the offered ids, the first time it is named.
    fn take(&mut self, v: &Value, dropped: &mut Dropped) -> Option<usize> {
        let Some(at) = id_text(v).and_then(|id| self.ids.iter().position(|o| *o == id)) else {
            dropped.unknown_ids += 1;
            tracing::debug!(id = %v, "answer named an id the prompt did not offer");
            return None;
        };
        if std::mem::replace(&mut self.seen[at], true) {
            dropped.duplicate_ids += 1;
            return None;
        }
        Some(at)
    }

    fn reset(&mut self) {
        self.seen.fill(false);
    }
}

fn parse_enum<T: std::str::FromStr>(v: &Value) -> Option<T> {
    let s = v
        .as_str()?
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    s.parse().ok()
}

/// A product's objectives, by its position in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub product: usize,
    pub tags: Vec<Objective>,
}

/// `{"products": [{"id": "…", "tags": ["gift", …]}]}` for the products `ids` (the batch,
/// in prompt order). Products the answer leaves out are not returned: the caller
/// classifies them another way.
pub fn classification(
    answer: &Value,
    ids: &[&str],
) -> Result<(Vec<Classified>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out = Vec::new();
    for entry in entries(answer, "products")? {
        let (Some(id), Some(tags)) = (entry.get("id"), entry.get("tags").and_then(Value::as_array))
        else {
            dropped.invalid_entries += 1;
            continue;
        };
        let Some(product) = offered.take(id, &mut dropped) else {
            continue;
        };
        let mut valid: Vec<Objective> = Vec::new();
        for tag in tags {
            match parse_enum::<Objective>(tag) {
                Some(t) if !valid.contains(&t) => valid.push(t),
                Some(_) => {}
                None => dropped.invalid_entries += 1,
            }
        }
        out.push(Classified {
            product,
            tags: valid,
        });
    }
    Ok((out, dropped))
}

/// Longest reason or explanation kept from an answer, in characters.
pub const MAX_REASON_CHARS: usize = 300;

/// A proposed bundle over the offered candidates (positions in `ids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub bundle_type: BundleType,
    pub products: Vec<usize>,
    pub reason: String,
}

/// `{"bundles": [{"type": "fixed", "products": ["…", …], "reason": "…"}]}` over the
/// candidates `ids`. Unknown and repeated products are dropped; a bundle left with a
/// product count its type does not allow is dropped whole.
pub fn proposals(answer: &Value, ids: &[&str]) -> Result<(Vec<Proposal>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out = Vec::new();
    for entry in entries(answer, "bundles")? {
        let bundle_type = entry.get("type").and_then(parse_enum::<BundleType>);
        let products = entry.get("products").and_then(Value::as_array);
        let (Some(bundle_type), Some(products)) = (bundle_type, products) else {
            dropped.invalid_entries += 1;
            continue;
        };
        offered.reset();
        let products: Vec<usize> = products
            .iter()
            .filter_map(|p| offered.take(p, &mut dropped))
            .collect();
        if !bundle_type.product_count().contains(&products.len()) {
            dropped.invalid_entries += 1;
            continue;
        }
        let Some(reason) = reason_of(entry) else {
            dropped.invalid_entries += 1;
            continue;
        };
        out.push(Proposal {
            bundle_type,
            products,
            reason,
        });
    }
    Ok((out, dropped))
}

/// A discount range for a bundle (its position in the batch), in whole percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceAdvice {
    pub bundle: usize,
    pub min_pct: u8,
    pub max_pct: u8,
    pub reason: String,
}

/// `{"bundles": [{"id": "…", "min_pct": 5, "max_pct": 15, "reason": "…"}]}`; each range
/// must lie within 0..=`caps[bundle]` (the objective's discount cap) with min ≤ max.
pub fn price_advice(
    answer: &Value,
    ids: &[&str],
    caps: &[u8],
) -> Result<(Vec<PriceAdvice>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out = Vec::new();
    let pct =
        |v: Option<&Value>| -> Option<f64> { v.and_then(Value::as_f64).filter(|x| x.is_finite()) };
    for entry in entries(answer, "bundles")? {
        let Some(id) = entry.get("id") else {
            dropped.invalid_entries += 1;
            continue;
        };
        let Some(bundle) = offered.take(id, &mut dropped) else {
            continue;
        };
        let cap = f64::from(caps.get(bundle).copied().unwrap_or(0));
        let (Some(min), Some(max)) = (pct(entry.get("min_pct")), pct(entry.get("max_pct"))) else {
            dropped.invalid_entries += 1;
            continue;
        };
        if !(0.0 <= min && min <= max && max <= cap) {
            dropped.invalid_entries += 1;
            continue;
        }
        let Some(reason) = reason_of(entry) else {
            dropped.invalid_entries += 1;
            continue;
        };
        out.push(PriceAdvice {
            bundle,
            min_pct: min.round() as u8,
            max_pct: max.round() as u8,
            reason,
        });
    }
    Ok((out, dropped))
}

/// Limits of the texts a merchant sees, in characters.
pub const MAX_TITLE_CHARS: usize = 80;
pub const MAX_DESCRIPTION_CHARS: usize = 400;
pub const MAX_BADGE_CHARS: usize = 24;

/// Copy and explanation for a bundle (its position in the batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub bundle: usize,
    pub title: String,
    pub description: String,
    pub badge: String,
    pub explanation: String,
}

/// `{"bundles": [{"id": "…", "title": "…", "description": "…", "badge": "…",
/// "explanation": "…"}]}`. Title, description and explanation must not be empty; the
/// badge may be.
pub fn copy(answer: &Value, ids: &[&str]) -> Result<(Vec<Copy>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out = Vec::new();
    for entry in entries(answer, "bundles")? {
        let text = |key: &str, max: usize| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .map(|t| clean_text(t, max))
                .unwrap_or_default()
        };
        let c = Copy {
            bundle: usize::MAX,
            title: text("title", MAX_TITLE_CHARS),
            description: text("description", MAX_DESCRIPTION_CHARS),
            badge: text("badge", MAX_BADGE_CHARS),
            explanation: text("explanation", MAX_REASON_CHARS),
        };
        if c.title.is_empty() || c.description.is_empty() || c.explanation.is_empty() {
            dropped.invalid_entries += 1;
            continue;
        }
        let Some(bundle) = entry
            .get("id")
            .and_then(|id| offered.take(id, &mut dropped))
        else {
            if entry.get("id").is_none() {
                dropped.invalid_entries += 1;
            }
            continue;
        };
        out.push(Copy { bundle, ..c });
    }
    Ok((out, dropped))
}

/// How appealing a bundle is to a shopper, 0–10, with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appeal {
    pub bundle: usize,
    pub score: u8,
    pub reason: String,
}

/// `{"bundles": [{"id": "…", "score": 7, "reason": "…"}]}` with scores in 0..=10.
pub fn appeal(answer: &Value, ids: &[&str]) -> Result<(Vec<Appeal>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out = Vec::new();
    for entry in entries(answer, "bundles")? {
        let score = entry
            .get("score")
            .and_then(Value::as_f64)
            .filter(|s| (0.0..=10.0).contains(s));
        let (Some(id), Some(score)) = (entry.get("id"), score) else {
            dropped.invalid_entries += 1;
            continue;
        };
        let Some(bundle) = offered.take(id, &mut dropped) else {
            continue;
        };
        let Some(reason) = reason_of(entry) else {
            dropped.invalid_entries += 1;
            continue;
        };
        out.push(Appeal {
            bundle,
            score: score.round() as u8,
            reason,
        });
    }
    Ok((out, dropped))
}

/// Two kinds of product the model says go together (positions in the kinds offered),
/// `a < b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPair {
    pub a: usize,
    pub b: usize,
    pub reason: String,
}

/// `{"pairs": [{"a": "k1", "b": "k4", "reason": "…"}]}` over the kinds `ids`: both ids
/// offered, two different kinds, each pair once, a plain-text reason given, at most
/// `max_pairs` (the rest counted as invalid).
pub fn kind_pairs(
    answer: &Value,
    ids: &[&str],
    max_pairs: usize,
) -> Result<(Vec<KindPair>, Dropped), AnswerError> {
    let mut dropped = Dropped::default();
    let mut offered = Offered::new(ids);
    let mut out: Vec<KindPair> = Vec::new();
    for entry in entries(answer, "pairs")? {
        let reason = reason_of(entry);
        let (Some(a), Some(b)) = (entry.get("a"), entry.get("b")) else {
            dropped.invalid_entries += 1;
            continue;
        };
        offered.reset();
        let (Some(a), Some(b)) = (offered.take(a, &mut dropped), offered.take(b, &mut dropped))
        else {
            continue;
        };
        let (a, b) = (a.min(b), a.max(b));
        if out.iter().any(|p| (p.a, p.b) == (a, b)) {
            dropped.duplicate_ids += 1;
            continue;
        }
        // No reason, one that is not plain text, or no room left.
        let Some(reason) = reason.filter(|r| !r.is_empty() && out.len() < max_pairs) else {
            dropped.invalid_entries += 1;
            continue;
        };
        out.push(KindPair { a, b, reason });
    }
    Ok((out, dropped))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fences_are_stripped_and_nothing_else_is_repaired() {
        let fenced = "```json\n{\"products\": []}\n```";
        assert_eq!(parse_json(fenced).unwrap(), json!({"products": []}));
        assert_eq!(
            parse_json("  ```\n{\"a\": 1}```  ").unwrap(),
            json!({"a": 1})
        );
        assert!(matches!(
            parse_json("{\"products\": ["),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse_json("Sure! Here it is"),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse_json("[1, 2]"),
            Err(AnswerError::WrongShape(_))
        ));
    }

    #[test]
    fn kind_pairs_need_two_offered_kinds_a_reason_and_room() {
        let ids = ["k1", "k2", "k3"];
        let answer = json!({"pairs": [
            {"a": "k2", "b": "k1", "reason": "Coffee goes in a mug."},
            {"a": "k1", "b": "k2", "reason": "again"},
            {"a": "k1", "b": "k1", "reason": "itself"},
            {"a": "k1", "b": "k9", "reason": "invented"},
            {"a": "k3", "reason": "half a pair"},
            {"a": "k3", "b": "k1", "reason": ""},
            {"a": "k3", "b": "k2", "reason": "fine"},
            {"a": "k2", "b": "k3", "reason": "repeat"},
        ]});
        let (pairs, dropped) = kind_pairs(&answer, &ids, 5).unwrap();
        let got: Vec<(usize, usize)> = pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(got, [(0, 1), (1, 2)]);
        assert_eq!(pairs[0].reason, "Coffee goes in a mug.");
        assert_eq!(dropped.unknown_ids, 1);
        // The same kind twice in one pair, and two repeated pairs.
        assert_eq!(dropped.duplicate_ids, 3);
        // Half a pair, and no reason.
        assert_eq!(dropped.invalid_entries, 2);
        // Room for one pair: the rest are counted, not kept.
        let (pairs, dropped) = kind_pairs(&answer, &ids, 1).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(dropped.invalid_entries, 4);
        assert!(kind_pairs(&json!({"bundles": []}), &ids, 5).is_err());
    }

    #[test]
    fn classification_keeps_offered_ids_and_known_objectives_only() {
        let ids = ["p1", "p2", "42"];
        let answer = json!({"products": [
            {"id": "p1", "tags": ["gift", "Cross-Sell", "gift", "world_domination"]},
            {"id": "p9", "tags": ["gift"]},
            {"id": 42, "tags": []},
            {"id": "p1", "tags": ["seasonal"]},
            {"tags": ["gift"]}
        ]});
        let (out, dropped) = classification(&answer, &ids).unwrap();
        assert_eq!(
            out,
            [
                Classified {
                    product: 0,
                    tags: vec![Objective::Gift, Objective::CrossSell]
                },
                Classified {
                    product: 2,
                    tags: vec![]
                },
            ]
        );
        assert_eq!(
            dropped,
            Dropped {
                unknown_ids: 1,
                duplicate_ids: 1,
                invalid_entries: 2
            }
        );
        assert!(matches!(
            classification(&json!({"items": []}), &ids),
            Err(AnswerError::WrongShape(_))
        ));
    }

    #[test]
    fn proposals_respect_each_type_product_count() {
        let ids = ["a", "b", "c", "d", "e"];
        let answer = json!({"bundles": [
            {"type": "fixed", "products": ["a", "b", "b", "zz"], "reason": "go\ntogether"},
            {"type": "volume", "products": ["c"]},
            {"type": "volume", "products": ["c", "d"]},
            {"type": "addon", "products": ["a", "zz"]},
            {"type": "pyramid", "products": ["a", "b"]},
            {"type": "mix match", "products": ["a", "b", "c"]}
        ]});
        let (out, dropped) = proposals(&answer, &ids).unwrap();
        let shapes: Vec<(BundleType, Vec<usize>)> = out
            .iter()
            .map(|p| (p.bundle_type, p.products.clone()))
            .collect();
        assert_eq!(
            shapes,
            [
                (BundleType::Fixed, vec![0, 1]),
                (BundleType::Volume, vec![2]),
                (BundleType::MixMatch, vec![0, 1, 2]),
            ]
        );
        assert_eq!(out[0].reason, "go together");
        // b twice and zz twice; volume with two products, addon left with one, pyramid.
        assert_eq!(
            dropped,
            Dropped {
                unknown_ids: 2,
                duplicate_ids: 1,
                invalid_entries: 3
            }
        );
    }

    #[test]
    fn price_advice_must_lie_within_the_cap() {
        let ids = ["b1", "b2", "b3"];
        let caps = [20, 20, 10];
        let answer = json!({"bundles": [
            {"id": "b1", "min_pct": 5, "max_pct": 15.4, "reason": "slow mover"},
            {"id": "b2", "min_pct": 15, "max_pct": 5},
            {"id": "b3", "min_pct": 0, "max_pct": 30},
            {"id": "b1", "min_pct": 1, "max_pct": 2}
        ]});
        let (out, dropped) = price_advice(&answer, &ids, &caps).unwrap();
        assert_eq!(
            out,
            [PriceAdvice {
                bundle: 0,
                min_pct: 5,
                max_pct: 15,
                reason: "slow mover".into()
            }]
        );
        assert_eq!(dropped.invalid_entries, 2);
        assert_eq!(dropped.duplicate_ids, 1);
    }

    #[test]
    fn copy_is_cleaned_limited_and_complete() {
        let ids = ["b1", "b2"];
        let long = "word ".repeat(100);
        let answer = json!({"bundles": [
            {"id": "b1", "title": "  Cosy\u{0007} night\tin ", "description": long,
             "badge": "", "explanation": "Bought together. Saves 10%.", "ignored": "x"},
            {"id": "b2", "title": "", "description": "d", "explanation": "e"}
        ]});
        let (out, dropped) = copy(&answer, &ids).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].title, "Cosy night in");
        assert!(out[0].description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(out[0].description.ends_with("word"));
        assert_eq!(dropped.invalid_entries, 1);
    }

    #[test]
    fn appeal_scores_are_zero_to_ten() {
        let ids = ["b1", "b2"];
        let answer = json!({"bundles": [
            {"id": "b1", "score": 7.6, "reason": "nice"},
            {"id": "b2", "score": 11}
        ]});
        let (out, dropped) = appeal(&answer, &ids).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 8);
        assert_eq!(dropped.invalid_entries, 1);
    }

    #[test]
    fn reasons_that_are_not_plain_text_drop_their_entries_in_every_task() {
        let ids = ["a", "b"];
        let hostile = [
            "<script>alert(1)</script> They go together",
            "Nice pair <img src=x onerror=alert(1)>",
            "Click onerror = steal() for more",
            "Read more at http://evil.example today",
            "Care guide at www.evil.example",
            "javascript:alert(1)",
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+cmd|' /C calc'!A0",
            "@SUM(A1:A9)",
            "-2+3+cmd|' /C calc'!A0",
            "-20% +cmd|' /C calc'!A0",
        ];
        // Kept: plain words, a comparison, and a signed number followed by words.
        let fine = [
            "Tea is brewed to be drunk from a mug",
            "2 < 3 of them",
            "-20% suits a slow mover",
        ];
        let answers = |reason: &str| {
            let p = proposals(
                &json!({"bundles": [{"type": "fixed", "products": ["a", "b"], "reason": reason}]}),
                &ids,
            )
            .unwrap();
            let q = price_advice(
                &json!({"bundles": [{"id": "a", "min_pct": 5, "max_pct": 10, "reason": reason}]}),
                &ids,
                &[20, 20],
            )
            .unwrap();
            let r = appeal(
                &json!({"bundles": [{"id": "a", "score": 7, "reason": reason}]}),
                &ids,
            )
            .unwrap();
            let k = kind_pairs(
                &json!({"pairs": [{"a": "a", "b": "b", "reason": reason}]}),
                &ids,
                5,
            )
            .unwrap();
            let kept: Vec<String> =
                p.0.into_iter()
                    .map(|x| x.reason)
                    .chain(q.0.into_iter().map(|x| x.reason))
                    .chain(r.0.into_iter().map(|x| x.reason))
                    .chain(k.0.into_iter().map(|x| x.reason))
                    .collect();
            let invalid = [p.1, q.1, r.1, k.1]
                .iter()
                .map(|d| d.invalid_entries)
                .sum::<usize>();
            (kept, invalid)
        };
        for bad in hostile {
            let (kept, invalid) = answers(bad);
            assert!(kept.is_empty(), "{bad}: {kept:?}");
            assert_eq!(invalid, 4, "{bad}");
        }
        for reason in fine {
            let (kept, invalid) = answers(reason);
            assert_eq!(kept, [reason; 4], "{reason}");
            assert_eq!(invalid, 0, "{reason}");
        }
        // A reason is checked as it is kept: a line break does not hide a handler.
        let (kept, _) = answers("Nice pair onerror\n=alert(1)");
        assert!(kept.is_empty());
    }

    #[test]
    fn only_a_signed_number_followed_by_words_opens_like_a_formula_and_passes() {
        for formula in [
            "=1+1", "@SUM(A1)", "+cmd", "-cmd", "-2+3", "-20%+1", "+", "-",
        ] {
            assert!(opens_a_formula(formula), "{formula}");
        }
        for text in ["-20%", "+1 free mug", "-3.5 kg lighter", "a = b", "x@y"] {
            assert!(!opens_a_formula(text), "{text}");
        }
    }

    #[test]
    fn clean_text_cuts_at_a_word_near_the_limit() {
        assert_eq!(clean_text("alpha beta gamma", 12), "alpha beta");
        assert_eq!(clean_text("abcdefghijklmnop", 5), "abcde");
        assert_eq!(clean_text("ä ö ü", 10), "ä ö ü");
    }
}
