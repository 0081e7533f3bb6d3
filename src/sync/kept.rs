//! What is kept of a webhook's body: only what applying it reads. An order keeps its
//! customer as the one key the orders reader takes (their id, else their email);
//! names, phones, addresses and the rest of what a person could be known by are never
//! stored. A topic the applier reads nothing of keeps `{}`.
//!
//! The field lists follow what `ingest::shopify_json` (orders), `payload` and `topics`
//! read: a field they start to read must be added here, or it arrives empty.

use serde_json::{Map, Value};

use super::payload::text_of;

/// An order's fields the orders reader and a cancellation read.
const ORDER_FIELDS: &[&str] = &[
    "id",
    "name",
    "created_at",
    "processed_at",
    "updated_at",
    "cancelled_at",
    "currency",
];
/// A line item's fields the orders reader reads.
const LINE_FIELDS: &[&str] = &[
    "id",
    "variant_id",
    "product_id",
    "sku",
    "name",
    "title",
    "quantity",
    "price",
    "total_discount",
];
/// A refund's fields, its lines' and their line items'.
const REFUND_FIELDS: &[&str] = &["id", "order_id"];
const REFUND_LINE_FIELDS: &[&str] = &["id", "line_item_id", "quantity"];
const REFUND_ITEM_FIELDS: &[&str] = &["id", "variant_id", "sku"];
/// A compliance request's fields; the customer's phone is kept only to find the
/// stored bodies that name them when they are redacted.
const REQUEST_FIELDS: &[&str] = &[
    "shop_id",
    "shop_domain",
    "orders_requested",
    "orders_to_redact",
    "data_request",
];
const REQUEST_CUSTOMER_FIELDS: &[&str] = &["id", "email", "phone"];

/// The body to keep of a verified webhook of `topic`. A body that is not JSON is kept
/// as it came, for the applier to fail with the parser's reason (the retention
/// erases it).
pub fn kept_body(topic: &str, body: &[u8]) -> Vec<u8> {
    let minimize: fn(&Value) -> Value = match topic {
        // Catalog and stock: nothing in them is a person's.
        "products/create" | "products/update" | "products/delete" | "inventory_levels/update" => {
            return body.to_vec();
        }
        "orders/create" | "orders/updated" | "orders/cancelled" => order,
        "refunds/create" => refund,
        "customers/data_request" | "customers/redact" => customer_request,
        // app/uninstalled names the shop's owner; shop/redact and topics we do not act
        // on are applied without reading their body.
        _ => return b"{}".to_vec(),
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => serde_json::to_vec(&minimize(&v)).unwrap_or_else(|_| body.to_vec()),
        Err(_) => body.to_vec(),
    }
}

/// `fields` of `v`, those it has (none when it is not an object).
fn pick(v: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        for &f in fields {
            if let Some(x) = m.get(f) {
                out.insert(f.to_owned(), x.clone());
            }
        }
    }
    out
}

/// Whether `v[key]` is a value the readers take as text (a number or a non-blank
/// string).
fn has_text(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Number(_)) => true,
        Some(Value::String(s)) => !s.trim().is_empty(),
        _ => false,
    }
}

fn order(o: &Value) -> Value {
    let mut kept = pick(o, ORDER_FIELDS);
    if let Some(items) = o.get("line_items") {
        let items = match items {
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|i| Value::Object(pick(i, LINE_FIELDS)))
                    .collect(),
            ),
            // Not a list: the reader refuses it as it came.
            other => other.clone(),
        };
        kept.insert("line_items".to_owned(), items);
    }
    // The customer's key as the reader picks it: their id, else their email, else the
    // order's email.
    let customer = o.get("customer").unwrap_or(&Value::Null);
    if let Some(key) = ["id", "email"].into_iter().find(|k| has_text(customer, k)) {
        kept.insert("customer".to_owned(), Value::Object(pick(customer, &[key])));
    } else if has_text(o, "email") {
        kept.insert("email".to_owned(), o["email"].clone());
    }
    Value::Object(kept)
}

