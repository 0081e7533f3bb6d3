//! The sources of an ingest (a file, bytes held in memory, a parsed JSON document),
//! opening them (gzip or plain, JSON or CSV), and recognising a CSV's shape from its
//! headers through one alias table.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use serde_json::Value;

use super::{IngestError, Progress};

/// A canonical column. Several shapes share one (a quantity is a quantity), and each
/// has the header spellings we accept, compared after [`normalise_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    // Online Retail
    InvoiceNo,
    StockCode,
    Description,
    InvoiceDate,
    Country,
    // Order rows (Shopify export, GraphQL-named, snake_case)
    OrderId,
    OrderName,
    CreatedAt,
    Currency,
    Customer,
    Quantity,
    UnitPrice,
    LineTitle,
    Sku,
    VariantId,
    ProductId,
    ProductType,
    Vendor,
    LineDiscount,
    // Catalog
    Id,
    Handle,
    Title,
    Body,
    Category,
    Tags,
    Price,
    CompareAtPrice,
    Cost,
    InventoryQty,
    InventoryTracker,
    Status,
    GiftCard,
    Option1Value,
    Option2Value,
    Option3Value,
    VariantTitle,
    InventoryItemId,
    LocationId,
}

/// Accepted header spellings per field, normalised (lower case, letters and digits
/// only), in order of preference when a file has several.
const ALIASES: &[(Field, &[&str])] = &[
    (Field::InvoiceNo, &["invoiceno", "invoice"]),
    (Field::StockCode, &["stockcode"]),
    (Field::Description, &["description"]),
    (Field::InvoiceDate, &["invoicedate"]),
    (Field::Country, &["country", "billingcountry"]),
    (Field::OrderId, &["orderid", "id"]),
    (Field::OrderName, &["name", "ordername", "ordernumber"]),
    (
        Field::CreatedAt,
        &[
            "createdat",
            "processedat",
            "orderdate",
            "date",
            "invoicedate",
        ],
    ),
    (
        Field::Currency,
        &["currency", "currencycode", "presentmentcurrencycode"],
    ),
    (
        Field::Customer,
        &[
            "customerid",
            "customeremail",
            "email",
            "customer",
            "customerkey",
        ],
    ),
    (Field::Quantity, &["lineitemquantity", "quantity", "qty"]),
    (
        Field::UnitPrice,
        &[
            "lineitemprice",
            "originalunitprice",
            "unitprice",
            "price",
            "unitpriceamount",
        ],
    ),
    (
        Field::LineTitle,
        &[
            "lineitemname",
            "lineitemtitle",
            "producttitle",
            "title",
            "description",
        ],
    ),
    (Field::Sku, &["lineitemsku", "sku", "variantsku"]),
    (Field::VariantId, &["variantid", "lineitemvariantid"]),
    (Field::ProductId, &["productid", "lineitemproductid"]),
    (Field::ProductType, &["producttype", "type"]),
    (Field::Vendor, &["vendor", "lineitemvendor"]),
    (
        Field::LineDiscount,
        &[
            "lineitemdiscount",
            "linediscount",
            "totaldiscount",
            "discount",
        ],
    ),
    (Field::Id, &["id"]),
    (Field::Handle, &["handle"]),
    (Field::Title, &["producttitle", "title"]),
    (
        Field::Body,
        &["bodyhtml", "descriptionhtml", "body", "description"],
    ),
    (Field::Category, &["productcategory", "category"]),
    (Field::Tags, &["tags"]),
    (Field::Price, &["variantprice", "price"]),
    (
        Field::CompareAtPrice,
        &["variantcompareatprice", "compareatprice"],
    ),
    (
        Field::Cost,
        &["costperitem", "cost", "unitcost", "unitcostamount"],
    ),
    (
        Field::InventoryQty,
        &[
            "variantinventoryqty",
            "inventoryquantity",
            "inventoryqty",
            "available",
            "availablequantity",
            "onhand",
            "quantity",
            "inventory",
            "stock",
            "stockquantity",
        ],
    ),
    (Field::InventoryTracker, &["variantinventorytracker"]),
    (Field::Status, &["status", "productstatus"]),
    (Field::GiftCard, &["giftcard"]),
    (Field::Option1Value, &["option1value", "option1"]),
    (Field::Option2Value, &["option2value", "option2"]),
    (Field::Option3Value, &["option3value", "option3"]),
    (Field::VariantTitle, &["varianttitle", "title"]),
    (Field::InventoryItemId, &["inventoryitemid"]),
    (Field::LocationId, &["locationid", "location"]),
];

