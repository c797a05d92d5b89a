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

    #[test]
    fn any_line(line in ".{0,300}", tail in "[ -~]{0,200}") {
        for l in [line.clone(), format!("{line}SFR2L_TRACE {tail}"), format!("{PREFIX}SFR2L_TRACE {tail}")] {
            let _ = TraceRecord::from_log_line(&l);
            if let Some(Err(r)) = check_line(&l, Some(KEY)) {
                prop_assert!(!r.to_string().is_empty());
            }
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
