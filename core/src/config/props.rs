//! Property tests of the plugin configuration parser: any bytes, and valid configurations with
//! mutations, parse or fail with a typed error; never a panic. `PROPTEST_CASES` sets the count.

use super::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn valid() -> String {
    let c = ConfigV1 {
        generation: 3,
        rule: Some(crate::rule::sample_rule()),
        trace_key: Some("0123456789abcdef".into()),
        ..Default::default()
    };
    c.to_json()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = ConfigV1::parse(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Flip, insert or delete bytes of a valid configuration: the result parses (and then
    /// re-serialises to an equal configuration) or is rejected naming the field or JSON position.
    #[test]
    fn mutated_valid(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut b = valid().into_bytes();
        for (at, byte, op) in edits {
            let n = b.len();
            let i = at.index(n.max(1));
            match op {
                0 if n > 0 => b[i.min(n - 1)] = byte,
                1 => b.insert(i.min(n), byte),
                _ if n > 0 => {
                    b.remove(i.min(n - 1));
                }
                _ => {}
            }
        }
        match ConfigV1::parse(&b) {
            Ok(c) => prop_assert_eq!(ConfigV1::parse(c.to_json().as_bytes()).ok(), Some(c)),
            Err(ConfigError::Json(e)) => prop_assert!(e.line() >= 1 || e.is_eof() || e.is_data(), "{e}"),
            Err(ConfigError::Invalid(f)) => prop_assert!(f.contains(':') || f.contains('.'), "{f}"),
        }
    }

    /// Numeric limits are enforced with the field's name.
    #[test]
    fn limits_name_the_field(open in any::<u32>(), lines in any::<u32>()) {
        let j = format!(r#"{{"api":"v1","max_open_runs":{open},"max_trace_lines_per_s":{lines}}}"#);
        match ConfigV1::parse(j.as_bytes()) {
            Ok(c) => prop_assert!(OPEN_RUNS_RANGE.contains(&c.max_open_runs) && TRACE_LINES_RANGE.contains(&c.max_trace_lines_per_s)),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("max_open_runs") || e.contains("max_trace_lines_per_s"), "{e}");
            }
        }
    }
}