fn refund(r: &Value) -> Value {
    let mut kept = pick(r, REFUND_FIELDS);
    if let Some(Value::Array(lines)) = r.get("refund_line_items") {
        let lines = lines
            .iter()
            .map(|l| {
                let mut line = pick(l, REFUND_LINE_FIELDS);
                if let Some(item) = l.get("line_item") {
                    line.insert(
                        "line_item".to_owned(),
                        Value::Object(pick(item, REFUND_ITEM_FIELDS)),
                    );
                }
                Value::Object(line)
            })
            .collect();
        kept.insert("refund_line_items".to_owned(), Value::Array(lines));
    }
    Value::Object(kept)
}

fn customer_request(b: &Value) -> Value {
    let mut kept = pick(b, REQUEST_FIELDS);
    if let Some(c) = b.get("customer") {
        kept.insert(
            "customer".to_owned(),
            Value::Object(pick(c, REQUEST_CUSTOMER_FIELDS)),
        );
    }
    Value::Object(kept)
}

/// A kept `body` of `topic`, not applied yet, without the customer a redaction names
/// by `keys` (their id, email, phone): `None` when it does not name them; else what is
/// to be kept instead: an order without its customer (its basket still applies), and
/// nothing of anything else that names them.
pub(super) fn without_customer(topic: &str, body: &[u8], keys: &[String]) -> Option<Vec<u8>> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        // Not JSON: applying it fails anyway, and it was found holding a key.
        return Some(Vec::new());
    };
    let names = |v: &Value, field: &str| text_of(v.get(field)).is_some_and(|t| keys.contains(&t));
    match topic {
        "orders/create" | "orders/updated" | "orders/cancelled" => {
            let mut kept = order(&v);
            let customer = kept
                .get("customer")
                .is_some_and(|c| names(c, "id") || names(c, "email"));
            if !customer && !names(&kept, "email") {
                return None;
            }
            if let Value::Object(m) = &mut kept {
                m.remove("customer");
                m.remove("email");
            }
            // An order that cannot be written is not kept at all.
            Some(serde_json::to_vec(&kept).unwrap_or_default())
        }
        "customers/data_request" | "customers/redact" => {
            let c = v.get("customer").unwrap_or(&Value::Null);
            (names(c, "id") || names(c, "email") || names(c, "phone")).then(Vec::new)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kept(topic: &str, body: &Value) -> Value {
        serde_json::from_slice(&kept_body(topic, body.to_string().as_bytes())).unwrap()
    }

    #[test]
    fn an_order_keeps_what_the_reader_reads_and_nothing_that_names_its_customer() {
        let address = json!({"first_name": "Zenobia", "last_name": "Quarrington",
                             "address1": "12 Wrenfield Lane", "phone": "+16135550142"});
        let order = json!({
            "id": 1001, "name": "#1001", "created_at": "2026-03-02T10:00:00Z",
            "updated_at": "2026-03-02T10:00:00Z", "currency": "USD",
            "email": "zenobia@example.org", "phone": "+16135550142",
            "customer": {"id": 207119551, "email": "zenobia@example.org",
                         "first_name": "Zenobia", "default_address": address},
            "billing_address": address, "shipping_address": address,
            "line_items": [{"id": 1, "variant_id": 808950810, "title": "Mug", "quantity": 2,
                            "price": "18.00", "sku": "MUG-1",
                            "properties": [{"name": "Engraving", "value": "Zenobia"}]}]
        });
        let k = kept("orders/create", &order);
        assert_eq!(k["customer"], json!({"id": 207119551}));
        assert_eq!(k["line_items"][0]["price"], "18.00");
        assert_eq!(k["line_items"][0]["variant_id"], 808950810);
        assert_eq!(k["updated_at"], "2026-03-02T10:00:00Z");
        let text = k.to_string();
        for personal in [
            "Zenobia",
            "Quarrington",
            "Wrenfield",
            "5550142",
            "example.org",
        ] {
            assert!(!text.contains(personal), "{personal} kept: {text}");
        }
        // A guest: the order's email is the key the reader takes.
        let guest = json!({"id": 1002, "email": "guest@example.org", "phone": "+1555",
                           "line_items": []});
        let k = kept("orders/create", &guest);
        assert_eq!(k["email"], "guest@example.org");
        assert!(k.get("phone").is_none());
    }

    #[test]
    fn compliance_requests_keep_the_customers_keys_and_other_topics_what_they_need() {
        let redact = json!({"shop_id": 1, "shop_domain": "mugs.myshopify.com",
                            "customer": {"id": 7, "email": "a@b.c", "phone": "+1555",
                                         "first_name": "Zenobia"},
                            "orders_to_redact": [1001]});
        let k = kept("customers/redact", &redact);
        assert_eq!(
            k["customer"],
            json!({"id": 7, "email": "a@b.c", "phone": "+1555"})
        );
        assert_eq!(k["orders_to_redact"], json!([1001]));
        let refund = json!({"id": 9, "order_id": 1001, "note": "Zenobia asked",
                            "refund_line_items": [{"id": 1, "quantity": 1,
                              "line_item": {"id": 1, "variant_id": 5, "sku": "S", "name": "Mug"}}]});
        let k = kept("refunds/create", &refund);
        assert!(k.get("note").is_none());
        assert_eq!(
            k["refund_line_items"][0]["line_item"],
            json!({"id": 1, "variant_id": 5, "sku": "S"})
        );
        let shop = json!({"id": 1, "email": "owner@example.org", "shop_owner": "Zenobia"});
        assert_eq!(kept("app/uninstalled", &shop), json!({}));
        let product = br#"{"id":1,"title":"Mug"}"#;
        assert_eq!(kept_body("products/update", product), product.to_vec());
        assert_eq!(
            kept_body("orders/create", b"not json"),
            b"not json".to_vec()
        );
    }

    #[test]
    fn a_redaction_takes_its_customer_out_of_an_order_not_applied_yet_and_the_rest_stays() {
        let keys = vec!["7".to_owned(), "a@b.c".to_owned(), "+1555".to_owned()];
        let scrub = |topic: &str, body: &Value| {
            without_customer(topic, &kept_body(topic, body.to_string().as_bytes()), &keys)
        };
        let order = json!({"id": 1001, "updated_at": "2026-03-02T10:00:00Z", "email": "a@b.c",
                           "customer": {"id": 7, "email": "a@b.c"},
                           "line_items": [{"id": 1, "variant_id": 5, "quantity": 7}]});
        let Some(scrubbed) = scrub("orders/updated", &order) else {
            panic!("the order names the customer")
        };
        let scrubbed: Value = serde_json::from_slice(&scrubbed).unwrap();
        assert!(scrubbed.get("customer").is_none() && scrubbed.get("email").is_none());
        assert_eq!(scrubbed["line_items"][0]["quantity"], 7, "{scrubbed}");
        assert_eq!(scrubbed["updated_at"], "2026-03-02T10:00:00Z");
        // A guest's order, by its email.
        let guest = json!({"id": 1002, "email": "a@b.c", "line_items": []});
        let scrubbed: Value =
            serde_json::from_slice(&scrub("orders/create", &guest).unwrap()).unwrap();
        assert_eq!(scrubbed, json!({"id": 1002, "line_items": []}));
        // Another customer's order, even one whose quantity reads as a key: unchanged.
        let other = json!({"id": 1003, "customer": {"id": 8}, "line_items": [{"quantity": 7}]});
        assert_eq!(scrub("orders/create", &other), None);
        // Their own compliance requests go whole; another's stay.
        let request = json!({"customer": {"id": 9, "phone": "+1555"}, "orders_requested": []});
        assert_eq!(scrub("customers/data_request", &request), Some(Vec::new()));
        let another = json!({"customer": {"id": 9, "email": "d@e.f"}});
        assert_eq!(scrub("customers/redact", &another), None);
        assert_eq!(scrub("products/update", &json!({"id": 7})), None);
        assert_eq!(
            without_customer("orders/create", b"a@b.c", &keys),
            Some(Vec::new())
        );
    }
}
