//! sfr2l-deploy: what goes into a cluster. `istio` reads and validates the typed Istio and
//! Kubernetes objects, `manifests` renders the kustomize tree for a set of agents, `oci` packs the
//! filter and artifacts as OCI image layouts, and `lab_config` turns a manifest set into the
//! lab's rule and filter configuration so the lab runs what the cluster would; `mesh` plans and
//! drives a collection in a user's cluster.

pub mod istio;
pub mod lab_config;
pub mod manifests;
pub mod mesh;
pub mod oci;
