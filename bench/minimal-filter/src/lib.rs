//! The smallest useful V8 filter: one counter per status code, nothing else. Any filter pays the
//! proxy-wasm ABI; this is the floor the sfr2l filter is compared with in `make bench`.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, MetricType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root(Rc::new(RefCell::new(HashMap::new())))) });
}}

struct Root(Rc<RefCell<HashMap<i64, u32>>>);
impl Context for Root {}
impl RootContext for Root {
    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http(Rc::clone(&self.0))))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http(Rc<RefCell<HashMap<i64, u32>>>);
impl Context for Http {}
impl HttpContext for Http {
    fn on_log(&mut self) {
        let Ok(Some(b)) = hostcalls::get_property(vec!["response", "code"]) else { return };
        let Some(code) = b.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok()).map(i64::from_le_bytes) else { return };
        let mut ids = self.0.borrow_mut();
        let id = match ids.get(&code) {
            Some(id) => *id,
            None => match hostcalls::define_metric(MetricType::Counter, &format!("minimal_rq_{code}")) {
                Ok(id) => {
                    ids.insert(code, id);
                    id
                }
                Err(_) => return,
            },
        };
        let _ = hostcalls::increment_metric(id, 1);
    }
}
