//! Host facilities behind small functions that never panic: shared data, time, properties, logs.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, Status};
use sfr2l_core::store::{SharedStore, StoreError};
use std::time::UNIX_EPOCH;

/// Envoy's process-wide shared data (scoped by vm_id).
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(v), cas)) => Ok(Some((v, cas.unwrap_or(0)))),
            Ok((None, Some(cas))) => Ok(Some((Vec::new(), cas))),
            Ok((None, None)) => Ok(None),
            Err(s) => Err(StoreError::Host(format!("get_shared_data: {s:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(s) => Err(StoreError::Host(format!("set_shared_data: {s:?}"))),
        }
    }
}

/// Host wall clock, ns since the epoch (0 if unavailable).
pub fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
}

/// An integer property (`response.code`, `response.flags`: i64 little-endian).
pub fn int_property(path: &[&str]) -> Option<i64> {
    let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}
