//! The `Llm` port: the typed tasks the pipeline asks a model to do, and the
//! implementation over an OpenAI-compatible endpoint. Every answer comes back
//! validated ([`super::answer`]): items refer to positions in what the caller passed.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::answer::{self, Appeal, Classified, Copy, Dropped, PriceAdvice, Proposal};
use super::client::{ChatClient, LlmError};
use super::prompt::{BundleDoc, ProductDoc, PromptError, Prompts, Task};
use crate::domain::Objective;

/// A task's validated items, and what validation left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub items: Vec<T>,
    pub dropped: Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Answer(#[from] answer::AnswerError),
    /// The offline provider could not embed what it was given.
    #[error("offline provider: {0}")]
    Offline(String),
}

#[async_trait]
pub trait Llm: Send + Sync {
    /// Which model answers (`openai:gpt-4o-mini`, `offline`): part of cache keys.
    fn model_id(&self) -> String;

    /// Objectives per product (positions in `products`).
    async fn classify(&self, products: &[ProductDoc]) -> Result<Answer<Classified>, TaskError>;

    /// Bundles for `objective` over anchors and candidates; products are positions in
    /// `anchors` followed by `candidates`.
    async fn propose(
        &self,
        objective: Objective,
        anchors: &[ProductDoc],
        candidates: &[ProductDoc],
        max_bundles: usize,
    ) -> Result<Answer<Proposal>, TaskError>;

    /// Discount ranges within each bundle's `cap_pct` (positions in `bundles`).
    async fn advise_price(&self, bundles: &[BundleDoc]) -> Result<Answer<PriceAdvice>, TaskError>;

    /// Title, description, badge and explanation per bundle, in `locale`.
    async fn write_copy(
        &self,
        bundles: &[BundleDoc],
        locale: &str,
    ) -> Result<Answer<Copy>, TaskError>;

    /// Appeal 0–10 per bundle.
    async fn rate_appeal(&self, bundles: &[BundleDoc]) -> Result<Answer<Appeal>, TaskError>;
}

/// The tasks over an OpenAI-compatible chat endpoint.
pub struct OpenAiLlm {
    client: ChatClient,
    prompts: Prompts,
    model: String,
}

impl OpenAiLlm {
    pub fn new(client: ChatClient, model: &str) -> Result<OpenAiLlm, TaskError> {
        Ok(OpenAiLlm {
            client,
            prompts: Prompts::new()?,
            model: model.to_owned(),
        })
    }

    pub fn client(&self) -> &ChatClient {
        &self.client
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(id).collect()
}

/// The JSON schema of a `{"<key>": [ {...} ]}` answer, for servers that enforce one.
fn schema(key: &str, item: Value) -> Value {
    json!({
        "type": "object",
        "properties": {key: {"type": "array", "items": item}},
        "required": [key],
    })
}

fn string_fields(fields: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_owned(), json!({"type": "string"})))
        .collect();
    json!({"type": "object", "properties": props, "required": fields})
}

#[async_trait]
impl Llm for OpenAiLlm {
    fn model_id(&self) -> String {
        format!("openai:{}", self.model)
    }

    async fn classify(&self, products: &[ProductDoc]) -> Result<Answer<Classified>, TaskError> {
        let prompt = self.prompts.classify(products)?;
        let objectives: Vec<&str> = Objective::ALL.iter().map(|o| o.as_str()).collect();
        let item = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string", "enum": objectives}},
            },
            "required": ["id", "tags"],
        });
        let value = self
            .client
            .json(
                Task::ClassifyObjectives,
                &prompt,
                Some(&schema("products", item)),
            )
            .await?;
        let (items, dropped) = answer::classification(&value, &ids(products, |p| &p.id))?;
        Ok(Answer { items, dropped })
    }

    async fn propose(
        &self,
        objective: Objective,
        anchors: &[ProductDoc],
        candidates: &[ProductDoc],
        max_bundles: usize,
    ) -> Result<Answer<Proposal>, TaskError> {
        let prompt = self
            .prompts
            .propose(objective, anchors, candidates, max_bundles)?;
        let item = json!({
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "products": {"type": "array", "items": {"type": "string"}},
                "reason": {"type": "string"},
            },
            "required": ["type", "products", "reason"],
        });
        let value = self
            .client
            .json(
                Task::ProposeBundles,
                &prompt,
                Some(&schema("bundles", item)),
            )
            .await?;
        let offered: Vec<&str> = anchors
            .iter()
            .chain(candidates)
            .map(|p| p.id.as_str())
            .collect();
        let (items, dropped) = answer::proposals(&value, &offered)?;
        Ok(Answer { items, dropped })
    }

    async fn advise_price(&self, bundles: &[BundleDoc]) -> Result<Answer<PriceAdvice>, TaskError> {
        let prompt = self.prompts.price(bundles)?;
        let item = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "min_pct": {"type": "number"},
                "max_pct": {"type": "number"},
                "reason": {"type": "string"},
            },
            "required": ["id", "min_pct", "max_pct", "reason"],
        });
        let value = self
            .client
            .json(Task::AdvisePrice, &prompt, Some(&schema("bundles", item)))
            .await?;
        let caps: Vec<u8> = bundles.iter().map(|b| b.cap_pct).collect();
        let (items, dropped) = answer::price_advice(&value, &ids(bundles, |b| &b.id), &caps)?;
        Ok(Answer { items, dropped })
    }

    async fn write_copy(
        &self,
        bundles: &[BundleDoc],
        locale: &str,
    ) -> Result<Answer<Copy>, TaskError> {
        let prompt = self.prompts.copy(bundles, locale)?;
        let item = string_fields(&["id", "title", "description", "badge", "explanation"]);
        let value = self
            .client
            .json(Task::WriteCopy, &prompt, Some(&schema("bundles", item)))
            .await?;
        let (items, dropped) = answer::copy(&value, &ids(bundles, |b| &b.id))?;
        Ok(Answer { items, dropped })
    }

    async fn rate_appeal(&self, bundles: &[BundleDoc]) -> Result<Answer<Appeal>, TaskError> {
        let prompt = self.prompts.appeal(bundles)?;
        let item = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "score": {"type": "number"},
                "reason": {"type": "string"},
            },
            "required": ["id", "score", "reason"],
        });
        let value = self
            .client
            .json(Task::RateAppeal, &prompt, Some(&schema("bundles", item)))
            .await?;
        let (items, dropped) = answer::appeal(&value, &ids(bundles, |b| &b.id))?;
        Ok(Answer { items, dropped })
    }
}
