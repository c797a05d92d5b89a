//! OCI image layouts (image-spec v1.1 `oci-layout` + `index.json` + `blobs/sha256/`) written
//! without a container daemon, byte-reproducible: the filter as Istio's two Wasm image variants
//! (istio `pkg/wasm/imagefetcher.go`; spec in solo-io/wasm `spec/`) and files as an ORAS-style
//! artifact (one layer per file, named by `org.opencontainers.image.title`).
//!
//! - compat: an ordinary image, one `tar+gzip` layer holding `plugin.wasm`, manifest annotation
//!   `module.wasm.image/variant: compat`; any registry and docker/podman/crane/skopeo handle it.
//! - oci: the Wasm artifact variant, two layers as istio-agent requires: the runtime config
//!   (`application/vnd.module.wasm.config.v1+json`) and the raw module
//!   (`application/vnd.module.wasm.content.layer.v1+wasm`).
//!
//! Istio checks a WasmPlugin's `sha256` against the image's manifest digest for `oci://` URLs and
//! against the module's own sha256 for `http(s)://` URLs; [`Layout::manifest_digest`] gives the first.

pub mod archive;

use anyhow::{Context, Result};
use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest,
};
use serde_json::json;
use sfr2l_files::{sha256_hex, write_atomic};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The file name istio-agent looks for in a compat image's layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// A blob and what its descriptor says of it.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob { media_type: media_type.into(), bytes, annotations: BTreeMap::new() }
    }

    pub fn digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.bytes))
    }

    /// The blob's OCI descriptor (media type, sha256 digest, size, annotations).
    pub fn descriptor(&self) -> Result<Descriptor> {
        let digest: Digest = Sha256Digest::from_str(&sha256_hex(&self.bytes))?.into();
        let mut d = DescriptorBuilder::default()
            .media_type(MediaType::from(self.media_type.as_str()))
            .digest(digest)
            .size(self.bytes.len() as u64);
        if !self.annotations.is_empty() {
            d = d.annotations(annotation_map(&self.annotations));
        }
        Ok(d.build()?)
    }
}

fn annotation_map(a: &BTreeMap<String, String>) -> HashMap<String, String> {
    a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// JSON bytes in a fixed form: through `serde_json::Value`, whose maps keep their keys sorted
/// (no `preserve_order` here), so oci-spec's hash-map annotations serialise the same every time.
fn json_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::to_value(v)?)?)
}

/// One image (manifest, config, layers) tagged `tag` in its own layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub tag: String,
}

impl Layout {
    fn build(
        tag: &str,
        config: Blob,
        layers: Vec<Blob>,
        annotations: BTreeMap<String, String>,
        artifact_type: Option<&str>,
    ) -> Result<Layout> {
        let mut m = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor()?)
            .layers(layers.iter().map(Blob::descriptor).collect::<Result<Vec<_>>>()?);
        if !annotations.is_empty() {
            m = m.annotations(annotation_map(&annotations));
        }
        if let Some(t) = artifact_type {
            m = m.artifact_type(MediaType::from(t));
        }
        let manifest = Blob::new(MANIFEST, json_bytes(&m.build()?)?);
        Ok(Layout { manifest, config, layers, tag: tag.into() })
    }

    /// `sha256:<hex>` of the manifest: what a registry reports and what Istio pins for `oci://`.
    pub fn manifest_digest(&self) -> String {
        self.manifest.digest()
    }

    /// `index.json`: the one manifest, named by the tag.
    pub fn index(&self) -> Result<Vec<u8>> {
        let mut d = self.manifest.descriptor()?;
        d.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), self.tag.clone())])));
        let index =
            ImageIndexBuilder::default().schema_version(2u32).media_type(MediaType::ImageIndex).manifests(vec![d]);
        json_bytes(&index.build()?)
    }

    /// Writes the layout into `dir` (replacing `index.json`; blobs are content-addressed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        for b in std::iter::once(&self.manifest).chain(std::iter::once(&self.config)).chain(&self.layers) {
            write_atomic(&blobs.join(sha256_hex(&b.bytes)), &b.bytes)?;
        }
        let layout = OciLayoutBuilder::default().image_layout_version("1.0.0").build()?;
        write_atomic(&dir.join("oci-layout"), &json_bytes(&layout)?)?;
        write_atomic(&dir.join("index.json"), &self.index()?)
    }
}

