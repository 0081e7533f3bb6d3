//! Reading a webhook's JSON: ids that come as numbers or strings, `updated_at`, a
//! compliance request's customer.

use serde_json::Value;

/// An id or key as text: Shopify sends ids as numbers, some as strings.
pub(super) fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// The id of a webhook's resource, as text.
pub(super) fn id_of(v: &Value) -> Option<String> {
    text_of(v.get("id"))
}

/// `updated_at` (RFC 3339) as Unix ms.
pub(super) fn updated_at(v: &Value) -> Option<i64> {
    let text = v.get("updated_at")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The version of an update without a readable `updated_at`: older than any dated one,
/// so it applies only to a resource nothing was applied to yet (an undated update
/// cannot say it is the newer), and a second undated one is stale after it.
pub(super) const UNDATED: i64 = i64::MIN;

/// An update's version for last-write-wins: its `updated_at` in Unix ms, else
/// [`UNDATED`].
pub(super) fn version_of(v: &Value) -> i64 {
    updated_at(v).unwrap_or(UNDATED)
}

/// A compliance request's customer keys (id, email) and order ids.
pub(super) fn customer_of(body: &Value) -> (Vec<String>, Vec<String>) {
    let keys = [
        text_of(body.pointer("/customer/id")),
        text_of(body.pointer("/customer/email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let orders = ["orders_requested", "orders_to_redact"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| text_of(Some(v)))
        .collect();
    (keys, orders)
}

/// `{key: value}`, built around the value itself (`json!` would copy it).
pub(super) fn document(key: &str, value: Value) -> Value {
    Value::Object(serde_json::Map::from_iter([(key.to_owned(), value)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_read_as_text_whether_numbers_or_strings() {
        assert_eq!(id_of(&json!({"id": 632910392})), Some("632910392".into()));
        assert_eq!(
            id_of(&json!({"id": " gid://x/1 "})),
            Some("gid://x/1".into())
        );
        assert_eq!(id_of(&json!({"id": ""})), None);
        assert_eq!(
            updated_at(&json!({"updated_at": "2026-01-02T03:04:05Z"})),
            Some(1_767_323_045_000)
        );
        // Without a date, or with one that does not read: older than any dated update.
        for undated in [
            json!({}),
            json!({"updated_at": "yesterday"}),
            json!({"updated_at": 5}),
        ] {
            assert_eq!(version_of(&undated), UNDATED);
            assert!(
                version_of(&undated) < version_of(&json!({"updated_at": "1970-01-01T00:00:00Z"}))
            );
        }
        let (keys, orders) = customer_of(&json!({
            "customer": {"id": 7, "email": "a@b.c"},
            "orders_to_redact": [1, "2"]
        }));
        assert_eq!(keys, ["7", "a@b.c"]);
        assert_eq!(orders, ["1", "2"]);
    }
}
