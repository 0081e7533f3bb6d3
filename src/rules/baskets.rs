//! Baskets: each a set of items interned to dense ids, stored flat (CSR).
//!
//! A baskets file has one basket per line. A line is split on commas if the file's first
//! line holds one, else on runs of spaces and tabs; labels are kept exactly as written
//! (Groceries has labels with inner and trailing spaces, and trimming them would merge
//! or split items). A blank line is an empty basket: it counts in N, as in the FIMI
//! tools. gzip is recognised by its magic bytes.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::hash::FastMap;
use crate::domain::StoreData;

#[derive(Debug, thiserror::Error)]
pub enum BasketsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: item {index} is not valid UTF-8")]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        index: usize,
    },
    #[error("{path}: more than {max} distinct items or item occurrences", max = u32::MAX)]
    TooLarge { path: PathBuf },
}

/// How a baskets file's lines are split into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Separator {
    /// Commas if the first line has one, else whitespace.
    #[default]
    Auto,
    Comma,
    Whitespace,
}

impl std::str::FromStr for Separator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Separator::Auto),
            "comma" | "," => Ok(Separator::Comma),
            "whitespace" | "space" | " " => Ok(Separator::Whitespace),
            other => Err(format!(
                "unknown separator {other:?}: use comma, whitespace or auto"
            )),
        }
    }
}

/// Baskets over dense item ids `0..labels.len()`. Each basket's items are distinct and
/// sorted by id.
#[derive(Debug, Clone, Default)]
pub struct Baskets {
    labels: Vec<String>,
    ends: Vec<usize>,
    items: Vec<u32>,
}

impl Baskets {
    /// Baskets from lists of labels (duplicates within a basket count once).
    pub fn from_lists<B, S>(baskets: impl IntoIterator<Item = B>) -> Baskets
    where
        B: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = Builder::default();
        for basket in baskets {
            for label in basket {
                let label = label.as_ref();
                let id = builder.intern(label.as_bytes(), || Ok::<_, ()>(label.to_owned()));
                if let Ok(id) = id {
                    builder.items.push(id);
                }
            }
            builder.end_basket();
        }
        builder.finish()
    }

    /// Baskets over items `0..items`, labelled by their number.
    pub fn from_ids(items: u32, baskets: Vec<Vec<u32>>) -> Baskets {
        let mut builder = Builder {
            labels: (0..items).map(|i| i.to_string()).collect(),
            ..Builder::default()
        };
        builder.items.reserve(baskets.iter().map(Vec::len).sum());
        for basket in baskets {
            builder
                .items
                .extend(basket.into_iter().filter(|&i| i < items));
            builder.end_basket();
        }
        builder.finish()
    }

    /// One basket per order: the catalog products of its lines, labelled by variant id.
    /// Lines whose product the catalog lacks are left out; orders left empty are not
    /// baskets. Returns the baskets and how many lines were left out.
    pub fn from_store(data: &StoreData) -> (Baskets, u64) {
        let mut builder = Builder::default();
        let mut product_to_item: Vec<u32> = vec![u32::MAX; data.products.len()];
        let mut unmatched = 0u64;
        for order in &data.orders {
            for line in &order.lines {
                let Some(p) = line.item else {
                    unmatched += 1;
                    continue;
                };
                let slot = &mut product_to_item[p as usize];
                if *slot == u32::MAX {
                    *slot = builder.labels.len() as u32;
                    builder
                        .labels
                        .push(data.products[p as usize].variant_id.clone());
                }
                builder.items.push(*slot);
            }
            if builder.items.len() > builder.basket_start() {
                builder.end_basket();
            }
        }
        (builder.finish(), unmatched)
    }

    /// Reads a baskets file (plain or gzip).
    pub fn read(path: &Path, sep: Separator) -> Result<Baskets, BasketsError> {
        let io = |source| BasketsError::Io {
            path: path.to_owned(),
            source,
        };
        let raw = std::fs::read(path).map_err(io)?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(io)?;
            out
        } else {
            raw
        };
        Self::parse(&bytes, sep, path)
    }

    /// Parses a baskets file's decoded bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], sep: Separator, path: &Path) -> Result<Baskets, BasketsError> {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let comma = match sep {
            Separator::Comma => true,
            Separator::Whitespace => false,
            Separator::Auto => {
                let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                first.contains(&b',')
            }
        };
        let mut builder = Builder::default();
        builder.items.reserve(bytes.len() / 4);
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        // An empty file has no line, so no basket (a file of one blank line has one).
        let lines = if bytes.is_empty() { 0 } else { usize::MAX };
        for (line_index, line) in body.split(|&b| b == b'\n').enumerate().take(lines) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut push = |index: usize, label: &[u8]| {
                let id = builder.intern(label, || {
                    std::str::from_utf8(label).map(str::to_owned).map_err(|_| {
                        BasketsError::NotUtf8 {
                            path: path.to_owned(),
                            line: line_index + 1,
                            index: index + 1,
                        }
                    })
                })?;
                builder.items.push(id);
                Ok::<_, BasketsError>(())
            };
            if comma {
                for (index, label) in line.split(|&b| b == b',').enumerate() {
                    if !label.is_empty() {
                        push(index, label)?;
                    }
                }
            } else {
                let labels = line
                    .split(|&b| b == b' ' || b == b'\t')
                    .filter(|l| !l.is_empty());
                for (index, label) in labels.enumerate() {
                    push(index, label)?;
                }
            }
            builder.end_basket();
        }
        if builder.items.len() > u32::MAX as usize || builder.labels.len() >= u32::MAX as usize {
            return Err(BasketsError::TooLarge {
                path: path.to_owned(),
            });
        }
        Ok(builder.finish())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Number of distinct items.
    pub fn item_count(&self) -> usize {
        self.labels.len()
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn label(&self, item: u32) -> &str {
        &self.labels[item as usize]
    }

    /// Total item occurrences over all baskets.
    pub fn occurrences(&self) -> usize {
        self.items.len()
    }

    pub fn basket(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.items[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|i| self.basket(i))
    }

    /// How many baskets each item is in.
    pub fn item_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.labels.len()];
        for &i in &self.items {
            counts[i as usize] += 1;
        }
        counts
    }

    /// Heap bytes held, for the memory budget.
    pub fn bytes(&self) -> usize {
        self.items.capacity() * 4
            + self.ends.capacity() * 8
            + self.labels.iter().map(|l| l.capacity() + 24).sum::<usize>()
    }
}