/// Lower case, letters and digits only: `Lineitem quantity`, `lineItemQuantity` and
/// `lineitem_quantity` all become `lineitemquantity`.
pub fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The shapes we read, what each needs, and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    OnlineRetail,
    ShopifyOrderExport,
    OrderRows,
    ShopifyProductExport,
    SplitProducts,
    SplitVariants,
    VariantCatalog,
    InventoryLevels,
    ShopifyJsonOrders,
    ShopifyJsonProducts,
}

/// The part of an ingest a file is given as: the roles of [`IngestSources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    Orders,
    Catalog,
    Variants,
    Inventory,
}

impl FileRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileRole::Orders => "orders",
            FileRole::Catalog => "catalog",
            FileRole::Variants => "variants",
            FileRole::Inventory => "inventory",
        }
    }
}

impl std::fmt::Display for FileRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input of an ingest: where its bytes come from, the part it is given as, and the
/// name errors and the report give it.
#[derive(Debug, Clone)]
pub struct IngestSource {
    /// A file's path as given; an upload's or a document's name.
    pub name: String,
    pub role: FileRole,
    input: Input,
}

#[derive(Clone)]
enum Input {
    File(PathBuf),
    /// Held in memory (an upload, a stored catalog part): read as a file's bytes are,
    /// and as often.
    Bytes(Bytes),
    /// A parsed Shopify Admin REST document: read as it is, never written out again.
    Json(Value),
}

// By hand: a derived Debug would print every byte of an upload.
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::File(path) => f.debug_tuple("File").field(path).finish(),
            Input::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Input::Json(_) => f.write_str("Json(..)"),
        }
    }
}

impl IngestSource {
    /// A file on disk, named by its path as given.
    pub fn file(role: FileRole, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        IngestSource {
            name: path.display().to_string(),
            role,
            input: Input::File(path),
        }
    }

    /// Bytes held in memory, read as a file's would be: gzip or plain, CSV or JSON.
    pub fn bytes(role: FileRole, name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        IngestSource {
            name: name.into(),
            role,
            input: Input::Bytes(bytes.into()),
        }
    }

    /// A parsed Shopify Admin REST document (`{"products": [...]}`, `{"order": {...}}`,
    /// …), read without writing it out as text again.
    pub fn json(role: FileRole, name: impl Into<String>, doc: Value) -> Self {
        IngestSource {
            name: name.into(),
            role,
            input: Input::Json(doc),
        }
    }

    /// The document of a JSON source, which is read without [`open`].
    pub(crate) fn document(&self) -> Option<&Value> {
        match &self.input {
            Input::Json(doc) => Some(doc),
            _ => None,
        }
    }

    /// Whether a second pass may read the source again: bytes in memory can; a path
    /// only when it is a regular file (a pipe is gone once read).
    pub(crate) fn rereadable(&self) -> bool {
        match &self.input {
            Input::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Input::Bytes(_) => true,
            Input::Json(_) => false,
        }
    }
}

/// The sources of one ingest, at most one per role: orders alone, a catalog alone
/// (with its variants and inventory levels), or both.
#[derive(Debug, Clone, Default)]
pub struct IngestSources {
    orders: Option<IngestSource>,
    catalog: Option<IngestSource>,
    variants: Option<IngestSource>,
    inventory: Option<IngestSource>,
}

/// One source alone, in its role.
impl From<IngestSource> for IngestSources {
    fn from(source: IngestSource) -> Self {
        let mut out = IngestSources::default();
        let role = source.role;
        *out.slot(role) = Some(source);
        out
    }
}

