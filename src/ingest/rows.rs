//! The CSV row loop every reader shares: each record as a located [`Row`], its
//! outcome booked in the report (kept, dropped or rejected), the file recorded.

use std::io::Read;

use super::source::{Columns, Shape};
use super::{
    FileConventions, FileSummary, IngestError, IngestReport, NOT_UTF8, Rejection, Row, RowError,
    csv_error,
};

pub(super) type RowResult<T> = Result<T, Rejection>;

/// A required value that is not UTF-8 rejects its row.
pub(super) fn utf8(e: RowError) -> Rejection {
    Rejection::new(NOT_UTF8, e)
}

/// What a row handler made of one row.
pub(super) enum Outcome<T> {
    /// A kept row that produced a catalog entry.
    Entry(T),
    /// A kept row whose data was absorbed elsewhere (a product row awaiting variants,
    /// an order's line).
    Absorbed,
    /// A valid row a documented rule leaves out, counted under this reason.
    Dropped(&'static str),
}

/// Reads each record, rejects a malformed one (a wrong field count, an over-long
/// value) and hands the others to `handle` as a located [`Row`]. Returns the entries
/// with the line each came from.
pub(super) fn read_rows<R: Read, T>(
    file: &str,
    shape: Shape,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    report: &mut IngestReport,
    mut handle: impl FnMut(&Row<'_>, &mut IngestReport) -> RowResult<Outcome<T>>,
) -> Result<Vec<(u64, T)>, IngestError> {
    read_rows_unchecked(file, shape, csv, columns, conv, report, |row, report| {
        if let Some((key, e)) = row.malformed() {
            return Err(Rejection::new(key, e));
        }
        handle(row, report)
    })
}

/// [`read_rows`] where `handle` checks [`Row::malformed`] itself: order readers first
/// learn which order a row belongs to, so that a malformed row marks it incomplete.
pub(super) fn read_rows_unchecked<R: Read, T>(
    file: &str,
    shape: Shape,
    csv: &mut csv::Reader<R>,
    columns: &Columns,
    conv: &FileConventions,
    report: &mut IngestReport,
    mut handle: impl FnMut(&Row<'_>, &mut IngestReport) -> RowResult<Outcome<T>>,
) -> Result<Vec<(u64, T)>, IngestError> {
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut rows_read = 0;
    while csv
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(file, e))?
    {
        rows_read += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row = Row {
            file,
            line,
            record: &record,
            columns,
        };
        match handle(&row, report) {
            Ok(Outcome::Entry(t)) => {
                report.rows_kept += 1;
                out.push((line, t));
            }
            Ok(Outcome::Absorbed) => report.rows_kept += 1,
            Ok(Outcome::Dropped(reason)) => report.drop_row(reason),
            Err(r) => report.reject(r.key, *r.error),
        }
    }
    report.rows_read += rows_read;
    report.files.push(FileSummary {
        path: file.to_owned(),
        shape: shape.name(),
        rows_read,
        conventions: conv.clone(),
    });
    Ok(out)
}
