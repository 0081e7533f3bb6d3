//! The endpoints the predecessor's Shopify app calls (`/api/shopify/*`), with the
//! request and response shapes its front end sends and reads, so a merchant can
//! point the app at bundleforge without changing it. They sit behind our auth (a
//! bearer token: the admin token, or the store's own), and `shop_id` is our store id
//! or the shop's domain.
//!
//! The app uploads CSVs as strings in JSON, grouped by a `runId`: the catalog
//! (`catalog_joined`), its `variants`, `inventory_levels` and `orders`. Each goes
//! through the same reader as `PUT /v1/stores/{store}/…` (a catalog and its parts
//! are kept together in the same way). As in the predecessor, once a run holds a
//! completed catalog, variants and orders upload, a generate job starts, and the
//! orders upload answers for it in `status` and the progress stream.
//!
//! Errors keep the predecessor's shape, `{"error": "message"}`.
//!
//! The handlers are in `uploads.rs`, `status.rs` (status and the progress stream) and
//! `recommendations.rs` (recommendations and approve); `shop.rs` resolves a `shop_id`
//! and `error.rs` holds the error they all answer with. This file only declares them
//! and names what the route table and the router call, so no file here imports the
//! folder's own module.

mod error;
mod recommendations;
mod shop;
mod status;
mod uploads;

pub use error::AppApiError;
pub use recommendations::{approve, recommendations};
pub use status::{progress_stream, status};
pub use uploads::{upload, upload_batch};

/// Where the predecessor's endpoints are: errors under it keep its shape.
pub const PATH_PREFIX: &str = "/api/shopify/";