impl IngestSources {
    /// Files by role, as a command line gives them.
    pub fn from_paths(
        orders: Option<PathBuf>,
        catalog: Option<PathBuf>,
        variants: Option<PathBuf>,
        inventory: Option<PathBuf>,
    ) -> Self {
        let file = |role, path: Option<PathBuf>| path.map(|p| IngestSource::file(role, p));
        IngestSources {
            orders: file(FileRole::Orders, orders),
            catalog: file(FileRole::Catalog, catalog),
            variants: file(FileRole::Variants, variants),
            inventory: file(FileRole::Inventory, inventory),
        }
    }

    /// Sources each given with its role; a role given twice is refused.
    pub fn new(sources: impl IntoIterator<Item = IngestSource>) -> Result<Self, IngestError> {
        let mut out = IngestSources::default();
        for source in sources {
            let slot = out.slot(source.role);
            if let Some(first) = slot {
                return Err(IngestError::RoleGivenTwice {
                    role: source.role,
                    first: first.name.clone(),
                    second: source.name,
                });
            }
            *slot = Some(source);
        }
        Ok(out)
    }

    fn slot(&mut self, role: FileRole) -> &mut Option<IngestSource> {
        match role {
            FileRole::Orders => &mut self.orders,
            FileRole::Catalog => &mut self.catalog,
            FileRole::Variants => &mut self.variants,
            FileRole::Inventory => &mut self.inventory,
        }
    }

    /// The source given as `role`, if any.
    pub fn get(&self, role: FileRole) -> Option<&IngestSource> {
        match role {
            FileRole::Orders => self.orders.as_ref(),
            FileRole::Catalog => self.catalog.as_ref(),
            FileRole::Variants => self.variants.as_ref(),
            FileRole::Inventory => self.inventory.as_ref(),
        }
    }

    /// Every source, in the order of the roles.
    pub fn iter(&self) -> impl Iterator<Item = &IngestSource> {
        [&self.orders, &self.catalog, &self.variants, &self.inventory]
            .into_iter()
            .flatten()
    }

    /// The source errors and the report name `name`.
    pub fn named(&self, name: &str) -> Option<&IngestSource> {
        self.iter().find(|s| s.name == name)
    }
}

impl Shape {
    pub fn name(&self) -> &'static str {
        match self {
            Shape::OnlineRetail => "UCI Online Retail",
            Shape::ShopifyOrderExport => "Shopify order export CSV",
            Shape::OrderRows => "order rows (GraphQL or snake_case names)",
            Shape::ShopifyProductExport => "Shopify product export CSV",
            Shape::SplitProducts => "products file (split export)",
            Shape::SplitVariants => "variants file (split export)",
            Shape::VariantCatalog => "variant-level catalog (app export)",
            Shape::InventoryLevels => "inventory levels file (split export)",
            Shape::ShopifyJsonOrders => "Shopify Admin REST JSON orders",
            Shape::ShopifyJsonProducts => "Shopify Admin REST JSON products",
        }
    }

    /// The part of an ingest a file of this shape is read as.
    pub fn role(&self) -> FileRole {
        match self {
            Shape::OnlineRetail
            | Shape::ShopifyOrderExport
            | Shape::OrderRows
            | Shape::ShopifyJsonOrders => FileRole::Orders,
            Shape::ShopifyProductExport
            | Shape::SplitProducts
            | Shape::VariantCatalog
            | Shape::ShopifyJsonProducts => FileRole::Catalog,
            Shape::SplitVariants => FileRole::Variants,
            Shape::InventoryLevels => FileRole::Inventory,
        }
    }

    fn needs(&self) -> &'static str {
        match self {
            Shape::OnlineRetail => {
                "InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice (CustomerID, Country optional)"
            }
            Shape::ShopifyOrderExport => {
                "Name, Created at, Lineitem quantity, Lineitem price, and Lineitem sku or Lineitem name (Id, Email, Currency, Lineitem discount, Vendor optional)"
            }
            Shape::OrderRows => {
                "orderId/order_id (or name), createdAt/created_at, lineItemQuantity/quantity, originalUnitPrice/unit_price/price, and one of variantId, sku, productId, productTitle/title (currencyCode, customerEmail, productType, vendor optional)"
            }
            Shape::ShopifyProductExport => {
                "Handle, Title, Variant Price (Body (HTML), Vendor, Product Category, Type, Tags, Variant SKU, Variant Compare At Price, Cost per item, Variant Inventory Qty, Status optional)"
            }
            Shape::SplitProducts => {
                "id, title (handle, body_html/descriptionHtml, vendor, productType, tags, status, createdAt optional; with price columns each row is one sellable item)"
            }
            Shape::SplitVariants => {
                "id, product_id/productId, price (sku, title, compare_at_price, inventory_item_id, inventory_quantity optional)"
            }
            Shape::VariantCatalog => {
                "variant_id, product_title/title, price (product_id, variant_title, sku, compare_at_price, cost, inventory_item_id, inventory_quantity, product_status/status, vendor, product_type, tags, option1..3, body_html, created_at, updated_at optional; one row per variant)"
            }
            Shape::InventoryLevels => {
                "inventory_item_id, available/quantity (location_id, cost optional; summed over locations)"
            }
            Shape::ShopifyJsonOrders => {
                "{\"orders\": [{\"id\", \"created_at\", \"line_items\": [{\"quantity\", \"price\", \"variant_id\"/\"sku\"/\"product_id\"/\"title\"}]}]}"
            }
            Shape::ShopifyJsonProducts => {
                "{\"products\": [{\"id\", \"title\", \"variants\": [{\"id\", \"price\"}]}]}"
            }
        }
    }

    pub const ALL: [Shape; 10] = [
        Shape::OnlineRetail,
        Shape::ShopifyOrderExport,
        Shape::OrderRows,
        Shape::ShopifyProductExport,
        Shape::SplitProducts,
        Shape::SplitVariants,
        Shape::VariantCatalog,
        Shape::InventoryLevels,
        Shape::ShopifyJsonOrders,
        Shape::ShopifyJsonProducts,
    ];

    /// The message for a file we do not recognise: every shape and its columns.
    pub fn catalogue() -> String {
        let mut s = String::from("the shapes bundleforge reads, and the columns each needs:");
        for shape in Shape::ALL {
            s.push_str(&format!(
                "\n  - {} ({} file): {}",
                shape.name(),
                shape.role(),
                shape.needs()
            ));
        }
        s
    }
}

