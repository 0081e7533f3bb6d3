//! Storage: the `Store` port and its sqlx adapters.
//!
//! SQLite (a file, created on first use) is the embedded default; PostgreSQL joins with
//! the service. Callers see plain domain data: an ingest batch goes in as one
//! transaction, a [`StoreData`] snapshot comes out for statistics and runs.

pub mod app_uploads;
pub mod approvals;
pub mod jobs;
mod sqlite;
pub mod tokens;
pub mod webhooks;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{self, StoreId};
use crate::error::ErrorKind;
use crate::ingest::{CatalogKeys, IngestBatch};

pub use app_uploads::{AppUpload, AppUploadStore};
pub use approvals::{Approval, Decision};
pub use jobs::{JobEnd, JobQueue, JobRecord, JobState, Lease, NewJob};
pub use sqlite::SqliteStore;
pub use tokens::TokenStore;
pub use webhooks::{
    CustomerOrder, CustomerOrderLine, RefundedLine, WebhookOutcome, WebhookRecord, WebhookStore,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database {url} is not one bundleforge can use: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot lock {path} for the database's migrations: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error("unknown store {0:?}: ingest its data first")]
    UnknownStore(String),
    #[error("shop {domain} is store {store:?} already")]
    ShopTaken { domain: String, store: String },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        use StoreError::*;
        match self {
            UnsupportedUrl { .. } | ShopTaken { .. } => ErrorKind::BadInput,
            UnknownStore(_) => ErrorKind::NotFound,
            Connect { .. } | Database(_) | Lock { .. } => ErrorKind::Retryable,
            Migrate(_) | Corrupt(_) => ErrorKind::Internal,
        }
    }
}

/// What an ingest wrote.
#[derive(Debug, Clone, Default)]
pub struct WriteSummary {
    pub products: u64,
    pub orders: u64,
    pub order_lines: u64,
    /// Lines stored earlier without a catalog product that this ingest's catalog joined.
    pub lines_joined_later: u64,
    /// Orders of this ingest with a rejected line that the store had already: kept
    /// as stored, not replaced.
    pub stored_orders_kept: u64,
}

pub use crate::domain::{HistoryLine, HistoryOrder, StoreData};

/// The storage port. One implementation per database; tests use SQLite in a temp dir.
#[async_trait]
pub trait Store: JobQueue + TokenStore + WebhookStore + AppUploadStore + Send + Sync {
    async fn get_store(&self, id: &StoreId) -> Result<Option<domain::Store>, StoreError>;

    /// Every store the database holds, by id.
    async fn store_ids(&self) -> Result<Vec<StoreId>, StoreError>;

    /// The store's catalog keys, for joining order lines of a new ingest.
    async fn catalog_keys(&self, id: &StoreId) -> Result<CatalogKeys, StoreError>;

    /// Writes an ingest in one transaction: upserts by id, so re-ingesting the same
    /// data changes nothing; an order's lines are replaced whole, except that an order
    /// with a rejected line ([`IngestBatch::incomplete_orders`]) never replaces a
    /// stored one.
    async fn write_ingest(
        &self,
        store: &domain::Store,
        batch: &IngestBatch,
    ) -> Result<WriteSummary, StoreError>;

    async fn load(&self, id: &StoreId) -> Result<StoreData, StoreError>;

    /// The source rows of the store's products derived from orders, by variant id (see
    /// [`domain::ProductObservations`]); empty for a store with a catalog.
    async fn product_observations(
        &self,
        id: &StoreId,
    ) -> Result<Vec<domain::ProductObservations>, StoreError>;

