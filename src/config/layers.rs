//! The layers settings are read from, each over the one before: the embedded
//! defaults, a `--config` file, the environment, command-line flags.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::ConfigError;
use super::settings::Settings;

const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "BUNDLEFORGE__";

/// The `section.key` of the first value that does not read as its section's field, by
/// reading each field alone into a copy of the embedded defaults.
fn first_bad_field(merged: &Value) -> Option<String> {
    let defaults: Table = DEFAULTS.parse().ok()?;
    let Value::Table(sections) = merged else {
        return None;
    };
    for (section, table) in sections {
        let Value::Table(fields) = table else {
            continue;
        };
        for (name, value) in fields {
            let mut probe = defaults.clone();
            if let Some(Value::Table(t)) = probe.get_mut(section.as_str()) {
                t.insert(name.clone(), value.clone());
            }
            if Value::Table(probe).try_into::<Settings>().is_err() {
                return Some(format!("{section}.{name}"));
            }
        }
    }
    None
}

impl Settings {
    /// The embedded defaults alone.
    pub fn defaults() -> Result<Self, ConfigError> {
        SettingsBuilder::new()?.build()
    }
}

/// Builds [`Settings`] layer by layer; `build` validates once.
pub struct SettingsBuilder {
    defaults: Table,
    merged: Table,
    warnings: Vec<String>,
}

