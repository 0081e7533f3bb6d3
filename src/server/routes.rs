//! Every route of the API in one table: each handler with what it takes and answers.
//! The router is built from it and so is `/openapi.json` (OpenAPI 3.1), so the
//! document cannot miss a route or name one that does not exist.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::{Map, Value, json};

use super::extract::ApiPath;
use super::runs::RunFile;
use super::uploads::Upload;
use super::{AppState, catalog, compat, jobs, runs, uploads};
use crate::domain::{BundleType, Objective};
use crate::store::Decision;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No token (health, metrics, the API document).
    Open,
    /// The store's own token or the admin token.
    Store,
    /// The admin token only.
    Admin,
    /// No token: a Shopify signature (HMAC-SHA256 of the body with the app's secret).
    ShopifySignature,
}

/// What a route takes as its body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// JSON matching a component schema.
    Json(&'static str),
    /// JSON carrying this many files as strings (the predecessor's uploads): limited as
    /// that many uploads, not as a small JSON body.
    JsonFiles(&'static str, usize),
    /// A file as `ingest` reads it: CSV or JSON, gzip or plain.
    File,
}

/// A route as the API document describes it.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub auth: Auth,
    pub body: Body,
    /// Query parameters: name and what it means.
    pub query: &'static [(&'static str, &'static str)],
    /// The success answer: status, media type and component schema (`None`: no body
    /// or not JSON).
    pub ok: (u16, &'static str, Option<&'static str>),
}

type Handler = MethodRouter<Arc<AppState>>;

const JSON: &str = "application/json";
const PAGE: &[(&str, &str)] = &[
    ("offset", "Items to skip (default 0)."),
    ("limit", "Items per page, 1 to 500 (default 50)."),
];
const BUNDLE_FILTER: &[(&str, &str)] = &[
    ("objective", "Only bundles of this objective."),
    ("type", "Only bundles of this bundle type."),
    (
        "product",
        "Only bundles holding this variant id, product id or SKU.",
    ),
];

fn doc(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: Auth,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        tag,
        auth,
        body: Body::None,
        query: &[],
        ok: (200, JSON, None),
    }
}

impl RouteDoc {
    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    fn ok(mut self, status: u16, media: &'static str, schema: Option<&'static str>) -> Self {
        self.ok = (status, media, schema);
        self
    }
}

fn upload(u: Upload) -> Handler {
    put(
        move |State(state): State<Arc<AppState>>,
              ApiPath(store): ApiPath<String>,
              headers: HeaderMap,
              body: axum::body::Body| uploads::put(u, state, store, headers, body),
    )
}

fn decision(d: Decision) -> Handler {
    post(
        move |State(state): State<Arc<AppState>>,
              ApiPath(ids): ApiPath<(String, String, String)>,
              headers: HeaderMap,
              body: axum::body::Bytes| runs::decide(d, state, ids, headers, body),
    )
}

fn run_file(which: RunFile) -> Handler {
    get(
        move |State(state): State<Arc<AppState>>,
              ApiPath((store, run)): ApiPath<(String, String)>,
              headers: HeaderMap| runs::file(which, state, store, run, headers),
    )
}

