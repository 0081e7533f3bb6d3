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

use super::rows::{Outcome, RowResult, read_rows_unchecked, utf8};
use super::source::{Columns, Field, Shape};
use super::{
    DateOrder, FileConventions, IngestBatch, IngestContext, IngestError, IngestReport, Rejection,
    Row, RowError, parse_checked_in,
};
use crate::domain::{
    Currency, DecimalMark, Money, Order, OrderLine, ProductRef, is_written_negative,
};

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
    let cols = OrderColumns::find(file, shape, columns, conv)?;
    let mut orders = Orders::default();
    read_rows_unchecked::<_, ()>(
        file,
        shape,
        csv,
        columns,
        conv,
        &mut batch.report,
        |row, report| orders.row(row, &cols, report),
    )?;
    for acc in orders.orders {
        finish_order(acc, file, &cols, ctx, batch);
    }
    Ok(())
}

/// The columns an order file is read by, and its conventions.
struct OrderColumns<'c> {
    /// The header as written, to name a column in errors raised after the read.
    original: &'c [String],
    mark: DecimalMark,
    dates: DateOrder,
    order_id: Option<usize>,
    name: Option<usize>,
    created: Option<usize>,
    currency: Option<usize>,
    customer: Option<usize>,
    qty: Option<usize>,
    price: Option<usize>,
    sku: Option<usize>,
    variant: Option<usize>,
    product: Option<usize>,
    title: Option<usize>,
    discount: Option<usize>,
}

