//! Product and order upserts: read as `ingest` reads Shopify's JSON, only when newer
//! than what was applied to that resource (last write wins by `updated_at`; an update
//! without a readable one is older than any that has one); an update for a resource we
//! do not hold creates it. A run of them of one store is applied as one ingest.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::payload::{UNDATED, document, id_of, version_of};
use super::{Applied, SyncError, apply, body_erased, refused_after_uninstall, upsert_kind};
use crate::domain::StoreId;
use crate::ingest::{FileRole, IngestSource, IngestSources, NoProgress};
use crate::services::Services;
use crate::store::{WebhookOutcome, WebhookRecord};

/// A product or order upsert of a batch, parsed.
struct Upsert {
    kind: &'static str,
    id: String,
    /// Its version ([`version_of`]).
    updated_at: i64,
    /// Taken by the batch's one ingest (a failed one applies each webhook from its
    /// record again).
    body: Value,
}

/// Each webhook's result so far, and its parsed upsert while it is still to apply.
type Slots = (Vec<Option<Result<Applied, SyncError>>>, Vec<Option<Upsert>>);

/// An upsert older than (or as old as) what was applied to its resource: kept, not
/// applied (Shopify retries and delivers out of order).
fn stale(kind: &str, id: &str, at: i64) -> Applied {
    let note = if at == UNDATED {
        format!(
            "{kind} {id}: the update has no readable updated_at, and another was applied already"
        )
    } else {
        format!("{kind} {id}: an update as new or newer was applied already")
    };
    Applied::new(WebhookOutcome::Stale, note)
}

