//! `stacyvm version`.

/// Prints `stacyvm <version> (<os>/<arch>)`.
pub fn run(json: bool) {
    let version = env!("CARGO_PKG_VERSION");
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if json {
        println!("{}", serde_json::json!({"version": version, "os": os, "arch": arch}));
    } else {
        println!("stacyvm {version} ({os}/{arch})");
    }
}
