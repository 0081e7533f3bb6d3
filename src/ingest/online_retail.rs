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

use super::source::{Columns, Field};
use super::{
    FileConventions, IngestBatch, IngestError, NOT_UTF8, Row, csv_error, parse_checked_in,
};
use crate::domain::{
    Currency, Money, ObservedRow, Order, OrderLine, Product, ProductObservations, ProductRef,
    micros_to_minor, parse_micros_in,
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
    batch: &mut IngestBatch,
) -> Result<(), IngestError> {
    let col_invoice = columns.find(Field::InvoiceNo);
    let col_code = columns.find(Field::StockCode);
    let col_desc = columns.find(Field::Description);
    let col_qty = columns.find(Field::Quantity);
    let col_date = columns.find(Field::InvoiceDate);
    let col_price = columns.find(Field::UnitPrice);
    let col_customer = columns.find(Field::Customer);

    let mut products: Vec<ProductAcc> = Vec::with_capacity(4096);
    let mut product_index: HashMap<String, u32> = HashMap::with_capacity(4096);
    let mut orders: Vec<OrderAcc> = Vec::with_capacity(32_768);
    let mut order_index: HashMap<String, u32> = HashMap::with_capacity(32_768);
    let mut line_index: HashMap<(u32, u32), u32> = HashMap::with_capacity(600_000);
    let mut merged = 0u64;
    let report = &mut batch.report;
    let mut rows_read = 0u64;
    let mut record = csv::ByteRecord::new();
    let mut code_upper = String::new();
    // The invoice of the row being read, once known: a rejected row marks it incomplete.
    let mut current_invoice = String::new();
    let mut incomplete: HashSet<String> = HashSet::new();

    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(file, e)),
        }
        rows_read += 1;
        current_invoice.clear();
        let row = Row {
            file,
            line: record.position().map(|p| p.line()).unwrap_or(0),
            record: &record,
            columns,
        };
        macro_rules! field {
            ($col:expr) => {
                match row.get($col) {
                    Ok(v) => v,
                    Err(e) => {
                        if !current_invoice.is_empty() {
                            incomplete.insert(current_invoice.clone());
                        }
                        report.reject(NOT_UTF8, e);
                        continue;
                    }
                }
            };
        }
        macro_rules! reject {
            ($key:expr, $col:expr, $value:expr, $reason:expr) => {{
                if !current_invoice.is_empty() {
                    incomplete.insert(current_invoice.clone());
                }
                report.reject($key, row.error($col, $value, $reason));
                continue;
            }};
        }

        let Some(invoice) = field!(col_invoice) else {
            reject!(
                "missing_value",
                col_invoice,
                "",
                "an invoice number is required"
            )
        };
        current_invoice.push_str(invoice);
        if let Some((key, e)) = row.malformed() {
            incomplete.insert(current_invoice.clone());
            report.reject(key, e);
            continue;
        }
        if invoice.starts_with(['C', 'c']) {
            report.drop_row("cancellation");
            continue;
        }
        let qty_text = field!(col_qty).unwrap_or("");
        let quantity = match super::parse_quantity(qty_text, super::MAX_LINE_QUANTITY) {
            Ok(q) => q,
            Err(e) => reject!(e.key, col_qty, qty_text, &e.reason),
        };
        if quantity <= 0 {
            report.drop_row("quantity_not_positive");
            continue;
        }
        let price_text = field!(col_price).unwrap_or("");
        let price_micros = match parse_micros_in(price_text, conv.decimal_mark) {
            Ok(m) => m,
            Err(e) => reject!("bad_price", col_price, price_text, &e.to_string()),
        };
        if price_micros <= 0 {
            report.drop_row("price_not_positive");
            continue;
        }
        if invoice.starts_with(['A', 'a']) {
            report.drop_row("adjustment_invoice");
            continue;
        }
        let Some(code) = field!(col_code) else {
            reject!("missing_value", col_code, "", "a stock code is required")
        };
        code_upper.clear();
        code_upper.extend(code.chars().flat_map(char::to_uppercase));
        if let Some(service) = SERVICE_CODES.iter().find(|s| **s == code_upper) {
            report.drop_row("service_code");
            *report
                .dropped_service_codes
                .entry((*service).to_owned())
                .or_default() += 1;
            continue;
        }
        let date_text = field!(col_date).unwrap_or("");
        let created_at = match parse_checked_in(date_text, conv.date_order()) {
            Ok(t) => t,
            Err(reason) => reject!("bad_date", col_date, date_text, &reason),
        };
        // Optional: a description or customer that is not UTF-8 is ignored, row kept.
        let description = row.optional(col_desc, report).unwrap_or("");
        let customer = row.optional(col_customer, report);

        report.rows_kept += 1;
        let pidx = match product_index.get(code_upper.as_str()) {
            Some(&i) => i,
            None => {
                let i = products.len() as u32;
                product_index.insert(code_upper.clone(), i);
                products.push(ProductAcc {
                    code: code_upper.clone(),
                    descriptions: Vec::with_capacity(1),
                    rows: Vec::new(),
                });
                i
            }
        };
        let p = &mut products[pidx as usize];
        let didx = match p.descriptions.iter().position(|d| d == description) {
            Some(i) => i,
            None => {
                p.descriptions.push(description.to_owned());
                p.descriptions.len() - 1
            }
        };

        let oidx = match order_index.get(invoice) {
            Some(&i) => i,
            None => {
                let i = orders.len() as u32;
                order_index.insert(invoice.to_owned(), i);
                orders.push(OrderAcc {
                    invoice: invoice.to_owned(),
                    created_at,
                    customer: None,
                    lines: Vec::new(),
                });
                i
            }
        };
        p.rows.push((oidx, didx as u32, price_micros));
        let o = &mut orders[oidx as usize];
        if created_at < o.created_at {
            o.created_at = created_at;
        }
        if o.customer.is_none() {
            o.customer = customer.map(str::to_owned);
        }
        let value = i128::from(quantity) * i128::from(price_micros);
        match line_index.get(&(oidx, pidx)) {
            Some(&li) => {
                let l = &mut o.lines[li as usize];
                l.1 += quantity;
                l.2 += value;
                merged += 1;
            }
            None => {
                line_index.insert((oidx, pidx), o.lines.len() as u32);
                o.lines.push((pidx, quantity, value));
            }
        }
    }
    report.rows_read += rows_read;
    report.lines_merged += merged;
    batch.report.files.push(super::FileSummary {
        conventions: conv.clone(),
        path: file.to_owned(),
        shape: super::Shape::OnlineRetail.name(),
        rows_read,
    });

    let gbp = Currency::GBP;
    batch.data_currency = Some(gbp);
    batch.products.reserve(products.len());
    batch.observations.reserve(products.len());
    for p in &mut products {
        let observations = ProductObservations {
            variant_id: p.code.clone(),
            descriptions: std::mem::take(&mut p.descriptions),
            rows: p
                .rows
                .iter()
                .map(|&(oidx, description, unit_price_micros)| ObservedRow {
                    at: orders[oidx as usize].created_at.timestamp(),
                    description,
                    unit_price_micros,
                })
                .collect(),
        };
        batch
            .products
            .push(derive_product(&p.code, &observations, gbp));
        batch.observations.push(observations);
    }
    batch.orders.reserve(orders.len());
    for o in orders {
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
        if incomplete.contains(&o.invoice) {
            batch.incomplete_orders.insert(o.invoice.clone());
        }
        batch.orders.push(Order {
            order_id: o.invoice,
            name: None,
            created_at: o.created_at,
            customer_key: o.customer,
            currency: gbp,
            currency_assumed: false,
            lines,
        });
    }
    Ok(())
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
