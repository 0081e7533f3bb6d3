//! The rejected-rows file (`ingest --rejected FILE`): each rejected CSV row as the
//! merchant wrote it, with its reasons in a last column, so the file can be fixed
//! and uploaded again. The valid rows of an order with a rejected row come along
//! (reason empty): an order is replaced whole, so re-uploading one fixed line alone
//! would drop its other lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{IngestError, IngestReport, IngestSources, csv_error, csv_reader, source};
use crate::destination::{self, DestinationError};

/// The column the reasons go in (empty for rows sent along with their order).
pub const REASON_COLUMN: &str = "rejected_reason";

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
/// their rejected records by path in the report and are not written here.
pub fn write(
    report: &IngestReport,
    sources: &IngestSources,
    dest: &Path,
    force: bool,
) -> Result<Vec<RejectedFile>, RejectedError> {
    // file → line → reasons
    let mut by_file: BTreeMap<&str, BTreeMap<u64, Vec<&str>>> = BTreeMap::new();
    for r in &report.rejected_rows {
        let reasons = by_file
            .entry(r.file.as_str())
            .or_default()
            .entry(r.line)
            .or_default();
        if !r.reason.is_empty() {
            reasons.push(r.reason.as_str());
        }
    }
    by_file.retain(|_, lines| lines.values().any(|r| !r.is_empty()));
    let several = by_file.len() > 1;
    let targets: Vec<(&str, PathBuf)> = by_file
        .keys()
        .map(|f| (*f, destination_for(dest, Path::new(f), several)))
        .collect();
    // All checked before any is written.
    for (_, target) in &targets {
        destination::check(target, force)?;
    }
    let mut written = Vec::new();
    for (file, target) in targets {
        let lines = &by_file[file];
        let Some(input) = sources.named(file) else {
            return Err(IngestError::Io {
                name: file.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a source of this ingest",
                ),
            }
            .into());
        };
        let opened = source::open(input, &super::NoProgress)?;
        let mut csv = csv_reader(opened.reader, opened.delimiter);
        let mut header = csv.byte_headers().map_err(|e| csv_error(file, e))?.clone();
        let width = header.len();
        header.push_field(REASON_COLUMN.as_bytes());
        let mut record = csv::ByteRecord::new();
        let mut rows = Vec::with_capacity(lines.len());
        while csv
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(file, e))?
        {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if let Some(reasons) = lines.get(&line) {
                let mut out = record.clone();
                // A short row is padded, so its reasons stay in their column.
                while out.len() < width {
                    out.push_field(b"");
                }
                out.push_field(reasons.join("; ").as_bytes());
                rows.push(out);
            }
        }
        destination::write_file(&target, force, |f| {
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(f);
            w.write_byte_record(&header)?;
            for r in &rows {
                w.write_byte_record(r)?;
            }
            w.flush()
        })?;
        written.push(RejectedFile {
            source: file.to_owned(),
            path: target.display().to_string(),
            rows: rows.len() as u64,
            rejected: lines.values().filter(|r| !r.is_empty()).count() as u64,
        });
    }
    Ok(written)
}