/// Every route: its document and its handler.
pub fn table() -> Vec<(RouteDoc, Handler)> {
    use Auth::*;
    let uploads = [
        (
            Upload::Catalog,
            "/v1/stores/{store}/catalog",
            "Upload a catalog (a products file, or the first part of a split export); starts a new set of parts.",
        ),
        (
            Upload::Variants,
            "/v1/stores/{store}/variants",
            "Upload the variants of a split catalog export (read with the stored catalog).",
        ),
        (
            Upload::Inventory,
            "/v1/stores/{store}/inventory",
            "Upload inventory levels (read with the stored catalog and variants).",
        ),
        (
            Upload::Orders,
            "/v1/stores/{store}/orders",
            "Upload orders in any shape `ingest` reads.",
        ),
    ];
    let files = [
        (
            RunFile::Report,
            "/v1/stores/{store}/runs/{run}/report.html",
            "text/html",
            "The run's report page.",
        ),
        (
            RunFile::Csv,
            "/v1/stores/{store}/runs/{run}/bundles.csv",
            "text/csv",
            "The run's bundles as CSV.",
        ),
        (
            RunFile::Shopify,
            "/v1/stores/{store}/runs/{run}/shopify.json",
            JSON,
            "The run's bundles as Shopify bundle and discount input.",
        ),
        (
            RunFile::Json,
            "/v1/stores/{store}/runs/{run}/bundles.json",
            JSON,
            "The run as `generate` writes bundles.json.",
        ),
    ];
    let mut t: Vec<(RouteDoc, Handler)> = vec![
        (doc("get", "/healthz", "service", "The process is up.", Open), get(super::healthz)),
        (
            doc("post", "/webhooks/shopify", "webhooks", "A Shopify webhook, signed with X-Shopify-Hmac-Sha256: kept, acknowledged, applied in the background (a replay of its X-Shopify-Webhook-Id changes nothing). Once the store's app was uninstalled, only the compliance topics are taken (others: 200 `refused`).", ShopifySignature)
                .body(Body::Json("Webhook")),
            post(super::webhooks::receive),
        ),
        (
            doc("get", "/readyz", "service", "Ready: the database answers with its migrations applied and the model files are present (503 otherwise).", Open),
            get(super::readyz),
        ),
        (
            doc("get", "/metrics", "service", "Prometheus metrics (text exposition format).", Open)
                .ok(200, "text/plain", None),
            get(super::metrics),
        ),
        (doc("get", "/openapi.json", "service", "This document.", Open), get(openapi)),
        (
            doc("get", "/docs", "service", "A page listing the API's routes.", Open).ok(200, "text/html", None),
            get(api_page),
        ),
        (
            doc("post", "/v1/stores/{store}/jobs", "jobs", "Trigger a run of the store's bundles. One job per store at a time: while one is queued or running it is returned (200), unless `queue=1`. 409 once the store's app was uninstalled.", Store)
                .body(Body::Json("JobRequest"))
                .query(&[("queue", "1: queue behind the store's running job instead of returning it.")])
                .ok(202, JSON, Some("Job")),
            post(jobs::trigger),
        ),
        (doc("get", "/v1/jobs/{id}", "jobs", "A job: its state, per-phase progress, attempts, error and worker.", Store).ok(200, JSON, Some("Job")), get(jobs::get)),
        (doc("delete", "/v1/jobs/{id}", "jobs", "Cancel a job (a running one through its run's cancel token).", Store).ok(202, JSON, Some("Job")), delete(jobs::cancel)),
        (
            doc("get", "/v1/jobs/{id}/events", "jobs", "The job document as Server-Sent Events (`job`), each time it changes, until it ends.", Store)
                .ok(200, "text/event-stream", None),
            get(jobs::events),
        ),
        (doc("get", "/v1/stores/{store}/products", "catalog", "The store's catalog, a page at a time.", Store).query(PAGE).ok(200, JSON, Some("Page")), get(catalog::products)),
        (doc("get", "/v1/stores/{store}/products/{id}", "catalog", "A product by variant id, SKU or product id.", Store), get(catalog::product)),
        (
            doc("get", "/v1/stores/{store}/stats", "catalog", "The store's statistics, as `stats --json` prints them.", Store)
                .query(&[("as_of", "End the windows on this day (YYYY-MM-DD).")]),
            get(catalog::stats),
        ),
        (doc("get", "/v1/stores/{store}/runs", "runs", "The store's saved runs, latest first.", Store).query(PAGE).ok(200, JSON, Some("Page")), get(runs::list)),
        (doc("get", "/v1/stores/{store}/runs/latest", "runs", "The store's latest run, as `generate --json` prints it.", Store).query(BUNDLE_FILTER).ok(200, JSON, Some("RunDocument")), get(runs::latest)),
        (doc("get", "/v1/stores/{store}/runs/{run}", "runs", "A run by id (or `latest`), as `generate --json` prints it.", Store).query(BUNDLE_FILTER).ok(200, JSON, Some("RunDocument")), get(runs::one)),
        (doc("get", "/v1/stores/{store}/runs/{run}/bundles", "runs", "A run's bundles, filtered.", Store).query(BUNDLE_FILTER), get(runs::bundles)),
        (
            doc("post", "/v1/stores/{store}/runs/{run}/bundles/{id}/approve", "runs", "Approve a bundle: later runs keep it while it is still valid.", Store)
                .body(Body::Json("DecisionRequest"))
                .ok(200, JSON, Some("Decision")),
            decision(Decision::Approved),
        ),
        (
            doc("post", "/v1/stores/{store}/runs/{run}/bundles/{id}/reject", "runs", "Reject a bundle: later runs never publish it.", Store)
                .body(Body::Json("DecisionRequest"))
                .ok(200, JSON, Some("Decision")),
            decision(Decision::Rejected),
        ),
        (doc("post", "/v1/admin/stores/{store}/tokens", "admin", "Create a token for one store; the token is shown once. For a store whose app was uninstalled this is its installation again (`reinstated`: true).", Admin).ok(201, JSON, None), post(super::create_token)),
        (doc("delete", "/v1/admin/tokens/{id}", "admin", "Revoke a store token.", Admin).ok(204, JSON, None), delete(super::revoke_token)),
        (
            doc("put", "/v1/admin/stores/{store}/shop-domain", "admin", "Set the shop a store is (example.myshopify.com), for webhooks.", Admin)
                .body(Body::Json("ShopDomain")),
            put(super::set_shop_domain),
        ),
        (doc("get", "/v1/admin/webhooks/{id}", "admin", "A kept webhook and how it was applied (a data request's result: what we hold on the customer).", Admin), get(super::webhooks::inspect)),
        (doc("get", "/v1/admin/shops/{domain}", "admin", "Which store a shop is, as webhooks resolve it.", Admin), get(super::shop_store)),
    ];
    // The predecessor's Shopify app, as its front end calls it.
    t.extend([
        (
            doc("post", "/api/shopify/upload", "shopify-app", "The predecessor app's upload: one CSV as a string in JSON (`shopId`, `csvType`, `csvData`, `runId`); a run's orders upload with its catalog and variants done starts a job.", Store)
                .body(Body::JsonFiles("AppUpload", 1)),
            post(compat::upload),
        ),
        (
            doc("post", "/api/shopify/upload-batch", "shopify-app", "The predecessor app's batch upload: catalog, variants, inventory and orders CSVs of one run, read in that order; starts the job.", Store)
                .body(Body::JsonFiles("AppUploadBatch", 4)),
            post(compat::upload_batch),
        ),
        (
            doc("get", "/api/shopify/status/{id}", "shopify-app", "An app upload (or a run's orders upload) and its job: processing, generating_bundles, completed or failed.", Store),
            get(compat::status),
        ),
        (
            doc("get", "/api/shopify/progress/{id}/stream", "shopify-app", "An app upload's progress as Server-Sent Events: `progress`, then `complete`; `error` when it never appears.", Store)
                .ok(200, "text/event-stream", None),
            get(compat::progress_stream),
        ),
        (
            doc("get", "/api/shopify/recommendations/{shop_id}", "shopify-app", "The shop's latest bundles as the app's recommendations, best first (`shop_id`: store id or shop domain).", Store)
                .query(&[("approved", "true or false: only approved, or only not approved."), ("limit", "At most this many (default 20).")]),
            get(compat::recommendations),
        ),
        (
            doc("post", "/api/shopify/recommendations/{id}/approve", "shopify-app", "Approve a recommendation of the shop's latest run.", Store)
                .query(&[("shop_id", "The shop (store id or shop domain); required.")]),
            post(compat::approve),
        ),
    ]);
    for (u, path, summary) in uploads {
        t.push((
            doc("put", path, "uploads", summary, Store)
                .body(Body::File)
                .ok(200, JSON, Some("IngestReport")),
            upload(u),
        ));
    }
    for (f, path, media, summary) in files {
        t.push((
            doc("get", path, "runs", summary, Store).ok(200, media, None),
            run_file(f),
        ));
    }
    t
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The error answers a route may give, by what it takes.
fn error_responses(r: &RouteDoc, responses: &mut Map<String, Value>) {
    if r.auth == Auth::ShopifySignature {
        responses.insert(
            "401".into(),
            error_response("No webhook secret set, or the signature does not match."),
        );
    } else if r.auth != Auth::Open {
        responses.insert("401".into(), error_response("No valid bearer token."));
        responses.insert(
            "403".into(),
            error_response("The token is not for this store, or this route needs the admin token."),
        );
        responses.insert(
            "429".into(),
            error_response(
                "Over the token's request rate, or too many failed authentications from this address: see Retry-After.",
            ),
        );
    }
    if r.path.contains('{') {
        responses.insert(
            "404".into(),
            error_response("No such store, job, run, bundle or product."),
        );
    }
    if !matches!(r.body, Body::None) || !r.query.is_empty() || r.path.contains('{') {
        responses.insert("400".into(), error_response("A malformed request."));
    }
    if !matches!(r.body, Body::None) || !r.query.is_empty() {
        responses.insert(
            "422".into(),
            error_response("A request that cannot run (options, an unreadable file)."),
        );
    }
    if matches!(r.body, Body::Json("ShopDomain")) {
        responses.insert(
            "409".into(),
            error_response("The shop is another store's, by its domain or by its name."),
        );
    }
    if !matches!(r.body, Body::None) {
        responses.insert(
            "413".into(),
            error_response(match (r.auth, r.body) {
                (Auth::ShopifySignature, _) => {
                    "The body is larger than server.webhook_max_body_kb."
                }
                (_, Body::File | Body::JsonFiles(..)) => {
                    "The body is larger than server.max_body_mb."
                }
                _ => "The body is larger than server.max_json_body_kb.",
            }),
        );
        responses.insert(
            "408".into(),
            error_response(match (r.auth, r.body) {
                (Auth::ShopifySignature, _) | (_, Body::Json(_) | Body::None) => {
                    "The body did not arrive whole within server.body_timeout_seconds."
                }
                (_, Body::File | Body::JsonFiles(..)) => {
                    "The body stalled: less than 1 KiB came in server.body_timeout_seconds."
                }
            }),
        );
    }
}

/// The OpenAPI 3.1 document of the routes.
pub fn document(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let mut parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(r.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": "string"}})
        }));
        let (status, media, schema) = r.ok;
        let content = match schema {
            Some(s) => json!({media: {"schema": {"$ref": format!("#/components/schemas/{s}")}}}),
            None => json!({media: {}}),
        };
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            if status == 204 {
                json!({"description": "Done."})
            } else {
                json!({"description": "Success.", "content": content})
            },
        );
        error_responses(r, &mut responses);
        let mut op = json!({
            "operationId": operation_id(r),
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if matches!(r.auth, Auth::Open | Auth::ShopifySignature) {
            op["security"] = json!([]);
        }
        match r.body {
            Body::None => {}
            Body::Json(schema) | Body::JsonFiles(schema, _) => {
                op["requestBody"] = json!({
                    "required": false,
                    "content": {JSON: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
                });
            }
            Body::File => {
                op["requestBody"] = json!({
                    "required": true,
                    "description": "CSV or JSON in any shape `ingest` reads, gzip or plain.",
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/json": {},
                        "application/gzip": {"schema": {"type": "string", "contentEncoding": "base64"}},
                        "application/octet-stream": {"schema": {"type": "string", "contentEncoding": "base64"}}
                    }
                });
            }
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bundleforge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Bundle and deal generation: upload a store's catalog and orders, trigger a run, follow it, read and approve its bundles."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn operation_id(r: &RouteDoc) -> String {
    let mut id = r.method.to_owned();
    for seg in r.path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn schemas() -> Value {
    let objectives: Vec<&str> = Objective::ALL.iter().map(|o| o.as_str()).collect();
    let types: Vec<&str> = BundleType::ALL.iter().map(|t| t.as_str()).collect();
    let time = json!({"type": ["string", "null"], "format": "date-time",
                      "description": "RFC 3339 UTC with milliseconds."});
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["kind", "message"],
                "properties": {
                    "kind": {"type": "string", "examples": ["bad_input", "not_found", "unauthorized", "forbidden", "method_not_allowed", "conflict", "uninstalled", "rate_limited", "too_large", "timeout", "retryable", "internal"]},
                    "message": {"type": "string"},
                    "details": {}
                }
            }}
        },
        "JobRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "objectives": {"type": "array", "items": {"enum": objectives}},
                "bundle_types": {"type": "array", "items": {"enum": types}},
                "weights": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3,
                            "description": "α, β, γ (LLM, transactional, business), summing to 1."},
                "max_bundles": {"type": "integer", "minimum": 1},
                "seed": {"type": "integer", "minimum": 0},
                "as_of": {"type": "string", "format": "date",
                          "description": "A day from 1970-01-01 to 2100-12-31; another is a 422."}
            }
        },
        "RunRequest": {
            "type": "object",
            "description": "The run a job asked for: phase 0 (`prepare`), what the run varies (`variant`) and the run's id (the job's).",
            "properties": {
                "prepare": {"type": "object", "properties": {
                    "as_of": {"type": ["string", "null"], "format": "date"},
                    "seed": {"type": "integer", "minimum": 0},
                    "orders": {"description": "`all`, `none`, or `{\"last\": N}`."},
                    "prior": {"enum": ["all", "not_from_this_store"]}
                }},
                "variant": {"type": "object", "properties": {
                    "weights": {"type": ["array", "null"], "items": {"type": "number"}},
                    "objectives": {"type": "array", "items": {"enum": objectives}},
                    "bundle_types": {"type": "array", "items": {"enum": types}},
                    "max_bundles": {"type": ["integer", "null"]},
                    "pricing": {"type": "object"},
                    "sources": {"type": "object"},
                    "seed": {"type": "integer", "minimum": 0},
                    "merchant": {"type": "object", "description": "Whether the store's pins and approvals are honoured (both, when absent)."}
                }},
                "run_id": {"type": "string"}
            }
        },
        "Job": {
            "type": "object",
            "required": ["id", "store", "state", "phases", "attempts", "created_at", "run_id"],
            "properties": {
                "id": {"type": "string"},
                "store": {"type": "string"},
                "state": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                "request": {"$ref": "#/components/schemas/RunRequest"},
                "phases": {"type": "array", "items": {"type": "object", "properties": {
                    "phase": {"type": "string"}, "state": {"type": "string"},
                    "done": {"type": "integer"}, "total": {"type": ["integer", "null"]},
                    "seconds": {"type": ["number", "null"]}, "counts": {"type": "object"}
                }}},
                "attempts": {"type": "integer"},
                "max_attempts": {"type": "integer"},
                "error": {"type": ["object", "null"], "properties": {"kind": {"type": "string"}, "message": {"type": ["string", "null"]}}},
                "worker": {"type": ["string", "null"], "description": "host:pid:port of the process that ran it."},
                "cancel_requested": {"type": "boolean"},
                "created_at": time.clone(),
                "started_at": time.clone(),
                "finished_at": time.clone(),
                "run_id": {"type": "string"}
            }
        },
        "Page": {
            "type": "object",
            "required": ["items", "total", "offset", "limit"],
            "properties": {
                "items": {"type": "array", "items": {"type": "object"}},
                "total": {"type": "integer"},
                "offset": {"type": "integer"},
                "limit": {"type": "integer"},
                "next_offset": {"type": ["integer", "null"]}
            }
        },
        "RunDocument": {
            "type": "object",
            "required": ["run", "bundles"],
            "properties": {
                "run": {"type": "object"},
                "bundles": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"},
                    "objective": {"enum": objectives},
                    "bundle_type": {"enum": types},
                    "currency": {"type": "string"},
                    "list_price_minor": {"type": "integer"},
                    "final_price_minor": {"type": "integer"},
                    "decision": {"$ref": "#/components/schemas/Decision"}
                }}}
            }
        },
        "Webhook": {
            "type": "object",
            "description": "The resource Shopify sends for the topic (X-Shopify-Topic): a product, an order, an inventory level, …"
        },
        "AppUpload": {
            "type": "object",
            "required": ["shopId", "csvType", "csvData"],
            "properties": {
                "shopId": {"type": "string", "description": "Store id or shop domain."},
                "csvType": {"enum": ["catalog_joined", "products", "catalog", "variants", "inventory_levels", "inventory", "orders"]},
                "csvData": {"type": "string"},
                "runId": {"type": "string"},
                "triggerPipeline": {"type": "boolean", "description": "On an orders upload: start the job over the stored catalog even when the run lacks its catalog and variants."},
                "currency": {"type": "string"}
            }
        },
        "AppUploadBatch": {
            "type": "object",
            "required": ["shopId", "catalogCsv", "variantsCsv", "inventoryCsv", "ordersCsv"],
            "properties": {
                "shopId": {"type": "string"},
                "runId": {"type": "string"},
                "catalogCsv": {"type": "string"},
                "variantsCsv": {"type": "string"},
                "inventoryCsv": {"type": "string"},
                "ordersCsv": {"type": "string"},
                "currency": {"type": "string"}
            }
        },
        "ShopDomain": {
            "type": "object",
            "additionalProperties": false,
            "required": ["shop_domain"],
            "properties": {"shop_domain": {"type": "string", "examples": ["example.myshopify.com"]}}
        },
        "DecisionRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"by": {"type": "string", "maxLength": 200, "description": "Who decided (default: the token)."}}
        },
        "Decision": {
            "type": "object",
            "properties": {
                "decision": {"enum": ["approved", "rejected"]},
                "bundle_id": {"type": "string"},
                "run_id": {"type": "string"},
                "decided_by": {"type": "string"},
                "decided_at": time
            }
        },
        "IngestReport": {
            "type": "object",
            "description": "The report `ingest --json` prints.",
            "properties": {
                "store_id": {"type": "string"},
                "rows_read": {"type": "integer"},
                "rows_kept": {"type": "integer"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "file": {"type": "string"}, "line": {"type": "integer"},
                    "column": {"type": "string"}, "value": {"type": "string"}, "reason": {"type": "string"}
                }}},
                "error_count": {"type": "integer"},
                "rejected_rows_not_listed": {"type": "integer", "description": "Rejected rows counted but not kept for a rejected-rows file (past `ingest.max_rejected_rows_kept`)."}
            }
        }
    })
}

