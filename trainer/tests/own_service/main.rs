//! Your own service, end to end without a cluster: `study init` from your rules and a real
//! server (`study_init`), and a collection in your cluster planned and driven through `kubectl`
//! (`mesh`). One test binary: each one links the whole product.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

mod mesh;
mod study_init;
