//! Phase 4: a finished run and its bundles, written in one transaction. The caller
//! decides whether and when (a job saves when it ends, a cohort comparison never), and
//! under which id ([`RunOutput::with_id`]); [`records`] gives the rows for a caller
//! that writes them inside a transaction of its own.

use super::summary::RunOutput;
use crate::domain::Bundle;
use crate::store::{RunRecord, Store, StoreError};

/// The rows of a run: its record and one per bundle.
pub fn records(out: &RunOutput) -> (RunRecord, Vec<Bundle>) {
    let run = &out.run;
    let json = |v: serde_json::Value| v.to_string();
    let record = RunRecord {
        run_id: run.run_id.clone(),
        store_id: run.store_id.clone(),
        status: "succeeded".into(),
        started_at: out.started_at,
        finished_at: out.finished_at,
        as_of: out.as_of,
        config: json(serde_json::json!({
            "seed": run.seed,
            "weights": run.weights,
            "weights_overridden": run.weights_overridden,
            "objectives": run.variant.objectives,
            "max_bundles": run.variant.max_bundles,
            "as_of": run.as_of,
            "variant": run.variant,
        })),
        timings: serde_json::to_string(&run.timings).unwrap_or_default(),
        counts: json(serde_json::json!({
            "candidates": run.candidates,
            "cells": run.cells,
            "optimize": run.optimize,
            "bundles": out.bundles.len(),
            "llm": run.llm,
        })),
        summary: serde_json::to_string(run).unwrap_or_default(),
        report_html: super::output::report(out),
    };
    (record, out.bundles.clone())
}

/// Stores a finished run under its id, with its bundles, in one transaction.
pub async fn save(store: &dyn Store, out: &RunOutput) -> Result<(), StoreError> {
    let (record, _) = records(out);
    store.save_run(&record, &out.bundles).await
}
