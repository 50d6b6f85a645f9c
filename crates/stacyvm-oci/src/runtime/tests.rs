use super::error::{is_not_found_message, log_errors, trim_message, MAX_ERROR_LEN};
use super::*;

#[test]
fn ids() {
    for ok in ["a", "sb-1", "A_b.c-9", &"x".repeat(64)] {
        validate_id(ok).unwrap();
    }
    for bad in ["", "-rf", ".hidden", "a/b", "a b", "ä", &"x".repeat(65), "..", "a\n"] {
        assert!(validate_id(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn kinds() {
    assert_eq!("crun".parse::<RuntimeKind>().unwrap(), RuntimeKind::Crun);
    assert_eq!("RUNC".parse::<RuntimeKind>().unwrap(), RuntimeKind::Runc);
    assert_eq!("gvisor".parse::<RuntimeKind>().unwrap(), RuntimeKind::Runsc);
    assert!("docker".parse::<RuntimeKind>().is_err());
    assert_eq!(serde_json::to_string(&RuntimeKind::Runsc).unwrap(), "\"runsc\"");
}

#[test]
fn global_args_per_kind() {
    let r = OciRuntime::with_binary(RuntimeKind::Runsc, "/usr/bin/runsc", "/run/stacyvm/runsc");
    let a: Vec<String> = r.global_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
    assert_eq!(a, ["--root", "/run/stacyvm/runsc", "--platform=ptrace", "--network=none", "--oci-seccomp"]);
    let mut r = OciRuntime::with_binary(RuntimeKind::Crun, "/usr/bin/crun", "/run/stacyvm/crun");
    r.extra_args.push("--debug".into());
    let a: Vec<String> = r.global_args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
    assert_eq!(a, ["--root", "/run/stacyvm/crun", "--debug"]);
}

#[test]
fn parses_state_of_every_runtime() {
    let runc = r#"{"ociVersion":"1.0.2-dev","id":"x","pid":4242,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","owner":""}"#;
    let s: State = serde_json::from_str(runc).unwrap();
    assert_eq!((s.status, s.pid), (Status::Running, Some(4242)));
    let stopped = r#"{"ociVersion":"1.0.0","id":"x","pid":0,"status":"stopped","bundle":"/b"}"#;
    let s: State = serde_json::from_str(stopped).unwrap();
    assert_eq!((s.status, s.pid), (Status::Stopped, None));
    let odd: State = serde_json::from_str(r#"{"id":"x","status":"weird"}"#).unwrap();
    assert_eq!(odd.status, Status::Unknown("weird".into()));
}

#[test]
fn extracts_log_errors() {
    let runsc = r#"{"msg":"Error setting up root FS","level":"error","time":"t"}{"msg":"just info","level":"info"}{"msg":"creating container: EOF","level":"error","time":"t"}"#;
    assert_eq!(log_errors(runsc), "Error setting up root FS; creating container: EOF");
    let runc = "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"t\"}\n";
    assert_eq!(log_errors(runc), "container does not exist");
    assert_eq!(log_errors("plain text\n\nline two\n"), "plain text; line two");
    let text = "time=\"x\" level=error msg=\"container does not exist\"";
    assert_eq!(log_errors(&format!("{text}\n")), text);
    assert!(is_not_found_message("loading container \"nope\": file does not exist"));
    assert!(is_not_found_message("error opening file `root/nope/status`: No such file or directory"));
}

#[test]
fn trims_long_messages_at_char_boundary() {
    let long = "é".repeat(5000);
    let t = trim_message(&long);
    assert!(t.len() <= MAX_ERROR_LEN + "…".len());
    assert!(t.starts_with('…'));
}

#[test]
fn which_finds_sh() {
    assert!(which("sh").is_some());
    assert!(which("definitely-not-a-binary-stacyvm").is_none());
}

#[tokio::test]
async fn missing_binary_is_reported() {
    let r = OciRuntime::with_binary(RuntimeKind::Crun, "/nonexistent/crun", "/tmp/x");
    assert!(matches!(r.detect().await, Err(OciError::BinaryNotFound { .. })));
    assert!(matches!(r.start("a").await, Err(OciError::Io { .. })));
    assert!(matches!(r.start("-a").await, Err(OciError::InvalidId(_))));
}
