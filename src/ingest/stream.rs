//! An ingest read as a stream: every source read and checked first (orders kept
//! compact, their lines on disk), then handed on in order to an [`IngestSink`]: what
//! the data states, the catalog, then the orders in chunks, each finished, cleaned
//! and joined to the catalog one at a time. A sink that writes each chunk as it comes
//! holds an ingest in bounded memory whatever its row count: what stays in memory is
//! the catalog and a few numbers per order (its key, date and currency).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};

use super::{
    CatalogKeys, EachOrder, FileRole, IngestBatch, IngestContext, IngestError, IngestReport,
    IngestSources, KeepRejected, Progress, RejectedRows, RowError, online_retail, order_rows,
    plain, products,
};
use crate::domain::{Currency, Order, Product, ProductObservations};

/// Orders handed on at once, at most: a chunk is one write.
const CHUNK_ORDERS: usize = 2_000;
/// Lines handed on at once, at most (wholesale orders run to hundreds of lines).
const CHUNK_LINES: usize = 20_000;

/// Orders of one chunk, with those that had a rejected row.
#[derive(Debug, Default)]
pub struct OrderChunk {
    pub orders: Vec<Order>,
    /// Orders of this chunk with at least one rejected row: such an order never
    /// replaces a stored one.
    pub incomplete: BTreeSet<String>,
    lines: usize,
}

impl OrderChunk {
    fn push(&mut self, order: Order, incomplete: bool) {
        if incomplete {
            self.incomplete.insert(order.order_id.clone());
        }
        self.lines += order.lines.len();
        self.orders.push(order);
    }

    fn full(&self) -> bool {
        self.orders.len() >= CHUNK_ORDERS || self.lines >= CHUNK_LINES
    }
}

/// Where an ingest's read goes, in this order: [`IngestSink::begin`] once, then
/// [`IngestSink::products`] once, then [`IngestSink::orders`] for each chunk. An error
/// ends the read with it.
pub trait IngestSink {
    /// What the data states before anything is handed on: the currency its orders
    /// state (if they state one) and the order lines that follow.
    fn begin(&mut self, data_currency: Option<Currency>, lines: u64) -> Result<(), IngestError>;

    fn products(
        &mut self,
        products: Vec<Product>,
        observations: Vec<ProductObservations>,
    ) -> Result<(), IngestError>;

    fn orders(&mut self, chunk: OrderChunk) -> Result<(), IngestError>;
}

/// Collects everything into one [`IngestBatch`]: for reads that fit memory (checks,
/// tests, benches).
#[derive(Debug, Default)]
pub struct CollectSink {
    pub batch: IngestBatch,
}

impl IngestSink for CollectSink {
    fn begin(&mut self, data_currency: Option<Currency>, lines: u64) -> Result<(), IngestError> {
        self.batch.data_currency = data_currency;
        self.batch
            .orders
            .reserve(usize::try_from(lines / 4).unwrap_or(0));
        Ok(())
    }

    fn products(
        &mut self,
        products: Vec<Product>,
        observations: Vec<ProductObservations>,
    ) -> Result<(), IngestError> {
        self.batch.products.extend(products);
        self.batch.observations.extend(observations);
        Ok(())
    }

    fn orders(&mut self, chunk: OrderChunk) -> Result<(), IngestError> {
        self.batch.orders.extend(chunk.orders);
        self.batch.incomplete_orders.extend(chunk.incomplete);
        Ok(())
    }
}

/// Keeps what the data states and drops the rest: a check that stores nothing.
#[derive(Debug, Default)]
pub struct CountSink {
    pub data_currency: Option<Currency>,
}

impl IngestSink for CountSink {
    fn begin(&mut self, data_currency: Option<Currency>, _: u64) -> Result<(), IngestError> {
        self.data_currency = data_currency;
        Ok(())
    }

    fn products(
        &mut self,
        _: Vec<Product>,
        _: Vec<ProductObservations>,
    ) -> Result<(), IngestError> {
        Ok(())
    }

