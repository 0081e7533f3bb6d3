//! How one file writes numbers and dates: its decimal mark (`12.50` or `12,50`) and
//! the order of its slash dates (`3/1/2025` month or day first). Both are decided once
//! per file from its own values, before its rows are read, and reported: a value read
//! one way in one row and another way in the next would corrupt prices and dates
//! without a message.

use serde::Serialize;

use super::dates::{DateOrder, date_order_evidence, is_slash_date};
use super::source::{self, Columns, IngestSource};
use super::{IngestError, csv_error, csv_reader};
use crate::domain::{DecimalMark, decimal_mark_evidence};

/// A file's conventions and the values that decided them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileConventions {
    /// The field separator read from the header line: `,`, `;` or `\t`.
    pub separator: String,
    pub decimal_mark: DecimalMark,
    /// The first value that showed the mark (`line 2: "12,50"`); none when no value
    /// showed one and the default (a point) applies.
    pub decimal_mark_from: Option<String>,
    /// Only for files with slash dates.
    pub slash_dates: Option<DateOrder>,
    pub slash_dates_from: Option<String>,
}

/// Enough votes to decide: a file that disagrees with itself past this is rejected row
/// by row (each value the decision cannot read says why).
const DECISIVE_VOTES: u32 = 200;
/// Values seen without a single separator or slash date: the question does not arise.
const UNINFORMATIVE_VALUES: u32 = 2_000;

/// Votes for the two sides of one question (0: the default side), with the first
/// value that voted for each.
#[derive(Default)]
struct Votes {
    first: [Option<(u64, String)>; 2],
    count: [u32; 2],
    seen: u32,
    /// Whether any value could have voted (had a separator, was a slash date).
    relevant: bool,
}

impl Votes {
    fn add(&mut self, side: usize, line: u64, value: &str) {
        self.count[side] += 1;
        if self.first[side].is_none() {
            self.first[side] = Some((line, value.chars().take(40).collect()));
        }
    }

    fn settled(&self) -> bool {
        self.count.iter().sum::<u32>() >= DECISIVE_VOTES
            || (!self.relevant && self.seen >= UNINFORMATIVE_VALUES)
    }

    /// The winning side (ties: the first, the default) and its first sample.
    fn decision(&self) -> (usize, Option<String>) {
        let side = usize::from(self.count[1] > self.count[0]);
        let from = self.first[side]
            .as_ref()
            .map(|(line, v)| format!("line {line}: {v:?}"));
        (side, from)
    }
}

/// Reads the amount and date columns of a CSV source and decides its conventions, in
/// a pass of its own before the real read. Sources that cannot be read twice (a pipe)
/// keep the defaults.
pub fn scan(
    source: &IngestSource,
    amount_columns: &[Option<usize>],
    date_columns: &[Option<usize>],
) -> Result<FileConventions, IngestError> {
    if !source.rereadable() {
        return Ok(FileConventions::default());
    }
    let opened = source::open(source, &super::NoProgress)?;
    let separator = char::from(opened.delimiter).to_string();
    let mut csv = csv_reader(opened.reader, opened.delimiter);
    // The header row, read as the real read reads it.
    let _ = Columns::new(
        &csv.byte_headers()
            .map_err(|e| csv_error(&source.name, e))?
            .clone(),
    );
    let amounts: Vec<usize> = amount_columns.iter().flatten().copied().collect();
    let dates: Vec<usize> = date_columns.iter().flatten().copied().collect();
    let mut marks = Votes::default();
    let mut orders = Votes::default();
    let mut record = csv::ByteRecord::new();
    // A malformed row is the real read's to report: the scan stops there.
    while let Ok(true) = csv.read_byte_record(&mut record) {
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let text = |i: usize| {
            record
                .get(i)
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        for &i in &amounts {
            let Some(v) = text(i) else { continue };
            marks.seen += 1;
            if v.contains(['.', ',']) {
                marks.relevant = true;
            }
            match decimal_mark_evidence(v) {
                Some(DecimalMark::Point) => marks.add(0, line, v),
                Some(DecimalMark::Comma) => marks.add(1, line, v),
                None => {}
            }
        }
        for &i in &dates {
            let Some(v) = text(i) else { continue };
            orders.seen += 1;
            if is_slash_date(v) {
                orders.relevant = true;
            }
            match date_order_evidence(v) {
                Some(DateOrder::MonthFirst) => orders.add(0, line, v),
                Some(DateOrder::DayFirst) => orders.add(1, line, v),
                None => {}
            }
        }
        if (amounts.is_empty() || marks.settled()) && (dates.is_empty() || orders.settled()) {
            break;
        }
    }
    let (mark_side, decimal_mark_from) = marks.decision();
    let (order_side, slash_dates_from) = orders.decision();
    Ok(FileConventions {
        separator,
        decimal_mark: if mark_side == 1 {
            DecimalMark::Comma
        } else {
            DecimalMark::Point
        },
        decimal_mark_from,
        slash_dates: orders.relevant.then_some(if order_side == 1 {
            DateOrder::DayFirst
        } else {
            DateOrder::MonthFirst
        }),
        slash_dates_from: if orders.relevant {
            slash_dates_from
        } else {
            None
        },
    })
}

impl FileConventions {
    pub fn date_order(&self) -> DateOrder {
        self.slash_dates.unwrap_or_default()
    }
}
