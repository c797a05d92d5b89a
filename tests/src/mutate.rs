//! Byte-level mutation of real inputs for the property tests of the parsers.

use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: `PROPTEST_CASES`, 256 by default.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// A file of the repository, read whole.
pub fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(crate::repo_root().join(path)).unwrap()
}

/// Byte edits: (where, byte, 0 = replace / 1 = insert / 2 = delete / 3 = truncate here).
pub type Edits = Vec<(Index, u8, u8)>;

/// Between 1 and `max - 1` edits.
pub fn edits(max: usize) -> impl Strategy<Value = Edits> {
    prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..4), 1..max)
}

pub fn mutate(mut b: Vec<u8>, edits: &Edits) -> Vec<u8> {
    for (at, byte, op) in edits {
        let n = b.len();
        let i = at.index(n.max(1));
        match op {
            0 if n > 0 => b[i.min(n - 1)] = *byte,
            1 => b.insert(i.min(n), *byte),
            2 if n > 0 => {
                b.remove(i.min(n - 1));
            }
            3 => b.truncate(i),
            _ => {}
        }
    }
    b
}

/// A JSON error of `input` names a place in it: its message shows the line and column, and
/// they lie inside the input (column at most one past the line's end).
pub fn json_error_in_place(input: &[u8], e: &serde_json::Error) -> Result<(), String> {
    let (line, col) = (e.line(), e.column());
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let shown = e.to_string().contains(&format!("line {line} column {col}"));
    let inside = line >= 1 && lines.get(line - 1).is_some_and(|l| col <= l.len() + 1);
    if shown && inside {
        Ok(())
    } else {
        Err(format!("{e}: line {line} column {col} is not a place in the {} lines of the input", lines.len()))
    }
}

/// `value` survives a trip through JSON unchanged.
pub fn round_trips<T>(value: &T) -> Result<(), String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    match serde_json::from_str::<T>(&text) {
        Ok(back) if back == *value => Ok(()),
        other => Err(format!("{value:?} does not round-trip: {other:?}")),
    }
}