    fn orders(&mut self, _: OrderChunk) -> Result<(), IngestError> {
        Ok(())
    }
}

/// An order file read and checked, its orders not yet finished.
pub(crate) enum PendingOrders {
    /// Order rows or Shopify's order export: lines on disk until finished.
    Rows(Box<order_rows::Pending>),
    /// UCI Online Retail: a few numbers per kept row, and a derived catalog.
    Retail(online_retail::Pending),
    /// A Shopify JSON document: in memory already, as the document was.
    Parsed {
        orders: Vec<Order>,
        incomplete: BTreeSet<String>,
    },
}

impl PendingOrders {
    /// The currency most orders state (ties: the smaller code), if any states one.
    fn stated_currency(&self) -> Option<Currency> {
        let mut counts: BTreeMap<Currency, usize> = BTreeMap::new();
        let mut count = |c: Currency| *counts.entry(c).or_default() += 1;
        match self {
            PendingOrders::Rows(rows) => rows.stated_currencies().for_each(&mut count),
            PendingOrders::Retail(_) => return Some(Currency::GBP),
            PendingOrders::Parsed { orders, .. } => orders
                .iter()
                .filter(|o| !o.currency_assumed)
                .for_each(|o| count(o.currency)),
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(c, _)| c)
    }

    fn line_count(&self) -> u64 {
        match self {
            PendingOrders::Rows(rows) => rows.line_count(),
            PendingOrders::Retail(retail) => retail.line_count(),
            PendingOrders::Parsed { orders, .. } => {
                orders.iter().map(|o| o.lines.len() as u64).sum()
            }
        }
    }

    /// Each order's date by its index in [`PendingOrders::drain`].
    fn dates(&self) -> Vec<(DateTime<Utc>, usize)> {
        match self {
            PendingOrders::Rows(rows) => rows.dates(),
            PendingOrders::Retail(retail) => retail.dates(),
            PendingOrders::Parsed { orders, .. } => orders
                .iter()
                .enumerate()
                .map(|(i, o)| (o.created_at, i))
                .collect(),
        }
    }

    /// A JSON document may hold one order twice: the later one wins, as an upsert
    /// would, and the earlier is counted as dropped (a CSV's rows of one order are
    /// one order already).
    fn drop_superseded(&mut self, report: &mut IngestReport) {
        if let PendingOrders::Parsed { orders, .. } = self {
            super::dedup_orders(orders, report);
        }
    }

    fn drain(self, report: &mut IngestReport, each: &mut EachOrder<'_>) -> Result<(), IngestError> {
        match self {
            PendingOrders::Rows(rows) => rows.drain(report, each),
            PendingOrders::Retail(retail) => retail.drain(report, each),
            PendingOrders::Parsed { orders, incomplete } => {
                for (i, order) in orders.into_iter().enumerate() {
                    let was_incomplete = incomplete.contains(&order.order_id);
                    each(i, order, was_incomplete, report)?;
                }
                Ok(())
            }
        }
    }
}

/// Orders needed in a file before a lone far-future date counts as a typo.
const MIN_ORDERS_FOR_OUTLIERS: usize = 20;

/// How far after the rest of its file an order may be dated.
pub const MAX_DAYS_AHEAD_OF_FILE: i64 = 366;

/// The orders of one file dated far in the future of all its others (a typo such as
/// 2204 for 2024 would move `as_of` and every window): the latest orders, at most one
/// in a hundred, that come more than [`MAX_DAYS_AHEAD_OF_FILE`] after the next
/// earlier one.
struct FarAhead {
    orders: HashSet<usize>,
    latest_rest: DateTime<Utc>,
}

