//! Shopify Admin REST JSON: `{"products": [...]}` with variants, and `{"orders": [...]}`
//! with line items (a single `{"product": …}` / `{"order": …}`, or a bare array of
//! either, is accepted too). Ids may be numbers or strings (`gid://…` kept as given).
//! Errors name the record by its JSON path.

use serde_json::Value;

use super::catalog_entries::{Located, push_deduplicated};
use super::source::{FileRole, Opened, Shape};
use super::{IngestBatch, IngestContext, IngestError, RowError, strip_html};
use crate::domain::{Currency, Money, Order, OrderLine, Product, ProductRef, ProductStatus};

/// Reads a Shopify JSON document from an opened file.
pub fn read(
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
pub fn read_document(
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

    fn money(
        &mut self,
        v: &Value,
        path: &str,
        key: &str,
        currency: Currency,
    ) -> Result<Option<Money>, RowError> {
        let Some(t) = text(v, key) else {
            return Ok(None);
        };
        match Money::parse(&t, currency) {
            Ok(m) if m.minor >= 0 => Ok(Some(m)),
            Ok(_) => Err(self.error(path, key, &t, "cannot be negative")),
            Err(_) => Err(self.error(path, key, &t, "not a decimal amount")),
        }
    }

    fn product(&mut self, path: &str, p: &Value) -> Vec<Located> {
        let report_reject =
            |me: &mut Self, key: &str, err: RowError| me.batch.report.reject(key, err);
        let Some(product_id) = text(p, "id").or_else(|| text(p, "handle")) else {
            self.batch.report.rows_read += 1;
            report_reject(
                self,
                "missing_value",
                self.error(path, "id", "", "a product id is required"),
            );
            return Vec::new();
        };
        let title = text(p, "title").unwrap_or_default();
        let description = text(p, "body_html")
            .or_else(|| text(p, "descriptionHtml"))
            .map(|h| strip_html(&h))
            .unwrap_or_default();
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
        let status = text(p, "status").and_then(|s| ProductStatus::parse(&s));
        let created_at = text(p, "published_at")
            .or_else(|| text(p, "created_at"))
            .and_then(|t| super::parse_checked(&t).ok());
        let product_type = text(p, "product_type");
        let gift_card = product_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("gift card"));
        let empty = Vec::new();
        let variants = p
            .get("variants")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let mut out = Vec::new();
        for (vi, v) in variants.iter().enumerate() {
            let vpath = format!("{path}.variants[{vi}]");
            self.batch.report.rows_read += 1;
            if title.is_empty() {
                report_reject(
                    self,
                    "missing_value",
                    self.error(path, "title", "", "a title is required"),
                );
                continue;
            }
            let currency = self.ctx.default_currency;
            let price = match self.money(v, &vpath, "price", currency) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    report_reject(
                        self,
                        "missing_value",
                        self.error(&vpath, "price", "", "a price is required"),
                    );
                    continue;
                }
                Err(e) => {
                    let key = if e.reason.contains("negative") {
                        "negative_price"
                    } else {
                        "bad_price"
                    };
                    report_reject(self, key, e);
                    continue;
                }
            };
            let compare_at = self
                .money(v, &vpath, "compare_at_price", currency)
                .unwrap_or_else(|e| {
                    self.batch.report.ignore_value("bad_compare_at_price", e);
                    None
                });
            let cost = self.money(v, &vpath, "cost", currency).unwrap_or_else(|e| {
                self.batch.report.ignore_value("bad_cost", e);
                None
            });
            let variant_id = text(v, "id").unwrap_or_else(|| format!("{product_id}#{}", vi + 1));
            let inventory = match v.get("inventory_quantity") {
                Some(Value::Number(n)) => n.as_i64(),
                _ => None,
            };
            // Shopify reports untracked variants with inventory_management = null.
            let tracked = !matches!(v.get("inventory_management"), Some(Value::Null));
            let variant_title = text(v, "title").filter(|t| t != "Default Title");
            self.batch.report.rows_kept += 1;
            out.push(Located {
                line: 0,
                product: Product {
                    variant_id,
                    product_id: product_id.clone(),
                    sku: text(v, "sku"),
                    handle: text(p, "handle"),
                    title: title.clone(),
                    variant_title,
                    description: description.clone(),
                    category: text(p, "product_category").or_else(|| text(p, "category")),
                    product_type: product_type.clone(),
                    vendor: text(p, "vendor"),
                    tags: tags.clone(),
                    price,
                    compare_at_price: compare_at,
                    cost,
                    inventory: if tracked { inventory } else { None },
                    status,
                    created_at,
                    gift_card,
                    inventory_item_id: text(v, "inventory_item_id"),
                },
            });
        }
        if variants.is_empty() {
            self.batch.report.rows_read += 1;
            report_reject(
                self,
                "missing_value",
                self.error(
                    path,
                    "variants",
                    "",
                    "a product needs at least one variant with a price",
                ),
            );
        }
        out
    }

    fn order(&mut self, path: &str, o: &Value) {
        let empty = Vec::new();
        let items = o
            .get("line_items")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let rows = items.len().max(1) as u64;
        self.batch.report.rows_read += rows;
        let reject_all = |me: &mut Self, key: &str, err: RowError| {
            for _ in 0..rows {
                me.batch.report.reject(key, err.clone());
            }
        };
        let Some(order_id) = text(o, "id").or_else(|| text(o, "name")) else {
            reject_all(
                self,
                "missing_order_id",
                self.error(path, "id", "", "an order id is required"),
            );
            return;
        };
        let created_text = text(o, "created_at").or_else(|| text(o, "processed_at"));
        let parsed = created_text.as_deref().map(super::parse_checked);
        let Some(Ok(created_at)) = parsed else {
            let value = created_text.unwrap_or_default();
            let reason = match parsed {
                Some(Err(reason)) => reason,
                _ => "not a date and time".to_owned(),
            };
            reject_all(
                self,
                if value.is_empty() {
                    "missing_date"
                } else {
                    "bad_date"
                },
                self.error(path, "created_at", &value, &reason),
            );
            return;
        };
        let (currency, currency_assumed) = match text(o, "currency").map(|c| Currency::parse(&c)) {
            Some(Ok(c)) => (c, false),
            Some(Err(_)) => {
                let value = text(o, "currency").unwrap_or_default();
                reject_all(
                    self,
                    "bad_currency",
                    self.error(path, "currency", &value, "not a currency code (e.g. USD)"),
                );
                return;
            }
            None => (self.ctx.default_currency, true),
        };
        let customer = o
            .get("customer")
            .and_then(|c| text(c, "id").or_else(|| text(c, "email")))
            .or_else(|| text(o, "email"));
        let mut lines = Vec::new();
        let rejected_before = self.batch.report.rejected_total();
        for (li, item) in items.iter().enumerate() {
            let lpath = format!("{path}.line_items[{li}]");
            let product = ProductRef {
                variant_id: text(item, "variant_id"),
                sku: text(item, "sku"),
                product_id: text(item, "product_id"),
                title: text(item, "name").or_else(|| text(item, "title")),
            };
            if product.is_empty() {
                let e = self.error(
                    &lpath,
                    "variant_id",
                    "",
                    "the line names no product (variant id, SKU, product id or title)",
                );
                self.batch.report.reject("no_product_reference", e);
                continue;
            }
            let qty_text = text(item, "quantity").unwrap_or_default();
            let quantity = match super::parse_quantity(&qty_text, super::MAX_LINE_QUANTITY) {
                Ok(q) => q,
                Err(q) => {
                    let e = self.error(&lpath, "quantity", &qty_text, &q.reason);
                    self.batch.report.reject(q.key, e);
                    continue;
                }
            };
            if quantity <= 0 {
                self.batch.report.drop_row("quantity_not_positive");
                continue;
            }
            let price = match self.money(item, &lpath, "price", currency) {
                Ok(Some(m)) => m.minor,
                Ok(None) => {
                    let e = self.error(&lpath, "price", "", "a unit price is required");
                    self.batch.report.reject("missing_value", e);
                    continue;
                }
                Err(e) => {
                    let key = if e.reason.contains("negative") {
                        "negative_price"
                    } else {
                        "bad_price"
                    };
                    self.batch.report.reject(key, e);
                    continue;
                }
            };
            let discount = match self.money(item, &lpath, "total_discount", currency) {
                Ok(d) => d.map(|m| m.minor).unwrap_or(0),
                Err(e) => {
                    self.batch.report.ignore_value("bad_discount", e);
                    0
                }
            };
            self.batch.report.rows_kept += 1;
            lines.push(OrderLine {
                product,
                item_id: None,
                quantity,
                unit_price_minor: price,
                discount_minor: discount,
            });
        }
        if items.is_empty() {
            self.batch.report.drop_row("order_without_lines");
        }
        if lines.is_empty() {
            return;
        }
        if self.batch.report.rejected_total() > rejected_before {
            self.batch.incomplete_orders.insert(order_id.clone());
        }
        self.batch.orders.push(Order {
            order_id,
            name: text(o, "name"),
            created_at,
            customer_key: customer,
            currency,
            currency_assumed,
            lines,
        });
    }
}