/// A CSV header row resolved against the alias table.
#[derive(Debug, Clone)]
pub struct Columns {
    normalised: Vec<String>,
    pub original: Vec<String>,
}

impl Columns {
    pub fn new(headers: &csv::ByteRecord) -> Self {
        let original: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_owned())
            .collect();
        let normalised = original.iter().map(|h| normalise_header(h)).collect();
        Columns {
            normalised,
            original,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.normalised.iter().any(|h| h == name)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.normalised.iter().position(|h| h == name)
    }

    /// The column index for a field: the first accepted spelling present.
    pub fn find(&self, field: Field) -> Option<usize> {
        aliases(field).iter().find_map(|a| self.index_of(a))
    }

    /// Like [`find`](Self::find) but never returning a column in `taken`.
    pub fn find_excluding(&self, field: Field, taken: &[Option<usize>]) -> Option<usize> {
        aliases(field)
            .iter()
            .filter_map(|a| self.index_of(a))
            .find(|i| !taken.contains(&Some(*i)))
    }

    pub fn has_field(&self, field: Field) -> bool {
        self.find(field).is_some()
    }

    /// Recognises the shape of a CSV from its headers.
    pub fn shape(&self) -> Option<Shape> {
        let has = |n: &str| self.has(n);
        let any = |f: Field| self.has_field(f);
        if [
            "invoiceno",
            "stockcode",
            "description",
            "quantity",
            "invoicedate",
            "unitprice",
        ]
        .iter()
        .all(|n| has(n))
        {
            return Some(Shape::OnlineRetail);
        }
        // A catalog joined from the Admin API (one row per variant, with both its ids
        // and a price) may carry a handle and a variant SKU too; its ids are what
        // orders name, so it is read by them rather than as Shopify's own product
        // export, which has neither id.
        let joined_ids = has("variantid")
            && has("productid")
            && (has("price") || has("variantprice"))
            && (has("producttitle") || has("title"))
            && !(has("orderid") || has("name") || has("ordername"));
        if joined_ids {
            return Some(Shape::VariantCatalog);
        }
        if has("handle") && (has("variantprice") || has("variantsku")) {
            return Some(Shape::ShopifyProductExport);
        }
        let line_ref = any(Field::Sku)
            || any(Field::VariantId)
            || any(Field::ProductId)
            || has("lineitemname")
            || has("producttitle")
            || has("title");
        if has("lineitemquantity") && has("name") && !has("orderid") && any(Field::CreatedAt) {
            return Some(Shape::ShopifyOrderExport);
        }
        if (has("orderid") || has("name") || has("ordername"))
            && any(Field::CreatedAt)
            && any(Field::Quantity)
            && any(Field::UnitPrice)
            && line_ref
        {
            return Some(Shape::OrderRows);
        }
        let priced = has("price") || has("variantprice");
        if has("inventoryitemid") && !priced && !has("title") && any(Field::InventoryQty) {
            return Some(Shape::InventoryLevels);
        }
        let order_keyed = has("orderid") || has("name") || has("ordername");
        if has("variantid")
            && !has("id")
            && priced
            && (has("producttitle") || has("title"))
            && !order_keyed
        {
            return Some(Shape::VariantCatalog);
        }
        if has("id") && has("productid") && priced {
            return Some(Shape::SplitVariants);
        }
        if has("title") && (has("id") || has("handle") || has("sku")) {
            return Some(Shape::SplitProducts);
        }
        None
    }

