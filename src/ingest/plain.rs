//! Characters no merchant text needs and that make text lie: control characters (NUL,
//! escape sequences, a carriage return inside a title) and the bidirectional overrides
//! and isolates (U+202A–U+202E, U+2066–U+2069) that make a title read differently from
//! what it holds. They are removed from every text and id at ingest, so no title, CSV
//! cell or report carries them; line breaks and tabs in descriptions become spaces.

use crate::domain::{Order, Product};

/// Whether `c` is removed.
pub fn is_unsafe(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t'))
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` without unsafe characters; `\n` and `\t` become spaces outside descriptions
/// too, since a title is one line.
pub fn plain(text: &str) -> String {
    if !text
        .chars()
        .any(|c| is_unsafe(c) || matches!(c, '\n' | '\t'))
    {
        return text.to_owned();
    }
    let out: String = text
        .chars()
        .filter(|&c| !is_unsafe(c))
        .map(|c| if matches!(c, '\n' | '\t') { ' ' } else { c })
        .collect();
    out.trim().to_owned()
}

fn clean(field: &mut String) -> bool {
    let cleaned = plain(field);
    let changed = cleaned != *field;
    *field = cleaned;
    changed
}

fn clean_opt(field: &mut Option<String>) -> bool {
    let Some(value) = field else { return false };
    let changed = clean(value);
    if value.is_empty() {
        *field = None;
    }
    changed
}

/// Cleans every text and id of a product; returns whether anything changed.
pub fn clean_product(p: &mut Product) -> bool {
    let mut changed = clean(&mut p.variant_id) | clean(&mut p.product_id) | clean(&mut p.title);
    changed |= clean(&mut p.description);
    for f in [
        &mut p.sku,
        &mut p.handle,
        &mut p.variant_title,
        &mut p.category,
        &mut p.product_type,
        &mut p.vendor,
        &mut p.inventory_item_id,
    ] {
        changed |= clean_opt(f);
    }
    for t in &mut p.tags {
        changed |= clean(t);
    }
    p.tags.retain(|t| !t.is_empty());
    changed
}

/// Cleans every product reference of an order's lines; returns whether anything
/// changed.
pub fn clean_order(o: &mut Order) -> bool {
    let mut changed = false;
    for l in &mut o.lines {
        let r = &mut l.product;
        for f in [
            &mut r.variant_id,
            &mut r.sku,
            &mut r.product_id,
            &mut r.title,
        ] {
            changed |= clean_opt(f);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_go_and_words_stay() {
        assert_eq!(plain("Mug\u{0}\u{1b}[31m"), "Mug[31m");
        // "Tea for two" with a right-to-left override hiding "exe."
        assert_eq!(
            plain("Tea \u{202E}exe.\u{202C} for two"),
            "Tea exe. for two"
        );
        assert_eq!(plain("Line one\nline two\tend"), "Line one line two end");
        assert_eq!(plain("Café crème – 250 g"), "Café crème – 250 g");
        assert_eq!(plain("\u{2066}\u{2069}"), "");
    }
}
