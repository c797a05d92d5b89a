//! sfr2l-files: the file plumbing every offline stage shares, with no stage's logic in it:
//! atomic writes, content hashes, provenance stamps, JSON configs with field paths in errors,
//! study files, and CSV records with their line numbers.

pub mod atomic;
pub mod config;
pub mod digest;
pub mod provenance;
pub mod records;
pub mod study;

pub use atomic::write_atomic;
pub use config::read_config;
pub use digest::{sha256_file, sha256_hex};
pub use provenance::{git_commit, now_rfc3339};
pub use records::{csv_rows, Row};