impl<'c> OrderColumns<'c> {
    /// Finds the columns; refuses a file without a date, quantity or price column.
    fn find(
        file: &str,
        shape: Shape,
        columns: &'c Columns,
        conv: &FileConventions,
    ) -> Result<Self, IngestError> {
        let order_id = if columns.has("orderid") {
            columns.find(Field::OrderId)
        } else if shape == Shape::ShopifyOrderExport {
            // In Shopify's export, `Id` is the order's id.
            columns.find(Field::Id)
        } else {
            None
        };
        let name = columns.find(Field::OrderName);
        let cols = OrderColumns {
            original: &columns.original,
            mark: conv.decimal_mark,
            dates: conv.date_order(),
            order_id,
            name,
            created: columns.find(Field::CreatedAt),
            currency: columns.find(Field::Currency),
            customer: columns.find(Field::Customer),
            qty: columns.find(Field::Quantity),
            price: columns.find(Field::UnitPrice),
            sku: columns.find(Field::Sku),
            variant: columns.find(Field::VariantId),
            product: columns.find(Field::ProductId),
            // The line's title must not be the order's name column.
            title: columns.find_excluding(Field::LineTitle, &[name]),
            discount: columns.find(Field::LineDiscount),
        };
        for (col, field, accepted) in [
            (cols.created, "created at", Field::CreatedAt),
            (cols.qty, "quantity", Field::Quantity),
            (cols.price, "unit price", Field::UnitPrice),
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
        Ok(cols)
    }

    /// An error at `line` of `file`, for a row judged after the read.
    fn error(
        &self,
        file: &str,
        line: u64,
        column: Option<usize>,
        value: &str,
        reason: &str,
    ) -> RowError {
        RowError {
            file: file.to_owned(),
            line,
            column: column
                .and_then(|i| self.original.get(i).cloned())
                .unwrap_or_default(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// The orders of a file as its rows arrive.
#[derive(Default)]
struct Orders {
    orders: Vec<OrderAcc>,
    by_id: HashMap<String, usize>,
    name_to_order: HashMap<String, usize>,
    /// The order of the last valid row: a row naming none continues it.
    previous: Option<usize>,
}

impl Orders {
    /// One row: its order, then its order-level fields and its line.
    fn row(
        &mut self,
        row: &Row<'_>,
        cols: &OrderColumns<'_>,
        report: &mut IngestReport,
    ) -> RowResult<Outcome<()>> {
        let id = row.get(cols.order_id).map_err(utf8)?;
        let name = row.get(cols.name).map_err(utf8)?;
        let Some(oidx) = self.order_of(id, name) else {
            return Err(Rejection::new(
                "missing_order_id",
                row.error(cols.order_id.or(cols.name), "", "the row names no order"),
            ));
        };
        match self.line_of(oidx, (id, name), row, cols, report) {
            Ok(Some(pending)) => {
                self.orders[oidx].lines.push((row.line, pending));
                Ok(Outcome::Absorbed)
            }
            // Removed or refunded lines: valid rows, not sales.
            Ok(None) => Ok(Outcome::Dropped("quantity_not_positive")),
            Err(r) => {
                // A rejected row marks its order incomplete.
                self.orders[oidx].incomplete = true;
                Err(r)
            }
        }
    }

    /// The order a row belongs to: its id, else the order its name was first seen
    /// with, else the previous row's.
    fn order_of(&mut self, id: Option<&str>, name: Option<&str>) -> Option<usize> {
        let orders = &mut self.orders;
        match (id, name) {
            (Some(id), _) => Some(*self.by_id.entry(id.to_owned()).or_insert_with(|| {
                orders.push(new_order(id));
                orders.len() - 1
            })),
            (None, Some(name)) => match self.name_to_order.get(name) {
                Some(&i) => Some(i),
                None => Some(*self.by_id.entry(name.to_owned()).or_insert_with(|| {
                    orders.push(new_order(name));
                    orders.len() - 1
                })),
            },
            (None, None) => self.previous,
        }
    }

    /// The rest of a row whose order is known: `None` for a line with no positive
    /// quantity.
    fn line_of(
        &mut self,
        oidx: usize,
        (id, name): (Option<&str>, Option<&str>),
        row: &Row<'_>,
        cols: &OrderColumns<'_>,
        report: &mut IngestReport,
    ) -> RowResult<Option<PendingLine>> {
        // Checked once the row's order is known, so that order counts as
        // incomplete and is not replaced by its other rows.
        if let Some((key, e)) = row.malformed() {
            return Err(Rejection::new(key, e));
        }
        if let Some(name) = name {
            self.name_to_order.entry(name.to_owned()).or_insert(oidx);
        }
        order_fields(&mut self.orders[oidx], id, name, row, cols, report)?;
        let line = pending_line(row, cols, report)?;
        self.previous = Some(oidx);
        Ok((line.quantity > 0).then_some(line))
    }
}

/// Order-level fields from a row that has them: the first value of each stands.
fn order_fields(
    order: &mut OrderAcc,
    id: Option<&str>,
    name: Option<&str>,
    row: &Row<'_>,
    cols: &OrderColumns<'_>,
    report: &mut IngestReport,
) -> RowResult<()> {
    if let Some(name) = name
        && order.name.is_none()
        && Some(name) != id.or(Some(order.order_id.as_str()))
    {
        order.name = Some(name.to_owned());
    }
    if let Some(text) = row.get(cols.created).map_err(utf8)? {
        match parse_checked_in(text, cols.dates) {
            Ok(t) if order.created_at.is_none() => order.created_at = Some(t),
            Ok(_) => {}
            Err(reason) => {
                return Err(Rejection::new(
                    "bad_date",
                    row.error(cols.created, text, &reason),
                ));
            }
        }
    }
    if let Some(text) = row.get(cols.currency).map_err(utf8)? {
        match Currency::parse(text) {
            Ok(c) if order.currency.is_none() => order.currency = Some(c),
            Ok(_) => {}
            Err(_) => {
                return Err(Rejection::new(
                    "bad_currency",
                    row.error(cols.currency, text, "not a currency code (e.g. USD)"),
                ));
            }
        }
    }
    if order.customer.is_none() {
        order.customer = row.optional(cols.customer, report).map(str::to_owned);
    }
    Ok(())
}

/// A row's line: quantity, product reference, price and discount as written (the
/// price is parsed once the order's currency is known).
fn pending_line(
    row: &Row<'_>,
    cols: &OrderColumns<'_>,
    report: &mut IngestReport,
) -> RowResult<PendingLine> {
    let Some(qty_text) = row.get(cols.qty).map_err(utf8)? else {
        return Err(Rejection::new(
            "missing_value",
            row.error(cols.qty, "", "a quantity is required"),
        ));
    };
    let quantity = super::parse_quantity(qty_text, super::MAX_LINE_QUANTITY)
        .map_err(|e| Rejection::new(e.key, row.error(cols.qty, qty_text, &e.reason)))?;
    let mut product = ProductRef {
        variant_id: row.get(cols.variant).map_err(utf8)?.map(str::to_owned),
        sku: row.get(cols.sku).map_err(utf8)?.map(str::to_owned),
        product_id: row.get(cols.product).map_err(utf8)?.map(str::to_owned),
        title: None,
    };
    // Beside an id the title is optional; alone it is the line's product.
    let title = if product.is_empty() {
        row.get(cols.title).map_err(utf8)?
    } else {
        row.optional(cols.title, report)
    };
    product.title = title.map(str::to_owned);
    if product.is_empty() {
        return Err(Rejection::new(
            "no_product_reference",
            row.error(
                cols.sku.or(cols.title),
                "",
                "the line names no product (variant id, SKU, product id or title)",
            ),
        ));
    }
    let Some(price_text) = row.get(cols.price).map_err(utf8)? else {
        return Err(Rejection::new(
            "missing_value",
            row.error(cols.price, "", "a unit price is required"),
        ));
    };
    // The sign may follow the currency (`$-3.00`, `USD -3`): read where parsing reads it.
    if is_written_negative(price_text) {
        return Err(Rejection::new(
            "negative_price",
            row.error(cols.price, price_text, "a price cannot be negative"),
        ));
    }
    Ok(PendingLine {
        product,
        quantity,
        price_text: price_text.to_owned(),
        discount_text: row.optional(cols.discount, report).map(str::to_owned),
    })
}

/// An order after the read: without a date its rows are rejected; else its lines are
/// priced in its currency and it joins the batch (marked incomplete, its kept rows
/// sent along, when a row of it was rejected).
fn finish_order(
    acc: OrderAcc,
    file: &str,
    cols: &OrderColumns<'_>,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) {
    if acc.lines.is_empty() {
        return;
    }
    let report = &mut batch.report;
    let Some(created_at) = acc.created_at else {
        for (line, _) in &acc.lines {
            report.rows_kept -= 1;
            let reason = format!("order {} has no created-at date on any row", acc.order_id);
            report.reject(
                "missing_date",
                cols.error(file, *line, cols.created, "", &reason),
            );
        }
        return;
    };
    let (currency, currency_assumed) = match acc.currency {
        Some(c) => (c, false),
        None => (ctx.default_currency, true),
    };
    let mut incomplete = acc.incomplete;
    let mut lines = Vec::with_capacity(acc.lines.len());
    let mut kept_lines: Vec<u64> = Vec::new();
    for (line, p) in acc.lines {
        match price_line(p, line, file, cols, currency, report) {
            Some(l) => {
                kept_lines.push(line);
                lines.push(l);
            }
            None => incomplete = true,
        }
    }
    if lines.is_empty() {
        return;
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

/// A pending line priced in its order's currency; `None` when its price does not
/// read (its row un-kept and rejected). A bad discount is ignored, the line kept.
fn price_line(
    p: PendingLine,
    line: u64,
    file: &str,
    cols: &OrderColumns<'_>,
    currency: Currency,
    report: &mut IngestReport,
) -> Option<OrderLine> {
    let price = match Money::parse_in(&p.price_text, currency, cols.mark) {
        // Refused when the row was read; kept here too, so no negative price is stored
        // should the two readings of a sign ever part.
        Ok(m) if m.minor < 0 => {
            report.rows_kept -= 1;
            report.reject(
                "negative_price",
                cols.error(
                    file,
                    line,
                    cols.price,
                    &p.price_text,
                    "a price cannot be negative",
                ),
            );
            return None;
        }
        Ok(m) => m.minor,
        Err(e) => {
            report.rows_kept -= 1;
            report.reject(
                "bad_price",
                cols.error(file, line, cols.price, &p.price_text, &e.to_string()),
            );
            return None;
        }
    };
    let discount = match p
        .discount_text
        .as_deref()
        .map(|d| Money::parse_in(d, currency, cols.mark))
    {
        None => 0,
        Some(Ok(m)) => m.minor.abs(),
        Some(Err(e)) => {
            let text = p.discount_text.as_deref().unwrap_or_default();
            report.ignore_value(
                "bad_discount",
                cols.error(
                    file,
                    line,
                    cols.discount,
                    text,
                    &format!("{e}; discount ignored, line kept"),
                ),
            );
            0
        }
    };
    Some(OrderLine {
        product: p.product,
        item_id: None,
        quantity: p.quantity,
        unit_price_minor: price,
        discount_minor: discount,
    })
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
