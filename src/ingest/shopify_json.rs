//! Shopify Admin REST JSON: `{"products": [...]}` with variants, and `{"orders": [...]}`
//! with line items (a single `{"product": …}` / `{"order": …}`, or a bare array of
//! either, is accepted too). Ids may be numbers or strings (`gid://…` kept as given).
//! Errors name the record by its JSON path.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::catalog_entries::{Located, push_deduplicated};
use super::source::{self, FileRole, IngestSource, Opened, Shape};
use super::{IngestBatch, IngestContext, IngestError, Progress, RowError, strip_html};
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
        let Some(fields) = ProductLevel::read(p) else {
            self.batch.report.rows_read += 1;
            let e = self.error(path, "id", "", "a product id is required");
            self.batch.report.reject("missing_value", e);
            return Vec::new();
        };
        let empty = Vec::new();
        let variants = p
            .get("variants")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
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
