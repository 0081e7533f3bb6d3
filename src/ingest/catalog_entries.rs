//! Catalog entries with the row they came from, and the one rule for repeated ids:
//! shared by every catalog reader (CSV shapes and Shopify JSON).

use std::collections::HashMap;

use super::{IngestBatch, RowError};
use crate::domain::Product;

/// A catalog entry with the row it came from, for duplicate reports.
pub(crate) struct Located {
    pub line: u64,
    pub product: Product,
}

/// Adds catalog entries; of two entries with one variant id the later row wins, and
/// both lines are named. An identical repeat is dropped quietly (counted).
pub(crate) fn push_deduplicated(file: &str, entries: Vec<Located>, batch: &mut IngestBatch) {
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    let mut kept: Vec<Located> = Vec::with_capacity(entries.len());
    for e in entries {
        match seen.get(&e.product.variant_id) {
            None => {
                seen.insert(e.product.variant_id.clone(), kept.len());
                kept.push(e);
            }
            Some(&i) if kept[i].product == e.product => {
                batch.report.drop_row("identical_duplicate")
            }
            Some(&i) => {
                let earlier = kept[i].line;
                batch.report.unkeep(
                    "conflicting_duplicate_id",
                    RowError {
                        file: file.to_owned(),
                        line: earlier,
                        column: "id".into(),
                        value: e.product.variant_id.clone(),
                        reason: format!(
                            "the same catalog id appears again at line {} with different values; line {} wins",
                            e.line, e.line
                        ),
                    },
                );
                kept[i] = e;
            }
        }
    }
    batch.products.extend(kept.into_iter().map(|l| l.product));
}
