//! Where the process keeps its data and how it serves: `[database]`, `[server]`,
//! `[shopify]`.

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::options::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
}

impl DatabaseSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(invalid("database.url", "must not be empty".into()));
        }
        Ok(())
    }
}

/// The shortest admin token taken: it opens every store, so it must not be guessable
/// (a random 32-character token is far beyond any guessing rate).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// The longest `server.header_timeout_seconds` and `server.body_timeout_seconds` taken.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// The most `server.max_connections` taken.
pub const MAX_CONNECTIONS: u64 = 1_000_000;

/// `bundleforge serve`: the HTTP service and its job workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Jobs run at once in this process.
    pub workers: usize,
    /// Accepted on every route, for every store; empty: no admin token. At least
    /// [`MIN_ADMIN_TOKEN_CHARS`] characters otherwise.
    pub admin_token: Secret,
    /// A claimed job's lease; a worker renews it every `heartbeat_seconds`.
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    /// Attempts of a job before it fails (retryable errors and lost leases).
    pub max_attempts: u32,
    /// On SIGTERM, how long running jobs may take to finish before they are cancelled
    /// and released to the queue.
    pub shutdown_seconds: u64,
    /// Largest upload body (a file, or the predecessor's CSVs in JSON), in MiB.
    pub max_body_mb: usize,
    /// Largest body of the other JSON routes (a job, a decision), in KiB.
    pub max_json_body_kb: usize,
    /// Largest Shopify webhook body, in KiB: refused by its declared length before it
    /// is read, and cut off past it while it streams.
    pub webhook_max_body_kb: usize,
    /// A request's headers must be complete this long after the connection opened or
    /// its previous answer went (408, and the connection closes; an idle keep-alive
    /// connection is closed without one).
    pub header_timeout_seconds: u64,
    /// A request body is answered 408 when it does not arrive whole in this long, or,
    /// for an upload, when it sends less than 1 KiB in this long.
    pub body_timeout_seconds: u64,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: u32,
    /// Browser origins allowed to call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Requests a token may make per minute, on average (429 beyond, with
    /// `Retry-After`), and how many it may make at once before that rate applies.
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Deepest nesting a JSON request body may have (a job request, an upload's JSON).
    pub max_json_depth: usize,
    /// Days a webhook's body is kept after it was applied; its id, topic and outcome
    /// stay. 0: the body goes as soon as it is applied.
    pub webhook_retention_days: u32,
}

impl ServerSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!(
                    "{:?} is not an address and port (127.0.0.1:8080)",
                    self.bind
                ),
            ));
        }
        // Its length only: the token itself is never said, not even in an error.
        let admin_chars = self.admin_token.expose().trim().chars().count();
        if !self.admin_token.is_empty() && admin_chars < MIN_ADMIN_TOKEN_CHARS {
            return Err(invalid(
                "server.admin_token",
                format!(
                    "is {admin_chars} characters; it must be at least {MIN_ADMIN_TOKEN_CHARS} (it acts for every store), or empty for no admin token"
                ),
            ));
        }
        for (key, zero) in [
            ("server.workers", self.workers == 0),
            ("server.lease_seconds", self.lease_seconds == 0),
            ("server.heartbeat_seconds", self.heartbeat_seconds == 0),
            ("server.max_attempts", self.max_attempts == 0),
            ("server.max_body_mb", self.max_body_mb == 0),
            ("server.max_json_body_kb", self.max_json_body_kb == 0),
            ("server.webhook_max_body_kb", self.webhook_max_body_kb == 0),
            (
                "server.header_timeout_seconds",
                self.header_timeout_seconds == 0,
            ),
            (
                "server.body_timeout_seconds",
                self.body_timeout_seconds == 0,
            ),
            ("server.max_connections", self.max_connections == 0),
            (
                "server.rate_limit_per_minute",
                self.rate_limit_per_minute == 0,
            ),
            ("server.rate_limit_burst", self.rate_limit_burst == 0),
            ("server.max_json_depth", self.max_json_depth == 0),
        ] {
            if zero {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        // Past these a deadline or the connection cap is no bound worth the name (and a
        // deadline far enough away overflows the clock it is set on).
        for (key, value, most) in [
            (
                "server.header_timeout_seconds",
                self.header_timeout_seconds,
                MAX_TIMEOUT_SECONDS,
            ),
            (
                "server.body_timeout_seconds",
                self.body_timeout_seconds,
                MAX_TIMEOUT_SECONDS,
            ),
            (
                "server.max_connections",
                u64::from(self.max_connections),
                MAX_CONNECTIONS,
            ),
        ] {
            if value > most {
                return Err(invalid(key, format!("{value} is over {most}")));
            }
        }
        if self.heartbeat_seconds >= self.lease_seconds {
            return Err(invalid(
                "server.heartbeat_seconds",
                format!(
                    "{} must be shorter than server.lease_seconds ({}), or leases run out between beats",
                    self.heartbeat_seconds, self.lease_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// What the service needs of Shopify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySettings {
    /// The app's secret: webhooks are signed with it (HMAC-SHA256). Empty: webhooks
    /// are refused (401).
    pub webhook_secret: Secret,
}
