//! Reading merchants' exports: catalogs and order histories, CSV or JSON, gzip or
//! plain, in the shapes merchants actually have (see [`Shape`]).
//!
//! The shape is recognised from the headers (or the JSON's keys), never from a flag.
//! Every row is validated on its own: a bad row is reported as `file:line: column
//! "value": reason` and counted, and every valid row is kept. What the data does not say
//! (cost, stock, status, launch date, currency) stays unknown here; the assumptions that
//! fill it are applied and reported where the data is used (see `stats`).

mod catalog_entries;
mod conventions;
mod dates;
mod html;
mod online_retail;
mod order_rows;
pub mod plain;
mod products;
pub mod rejected;
mod rows;
mod shopify_json;
mod source;
mod spill;
mod stream;

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::domain::{Currency, Order, OrderLine, Product, ProductObservations};

pub use conventions::FileConventions;
pub use dates::{
    DateOrder, YEARS, parse_checked, parse_checked_in, parse_datetime, parse_datetime_in,
};
pub use html::strip_html;
pub use rejected::{KeepRejected, RejectedRows};
pub use source::{FileRole, IngestSource, IngestSources, Shape, normalise_header};
pub use stream::{
    CollectSink, CountSink, IngestSink, MAX_DAYS_AHEAD_OF_FILE, OrderChunk, read_into,
};
use stream::{JoinCounts, PendingOrders};

/// What takes each finished order of a file: its index (as the file's dates give it),
/// the order, and whether a row of it was rejected.
pub(crate) type EachOrder<'a> =
    dyn FnMut(usize, Order, bool, &mut IngestReport) -> Result<(), IngestError> + 'a;

/// How many row errors a report keeps verbatim (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The most units one order line may hold: beyond it a quantity is a typo or a
/// placeholder, and revenue (quantity × price) could no longer be summed exactly.
pub const MAX_LINE_QUANTITY: i64 = 1_000_000;
/// The most units a stock level may count, per location and per item.
pub const MAX_INVENTORY: i64 = 1_000_000_000;

/// Why a quantity was refused, and the reason key it is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuantityError {
    pub key: &'static str,
    pub reason: String,
}

/// A whole number of units (`3`, `+3`, `-1`, `3.0`) no larger than `ceiling` either way.
pub(crate) fn parse_quantity(text: &str, ceiling: i64) -> Result<i64, QuantityError> {
    let t = text.trim();
    let whole = match t.split_once('.') {
        Some((w, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => w,
        Some(_) => t,
        None => t,
    };
    let digits = whole.trim_start_matches(['+', '-']);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || whole.len() - digits.len() > 1
    {
        return Err(QuantityError {
            key: "bad_quantity",
            reason: "not a whole number".into(),
        });
    }
    match whole.parse::<i64>() {
        Ok(q) if q.unsigned_abs() <= ceiling.unsigned_abs() => Ok(q),
        _ => Err(QuantityError {
            key: "quantity_too_large",
            reason: format!("more than {ceiling} units, the ceiling for one value"),
        }),
    }
}

/// Why an ingest stopped. Each names its source as errors and the report do (a file's
/// path as given, an upload's name).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
    #[error("{name}: the file is empty")]
    Empty { name: String },
    #[error("{name}: not a format bundleforge reads (its columns: {columns}); {catalogue}")]
    Unrecognised {
        name: String,
        columns: String,
        catalogue: String,
    },
    #[error("{name}: is a {shape}, read as the {expected} file, but was given as the {given} file")]
    WrongRole {
        name: String,
        shape: &'static str,
        expected: FileRole,
        given: FileRole,
    },
    #[error("{name}: missing required column {field} for a {shape}; accepted names: {accepted}")]
    MissingColumn {
        name: String,
        shape: &'static str,
        field: &'static str,
        accepted: String,
    },
    #[error("{name}:{line}: {message}")]
    Malformed {
        name: String,
        line: u64,
        message: String,
    },
    #[error(
        "{name}: the column {column:?} appears twice (columns {first} and {second}): rename or remove one"
    )]
    DuplicatedColumn {
        name: String,
        column: String,
        first: usize,
        second: usize,
    },
    /// A split products file (no prices) given without its variants.
    #[error(
        "{name}: a products file without prices needs its variants file (columns id, product_id, price, …)"
    )]
    NeedsVariants { name: String },
    /// A variants file given beside a catalog that holds its variants itself.
    #[error(
        "{name}: a {shape} has its variants already; a variants file completes a split products file only"
    )]
    VariantsAlreadyGiven { name: String, shape: &'static str },
    #[error("{second}: a second {role} file (the first: {first}); an ingest reads one of each")]
    RoleGivenTwice {
        role: FileRole,
        first: String,
        second: String,
    },
    #[error("{0}")]
    Usage(String),
    /// What the read hands on was no longer taken: the write it feeds ended (with its
    /// own error, which is the one to report).
    #[error("the ingest stopped: its write ended before its read")]
    Stopped,
}