/// `GET /openapi.json`.
async fn openapi() -> axum::Json<Value> {
    let routes: Vec<RouteDoc> = table().into_iter().map(|(d, _)| d).collect();
    axum::Json(document(&routes))
}

/// `GET /docs`: the routes on one page (no script, no external asset).
async fn api_page() -> axum::response::Html<String> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut rows = String::new();
    for (r, _) in table() {
        let auth = match r.auth {
            Auth::Open => "none",
            Auth::Store => "store or admin token",
            Auth::Admin => "admin token",
            Auth::ShopifySignature => "Shopify HMAC signature",
        };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{auth}</td></tr>",
            r.method.to_ascii_uppercase(),
            esc(r.path),
            esc(r.summary)
        ));
    }
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bundleforge API</title>\
         <style>body{{font:15px system-ui,sans-serif;margin:2em}}td{{padding:.3em .8em;border-bottom:1px solid #ddd;vertical-align:top}}</style></head>\
         <body><h1>bundleforge API</h1><p>Bearer tokens (<code>Authorization: Bearer TOKEN</code>); errors are \
         <code>{{\"error\": {{\"kind\", \"message\", \"details\"}}}}</code>. The machine-readable document: \
         <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>\
         <table><tr><th>Method</th><th>Path</th><th>What</th><th>Token</th></tr>{rows}</table></body></html>"
    ))
}