    /// Cached embedding vectors of `model_id` for those content hashes that have one.
    async fn cached_embeddings(
        &self,
        model_id: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>, StoreError>;

    /// Stores vectors by (model id, content hash); an existing entry is replaced.
    async fn put_embeddings(
        &self,
        model_id: &str,
        dim: usize,
        items: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError>;

    /// Cached objective tags of `model_id` and `prompt_version` for those content
    /// hashes that have them.
    async fn cached_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError>;

    /// Stores tags by (model id, prompt version, content hash); an existing entry is
    /// replaced.
    async fn put_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        items: &[(String, Vec<String>)],
    ) -> Result<(), StoreError>;

    /// The store's own rules (see [`crate::store_rules`]) as the merchant wrote them;
    /// `None`: none set.
    async fn store_rules(&self, id: &StoreId) -> Result<Option<String>, StoreError>;

    /// Replaces the store's rules (`None` clears them); the store must exist.
    async fn put_store_rules(&self, id: &StoreId, rules: Option<&str>) -> Result<(), StoreError>;

    /// Writes a finished run and its bundles in one transaction.
    async fn save_run(&self, run: &RunRecord, bundles: &[domain::Bundle])
    -> Result<(), StoreError>;

    /// The latest catalog file of a role (`catalog`, `variants`, `inventory`) that a
    /// store uploaded through the API.
    async fn catalog_upload(&self, id: &StoreId, role: &str)
    -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps a catalog file a store uploaded, replacing the one of its role (`None`:
    /// forgets it).
    async fn put_catalog_upload(
        &self,
        id: &StoreId,
        role: &str,
        body: Option<&[u8]>,
    ) -> Result<(), StoreError>;

    /// Records a decision, replacing the store's earlier one on the same bundle id.
    async fn put_approval(&self, approval: &Approval) -> Result<(), StoreError>;

    /// A store's decisions, in the order they were made.
    async fn approvals(&self, id: &StoreId) -> Result<Vec<Approval>, StoreError>;

    /// Sets the shop a store is (a valid [`shop_domain`]); another store's shop is
    /// refused.
    async fn set_shop_domain(&self, id: &StoreId, domain: &str) -> Result<(), StoreError>;

    /// The store a shop is: the one whose shop domain it is set to, else store NAME
    /// for `NAME.myshopify.com` when that store has no domain set.
    async fn store_for_shop(&self, domain: &str) -> Result<Option<StoreId>, StoreError>;

    /// A page of a store's catalog, in variant id order.
    async fn products_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<domain::Product>, StoreError>;

    /// A store's product by variant id, else SKU, else product id (its first
    /// variant), as `similar --product` takes it.
    async fn find_product(
        &self,
        id: &StoreId,
        key: &str,
    ) -> Result<Option<domain::Product>, StoreError>;

    /// A page of a store's saved runs, latest first.
    async fn runs_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<RunListing>, StoreError>;

    /// The id of the store's latest saved run (as [`Store::stored_run`] finds it),
    /// without loading it.
    async fn latest_run_id(&self, id: &StoreId) -> Result<Option<String>, StoreError>;

    /// A saved run of a store (`None`: its latest) with its bundles in published order.
    async fn stored_run(
        &self,
        id: &StoreId,
        run_id: Option<&str>,
    ) -> Result<Option<StoredRun>, StoreError>;
}

/// A finished run as stored: JSON documents as text.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub store_id: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub config: String,
    pub timings: String,
    pub counts: String,
    /// The run's summary as `generate --json` prints it under `"run"`.
    pub summary: String,
    /// The run's `report.html`.
    pub report_html: String,
}

/// A saved run as documents: its summary (absent for runs saved before summaries
/// were kept) and its bundles' JSON, in published order.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run_id: String,
    pub summary: Option<String>,
    /// The run's columns, for runs without a summary.
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// In published order.
    pub bundles: Vec<domain::Bundle>,
    /// Absent for runs saved before reports were kept.
    pub report_html: Option<String>,
}

/// A run in a store's list of runs: when, and how many bundles.
#[derive(Debug, Clone)]
pub struct RunListing {
    pub run_id: String,
    pub status: String,
    /// Unix seconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub as_of: Option<i64>,
    pub bundles: u64,
}

/// One page of a list, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Opens the store a database URL names (SQLite now; PostgreSQL with the service).
/// Opens a store that exists already, `None` when its database file does not: for
/// commands that must write nothing (`ingest --check`).
pub async fn open_existing(url: &str) -> Result<Option<Box<dyn Store>>, StoreError> {
    if let Some(path) = sqlite::database_file(url)
        && !path.exists()
    {
        return Ok(None);
    }
    open(url).await.map(Some)
}

pub async fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: url.to_owned(),
            reason: "only sqlite:// URLs are supported in this version".into(),
        })
    }
}

/// A shop's domain as stored (lower case, no scheme or path): `None` when `text` is not
/// a host name (`example.myshopify.com`, `shop.example.com`).
pub fn shop_domain(text: &str) -> Option<String> {
    let d = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (d.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l))).then_some(d)
}
