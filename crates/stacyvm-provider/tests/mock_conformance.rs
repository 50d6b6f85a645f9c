//! The mock provider passes the shared conformance suite.

use std::sync::Arc;

use stacyvm_provider::mock::MockProvider;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_provider_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::new(dir.path().join("mock")).unwrap();
    stacyvm_provider::conformance::run(Arc::new(provider)).await;
}
