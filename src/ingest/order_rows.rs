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
use super::spill::{Entry, Spill};
use super::{
    DateOrder, EachOrder, FileConventions, IngestContext, IngestError, IngestReport, Rejection,
    Row, RowError, parse_checked_in,
};
use crate::domain::{
    Currency, DecimalMark, Money, Order, OrderLine, ProductRef, is_written_negative,
};

/// An order's own fields as its rows arrive; its lines wait on disk (see [`Pending`]).
struct OrderHead {
    order_id: String,
    name: Option<String>,
    created_at: Option<DateTime<Utc>>,
    currency: Option<Currency>,
    customer: Option<String>,
    /// Lines kept so far.
    lines: u32,
    /// Whether a row of this order was rejected.
    incomplete: bool,
}

/// A line whose price is parsed once the order's currency is known.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingLine {
    product: ProductRef,
    quantity: i64,
    price_text: String,
    discount_text: Option<String>,
}

impl PendingLine {
    /// The line as one text for the spill: the quantity, then each value as `~`
    /// (none) or its byte length, `:` and its bytes, so any text reads back whole.
    fn encode(&self) -> String {
        let mut out = format!("{};", self.quantity);
        for value in [
            self.product.variant_id.as_deref(),
            self.product.sku.as_deref(),
            self.product.product_id.as_deref(),
            self.product.title.as_deref(),
            Some(self.price_text.as_str()),
            self.discount_text.as_deref(),
        ] {
            match value {
                None => out.push('~'),
                Some(v) => {
                    out.push_str(&v.len().to_string());
                    out.push(':');
                    out.push_str(v);
                }
            }
        }
        out
    }

    /// Reads [`PendingLine::encode`]'s text back; `None` for a text it did not write.
    fn decode(text: &str) -> Option<PendingLine> {
        let (quantity, mut rest) = text.split_once(';')?;
        let mut next = || -> Option<Option<String>> {
            if let Some(after) = rest.strip_prefix('~') {
                rest = after;
                return Some(None);
            }
            let (len, after) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let value = after.get(..len)?;
            rest = after.get(len..)?;
            Some(Some(value.to_owned()))
        };
        let product = ProductRef {
            variant_id: next()?,
            sku: next()?,
            product_id: next()?,
            title: next()?,
        };
        let price_text = next()??;
        let discount_text = next()?;
        rest.is_empty().then_some(PendingLine {
            product,
            quantity: quantity.parse().ok()?,
            price_text,
            discount_text,
        })
    }
}

/// An order file read: its orders' own fields in memory, their lines on disk, to be
/// priced, checked and handed on one order at a time ([`Pending::drain`]).
pub(crate) struct Pending {
    file: String,
    cols: OrderColumns,
    default_currency: Currency,
    heads: Vec<OrderHead>,
    lines: Spill,
}

pub fn read<R: Read>(
    file: &str,
    shape: Shape,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    ctx: &IngestContext,
    report: &mut IngestReport,
) -> Result<Pending, IngestError> {
    let cols = OrderColumns::find(file, shape, columns, conv)?;
    let spill_failed = |source| IngestError::Io {
        name: file.to_owned(),
        source,
    };
    let mut orders = Orders {
        heads: Vec::new(),
        by_id: HashMap::new(),
        name_to_order: HashMap::new(),
        previous: None,
        lines: Spill::new().map_err(spill_failed)?,
        spill_error: None,
    };
    read_rows_unchecked::<_, ()>(file, shape, csv, columns, conv, report, |row, report| {
        orders.row(row, &cols, report)
    })?;
    if let Some(e) = orders.spill_error {
        return Err(spill_failed(e));
    }
    Ok(Pending {
        file: file.to_owned(),
        cols,
        default_currency: ctx.default_currency,
        heads: orders.heads,
        lines: orders.lines,
    })
}

impl Pending {
    /// The lines kept, for a writer to size its work.
    pub fn line_count(&self) -> u64 {
        self.heads.iter().map(|h| u64::from(h.lines)).sum()
    }

    /// The currencies the orders with lines state, one count per order.
    pub fn stated_currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.heads
            .iter()
            .filter(|h| h.lines > 0 && h.created_at.is_some())
            .filter_map(|h| h.currency)
    }

    /// Each dated order with lines, by its index in [`Pending::drain`].
    pub fn dates(&self) -> Vec<(DateTime<Utc>, usize)> {
        self.heads
            .iter()
            .enumerate()
            .filter(|(_, h)| h.lines > 0)
            .filter_map(|(i, h)| Some((h.created_at?, i)))
            .collect()
    }

    /// Finishes the orders in file order, handing each on with its index and whether
    /// a row of it was rejected; only one order's lines are in memory at a time.
    pub fn drain(
        mut self,
        report: &mut IngestReport,
        each: &mut EachOrder<'_>,
    ) -> Result<(), IngestError> {
        let failed = |source| IngestError::Io {
            name: self.file.clone(),
            source,
        };
        let mut sorted = self.lines.sorted().map_err(failed)?;
        let mut group: Option<u32> = None;
        let mut lines: Vec<(u64, PendingLine)> = Vec::new();
        loop {
            let entry = sorted.next_entry().map_err(failed)?;
            let next_group = entry.as_ref().map(|e| e.group);
            if group.is_some() && next_group != group {
                let idx = group.unwrap_or_default() as usize;
                let finished = self.heads.get_mut(idx).and_then(|head| {
                    finish_order(
                        head,
                        std::mem::take(&mut lines),
                        &self.file,
                        &self.cols,
                        self.default_currency,
                        report,
                    )
                });
                if let Some((order, incomplete)) = finished {
                    each(idx, order, incomplete, report)?;
                }
            }
            let Some(entry) = entry else {
                return Ok(());
            };
            group = Some(entry.group);
            let line = PendingLine::decode(&entry.text).ok_or_else(|| IngestError::Io {
                name: self.file.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "an order line kept on disk did not read back",
                ),
            })?;
            lines.push((entry.line, line));
        }
    }
}