#[derive(Default)]
struct Builder {
    labels: Vec<String>,
    ids: FastMap<Box<[u8]>, u32>,
    ends: Vec<usize>,
    items: Vec<u32>,
}

impl Builder {
    fn intern<E>(
        &mut self,
        label: &[u8],
        owned: impl FnOnce() -> Result<String, E>,
    ) -> Result<u32, E> {
        if let Some(&id) = self.ids.get(label) {
            return Ok(id);
        }
        let id = self.labels.len() as u32;
        self.labels.push(owned()?);
        self.ids.insert(label.into(), id);
        Ok(id)
    }

    fn basket_start(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    fn end_basket(&mut self) {
        let start = self.basket_start();
        let basket = &mut self.items[start..];
        basket.sort_unstable();
        let mut kept = 0;
        for i in 0..basket.len() {
            if i == 0 || basket[i] != basket[kept - 1] {
                basket[kept] = basket[i];
                kept += 1;
            }
        }
        self.items.truncate(start + kept);
        self.ends.push(self.items.len());
    }

    fn finish(self) -> Baskets {
        Baskets {
            labels: self.labels,
            ends: self.ends,
            items: self.items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, sep: Separator) -> Baskets {
        Baskets::parse(text.as_bytes(), sep, Path::new("t.txt")).unwrap()
    }

    fn labels_of(b: &Baskets, i: usize) -> Vec<&str> {
        let mut v: Vec<&str> = b.basket(i).iter().map(|&x| b.label(x)).collect();
        v.sort();
        v
    }

    #[test]
    fn commas_keep_labels_exactly() {
        let b = parse(
            "citrus fruit,cream cheese ,milk\r\ncream cheese,milk,milk\n",
            Separator::Auto,
        );
        assert_eq!(b.len(), 2);
        assert_eq!(labels_of(&b, 0), ["citrus fruit", "cream cheese ", "milk"]);
        // "cream cheese" and "cream cheese " are different labels; "milk" twice is once.
        assert_eq!(labels_of(&b, 1), ["cream cheese", "milk"]);
        assert_eq!(b.item_count(), 4);
    }

    #[test]
    fn whitespace_files_split_on_runs_and_count_blank_lines() {
        let b = parse("1 2  3 \n\n2\t3\n", Separator::Auto);
        assert_eq!(b.len(), 3);
        assert_eq!(labels_of(&b, 0), ["1", "2", "3"]);
        assert!(b.basket(1).is_empty());
        assert_eq!(labels_of(&b, 2), ["2", "3"]);
        assert_eq!(b.item_counts(), vec![1, 2, 2]);
    }

    #[test]
    fn forced_separator_wins() {
        let b = parse("a b,c\n", Separator::Whitespace);
        assert_eq!(labels_of(&b, 0), ["a", "b,c"]);
        let b = parse("a b c\n", Separator::Comma);
        assert_eq!(labels_of(&b, 0), ["a b c"]);
    }

    #[test]
    fn an_empty_file_has_no_basket_and_a_blank_line_is_one() {
        let p = Path::new("x.dat");
        assert_eq!(Baskets::parse(b"", Separator::Auto, p).unwrap().len(), 0);
        assert_eq!(Baskets::parse(b"\n", Separator::Auto, p).unwrap().len(), 1);
        assert_eq!(
            Baskets::parse(b"a b\n\nc\n", Separator::Auto, p)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_item() {
        let err = Baskets::parse(b"a b\nc \xff\n", Separator::Auto, Path::new("x.dat"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "x.dat:2: item 2 is not valid UTF-8");
    }
}
