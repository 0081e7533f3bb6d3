//! Shopify Admin REST JSON: `{"products": [...]}` with variants, and `{"orders": [...]}`
//! with line items (a single `{"product": …}` / `{"order": …}`, or a bare array of
//! either, is accepted too). Ids may be numbers or strings (`gid://…` kept as given).
//! Errors name the record by its JSON path. As a CSV row is, a record holding a string
//! longer than [`MAX_FIELD_BYTES`](super::MAX_FIELD_BYTES) is rejected whole before
//! anything is read from it (a product with its variants, an order with its lines).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::catalog_entries::{Located, push_deduplicated};
use super::source::{self, FileRole, IngestSource, Opened, Shape};
use super::{
    IngestBatch, IngestContext, IngestError, MAX_FIELD_BYTES, Progress, RowError, VALUE_TOO_LONG,
    strip_html,
};
use crate::domain::{
    Currency, Money, MoneyError, Order, OrderLine, Product, ProductRef, ProductStatus,
};

/// Tells JSON from CSV, for every role: a parsed document, or a file whose first byte
/// opens JSON, is read here as Shopify JSON (`None`); a CSV comes back opened.
pub(super) fn read_if_json<'p>(
    source: &IngestSource,
    given: FileRole,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
    progress: &'p dyn Progress,
) -> Result<Option<Opened<'p>>, IngestError> {
    if let Some(doc) = source.document() {
        read_document(doc, &source.name, given, ctx, batch)?;
        return Ok(None);
    }
    let opened = source::open(source, progress)?;
    if opened.is_json {
        read(opened, given, ctx, batch)?;
        return Ok(None);
    }
    Ok(Some(opened))
}

/// Reads a Shopify JSON document from an opened file.
fn read(
    opened: Opened<'_>,
    given: FileRole,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<(), IngestError> {
    let name = opened.name;
    let doc: Value =
        serde_json::from_reader(opened.reader).map_err(|e| match e.io_error_kind() {
            // A read that failed (or passed the size limit) is not a syntax error.
            Some(kind) => IngestError::Io {
                name: name.clone(),
                source: std::io::Error::new(kind, e.to_string()),
            },
            None => IngestError::Malformed {
                name: name.clone(),
                line: e.line() as u64,
                message: format!("not valid JSON: {e}"),
            },
        })?;
    read_document(&doc, &name, given, ctx, batch)
}

/// Reads a parsed Shopify JSON document; errors and the report call it `name`.
fn read_document(
    doc: &Value,
    name: &str,
    given: FileRole,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<(), IngestError> {
    let (shape, records) = classify(doc).ok_or_else(|| IngestError::Unrecognised {
        name: name.to_owned(),
        columns: "a JSON document without \"products\" or \"orders\"".into(),
        catalogue: Shape::catalogue(),
    })?;
    if shape.role() != given {
        return Err(super::wrong_role(name, shape, given));
    }
    let mut reader = JsonReader {
        file: name.to_owned(),
        ctx,
        batch,
    };
    let rows = records.len() as u64;
    match shape {
        Shape::ShopifyJsonProducts => {
            let mut located = Vec::new();
            for (i, p) in records.iter().enumerate() {
                located.extend(reader.product(&format!("products[{i}]"), p));
            }
            push_deduplicated(name, located, reader.batch);
        }
        _ => {
            for (i, o) in records.iter().enumerate() {
                reader.order(&format!("orders[{i}]"), o);
            }
        }
    }
    batch.report.files.push(super::FileSummary {
        conventions: Default::default(),
        path: name.to_owned(),
        shape: shape.name(),
        rows_read: rows,
    });
    Ok(())
}

/// The document's shape and its records, borrowed from it.
fn classify(doc: &Value) -> Option<(Shape, &[Value])> {
    let looks_like_order = |v: &Value| v.get("line_items").is_some();
    match doc {
        Value::Object(map) => {
            if let Some(Value::Array(a)) = map.get("products") {
                return Some((Shape::ShopifyJsonProducts, a));
            }
            if let Some(Value::Array(a)) = map.get("orders") {
                return Some((Shape::ShopifyJsonOrders, a));
            }
            if let Some(p) = map.get("product") {
                return Some((Shape::ShopifyJsonProducts, std::slice::from_ref(p)));
            }
            if let Some(o) = map.get("order") {
                return Some((Shape::ShopifyJsonOrders, std::slice::from_ref(o)));
            }
            None
        }
        Value::Array(a) => match a.first() {
            Some(first) if looks_like_order(first) => Some((Shape::ShopifyJsonOrders, a)),
            Some(first) if first.get("variants").is_some() || first.get("title").is_some() => {
                Some((Shape::ShopifyJsonProducts, a))
            }
            _ => None,
        },
        _ => None,
    }
}

/// A string or number field as text; empty strings and nulls are absent.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One step of the path to a value inside a record.
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

/// The first string under `record` longer than [`MAX_FIELD_BYTES`], with its path below
/// the record (`body_html`, `tags[3]`, `customer.email`; empty for the record itself).
/// The member `nested` is left out: its records are checked on their own (a product's
/// variants, an order's line items).
fn oversized<'v>(record: &'v Value, nested: Option<&str>) -> Option<(String, &'v str)> {
    let mut steps = Vec::new();
    let found = match record {
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != nested)
            .find_map(|(k, v)| {
                let found = over_long(v, &mut steps)?;
                steps.push(Step::Key(k.as_str()));
                Some(found)
            })?,
        other => over_long(other, &mut steps)?,
    };
    let mut path = String::new();
    for step in steps.iter().rev() {
        match step {
            Step::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    Some((path, found))
}

/// The first string under `v` past [`MAX_FIELD_BYTES`]; `steps` gets its path, last
/// step first.
fn over_long<'v>(v: &'v Value, steps: &mut Vec<Step<'v>>) -> Option<&'v str> {
    match v {
        Value::String(s) if s.len() > MAX_FIELD_BYTES => Some(s.as_str()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
            let found = over_long(x, steps)?;
            steps.push(Step::Index(i));
            Some(found)
        }),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            let found = over_long(x, steps)?;
            steps.push(Step::Key(k.as_str()));
            Some(found)
        }),
        _ => None,
    }
}

