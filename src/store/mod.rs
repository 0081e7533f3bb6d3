//! Storage: the `Store` port and its sqlx adapters.
//!
//! SQLite (a file, created on first use) is the embedded default; PostgreSQL joins with
//! the service. Callers see plain domain data: an ingest batch goes in as one
//! transaction, a [`StoreData`] snapshot comes out for statistics and runs.

pub mod app_uploads;
pub mod approvals;
pub mod caches;
pub mod catalog;
pub mod jobs;
pub mod runs;
mod sqlite;
pub mod stores;
pub mod tokens;
pub mod webhooks;

use crate::error::ErrorKind;

pub use app_uploads::{AppUpload, AppUploadStore};
pub use approvals::{Approval, ApprovalStore, Decision};
pub use caches::CacheStore;
pub use catalog::{CatalogStore, IngestWriter, WriteSummary};
pub use jobs::{JobEnd, JobQueue, JobRecord, JobState, Lease, NewJob, StoreJobsStopped};
pub use runs::{RunListing, RunRecord, RunStore, StoredRun};
pub use sqlite::SqliteStore;
pub use stores::StoreRegistry;
pub use tokens::TokenStore;
pub use webhooks::{
    CustomerOrder, CustomerOrderLine, FinishedWebhook, RefundedLine, WebhookOutcome, WebhookRecord,
    WebhookStore,
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
    /// `NAME.myshopify.com` for another store while store NAME has no domain set: that
    /// shop is NAME's by its name, and its webhooks would move.
    #[error(
        "shop {domain} is store {store:?} already, by its name (it has no shop domain set); give that store its own domain first"
    )]
    ShopIsStoreName { domain: String, store: String },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        use StoreError::*;
        match self {
            UnsupportedUrl { .. } => ErrorKind::BadInput,
            ShopTaken { .. } | ShopIsStoreName { .. } => ErrorKind::Conflict,
            UnknownStore(_) => ErrorKind::NotFound,
            Connect { .. } | Database(_) | Lock { .. } => ErrorKind::Retryable,
            Migrate(_) | Corrupt(_) => ErrorKind::Internal,
        }
    }
}

pub use crate::domain::{HistoryLine, HistoryOrder, StoreData};

/// The storage port: every area's operations, each on the sub-trait of its area. One
/// implementation per database; tests use SQLite in a temp dir.
pub trait Store:
    StoreRegistry
    + CatalogStore
    + CacheStore
    + RunStore
    + ApprovalStore
    + JobQueue
    + TokenStore
    + WebhookStore
    + AppUploadStore
    + Send
    + Sync
{
}

/// One page of a list, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

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

/// Opens the store a database URL names (SQLite now; PostgreSQL with the service).
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
