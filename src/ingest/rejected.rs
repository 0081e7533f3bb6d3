//! The rejected-rows file (`ingest --rejected FILE`): each rejected CSV row as the
//! merchant wrote it, with its reasons in a last column, so the file can be fixed
//! and uploaded again. The valid rows of an order with a rejected row come along
//! (reason empty): an order is replaced whole, so re-uploading one fixed line alone
//! would drop its other lines.
//!
//! An ingest finds the rows for it as it reads ([`RejectedRows`]): the report keeps
//! the first few in memory and counts the rest, or, for a caller that writes the file,
//! keeps every one in a temporary file as found (a file of millions of bad rows must
//! not hold them all in memory). The file is written from those rows sorted by line
//! and a second read of the input, one pass over each.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use super::spill::{Entry, Sorted, Spill};
use super::{IngestError, IngestReport, IngestSources, RejectedRow, csv_error, csv_reader, source};
use crate::destination::{self, DestinationError};

/// The column the reasons go in (empty for rows sent along with their order).
pub const REASON_COLUMN: &str = "rejected_reason";

/// How many rows for the rejected-rows file a report keeps when not told otherwise:
/// `ingest.max_rejected_rows_kept`'s default (config/default.toml).
pub const DEFAULT_MAX_REJECTED_ROWS_KEPT: usize = 1000;

/// One rejected-rows file written.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedFile {
    /// The input file the rows come from.
    pub source: String,
    pub path: String,
    /// Rows written, rejected ones and those sent along.
    pub rows: u64,
    pub rejected: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RejectedError {
    #[error(transparent)]
    Read(#[from] IngestError),
    #[error(transparent)]
    Write(#[from] DestinationError),
    /// The temporary file the rows were kept in could not be written or read back.
    #[error("the rejected rows could not be kept in a temporary file: {0}")]
    Spill(std::io::Error),
    /// The ingest kept only the first rows, so a file of them would not be whole.
    #[error(
        "the ingest kept only the first {listed} rows for the rejected-rows file and counted {not_listed} more: read it again keeping every one to write the file"
    )]
    NotAllKept { listed: usize, not_listed: u64 },
}

/// What an ingest keeps of the rows for the rejected-rows file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepRejected {
    /// The first this many, in memory; the rest only counted
    /// ([`IngestReport::rejected_rows_not_listed`]).
    First(usize),
    /// Every one, in a temporary file as found: for a caller that writes the file.
    All,
}

impl Default for KeepRejected {
    fn default() -> Self {
        KeepRejected::First(DEFAULT_MAX_REJECTED_ROWS_KEPT)
    }
}

/// The rows an ingest found for the rejected-rows file: each rejected CSV row by input
/// and line with its reasons, and the valid rows sent along with their order (reason
/// empty). Kept as [`KeepRejected`] says.
#[derive(Debug, Clone, Default)]
pub struct RejectedRows {
    keep: KeepRejected,
    /// The inputs the rows name, in the order first named.
    files: Vec<String>,
    /// Per input: whether a row of it was rejected (not only sent along).
    has_rejected: Vec<bool>,
    /// The first rows ([`KeepRejected::First`]).
    listed: Vec<Entry>,
    /// Every row ([`KeepRejected::All`]). Shared, so that a copy of the report still
    /// writes the whole file.
    spill: Option<Arc<Mutex<SpillState>>>,
}

/// The temporary file, made at the first row, and its first failure: after one, the
/// file could not be whole, so writing it is refused.
#[derive(Debug, Default)]
struct SpillState {
    spill: Option<Spill>,
    failed: Option<std::io::Error>,
}

impl SpillState {
    fn push(&mut self, entry: &Entry) {
        if self.failed.is_some() {
            return;
        }
        if self.spill.is_none() {
            match Spill::new() {
                Ok(s) => self.spill = Some(s),
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
        }
        if let Some(s) = &mut self.spill
            && let Err(e) = s.push(entry)
        {
            self.failed = Some(e);
        }
    }

    fn sorted(&mut self) -> std::io::Result<Sorted> {
        if let Some(e) = &self.failed {
            return Err(std::io::Error::new(e.kind(), e.to_string()));
        }
        match &mut self.spill {
            Some(s) => s.sorted(),
            None => Ok(Sorted::from_entries(Vec::new())),
        }
    }
}

impl RejectedRows {
    pub fn new(keep: KeepRejected) -> Self {
        RejectedRows {
            keep,
            spill: (keep == KeepRejected::All).then(Default::default),
            ..Default::default()
        }
    }

    /// Records a row for the file; `false` when it was only counted (the first ones
    /// are kept already). The reason is made only for a row that is kept.
    pub(crate) fn push(&mut self, file: &str, line: u64, reason: impl FnOnce() -> String) -> bool {
        let limit = match self.keep {
            KeepRejected::First(n) => n,
            KeepRejected::All => usize::MAX,
        };
        if self.spill.is_none() && self.listed.len() >= limit {
            return false;
        }
        let reason = reason();
        let idx = self.input_index(file);
        if !reason.is_empty()
            && let Some(flag) = self.has_rejected.get_mut(idx)
        {
            *flag = true;
        }
        let entry = Entry {
            group: u32::try_from(idx).unwrap_or(u32::MAX),
            line,
            text: reason,
        };
        match &self.spill {
            Some(state) => state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&entry),
            None => self.listed.push(entry),
        }
        true
    }

