//! What counts as failure: the response codes a study's objective names (`objective.failureCodes`,
//! 503 by default). The failure rate is the share of a run's responses with one of them; it is
//! the dataset's rate column, the simulator's second output and the `P` of the reward (eq. 3).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The failure codes, sorted and distinct (never empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u16>", into = "Vec<u16>")]
pub struct Failure {
    codes: Vec<u16>,
}

impl Default for Failure {
    /// The paper's: 503 only.
    fn default() -> Self {
        Self { codes: vec![503] }
    }
}

impl Failure {
    /// Checks `codes`: at least one, each an HTTP error status (400..=599), none twice.
    /// Order does not matter.
    pub fn new(codes: &[u16]) -> Result<Self, String> {
        if codes.is_empty() {
            return Err("empty: name the response codes that count as failure".into());
        }
        if let Some(c) = codes.iter().find(|c| !(400..=599).contains(*c)) {
            return Err(format!("{c} is not an HTTP error status (400..=599)"));
        }
        let mut sorted = codes.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{} is listed twice", w[0]));
        }
        Ok(Self { codes: sorted })
    }

    pub fn codes(&self) -> &[u16] {
        &self.codes
    }

    pub fn is_failure(&self, code: u16) -> bool {
        self.codes.binary_search(&code).is_ok()
    }

    /// The rate's column and output name: `rate_503`, `rate_429_503`.
    pub fn column(&self) -> String {
        let codes: Vec<String> = self.codes.iter().map(u16::to_string).collect();
        format!("rate_{}", codes.join("_"))
    }

    /// How reports name the rate: `503 rate`, `429,503 rate`.
    pub fn label(&self) -> String {
        format!("{self} rate")
    }

    /// What the rate is a share of, as graph docs and cards say it: `503 responses`,
    /// `responses with code 429,503`.
    pub fn responses(&self) -> String {
        if *self == Self::default() {
            "503 responses".into()
        } else {
            format!("responses with code {self}")
        }
    }

    /// The rate in the simulator's spread doc: `503 rate` (the paper's), else its column.
    pub fn spread_name(&self) -> String {
        if *self == Self::default() {
            "503 rate".into()
        } else {
            self.column()
        }
    }

    /// The inverse of [`Failure::column`], for headers and graph metadata.
    pub fn from_column(name: &str) -> Result<Self, String> {
        let codes =
            name.strip_prefix("rate_").ok_or_else(|| format!("`{name}` is not a rate column (rate_<codes>)"))?;
        let codes = codes
            .split('_')
            .map(|c| c.parse::<u16>().map_err(|_| format!("`{name}`: `{c}` is not a status code")))
            .collect::<Result<Vec<_>, _>>()?;
        let f = Self::new(&codes).map_err(|e| format!("`{name}`: {e}"))?;
        if f.column() != name {
            return Err(format!("`{name}`: write it as `{}` (codes in ascending order)", f.column()));
        }
        Ok(f)
    }

    /// Parses the `sfr2l.failure_codes` metadata value (`503`, `429,503`).
    pub fn from_list(list: &str) -> Result<Self, String> {
        let codes = list
            .split(',')
            .map(|c| c.trim().parse::<u16>().map_err(|_| format!("`{c}` is not a status code")))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&codes)
    }

    /// Responses with a failure code among `codes` (status code -> count, string keys as in
    /// trace records), out of `responses`; 0 for no responses.
    pub fn rate(&self, codes: &BTreeMap<String, u64>, responses: u64) -> f64 {
        if responses == 0 {
            return 0.0;
        }
        let failed: u64 =
            codes.iter().filter(|(k, _)| k.parse::<u16>().is_ok_and(|c| self.is_failure(c))).map(|(_, v)| *v).sum();
        failed as f64 / responses as f64
    }

    /// Whether `code` goes into a dataset row's `other_codes`: neither 200 nor a failure code.
    pub fn is_other(&self, code: u16) -> bool {
        code != 200 && !self.is_failure(code)
    }
}

/// `503`, `429,503`: the metadata form ([`Failure::from_list`]).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = self.codes.iter().map(u16::to_string).collect();
        f.write_str(&codes.join(","))
    }
}

impl TryFrom<Vec<u16>> for Failure {
    type Error = String;
    fn try_from(codes: Vec<u16>) -> Result<Self, String> {
        Self::new(&codes)
    }
}

impl From<Failure> for Vec<u16> {
    fn from(f: Failure) -> Self {
        f.codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked_and_sorted() {
        assert_eq!(Failure::default().column(), "rate_503");
        let f = Failure::new(&[503, 429]).unwrap();
        assert_eq!(
            (f.codes(), f.column(), f.to_string()),
            (&[429, 503][..], "rate_429_503".to_string(), "429,503".into())
        );
        assert!(f.is_failure(429) && f.is_failure(503) && !f.is_failure(504));
        assert!(f.is_other(504) && !f.is_other(200) && !f.is_other(429));
        assert_eq!((Failure::default().label(), f.label()), ("503 rate".to_string(), "429,503 rate".to_string()));
        assert_eq!(
            (Failure::default().responses(), f.responses()),
            ("503 responses".to_string(), "responses with code 429,503".to_string())
        );
        assert_eq!(
            (Failure::default().spread_name(), f.spread_name()),
            ("503 rate".to_string(), "rate_429_503".to_string())
        );
        assert_eq!(Failure::new(&[]).unwrap_err(), "empty: name the response codes that count as failure");
        assert_eq!(Failure::new(&[200]).unwrap_err(), "200 is not an HTTP error status (400..=599)");
        assert_eq!(Failure::new(&[503, 429, 503]).unwrap_err(), "503 is listed twice");
    }

    #[test]
    fn column_and_list_round_trip() {
        for codes in [&[503][..], &[429], &[429, 503, 504]] {
            let f = Failure::new(codes).unwrap();
            assert_eq!(Failure::from_column(&f.column()).unwrap(), f);
            assert_eq!(Failure::from_list(&f.to_string()).unwrap(), f);
        }
        assert_eq!(Failure::from_column("qps").unwrap_err(), "`qps` is not a rate column (rate_<codes>)");
        assert_eq!(Failure::from_column("rate_x").unwrap_err(), "`rate_x`: `x` is not a status code");
        assert_eq!(
            Failure::from_column("rate_503_429").unwrap_err(),
            "`rate_503_429`: write it as `rate_429_503` (codes in ascending order)"
        );
        assert_eq!(Failure::from_list("503,abc").unwrap_err(), "`abc` is not a status code");
    }

    #[test]
    fn rate_counts_only_the_failure_codes() {
        let codes: BTreeMap<String, u64> =
            [("200", 5), ("429", 2), ("503", 2), ("504", 1)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(Failure::default().rate(&codes, 10), 0.2);
        assert_eq!(Failure::new(&[429, 503]).unwrap().rate(&codes, 10), 0.4);
        assert_eq!(Failure::new(&[429]).unwrap().rate(&codes, 0), 0.0);
    }

    #[test]
    fn serde_checks_the_codes() {
        let f: Failure = serde_json::from_str("[503, 429]").unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), "[429,503]");
        assert!(serde_json::from_str::<Failure>("[]").is_err());
    }
}
