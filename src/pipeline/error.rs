//! How a run fails, with the kind set where the failure arose.

use super::request::InvalidRequest;
use super::variant::InvalidVariant;
use crate::cancel::Cancelled;
use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error(transparent)]
    Llm(#[from] crate::llm::gateway::GatewayError),
    #[error(transparent)]
    LlmSetup(#[from] crate::llm::provider::TaskError),
    #[error(transparent)]
    Prior(#[from] crate::prior::PriorError),
    #[error("store {0} has no orders up to the run's date")]
    NoOrders(String),
    #[error(transparent)]
    Invalid(#[from] InvalidVariant),
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Store(e) => e.kind(),
            PipelineError::Embed(e) => e.kind(),
            PipelineError::Llm(e) => e.kind(),
            PipelineError::LlmSetup(e) => e.kind(),
            PipelineError::NoOrders(_) => ErrorKind::NotFound,
            PipelineError::Prior(e) => e.kind(),
            PipelineError::Invalid(_) | PipelineError::InvalidRequest(_) => ErrorKind::BadInput,
            PipelineError::Cancelled(_) => ErrorKind::Cancelled,
            PipelineError::Internal(_) => ErrorKind::Internal,
        }
    }
}