/// Refuses a header that names a column we read twice.
pub(crate) fn check_header(name: &str, columns: &source::Columns) -> Result<(), IngestError> {
    match columns.duplicated() {
        Some((column, first, second)) => Err(IngestError::DuplicatedColumn {
            name: name.to_owned(),
            column,
            first,
            second,
        }),
        None => Ok(()),
    }
}

/// One rejected row (or ignored value), named precisely enough to fix the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JSON inputs have no useful line: their column is a path (`orders[3].price`).
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        // A row-level error (a wrong field count) has no column and no value.
        if !self.column.is_empty() || !self.value.is_empty() {
            write!(f, ": {} {:?}", self.column, self.value)?;
        }
        // `{:?}` escapes a value's line breaks; the reason is ours, but say it on one
        // line whatever it holds.
        write!(f, ": ")?;
        let mut words = self.reason.split_whitespace();
        if let Some(w) = words.next() {
            write!(f, "{w}")?;
        }
        for w in words {
            write!(f, " {w}")?;
        }
        Ok(())
    }
}

/// What an ingest read, kept, rejected and dropped. `rejected` counts rows that were
/// wrong; `dropped` counts valid rows a documented filter leaves out (cancellations,
/// service lines); `ignored_values` counts bad optional values whose row was kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub rows_read: u64,
    pub rows_kept: u64,
    pub rejected: BTreeMap<String, u64>,
    pub dropped: BTreeMap<String, u64>,
    /// Per service code, for the Online Retail filter.
    pub dropped_service_codes: BTreeMap<String, u64>,
    pub ignored_values: BTreeMap<String, u64>,
    pub orders: u64,
    pub order_lines: u64,
    pub products: u64,
    pub baskets: u64,
    /// Repeated lines of one product in one order, merged into one.
    pub lines_merged: u64,
    /// Order lines whose product the catalog does not have (kept).
    pub lines_without_catalog_product: u64,
    /// Of those, lines naming only a title several catalog products share (kept
    /// unjoined: give a SKU or variant id to join them).
    pub lines_with_ambiguous_title: u64,
    /// Orders with at least one rejected line (see [`IngestBatch::incomplete_orders`]).
    pub incomplete_orders: u64,
    pub errors: Vec<RowError>,
    pub error_count: u64,
    pub files: Vec<FileSummary>,
    /// The rows for the rejected-rows file (what `--rejected` writes): every rejected
    /// CSV row by file and line, with its reasons, and the valid rows of orders that
    /// have a rejected one (reason empty). The first `ingest.max_rejected_rows_kept`
    /// are kept in memory and the rest counted, unless the ingest was asked to keep
    /// every one (then they are on disk, never all in memory).
    #[serde(skip)]
    pub rejected_rows: RejectedRows,
    /// Rows for the rejected-rows file past the first ones kept: counted, not listed
    /// (0 when every one was kept). The counts by reason include them.
    pub rejected_rows_not_listed: u64,
}

/// A row for the rejected-rows file: where it is, and why (empty: a valid row sent
/// along so that its order comes back whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub shape: &'static str,
    pub rows_read: u64,
    /// How the file writes decimals and slash dates, and which values decided it.
    #[serde(flatten)]
    pub conventions: FileConventions,
}

