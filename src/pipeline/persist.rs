//! Phase 4: the run and its bundles, written in one transaction.

use super::context::Context;
use super::{GenerateOptions, PipelineError, RunSummary};
use crate::domain::Bundle;
use crate::store::{BundleRecord, RunRecord, Store};

pub async fn save(
    store: &dyn Store,
    run: &RunSummary,
    bundles: &[Bundle],
    ctx: &Context,
    options: &GenerateOptions,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), PipelineError> {
    let json = |v: serde_json::Value| v.to_string();
    let record = RunRecord {
        run_id: run.run_id.clone(),
        store_id: run.store_id.clone(),
        status: "succeeded".into(),
        started_at,
        finished_at,
        as_of: ctx.as_of,
        config: json(serde_json::json!({
            "seed": options.seed,
            "weights": run.weights,
            "weights_overridden": run.weights_overridden,
            "objectives": options.objectives,
            "max_bundles": options.max_bundles,
            "as_of": run.as_of,
        })),
        timings: serde_json::to_string(&run.timings).unwrap_or_default(),
        counts: json(serde_json::json!({
            "candidates": run.candidates,
            "cells": run.cells,
            "optimize": run.optimize,
            "bundles": bundles.len(),
            "llm": run.llm,
        })),
    };
    let rows: Vec<BundleRecord> = bundles
        .iter()
        .map(|b| BundleRecord {
            bundle_id: b.id.clone(),
            objective: b.objective.as_str().to_owned(),
            bundle_type: b.bundle_type.as_str().to_owned(),
            score: b.score.total,
            body: serde_json::to_string(b).unwrap_or_default(),
        })
        .collect();
    store.save_run(&record, &rows).await?;
    Ok(())
}
