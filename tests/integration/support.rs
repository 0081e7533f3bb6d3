//! Shared helpers: a fresh database per test, input files on disk, the CLI binary, our
//! HTTP server on a free port.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use bundleforge::app::{self, IngestOutcome};
use bundleforge::config::{Settings, SettingsBuilder};
use bundleforge::domain::StoreId;
use bundleforge::embed::{Embedder, HashingEmbedder};
use bundleforge::ingest::{FileRole, IngestSource, IngestSources, NoProgress};
use bundleforge::server;
use bundleforge::store::SqliteStore;
use serde_json::Value;

/// A temp dir with a SQLite database in it; both vanish with the value.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
    pub settings: Settings,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.sqlite").display());
        let store = SqliteStore::open(&url).await.expect("open sqlite");
        TestDb {
            dir,
            store,
            settings: Settings::defaults().expect("defaults"),
        }
    }

    /// Writes `content` to a file in the test's dir and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        write_file(self.dir.path(), name, content.as_bytes())
    }

    pub fn bytes_file(&self, name: &str, content: &[u8]) -> PathBuf {
        write_file(self.dir.path(), name, content)
    }

    pub async fn ingest(
        &self,
        store_id: &str,
        sources: IngestSources,
    ) -> Result<IngestOutcome, app::AppError> {
        let id = StoreId::parse(store_id).expect("store id");
        app::ingest(
            &self.store,
            &id,
            sources,
            &self.settings,
            Arc::new(NoProgress),
        )
        .await
    }

    pub async fn ingest_ok(&self, store_id: &str, sources: IngestSources) -> IngestOutcome {
        match self.ingest(store_id, sources).await {
            Ok(o) => o,
            Err(e) => panic!("ingest failed: {e}"),
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect("count query")
    }
}

pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create file");
    f.write_all(content).expect("write file");
    path
}

pub fn orders(path: PathBuf) -> IngestSources {
    IngestSource::file(FileRole::Orders, path).into()
}

pub fn catalog(path: PathBuf) -> IngestSources {
    IngestSource::file(FileRole::Catalog, path).into()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// Runs the CLI binary with a database URL, no inherited bundleforge environment.
pub fn cli(db_url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bundleforge"));
    cmd.args(args).env("BUNDLEFORGE__DATABASE__URL", db_url);
    for (k, _) in std::env::vars() {
        if k.starts_with("BUNDLEFORGE") && k != "BUNDLEFORGE__DATABASE__URL" || k == "DATABASE_URL"
        {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run bundleforge")
}

/// The DOM headless Chromium renders for the page at `path` (scripts/test installs
/// Debian's chromium).
pub fn rendered_dom(path: &Path) -> String {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium is needed (scripts/test installs Debian's chromium)");
    let url = format!("file://{}", path.display());
    let rendered = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    String::from_utf8_lossy(&rendered.stdout).into_owned()
}

/// The repository's root, for fixtures and shared data.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ../shared/data beside the repository, where the real data sets live.
pub fn shared_data(rel: &str) -> PathBuf {
    repo_root().join("..").join("shared").join("data").join(rel)
}

/// The first error whose reason contains `needle`, rendered, or a panic listing all.
pub fn error_line(outcome: &IngestOutcome, needle: &str) -> String {
    outcome
        .report
        .errors
        .iter()
        .find(|e| e.to_string().contains(needle))
        .map(|e| e.to_string())
        .unwrap_or_else(|| {
            let all: Vec<String> = outcome
                .report
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect();
            panic!("no error mentions {needle:?}; errors: {all:#?}")
        })
}

/// The real local embedding model (installed by scripts/setup).
pub fn local_model() -> Arc<dyn bundleforge::embed::Embedder> {
    let paths = bundleforge::embed::LocalModelPaths::resolve("", "");
    match bundleforge::embed::LocalEmbedder::load(&paths, 0, 32) {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("the local model must be installed by scripts/setup: {e}"),
    }
}

/// The small fixture store in a fresh database, with an extra catalog file layered on
/// it if given, and the ports of a run over it with `embedder` and default settings.
pub async fn small_fixture(
    embedder: Arc<dyn bundleforge::embed::Embedder>,
    extra_catalog: Option<&str>,
) -> (TestDb, bundleforge::app::Services) {
    let db = TestDb::new().await;
    let dir = repo_root().join("fixtures/stores/small");
    db.ingest_ok(
        "small",
        IngestSources::from_paths(
            Some(dir.join("orders.csv")),
            Some(dir.join("products.csv")),
            None,
            None,
        ),
    )
    .await;
    if let Some(csv) = extra_catalog {
        let path = db.file("extra.csv", csv);
        db.ingest_ok("small", catalog(path)).await;
    }
    let services = services_for(&db, embedder, Settings::defaults().expect("defaults")).await;
    (db, services)
}

/// Ingests a store folder's `products.csv` and `orders.csv` (a fixture's layout).
pub async fn ingest_dir(db: &TestDb, store: &str, dir: &Path) {
    db.ingest_ok(
        store,
        IngestSources::from_paths(
            Some(dir.join("orders.csv")),
            Some(dir.join("products.csv")),
            None,
            None,
        ),
    )
    .await;
}

/// The ports of runs over a test database: its SQLite file, `embedder`, and the model
/// `settings` name.
pub async fn services_for(
    db: &TestDb,
    embedder: Arc<dyn bundleforge::embed::Embedder>,
    settings: Settings,
) -> bundleforge::app::Services {
    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    let store = SqliteStore::open(&url).await.expect("open sqlite");
    bundleforge::app::Services::with_store(Arc::new(store), settings)
        .expect("services")
        .with_embedder(embedder)
}

/// The run `eval` scores, as `bundleforge eval`'s flags build it (`--cold`: the catalog
/// alone, and no prior mined from the store's own orders).
pub fn eval_run(
    seed: u64,
    objectives: Vec<bundleforge::domain::Objective>,
    max_bundles: Option<usize>,
    cold: bool,
) -> bundleforge::pipeline::RunRequest {
    use bundleforge::pipeline::{OrderScope, PriorScope, RunRequest};
    let mut run = RunRequest::seeded(seed);
    run.variant.objectives = objectives;
    run.variant.max_bundles = max_bundles;
    if cold {
        run.prepare.orders = OrderScope::None;
        run.prepare.prior = PriorScope::NotFromThisStore;
    }
    run
}

/// The admin token of a server [`spawn_app`] starts, unless the test names its own
/// (at least 32 characters, as `server.admin_token` must be).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// What differs between the servers tests start. The default: a fresh, empty
/// database, [`ADMIN_TOKEN`], the default settings and a 64-dimension hashing
/// embedder.
pub struct AppOptions {
    db: Option<TestDb>,
    admin_token: String,
    settings: Vec<(String, String)>,
    embedder: Arc<dyn Embedder>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            db: None,
            admin_token: ADMIN_TOKEN.to_owned(),
            settings: Vec::new(),
            embedder: Arc::new(HashingEmbedder::new(64)),
        }
    }
}

impl AppOptions {
    /// Serves `db`, filled by the test before the server opens it.
    pub fn db(mut self, db: TestDb) -> Self {
        self.db = Some(db);
        self
    }

    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = token.to_owned();
        self
    }

    /// Settings as command-line flags give them: `("server.max_body_mb", "1")`.
    pub fn settings(mut self, overrides: &[(&str, &str)]) -> Self {
        self.settings.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self
    }

    /// The secret Shopify signs webhooks with; empty: webhooks are refused.
    pub fn webhook_secret(self, secret: &str) -> Self {
        self.settings(&[("shopify.webhook_secret", secret)])
    }

    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = embedder;
        self
    }
}

