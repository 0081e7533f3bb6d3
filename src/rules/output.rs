//! The itemsets-and-rules file `rules --out` writes: one JSON document, streamed, with
//! items by label.
//!
//! ```json
//! {"baskets": 9835, "min_count": 10, "minsup": 0.001,
//!  "itemsets": [{"items": ["whole milk", "yogurt"], "count": 551, "support": 0.056}],
//!  "rules": [{"lhs": ["yogurt"], "rhs": "whole milk", "count": 551, "lhs_count": 1372,
//!             "rhs_count": 2513, "support": 0.056, "confidence": 0.402, "lift": 1.57,
//!             "leverage": 0.02, "conviction": 1.24}]}
//! ```

use std::io::{self, Write};

use serde::Serialize;

use super::{Baskets, Mined};

#[derive(Serialize)]
struct ItemsetOut<'a> {
    items: Vec<&'a str>,
    count: u32,
    support: f64,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    lhs: Vec<&'a str>,
    rhs: &'a str,
    count: u32,
    lhs_count: u32,
    rhs_count: u32,
    #[serde(flatten)]
    metrics: super::RuleMetrics,
}

pub fn write_json(out: impl Write, baskets: &Baskets, mined: &Mined) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let n = mined.report.baskets_mined;
    let json = |e: serde_json::Error| io::Error::other(e);
    write!(
        out,
        "{{\"baskets\": {n}, \"min_count\": {}, \"minsup\": {},\n\"itemsets\": [",
        mined.report.min_count,
        serde_json::to_string(&mined.report.minsup).map_err(json)?
    )?;
    for (k, (_, items, count)) in mined.itemsets().enumerate() {
        out.write_all(if k == 0 { b"\n" } else { b",\n" })?;
        let row = ItemsetOut {
            items: items.iter().map(|&i| baskets.label(i)).collect(),
            count,
            support: f64::from(count) / n.max(1) as f64,
        };
        serde_json::to_writer(&mut out, &row).map_err(json)?;
    }
    out.write_all(b"],\n\"rules\": [")?;
    for (k, rule) in mined.rules.iter().enumerate() {
        out.write_all(if k == 0 { b"\n" } else { b",\n" })?;
        let items = mined.frequent.items(rule.itemset as usize);
        let row = RuleOut {
            lhs: items
                .iter()
                .filter(|&&i| i != rule.rhs)
                .map(|&i| baskets.label(i))
                .collect(),
            rhs: baskets.label(rule.rhs),
            count: rule.count,
            lhs_count: rule.lhs_count,
            rhs_count: rule.rhs_count,
            metrics: rule.metrics(n),
        };
        serde_json::to_writer(&mut out, &row).map_err(json)?;
    }
    out.write_all(b"]}\n")?;
    out.flush()
}
