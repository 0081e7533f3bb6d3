//! Catalogs: Shopify's product export CSV, the split products / variants /
//! inventory-levels files that API exports produce, and (through `shopify_json`) the
//! Admin REST JSON.
//!
//! Shopify's product export has no id column: rows sharing a Handle are one product's
//! variants, so the product id is the Handle and a variant's id its SKU (else Handle +
//! position). Split files keep their ids (`gid://shopify/...` as given) and join on
//! `product_id` and `inventory_item_id`.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};

use super::catalog_entries::{Located, push_deduplicated};
use super::rows::{Outcome, RowResult, read_rows, utf8};
use super::source::{self, Columns, Field, FileRole, IngestSource, IngestSources, Shape};
use super::{
    DateOrder, FileConventions, IngestBatch, IngestContext, IngestError, Progress, Rejection, Row,
    RowError, csv_error, csv_reader, parse_checked_in, shape_for, strip_html,
};
use crate::domain::{Currency, DecimalMark, Money, Product, ProductStatus};

pub fn read_catalog(
    source: &IngestSource,
    sources: &IngestSources,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
    progress: &dyn Progress,
) -> Result<(), IngestError> {
    let name = source.name.as_str();
    let Some(opened) =
        super::shopify_json::read_if_json(source, FileRole::Catalog, ctx, batch, progress)?
    else {
        return Ok(());
    };
    let variants = sources.get(FileRole::Variants);
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    let columns = Columns::new(&csv.byte_headers().map_err(|e| csv_error(name, e))?.clone());
    super::check_header(name, &columns)?;
    // A variants-shaped file on its own is a flat catalog: one sellable item per row.
    let shape = match columns.shape() {
        Some(Shape::SplitVariants) if variants.is_none() => Shape::SplitProducts,
        _ => shape_for(name, &columns, FileRole::Catalog)?,
    };
    let conv = catalog_conventions(source, &columns)?;
    let mut located = match shape {
        Shape::ShopifyProductExport => {
            read_product_export(name, &mut csv, &columns, &conv, ctx, batch)?
        }
        Shape::SplitProducts => {
            read_split_products(name, &mut csv, &columns, &conv, ctx, variants, batch)?
        }
        Shape::VariantCatalog => read_variant_catalog(name, &mut csv, &columns, &conv, ctx, batch)?,
        _ => {
            return Err(super::wrong_role(name, shape, FileRole::Catalog));
        }
    };
    if variants.is_some() && shape != Shape::SplitProducts {
        return Err(IngestError::VariantsAlreadyGiven {
            name: name.to_owned(),
            shape: shape.name(),
        });
    }
    if let Some(inv) = sources.get(FileRole::Inventory) {
        if !located
            .iter()
            .any(|e| e.product.inventory_item_id.is_some())
        {
            return Err(IngestError::Usage(format!(
                "{name}: inventory levels join the catalog on inventory_item_id, and this {} has none",
                shape.name()
            )));
        }
        apply_inventory_levels(inv, &mut located, ctx, batch, progress)?;
    }
    push_deduplicated(name, located, batch);
    Ok(())
}

/// A catalog file's conventions, from its amount and date columns.
fn catalog_conventions(
    source: &IngestSource,
    columns: &Columns,
) -> Result<FileConventions, IngestError> {
    super::conventions::scan(
        source,
        &[
            columns.find(Field::Price),
            columns.find(Field::CompareAtPrice),
            columns.find(Field::Cost),
        ],
        &[columns.find(Field::CreatedAt)],
    )
}

