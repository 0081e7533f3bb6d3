//! UCI Online Retail: invoices as orders, stock codes as products, GBP.
//!
//! The canonical filter of the data's README, its checks in this order, each drop
//! counted under the first that applies: cancellation (`C…` invoice), quantity ≤ 0,
//! price ≤ 0, adjustment invoice (`A…`), service code. The file has no catalog, so one
//! is derived deterministically: id = SKU = upper-cased stock code, title = the most
//! frequent description (ties: the lexicographically smallest), price = the median of
//! the kept rows' unit prices (mean of the middle two for an even count), rounded half
//! up to the penny; an invoice's date is its earliest timestamp.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, Utc};

use super::rows::{Outcome, RowResult, read_rows_unchecked, utf8};
use super::source::{Columns, Field, Shape};
use super::{
    DateOrder, EachOrder, FileConventions, IngestError, IngestReport, Rejection, Row,
    parse_checked_in,
};
use crate::domain::{
    Currency, DecimalMark, Money, ObservedRow, Order, OrderLine, Product, ProductObservations,
    ProductRef, micros_to_minor, parse_micros_in,
};

/// Stock codes that are postage, fees and manual adjustments, not products.
pub const SERVICE_CODES: [&str; 11] = [
    "POST",
    "DOT",
    "M",
    "C2",
    "BANK CHARGES",
    "AMAZONFEE",
    "PADS",
    "S",
    "B",
    "D",
    "CRUK",
];

struct ProductAcc {
    code: String,
    /// Distinct descriptions: products carry one or two, a Vec beats a map.
    descriptions: Vec<String>,
    /// (order index, description index, unit price in micros) of each kept row.
    rows: Vec<(u32, u32, i64)>,
}

struct OrderAcc {
    invoice: String,
    created_at: DateTime<Utc>,
    customer: Option<String>,
    /// (product index, quantity, Σ quantity·unit price in micros)
    lines: Vec<(u32, i64, i128)>,
}

pub fn read<R: Read>(
    file: &str,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    report: &mut IngestReport,
) -> Result<Pending, IngestError> {
    let cols = RetailColumns::new(columns, conv);
    let mut acc = Accumulated::new();
    read_rows_unchecked::<_, ()>(
        file,
        Shape::OnlineRetail,
        csv,
        columns,
        conv,
        report,
        |row, report| acc.row(row, &cols, report),
    )?;
    report.lines_merged += acc.merged;
    let Accumulated {
        products,
        orders,
        incomplete,
        ..
    } = acc;
    Ok(Pending {
        products,
        orders,
        incomplete,
    })
}

/// The file read: its derived catalog ([`Pending::take_products`]) and its invoices,
/// handed on as orders one at a time ([`Pending::drain`]). Each kept row is a few
/// numbers here, not an order line.
pub(crate) struct Pending {
    products: Vec<ProductAcc>,
    orders: Vec<OrderAcc>,
    /// Invoices with a rejected row.
    incomplete: HashSet<String>,
}

impl Pending {
    /// The lines kept, for a writer to size its work.
    pub fn line_count(&self) -> u64 {
        self.orders.iter().map(|o| o.lines.len() as u64).sum()
    }

    /// Each invoice's date, by its index in [`Pending::drain`].
    pub fn dates(&self) -> Vec<(DateTime<Utc>, usize)> {
        self.orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.created_at, i))
            .collect()
    }

    /// The derived catalog, one product per stock code, with the observations it
    /// was derived from.
    pub fn take_products(
        &mut self,
        products: &mut Vec<Product>,
        observations: &mut Vec<ProductObservations>,
    ) {
        push_products(&mut self.products, &self.orders, products, observations);
    }

    /// Each invoice as an order in GBP, its merged lines priced at their weighted
    /// mean, handed on with its index and whether a row of it was rejected.
    pub fn drain(
        self,
        report: &mut IngestReport,
        each: &mut EachOrder<'_>,
    ) -> Result<(), IngestError> {
        for (i, o) in self.orders.into_iter().enumerate() {
            let incomplete = self.incomplete.contains(&o.invoice);
            each(i, invoice_order(o, &self.products), incomplete, report)?;
        }
        Ok(())
    }
}

/// The columns the file is read by, and its conventions.
struct RetailColumns {
    mark: DecimalMark,
    dates: DateOrder,
    invoice: Option<usize>,
    code: Option<usize>,
    desc: Option<usize>,
    qty: Option<usize>,
    date: Option<usize>,
    price: Option<usize>,
    customer: Option<usize>,
}

impl RetailColumns {
    fn new(columns: &Columns, conv: &FileConventions) -> Self {
        RetailColumns {
            mark: conv.decimal_mark,
            dates: conv.date_order(),
            invoice: columns.find(Field::InvoiceNo),
            code: columns.find(Field::StockCode),
            desc: columns.find(Field::Description),
            qty: columns.find(Field::Quantity),
            date: columns.find(Field::InvoiceDate),
            price: columns.find(Field::UnitPrice),
            customer: columns.find(Field::Customer),
        }
    }
}

