//! Regenerated reports keep their history. The previous report's headline (its "Made by" line and
//! its first table, with that table's heading) moves into a `## History` section at the end, above
//! the older entries, so a change of data or protocol stays visible in the report itself.

use std::fmt::Write as _;

pub const HEADING: &str = "## History";
const PREAMBLE: &str = "Earlier versions of this report, newest first.";

/// Splits a report into its body and the entries of its history section (without the heading).
fn split(md: &str) -> (&str, &str) {
    let mut at = 0;
    for line in md.split_inclusive('\n') {
        if line.trim_end() == HEADING {
            return (&md[..at], md[at + line.len()..].trim_start_matches('\n'));
        }
        at += line.len();
    }
    (md, "")
}

/// The "Made by" line and the first table (with the nearest `## ` heading above it) of a body.
fn headline(body: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = body.lines().collect();
    let made = lines.iter().find(|l| l.starts_with("Made by"))?.trim().to_string();
    let start = lines.iter().position(|l| l.starts_with('|'))?;
    let end = lines[start..].iter().position(|l| !l.starts_with('|')).map_or(lines.len(), |k| start + k);
    let mut block = String::new();
    if let Some(h) = lines[..start].iter().rev().find(|l| l.starts_with("## ")) {
        let _ = writeln!(block, "{}\n", h.trim_start_matches("## ").trim());
    }
    for l in &lines[start..end] {
        let _ = writeln!(block, "{l}");
    }
    Some((made, block))
}

/// `new_md` (any history section in it dropped) followed by the history: an entry for `old`'s
/// headline, dated `superseded_on`, unless its table equals the new one's, then `old`'s entries.
pub fn with_history(new_md: &str, old: Option<&str>, superseded_on: &str) -> String {
    let (new_body, _) = split(new_md);
    let mut out = new_body.trim_end().to_string();
    let Some(old) = old else {
        out.push('\n');
        return out;
    };
    let (old_body, old_entries) = split(old);
    let mut entries = String::new();
    if let Some((made, table)) = headline(old_body) {
        let same = headline(new_body).is_some_and(|(_, t)| t == table);
        if !same {
            let _ = write!(entries, "### Until {superseded_on}\n\n{made}\n\n{table}\n");
        }
    }
    entries.push_str(old_entries.trim_start_matches(PREAMBLE).trim());
    let entries = entries.trim();
    if !entries.is_empty() {
        let _ = write!(out, "\n\n{HEADING}\n\n{PREAMBLE}\n\n{entries}");
    }
    out.push('\n');
    out
}

/// Today's date (UTC), for [`with_history`].
pub fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        "# T\n\nMade by `a` at commit `1`.\n\n## Sim.\n\n| x | S1 |\n|---|---|\n| Call | 1.00 |\n\n## Other\n\n| y |\n";
    const V2: &str = "# T\n\nMade by `a` at commit `2`.\n\n## Sim.\n\n| x | S1 |\n|---|---|\n| Call | 2.00 |\n";

    #[test]
    fn a_first_report_has_no_history() {
        assert_eq!(with_history(V1, None, "2026-01-01"), V1.trim_end().to_string() + "\n");
    }

    #[test]
    fn the_previous_headline_moves_into_history_newest_first() {
        let v2 = with_history(V2, Some(V1), "2026-01-01");
        assert!(v2.starts_with(V2.trim_end()));
        let h = &v2[v2.find(HEADING).unwrap()..];
        assert!(h.contains(
            "### Until 2026-01-01\n\nMade by `a` at commit `1`.\n\nSim.\n\n| x | S1 |\n|---|---|\n| Call | 1.00 |\n"
        ));
        assert!(!h.contains("| y |"), "only the first table is kept");
        // a third version keeps both entries, newest first
        let v3 = V2.replace("2.00", "3.00").replace("`2`", "`3`");
        let v3 = with_history(&v3, Some(&v2), "2026-02-01");
        let h = &v3[v3.find(HEADING).unwrap()..];
        let (a, b) = (h.find("Until 2026-02-01").unwrap(), h.find("Until 2026-01-01").unwrap());
        assert!(a < b);
        assert!(h.contains("| Call | 2.00 |") && h.contains("| Call | 1.00 |"));
        assert_eq!(v3.matches(HEADING).count(), 1);
        assert_eq!(v3.matches("newest first").count(), 1);
    }

    #[test]
    fn an_identical_rerun_adds_no_entry() {
        let v2 = with_history(V2, Some(V1), "2026-01-01");
        let again = with_history(V2, Some(&v2), "2026-01-02");
        assert_eq!(again, v2);
    }
}
