//! Property tests of the response-head parser against a model of RFC 9112 section 6.3 (how a
//! response's body is delimited) and section 9.3 (when the connection closes): heads built from
//! random status lines and headers in any case and spacing, and any bytes. `PROPTEST_CASES` sets
//! the count (256 by default).

use crate::parse::{parse_head, Body, Head};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// One header line of a generated head.
#[derive(Debug, Clone)]
enum Field {
    Length(String),
    Coding(Vec<&'static str>),
    Connection(Vec<&'static str>),
    Other(String, String),
}

fn mixed_case(s: &str, mask: u64) -> String {
    s.chars().enumerate().map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c }).collect()
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        prop_oneof![(0u64..1 << 40).prop_map(|n| n.to_string()), "[+-]?[0-9a-z]{1,6}"].prop_map(Field::Length),
        prop::collection::vec(prop::sample::select(vec!["chunked", "gzip", "identity", "Chunked", "deflate"]), 1..4)
            .prop_map(Field::Coding),
        prop::collection::vec(
            prop::sample::select(vec!["close", "keep-alive", "Upgrade", "CLOSE", "Keep-Alive"]),
            1..3
        )
        .prop_map(Field::Connection),
        ("x-[a-z]{1,8}", "[ -~]{0,20}").prop_map(|(n, v)| Field::Other(n, v)),
    ]
}

/// What the RFC says of this head, decided independently of the parser's code.
fn model(http10: bool, code: i32, fields: &[Field]) -> Option<Head> {
    let mut lengths = Vec::new();
    let mut last_coding: Option<&str> = None;
    let mut tokens: Vec<String> = Vec::new();
    for f in fields {
        match f {
            // Content-Length = 1*DIGIT (section 8.6): no sign, no other character.
            Field::Length(v) if v.bytes().all(|b| b.is_ascii_digit()) => lengths.push(v.parse::<u64>().ok()?),
            Field::Length(_) => return None,
            Field::Coding(c) => last_coding = c.last().copied(),
            Field::Connection(t) => tokens.extend(t.iter().map(|t| t.to_ascii_lowercase())),
            Field::Other(..) => {}
        }
    }
    // Differing Content-Length values make the response invalid (section 6.3, item 5).
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    let chunked = last_coding.is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
    let mut close = tokens.iter().any(|t| t == "close") || (http10 && !tokens.iter().any(|t| t == "keep-alive"));
    let body = if (100..200).contains(&code) || code == 204 || code == 304 {
        Body::None
    } else if chunked {
        Body::Chunked
    } else if let Some(n) = lengths.first() {
        Body::Length(*n)
    } else {
        close = true;
        Body::UntilClose
    };
    Some(Head { code, body, close: close || code == 101 })
}

fn render(http10: bool, code: i32, fields: &[Field], mask: u64, pad: &str) -> Vec<u8> {
    let mut h = format!("HTTP/1.{} {code:03} Reason Phrase\r\n", if http10 { 0 } else { 1 });
    for f in fields {
        let (name, value) = match f {
            Field::Length(v) => ("content-length".to_string(), v.clone()),
            Field::Coding(c) => ("transfer-encoding".to_string(), c.join(&format!(",{pad}"))),
            Field::Connection(t) => ("connection".to_string(), t.join(&format!("{pad},"))),
            Field::Other(n, v) => (n.clone(), v.clone()),
        };
        h.push_str(&format!("{}:{pad}{value}{pad}\r\n", mixed_case(&name, mask)));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn heads_parse_as_the_rfc_says(http10 in any::<bool>(), code in 100i32..600,
                                   fields in prop::collection::vec(field(), 0..6),
                                   mask in any::<u64>(), pad in prop::sample::select(vec!["", " ", "\t", "  "])) {
        let bytes = render(http10, code, &fields, mask, pad);
        prop_assert_eq!(parse_head(&bytes), model(http10, code, &fields), "{}", String::from_utf8_lossy(&bytes));
    }

    /// Any bytes: a head is read only from an `HTTP/1.x NNN` status line, with that code.
    #[test]
    fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200), status in any::<bool>()) {
        let mut b = bytes.clone();
        if status {
            b.splice(0..0, b"HTTP/1.1 2".iter().copied());
        }
        if let Some(h) = parse_head(&b) {
            prop_assert!(b.starts_with(b"HTTP/1.") && b[8] == b' ');
            let digits = std::str::from_utf8(&b[9..12]).ok().and_then(|d| d.parse::<i32>().ok());
            prop_assert_eq!(Some(h.code), digits);
        }
    }
}