/// Our HTTP server, running in this process on a free port, over a test database.
pub struct TestApp {
    pub db: TestDb,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    pub admin_token: String,
    running: Option<server::Running>,
    pub client: reqwest::Client,
}

/// Starts our server (API, job workers, webhook applier) as `options` say.
pub async fn spawn_app(options: AppOptions) -> TestApp {
    let AppOptions {
        db,
        admin_token,
        settings,
        embedder,
    } = options;
    let db = match db {
        Some(db) => db,
        None => TestDb::new().await,
    };
    let mut builder = SettingsBuilder::new()
        .unwrap()
        .flag("server.admin_token", &admin_token)
        .unwrap();
    for (key, value) in &settings {
        builder = builder.flag(key, value).unwrap();
    }
    let settings = builder.build().unwrap();
    let services = services_for(&db, embedder, settings).await;
    // Port 0: the system picks a free one, so parallel tests never collide.
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let running = server::start(Arc::new(services), listener).unwrap();
    TestApp {
        url: format!("http://{}", running.addr),
        db,
        admin_token,
        running: Some(running),
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// A request with `body` and, if given, `token` as its bearer: the status, the
    /// body as JSON (`Null` if it is not) and the headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.call_bytes(method, path, token, body.as_bytes().to_vec())
            .await
    }

    pub async fn call_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let (status, bytes, headers) = self.raw(method, path, token, body).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, headers)
    }

    /// As [`TestApp::call_bytes`], with the answer's body as bytes.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .body(body);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        (status, bytes.to_vec(), headers)
    }

    /// [`TestApp::call`] with the admin token.
    pub async fn admin(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (s, v, _) = self
            .call(method, path, Some(self.admin_token.as_str()), body)
            .await;
        (s, v)
    }

    /// Stops the server; its database stays readable through the returned handle.
    pub async fn stop(mut self) -> TestDb {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.db
    }
}

/// Embeds as the hashing embedder does, after a long wait: a run that is still
/// working when the test acts on it.
pub struct SlowEmbedder(pub HashingEmbedder);

#[async_trait::async_trait]
impl Embedder for SlowEmbedder {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    async fn embed(
        &self,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, bundleforge::embed::EmbedError> {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        self.0.embed(texts).await
    }
}