impl IngestReport {
    fn record(&mut self, err: RowError) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(err);
        }
    }

    /// A rejected row: counted under `reason_key`, described by `err`.
    pub fn reject(&mut self, reason_key: &str, err: RowError) {
        if err.line > 0 {
            let (column, why) = (&err.column, &err.reason);
            let kept = self
                .rejected_rows
                .push(&err.file, err.line, || format!("{column}: {why}"));
            self.rejected_rows_not_listed += u64::from(!kept);
        }
        self.count_rejection(reason_key, err);
    }

    fn count_rejection(&mut self, reason_key: &str, err: RowError) {
        *self.rejected.entry(reason_key.to_owned()).or_default() += 1;
        self.record(err);
    }

    /// A valid row of an order with a rejected row, for the rejected-rows file.
    pub(crate) fn send_along(&mut self, file: &str, line: u64) {
        let kept = self.rejected_rows.push(file, line, String::new);
        self.rejected_rows_not_listed += u64::from(!kept);
    }

    /// A bad optional value; its row is kept.
    pub fn ignore_value(&mut self, reason_key: &str, err: RowError) {
        *self
            .ignored_values
            .entry(reason_key.to_owned())
            .or_default() += 1;
        self.record(err);
    }

    pub fn drop_row(&mut self, reason_key: &str) {
        *self.dropped.entry(reason_key.to_owned()).or_default() += 1;
    }

    /// Un-keeps a row kept earlier (a conflicting duplicate superseded by a later one).
    /// It is not a row to fix, so the rejected-rows file leaves it out.
    fn unkeep(&mut self, reason_key: &str, err: RowError) {
        self.rows_kept = self.rows_kept.saturating_sub(1);
        self.count_rejection(reason_key, err);
    }

    /// Errors in reading order: by file (as the report lists them), then line. Errors
    /// without a line (JSON paths, whole orders) come first in their file, as found.
    fn sort_errors(&mut self) {
        let files = &self.files;
        let rank = |file: &str| {
            files
                .iter()
                .position(|f| f.path == file)
                .unwrap_or(files.len())
        };
        self.errors.sort_by_cached_key(|e| (rank(&e.file), e.line));
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// Progress of a long read, in bytes of the source (a file's on disk).
pub trait Progress: Send + Sync {
    fn start(&self, label: &str, total_bytes: u64);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// For callers that show no progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What the reader needs to know about the store.
#[derive(Debug, Clone)]
pub struct IngestContext {
    /// Used for orders and prices whose file names no currency.
    pub default_currency: Currency,
    /// True for a store that exists already: its currency stands. For a new store the
    /// currency its orders state (if they state one) prices its catalog too.
    pub currency_fixed: bool,
}

/// Everything one ingest read, validated, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub products: Vec<Product>,
    /// The source rows of products derived from orders (see [`ProductObservations`]).
    pub observations: Vec<ProductObservations>,
    pub orders: Vec<Order>,
    /// The currency the data itself states (Online Retail is GBP), if it states one.
    pub data_currency: Option<Currency>,
    /// Orders of this ingest with at least one rejected line. Such an order is stored
    /// with its valid lines when the store does not have it yet, and never replaces an
    /// order the store has: a re-ingest with a broken line must not delete a good one.
    pub incomplete_orders: BTreeSet<String>,
    pub report: IngestReport,
}

/// Reads and validates every source of an ingest. Lines are not yet joined to the
/// catalog: see [`resolve_lines`]. The report keeps the first rows for the
/// rejected-rows file ([`KeepRejected::default`]); see [`read_keeping`].
pub fn read(
    sources: &IngestSources,
    ctx: &IngestContext,
    progress: &dyn Progress,
) -> Result<IngestBatch, IngestError> {
    read_keeping(sources, ctx, KeepRejected::default(), progress)
}

/// [`read`], keeping the rows for the rejected-rows file as `keep` says: the whole
/// ingest in memory (see [`read_into`] for one handed on in chunks).
pub fn read_keeping(
    sources: &IngestSources,
    ctx: &IngestContext,
    keep: KeepRejected,
    progress: &dyn Progress,
) -> Result<IngestBatch, IngestError> {
    let mut sink = CollectSink::default();
    let report = read_into(sources, ctx, keep, None, progress, &mut sink)?;
    let mut batch = sink.batch;
    batch.report = report;
    Ok(batch)
}

/// Reads and checks an order file; its orders are finished as they are handed on.
/// A JSON document's catalog parts and currency go into `head`, as do the report's
/// counts.
fn read_order_file(
    source: &IngestSource,
    ctx: &IngestContext,
    head: &mut IngestBatch,
    progress: &dyn Progress,
) -> Result<PendingOrders, IngestError> {
    let name = source.name.as_str();
    let Some(opened) = shopify_json::read_if_json(source, FileRole::Orders, ctx, head, progress)?
    else {
        return Ok(PendingOrders::Parsed {
            orders: std::mem::take(&mut head.orders),
            incomplete: std::mem::take(&mut head.incomplete_orders),
        });
    };
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    let columns =
        source::Columns::new(&csv.byte_headers().map_err(|e| csv_error(name, e))?.clone());
    let shape = shape_for(name, &columns, FileRole::Orders)?;
    use source::Field;
    match shape {
        Shape::OnlineRetail => {
            let conv = conventions::scan(
                source,
                &[columns.find(Field::UnitPrice)],
                &[columns.find(Field::InvoiceDate)],
            )?;
            let retail = online_retail::read(name, &mut csv, &columns, &conv, &mut head.report)?;
            head.data_currency = Some(Currency::GBP);
            Ok(PendingOrders::Retail(retail))
        }
        Shape::ShopifyOrderExport | Shape::OrderRows => {
            let conv = conventions::scan(
                source,
                &[
                    columns.find(Field::UnitPrice),
                    columns.find(Field::LineDiscount),
                ],
                &[columns.find(Field::CreatedAt)],
            )?;
            let rows = order_rows::read(
                name,
                shape,
                &mut csv,
                &columns,
                &conv,
                ctx,
                &mut head.report,
            )?;
            Ok(PendingOrders::Rows(Box::new(rows)))
        }
        _ => Err(wrong_role(name, shape, FileRole::Orders)),
    }
}

pub(crate) fn csv_reader<R: std::io::Read>(
    r: R,
    delimiter: u8,
) -> csv::Reader<CrlfAsLf<BoundedRows<R>>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 17)
        .from_reader(CrlfAsLf::new(BoundedRows::new(r, delimiter)))
}