/// A run of product and order upserts of one store in one ingest: per resource, only
/// the newest of the run and only when newer than what was applied; products are
/// read before orders (an order's lines join its products either way, and each
/// resource keeps its own order). When the ingest keeps less than everything, each
/// is applied alone instead, so every webhook gets its own outcome; the upserts are
/// idempotent, so what the shared ingest wrote is written again unchanged.
pub(super) async fn apply_upserts(
    services: &Services,
    run: &[WebhookRecord],
) -> Vec<Result<Applied, SyncError>> {
    let Some(store_id) = run[0]
        .store_id
        .as_deref()
        .and_then(|s| StoreId::parse(s).ok())
    else {
        return apply_each(services, run).await;
    };
    // Every webhook of the run is an upsert of this store: refused alike.
    match refused_after_uninstall(services, &store_id, &run[0].topic).await {
        Ok(None) => {}
        Ok(Some(refused)) => return run.iter().map(|_| Ok(refused.clone())).collect(),
        // One at a time: each then fails with the error, or applies.
        Err(_) => return apply_each(services, run).await,
    }
    let (mut results, mut bodies) = newest_per_resource(run);
    drop_applied(services, &store_id, &mut results, &mut bodies).await;
    let live: Vec<usize> = (0..run.len()).filter(|&n| bodies[n].is_some()).collect();
    let together = match live.len() {
        0 => Some(0),
        1 => None,
        _ => ingest_together(services, &store_id, &mut bodies).await,
    };
    match together {
        Some(kept) => {
            for &n in &live {
                if let Some(u) = &bodies[n] {
                    results[n] = Some(take_version(services, &store_id, u, kept, live.len()).await);
                }
            }
        }
        None => {
            for &n in &live {
                results[n] = Some(apply(services, &run[n]).await);
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(SyncError::NotApplied)))
        .collect()
}

/// Each webhook of a run applied alone, in order.
async fn apply_each(services: &Services, run: &[WebhookRecord]) -> Vec<Result<Applied, SyncError>> {
    let mut out = Vec::with_capacity(run.len());
    for w in run {
        out.push(apply(services, w).await);
    }
    out
}

/// Each webhook parsed, keeping the newest of each resource (a tie goes to the later);
/// an older one of the same batch is stale at once.
fn newest_per_resource(run: &[WebhookRecord]) -> Slots {
    let mut results: Vec<Option<Result<Applied, SyncError>>> =
        (0..run.len()).map(|_| None).collect();
    let mut bodies: Vec<Option<Upsert>> = (0..run.len()).map(|_| None).collect();
    let mut newest: HashMap<(&'static str, String), usize> = HashMap::new();
    let newer_in_batch = |kind: &str, id: &str| {
        Ok(Applied::new(
            WebhookOutcome::Stale,
            format!("{kind} {id}: a newer update came in the same batch"),
        ))
    };
    for (n, w) in run.iter().enumerate() {
        let kind = upsert_kind(&w.topic).unwrap_or("product");
        if w.body.is_empty() {
            results[n] = Some(Ok(body_erased()));
            continue;
        }
        let body: Value = match serde_json::from_slice(&w.body) {
            Ok(v) => v,
            Err(e) => {
                results[n] = Some(Err(e.into()));
                continue;
            }
        };
        let Some(id) = id_of(&body) else {
            results[n] = Some(Err(SyncError::NoId(kind)));
            continue;
        };
        let at = version_of(&body);
        if let Some(&m) = newest.get(&(kind, id.clone())) {
            let older = bodies[m].as_ref().map_or(UNDATED, |b| b.updated_at);
            if at < older {
                results[n] = Some(newer_in_batch(kind, &id));
                continue;
            }
            results[m] = Some(newer_in_batch(kind, &id));
            bodies[m] = None;
        }
        newest.insert((kind, id.clone()), n);
        bodies[n] = Some(Upsert {
            kind,
            id,
            updated_at: at,
            body,
        });
    }
    (results, bodies)
}

/// Leaves out the upserts older than what was applied to their resource (stale).
async fn drop_applied(
    services: &Services,
    store_id: &StoreId,
    results: &mut [Option<Result<Applied, SyncError>>],
    bodies: &mut [Option<Upsert>],
) {
    for n in 0..bodies.len() {
        let Some(Upsert {
            kind,
            id,
            updated_at: at,
            ..
        }) = &bodies[n]
        else {
            continue;
        };
        match services
            .store
            .resource_version(store_id, &format!("{kind}:{id}"))
            .await
        {
            Ok(Some(v)) if v >= *at => {
                results[n] = Some(Ok(stale(kind, id, *at)));
                bodies[n] = None;
            }
            Ok(_) => {}
            Err(e) => {
                results[n] = Some(Err(e.into()));
                bodies[n] = None;
            }
        }
    }
}

/// Records an upsert of a shared ingest as its resource's version: applied, or stale
/// when a newer one was taken meanwhile.
async fn take_version(
    services: &Services,
    store_id: &StoreId,
    u: &Upsert,
    kept: u64,
    together: usize,
) -> Result<Applied, SyncError> {
    let taken = services
        .store
        .take_version(store_id, &format!("{}:{}", u.kind, u.id), u.updated_at)
        .await?;
    Ok(if taken {
        Applied::new(
            WebhookOutcome::Applied,
            format!(
                "{} {}: applied with {} others in one ingest ({kept} rows kept)",
                u.kind,
                u.id,
                together - 1
            ),
        )
    } else {
        stale(u.kind, &u.id, u.updated_at)
    })
}

/// One ingest of the live bodies, taken from them: products as one catalog document,
/// orders as one orders document. `Some(rows kept)` when every row was kept, else
/// `None` (each is then applied alone, with its own outcome).
async fn ingest_together(
    services: &Services,
    store_id: &StoreId,
    bodies: &mut [Option<Upsert>],
) -> Option<u64> {
    let (mut products, mut orders) = (Vec::new(), Vec::new());
    for b in bodies.iter_mut().flatten() {
        match b.kind {
            "product" => products.push(std::mem::take(&mut b.body)),
            "order" => orders.push(std::mem::take(&mut b.body)),
            _ => {}
        }
    }
    let mut sources = Vec::new();
    if !products.is_empty() {
        let doc = document("products", Value::Array(products));
        sources.push(IngestSource::json(FileRole::Catalog, "products.json", doc));
    }
    if !orders.is_empty() {
        let doc = document("orders", Value::Array(orders));
        sources.push(IngestSource::json(FileRole::Orders, "orders.json", doc));
    }
    let sources = IngestSources::new(sources).ok()?;
    let outcome = crate::app::ingest(
        services.store.as_ref(),
        store_id,
        sources,
        &services.settings,
        Arc::new(NoProgress),
    )
    .await
    .ok()?;
    let report = &outcome.report;
    (report.error_count == 0 && report.rejected_total() == 0).then_some(report.rows_kept)
}

/// A product or order created or updated: read as `ingest` reads Shopify's JSON (the
/// document `{kind}.json`, as in `{"product": …}`), when newer than what was applied.
pub(super) async fn upsert(
    services: &Services,
    store_id: &StoreId,
    kind: &'static str,
    role: FileRole,
    body: Value,
) -> Result<Applied, SyncError> {
    let id = id_of(&body).ok_or(SyncError::NoId(kind))?;
    let resource = format!("{kind}:{id}");
    let at = version_of(&body);
    let applied = services.store.resource_version(store_id, &resource).await?;
    if applied.is_some_and(|v| v >= at) {
        return Ok(stale(kind, &id, at));
    }
    let source = IngestSource::json(role, format!("{kind}.json"), document(kind, body));
    let outcome = crate::app::ingest(
        services.store.as_ref(),
        store_id,
        IngestSources::from(source),
        &services.settings,
        Arc::new(NoProgress),
    )
    .await?;
    let report = &outcome.report;
    if report.rows_kept == 0 {
        let first = report
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "nothing in it could be kept".into());
        return Err(SyncError::NothingKept { kind, id, first });
    }
    // Recorded once applied: a failed update does not make its own retry stale. An
    // undated one is recorded too, so that a second undated one is stale after it.
    if !services.store.take_version(store_id, &resource, at).await? {
        return Ok(stale(kind, &id, at));
    }
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!(
            "{kind} {id}: {} rows kept, {} rejected",
            report.rows_kept,
            report.rejected_total()
        ),
    ))
}
