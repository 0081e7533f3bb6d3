//! The `Llm` port: the typed tasks the pipeline asks a model to do, and the
//! implementation over an OpenAI-compatible endpoint. Every answer comes back
//! validated ([`super::answer`]): items refer to positions in what the caller passed.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::answer::{self, Appeal, Classified, Copy, Dropped, KindPair, PriceAdvice, Proposal};
use std::sync::Arc;

use super::client::{ChatClient, LlmError, UsageBook};
use super::prompt::{BundleDoc, KindDoc, ProductDoc, PromptError, Prompts, Rendered, Task};
use crate::domain::{BundleType, Objective};
use crate::error::ErrorKind;

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

impl TaskError {
    /// The endpoint's kind for a failed call; a prompt or answer that does not fit is a
    /// bug (ours or the model's), not the caller's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaskError::Llm(e) => e.kind(),
            TaskError::Prompt(_) | TaskError::Answer(_) | TaskError::Offline(_) => {
                ErrorKind::Internal
            }
        }
    }
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

    /// Pairs of a store's kinds of product that go together (positions in `kinds`), at
    /// most `max_pairs`.
    async fn name_complements(
        &self,
        kinds: &[KindDoc],
        max_pairs: usize,
    ) -> Result<Answer<KindPair>, TaskError>;

    /// Calls, retries and tokens so far, per task (empty for providers without any).
    fn usage(&self) -> std::collections::HashMap<&'static str, super::client::Usage> {
        std::collections::HashMap::new()
    }

    /// Whether the endpoint's breaker has opened (the rest of the run is offline).
    fn breaker_open(&self) -> bool {
        false
    }
}

/// The tasks over an OpenAI-compatible chat endpoint. The client (limits, breaker) may
/// be shared by many of these; each books its own usage, so one per run reports that
/// run's calls.
pub struct OpenAiLlm {
    client: Arc<ChatClient>,
    prompts: Arc<Prompts>,
    model: String,
    book: UsageBook,
}

impl OpenAiLlm {
    pub fn new(client: ChatClient, model: &str) -> Result<OpenAiLlm, TaskError> {
        Ok(OpenAiLlm::shared(
            Arc::new(client),
            Arc::new(Prompts::new()?),
            model,
        ))
    }

    /// Over a client and prompts that others share, with a usage book of its own.
    pub fn shared(client: Arc<ChatClient>, prompts: Arc<Prompts>, model: &str) -> OpenAiLlm {
        OpenAiLlm {
            client,
            prompts,
            model: model.to_owned(),
            book: UsageBook::default(),
        }
    }

    /// Its calls all end by `started + budget` (see [`UsageBook::until`]).
    pub fn until(mut self, started: std::time::Instant, budget: std::time::Duration) -> OpenAiLlm {
        self.book = UsageBook::until(started, budget);
        self
    }

    pub fn client(&self) -> &ChatClient {
        &self.client
    }

    /// One task's call: the prompt sent with the schema of its `{key: [item, …]}`
    /// answer (at most `max_items` entries), and the answer validated against what
    /// was offered.
    async fn ask<T>(
        &self,
        task: Task,
        prompt: &Rendered,
        (key, item, max_items): (&str, Value, usize),
        validate: impl FnOnce(&Value) -> Result<(Vec<T>, Dropped), answer::AnswerError>,
    ) -> Result<Answer<T>, TaskError> {
        let schema = schema(key, item, max_items);
        let value = self
            .client
            .json_into(task, prompt, Some(&schema), &self.book)
            .await?;
        let (items, dropped) = validate(&value)?;
        Ok(Answer { items, dropped })
    }
}

/// The process's one connection to the configured model: a single client, so the
/// account's rate limits, concurrency and breaker hold across every run at once.
pub struct ModelClient {
    chat: Option<(Arc<ChatClient>, Arc<Prompts>, String)>,
    /// `llm.task_budget_seconds`: each command's calls together.
    budget: std::time::Duration,
}

impl ModelClient {
    /// The configured provider: a client for `openai`, nothing for `offline`.
    pub fn from_settings(settings: &crate::config::LlmSettings) -> Result<ModelClient, TaskError> {
        let chat = if settings.provider == crate::config::LlmProvider::Openai {
            Some((
                Arc::new(ChatClient::new(settings)?),
                Arc::new(Prompts::new()?),
                settings.model.clone(),
            ))
        } else {
            None
        };
        let budget = std::time::Duration::try_from_secs_f64(settings.task_budget_seconds)
            .map_err(|e| LlmError::Setting(format!("llm.task_budget_seconds: {e}")))?;
        Ok(ModelClient { chat, budget })
    }

    /// No model: every task is answered offline.
    pub fn offline() -> ModelClient {
        ModelClient {
            chat: None,
            budget: std::time::Duration::ZERO,
        }
    }

    /// The model as one command sees it (its own usage book over the shared client,
    /// its calls within the budget from `started`), or `None` when the provider is
    /// offline.
    pub fn for_run(&self, started: std::time::Instant) -> Option<Arc<dyn Llm>> {
        self.chat.as_ref().map(|(client, prompts, model)| {
            Arc::new(
                OpenAiLlm::shared(client.clone(), prompts.clone(), model)
                    .until(started, self.budget),
            ) as Arc<dyn Llm>
        })
    }

