//! Order rows: Shopify's order export CSV and the GraphQL-named (or snake_case) rows
//! that apps export. One line item per row.
//!
//! Shopify writes the order-level fields (Id, Created at, Currency, …) only on an
//! order's first row; later rows carry the order's Name, or nothing at all. So a row's
//! order is its id, else the order its name was first seen with, else the previous
//! row's, and order-level fields carry forward from the rows that have them.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};

use super::source::{Columns, Field, Shape};
use super::{
    FileConventions, IngestBatch, IngestContext, IngestError, NOT_UTF8, Rejection, Row, RowError,
    csv_error, parse_checked_in,
};
use crate::domain::{Currency, Money, Order, OrderLine, ProductRef};

struct OrderAcc {
    order_id: String,
    name: Option<String>,
    created_at: Option<DateTime<Utc>>,
    currency: Option<Currency>,
    customer: Option<String>,
    /// Lines with the row they came from, so an order that never gets a date can
    /// reject each of its rows by line number.
    lines: Vec<(u64, PendingLine)>,
    /// Whether a row of this order was rejected.
    incomplete: bool,
}

/// A line whose price is parsed once the order's currency is known.
struct PendingLine {
    product: ProductRef,
    quantity: i64,
    price_text: String,
    discount_text: Option<String>,
}