struct JsonReader<'a> {
    file: String,
    ctx: &'a IngestContext,
    batch: &'a mut IngestBatch,
}

impl JsonReader<'_> {
    fn error(&self, path: &str, key: &str, value: &str, reason: &str) -> RowError {
        RowError {
            file: self.file.clone(),
            line: 0,
            column: format!("{path}.{key}"),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// The error of a record holding `value`, past [`MAX_FIELD_BYTES`], at `key` below
    /// `path`: the document, the value's path and its first bytes, worded as for CSV.
    fn too_long(&self, path: &str, key: &str, value: &str) -> RowError {
        let head = super::value_head(value.as_bytes());
        let mut e = self.error(path, key, &head, &super::value_too_long(value.len()));
        if key.is_empty() {
            e.column = path.to_owned();
        }
        e
    }

    /// An amount at `key`, parsed in `currency`; absent when the key is.
    fn money(
        &self,
        v: &Value,
        path: &str,
        key: &str,
        currency: Currency,
    ) -> Result<Option<Money>, BadAmount> {
        let Some(t) = text(v, key) else {
            return Ok(None);
        };
        Money::parse_non_negative(&t, currency)
            .map(Some)
            .map_err(|cause| {
                let reason = match cause {
                    MoneyError::Negative => "cannot be negative",
                    _ => "not a decimal amount",
                };
                BadAmount {
                    error: Box::new(self.error(path, key, &t, reason)),
                    cause,
                }
            })
    }

    /// One product's catalog entries, one per variant with a price.
    fn product(&mut self, path: &str, p: &Value) -> Vec<Located> {
        let empty = Vec::new();
        let variants = p
            .get("variants")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        // Before anything is read from it (a description is stripped of its markup).
        if let Some((key, value)) = oversized(p, Some("variants")) {
            let e = self.too_long(path, &key, value);
            let rows = variants.len().max(1) as u64;
            self.batch.report.rows_read += rows;
            self.reject_all(rows, VALUE_TOO_LONG, e);
            return Vec::new();
        }
        let Some(fields) = ProductLevel::read(p) else {
            self.batch.report.rows_read += 1;
            let e = self.error(path, "id", "", "a product id is required");
            self.batch.report.reject("missing_value", e);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (vi, v) in variants.iter().enumerate() {
            if let Some(product) = self.variant(path, vi, v, &fields) {
                out.push(Located { line: 0, product });
            }
        }
        if variants.is_empty() {
            self.batch.report.rows_read += 1;
            let e = self.error(
                path,
                "variants",
                "",
                "a product needs at least one variant with a price",
            );
            self.batch.report.reject("missing_value", e);
        }
        out
    }

    /// Variant `vi` of the product at `path` as a catalog entry: one row read, kept
    /// or rejected (`None`).
    fn variant(&mut self, path: &str, vi: usize, v: &Value, p: &ProductLevel) -> Option<Product> {
        let vpath = format!("{path}.variants[{vi}]");
        self.batch.report.rows_read += 1;
        if let Some((key, value)) = oversized(v, None) {
            let e = self.too_long(&vpath, &key, value);
            self.batch.report.reject(VALUE_TOO_LONG, e);
            return None;
        }
        if p.title.is_empty() {
            let e = self.error(path, "title", "", "a title is required");
            self.batch.report.reject("missing_value", e);
            return None;
        }
        let currency = self.ctx.default_currency;
        let price = match self.money(v, &vpath, "price", currency) {
            Ok(Some(m)) => m,
            Ok(None) => {
                let e = self.error(&vpath, "price", "", "a price is required");
                self.batch.report.reject("missing_value", e);
                return None;
            }
            Err(e) => {
                self.batch.report.reject(e.price_key(), *e.error);
                return None;
            }
        };
        let compare_at = self
            .money(v, &vpath, "compare_at_price", currency)
            .unwrap_or_else(|e| {
                self.batch
                    .report
                    .ignore_value("bad_compare_at_price", *e.error);
                None
            });
        let cost = self.money(v, &vpath, "cost", currency).unwrap_or_else(|e| {
            self.batch.report.ignore_value("bad_cost", *e.error);
            None
        });
        let variant_id = text(v, "id").unwrap_or_else(|| format!("{}#{}", p.product_id, vi + 1));
        let inventory = match v.get("inventory_quantity") {
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        // Shopify reports untracked variants with inventory_management = null.
        let tracked = !matches!(v.get("inventory_management"), Some(Value::Null));
        let variant_title = text(v, "title").filter(|t| t != "Default Title");
        self.batch.report.rows_kept += 1;
        Some(Product {
            variant_id,
            product_id: p.product_id.clone(),
            sku: text(v, "sku"),
            handle: p.handle.clone(),
            title: p.title.clone(),
            variant_title,
            description: p.description.clone(),
            category: p.category.clone(),
            product_type: p.product_type.clone(),
            vendor: p.vendor.clone(),
            tags: p.tags.clone(),
            price,
            compare_at_price: compare_at,
            cost,
            inventory: if tracked { inventory } else { None },
            status: p.status,
            created_at: p.created_at,
            gift_card: p.gift_card,
            inventory_item_id: text(v, "inventory_item_id"),
        })
    }

    /// One order: its order-level fields, then each line item as a row.
    fn order(&mut self, path: &str, o: &Value) {
        let empty = Vec::new();
        let items = o
            .get("line_items")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let rows = items.len().max(1) as u64;
        self.batch.report.rows_read += rows;
        if let Some((key, value)) = oversized(o, Some("line_items")) {
            let e = self.too_long(path, &key, value);
            self.reject_all(rows, VALUE_TOO_LONG, e);
            return;
        }
        let Some(head) = self.order_head(path, o, rows) else {
            return;
        };
        let mut lines = Vec::new();
        let rejected_before = self.batch.report.rejected_total();
        for (li, item) in items.iter().enumerate() {
            let lpath = format!("{path}.line_items[{li}]");
            lines.extend(self.line_item(&lpath, item, head.currency));
        }
        if items.is_empty() {
            self.batch.report.drop_row("order_without_lines");
        }
        if lines.is_empty() {
            return;
        }
        if self.batch.report.rejected_total() > rejected_before {
            self.batch.incomplete_orders.insert(head.order_id.clone());
        }
        self.batch.orders.push(Order {
            order_id: head.order_id,
            name: text(o, "name"),
            created_at: head.created_at,
            customer_key: head.customer,
            currency: head.currency,
            currency_assumed: head.currency_assumed,
            lines,
        });
    }

    /// An order's id, date, currency and customer; `None` when one that is required
    /// is missing or bad, every row of the order rejected for it.
    fn order_head(&mut self, path: &str, o: &Value, rows: u64) -> Option<OrderHead> {
        let Some(order_id) = text(o, "id").or_else(|| text(o, "name")) else {
            let e = self.error(path, "id", "", "an order id is required");
            self.reject_all(rows, "missing_order_id", e);
            return None;
        };
        let created_text = text(o, "created_at").or_else(|| text(o, "processed_at"));
        let parsed = created_text.as_deref().map(super::parse_checked);
        let Some(Ok(created_at)) = parsed else {
            let value = created_text.unwrap_or_default();
            let reason = match parsed {
                Some(Err(reason)) => reason,
                _ => "not a date and time".to_owned(),
            };
            let key = if value.is_empty() {
                "missing_date"
            } else {
                "bad_date"
            };
            let e = self.error(path, "created_at", &value, &reason);
            self.reject_all(rows, key, e);
            return None;
        };
        let (currency, currency_assumed) = match text(o, "currency").map(|c| Currency::parse(&c)) {
            Some(Ok(c)) => (c, false),
            Some(Err(_)) => {
                let value = text(o, "currency").unwrap_or_default();
                let e = self.error(path, "currency", &value, "not a currency code (e.g. USD)");
                self.reject_all(rows, "bad_currency", e);
                return None;
            }
            None => (self.ctx.default_currency, true),
        };
        let customer = o
            .get("customer")
            .and_then(|c| text(c, "id").or_else(|| text(c, "email")))
            .or_else(|| text(o, "email"));
        Some(OrderHead {
            order_id,
            created_at,
            currency,
            currency_assumed,
            customer,
        })
    }

    /// Rejects every row an order stands for: each line item, or the one row of an
    /// order without any.
    fn reject_all(&mut self, rows: u64, key: &str, err: RowError) {
        for _ in 0..rows {
            self.batch.report.reject(key, err.clone());
        }
    }

    /// One line item as an order line: kept, dropped or rejected (`None`).
    fn line_item(&mut self, lpath: &str, item: &Value, currency: Currency) -> Option<OrderLine> {
        if let Some((key, value)) = oversized(item, None) {
            let e = self.too_long(lpath, &key, value);
            self.batch.report.reject(VALUE_TOO_LONG, e);
            return None;
        }
        let product = ProductRef {
            variant_id: text(item, "variant_id"),
            sku: text(item, "sku"),
            product_id: text(item, "product_id"),
            title: text(item, "name").or_else(|| text(item, "title")),
        };
        if product.is_empty() {
            let e = self.error(
                lpath,
                "variant_id",
                "",
                "the line names no product (variant id, SKU, product id or title)",
            );
            self.batch.report.reject("no_product_reference", e);
            return None;
        }
        let qty_text = text(item, "quantity").unwrap_or_default();
        let quantity = match super::parse_quantity(&qty_text, super::MAX_LINE_QUANTITY) {
            Ok(q) => q,
            Err(q) => {
                let e = self.error(lpath, "quantity", &qty_text, &q.reason);
                self.batch.report.reject(q.key, e);
                return None;
            }
        };
        if quantity <= 0 {
            self.batch.report.drop_row("quantity_not_positive");
            return None;
        }
        let price = match self.money(item, lpath, "price", currency) {
            Ok(Some(m)) => m.minor,
            Ok(None) => {
                let e = self.error(lpath, "price", "", "a unit price is required");
                self.batch.report.reject("missing_value", e);
                return None;
            }
            Err(e) => {
                self.batch.report.reject(e.price_key(), *e.error);
                return None;
            }
        };
        let discount = match self.money(item, lpath, "total_discount", currency) {
            Ok(d) => d.map(|m| m.minor).unwrap_or(0),
            Err(e) => {
                self.batch.report.ignore_value("bad_discount", *e.error);
                0
            }
        };
        self.batch.report.rows_kept += 1;
        Some(OrderLine {
            product,
            item_id: None,
            quantity,
            unit_price_minor: price,
            discount_minor: discount,
        })
    }
}

/// An amount refused: its cause, typed (a negative price is counted apart from an
/// unreadable one), and the error that names it (boxed: most amounts pass).
struct BadAmount {
    cause: MoneyError,
    error: Box<RowError>,
}

impl BadAmount {
    /// The key a refused price is counted under.
    fn price_key(&self) -> &'static str {
        match self.cause {
            MoneyError::Negative => "negative_price",
            _ => "bad_price",
        }
    }
}

/// A product's own fields, which each of its variants repeats.
struct ProductLevel {
    product_id: String,
    handle: Option<String>,
    title: String,
    description: String,
    category: Option<String>,
    product_type: Option<String>,
    vendor: Option<String>,
    tags: Vec<String>,
    status: Option<ProductStatus>,
    created_at: Option<DateTime<Utc>>,
    gift_card: bool,
}

impl ProductLevel {
    /// `None` when the product has neither an id nor a handle.
    fn read(p: &Value) -> Option<Self> {
        let product_id = text(p, "id").or_else(|| text(p, "handle"))?;
        let tags: Vec<String> = match p.get("tags") {
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let product_type = text(p, "product_type");
        let gift_card = product_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("gift card"));
        Some(ProductLevel {
            product_id,
            handle: text(p, "handle"),
            title: text(p, "title").unwrap_or_default(),
            description: text(p, "body_html")
                .or_else(|| text(p, "descriptionHtml"))
                .map(|h| strip_html(&h))
                .unwrap_or_default(),
            category: text(p, "product_category").or_else(|| text(p, "category")),
            product_type,
            vendor: text(p, "vendor"),
            tags,
            status: text(p, "status").and_then(|s| ProductStatus::parse(&s)),
            created_at: text(p, "published_at")
                .or_else(|| text(p, "created_at"))
                .and_then(|t| super::parse_checked(&t).ok()),
            gift_card,
        })
    }
}

/// An order's fields that every line shares.
struct OrderHead {
    order_id: String,
    created_at: DateTime<Utc>,
    currency: Currency,
    currency_assumed: bool,
    customer: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(doc: &Value, name: &str, role: FileRole) -> IngestBatch {
        let ctx = IngestContext {
            default_currency: Currency::USD,
            currency_fixed: false,
        };
        let mut batch = IngestBatch::default();
        read_document(doc, name, role, &ctx, &mut batch).unwrap();
        batch
    }

    /// Whether an error names `column` of `file` with the value's first bytes, in the
    /// words CSV uses.
    fn names(batch: &IngestBatch, file: &str, column: &str) -> bool {
        let want = format!("{file}: {column} \"xxxx");
        batch.report.errors.iter().any(|e| {
            let text = e.to_string();
            text.starts_with(&want)
                && text.contains("longer than 1024 KiB, the limit for one value")
        })
    }

    #[test]
    fn a_product_string_past_the_per_value_limit_rejects_its_record_and_names_its_field() {
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let doc = json!({"products": [
            {"id": 1, "title": "Mug", "body_html": &long,
             "variants": [{"id": 11, "price": "5.00"}, {"id": 12, "price": "6.00"}]},
            {"id": 2, "title": "Tea", "tags": ["green", &long],
             "variants": [{"id": 21, "price": "4.00"}]},
            {"id": 3, "title": "Pot",
             "variants": [{"id": 31, "price": "9.00", "sku": &long}, {"id": 32, "price": "9.50"}]},
            {"id": 4, "title": "Cup", "variants": [{"id": 41, "price": "2.00"}]},
        ]});
        let batch = read(&doc, "products.json", FileRole::Catalog);
        let r = &batch.report;
        // Product 1's two variants, product 2's one, product 3's first.
        assert_eq!(r.rejected.get(VALUE_TOO_LONG), Some(&4), "{:?}", r.rejected);
        assert_eq!((r.rows_read, r.rows_kept), (6, 2));
        let kept: Vec<&str> = batch
            .products
            .iter()
            .map(|p| p.variant_id.as_str())
            .collect();
        assert_eq!(kept, ["32", "41"]);
        for column in [
            "products[0].body_html",
            "products[1].tags[1]",
            "products[2].variants[0].sku",
        ] {
            assert!(
                names(&batch, "products.json", column),
                "{column}: {:?}",
                r.errors
            );
        }
        // A value at the limit is read.
        let at_limit = "y".repeat(MAX_FIELD_BYTES);
        let doc = json!({"products": [{"id": 5, "title": "Jar", "body_html": at_limit,
                                       "variants": [{"id": 51, "price": "1.00"}]}]});
        let batch = read(&doc, "products.json", FileRole::Catalog);
        assert_eq!(batch.report.rejected_total(), 0);
        assert_eq!(batch.products.len(), 1);
    }

    #[test]
    fn an_order_string_past_the_per_value_limit_rejects_its_line_or_its_order() {
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let doc = json!({"orders": [
            {"id": 1, "created_at": "2024-01-01T00:00:00Z", "line_items": [
                {"sku": "A", "quantity": 1, "price": "2.00", "title": &long},
                {"sku": "B", "quantity": 1, "price": "3.00"}]},
            {"id": 2, "created_at": "2024-01-02T00:00:00Z", "customer": {"email": &long},
             "line_items": [{"sku": "A", "quantity": 1, "price": "2.00"},
                            {"sku": "B", "quantity": 1, "price": "3.00"}]},
        ]});
        let batch = read(&doc, "orders.json", FileRole::Orders);
        let r = &batch.report;
        assert_eq!(r.rejected.get(VALUE_TOO_LONG), Some(&3), "{:?}", r.rejected);
        assert_eq!(batch.orders.len(), 1);
        assert_eq!(batch.orders[0].lines.len(), 1);
        assert!(batch.incomplete_orders.contains("1"));
        assert!(names(
            &batch,
            "orders.json",
            "orders[0].line_items[0].title"
        ));
        assert!(names(&batch, "orders.json", "orders[1].customer.email"));
    }
}