/// The most bytes one CSV row may span (quoted line breaks included). The csv reader
/// holds a whole row in memory, so a row without end (`/dev/zero`, a 200 MB title
/// from a small gzip) must end the read before it ends the machine.
pub const MAX_ROW_BYTES: usize = 8 << 20;
/// The most bytes one value may hold: far above any description an export writes.
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// Ends a CSV read with an error naming the line where a row passes
/// [`MAX_ROW_BYTES`]. Follows quoting as the csv reader does (a quote opens a quoted
/// value only at the start of one), so a line break inside quotes does not end a row.
pub(crate) struct BoundedRows<R> {
    inner: R,
    delimiter: u8,
    state: CsvState,
    row_bytes: usize,
    line: u64,
    /// The line the current row started on.
    row_line: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted value: an escaped quote or the value's end.
    QuoteInQuoted,
}

impl<R> BoundedRows<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        BoundedRows {
            inner,
            delimiter,
            state: CsvState::FieldStart,
            row_bytes: 0,
            line: 1,
            row_line: 1,
        }
    }
}

impl<R> BoundedRows<R> {
    /// Ordinary bytes: they only turn a value's start (or a quoted value's end) into
    /// an unquoted value.
    fn ordinary(&mut self, n: usize) {
        if n > 0 {
            self.row_bytes += n;
            if matches!(self.state, CsvState::FieldStart | CsvState::QuoteInQuoted) {
                self.state = CsvState::Unquoted;
            }
        }
    }

    fn special(&mut self, b: u8) {
        use CsvState::*;
        self.row_bytes += 1;
        let row_end = b == b'\n' && self.state != Quoted;
        self.state = match (self.state, b) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            (FieldStart, b'"') => Quoted,
            (_, b'"') => Unquoted,
            (_, b'\n') => FieldStart,
            (_, d) if d == self.delimiter => FieldStart,
            _ => Unquoted,
        };
        if b == b'\n' {
            self.line += 1;
        }
        if row_end {
            self.row_bytes = 0;
            self.row_line = self.line;
        }
    }
}

impl<R: std::io::Read> std::io::Read for BoundedRows<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut at = 0;
        // Only quotes, commas and line breaks change the state: jump between them.
        for i in memchr::memchr3_iter(b'"', self.delimiter, b'\n', &buf[..n]) {
            self.ordinary(i - at);
            self.special(buf[i]);
            at = i + 1;
            if self.row_bytes > MAX_ROW_BYTES {
                break;
            }
        }
        self.ordinary(n - at.min(n));
        if self.row_bytes > MAX_ROW_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the row at line {} is longer than {} MiB, the limit for one row (is it a CSV export?)",
                    self.row_line,
                    MAX_ROW_BYTES >> 20
                ),
            ));
        }
        Ok(n)
    }
}

/// Reads `\r\n` as `\n`. The csv reader ends a record at a CRLF's `\r` and counts the
/// line at its `\n`, which it reads with the next record: in a Windows file every row
/// would be reported one line early.
pub(crate) struct CrlfAsLf<R> {
    inner: R,
    /// A `\r` that ended the last read: kept until the next byte shows what it is.
    held_cr: bool,
}

impl<R> CrlfAsLf<R> {
    fn new(inner: R) -> Self {
        CrlfAsLf {
            inner,
            held_cr: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for CrlfAsLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Room for a held `\r` in front of what is read.
            let start = usize::from(self.held_cr);
            if buf.len() <= start {
                return Ok(0);
            }
            let n = self.inner.read(&mut buf[start..])?;
            if n == 0 {
                if std::mem::take(&mut self.held_cr) {
                    buf[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            if std::mem::take(&mut self.held_cr) {
                buf[0] = b'\r';
            }
            let end = start + n;
            let mut out = 0;
            let mut i = 0;
            while i < end {
                let b = buf[i];
                if b == b'\r' {
                    if i + 1 == end {
                        self.held_cr = true;
                        break;
                    }
                    if buf[i + 1] == b'\n' {
                        i += 1;
                        continue;
                    }
                }
                buf[out] = b;
                out += 1;
                i += 1;
            }
            if out > 0 {
                return Ok(out);
            }
            // Only a held `\r` so far: read on.
        }
    }
}

pub(crate) fn csv_error(name: &str, e: csv::Error) -> IngestError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => IngestError::Io {
            name: name.to_owned(),
            source,
        },
        other => IngestError::Malformed {
            name: name.to_owned(),
            line,
            message: format!("{other:?}"),
        },
    }
}

/// Recognises a CSV's shape and checks it was given in the right role.
pub(crate) fn shape_for(
    name: &str,
    columns: &source::Columns,
    given: FileRole,
) -> Result<Shape, IngestError> {
    check_header(name, columns)?;
    let Some(shape) = columns.shape() else {
        return Err(IngestError::Unrecognised {
            name: name.to_owned(),
            columns: columns.describe(),
            catalogue: Shape::catalogue(),
        });
    };
    if shape.role() != given {
        return Err(wrong_role(name, shape, given));
    }
    Ok(shape)
}

pub(crate) fn wrong_role(name: &str, shape: Shape, given: FileRole) -> IngestError {
    IngestError::WrongRole {
        name: name.to_owned(),
        shape: shape.name(),
        expected: shape.role(),
        given,
    }
}

/// Where each catalog key points, for joining order lines: variant id, else SKU, else
/// product id, else exact title.
#[derive(Debug, Default)]
pub struct CatalogKeys {
    by_variant: HashMap<String, String>,
    by_sku: HashMap<String, String>,
    by_product: HashMap<String, String>,
    by_title: HashMap<String, String>,
    /// Titles two catalog entries share: a line naming only such a title stays
    /// unjoined rather than joining whichever came first.
    ambiguous_titles: std::collections::HashSet<String>,
}

impl CatalogKeys {
    /// Adds a catalog entry. Earlier entries win on ambiguous SKUs, product ids and
    /// titles; pass them in a stable order (e.g. by variant id) for stable joins.
    pub fn insert(&mut self, variant_id: &str, sku: Option<&str>, product_id: &str, title: &str) {
        self.by_variant
            .insert(variant_id.to_owned(), variant_id.to_owned());
        if let Some(s) = sku {
            self.by_sku
                .entry(s.to_owned())
                .or_insert_with(|| variant_id.to_owned());
        }
        self.by_product
            .entry(product_id.to_owned())
            .or_insert_with(|| variant_id.to_owned());
        self.add_title(title, variant_id);
    }

