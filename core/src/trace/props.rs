//! Property tests of the trace record reader and the line check: any text, and real lines with
//! mutations, give a record or a typed rejection; never a panic. A signed line survives no edit
//! of its record. `PROPTEST_CASES` sets the count.

use super::auth::{check_line, Rejection};
use super::*;
use crate::counters::RunAnnounce;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

const PREFIX: &str = "[2026-11-29 12:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: ";
const KEY: &[u8] = b"property-test-key-0123";

fn record(codes: &[(u16, u8)], run: &str) -> TraceRecord {
    let a = RunAnnounce { threads: 2, calls: codes.len() as u32 };
    let mut c = RunCounters::new(a);
    for (i, (code, flags)) in codes.iter().enumerate() {
        c.record(a, *code, u64::from(*flags), 1_000 + i as u64, 2_000_000 + i as u64 * 1_000);
    }
    TraceRecord::from_counters(run, 1, Some(crate::rule::sample_rule()), &c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any text: a line without the marker is no record; a line with it is a record, which then
    /// reads back unchanged from its own log line, or a rejection that fits the line: a
    /// malformed record names a line and column inside its JSON (or the schema or code it
    /// refuses), a real Wasm log line is never "not a Wasm log", and text that cannot be one
    /// always is.
    #[test]
    fn any_line(line in ".{0,300}", tail in "[ -~]{0,200}") {
        for (l, wasm) in [
            (line.clone(), None),
            (format!("{line}SFR2L_TRACE {tail}"), (!line.contains(['[', '\t'])).then_some(false)),
            (format!("{PREFIX}SFR2L_TRACE {tail}"), Some(true)),
        ] {
            let marked = l.contains(TRACE_MARKER);
            prop_assert_eq!(TraceRecord::from_log_line(&l).is_some(), marked);
            for key in [None, Some(KEY)] {
                let checked = check_line(&l, key);
                prop_assert_eq!(checked.is_some(), marked);
                let Some(checked) = checked else { continue };
                match checked {
                    Ok(a) => {
                        prop_assert!(wasm != Some(false), "accepted from a line that is no Wasm log: {l}");
                        let again = TraceRecord::from_log_line(&a.record.to_log_line()).and_then(Result::ok);
                        prop_assert_eq!(again, Some(a.record));
                    }
                    Err(Rejection::NotWasmLog) => prop_assert!(wasm != Some(true), "a Wasm log line: {l}"),
                    Err(Rejection::Malformed(m)) => {
                        let json = tail.trim();
                        let placed = m.rsplit_once(" at line 1 column ").and_then(|(_, c)| c.parse::<usize>().ok());
                        prop_assert!(
                            placed.is_some_and(|c| c <= json.len() + 1) || m.contains("schema") || m.contains("status code"),
                            "{m} (payload {json:?})"
                        );
                    }
                    Err(Rejection::Unsigned) => prop_assert!(key.is_some()),
                    Err(r) => prop_assert!(key.is_some() && l.contains(auth::MAC_TAG), "{r:?}"),
                }
            }
        }
    }

    /// Records that are JSON but not quite records (fields of the schema with values of every
    /// type): a rejection names the line and column of the JSON, or the schema it refuses.
    #[test]
    fn near_records_name_the_place(fields in prop::collection::vec((prop::sample::select(vec![
            "run", "generation", "complete", "threads", "calls", "responses", "codes", "first_ns", "rate_503", "extra"]),
            prop::sample::select(vec!["1", "-1", "1.5", "\"x\"", "null", "[]", "{}", "true", "{\"200\":1}", "{\"abc\":1}"])), 0..8)) {
        let body: String = fields.iter().map(|(k, v)| format!(",\"{k}\":{v}")).collect();
        let json = format!("{{\"schema\":2{body}}}");
        let l = format!("{PREFIX}SFR2L_TRACE {json}");
        match check_line(&l, None).unwrap() {
            Ok(a) => {
                let again = TraceRecord::from_log_line(&a.record.to_log_line()).and_then(Result::ok);
                prop_assert_eq!(again, Some(a.record));
            }
            Err(Rejection::Malformed(m)) => {
                let placed = m.rsplit_once(" at line 1 column ").and_then(|(_, c)| c.parse::<usize>().ok());
                prop_assert!(placed.is_some_and(|c| (1..=json.len()).contains(&c)) || m.contains("status code"), "{m} ({json})");
            }
            Err(r) => prop_assert!(false, "{r:?}"),
        }
    }

    /// Any record the filter can write reads back (codes, counts, run) behind Envoy's prefix.
    #[test]
    fn records_read_back(codes in prop::collection::vec((100u16..600, any::<u8>()), 1..40), run in "[A-Za-z0-9._:-]{1,128}") {
        let r = record(&codes, &run);
        let line = format!("{PREFIX}{}", r.to_signed_log_line(Some(KEY)));
        let a = check_line(&line, Some(KEY)).unwrap().unwrap();
        prop_assert!(a.signed);
        prop_assert_eq!(&a.record.codes, &r.codes);
        prop_assert_eq!((a.record.responses, &a.record.run), (r.responses, &r.run));
    }

    /// Changing any byte of a signed record's JSON is caught: rejected, never accepted as another record.
    #[test]
    fn signed_lines_resist_edits(at in any::<prop::sample::Index>(), byte in 0x20u8..0x7f) {
        let r = record(&[(200, 0), (503, 0x80)], "run-1");
        let signed = r.to_signed_log_line(Some(KEY));
        let json_len = signed.len() - TRACE_MARKER.len() - 64 - auth::MAC_TAG.len();
        let i = TRACE_MARKER.len() + at.index(json_len);
        let mut b = signed.clone().into_bytes();
        prop_assume!(b[i] != byte);
        b[i] = byte;
        let line = format!("{PREFIX}{}", String::from_utf8(b).unwrap());
        match check_line(&line, Some(KEY)).unwrap() {
            Ok(a) => prop_assert!(false, "an edited record was accepted: {:?}", a.record),
            Err(e) => prop_assert!(matches!(e, Rejection::BadMac | Rejection::Unsigned | Rejection::Malformed(_)), "{e:?}"),
        }
    }
}
