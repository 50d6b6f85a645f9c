//! `providers.oci.*` validation (additions of this project).

use stacyvm_config::from_sources;

fn env(key: &str, value: &str) -> Vec<(String, String)> {
    vec![(key.to_string(), value.to_string())]
}

#[test]
fn oci_settings_are_validated() {
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_RUNTIME", "docker")).unwrap_err();
    assert_eq!(err.key(), Some("providers.oci.runtime"));
    assert!(err.to_string().contains("crun, runc, runsc"), "{err}");
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_PIDS_LIMIT", "0")).unwrap_err();
    assert_eq!(err.key(), Some("providers.oci.pids_limit"));
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_DATA_DIR", "/srv/oci")).unwrap();
    assert_eq!(c.providers.oci.images_dir, std::path::Path::new("/srv/oci/images"));
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_IMAGES_DIR", "/img")).unwrap();
    assert_eq!(c.providers.oci.images_dir, std::path::Path::new("/img"));
    assert!(!c.providers.oci.readonly_rootfs, "writable by default");
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_READONLY_ROOTFS", "true")).unwrap();
    assert!(c.providers.oci.readonly_rootfs);
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_READONLY_ROOTFS", "maybe")).unwrap_err();
    assert!(err.to_string().contains("providers.oci.readonly_rootfs"), "{err}");
}