impl SettingsBuilder {
    pub fn new() -> Result<Self, ConfigError> {
        let defaults: Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: PathBuf::from("<embedded defaults>"),
                    message: e.to_string(),
                })?;
        Ok(SettingsBuilder {
            merged: defaults.clone(),
            defaults,
            warnings: Vec::new(),
        })
    }

    /// Layers a TOML config file; a key the defaults lack is an error.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let origin = path.display().to_string();
        for (section, value) in table {
            let Value::Table(keys) = value else {
                if self.defaults.contains_key(&section) {
                    return Err(ConfigError::WrongType {
                        value: value.to_string(),
                        key: section,
                        origin,
                        expected: "a section (`[name]` and its keys)",
                    });
                }
                return Err(ConfigError::UnknownKey {
                    key: section,
                    origin,
                });
            };
            for (key, value) in keys {
                self.set(
                    &[section.as_str(), key.as_str()],
                    SetValue::Toml(value),
                    &origin,
                )?;
            }
        }
        Ok(self)
    }

    /// Layers the generic variables (`DATABASE_URL`, and `OPENAI_API_KEY` /
    /// `OPENAI_BASE_URL` for the chat model only) and then every
    /// `BUNDLEFORGE__SECTION__KEY` variable, which wins over them. Unknown variables are
    /// kept as warnings for the caller to log.
    pub fn env<I>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        const GENERIC: [(&str, [&str; 2]); 3] = [
            ("DATABASE_URL", ["database", "url"]),
            ("OPENAI_API_KEY", ["llm", "api_key"]),
            ("OPENAI_BASE_URL", ["llm", "base_url"]),
        ];
        let generic = |k: &str| GENERIC.iter().find(|(name, _)| *name == k);
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        // Generic names first, so the BUNDLEFORGE__ ones win over them.
        vars.sort_by_key(|(k, _)| generic(k).is_none());
        for (name, value) in vars {
            if let Some((label, path)) = generic(&name) {
                self.set(path, SetValue::Text(value), label)?;
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if path.len() != 2 || lookup(&self.defaults, &path).is_none() {
                self.warnings
                    .push(format!("ignoring unknown environment variable {name}"));
                continue;
            }
            self.set(&path, SetValue::Text(value), &name)?;
        }
        Ok(self)
    }

    /// Layers one command-line override, e.g. `("database.url", "sqlite://x.db")`.
    pub fn flag(mut self, dotted_key: &str, value: &str) -> Result<Self, ConfigError> {
        let path: Vec<&str> = dotted_key.split('.').collect();
        self.set(&path, SetValue::Text(value.to_owned()), "the command line")?;
        Ok(self)
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn build(self) -> Result<Settings, ConfigError> {
        let merged = Value::Table(self.merged);
        let settings: Settings = merged.clone().try_into().map_err(|e: toml::de::Error| {
            // Name the setting: the first field whose own value does not read.
            let key = first_bad_field(&merged).unwrap_or_else(|| "settings".into());
            ConfigError::Invalid {
                key,
                reason: plain_reason(e.message().trim()),
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn set(&mut self, path: &[&str], value: SetValue, origin: &str) -> Result<(), ConfigError> {
        let key = path.join(".");
        let Some(default) = lookup(&self.defaults, path) else {
            return Err(ConfigError::UnknownKey {
                key,
                origin: origin.to_owned(),
            });
        };
        let value = match value {
            SetValue::Toml(v) => coerce_toml(v, default, &key, origin)?,
            SetValue::Text(t) => coerce_text(&t, default, &key, origin)?,
        };
        if let [section, name] = path
            && let Some(Value::Table(t)) = self.merged.get_mut(*section)
        {
            t.insert((*name).to_owned(), value);
        }
        Ok(())
    }
}

/// serde's wording for the mistakes a person makes in a setting, said in theirs.
fn plain_reason(message: &str) -> String {
    let unsigned = [
        "expected usize",
        "expected u64",
        "expected u32",
        "expected u16",
    ];
    if let Some(rest) = message.strip_prefix("invalid value: integer `")
        && let Some((value, expected)) = rest.split_once("`, ")
        && unsigned.contains(&expected)
    {
        return if value.starts_with('-') {
            format!("{value} is not a whole number of 0 or more")
        } else {
            format!("{value} is too large")
        };
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((got, want)) = rest.split_once(", expected an array of length ")
    {
        return format!("expected a list of {want} values, got {got}");
    }
    message.to_owned()
}

enum SetValue {
    Toml(Value),
    Text(String),
}

fn lookup<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Value> {
    match path {
        [section, key] => table.get(*section)?.as_table()?.get(*key),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Array(_) => "a list",
        _ => "a table",
    }
}

fn coerce_toml(v: Value, default: &Value, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let ok = match (default, &v) {
        (Value::Float(_), Value::Integer(i)) => return Ok(Value::Float(*i as f64)),
        (Value::Array(_), Value::Array(items)) => {
            let all_num = items
                .iter()
                .all(|x| matches!(x, Value::Float(_) | Value::Integer(_)));
            if all_num {
                let floats = items
                    .iter()
                    .map(|x| {
                        Value::Float(
                            x.as_float()
                                .or(x.as_integer().map(|i| i as f64))
                                .unwrap_or(0.0),
                        )
                    })
                    .collect();
                return Ok(Value::Array(floats));
            }
            false
        }
        (d, v) => std::mem::discriminant(d) == std::mem::discriminant(v),
    };
    if ok {
        Ok(v)
    } else {
        Err(ConfigError::WrongType {
            key: key.to_owned(),
            origin: origin.to_owned(),
            expected: type_name(default),
            value: v.to_string(),
        })
    }
}

/// Environment variables and flags are text: read them as the default's type.
fn coerce_text(t: &str, default: &Value, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let wrong = || ConfigError::WrongType {
        key: key.to_owned(),
        origin: origin.to_owned(),
        expected: type_name(default),
        value: t.to_owned(),
    };
    let t = t.trim();
    Ok(match default {
        Value::String(_) => Value::String(t.to_owned()),
        Value::Integer(_) => Value::Integer(t.parse().map_err(|_| wrong())?),
        Value::Float(_) => Value::Float(t.parse().map_err(|_| wrong())?),
        Value::Boolean(_) => Value::Boolean(match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(wrong()),
        }),
        Value::Array(defaults) => {
            let inner = t.trim().trim_start_matches('[').trim_end_matches(']');
            let parts: Vec<&str> = inner
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect();
            // A list of text (origins, names) is written `a,b` or `["a", "b"]`; a
            // list of numbers `1,2`.
            let text = match defaults.first() {
                Some(Value::String(_)) => true,
                Some(_) => false,
                None => parts.iter().any(|x| x.parse::<f64>().is_err()),
            };
            if text {
                Value::Array(
                    parts
                        .iter()
                        .map(|x| Value::String(x.trim_matches(['"', '\'']).to_owned()))
                        .collect(),
                )
            } else {
                let items: Result<Vec<Value>, _> = parts
                    .iter()
                    .map(|x| x.parse::<f64>().map(Value::Float))
                    .collect();
                Value::Array(items.map_err(|_| wrong())?)
            }
        }
        _ => return Err(wrong()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EmbedProvider, LlmProvider};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.database.url, "sqlite://bundleforge.sqlite");
        assert_eq!(s.assumptions.cost_ratio, 0.5);
        assert_eq!(s.scoring.small_weights, [0.6, 0.2, 0.2]);
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bf.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"sqlite://from-file.db\"\n[store]\ncurrency = \"EUR\"\n",
        )
        .unwrap();
        let b = SettingsBuilder::new().unwrap().file(&file).unwrap();
        let s = b.build().unwrap();
        assert_eq!(s.database.url, "sqlite://from-file.db");
        assert_eq!(s.store.currency, "EUR");

        let s = SettingsBuilder::new()
            .unwrap()
            .file(&file)
            .unwrap()
            .env(env(&[
                ("BUNDLEFORGE__DATABASE__URL", "sqlite://from-env.db"),
                ("DATABASE_URL", "sqlite://generic.db"),
                ("BUNDLEFORGE__ASSUMPTIONS__COST_RATIO", "0.4"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://from-env.db");
        assert_eq!(s.assumptions.cost_ratio, 0.4);

        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[(
                "BUNDLEFORGE__DATABASE__URL",
                "sqlite://from-env.db",
            )]))
            .unwrap()
            .flag("database.url", "sqlite://from-flag.db")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://from-flag.db");
    }

    #[test]
    fn openai_variables_are_fallbacks_for_the_chat_model_only() {
        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[
                ("OPENAI_API_KEY", "sk-generic"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
                ("BUNDLEFORGE__LLM__API_KEY", "sk-ours"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.llm.api_key.expose(), "sk-ours");
        assert!(
            !format!("{:?}", s.llm).contains("sk-ours"),
            "a key in Debug"
        );
        assert_eq!(s.llm.base_url, "http://127.0.0.1:9/v1");
        // Configuring a chat endpoint never moves embeddings off the local model.
        assert_eq!(s.embed.provider, EmbedProvider::Local);
        assert_eq!(s.llm.provider, LlmProvider::Offline);
    }

    #[test]
    fn database_url_alone_is_honoured() {
        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("DATABASE_URL", "sqlite://generic.db")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://generic.db");
    }

    #[test]
    fn an_unknown_key_in_a_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bf.toml");
        std::fs::write(&file, "[scoring]\nwindow_dayz = 30\n").unwrap();
        let err = SettingsBuilder::new().unwrap().file(&file).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("scoring.window_dayz"), "{msg}");
        assert!(msg.contains("bf.toml"), "{msg}");
    }

    #[test]
    fn workers_share_the_pipeline_threads_and_server_settings_are_checked() {
        let mut s = SettingsBuilder::new()
            .unwrap()
            .flag("pipeline.threads", "8")
            .unwrap()
            .build()
            .unwrap();
        s.share_threads(3);
        assert_eq!(s.pipeline.threads, 2);
        s.share_threads(5);
        assert_eq!(s.pipeline.threads, 1, "never none");
        for (key, value, says) in [
            ("server.bind", "localhost", "not an address and port"),
            ("server.workers", "0", "at least 1"),
            (
                "server.heartbeat_seconds",
                "30",
                "shorter than server.lease_seconds",
            ),
        ] {
            let err = SettingsBuilder::new()
                .unwrap()
                .flag(key, value)
                .unwrap()
                .build()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn unknown_environment_variables_are_warned_about_and_ignored() {
        let b = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("BUNDLEFORGE__NOPE__KEY", "1"), ("PATH", "/bin")]))
            .unwrap();
        assert_eq!(b.warnings().len(), 1);
        assert!(b.warnings()[0].contains("BUNDLEFORGE__NOPE__KEY"));
        assert!(b.build().is_ok());
    }

    #[test]
    fn wrong_types_and_invalid_values_are_refused_with_the_key() {
        let err = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("BUNDLEFORGE__SCORING__WINDOW_DAYS", "sixty")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("scoring.window_days"), "{err}");

        let err = SettingsBuilder::new()
            .unwrap()
            .flag("scoring.small_weights", "0.5,0.5,0.5")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("scoring.small_weights"), "{err}");

        let err = SettingsBuilder::new()
            .unwrap()
            .flag("store.currency", "dollars")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("store.currency"), "{err}");
    }
}
