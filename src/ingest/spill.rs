//! Rows kept on disk as an ingest finds them, and read back sorted by group and line
//! with bounded memory (sorted runs, then a merge). Two readers use it: the
//! rejected-rows file (group: the input), whose rows judged after the read (an order
//! without a date, a price read in its order's currency, the valid rows sent along
//! with their order) arrive out of line order; and the lines of an order file (group:
//! the order), whose orders are finished one at a time once every row is read, so an
//! ingest's memory does not grow with its rows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// One row: its group (for the rejected-rows file an index into the ingest's inputs,
/// for order lines the order's), its line, and its text (the rejected row's reasons,
/// empty for a valid row sent along with its order; or an order line, encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub group: u32,
    pub line: u64,
    pub text: String,
}

/// Memory a sorted run may take while a spill is sorted (entries and their texts).
const RUN_BYTES: usize = 32 << 20;

/// Sorted runs on disk at once (an open file each); past it they are merged into one.
const MAX_RUNS: usize = 128;

/// Bytes of an entry besides its text, counted against [`RUN_BYTES`].
const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// An entry's encoding: group (u32), line (u64) and the text's length (u32), little
/// endian, then the text's bytes.
const HEAD_BYTES: usize = 16;

fn encode(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let len = u32::try_from(e.text.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a text over 4 GiB"))?;
    w.write_all(&e.group.to_le_bytes())?;
    w.write_all(&e.line.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(e.text.as_bytes())
}

/// The next entry, `None` at the end; an entry cut short is an error.
fn decode(r: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut head = [0u8; HEAD_BYTES];
    let mut got = 0;
    while got < HEAD_BYTES {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut group = [0u8; 4];
    let mut line = [0u8; 8];
    let mut len = [0u8; 4];
    group.copy_from_slice(&head[0..4]);
    line.copy_from_slice(&head[4..12]);
    len.copy_from_slice(&head[12..16]);
    let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut text)?;
    let text =
        String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some(Entry {
        group: u32::from_le_bytes(group),
        line: u64::from_le_bytes(line),
        text,
    }))
}

/// Entries written to an unnamed temporary file as they come (it goes with the value).
#[derive(Debug)]
pub(crate) struct Spill {
    out: BufWriter<File>,
}

impl Spill {
    pub fn new() -> io::Result<Spill> {
        Ok(Spill {
            out: BufWriter::new(tempfile::tempfile()?),
        })
    }

    pub fn push(&mut self, e: &Entry) -> io::Result<()> {
        encode(&mut self.out, e)
    }

    /// Every entry so far, sorted by group then line; a line's entries stay in the
    /// order they were pushed.
    pub fn sorted(&mut self) -> io::Result<Sorted> {
        self.sorted_in_runs_of(RUN_BYTES, MAX_RUNS)
    }

    fn sorted_in_runs_of(&mut self, run_bytes: usize, max_runs: usize) -> io::Result<Sorted> {
        self.out.flush()?;
        // A second handle on the same file: reading moves the shared position, so the
        // position is put back at the end for any later push.
        let mut file = self.out.get_ref().try_clone()?;
        file.seek(SeekFrom::Start(0))?;
        let sorted = sort(BufReader::new(&mut file), run_bytes, max_runs);
        file.seek(SeekFrom::End(0))?;
        sorted
    }
}

/// Sorts the entries `input` holds: in memory when they fit one run, else in sorted
/// runs on disk, merged as they are read.
fn sort(mut input: impl Read, run_bytes: usize, max_runs: usize) -> io::Result<Sorted> {
    let mut runs = Vec::new();
    loop {
        let (mut run, end) = read_run(&mut input, run_bytes)?;
        // Stable: a line's entries keep the order they were found in.
        run.sort_by_key(|e| (e.group, e.line));
        if end && runs.is_empty() {
            return Ok(Sorted::Memory(run.into_iter()));
        }
        if !run.is_empty() {
            let mut entries = run.into_iter();
            runs.push(write_run(|| Ok(entries.next()))?);
        }
        if end {
            return Sorted::merge(runs);
        }
        if runs.len() >= max_runs.max(2) {
            // One run of them all, first among the runs: its entries were found first.
            let mut merged = Sorted::merge(std::mem::take(&mut runs))?;
            runs.push(write_run(|| merged.next_entry())?);
        }
    }
}

/// Entries up to `run_bytes` of memory, and whether the input ended.
fn read_run(input: &mut impl Read, run_bytes: usize) -> io::Result<(Vec<Entry>, bool)> {
    let mut run = Vec::new();
    let mut bytes = 0;
    while bytes < run_bytes {
        match decode(input)? {
            Some(e) => {
                bytes += ENTRY_BYTES + e.text.len();
                run.push(e);
            }
            None => return Ok((run, true)),
        }
    }
    Ok((run, false))
}

/// Writes the entries `next` gives, in that order, to a temporary file to read back.
fn write_run(mut next: impl FnMut() -> io::Result<Option<Entry>>) -> io::Result<BufReader<File>> {
    let mut out = BufWriter::new(tempfile::tempfile()?);
    while let Some(e) = next()? {
        encode(&mut out, &e)?;
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(BufReader::new(file))
}

/// Entries in order of group, then line.
pub(crate) enum Sorted {
    Memory(std::vec::IntoIter<Entry>),
    Merge(Merge),
}

/// Sorted runs on disk, merged: the heap holds each run's next key.
pub(crate) struct Merge {
    runs: Vec<BufReader<File>>,
    heads: Vec<Option<Entry>>,
    /// (group, line, run): on equal lines the earlier run, whose entries were found
    /// first, comes first.
    order: BinaryHeap<Reverse<(u32, u64, usize)>>,
}

impl Sorted {
    /// Entries held in memory, sorted.
    pub fn from_entries(mut entries: Vec<Entry>) -> Sorted {
        entries.sort_by_key(|e| (e.group, e.line));
        Sorted::Memory(entries.into_iter())
    }

    fn merge(mut runs: Vec<BufReader<File>>) -> io::Result<Sorted> {
        let mut heads = Vec::with_capacity(runs.len());
        let mut order = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            let head = decode(run)?;
            if let Some(e) = &head {
                order.push(Reverse((e.group, e.line, i)));
            }
            heads.push(head);
        }
        Ok(Sorted::Merge(Merge { runs, heads, order }))
    }

    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        match self {
            Sorted::Memory(entries) => Ok(entries.next()),
            Sorted::Merge(m) => m.next_entry(),
        }
    }
}