    /// The shared client (for process-wide usage and the breaker's state).
    pub fn client(&self) -> Option<&ChatClient> {
        self.chat.as_ref().map(|(c, _, _)| c.as_ref())
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(id).collect()
}

/// The JSON schema of a `{"<key>": [ {...} ]}` answer of at most `max_items` entries,
/// for servers that enforce one. Bounding lengths matters: a constrained small model
/// otherwise repeats entries until it runs out of tokens.
fn schema(key: &str, item: Value, max_items: usize) -> Value {
    json!({
        "type": "object",
        "properties": {key: {"type": "array", "items": item, "maxItems": max_items.max(1)}},
        "required": [key],
    })
}

/// A string of at most `max` characters.
fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max})
}

/// An id that must be one of those the prompt offered: servers that enforce schemas
/// then cannot answer an unknown id at all (validation still checks).
fn id_field(ids: &[&str]) -> Value {
    json!({"type": "string", "enum": ids})
}

#[async_trait]
impl Llm for OpenAiLlm {
    fn model_id(&self) -> String {
        format!("openai:{}", self.model)
    }

    fn usage(&self) -> std::collections::HashMap<&'static str, super::client::Usage> {
        self.book.snapshot()
    }

    fn breaker_open(&self) -> bool {
        self.client.breaker_open() || self.book.met_open_breaker()
    }

    async fn classify(&self, products: &[ProductDoc]) -> Result<Answer<Classified>, TaskError> {
        let prompt = self.prompts.classify(products)?;
        let objectives: Vec<&str> = Objective::ALL.iter().map(|o| o.as_str()).collect();
        let item = json!({
            "type": "object",
            "properties": {
                "id": id_field(&ids(products, |p| &p.id)),
                "tags": {"type": "array", "items": {"type": "string", "enum": objectives}, "maxItems": objectives.len()},
            },
            "required": ["id", "tags"],
        });
        self.ask(
            Task::ClassifyObjectives,
            &prompt,
            ("products", item, products.len()),
            |answer| answer::classification(answer, &ids(products, |p| &p.id)),
        )
        .await
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
        let offered: Vec<&str> = anchors
            .iter()
            .chain(candidates)
            .map(|p| p.id.as_str())
            .collect();
        let item = json!({
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": BundleType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()},
                "products": {"type": "array", "items": id_field(&offered), "maxItems": 8},
                "reason": text(answer::MAX_REASON_CHARS),
            },
            "required": ["type", "products", "reason"],
        });
        self.ask(
            Task::ProposeBundles,
            &prompt,
            ("bundles", item, max_bundles),
            |answer| answer::proposals(answer, &offered),
        )
        .await
    }

    async fn advise_price(&self, bundles: &[BundleDoc]) -> Result<Answer<PriceAdvice>, TaskError> {
        let prompt = self.prompts.price(bundles)?;
        let item = json!({
            "type": "object",
            "properties": {
                "id": id_field(&ids(bundles, |b| &b.id)),
                "min_pct": {"type": "number"},
                "max_pct": {"type": "number"},
                "reason": text(answer::MAX_REASON_CHARS),
            },
            "required": ["id", "min_pct", "max_pct", "reason"],
        });
        let caps: Vec<u8> = bundles.iter().map(|b| b.cap_pct).collect();
        self.ask(
            Task::AdvisePrice,
            &prompt,
            ("bundles", item, bundles.len()),
            |answer| answer::price_advice(answer, &ids(bundles, |b| &b.id), &caps),
        )
        .await
    }

    async fn write_copy(
        &self,
        bundles: &[BundleDoc],
        locale: &str,
    ) -> Result<Answer<Copy>, TaskError> {
        let prompt = self.prompts.copy(bundles, locale)?;
        let item = json!({
            "type": "object",
            "properties": {
                "id": id_field(&ids(bundles, |b| &b.id)),
                "title": text(answer::MAX_TITLE_CHARS),
                "description": text(answer::MAX_DESCRIPTION_CHARS),
                "badge": text(answer::MAX_BADGE_CHARS),
                "explanation": text(answer::MAX_REASON_CHARS),
            },
            "required": ["id", "title", "description", "badge", "explanation"],
        });
        self.ask(
            Task::WriteCopy,
            &prompt,
            ("bundles", item, bundles.len()),
            |answer| answer::copy(answer, &ids(bundles, |b| &b.id)),
        )
        .await
    }

    async fn rate_appeal(&self, bundles: &[BundleDoc]) -> Result<Answer<Appeal>, TaskError> {
        let prompt = self.prompts.appeal(bundles)?;
        let item = json!({
            "type": "object",
            "properties": {
                "id": id_field(&ids(bundles, |b| &b.id)),
                "score": {"type": "number"},
                "reason": text(answer::MAX_REASON_CHARS),
            },
            "required": ["id", "score", "reason"],
        });
        self.ask(
            Task::RateAppeal,
            &prompt,
            ("bundles", item, bundles.len()),
            |answer| answer::appeal(answer, &ids(bundles, |b| &b.id)),
        )
        .await
    }

    async fn name_complements(
        &self,
        kinds: &[KindDoc],
        max_pairs: usize,
    ) -> Result<Answer<KindPair>, TaskError> {
        let prompt = self.prompts.complements(kinds, max_pairs)?;
        let offered = ids(kinds, |k| &k.id);
        let item = json!({
            "type": "object",
            "properties": {
                "a": id_field(&offered),
                "b": id_field(&offered),
                "reason": text(answer::MAX_REASON_CHARS),
            },
            "required": ["a", "b", "reason"],
        });
        self.ask(
            Task::NameComplements,
            &prompt,
            ("pairs", item, max_pairs),
            |answer| answer::kind_pairs(answer, &offered, max_pairs),
        )
        .await
    }
}