pub fn read<R: Read>(
    file: &str,
    shape: Shape,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<(), IngestError> {
    let col_order_id = if columns.has("orderid") {
        columns.find(Field::OrderId)
    } else if shape == Shape::ShopifyOrderExport {
        // In Shopify's export, `Id` is the order's id.
        columns.find(Field::Id)
    } else {
        None
    };
    let col_name = columns.find(Field::OrderName);
    let col_created = columns.find(Field::CreatedAt);
    let col_currency = columns.find(Field::Currency);
    let col_customer = columns.find(Field::Customer);
    let col_qty = columns.find(Field::Quantity);
    let col_price = columns.find(Field::UnitPrice);
    let col_sku = columns.find(Field::Sku);
    let col_variant = columns.find(Field::VariantId);
    let col_product = columns.find(Field::ProductId);
    // The line's title must not be the order's name column.
    let col_title = columns.find_excluding(Field::LineTitle, &[col_name]);
    let col_discount = columns.find(Field::LineDiscount);
    for (col, field, accepted) in [
        (col_created, "created at", Field::CreatedAt),
        (col_qty, "quantity", Field::Quantity),
        (col_price, "unit price", Field::UnitPrice),
    ] {
        if col.is_none() {
            return Err(IngestError::MissingColumn {
                name: file.to_owned(),
                shape: shape.name(),
                field,
                accepted: super::source::aliases(accepted).join(", "),
            });
        }
    }

    let mut orders: Vec<OrderAcc> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut name_to_order: HashMap<String, usize> = HashMap::new();
    let mut previous: Option<usize> = None;
    let mut rows_read = 0u64;
    let mut record = csv::ByteRecord::new();
    let report = &mut batch.report;

    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(file, e)),
        }
        rows_read += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row = Row {
            file,
            line,
            record: &record,
            columns,
        };
        // The order a row belongs to, once known: a rejected row marks it incomplete.
        let mut row_order: Option<usize> = None;
        let parsed = (|| -> Result<Option<(usize, PendingLine)>, Rejection> {
            let utf8 = |e: RowError| Rejection::new(NOT_UTF8, e);
            let id = row.get(col_order_id).map_err(utf8)?;
            let name = row.get(col_name).map_err(utf8)?;
            let oidx = match (id, name) {
                (Some(id), _) => Some(*by_id.entry(id.to_owned()).or_insert_with(|| {
                    orders.push(new_order(id));
                    orders.len() - 1
                })),
                (None, Some(name)) => match name_to_order.get(name) {
                    Some(&i) => Some(i),
                    None => Some(*by_id.entry(name.to_owned()).or_insert_with(|| {
                        orders.push(new_order(name));
                        orders.len() - 1
                    })),
                },
                (None, None) => previous,
            };
            let Some(oidx) = oidx else {
                return Err(Rejection::new(
                    "missing_order_id",
                    row.error(col_order_id.or(col_name), "", "the row names no order"),
                ));
            };
            row_order = Some(oidx);
            // Checked once the row's order is known, so that order counts as
            // incomplete and is not replaced by its other rows.
            if let Some((key, e)) = row.malformed() {
                return Err(Rejection::new(key, e));
            }
            let order = &mut orders[oidx];
            if let Some(name) = name {
                name_to_order.entry(name.to_owned()).or_insert(oidx);
                if order.name.is_none() && Some(name) != id.or(Some(order.order_id.as_str())) {
                    order.name = Some(name.to_owned());
                }
            }
            if let Some(text) = row.get(col_created).map_err(utf8)? {
                match parse_checked_in(text, conv.date_order()) {
                    Ok(t) if order.created_at.is_none() => order.created_at = Some(t),
                    Ok(_) => {}
                    Err(reason) => {
                        return Err(Rejection::new(
                            "bad_date",
                            row.error(col_created, text, &reason),
                        ));
                    }
                }
            }
            if let Some(text) = row.get(col_currency).map_err(utf8)? {
                match Currency::parse(text) {
                    Ok(c) if order.currency.is_none() => order.currency = Some(c),
                    Ok(_) => {}
                    Err(_) => {
                        return Err(Rejection::new(
                            "bad_currency",
                            row.error(col_currency, text, "not a currency code (e.g. USD)"),
                        ));
                    }
                }
            }
            if order.customer.is_none() {
                order.customer = row.optional(col_customer, report).map(str::to_owned);
            }
            let qty_text = row.get(col_qty).map_err(utf8)?;
            let Some(qty_text) = qty_text else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_qty, "", "a quantity is required"),
                ));
            };
            let quantity = super::parse_quantity(qty_text, super::MAX_LINE_QUANTITY)
                .map_err(|e| Rejection::new(e.key, row.error(col_qty, qty_text, &e.reason)))?;
            let mut product = ProductRef {
                variant_id: row.get(col_variant).map_err(utf8)?.map(str::to_owned),
                sku: row.get(col_sku).map_err(utf8)?.map(str::to_owned),
                product_id: row.get(col_product).map_err(utf8)?.map(str::to_owned),
                title: None,
            };
            // Beside an id the title is optional; alone it is the line's product.
            let title = if product.is_empty() {
                row.get(col_title).map_err(utf8)?
            } else {
                row.optional(col_title, report)
            };
            product.title = title.map(str::to_owned);
            if product.is_empty() {
                return Err(Rejection::new(
                    "no_product_reference",
                    row.error(
                        col_sku.or(col_title),
                        "",
                        "the line names no product (variant id, SKU, product id or title)",
                    ),
                ));
            }
            let Some(price_text) = row.get(col_price).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_price, "", "a unit price is required"),
                ));
            };
            if price_text.starts_with('-') {
                return Err(Rejection::new(
                    "negative_price",
                    row.error(col_price, price_text, "a price cannot be negative"),
                ));
            }
            let discount_text = row.optional(col_discount, report).map(str::to_owned);
            previous = Some(oidx);
            if quantity <= 0 {
                // Removed or refunded lines: valid rows, not sales.
                return Ok(None);
            }
            Ok(Some((
                oidx,
                PendingLine {
                    product,
                    quantity,
                    price_text: price_text.to_owned(),
                    discount_text,
                },
            )))
        })();
        match parsed {
            Ok(Some((oidx, pending))) => {
                report.rows_kept += 1;
                orders[oidx].lines.push((line, pending));
            }
            Ok(None) => report.drop_row("quantity_not_positive"),
            Err(r) => {
                if let Some(i) = row_order {
                    orders[i].incomplete = true;
                }
                report.reject(r.key, *r.error)
            }
        }
    }
    report.rows_read += rows_read;
    report.files.push(super::FileSummary {
        path: file.to_owned(),
        shape: shape.name(),
        rows_read,
        conventions: conv.clone(),
    });

    for acc in orders {
        if acc.lines.is_empty() {
            continue;
        }
        let Some(created_at) = acc.created_at else {
            for (line, _) in &acc.lines {
                report.rows_kept -= 1;
                report.reject(
                    "missing_date",
                    RowError {
                        file: file.to_owned(),
                        line: *line,
                        column: col_created
                            .and_then(|i| columns.original.get(i).cloned())
                            .unwrap_or_default(),
                        value: String::new(),
                        reason: format!("order {} has no created-at date on any row", acc.order_id),
                    },
                );
            }
            continue;
        };
        let (currency, currency_assumed) = match acc.currency {
            Some(c) => (c, false),
            None => (ctx.default_currency, true),
        };
        let mut incomplete = acc.incomplete;
        let mut lines = Vec::with_capacity(acc.lines.len());
        let mut kept_lines: Vec<u64> = Vec::new();
        for (line, p) in acc.lines {
            let located = |column: Option<usize>, value: &str, reason: &str| RowError {
                file: file.to_owned(),
                line,
                column: column
                    .and_then(|i| columns.original.get(i).cloned())
                    .unwrap_or_default(),
                value: value.to_owned(),
                reason: reason.to_owned(),
            };
            let price = match Money::parse_in(&p.price_text, currency, conv.decimal_mark) {
                Ok(m) => m.minor,
                Err(e) => {
                    report.rows_kept -= 1;
                    report.reject(
                        "bad_price",
                        located(col_price, &p.price_text, &e.to_string()),
                    );
                    incomplete = true;
                    continue;
                }
            };
            let discount = match p
                .discount_text
                .as_deref()
                .map(|d| Money::parse_in(d, currency, conv.decimal_mark))
            {
                None => 0,
                Some(Ok(m)) => m.minor.abs(),
                Some(Err(e)) => {
                    let text = p.discount_text.as_deref().unwrap_or_default();
                    report.ignore_value(
                        "bad_discount",
                        located(
                            col_discount,
                            text,
                            &format!("{e}; discount ignored, line kept"),
                        ),
                    );
                    0
                }
            };
            kept_lines.push(line);
            lines.push(OrderLine {
                product: p.product,
                item_id: None,
                quantity: p.quantity,
                unit_price_minor: price,
                discount_minor: discount,
            });
        }
        if lines.is_empty() {
            continue;
        }
        if incomplete {
            batch.incomplete_orders.insert(acc.order_id.clone());
            for &line in &kept_lines {
                report.send_along(file, line);
            }
        }
        batch.orders.push(Order {
            order_id: acc.order_id,
            name: acc.name,
            created_at,
            customer_key: acc.customer,
            currency,
            currency_assumed,
            lines,
        });
    }
    Ok(())
}

fn new_order(id: &str) -> OrderAcc {
    OrderAcc {
        order_id: id.to_owned(),
        name: None,
        created_at: None,
        currency: None,
        customer: None,
        lines: Vec::new(),
        incomplete: false,
    }
}