impl FarAhead {
    fn find(mut dates: Vec<(DateTime<Utc>, usize)>) -> Option<FarAhead> {
        // With few orders a long gap is a quiet season, not a typo.
        if dates.len() < MIN_ORDERS_FOR_OUTLIERS {
            return None;
        }
        dates.sort();
        let n = dates.len();
        let most_outliers = (n / 100).max(1);
        let gap = (n - 1 - most_outliers.min(n - 1)..n - 1)
            .find(|&i| (dates[i + 1].0 - dates[i].0).num_days() > MAX_DAYS_AHEAD_OF_FILE)?;
        Some(FarAhead {
            orders: dates[gap + 1..].iter().map(|d| d.1).collect(),
            latest_rest: dates[gap].0,
        })
    }

    /// Rejects each row of a far-ahead order.
    fn reject(&self, file: &str, order: &Order, report: &mut IngestReport) {
        for _ in &order.lines {
            report.rows_kept = report.rows_kept.saturating_sub(1);
            report.count_rejection(
                "date_far_ahead_of_file",
                RowError {
                    file: file.to_owned(),
                    line: 0,
                    column: "created_at".into(),
                    value: order.created_at.format("%Y-%m-%d").to_string(),
                    reason: format!(
                        "order {} is dated more than {MAX_DAYS_AHEAD_OF_FILE} days after every other order of the file (latest {}): a typo would move every window",
                        order.order_id,
                        self.latest_rest.format("%Y-%m-%d")
                    ),
                },
            );
        }
    }
}

/// Counts of lines joined to the catalog, for the report.
#[derive(Debug, Default)]
pub(crate) struct JoinCounts {
    pub merged: u64,
    pub unmatched: u64,
    pub ambiguous: u64,
    pub lines: u64,
    pub baskets: u64,
    pub orders: u64,
    pub incomplete: u64,
}

impl JoinCounts {
    /// Writes the counts of a whole ingest into its report.
    pub fn report(&self, r: &mut IngestReport, products: u64) {
        r.lines_merged += self.merged;
        r.lines_without_catalog_product = self.unmatched;
        r.lines_with_ambiguous_title = self.ambiguous;
        r.order_lines = self.lines;
        r.baskets = self.baskets;
        r.incomplete_orders = self.incomplete;
        r.orders = self.orders;
        r.products = products;
    }
}

/// Reads and checks every source of an ingest, then hands it to `sink`: what the
/// data states, the catalog (its control characters removed), then the orders in
/// chunks. With `join`, each order's lines are joined to those catalog keys plus the
/// ingest's own products and merged, and the report's line and basket counts filled;
/// without, lines are handed on as read (see [`super::resolve_lines`]).
pub fn read_into(
    sources: &IngestSources,
    ctx: &IngestContext,
    keep: KeepRejected,
    join: Option<CatalogKeys>,
    progress: &dyn Progress,
    sink: &mut dyn IngestSink,
) -> Result<IngestReport, IngestError> {
    let orders = sources.get(FileRole::Orders);
    let catalog = sources.get(FileRole::Catalog);
    if orders.is_none() && catalog.is_none() {
        return Err(IngestError::Usage(
            "nothing to ingest: give an orders file, a catalog file, or both".into(),
        ));
    }
    let parts =
        sources.get(FileRole::Variants).is_some() || sources.get(FileRole::Inventory).is_some();
    if parts && catalog.is_none() {
        return Err(IngestError::Usage(
            "variants and inventory files complete a catalog: give the products file as the catalog too"
                .into(),
        ));
    }
    let mut head = IngestBatch::default();
    head.report.rejected_rows = RejectedRows::new(keep);
    // Orders first: they may state the currency the catalog's prices are in.
    let mut pending = match orders {
        Some(source) => Some((
            source.name.as_str(),
            super::read_order_file(source, ctx, &mut head, progress)?,
        )),
        None => None,
    };
    if head.data_currency.is_none() {
        head.data_currency = pending.as_ref().and_then(|(_, p)| p.stated_currency());
    }
    if let Some((_, PendingOrders::Retail(retail))) = &mut pending {
        retail.take_products(&mut head.products, &mut head.observations);
    }
    if let Some(source) = catalog {
        let ctx = IngestContext {
            default_currency: match head.data_currency {
                Some(c) if !ctx.currency_fixed => c,
                _ => ctx.default_currency,
            },
            currency_fixed: ctx.currency_fixed,
        };
        products::read_catalog(source, sources, &ctx, &mut head, progress)?;
    }
    // One place for every shape: no control or bidi-override character is stored.
    let mut cleaned = 0u64;
    for p in &mut head.products {
        cleaned += u64::from(plain::clean_product(p));
    }
    let mut join = join;
    if let Some(keys) = &mut join {
        keys.add_products(&head.products);
    }
    let lines = pending.as_ref().map_or(0, |(_, p)| p.line_count());
    sink.begin(head.data_currency, lines)?;
    let product_count = head.products.len() as u64;
    sink.products(
        std::mem::take(&mut head.products),
        std::mem::take(&mut head.observations),
    )?;
    let mut report = std::mem::take(&mut head.report);
    let mut counts = JoinCounts::default();
    if let Some((file, pending)) = pending {
        let (orders_cleaned, chunk) =
            drain_orders(file, pending, join.as_ref(), &mut counts, &mut report, sink)?;
        cleaned += orders_cleaned;
        if !chunk.orders.is_empty() {
            sink.orders(chunk)?;
        }
    }
    if join.is_some() {
        counts.report(&mut report, product_count);
    }
    if cleaned > 0 {
        *report
            .ignored_values
            .entry("control_characters_removed".to_owned())
            .or_default() += cleaned;
    }
    report.sort_errors();
    progress.finish();
    Ok(report)
}