impl Merge {
    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let Some(Reverse((_, _, i))) = self.order.pop() else {
            return Ok(None);
        };
        let (Some(run), Some(head)) = (self.runs.get_mut(i), self.heads.get_mut(i)) else {
            return Ok(None);
        };
        let next = decode(run)?;
        if let Some(e) = &next {
            self.order.push(Reverse((e.group, e.line, i)));
        }
        Ok(std::mem::replace(head, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(file: u32, line: u64, reason: &str) -> Entry {
        Entry {
            group: file,
            line,
            text: reason.to_owned(),
        }
    }

    fn drain(mut sorted: Sorted) -> Vec<Entry> {
        let mut out = Vec::new();
        while let Some(e) = sorted.next_entry().unwrap() {
            out.push(e);
        }
        out
    }

    /// Out of order, with repeated lines and several inputs: the merge of many small
    /// runs gives what one stable sort in memory gives.
    #[test]
    fn runs_merged_give_a_stable_sort_by_input_and_line() {
        let mut entries = Vec::new();
        for i in 0..2_000u64 {
            let line = (i * 7_919) % 613;
            entries.push(entry((i % 3) as u32, line, &format!("r{i}")));
        }
        entries.push(entry(1, 5, ""));
        let mut spill = Spill::new().unwrap();
        for e in &entries {
            spill.push(e).unwrap();
        }
        let merged = drain(spill.sorted_in_runs_of(1_000, MAX_RUNS).unwrap());
        assert!(matches!(
            spill.sorted_in_runs_of(1_000, MAX_RUNS).unwrap(),
            Sorted::Merge(_)
        ));
        // Few runs at once: merged into one as they come, then with the last ones.
        let cascaded = drain(spill.sorted_in_runs_of(1_000, 3).unwrap());
        let in_memory = drain(spill.sorted().unwrap());
        let want = drain(Sorted::from_entries(entries.clone()));
        assert_eq!(merged, want);
        assert_eq!(cascaded, want);
        assert_eq!(in_memory, want);
        assert_eq!(want.len(), entries.len());
        // Pushing after a sort appends, as before it: the sort is stable, so the late
        // entry comes after those of its line pushed earlier.
        spill.push(&entry(0, 0, "late")).unwrap();
        let first_line: Vec<Entry> = drain(spill.sorted().unwrap())
            .into_iter()
            .filter(|e| e.group == 0 && e.line == 0)
            .collect();
        assert_eq!(
            first_line,
            [entry(0, 0, "r0"), entry(0, 0, "r1839"), entry(0, 0, "late")]
        );
    }

    #[test]
    fn an_entry_cut_short_is_an_error_and_an_empty_spill_is_empty() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &entry(0, 3, "bad price")).unwrap();
        bytes.truncate(bytes.len() - 2);
        assert!(decode(&mut &bytes[..]).is_err());
        assert!(decode(&mut &bytes[..5]).is_err());
        assert_eq!(decode(&mut &[0u8; 0][..]).unwrap(), None);
        assert!(drain(Spill::new().unwrap().sorted().unwrap()).is_empty());
    }
}
