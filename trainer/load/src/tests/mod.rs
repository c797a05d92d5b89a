//! Load generator tests: a tiny scripted HTTP/1.1 server on 127.0.0.1 (loopback only,
//! bounded), live runs against it, and fortio-compatible parsing and formatting.

mod format;
mod props;
mod runs;
mod server;
