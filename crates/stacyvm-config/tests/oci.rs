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
}

#[test]
fn image_pull_settings_are_validated() {
    let c = from_sources(None, &[]).unwrap();
    assert!(c.providers.oci.pull_if_missing && c.providers.oci.insecure_registries.is_empty());
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_PULL_POLICY", "never")).unwrap();
    assert!(!c.providers.oci.pull_if_missing);
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_PULL_POLICY", "always")).unwrap_err();
    assert_eq!(err.key(), Some("providers.oci.pull_policy"));
    assert!(err.to_string().contains("if_missing, never"), "{err}");
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_INSECURE_REGISTRIES", "127.0.0.1:5000,reg.lan")).unwrap();
    assert_eq!(c.providers.oci.insecure_registries, ["127.0.0.1:5000", "reg.lan"]);
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_INSECURE_REGISTRIES", "http://reg.lan/v2")).unwrap_err();
    assert_eq!(err.key(), Some("providers.oci.insecure_registries"));
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_REGISTRY_AUTH_FILE", "/etc/stacyvm/auth.json")).unwrap();
    assert_eq!(c.providers.oci.registry_auth_file.as_deref(), Some(std::path::Path::new("/etc/stacyvm/auth.json")));
}