    fn add_title(&mut self, title: &str, variant_id: &str) {
        match self.by_title.get(title) {
            Some(v) if v != variant_id => {
                self.ambiguous_titles.insert(title.to_owned());
            }
            Some(_) => {}
            None => {
                self.by_title
                    .insert(title.to_owned(), variant_id.to_owned());
            }
        }
    }

    /// Whether a line names only a title that several catalog entries share.
    pub fn ambiguous(&self, r: &crate::domain::ProductRef) -> bool {
        self.resolve(r).is_none()
            && r.title
                .as_ref()
                .is_some_and(|t| self.ambiguous_titles.contains(t))
    }

    pub fn add_products(&mut self, products: &[Product]) {
        for p in products {
            self.insert(
                &p.variant_id,
                p.sku.as_deref(),
                &p.product_id,
                &p.display_title(),
            );
            // A line may name the product's bare title, too.
            self.add_title(&p.title, &p.variant_id);
        }
    }

    pub fn resolve(&self, r: &crate::domain::ProductRef) -> Option<&str> {
        fn hit<'m>(map: &'m HashMap<String, String>, k: &Option<String>) -> Option<&'m str> {
            k.as_ref().and_then(|k| map.get(k)).map(String::as_str)
        }
        hit(&self.by_variant, &r.variant_id)
            .or_else(|| hit(&self.by_sku, &r.sku))
            .or_else(|| hit(&self.by_product, &r.product_id))
            .or_else(|| {
                hit(&self.by_title, &r.title).filter(|_| {
                    !r.title
                        .as_ref()
                        .is_some_and(|t| self.ambiguous_titles.contains(t))
                })
            })
    }

    pub fn is_empty(&self) -> bool {
        self.by_variant.is_empty()
    }

    /// Whether an id is a variant id, SKU or product id of the catalog.
    pub fn knows(&self, id: &str) -> bool {
        self.by_variant.contains_key(id)
            || self.by_sku.contains_key(id)
            || self.by_product.contains_key(id)
    }
}

/// Joins every order line to the catalog, then merges lines of one order that turn out
/// to name the same product (quantities and discounts added, unit price the
/// quantity-weighted mean). Fills the report's line and basket counts.
pub fn resolve_lines(batch: &mut IngestBatch, catalog: &CatalogKeys) {
    dedup_orders(&mut batch.orders, &mut batch.report);
    let mut counts = JoinCounts::default();
    for order in &mut batch.orders {
        join_order(order, catalog, &mut counts);
    }
    counts.incomplete = batch.incomplete_orders.len() as u64;
    counts.report(&mut batch.report, batch.products.len() as u64);
}

/// Joins one order's lines to the catalog and merges those naming one product.
pub(crate) fn join_order(order: &mut Order, catalog: &CatalogKeys, counts: &mut JoinCounts) {
    for line in &mut order.lines {
        if line.item_id.is_none() {
            line.item_id = catalog.resolve(&line.product).map(str::to_owned);
            counts.ambiguous +=
                u64::from(line.item_id.is_none() && catalog.ambiguous(&line.product));
        }
    }
    let before = order.lines.len();
    order.lines = merge_lines(std::mem::take(&mut order.lines));
    counts.merged += (before - order.lines.len()) as u64;
    counts.unmatched += order.lines.iter().filter(|l| l.item_id.is_none()).count() as u64;
    counts.lines += order.lines.len() as u64;
    counts.baskets += u64::from(!order.lines.is_empty());
    counts.orders += 1;
}