/// Column indexes shared by the product readers, and the file's conventions.
struct CatalogColumns {
    mark: DecimalMark,
    dates: DateOrder,
    handle: Option<usize>,
    title: Option<usize>,
    body: Option<usize>,
    vendor: Option<usize>,
    category: Option<usize>,
    product_type: Option<usize>,
    tags: Option<usize>,
    sku: Option<usize>,
    price: Option<usize>,
    compare_at: Option<usize>,
    cost: Option<usize>,
    inventory: Option<usize>,
    tracker: Option<usize>,
    status: Option<usize>,
    gift_card: Option<usize>,
    options: [Option<usize>; 3],
    created_at: Option<usize>,
    inventory_item: Option<usize>,
}

impl CatalogColumns {
    fn new(c: &Columns, conv: &FileConventions) -> Self {
        CatalogColumns {
            mark: conv.decimal_mark,
            dates: conv.date_order(),
            handle: c.find(Field::Handle),
            title: c.find(Field::Title),
            body: c.find(Field::Body),
            vendor: c.find(Field::Vendor),
            category: c.find(Field::Category),
            product_type: c.find(Field::ProductType),
            tags: c.find(Field::Tags),
            sku: c.find(Field::Sku),
            price: c.find(Field::Price),
            compare_at: c.find(Field::CompareAtPrice),
            cost: c.find(Field::Cost),
            inventory: c.find(Field::InventoryQty),
            tracker: c.find(Field::InventoryTracker),
            status: c.find(Field::Status),
            gift_card: c.find(Field::GiftCard),
            options: [
                c.find(Field::Option1Value),
                c.find(Field::Option2Value),
                c.find(Field::Option3Value),
            ],
            created_at: c.find(Field::CreatedAt),
            inventory_item: c.find(Field::InventoryItemId),
        }
    }
}

/// Product-level fields, written on a product's first row only in Shopify's export.
#[derive(Clone, Default)]
struct ProductFields {
    title: String,
    description: String,
    vendor: Option<String>,
    category: Option<String>,
    product_type: Option<String>,
    tags: Vec<String>,
    status: Option<ProductStatus>,
    gift_card: bool,
    created_at: Option<DateTime<Utc>>,
}

/// Variant-level fields, on every variant row.
struct VariantFields {
    sku: Option<String>,
    price: Money,
    compare_at: Option<Money>,
    cost: Option<Money>,
    inventory: Option<i64>,
    variant_title: Option<String>,
    inventory_item_id: Option<String>,
}

fn opt(row: &Row<'_>, col: Option<usize>) -> RowResult<Option<String>> {
    Ok(row.get(col).map_err(utf8)?.map(str::to_owned))
}

fn parse_tags(raw: Option<&str>) -> Vec<String> {
    raw.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn product_fields(
    row: &Row<'_>,
    cols: &CatalogColumns,
    report: &mut super::IngestReport,
) -> RowResult<ProductFields> {
    let status = match row.optional(cols.status, report) {
        None => None,
        Some(s) => match ProductStatus::parse(s) {
            Some(st) => Some(st),
            None => {
                report.ignore_value(
                    "bad_status",
                    row.error(
                        cols.status,
                        s,
                        "not active, draft or archived; assumed active, row kept",
                    ),
                );
                None
            }
        },
    };
    let created_at = match row.optional(cols.created_at, report) {
        None => None,
        Some(s) => match parse_checked_in(s, cols.dates) {
            Ok(t) => Some(t),
            Err(reason) => {
                report.ignore_value(
                    "bad_date",
                    row.error(
                        cols.created_at,
                        s,
                        &format!("{reason}; launch date unknown, row kept"),
                    ),
                );
                None
            }
        },
    };
    let gift_card = row.optional(cols.gift_card, report).is_some_and(|g| {
        g.eq_ignore_ascii_case("true") || g == "1" || g.eq_ignore_ascii_case("yes")
    });
    let product_type = row.optional(cols.product_type, report).map(str::to_owned);
    Ok(ProductFields {
        title: opt(row, cols.title)?.unwrap_or_default(),
        description: row
            .optional(cols.body, report)
            .map(strip_html)
            .unwrap_or_default(),
        vendor: row.optional(cols.vendor, report).map(str::to_owned),
        category: row.optional(cols.category, report).map(str::to_owned),
        gift_card: gift_card
            || product_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("gift card")),
        product_type,
        tags: parse_tags(row.optional(cols.tags, report)),
        status,
        created_at,
    })
}