/// Finishes a file's orders one at a time: a far-ahead one rejected, each cleaned,
/// joined (with `join`) and added to a chunk handed to `sink` when full. Returns how
/// many orders had control characters removed, and the last chunk, not yet handed on.
fn drain_orders(
    file: &str,
    mut pending: PendingOrders,
    join: Option<&CatalogKeys>,
    counts: &mut JoinCounts,
    report: &mut IngestReport,
    sink: &mut dyn IngestSink,
) -> Result<(u64, OrderChunk), IngestError> {
    let far = FarAhead::find(pending.dates());
    if let (Some(far), PendingOrders::Parsed { orders, .. }) = (&far, &mut pending) {
        // A document's orders are dropped before its duplicates are judged.
        let mut i = 0;
        orders.retain(|o| {
            let keep = !far.orders.contains(&i);
            i += 1;
            if !keep {
                far.reject(file, o, report);
            }
            keep
        });
    }
    pending.drop_superseded(report);
    let far = far.filter(|_| !matches!(pending, PendingOrders::Parsed { .. }));
    let mut cleaned = 0u64;
    let mut chunk = OrderChunk::default();
    pending.drain(report, &mut |i, mut order, incomplete, report| {
        if let Some(far) = &far
            && far.orders.contains(&i)
        {
            far.reject(file, &order, report);
            return Ok(());
        }
        cleaned += u64::from(plain::clean_order(&mut order));
        if let Some(keys) = join {
            super::join_order(&mut order, keys, counts);
            counts.incomplete += u64::from(incomplete);
        }
        chunk.push(order, incomplete);
        if chunk.full() {
            sink.orders(std::mem::take(&mut chunk))?;
        }
        Ok(())
    })?;
    Ok((cleaned, chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestSource, NoProgress};

    /// Records what a sink is handed, in order.
    #[derive(Default)]
    struct Recording {
        calls: Vec<String>,
        chunks: Vec<usize>,
        orders: Vec<Order>,
    }

    impl IngestSink for Recording {
        fn begin(&mut self, _: Option<Currency>, lines: u64) -> Result<(), IngestError> {
            self.calls.push(format!("begin {lines}"));
            Ok(())
        }

        fn products(
            &mut self,
            p: Vec<Product>,
            _: Vec<ProductObservations>,
        ) -> Result<(), IngestError> {
            self.calls.push(format!("products {}", p.len()));
            Ok(())
        }

        fn orders(&mut self, chunk: OrderChunk) -> Result<(), IngestError> {
            self.calls.push("orders".into());
            self.chunks.push(chunk.orders.len());
            self.orders.extend(chunk.orders);
            Ok(())
        }
    }

    /// Order rows where each order's two rows stand far apart: 5,000 orders, the first
    /// rows of all of them, then the second rows in reverse.
    fn scattered_rows(orders: usize) -> Vec<u8> {
        let mut csv = String::from("order_id,created_at,sku,title,quantity,unit_price,currency\n");
        for o in 0..orders {
            csv += &format!(
                "o{o},2025-03-{:02}T10:00:00Z,A{},Apple {},1,2.50,EUR\n",
                o % 28 + 1,
                o % 7,
                o % 7
            );
        }
        for o in (0..orders).rev() {
            csv += &format!("o{o},,B{},\"Pear {}:~\",2,1.25,\n", o % 5, o % 5);
        }
        csv.into_bytes()
    }

    /// [`scattered_rows`] as an ingest's orders file, for a store in USD.
    fn scattered(orders: usize) -> (IngestSources, IngestContext) {
        let file = IngestSource::bytes(FileRole::Orders, "orders.csv", scattered_rows(orders));
        let ctx = IngestContext {
            default_currency: Currency::USD,
            currency_fixed: false,
        };
        (IngestSources::new([file]).unwrap(), ctx)
    }

    /// The sources read as a stream, joined to an empty catalog, into a recording.
    fn streamed(sources: &IngestSources, ctx: &IngestContext) -> (Recording, IngestReport) {
        let mut sink = Recording::default();
        let join = Some(CatalogKeys::default());
        let report = read_into(
            sources,
            ctx,
            KeepRejected::default(),
            join,
            &NoProgress,
            &mut sink,
        )
        .unwrap();
        (sink, report)
    }

    /// Issue: an ingest held every order in memory before it wrote any. The stream hands
    /// on bounded chunks, after the start and the catalog, and an order's rows join
    /// wherever they stand in the file.
    #[test]
    fn orders_are_handed_on_in_bounded_chunks_with_rows_far_apart_joined() {
        let (sources, ctx) = scattered(5_000);
        let (sink, report) = streamed(&sources, &ctx);
        assert_eq!(sink.calls[0], "begin 10000");
        assert_eq!(sink.calls[1], "products 0");
        assert!(sink.calls[2..].iter().all(|c| c == "orders"));
        assert!(sink.chunks.len() >= 3, "{:?}", sink.chunks);
        assert!(sink.chunks.iter().all(|&n| n <= CHUNK_ORDERS));
        assert_eq!(sink.orders.len(), 5_000);
        assert_eq!(report.orders, 5_000);
        assert_eq!(report.order_lines, 10_000);
        for (i, o) in sink.orders.iter().enumerate() {
            assert_eq!(o.order_id, format!("o{i}"));
            assert_eq!(o.currency, Currency::EUR, "the first row's currency stands");
            assert_eq!(o.lines.len(), 2);
            assert_eq!(
                o.lines[1].product.title.as_deref(),
                Some(&*format!("Pear {}:~", i % 5))
            );
            assert_eq!(o.lines[1].unit_price_minor, 125);
        }
    }

    /// The same file read whole into memory gives the same orders as the stream.
    #[test]
    fn the_stream_and_a_read_into_memory_agree() {
        let (sources, ctx) = scattered(300);
        let mut batch = crate::ingest::read(&sources, &ctx, &NoProgress).unwrap();
        crate::ingest::resolve_lines(&mut batch, &CatalogKeys::default());
        let (sink, report) = streamed(&sources, &ctx);
        assert_eq!(sink.orders, batch.orders);
        assert_eq!(report.order_lines, batch.report.order_lines);
        assert_eq!(report.rows_kept, batch.report.rows_kept);
    }
}