/// One order id appearing twice in one ingest (two files, or a repeated JSON record):
/// the later one wins, as an upsert would, and the earlier is counted as dropped.
fn dedup_orders(orders: &mut Vec<Order>, report: &mut IngestReport) {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(orders.len());
    for (i, o) in orders.iter().enumerate() {
        last.insert(o.order_id.as_str(), i);
    }
    if last.len() == orders.len() {
        return;
    }
    let keep: Vec<bool> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| last.get(o.order_id.as_str()) == Some(&i))
        .collect();
    let superseded = keep.iter().filter(|k| !**k).count() as u64;
    let mut keep = keep.into_iter();
    orders.retain(|_| keep.next().unwrap_or(true));
    *report
        .dropped
        .entry("superseded_duplicate_order".into())
        .or_default() += superseded;
}

/// Merges lines with the same key, keeping first-seen order.
pub(crate) fn merge_lines(lines: Vec<OrderLine>) -> Vec<OrderLine> {
    if lines.len() < 2 {
        return lines;
    }
    let mut index: HashMap<String, usize> = HashMap::with_capacity(lines.len());
    let mut out: Vec<OrderLine> = Vec::with_capacity(lines.len());
    let mut value: Vec<i128> = Vec::with_capacity(lines.len());
    for line in lines {
        let key = line.line_key();
        match index.get(&key) {
            Some(&i) => {
                let o = &mut out[i];
                value[i] += i128::from(line.quantity) * i128::from(line.unit_price_minor);
                o.quantity += line.quantity;
                o.discount_minor += line.discount_minor;
            }
            None => {
                index.insert(key, out.len());
                value.push(i128::from(line.quantity) * i128::from(line.unit_price_minor));
                out.push(line);
            }
        }
    }
    for (o, v) in out.iter_mut().zip(value) {
        if o.quantity > 0 {
            let q = i128::from(o.quantity);
            // Half away from zero.
            let mean = (v.abs() * 2 + q) / (q * 2) * v.signum();
            o.unit_price_minor = i64::try_from(mean).unwrap_or(o.unit_price_minor);
        }
    }
    out
}

/// Access to one CSV record's fields with UTF-8 checked and errors located.
pub(crate) struct Row<'a> {
    pub file: &'a str,
    pub line: u64,
    pub record: &'a csv::ByteRecord,
    pub columns: &'a source::Columns,
}

impl<'a> Row<'a> {
    /// The trimmed text of column `idx`; `Ok(None)` when the column is absent or empty.
    pub fn get(&self, idx: Option<usize>) -> Result<Option<&'a str>, RowError> {
        let Some(i) = idx else { return Ok(None) };
        let Some(bytes) = self.record.get(i) else {
            return Ok(None);
        };
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                let s = s.trim();
                Ok(if s.is_empty() { None } else { Some(s) })
            }
            Err(e) => Err(self.error(
                idx,
                &String::from_utf8_lossy(bytes),
                &format!(
                    "not valid UTF-8 (byte 0x{:02x} at offset {}); re-export the file as UTF-8",
                    bytes[e.valid_up_to()],
                    e.valid_up_to()
                ),
            )),
        }
    }

    /// Whether the row has another number of fields than the header, as the error
    /// that rejects it (counted under `wrong_field_count`): a line cut short, or a
    /// separator inside an unquoted value, which would shift every later value.
    pub fn wrong_field_count(&self) -> Option<RowError> {
        let (have, want) = (self.record.len(), self.columns.original.len());
        (have != want).then(|| RowError {
            file: self.file.to_owned(),
            line: self.line,
            column: String::new(),
            value: String::new(),
            reason: format!(
                "the row has {have} fields, the header has {want} (a line cut short, or a separator inside an unquoted value)"
            ),
        })
    }

    /// A row's first defect that rejects it whole: a wrong field count or an
    /// over-long value, with the key it is counted under.
    pub fn malformed(&self) -> Option<(&'static str, RowError)> {
        if let Some(e) = self.wrong_field_count() {
            return Some((WRONG_FIELD_COUNT, e));
        }
        self.oversized().map(|e| (VALUE_TOO_LONG, e))
    }

    /// The first value longer than [`MAX_FIELD_BYTES`], as the error that rejects
    /// its row (counted under `value_too_long`).
    pub fn oversized(&self) -> Option<RowError> {
        let (i, bytes) = self
            .record
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() > MAX_FIELD_BYTES)?;
        Some(self.error(Some(i), &value_head(bytes), &value_too_long(bytes.len())))
    }

    /// [`get`](Self::get) for an optional column: a value that is not UTF-8 is
    /// ignored (reported) and the row kept, as for any bad optional value.
    pub fn optional(&self, idx: Option<usize>, report: &mut IngestReport) -> Option<&'a str> {
        match self.get(idx) {
            Ok(v) => v,
            Err(mut e) => {
                e.reason.push_str("; value ignored, row kept");
                report.ignore_value(NOT_UTF8, e);
                None
            }
        }
    }

    pub fn error(&self, idx: Option<usize>, value: &str, reason: &str) -> RowError {
        let column = idx
            .and_then(|i| self.columns.original.get(i))
            .cloned()
            .unwrap_or_default();
        RowError {
            file: self.file.to_owned(),
            line: self.line,
            column,
            value: value.chars().take(200).collect(),
            reason: reason.to_owned(),
        }
    }
}

