//! The one CSV row reader (the `csv` crate): records with their 1-based line numbers. Blank
//! lines are skipped; rows may differ in length, so callers can name the mismatch themselves.

/// One record and the line it starts on.
pub struct Row {
    pub line: usize,
    pub record: csv::StringRecord,
}

impl Row {
    pub fn fields(&self) -> Vec<&str> {
        self.record.iter().collect()
    }
}

/// The records of `text`, header included; whitespace-only lines are skipped like blank ones.
pub fn csv_rows(text: &str) -> impl Iterator<Item = Result<Row, csv::Error>> + '_ {
    // The reader's own line count does not include the blank lines it skipped before a record,
    // so lines are counted here from the record's byte offset.
    let bytes = text.as_bytes();
    let (mut at, mut line) = (0usize, 1usize);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .into_records()
        .filter(|r| !matches!(r, Ok(rec) if rec.len() == 1 && rec[0].trim().is_empty()))
        .map(move |r| {
            r.map(|record| {
                let mut start = record.position().map_or(at, |p| p.byte() as usize).clamp(at, bytes.len());
                while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
                    start += 1;
                }
                line += bytes[at..start].iter().filter(|b| **b == b'\n').count();
                at = start;
                Row { line, record }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_and_blank_lines_skipped() {
        let rows: Vec<(usize, Vec<String>)> = csv_rows("a,b\n\n1,2\n  \n3\n")
            .map(|r| r.map(|r| (r.line, r.fields().iter().map(|f| f.to_string()).collect())).unwrap())
            .collect();
        assert_eq!(
            rows,
            vec![(1, vec!["a".into(), "b".into()]), (3, vec!["1".into(), "2".into()]), (5, vec!["3".into()])]
        );
    }
}