/// The values of a row the filter keeps (its stock code is in `code_upper`).
struct KeptRow<'r> {
    invoice: &'r str,
    created_at: DateTime<Utc>,
    quantity: i64,
    price_micros: i64,
    description: &'r str,
    customer: Option<&'r str>,
}

/// Products, invoices and their lines as the rows arrive.
struct Accumulated {
    products: Vec<ProductAcc>,
    product_index: HashMap<String, u32>,
    orders: Vec<OrderAcc>,
    order_index: HashMap<String, u32>,
    line_index: HashMap<(u32, u32), u32>,
    /// Rows of a product its invoice had already, merged into that line.
    merged: u64,
    /// The upper-cased stock code of the row being read: one buffer for every row.
    code_upper: String,
    /// Invoices with a rejected row.
    incomplete: HashSet<String>,
}

impl Accumulated {
    fn new() -> Self {
        Accumulated {
            products: Vec::with_capacity(4096),
            product_index: HashMap::with_capacity(4096),
            orders: Vec::with_capacity(32_768),
            order_index: HashMap::with_capacity(32_768),
            line_index: HashMap::with_capacity(600_000),
            merged: 0,
            code_upper: String::new(),
            incomplete: HashSet::new(),
        }
    }

    /// One row: rejected, dropped by the filter, or added to its invoice.
    fn row(
        &mut self,
        row: &Row<'_>,
        cols: &RetailColumns,
        report: &mut IngestReport,
    ) -> RowResult<Outcome<()>> {
        let Some(invoice) = row.get(cols.invoice).map_err(utf8)? else {
            return Err(Rejection::new(
                "missing_value",
                row.error(cols.invoice, "", "an invoice number is required"),
            ));
        };
        match self.filter(invoice, row, cols, report) {
            Ok(Outcome::Entry(kept)) => {
                self.absorb(&kept);
                Ok(Outcome::Absorbed)
            }
            Ok(Outcome::Absorbed) => Ok(Outcome::Absorbed),
            Ok(Outcome::Dropped(reason)) => Ok(Outcome::Dropped(reason)),
            Err(r) => {
                // Once its invoice is known, a rejected row marks it incomplete.
                self.incomplete.insert(invoice.to_owned());
                Err(r)
            }
        }
    }

    /// The canonical filter on a row of `invoice`, its checks in the README's order:
    /// a valid row it leaves out is dropped under the first that applies.
    fn filter<'r>(
        &mut self,
        invoice: &'r str,
        row: &Row<'r>,
        cols: &RetailColumns,
        report: &mut IngestReport,
    ) -> RowResult<Outcome<KeptRow<'r>>> {
        if let Some((key, e)) = row.malformed() {
            return Err(Rejection::new(key, e));
        }
        if invoice.starts_with(['C', 'c']) {
            return Ok(Outcome::Dropped("cancellation"));
        }
        let qty_text = row.get(cols.qty).map_err(utf8)?.unwrap_or("");
        let quantity = super::parse_quantity(qty_text, super::MAX_LINE_QUANTITY)
            .map_err(|e| Rejection::new(e.key, row.error(cols.qty, qty_text, &e.reason)))?;
        if quantity <= 0 {
            return Ok(Outcome::Dropped("quantity_not_positive"));
        }
        let price_text = row.get(cols.price).map_err(utf8)?.unwrap_or("");
        let price_micros = parse_micros_in(price_text, cols.mark).map_err(|e| {
            Rejection::new(
                "bad_price",
                row.error(cols.price, price_text, &e.to_string()),
            )
        })?;
        if price_micros <= 0 {
            return Ok(Outcome::Dropped("price_not_positive"));
        }
        if invoice.starts_with(['A', 'a']) {
            return Ok(Outcome::Dropped("adjustment_invoice"));
        }
        let Some(code) = row.get(cols.code).map_err(utf8)? else {
            return Err(Rejection::new(
                "missing_value",
                row.error(cols.code, "", "a stock code is required"),
            ));
        };
        self.code_upper.clear();
        self.code_upper
            .extend(code.chars().flat_map(char::to_uppercase));
        if let Some(service) = SERVICE_CODES.iter().find(|s| **s == self.code_upper) {
            *report
                .dropped_service_codes
                .entry((*service).to_owned())
                .or_default() += 1;
            return Ok(Outcome::Dropped("service_code"));
        }
        let date_text = row.get(cols.date).map_err(utf8)?.unwrap_or("");
        let created_at = parse_checked_in(date_text, cols.dates).map_err(|reason| {
            Rejection::new("bad_date", row.error(cols.date, date_text, &reason))
        })?;
        // Optional: a description or customer that is not UTF-8 is ignored, row kept.
        Ok(Outcome::Entry(KeptRow {
            invoice,
            created_at,
            quantity,
            price_micros,
            description: row.optional(cols.desc, report).unwrap_or(""),
            customer: row.optional(cols.customer, report),
        }))
    }

    /// Adds a kept row to its product (stock code `code_upper`) and its invoice; a
    /// product the invoice has already merges into that line.
    fn absorb(&mut self, kept: &KeptRow<'_>) {
        let pidx = match self.product_index.get(self.code_upper.as_str()) {
            Some(&i) => i,
            None => {
                let i = self.products.len() as u32;
                self.product_index.insert(self.code_upper.clone(), i);
                self.products.push(ProductAcc {
                    code: self.code_upper.clone(),
                    descriptions: Vec::with_capacity(1),
                    rows: Vec::new(),
                });
                i
            }
        };
        let p = &mut self.products[pidx as usize];
        let didx = match p.descriptions.iter().position(|d| d == kept.description) {
            Some(i) => i,
            None => {
                p.descriptions.push(kept.description.to_owned());
                p.descriptions.len() - 1
            }
        };
        let oidx = match self.order_index.get(kept.invoice) {
            Some(&i) => i,
            None => {
                let i = self.orders.len() as u32;
                self.order_index.insert(kept.invoice.to_owned(), i);
                self.orders.push(OrderAcc {
                    invoice: kept.invoice.to_owned(),
                    created_at: kept.created_at,
                    customer: None,
                    lines: Vec::new(),
                });
                i
            }
        };
        p.rows.push((oidx, didx as u32, kept.price_micros));
        let o = &mut self.orders[oidx as usize];
        if kept.created_at < o.created_at {
            o.created_at = kept.created_at;
        }
        if o.customer.is_none() {
            o.customer = kept.customer.map(str::to_owned);
        }
        let value = i128::from(kept.quantity) * i128::from(kept.price_micros);
        match self.line_index.get(&(oidx, pidx)) {
            Some(&li) => {
                let l = &mut o.lines[li as usize];
                l.1 += kept.quantity;
                l.2 += value;
                self.merged += 1;
            }
            None => {
                self.line_index.insert((oidx, pidx), o.lines.len() as u32);
                o.lines.push((pidx, kept.quantity, value));
            }
        }
    }
}

