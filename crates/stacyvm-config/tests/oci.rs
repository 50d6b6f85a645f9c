//! `providers.oci.*` validation (additions of this project).

use std::net::Ipv4Addr;

use stacyvm_config::{from_sources, OciNetworkMode};

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

#[test]
fn oci_network_settings_are_validated() {
    let c = from_sources(None, &[]).unwrap();
    assert_eq!(c.providers.oci.network, OciNetworkMode::None, "network stays off unless asked for");
    assert_eq!(c.providers.oci.bridge_name, "stacyvm0");
    assert_eq!(c.providers.oci.subnet, (Ipv4Addr::new(10, 88, 0, 0), 16));
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_NETWORK", "bridge")).unwrap();
    assert_eq!(c.providers.oci.network, OciNetworkMode::Bridge);
    let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_NETWORK", "host")).unwrap_err();
    assert_eq!(err.key(), Some("providers.oci.network"));
    assert!(err.to_string().contains("none, bridge"), "{err}");
    for bad in ["", "a-very-long-bridge", "br 0", "br/0"] {
        let err = from_sources(Some(&format!("providers:\n  oci:\n    bridge_name: {bad:?}\n")), &[]).unwrap_err();
        assert_eq!(err.key(), Some("providers.oci.bridge_name"), "{bad:?}");
    }
    for (bad, why) in [
        ("10.88.0.0", "like 10.88.0.0/16"),
        ("10.88.0.1/16", "host bits"),
        ("10.88.0.0/31", "between 8 and 30"),
        ("fd00::/64", "not an IPv4"),
        ("10.88.0.0/x", "not a number"),
    ] {
        let err = from_sources(None, &env("STACYVM_PROVIDERS_OCI_SUBNET", bad)).unwrap_err();
        assert_eq!(err.key(), Some("providers.oci.subnet"), "{bad}");
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
    let c = from_sources(None, &env("STACYVM_PROVIDERS_OCI_SUBNET", "192.168.7.0/29")).unwrap();
    assert_eq!(c.providers.oci.subnet, (Ipv4Addr::new(192, 168, 7, 0), 29));
}