fn money_opt(
    row: &Row<'_>,
    col: Option<usize>,
    (currency, mark): (Currency, DecimalMark),
    what: &str,
    report: &mut super::IngestReport,
) -> RowResult<Option<Money>> {
    let Some(text) = row.optional(col, report) else {
        return Ok(None);
    };
    match Money::parse_in(text, currency, mark) {
        Ok(m) if m.minor >= 0 => Ok(Some(m)),
        Ok(_) => {
            report.ignore_value(
                &format!("negative_{what}"),
                row.error(
                    col,
                    text,
                    &format!(
                        "a {} cannot be negative; ignored, row kept",
                        what.replace('_', " ")
                    ),
                ),
            );
            Ok(None)
        }
        Err(e) => {
            report.ignore_value(
                &format!("bad_{what}"),
                row.error(col, text, &format!("{e}; ignored, row kept")),
            );
            Ok(None)
        }
    }
}

fn variant_fields(
    row: &Row<'_>,
    cols: &CatalogColumns,
    currency: Currency,
    report: &mut super::IngestReport,
) -> RowResult<VariantFields> {
    let Some(price_text) = row.get(cols.price).map_err(utf8)? else {
        return Err(Rejection::new(
            "missing_value",
            row.error(cols.price, "", "a price is required"),
        ));
    };
    let price = match Money::parse_in(price_text, currency, cols.mark) {
        Ok(m) if m.minor < 0 => {
            return Err(Rejection::new(
                "negative_price",
                row.error(cols.price, price_text, "a price cannot be negative"),
            ));
        }
        Ok(m) => m,
        Err(e) => {
            return Err(Rejection::new(
                "bad_price",
                row.error(cols.price, price_text, &e.to_string()),
            ));
        }
    };
    let in_file = (currency, cols.mark);
    let compare_at = money_opt(row, cols.compare_at, in_file, "compare_at_price", report)?;
    let cost = money_opt(row, cols.cost, in_file, "cost", report)?;
    // Shopify leaves the tracker empty for untracked variants; their quantity means nothing.
    let tracked = match cols.tracker {
        Some(_) => row.optional(cols.tracker, report).is_some(),
        None => true,
    };
    let inventory = match row.optional(cols.inventory, report) {
        Some(q) if tracked => match super::parse_quantity(q, super::MAX_INVENTORY) {
            Ok(n) => Some(n),
            Err(e) => {
                report.ignore_value(
                    "bad_inventory",
                    row.error(
                        cols.inventory,
                        q,
                        &format!("{}; inventory not tracked, row kept", e.reason),
                    ),
                );
                None
            }
        },
        _ => None,
    };
    let mut option_values = Vec::new();
    for col in cols.options {
        if let Some(v) = row.optional(col, report)
            && v != "Default Title"
        {
            option_values.push(v.to_owned());
        }
    }
    Ok(VariantFields {
        sku: opt(row, cols.sku)?,
        price,
        compare_at,
        cost,
        inventory,
        variant_title: (!option_values.is_empty()).then(|| option_values.join(" / ")),
        inventory_item_id: row.optional(cols.inventory_item, report).map(str::to_owned),
    })
}

fn product(
    product_id: String,
    variant_id: String,
    handle: Option<String>,
    p: &ProductFields,
    v: VariantFields,
) -> Product {
    Product {
        variant_id,
        product_id,
        sku: v.sku,
        handle,
        title: p.title.clone(),
        variant_title: v.variant_title,
        description: p.description.clone(),
        category: p.category.clone(),
        product_type: p.product_type.clone(),
        vendor: p.vendor.clone(),
        tags: p.tags.clone(),
        price: v.price,
        compare_at_price: v.compare_at,
        cost: v.cost,
        inventory: v.inventory,
        status: p.status,
        created_at: p.created_at,
        gift_card: p.gift_card,
        inventory_item_id: v.inventory_item_id,
    }
}