/// The columns an order file is read by, and its conventions.
struct OrderColumns {
    /// The header as written, to name a column in errors raised after the read.
    original: Vec<String>,
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

impl OrderColumns {
    /// Finds the columns; refuses a file without a date, quantity or price column.
    fn find(
        file: &str,
        shape: Shape,
        columns: &Columns,
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
            original: columns.original.clone(),
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

/// The orders of a file as its rows arrive: their own fields here, their lines in
/// the spill.
struct Orders {
    heads: Vec<OrderHead>,
    by_id: HashMap<String, usize>,
    name_to_order: HashMap<String, usize>,
    /// The order of the last valid row: a row naming none continues it.
    previous: Option<usize>,
    lines: Spill,
    /// The first failure to keep a line: the read ends with it.
    spill_error: Option<std::io::Error>,
}

impl Orders {
    /// One row: its order, then its order-level fields and its line.
    fn row(
        &mut self,
        row: &Row<'_>,
        cols: &OrderColumns,
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
                self.heads[oidx].lines += 1;
                if self.spill_error.is_none() {
                    let entry = Entry {
                        group: u32::try_from(oidx).unwrap_or(u32::MAX),
                        line: row.line,
                        text: pending.encode(),
                    };
                    self.spill_error = self.lines.push(&entry).err();
                }
                Ok(Outcome::Absorbed)
            }
            // Removed or refunded lines: valid rows, not sales.
            Ok(None) => Ok(Outcome::Dropped("quantity_not_positive")),
            Err(r) => {
                // A rejected row marks its order incomplete.
                self.heads[oidx].incomplete = true;
                Err(r)
            }
        }
    }

    /// The order a row belongs to: its id, else the order its name was first seen
    /// with, else the previous row's.
    fn order_of(&mut self, id: Option<&str>, name: Option<&str>) -> Option<usize> {
        let orders = &mut self.heads;
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
        cols: &OrderColumns,
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
        order_fields(&mut self.heads[oidx], id, name, row, cols, report)?;
        let line = pending_line(row, cols, report)?;
        self.previous = Some(oidx);
        Ok((line.quantity > 0).then_some(line))
    }
}

/// Order-level fields from a row that has them: the first value of each stands.
fn order_fields(
    order: &mut OrderHead,
    id: Option<&str>,
    name: Option<&str>,
    row: &Row<'_>,
    cols: &OrderColumns,
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
    cols: &OrderColumns,
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
/// priced in its currency and it is handed on with whether a row of it was rejected
/// (its kept rows then sent along to the rejected-rows file).
fn finish_order(
    head: &mut OrderHead,
    pending: Vec<(u64, PendingLine)>,
    file: &str,
    cols: &OrderColumns,
    default_currency: Currency,
    report: &mut IngestReport,
) -> Option<(Order, bool)> {
    if pending.is_empty() {
        return None;
    }
    let Some(created_at) = head.created_at else {
        for (line, _) in &pending {
            report.rows_kept -= 1;
            let reason = format!("order {} has no created-at date on any row", head.order_id);
            report.reject(
                "missing_date",
                cols.error(file, *line, cols.created, "", &reason),
            );
        }
        return None;
    };
    let (currency, currency_assumed) = match head.currency {
        Some(c) => (c, false),
        None => (default_currency, true),
    };
    let mut incomplete = head.incomplete;
    let mut lines = Vec::with_capacity(pending.len());
    let mut kept_lines: Vec<u64> = Vec::new();
    for (line, p) in pending {
        match price_line(p, line, file, cols, currency, report) {
            Some(l) => {
                kept_lines.push(line);
                lines.push(l);
            }
            None => incomplete = true,
        }
    }
    if lines.is_empty() {
        return None;
    }
    if incomplete {
        for &line in &kept_lines {
            report.send_along(file, line);
        }
    }
    let order = Order {
        order_id: std::mem::take(&mut head.order_id),
        name: head.name.take(),
        created_at,
        customer_key: head.customer.take(),
        currency,
        currency_assumed,
        lines,
    };
    Some((order, incomplete))
}

/// A pending line priced in its order's currency; `None` when its price does not
/// read (its row un-kept and rejected). A bad discount is ignored, the line kept.
fn price_line(
    p: PendingLine,
    line: u64,
    file: &str,
    cols: &OrderColumns,
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

fn new_order(id: &str) -> OrderHead {
    OrderHead {
        order_id: id.to_owned(),
        name: None,
        created_at: None,
        currency: None,
        customer: None,
        lines: 0,
        incomplete: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line kept on disk reads back whole, whatever its values hold.
    #[test]
    fn a_pending_line_reads_back_as_it_was_kept() {
        let lines = [
            PendingLine {
                product: ProductRef {
                    variant_id: Some("4:2".into()),
                    sku: None,
                    product_id: Some(String::new()),
                    title: Some("Tee ~ \"blue\"; 3:x — ünï".into()),
                },
                quantity: -7,
                price_text: "€1.234,50".into(),
                discount_text: None,
            },
            PendingLine {
                product: ProductRef::default(),
                quantity: 1_000_000,
                price_text: String::new(),
                discount_text: Some("~".into()),
            },
        ];
        for line in lines {
            assert_eq!(PendingLine::decode(&line.encode()), Some(line));
        }
        assert_eq!(PendingLine::decode("1;~~~~3:abc~extra"), None);
        assert_eq!(PendingLine::decode("1;~~~~9:abc~"), None);
        assert_eq!(PendingLine::decode("x;~~~~0:~"), None);
    }
}