    fn input_index(&mut self, file: &str) -> usize {
        if let Some(i) = self.files.iter().position(|f| f == file) {
            return i;
        }
        self.files.push(file.to_owned());
        self.has_rejected.push(false);
        self.files.len() - 1
    }

    /// The rows kept in memory, in the order found (none when every row went to a
    /// temporary file).
    pub fn listed(&self) -> Vec<RejectedRow> {
        self.listed
            .iter()
            .map(|e| RejectedRow {
                file: self
                    .files
                    .get(e.group as usize)
                    .cloned()
                    .unwrap_or_default(),
                line: e.line,
                reason: e.text.clone(),
            })
            .collect()
    }

    /// Whether every row is kept, whatever their number.
    pub fn keeps_all(&self) -> bool {
        self.spill.is_some()
    }

    /// The inputs with a rejected row (not only rows sent along), by index.
    fn inputs_with_rejections(&self) -> Vec<(u32, &str)> {
        self.files
            .iter()
            .zip(&self.has_rejected)
            .enumerate()
            .filter(|(_, (_, rejected))| **rejected)
            .map(|(i, (f, _))| (u32::try_from(i).unwrap_or(u32::MAX), f.as_str()))
            .collect()
    }

    /// Every row, sorted by input then line.
    fn sorted(&self) -> Result<Sorted, RejectedError> {
        match &self.spill {
            Some(state) => state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sorted()
                .map_err(RejectedError::Spill),
            None => Ok(Sorted::from_entries(self.listed.clone())),
        }
    }
}

/// Sorted rows grouped by line, for one input after another (in input order).
struct Lines {
    rows: Sorted,
    /// The row read ahead: the first of the next line.
    ahead: Option<Entry>,
}

impl Lines {
    fn new(mut rows: Sorted) -> Result<Lines, RejectedError> {
        let ahead = rows.next_entry().map_err(RejectedError::Spill)?;
        Ok(Lines { rows, ahead })
    }

    fn advance(&mut self) -> Result<(), RejectedError> {
        self.ahead = self.rows.next_entry().map_err(RejectedError::Spill)?;
        Ok(())
    }

    /// The next line of input `input` with its reasons (empty ones left out); rows of
    /// earlier inputs are passed over.
    fn next_of(&mut self, input: u32) -> Result<Option<(u64, Vec<String>)>, RejectedError> {
        while self.ahead.as_ref().is_some_and(|e| e.group < input) {
            self.advance()?;
        }
        let Some(first) = self.ahead.take() else {
            return Ok(None);
        };
        if first.group != input {
            self.ahead = Some(first);
            return Ok(None);
        }
        let line = first.line;
        let mut reasons = Vec::new();
        if !first.text.is_empty() {
            reasons.push(first.text);
        }
        loop {
            self.advance()?;
            match &mut self.ahead {
                Some(e) if e.group == input && e.line == line => {
                    if !e.text.is_empty() {
                        reasons.push(std::mem::take(&mut e.text));
                    }
                }
                _ => return Ok(Some((line, reasons))),
            }
        }
    }
}

/// Where a source's rows go: `dest` when one input has rejected rows, else `dest`'s
/// name with the input's added (`rejected.csv` → `rejected.orders.csv`).
fn destination_for(dest: &Path, source: &Path, several: bool) -> PathBuf {
    if !several {
        return dest.to_owned();
    }
    let stem = dest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rejected".into());
    let ext = dest
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "csv".into());
    let input = source
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input = input
        .trim_end_matches(".gz")
        .trim_end_matches(".csv")
        .to_owned();
    dest.with_file_name(format!("{stem}.{input}.{ext}"))
}

/// Writes the rejected rows of every CSV input that has some, reading each again from
/// `sources` (the ingest's, found by the name the report gives them). JSON inputs name
/// their rejected records by path in the report and are not written here. Refused when
/// the ingest kept only the first rows ([`KeepRejected::First`] with more found).
pub fn write(
    report: &IngestReport,
    sources: &IngestSources,
    dest: &Path,
    force: bool,
) -> Result<Vec<RejectedFile>, RejectedError> {
    let rows = &report.rejected_rows;
    if report.rejected_rows_not_listed > 0 {
        return Err(RejectedError::NotAllKept {
            listed: rows.listed.len(),
            not_listed: report.rejected_rows_not_listed,
        });
    }
    let inputs = rows.inputs_with_rejections();
    let several = inputs.len() > 1;
    let targets: Vec<(u32, &str, PathBuf)> = inputs
        .into_iter()
        .map(|(i, f)| (i, f, destination_for(dest, Path::new(f), several)))
        .collect();
    // All checked before any is written.
    for (_, _, target) in &targets {
        destination::check(target, force)?;
    }
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = Lines::new(rows.sorted()?)?;
    let mut written = Vec::with_capacity(targets.len());
    // In input order, as the rows are sorted.
    for (input, file, target) in targets {
        written.push(write_one(sources, file, input, &target, force, &mut lines)?);
    }
    written.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(written)
}