/// Why a row was rejected: the key it is counted under, and where and what.
/// (Boxed: rows are parsed in loops returning this, and most rows pass.)
pub(crate) struct Rejection {
    pub key: &'static str,
    pub error: Box<RowError>,
}

impl Rejection {
    pub fn new(key: &'static str, error: RowError) -> Self {
        Rejection {
            key,
            error: Box::new(error),
        }
    }
}

/// The reason key of a row with another number of fields than its header.
pub(crate) const WRONG_FIELD_COUNT: &str = "wrong_field_count";

/// The reason key of a value past [`MAX_FIELD_BYTES`].
pub(crate) const VALUE_TOO_LONG: &str = "value_too_long";

/// Why a value of `len` bytes, past [`MAX_FIELD_BYTES`], rejects its row or record:
/// one wording for CSV and JSON.
pub(crate) fn value_too_long(len: usize) -> String {
    format!(
        "a value of {len} bytes, longer than {} KiB, the limit for one value",
        MAX_FIELD_BYTES >> 10
    )
}

/// The first bytes of an over-long value, enough to recognise it in a report.
pub(crate) fn value_head(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

/// The reason key under which a UTF-8 failure is counted.
pub(crate) const NOT_UTF8: &str = "not_utf8";

#[cfg(test)]
mod crlf_tests {
    use std::io::Read;

    use super::CrlfAsLf;

    /// Reads through the adapter `chunk` bytes at a time.
    fn through(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let mut r = CrlfAsLf::new(Chunks(input, chunk));
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn a_row_is_bounded_across_quoted_line_breaks_but_a_bare_quote_opens_nothing() {
        use super::{BoundedRows, MAX_ROW_BYTES};
        let read_all = |data: Vec<u8>| {
            let mut out = Vec::new();
            BoundedRows::new(&data[..], b',')
                .read_to_end(&mut out)
                .map(|_| out.len())
        };
        // Many short lines, one with a bare quote mid-value: fine.
        let mut ok = b"a,b\n1,12\" pizza\n".to_vec();
        for _ in 0..(MAX_ROW_BYTES / 8) {
            ok.extend_from_slice(b"x,yyyyy\n");
        }
        assert!(read_all(ok).is_ok());
        // One quoted value spanning many lines is one row: too long.
        let mut long = b"a,b\n1,\"".to_vec();
        for _ in 0..(MAX_ROW_BYTES / 8) {
            long.extend_from_slice(b"yyyyyyy\n");
        }
        long.extend_from_slice(b"z\"\n");
        let err = read_all(long).unwrap_err();
        assert!(err.to_string().contains("row at line 2"), "{err}");
    }

    #[test]
    fn crlf_becomes_lf_at_any_chunk_boundary_and_a_lone_cr_stays() {
        let input = b"a,b\r\n1,2\r\n\r\nx\ry\r";
        for chunk in 1..=input.len() {
            assert_eq!(
                through(input, chunk),
                b"a,b\n1,2\n\nx\ry\r",
                "chunk {chunk}"
            );
        }
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    fn ctx() -> IngestContext {
        IngestContext {
            default_currency: Currency::USD,
            currency_fixed: false,
        }
    }

    /// Semicolons, decimal commas and day-first dates: only the conventions pass
    /// reads `12,50` and `13/01/2025` right, so it must run for bytes as for a file.
    const ORDERS: &str = "order_id;created_at;quantity;unit_price;sku\n\
        1;13/01/2025;1;12,50;A\n\
        2;02/03/2025;2;4,75;B\n\
        3;bad;1;3,00;A\n";

    #[test]
    fn bytes_read_as_the_same_file_would_conventions_included() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.csv");
        std::fs::write(&path, ORDERS).unwrap();
        let name = path.display().to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, ORDERS.as_bytes()).unwrap();
        let read = |source: IngestSource| read(&source.into(), &ctx(), &NoProgress).unwrap();
        let from_file = read(IngestSource::file(FileRole::Orders, &path));
        let plain = read(IngestSource::bytes(FileRole::Orders, name.clone(), ORDERS));
        let gzipped = read(IngestSource::bytes(
            FileRole::Orders,
            name.clone(),
            gz.finish().unwrap(),
        ));
        let conventions = |b: &IngestBatch| serde_json::to_value(&b.report.files).unwrap();
        assert_eq!(from_file.report.files[0].path, name);
        assert_eq!(
            from_file.report.files[0].conventions.decimal_mark,
            crate::domain::DecimalMark::Comma
        );
        assert_eq!(from_file.orders[1].lines[0].unit_price_minor, 475);
        for other in [&plain, &gzipped] {
            assert_eq!(other.orders, from_file.orders);
            assert_eq!(conventions(other), conventions(&from_file));
            assert_eq!(other.report.errors, from_file.report.errors);
            assert_eq!(
                other.report.rejected_rows.listed(),
                from_file.report.rejected_rows.listed()
            );
        }
    }

    #[test]
    fn a_role_given_twice_is_refused_and_a_json_document_is_read_as_it_is() {
        let a = IngestSource::bytes(FileRole::Catalog, "a", "x");
        let b = IngestSource::bytes(FileRole::Catalog, "b", "y");
        let err = IngestSources::new([a, b]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "b: a second catalog file (the first: a); an ingest reads one of each"
        );
        let doc = serde_json::json!({"product": {"id": 1, "title": "Mug",
            "variants": [{"id": 2, "price": "abc"}]}});
        let sources =
            IngestSources::from(IngestSource::json(FileRole::Catalog, "product.json", doc));
        let batch = read(&sources, &ctx(), &NoProgress).unwrap();
        assert_eq!(
            batch.report.errors[0].to_string(),
            "product.json: products[0].variants[0].price \"abc\": not a decimal amount"
        );
        assert_eq!(batch.report.files[0].path, "product.json");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductRef;

    #[test]
    fn quantities_are_whole_and_bounded() {
        assert_eq!(parse_quantity("3", MAX_LINE_QUANTITY), Ok(3));
        assert_eq!(parse_quantity("-2", MAX_LINE_QUANTITY), Ok(-2));
        assert_eq!(parse_quantity("4.00", MAX_LINE_QUANTITY), Ok(4));
        assert_eq!(parse_quantity("1000000", MAX_LINE_QUANTITY), Ok(1_000_000));
        for bad in ["", "x", "1.5", "--1", "1e3", "+-1"] {
            assert_eq!(
                parse_quantity(bad, MAX_LINE_QUANTITY).map_err(|e| e.key),
                Err("bad_quantity"),
                "{bad}"
            );
        }
        for big in [
            "1000001",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999999",
        ] {
            let e = parse_quantity(big, MAX_LINE_QUANTITY).unwrap_err();
            assert_eq!(e.key, "quantity_too_large", "{big}");
            assert!(e.reason.contains("1000000 units"), "{}", e.reason);
        }
    }

    fn line(sku: &str, qty: i64, price: i64) -> OrderLine {
        OrderLine {
            product: ProductRef {
                sku: Some(sku.into()),
                ..Default::default()
            },
            item_id: None,
            quantity: qty,
            unit_price_minor: price,
            discount_minor: 10,
        }
    }

    #[test]
    fn repeated_lines_merge_with_quantities_added() {
        let merged = merge_lines(vec![line("A", 1, 100), line("B", 2, 50), line("A", 3, 200)]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].quantity, 4);
        // (1·100 + 3·200) / 4 = 175
        assert_eq!(merged[0].unit_price_minor, 175);
        assert_eq!(merged[0].discount_minor, 20);
        assert_eq!(merged[1].product.sku.as_deref(), Some("B"));
    }

    #[test]
    fn a_title_two_products_share_joins_neither() {
        let mut keys = CatalogKeys::default();
        keys.insert("v1", None, "p1", "Tote Bag");
        keys.insert("v2", None, "p2", "Tote Bag");
        keys.insert("v3", None, "p3", "Mug");
        let by_title = |t: &str| ProductRef {
            title: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(keys.resolve(&by_title("Tote Bag")), None);
        assert!(keys.ambiguous(&by_title("Tote Bag")));
        assert_eq!(keys.resolve(&by_title("Mug")), Some("v3"));
        assert!(!keys.ambiguous(&by_title("Teapot")));
    }

    #[test]
    fn lines_join_by_variant_then_sku_then_product_then_title() {
        let mut keys = CatalogKeys::default();
        keys.insert("v1", Some("SKU-1"), "p1", "Mug");
        keys.insert("v2", Some("SKU-2"), "p1", "Mug - Large");
        let r = |v: Option<&str>, s: Option<&str>, p: Option<&str>, t: Option<&str>| ProductRef {
            variant_id: v.map(Into::into),
            sku: s.map(Into::into),
            product_id: p.map(Into::into),
            title: t.map(Into::into),
        };
        assert_eq!(
            keys.resolve(&r(Some("v2"), Some("SKU-1"), None, None)),
            Some("v2")
        );
        assert_eq!(
            keys.resolve(&r(Some("zz"), Some("SKU-2"), None, None)),
            Some("v2")
        );
        assert_eq!(keys.resolve(&r(None, None, Some("p1"), None)), Some("v1"));
        assert_eq!(
            keys.resolve(&r(None, None, None, Some("Mug - Large"))),
            Some("v2")
        );
        assert_eq!(
            keys.resolve(&r(None, Some("nope"), None, Some("nope"))),
            None
        );
    }
}
