//! Guest memory access for host calls: reads with bounds checks, and buffers handed back through
//! the module's `proxy_on_memory_allocate`, as Envoy does.

use crate::state::VmState;
use wasmtime::{format_err, Caller, Result};

type C<'a> = Caller<'a, VmState>;

fn memory(c: &C<'_>) -> Result<wasmtime::Memory> {
    c.data().memory.ok_or_else(|| format_err!("the module exports no memory"))
}

pub fn read(c: &C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let m = memory(c)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    m.data(c)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format_err!("guest read out of bounds: {start}+{len}"))
}

pub fn read_str(c: &C<'_>, ptr: i32, len: i32) -> Result<String> {
    String::from_utf8(read(c, ptr, len)?).map_err(|e| format_err!("guest string is not UTF-8: {e}"))
}

pub fn write(c: &mut C<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let m = memory(c)?;
    m.write(c, ptr as u32 as usize, bytes).map_err(|e| format_err!("guest write at {ptr}: {e}"))
}

pub fn write_u32(c: &mut C<'_>, ptr: i32, v: u32) -> Result<()> {
    write(c, ptr, &v.to_le_bytes())
}

pub fn write_u64(c: &mut C<'_>, ptr: i32, v: u64) -> Result<()> {
    write(c, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into a fresh guest buffer and writes its address and size to the two return
/// pointers. Empty data is returned as a null pointer with size 0 (Envoy's behaviour).
pub fn return_bytes(c: &mut C<'_>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> Result<()> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        let alloc =
            c.data().alloc.clone().ok_or_else(|| format_err!("the module exports no proxy_on_memory_allocate"))?;
        let len = i32::try_from(bytes.len()).map_err(|_| format_err!("buffer too large"))?;
        let p = alloc.call(&mut *c, len)?;
        if p == 0 {
            return Err(format_err!("proxy_on_memory_allocate({len}) returned null"));
        }
        write(c, p, bytes)?;
        p
    };
    write_u32(c, ret_ptr, ptr as u32)?;
    write_u32(c, ret_size, bytes.len() as u32)
}

/// proxy-wasm header map serialisation: count, (key len, value len) pairs, then NUL-terminated
/// keys and values.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// The inverse of [`serialize_map`]; an empty buffer is an empty map.
pub fn deserialize_map(b: &[u8]) -> Result<Vec<(String, String)>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let u32_at = |at: usize| -> Result<usize> {
        let s = b.get(at..at + 4).ok_or_else(|| format_err!("header map truncated at {at}"))?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let n = u32_at(0)?;
    let mut p = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut take = |len: usize| -> Result<String> {
            let s = b.get(p..p + len).ok_or_else(|| format_err!("header map truncated at {p}"))?;
            if b.get(p + len) != Some(&0) {
                return Err(format_err!("header map entry at {p} is not NUL-terminated"));
            }
            p += len + 1;
            String::from_utf8(s.to_vec()).map_err(|e| format_err!("header map entry: {e}"))
        };
        let (kl, vl) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let k = take(kl)?;
        let v = take(vl)?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_roundtrip() {
        let m = vec![(":method".to_string(), "GET".to_string()), ("x".to_string(), String::new())];
        let b = serialize_map(&m);
        assert_eq!(&b[..4], &[2, 0, 0, 0]);
        assert_eq!(deserialize_map(&b).unwrap(), m);
        assert!(deserialize_map(&b[..b.len() - 1]).is_err());
        assert!(deserialize_map(&[]).unwrap().is_empty());
    }
}