fn located(rows: Vec<(u64, Product)>) -> Vec<Located> {
    rows.into_iter()
        .map(|(line, product)| Located { line, product })
        .collect()
}

fn read_product_export<R: Read>(
    file: &str,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<Vec<Located>, IngestError> {
    let cols = CatalogColumns::new(columns, conv);
    let currency = ctx.default_currency;
    // Product-level fields by handle, and how many variants each handle has so far.
    let mut products: HashMap<String, (ProductFields, u32)> = HashMap::new();
    let shape = Shape::ShopifyProductExport;
    let rows = read_rows(
        file,
        shape,
        csv,
        columns,
        conv,
        &mut batch.report,
        |row, report| {
            let Some(handle) = row.get(cols.handle).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(cols.handle, "", "a Handle is required"),
                ));
            };
            let handle = handle.to_owned();
            if row.get(cols.title).map_err(utf8)?.is_some() {
                let fields = product_fields(row, &cols, report)?;
                let entry = products
                    .entry(handle.clone())
                    .or_insert((fields.clone(), 0));
                entry.0 = fields;
            }
            let has_variant = row.get(cols.price).map_err(utf8)?.is_some()
                || row.get(cols.sku).map_err(utf8)?.is_some();
            if !has_variant {
                // An image-only row: Shopify writes one per extra product image.
                return Ok(Outcome::Dropped("image_only_row"));
            }
            let Some((fields, count)) = products.get_mut(&handle) else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(cols.title, "", "the first row of a product needs its Title"),
                ));
            };
            let v = variant_fields(row, &cols, currency, report)?;
            *count += 1;
            let variant_id = v.sku.clone().unwrap_or_else(|| format!("{handle}#{count}"));
            Ok(Outcome::Entry(product(
                handle.clone(),
                variant_id,
                Some(handle),
                fields,
                v,
            )))
        },
    )?;
    Ok(located(rows))
}

/// A split products file: one row per product (joined to a variants file), or, when it
/// has price columns itself, one row per sellable item.
fn read_split_products<R: Read>(
    file: &str,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    ctx: &IngestContext,
    variants: Option<&IngestSource>,
    batch: &mut IngestBatch,
) -> Result<Vec<Located>, IngestError> {
    let cols = CatalogColumns::new(columns, conv);
    let col_id = columns.find(Field::Id).or(cols.handle).or(cols.sku);
    let col_variant_id = columns.find(Field::VariantId);
    let col_product_id = columns.find(Field::ProductId);
    let self_priced = cols.price.is_some();
    if !self_priced && variants.is_none() {
        return Err(IngestError::NeedsVariants {
            name: file.to_owned(),
        });
    }
    let currency = ctx.default_currency;
    // Product rows awaiting their variants: (id, product-level fields, handle).
    let mut products: Vec<SplitProduct> = Vec::new();
    let shape = Shape::SplitProducts;
    let rows = read_rows(
        file,
        shape,
        csv,
        columns,
        conv,
        &mut batch.report,
        |row, report| {
            let Some(id) = row.get(col_id).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_id, "", "an id is required"),
                ));
            };
            let fields = product_fields(row, &cols, report)?;
            if fields.title.is_empty() {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(cols.title, "", "a title is required"),
                ));
            }
            if !self_priced {
                let handle = row.optional(cols.handle, report).map(str::to_owned);
                products.push((id.to_owned(), fields, handle));
                return Ok(Outcome::Absorbed);
            }
            let v = variant_fields(row, &cols, currency, report)?;
            let product_id = opt(row, col_product_id)?.unwrap_or_else(|| id.to_owned());
            let variant_id = opt(row, col_variant_id)?.unwrap_or_else(|| id.to_owned());
            Ok(Outcome::Entry(product(
                product_id,
                variant_id,
                row.optional(cols.handle, report).map(str::to_owned),
                &fields,
                v,
            )))
        },
    )?;
    let mut out = located(rows);
    if let Some(variants) = variants {
        out.extend(read_split_variants(variants, &products, ctx, batch)?);
    }
    Ok(out)
}

