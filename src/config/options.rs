//! The values a setting may take when it is not a number or free text: the option
//! enums, and [`Secret`] for credentials.

use serde::Deserialize;

/// Option values as types: what a setting may say is its enum's variants.
macro_rules! option_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

option_enum!(
    /// Who answers the model's tasks.
    LlmProvider { Offline = "offline", Openai = "openai" }
);
option_enum!(
    /// How the client asks for JSON: `response_format` json_object, a JSON schema, or
    /// nothing (the prompt alone).
    JsonMode { Object = "object", Schema = "schema", None = "none" }
);
option_enum!(
    /// Which embedder turns products into vectors.
    EmbedProvider { Local = "local", Openai = "openai" }
);
option_enum!(
    /// Exact search, the approximate index, or the measured crossover between them.
    IndexMethod { Auto = "auto", Exact = "exact", Approximate = "approximate" }
);
option_enum!(
    /// Final prices as computed, or raised to end in .99.
    PriceEnding { None = "none", NinetyNine = "99" }
);

/// A credential: read like any setting, never shown. `Debug` prints whether it is set,
/// so settings can be logged and errors can quote them without leaking it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "<unset>"
        } else {
            "<secret>"
        })
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}