/// One product per stock code, derived from its rows' observations.
fn push_products(
    products: &mut [ProductAcc],
    orders: &[OrderAcc],
    out: &mut Vec<Product>,
    observed: &mut Vec<ProductObservations>,
) {
    let gbp = Currency::GBP;
    out.reserve(products.len());
    observed.reserve(products.len());
    for p in products {
        let observations = ProductObservations {
            variant_id: p.code.clone(),
            descriptions: std::mem::take(&mut p.descriptions),
            rows: std::mem::take(&mut p.rows)
                .into_iter()
                .map(|(oidx, description, unit_price_micros)| ObservedRow {
                    at: orders[oidx as usize].created_at.timestamp(),
                    description,
                    unit_price_micros,
                })
                .collect(),
        };
        out.push(derive_product(&p.code, &observations, gbp));
        observed.push(observations);
    }
}

/// An invoice as an order, its merged lines priced at their weighted mean.
fn invoice_order(o: OrderAcc, products: &[ProductAcc]) -> Order {
    let gbp = Currency::GBP;
    let lines = o
        .lines
        .into_iter()
        .map(|(pidx, quantity, value)| {
            let code = &products[pidx as usize].code;
            // Quantity-weighted mean price of merged lines, half up to the penny.
            let unit = micros_to_minor(
                i64::try_from(value / i128::from(quantity.max(1))).unwrap_or(i64::MAX),
                1,
                gbp.exponent(),
            )
            .unwrap_or(0);
            OrderLine {
                product: ProductRef {
                    sku: Some(code.clone()),
                    ..Default::default()
                },
                item_id: Some(code.clone()),
                quantity,
                unit_price_minor: unit,
                discount_minor: 0,
            }
        })
        .collect();
    Order {
        order_id: o.invoice,
        name: None,
        created_at: o.created_at,
        customer_key: o.customer,
        currency: gbp,
        currency_assumed: false,
        lines,
    }
}

fn derive_product(code: &str, observations: &ProductObservations, currency: Currency) -> Product {
    let derived = observations.derive(None, currency.exponent());
    let (title, price_minor) = derived.map_or((String::new(), 0), |d| (d.title, d.price_minor));
    Product {
        variant_id: code.to_owned(),
        product_id: code.to_owned(),
        sku: Some(code.to_owned()),
        handle: None,
        title,
        variant_title: None,
        description: String::new(),
        category: None,
        product_type: None,
        vendor: None,
        tags: Vec::new(),
        price: Money::new(price_minor, currency),
        compare_at_price: None,
        cost: None,
        inventory: None,
        status: None,
        created_at: None,
        gift_card: code.starts_with("GIFT_"),
        inventory_item_id: None,
    }
}