/// The compat variant: a plain image whose one layer holds `plugin.wasm`.
pub fn compat_image(wasm: &[u8], tag: &str) -> Result<Layout> {
    let tar = archive::tar(&[(PLUGIN_FILE, wasm)])?;
    let layer = Blob::new(LAYER_TAR_GZIP, archive::gzip(&tar)?);
    let config = ImageConfigurationBuilder::default()
        .architecture("wasm")
        .os(Os::Other("wasip1".into()))
        .config(ConfigBuilder::default().build()?)
        .rootfs(RootFsBuilder::default().typ("layers").diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))]).build()?)
        .build()?;
    let config = Blob::new(IMAGE_CONFIG, json_bytes(&config)?);
    let annotations = BTreeMap::from([(VARIANT_ANNOTATION.to_string(), "compat".to_string())]);
    Layout::build(tag, config, vec![layer], annotations, None)
}

/// The oci variant: runtime config and raw module as two layers.
pub fn artifact_image(wasm: &[u8], tag: &str, root_id: &str) -> Result<Layout> {
    // istio-agent's runtime config (solo-io/wasm spec), not an OCI type.
    let runtime = json!({
        "type": "envoy_proxy",
        "abiVersions": ["proxy_abi_version_0_2_1"],
        "config": {"rootIds": [root_id]},
    });
    let config = Blob::new(WASM_CONFIG, json_bytes(&runtime)?);
    let mut module = Blob::new(WASM_LAYER, wasm.to_vec());
    module.annotations.insert(TITLE.into(), PLUGIN_FILE.into());
    Layout::build(tag, config.clone(), vec![config, module], BTreeMap::new(), None)
}

/// Files as an artifact `oras pull` unpacks: one raw layer per file, titled by its relative path.
pub fn files_artifact(files: &[(String, Vec<u8>)], tag: &str, artifact_type: &str) -> Result<Layout> {
    let layers = files
        .iter()
        .map(|(name, bytes)| {
            let mut b = Blob::new("application/octet-stream", bytes.clone());
            b.annotations.insert(TITLE.into(), name.clone());
            b
        })
        .collect();
    Layout::build(tag, Blob::new(EMPTY_CONFIG, b"{}".to_vec()), layers, BTreeMap::new(), Some(artifact_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn variants_follow_istio_media_types() {
        let c = compat_image(b"\0asm\x01\0\0\0", "t").unwrap();
        let m: Value = serde_json::from_slice(&c.manifest.bytes).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], LAYER_TAR_GZIP);
        assert_eq!(m["annotations"][VARIANT_ANNOTATION], "compat");
        let o = artifact_image(b"\0asm\x01\0\0\0", "t", "sfr2l").unwrap();
        let m: Value = serde_json::from_slice(&o.manifest.bytes).unwrap();
        let types: Vec<&str> =
            m["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
        assert_eq!(types, [WASM_CONFIG, WASM_LAYER]);
        assert_eq!(m["config"]["mediaType"], WASM_CONFIG);
    }

    #[test]
    fn digests_follow_content_only() {
        let a = compat_image(b"\0asm1", "t").unwrap();
        assert_eq!(a.manifest_digest(), compat_image(b"\0asm1", "t").unwrap().manifest_digest());
        assert_ne!(a.manifest_digest(), compat_image(b"\0asm2", "t").unwrap().manifest_digest());
        assert_eq!(a.manifest_digest(), compat_image(b"\0asm1", "other-tag").unwrap().manifest_digest());
    }
}