/// Writes the rejected-rows file of one input.
fn write_one(
    sources: &IngestSources,
    file: &str,
    input: u32,
    target: &Path,
    force: bool,
    lines: &mut Lines,
) -> Result<RejectedFile, RejectedError> {
    let Some(source) = sources.named(file) else {
        return Err(IngestError::Io {
            name: file.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a source of this ingest",
            ),
        }
        .into());
    };
    let opened = source::open(source, &super::NoProgress)?;
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    let mut header = csv.byte_headers().map_err(|e| csv_error(file, e))?.clone();
    let width = header.len();
    header.push_field(REASON_COLUMN.as_bytes());
    // A failure to read is kept here; the write only learns that it failed.
    let mut failure: Option<RejectedError> = None;
    let mut counts = Copied::default();
    let result = destination::write_file(target, force, |f| {
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(f);
        w.write_byte_record(&header)?;
        match copy_rows(file, input, width, &mut csv, &mut w, lines, target) {
            Ok(c) => counts = c,
            Err(e) => {
                failure = Some(e);
                return Err(std::io::Error::other("the rejected rows were not all read"));
            }
        }
        w.flush()
    });
    if let Some(e) = failure {
        return Err(e);
    }
    result?;
    Ok(RejectedFile {
        source: file.to_owned(),
        path: target.display().to_string(),
        rows: counts.rows,
        rejected: counts.rejected,
    })
}

/// Rows written to a rejected-rows file, and of those the rejected ones.
#[derive(Debug, Default, Clone, Copy)]
struct Copied {
    rows: u64,
    rejected: u64,
}

/// Copies the rows of input `input` that `lines` names from `csv` to `out`, each with
/// its reasons: both come in line order, so one pass over each.
fn copy_rows<R: std::io::Read, W: std::io::Write>(
    file: &str,
    input: u32,
    width: usize,
    csv: &mut csv::Reader<R>,
    out: &mut csv::Writer<W>,
    lines: &mut Lines,
    target: &Path,
) -> Result<Copied, RejectedError> {
    let mut copied = Copied::default();
    let mut record = csv::ByteRecord::new();
    let mut next = lines.next_of(input)?;
    while next.is_some()
        && csv
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(file, e))?
    {
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        // A line the second read does not have (none should) is passed over.
        while next.as_ref().is_some_and(|(l, _)| *l < line) {
            next = lines.next_of(input)?;
        }
        let Some((want, reasons)) = &next else {
            break;
        };
        if *want != line {
            continue;
        }
        // A short row is padded, so its reasons stay in their column.
        while record.len() < width {
            record.push_field(b"");
        }
        record.push_field(reasons.join("; ").as_bytes());
        out.write_byte_record(&record)
            .map_err(|e| DestinationError::Io {
                path: target.to_owned(),
                source: e.into(),
            })?;
        copied.rows += 1;
        copied.rejected += u64::from(!reasons.is_empty());
        next = lines.next_of(input)?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_first_rows_only_counted_unless_every_one_is_kept() {
        let mut first = RejectedRows::new(KeepRejected::First(2));
        let mut every = RejectedRows::new(KeepRejected::All);
        let mut made = 0;
        for line in [5, 3, 9] {
            assert_eq!(
                first.push("a.csv", line, || {
                    made += 1;
                    "qty: bad".into()
                }),
                line != 9
            );
            assert!(every.push("a.csv", line, || "qty: bad".into()));
        }
        assert_eq!(made, 2, "no reason is made for a row only counted");
        assert_eq!(first.listed().len(), 2);
        assert!(every.listed().is_empty() && every.keeps_all());
        let mut lines = Lines::new(every.sorted().unwrap()).unwrap();
        let mut got = Vec::new();
        while let Some((line, _)) = lines.next_of(0).unwrap() {
            got.push(line);
        }
        assert_eq!(got, [3, 5, 9]);
    }

    #[test]
    fn a_line_s_reasons_are_joined_and_rows_sent_along_have_none() {
        let mut rows = RejectedRows::new(KeepRejected::All);
        rows.push("b.csv", 4, || "price: bad".into());
        rows.push("a.csv", 2, String::new);
        rows.push("a.csv", 7, || "qty: bad".into());
        rows.push("a.csv", 7, || "date: bad".into());
        assert_eq!(rows.inputs_with_rejections(), [(0, "b.csv"), (1, "a.csv")]);
        let mut lines = Lines::new(rows.sorted().unwrap()).unwrap();
        assert_eq!(lines.next_of(1).unwrap(), Some((2, vec![])));
        assert_eq!(
            lines.next_of(1).unwrap(),
            Some((7, vec!["qty: bad".to_owned(), "date: bad".to_owned()]))
        );
        assert_eq!(lines.next_of(1).unwrap(), None);
    }
}