/// A flat, variant-level catalog as apps export it: one row per variant keyed by
/// `variant_id`, its product's fields repeated on every row.
fn read_variant_catalog<R: Read>(
    file: &str,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<Vec<Located>, IngestError> {
    let cols = CatalogColumns::new(columns, conv);
    let col_variant_id = columns.find(Field::VariantId);
    let col_product_id = columns.find(Field::ProductId);
    // Only a column named for it is the variant's title: a bare `title` is the product's.
    let col_variant_title = columns
        .find(Field::VariantTitle)
        .filter(|i| Some(*i) != cols.title);
    let currency = ctx.default_currency;
    let rows = read_rows(
        file,
        Shape::VariantCatalog,
        csv,
        columns,
        conv,
        &mut batch.report,
        |row, report| {
            let Some(variant_id) = row.get(col_variant_id).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_variant_id, "", "a variant id is required"),
                ));
            };
            let fields = product_fields(row, &cols, report)?;
            if fields.title.is_empty() {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(cols.title, "", "a product title is required"),
                ));
            }
            let mut v = variant_fields(row, &cols, currency, report)?;
            if let Some(t) = row
                .optional(col_variant_title, report)
                .filter(|t| *t != "Default Title")
            {
                v.variant_title = Some(t.to_owned());
            }
            let product_id = opt(row, col_product_id)?.unwrap_or_else(|| variant_id.to_owned());
            Ok(Outcome::Entry(product(
                product_id,
                variant_id.to_owned(),
                row.optional(cols.handle, report).map(str::to_owned),
                &fields,
                v,
            )))
        },
    )?;
    Ok(located(rows))
}

/// A product row of a split export: its id, product-level fields and handle.
type SplitProduct = (String, ProductFields, Option<String>);

fn read_split_variants(
    source: &IngestSource,
    products: &[SplitProduct],
    ctx: &IngestContext,
    batch: &mut IngestBatch,
) -> Result<Vec<Located>, IngestError> {
    let name = source.name.as_str();
    let opened = source::open(source, &super::NoProgress)?;
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    let columns = Columns::new(&csv.byte_headers().map_err(|e| csv_error(name, e))?.clone());
    shape_for(name, &columns, FileRole::Variants)?;
    let conv = catalog_conventions(source, &columns)?;
    let mut cols = CatalogColumns::new(&columns, &conv);
    // In a variants file, `title` is the variant's name ("Large / Blue").
    let col_variant_title = columns.find(Field::VariantTitle);
    cols.title = None;
    let col_id = columns.find(Field::Id);
    let col_product_id = columns.find(Field::ProductId);
    let by_id: HashMap<&str, usize> = products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.0.as_str(), i))
        .collect();
    let shape = Shape::SplitVariants;
    let rows = read_rows(
        name,
        shape,
        &mut csv,
        &columns,
        &conv,
        &mut batch.report,
        |row, report| {
            let Some(id) = row.get(col_id).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_id, "", "an id is required"),
                ));
            };
            let Some(pid) = row.get(col_product_id).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_product_id, "", "a product id is required"),
                ));
            };
            let Some(&pi) = by_id.get(pid) else {
                return Err(Rejection::new(
                    "unknown_product",
                    row.error(
                        col_product_id,
                        pid,
                        "no product with this id in the products file",
                    ),
                ));
            };
            let (product_id, fields, handle) = &products[pi];
            let mut v = variant_fields(row, &cols, ctx.default_currency, report)?;
            if v.variant_title.is_none() {
                v.variant_title = row
                    .optional(col_variant_title, report)
                    .filter(|t| *t != "Default Title")
                    .map(str::to_owned);
            }
            Ok(Outcome::Entry(product(
                product_id.clone(),
                id.to_owned(),
                handle.clone(),
                fields,
                v,
            )))
        },
    )?;
    Ok(located(rows))
}