    /// A header name bundleforge reads that the file gives twice (after
    /// normalising): which one holds the value is anyone's guess. Names it and both
    /// positions (1-based).
    pub fn duplicated(&self) -> Option<(String, usize, usize)> {
        for (i, h) in self.normalised.iter().enumerate() {
            if h.is_empty() || !ALIASES.iter().any(|(_, a)| a.contains(&h.as_str())) {
                continue;
            }
            if let Some(j) = self.normalised[i + 1..].iter().position(|o| o == h) {
                return Some((self.original[i].clone(), i + 1, i + 2 + j));
            }
        }
        None
    }

    pub fn describe(&self) -> String {
        self.original.join(", ")
    }
}

pub fn aliases(field: Field) -> &'static [&'static str] {
    ALIASES
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, a)| *a)
        .unwrap_or(&[])
}

/// Counts bytes as they are read, for progress bars on long reads.
struct CountingReader<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    pending: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        // Report in chunks: a callback per read would dominate small reads.
        if self.pending >= 1 << 20 || n == 0 {
            self.progress.advance(self.pending);
            self.pending = 0;
        }
        Ok(n)
    }
}

/// The most bytes one input may hold once decompressed. A CSV is streamed, so its
/// bound only ends an endless input (`/dev/zero`, a gzip bomb); a JSON document is
/// held whole, and Admin API exports come in pages far below its bound.
pub const MAX_CSV_BYTES: u64 = 16 << 30;
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Ends a read with an error once more than `limit` bytes came through.
struct Limited<R> {
    inner: R,
    read: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "more than {} MiB once decompressed, the limit for a {} file",
                    self.limit >> 20,
                    self.what
                ),
            ));
        }
        Ok(n)
    }
}

/// An opened input: its name, whether it is JSON, and a reader over its decoded bytes.
pub struct Opened<'p> {
    pub name: String,
    pub is_json: bool,
    /// A CSV's field separator, from its header line: `,`, `;` or tab.
    pub delimiter: u8,
    pub reader: Box<dyn BufRead + 'p>,
}

/// The separator of a CSV's header line: the most frequent of `,` `;` and tab outside
/// quotes (a comma when none appears). European spreadsheets write `;`, some exports tab.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b';', b'\t'][best]
    }
}

