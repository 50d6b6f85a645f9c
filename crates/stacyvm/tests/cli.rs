//! The `stacyvm` command line against a live server (the real binary, mock provider).

mod support;

use std::time::Duration;

use support::{Server, Workdir};

/// `stacyvm spawn` and the new sandbox's ID taken from its output.
fn spawn_id(server: &Server) -> String {
    let out = server.cli(&["spawn"]);
    let line = out.ok().trim();
    let id = line
        .strip_prefix("Sandbox ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected spawn output {line:?}"));
    assert!(is_sandbox_id(id), "{id:?}");
    id.to_string()
}

fn is_sandbox_id(id: &str) -> bool {
    id.strip_prefix("sb-").is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn version_prints_name_version_and_platform() {
    let workdir = Workdir::new();
    let mut cmd = workdir.command();
    cmd.arg("version");
    let out = support::run(cmd, Duration::from_secs(10));
    let expected =
        format!("stacyvm {} ({}/{})\n", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH);
    assert_eq!(out.ok(), expected);
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert!(out.stdout.ends_with("(linux/x86_64)\n"), "{}", out.stdout);
    }

    let mut cmd = workdir.command();
    cmd.args(["--json", "version"]);
    let out = support::run(cmd, Duration::from_secs(10));
    let v: serde_json::Value = serde_json::from_str(out.ok()).expect("--json version is JSON");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn help_of_every_subcommand_exits_zero() {
    let workdir = Workdir::new();
    let subcommands: &[&[&str]] = &[
        &["--help"],
        &["serve", "--help"],
        &["spawn", "--help"],
        &["exec", "--help"],
        &["list", "--help"],
        &["ls", "--help"],
        &["kill", "--help"],
        &["logs", "--help"],
        &["image", "--help"],
        &["image", "pull", "--help"],
        &["image", "import", "--help"],
        &["build-image", "--help"],
        &["version", "--help"],
        &["help"],
    ];
    for args in subcommands {
        let mut cmd = workdir.command();
        cmd.args(*args);
        let out = support::run(cmd, Duration::from_secs(10));
        assert!(out.ok().contains("Usage:"), "{args:?}: {out:#?}");
    }
}

#[test]
fn spawn_exec_list_logs_kill_round_trip() {
    let workdir = Workdir::new();
    let server = Server::start(&workdir, &[]);

    // Empty list.
    assert_eq!(server.cli(&["list"]).ok().trim(), "No active sandboxes");
    let empty: serde_json::Value = serde_json::from_str(server.cli(&["--json", "list"]).ok()).expect("json");
    assert_eq!(empty, serde_json::json!([]));

    // spawn (text): `Sandbox sb-… spawned (provider: mock, image: alpine:latest)`.
    let out = server.cli(&["spawn"]);
    let line = out.ok().trim_end();
    let id = line.strip_prefix("Sandbox ").and_then(|r| r.split_whitespace().next()).unwrap_or_default().to_string();
    assert!(is_sandbox_id(&id), "{line:?}");
    assert_eq!(line, format!("Sandbox {id} spawned (provider: mock, image: alpine:latest)"));
    assert!(workdir.sandbox_dir(&id).join("workspace").is_dir());

    // spawn (JSON).
    let out = server.cli(&["--json", "spawn", "--ttl", "10m"]);
    let sandbox: serde_json::Value = serde_json::from_str(out.ok()).expect("--json spawn prints JSON");
    let json_id = sandbox["id"].as_str().expect("id").to_string();
    assert!(is_sandbox_id(&json_id), "{sandbox}");
    assert_eq!(sandbox["state"], "running");
    assert_eq!(sandbox["provider"], "mock");
    assert_eq!(sandbox["image"], "alpine:latest");
    // Also decodes as the typed resource.
    let typed: stacyvm_types::sandbox::Sandbox = serde_json::from_value(sandbox).expect("Sandbox shape");
    assert_eq!(typed.id, json_id);

    // exec: argv mode passes words through untouched.
    assert_eq!(server.cli(&["exec", &id, "--", "echo", "hi"]).ok(), "hi\n");
    assert_eq!(server.cli(&["exec", &id, "--", "echo", "$HOME"]).ok(), "$HOME\n");
    assert_eq!(server.cli(&["exec", &id, "--", "printf", "%s|", "a b", "c"]).ok(), "a b|c|");
    // Commands run in the sandbox's workspace.
    let pwd = server.cli(&["exec", &id, "--", "pwd"]);
    assert_eq!(std::path::Path::new(pwd.ok().trim()), workdir.sandbox_dir(&id).join("workspace"));
    // --shell joins the words into one shell line.
    assert_eq!(server.cli(&["exec", "--shell", &id, "--", "echo $((1+2))"]).ok(), "3\n");
    assert_eq!(server.cli(&["exec", "--shell", &id, "--", "echo", "$((2*3))"]).ok(), "6\n");
    // stderr of the remote command goes to stderr.
    let out = server.cli(&["exec", "--shell", &id, "--", "echo oops >&2"]);
    assert_eq!((out.ok(), out.stderr.as_str()), ("", "oops\n"));

    // A nonzero remote exit code becomes the CLI's exit code.
    let out = server.cli(&["exec", &id, "--", "sh", "-c", "echo partial; exit 7"]);
    assert_eq!(out.code(), Some(7), "{out:#?}");
    assert_eq!(out.stdout, "partial\n");
    assert!(out.stderr.lines().any(|l| l == "exit code: 7"), "{out:#?}");
    let out = server.cli(&["exec", &id, "--", "false"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.stderr.contains("exit code: 1"), "{out:#?}");
    // --json exec prints the result and still exits with the remote code.
    let out = server.cli(&["--json", "exec", &id, "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.code(), Some(3), "{out:#?}");
    let result: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json exec prints JSON");
    assert_eq!(result["exit_code"], 3);

    // list / ls: a table with the documented columns.
    for cmd in ["list", "ls"] {
        let out = server.cli(&[cmd]);
        let text = out.ok();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
        assert_eq!(header, ["ID", "STATE", "PROVIDER", "IMAGE", "CREATED", "EXPIRES"], "{text}");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 2, "{text}");
        for sid in [&id, &json_id] {
            let row = rows.iter().find(|r| r[0] == sid.as_str()).unwrap_or_else(|| panic!("{sid} not in\n{text}"));
            assert_eq!(&row[1..4], ["running", "mock", "alpine:latest"], "{text}");
            assert_eq!(row.len(), 6, "{text}");
        }
    }
    let out = server.cli(&["--json", "list"]);
    let listed: serde_json::Value = serde_json::from_str(out.ok()).expect("--json list prints JSON");
    let listed = listed.as_array().expect("--json list is an array");
    let mut listed_ids: Vec<&str> = listed.iter().filter_map(|s| s["id"].as_str()).collect();
    listed_ids.sort_unstable();
    let mut expected = vec![id.as_str(), json_id.as_str()];
    expected.sort_unstable();
    assert_eq!(listed_ids, expected);

    // logs: the console lines, one per line.
    let out = server.cli(&["logs", &id]);
    let text = out.ok();
    assert!(text.lines().any(|l| l.contains(&format!("sandbox {id} created"))), "{text}");
    assert!(text.lines().any(|l| l.contains("exec: echo hi")), "{text}");
    let out = server.cli(&["logs", &id, "--lines", "1"]);
    assert_eq!(out.ok().lines().count(), 1, "{out:#?}");
    let lines: serde_json::Value = serde_json::from_str(server.cli(&["--json", "logs", &id]).ok()).expect("json");
    assert!(lines.as_array().is_some_and(|a| !a.is_empty()), "{lines}");

    // kill.
    assert_eq!(server.cli(&["kill", &id]).ok(), format!("Sandbox {id} destroyed\n"));
    assert!(!workdir.sandbox_dir(&id).exists());
    assert!(!server.cli(&["list"]).ok().contains(&id));
    // Destroying again is idempotent.
    server.cli(&["kill", &id]).ok();
    let out = server.cli(&["--json", "kill", &json_id]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).expect("--json kill prints JSON");
    assert_eq!(v, serde_json::json!({"id": json_id, "status": "destroyed"}));
    assert_eq!(server.cli(&["list"]).ok().trim(), "No active sandboxes");

    // Commands against a destroyed sandbox fail with the server's 404.
    let out = server.cli(&["exec", &id, "--", "true"]);
    assert!(out.failed().contains("HTTP 404"), "{out:#?}");
}

#[test]
fn errors_exit_nonzero_with_the_http_status() {
    let workdir = Workdir::new();
    let server = Server::start(&workdir, &[]);

    let out = server.cli(&["kill", "sb-nonexistent"]);
    let stderr = out.failed();
    assert!(stderr.contains("HTTP 404"), "{out:#?}");
    assert!(stderr.starts_with("error: "), "{out:#?}");
    let out = server.cli(&["kill", "sb-00000000"]);
    assert!(out.failed().contains("HTTP 404"), "{out:#?}");
    let out = server.cli(&["logs", "sb-00000000"]);
    assert!(out.failed().contains("HTTP 404"), "{out:#?}");
    let out = server.cli(&["exec", "sb-00000000", "--", "true"]);
    assert!(out.failed().contains("HTTP 404"), "{out:#?}");

    // Bad input is the server's 400, reported as such.
    let out = server.cli(&["spawn", "--ttl", "not-a-duration"]);
    assert!(out.failed().contains("HTTP 400"), "{out:#?}");

    // exec needs a command.
    let id = spawn_id(&server);
    let out = server.cli(&["exec", &id]);
    assert_eq!(out.code(), Some(2), "clap usage error: {out:#?}");

    // Nothing listening: a transport error, not a hang.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let mut cmd = workdir.command();
    cmd.args(["--server", &dead, "list"]);
    let out = support::run(cmd, Duration::from_secs(40));
    assert!(out.failed().starts_with("error: "), "{out:#?}");
}

#[test]
fn api_key_is_required_when_the_server_has_one() {
    let workdir = Workdir::new();
    let key = "test-secret-key-0123456789";
    let server = Server::start(&workdir, &[("STACYVM_AUTH_API_KEY", key)]);

    for args in [&["list"][..], &["spawn"][..]] {
        let out = server.cli(args);
        assert!(out.failed().contains("HTTP 401"), "{args:?} without a key: {out:#?}");
    }
    let out = server.cli(&["--api-key", "wrong-key", "list"]);
    assert!(out.failed().contains("HTTP 401"), "wrong key: {out:#?}");
    assert!(workdir.sandbox_dirs().is_empty(), "an unauthenticated spawn created a sandbox");

    // --api-key.
    let out = server.cli(&["--api-key", key, "spawn"]);
    assert!(out.ok().starts_with("Sandbox sb-"), "{out:#?}");
    assert!(server.cli(&["--api-key", key, "list"]).ok().starts_with("ID"));
    // STACYVM_API_KEY.
    let out = server.cli_env(&["list"], &[("STACYVM_API_KEY", key)]);
    assert!(out.ok().starts_with("ID"), "{out:#?}");
    let out = server.cli_env(&["--json", "list"], &[("STACYVM_API_KEY", key)]);
    let listed: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    // The key is not echoed back in errors.
    let out = server.cli_env(&["kill", "sb-00000000"], &[("STACYVM_API_KEY", key)]);
    assert!(out.failed().contains("HTTP 404"), "{out:#?}");
    assert!(!out.stderr.contains(key) && !out.stdout.contains(key), "{out:#?}");
}

#[test]
fn serve_without_a_provider_fails_fast_with_a_remedy() {
    let workdir = Workdir::new();
    let mut cmd = workdir.command();
    // `auto` would pick `oci` where crun is installed: make sure no runtime is found.
    cmd.arg("serve")
        .env("STACYVM_PROVIDERS_OCI_RUNTIME_PATH", "/nonexistent/crun")
        .env("STACYVM_SERVER_HOST", "127.0.0.1")
        .env("STACYVM_SERVER_PORT", support::free_port().to_string())
        .env("STACYVM_DATABASE_PATH", workdir.db_path())
        .env("STACYVM_PROVIDERS_MOCK_ROOT_DIR", workdir.mock_root());
    let out = support::run(cmd, Duration::from_secs(20));
    let stderr = out.failed();
    assert!(out.elapsed < Duration::from_secs(5), "took {:?}", out.elapsed);
    let remedy: Vec<&str> = stderr.lines().filter(|l| l.contains("STACYVM_PROVIDERS_DEFAULT=mock")).collect();
    assert_eq!(remedy.len(), 1, "expected one line with the remedy: {out:#?}");
    assert!(remedy[0].starts_with("error: "), "{out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
}

#[test]
fn serve_with_an_invalid_config_value_names_the_key() {
    let workdir = Workdir::new();
    let port = support::free_port();
    let mut cmd = workdir.command();
    cmd.arg("serve").envs(workdir.server_env(port)).env("STACYVM_DEFAULTS_TTL", "abc");
    let out = support::run(cmd, Duration::from_secs(20));
    let stderr = out.failed();
    assert!(out.elapsed < Duration::from_secs(5), "took {:?}", out.elapsed);
    assert!(stderr.contains("defaults.ttl"), "{out:#?}");
    assert!(stderr.lines().any(|l| l.starts_with("error: ") && l.contains("defaults.ttl")), "{out:#?}");
    assert_eq!(support::http_status(port, "GET", "/api/v1/health"), None, "nothing may be listening");
}

#[test]
fn serve_with_an_invalid_env_duration_names_the_variable() {
    let workdir = Workdir::new();
    let mut cmd = workdir.command();
    cmd.arg("serve").envs(workdir.server_env(support::free_port())).env("STACYVM_DEFAULTS_TTL", "abc");
    let out = support::run(cmd, Duration::from_secs(20));
    let stderr = out.failed();
    assert!(stderr.contains("defaults.ttl") && stderr.contains("STACYVM_DEFAULTS_TTL"), "{out:#?}");
}

#[test]
fn health_is_public_when_an_api_key_is_set() {
    let workdir = Workdir::new();
    let server = Server::start(&workdir, &[("STACYVM_AUTH_API_KEY", "k-api")]);
    for path in ["/api/v1/health", "/api/v1/live", "/api/v1/ready"] {
        assert_eq!(support::http_status(server.port, "GET", path), Some(200), "{path} without a key");
    }
}

#[test]
fn admin_routes_refuse_the_regular_api_key() {
    let workdir = Workdir::new();
    let server =
        Server::start(&workdir, &[("STACYVM_AUTH_API_KEY", "k-api"), ("STACYVM_AUTH_ADMIN_API_KEY", "k-admin")]);
    for path in ["/api/v1/admin/providers", "/api/v1/admin/diagnostics"] {
        let api = support::http_status_with(server.port, "GET", path, &[("X-API-Key", "k-api")]);
        assert_eq!(api, Some(403), "{path} with the regular key");
        let admin = support::http_status_with(server.port, "GET", path, &[("X-Admin-API-Key", "k-admin")]);
        assert_eq!(admin, Some(200), "{path} with the admin key");
    }
}
