//! Uploads through the predecessor's Shopify app endpoints, as its status and
//! progress routes report them.

use async_trait::async_trait;

use super::StoreError;

/// One CSV the app uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct AppUpload {
    pub upload_id: String,
    pub store_id: String,
    /// The shop as the app named it.
    pub shop_id: String,
    /// The app's `runId`: the uploads of one catalog-and-orders set.
    pub run_key: String,
    /// `catalog_joined`, `variants`, `inventory_levels` or `orders`.
    pub csv_type: String,
    /// `processing`, `completed` or `failed` (the ingest's; a job's state is the job's).
    pub status: String,
    pub total_rows: i64,
    pub processed_rows: i64,
    pub error_message: Option<String>,
    /// The generate job this upload started.
    pub job_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait AppUploadStore: Send + Sync {
    /// Inserts or replaces the upload with this id.
    async fn put_app_upload(&self, upload: &AppUpload) -> Result<(), StoreError>;

    async fn get_app_upload(&self, upload_id: &str) -> Result<Option<AppUpload>, StoreError>;

    /// The uploads of one run of the app, newest first.
    async fn run_app_uploads(&self, run_key: &str) -> Result<Vec<AppUpload>, StoreError>;
}
