//! What can be wrong with settings, and the checks more than one section shares.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("`{key}` from {origin} must be {expected}, got {value:?}")]
    WrongType {
        key: String,
        origin: String,
        expected: &'static str,
        value: String,
    },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// The setting `key` (`section.name`) holds a value it may not, for `reason`.
pub(super) fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason,
    }
}

/// Weights must be non-negative and sum to 1 (within rounding).
pub fn check_weights(key: &str, w: [f64; 3]) -> Result<(), ConfigError> {
    let sum: f64 = w.iter().sum();
    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6 {
        return Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("{w:?} must be three non-negative numbers that sum to 1"),
        });
    }
    Ok(())
}