/// Opens a source's bytes, gzip or plain (by its magic bytes, not its name), and peeks
/// at its first non-blank byte to tell JSON from CSV. A JSON source has no bytes: it
/// is read as a document (see [`IngestSource::document`]).
pub fn open<'p>(
    source: &IngestSource,
    progress: &'p dyn Progress,
) -> Result<Opened<'p>, IngestError> {
    let name = &source.name;
    let io_err = |source| IngestError::Io {
        name: name.clone(),
        source,
    };
    let (input, len): (Box<dyn Read>, u64) = match &source.input {
        Input::File(path) => {
            let file = File::open(path).map_err(io_err)?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(file), len)
        }
        Input::Bytes(bytes) => (Box::new(Cursor::new(bytes.clone())), bytes.len() as u64),
        Input::Json(_) => {
            return Err(IngestError::Unrecognised {
                name: name.clone(),
                columns: format!(
                    "a JSON document, where the {} file is read as a CSV",
                    source.role
                ),
                catalogue: Shape::catalogue(),
            });
        }
    };
    progress.start(name, len);
    let counting = CountingReader {
        inner: input,
        progress,
        pending: 0,
    };
    let mut raw = BufReader::with_capacity(1 << 16, counting);
    let head = raw.fill_buf().map_err(io_err)?;
    if head.is_empty() {
        return Err(IngestError::Empty { name: name.clone() });
    }
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + 'p> = if gz {
        Box::new(BufReader::with_capacity(1 << 17, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let head = reader.fill_buf().map_err(io_err)?;
    let first = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf)
        .copied()
        .next();
    match first {
        None => Err(IngestError::Empty { name: name.clone() }),
        Some(b) => {
            let is_json = b == b'{' || b == b'[';
            let delimiter = sniff_delimiter(head);
            let (limit, what) = if is_json {
                (MAX_JSON_BYTES, "JSON")
            } else {
                (MAX_CSV_BYTES, "CSV")
            };
            let limited = Limited {
                inner: reader,
                read: 0,
                limit,
                what,
            };
            Ok(Opened {
                name: name.clone(),
                is_json,
                delimiter,
                reader: Box::new(BufReader::with_capacity(1 << 16, limited)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(headers: &[&str]) -> Columns {
        Columns::new(&csv::ByteRecord::from(headers.to_vec()))
    }

    #[test]
    fn headers_normalise_across_naming_styles() {
        assert_eq!(normalise_header("Lineitem quantity"), "lineitemquantity");
        assert_eq!(normalise_header("lineItemQuantity"), "lineitemquantity");
        assert_eq!(normalise_header("\u{feff}Body (HTML)"), "bodyhtml");
        assert_eq!(normalise_header("unit_price"), "unitprice");
    }

    #[test]
    fn shapes_are_recognised_from_headers() {
        let uci = columns(&[
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ]);
        assert_eq!(uci.shape(), Some(Shape::OnlineRetail));
        let export = columns(&[
            "Name",
            "Email",
            "Created at",
            "Currency",
            "Lineitem quantity",
            "Lineitem name",
            "Lineitem price",
            "Lineitem sku",
            "Id",
        ]);
        assert_eq!(export.shape(), Some(Shape::ShopifyOrderExport));
        let gql = columns(&[
            "orderId",
            "createdAt",
            "lineItemQuantity",
            "originalUnitPrice",
            "sku",
        ]);
        assert_eq!(gql.shape(), Some(Shape::OrderRows));
        let snake = columns(&[
            "order_id",
            "created_at",
            "quantity",
            "unit_price",
            "product_id",
        ]);
        assert_eq!(snake.shape(), Some(Shape::OrderRows));
        let products = columns(&["Handle", "Title", "Variant SKU", "Variant Price"]);
        assert_eq!(products.shape(), Some(Shape::ShopifyProductExport));
        let split = columns(&["id", "title", "handle", "vendor"]);
        assert_eq!(split.shape(), Some(Shape::SplitProducts));
        let variants = columns(&["id", "product_id", "sku", "price", "inventory_item_id"]);
        assert_eq!(variants.shape(), Some(Shape::SplitVariants));
        let flat = columns(&[
            "updated_at",
            "price",
            "product_title",
            "variant_id",
            "status",
        ]);
        assert_eq!(flat.shape(), Some(Shape::VariantCatalog));
        // An Admin API join with both ids beside a handle and a variant SKU.
        let joined = columns(&[
            "product_id",
            "handle",
            "product_title",
            "id",
            "sku",
            "variant_id",
            "variant_sku",
            "price",
        ]);
        assert_eq!(joined.shape(), Some(Shape::VariantCatalog));
        let levels = columns(&["inventory_item_id", "location_id", "available"]);
        assert_eq!(levels.shape(), Some(Shape::InventoryLevels));
        assert_eq!(columns(&["a", "b"]).shape(), None);
    }
}