/// Inventory levels: quantities summed over locations per inventory item, joined to
/// the variants by `inventory_item_id`; a cost column there fills a missing cost.
fn apply_inventory_levels(
    source: &IngestSource,
    entries: &mut [Located],
    ctx: &IngestContext,
    batch: &mut IngestBatch,
    progress: &dyn Progress,
) -> Result<(), IngestError> {
    let name = source.name.as_str();
    let opened = source::open(source, progress)?;
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    let columns = Columns::new(&csv.byte_headers().map_err(|e| csv_error(name, e))?.clone());
    shape_for(name, &columns, FileRole::Inventory)?;
    let conv = super::conventions::scan(source, &[columns.find(Field::Cost)], &[])?;
    let col_item = columns.find(Field::InventoryItemId);
    let col_qty = columns.find(Field::InventoryQty);
    let col_cost = columns.find(Field::Cost);
    let col_location = columns.find(Field::LocationId);
    let by_item: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.product.inventory_item_id.clone().map(|id| (id, i)))
        .collect();
    // Each item's level per location, with the line that gave it: a repeated
    // (item, location) is a correction, the later line wins, as in a catalog.
    let mut levels: HashMap<(usize, Option<String>), (i64, u64)> = HashMap::new();
    let shape = Shape::InventoryLevels;
    read_rows::<_, ()>(
        name,
        shape,
        &mut csv,
        &columns,
        &conv,
        &mut batch.report,
        |row, report| {
            let Some(item) = row.get(col_item).map_err(utf8)? else {
                return Err(Rejection::new(
                    "missing_value",
                    row.error(col_item, "", "an inventory item id is required"),
                ));
            };
            let Some(&ei) = by_item.get(item) else {
                return Err(Rejection::new(
                    "unknown_inventory_item",
                    row.error(col_item, item, "no variant has this inventory item id"),
                ));
            };
            let qty_text = row.get(col_qty).map_err(utf8)?.unwrap_or("");
            let qty = super::parse_quantity(qty_text, super::MAX_INVENTORY)
                .map_err(|e| Rejection::new(e.key, row.error(col_qty, qty_text, &e.reason)))?;
            let location = opt(row, col_location)?;
            if let Some((earlier, earlier_line)) =
                levels.insert((ei, location.clone()), (qty, row.line))
            {
                if earlier == qty {
                    return Ok(Outcome::Dropped("identical_duplicate"));
                }
                report.unkeep(
                    "conflicting_duplicate_level",
                    RowError {
                        file: row.file.to_owned(),
                        line: earlier_line,
                        column: row.error(col_item, "", "").column,
                        value: item.to_owned(),
                        reason: format!(
                            "this item's level at location {} is given again at line {}; line {} wins",
                            location.as_deref().unwrap_or("(none)"),
                            row.line,
                            row.line
                        ),
                    },
                );
            }
            let p = &mut entries[ei].product;
            if p.cost.is_none() {
                let in_file = (ctx.default_currency, conv.decimal_mark);
                p.cost = money_opt(row, col_cost, in_file, "cost", report)?;
            }
            Ok(Outcome::Absorbed)
        },
    )?;
    let mut totals: HashMap<usize, i64> = HashMap::new();
    for ((ei, _), (qty, _)) in levels {
        let t = totals.entry(ei).or_default();
        *t = t.saturating_add(qty);
    }
    for (ei, qty) in totals {
        entries[ei].product.inventory = Some(qty);
    }
    Ok(())
}
