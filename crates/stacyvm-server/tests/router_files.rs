//! Router tests for the eight file routes under `/api/v1/sandboxes/{id}/files`.

mod support;

use axum::http::Method;
use serde_json::json;
use support::{keys, Harness};

const HOST_SECRET: &str = "/etc/passwd";

#[tokio::test]
async fn write_then_read_is_byte_exact() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let content = "hello world\n  ünïcödé ✓\r\nno trailing newline";
    h.write_file(&id, "/workspace/deep/er/a.txt", content).await;
    let res = h.read_file(&id, "/workspace/deep/er/a.txt").await;
    assert_eq!(res.status.as_u16(), 200);
    assert_eq!(res.content_type(), "application/octet-stream");
    assert_eq!(res.header("content-length"), Some(content.len().to_string().as_str()));
    assert_eq!(&res.body[..], content.as_bytes());
    // It really is inside the sandbox directory on the host.
    let on_host = std::fs::read(h.sandbox_dir(&id).join("workspace/deep/er/a.txt")).unwrap();
    assert_eq!(on_host, content.as_bytes());
    // Overwrite; an empty file; a relative path resolves under /workspace.
    h.write_file(&id, "/workspace/deep/er/a.txt", "v2").await;
    assert_eq!(&h.read_file(&id, "/workspace/deep/er/a.txt").await.body[..], b"v2");
    h.write_file(&id, "/workspace/empty", "").await;
    let res = h.read_file(&id, "/workspace/empty").await;
    assert_eq!((res.status.as_u16(), res.body.len()), (200, 0));
    h.write_file(&id, "rel.txt", "r").await;
    assert_eq!(&h.read_file(&id, "/workspace/rel.txt").await.body[..], b"r");
    // A command sees what the API wrote, and vice versa.
    assert_eq!(h.run(&id, "cat deep/er/a.txt").await["stdout"], "v2");
    h.run(&id, "printf 'from exec' > made.txt").await;
    assert_eq!(&h.read_file(&id, "/workspace/made.txt").await.body[..], b"from exec");
    // Query values are URL-decoded (spaces, %2F).
    h.write_file(&id, "/workspace/with space.txt", "s").await;
    let res = h.get(&format!("/api/v1/sandboxes/{id}/files?path=%2Fworkspace%2Fwith+space.txt")).await;
    assert_eq!(&res.body[..], b"s");
}

#[tokio::test]
async fn base64_encoding_writes_binary() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let url = h.files_url(&id, "", &[]);
    // 0x00 0xFF 0x10 0x80 0x7F
    let res = h.post(&url, json!({"path": "/workspace/bin.dat", "content": "AP8QgH8=", "encoding": "base64"})).await;
    assert_eq!(res.ok_json(200), json!({"status": "written"}));
    let res = h.read_file(&id, "/workspace/bin.dat").await;
    assert_eq!(&res.body[..], &[0x00, 0xFF, 0x10, 0x80, 0x7F]);
    let res = h.post(&url, json!({"path": "/workspace/bad.dat", "content": "!!!", "encoding": "base64"})).await;
    res.err(400, "BAD_REQUEST");
    let res = h.post(&url, json!({"path": "/workspace/bad.dat", "content": "x", "encoding": "rot13"})).await;
    res.err(400, "BAD_REQUEST");
    h.stat(&id, "/workspace/bad.dat").await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn stat_shape() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/a.txt", "hello world").await;
    let info = h.stat(&id, "/workspace/a.txt").await.ok_json(200);
    assert_eq!(keys(&info), ["is_dir", "mod_time", "mode", "name", "path", "size"]);
    assert_eq!(info["path"], "/workspace/a.txt");
    assert_eq!(info["name"], "a.txt");
    assert_eq!(info["size"], 11);
    assert_eq!(info["is_dir"], false);
    assert_eq!(info["mode"], "0644");
    let mtime = info["mod_time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(mtime).is_ok() && mtime.ends_with('Z'), "{mtime}");
    let dir = h.stat(&id, "/workspace").await.ok_json(200);
    assert_eq!(
        (dir["is_dir"].as_bool(), dir["name"].as_str(), dir["path"].as_str()),
        (Some(true), Some("workspace"), Some("/workspace"))
    );
    // Relative input still yields an absolute path.
    assert_eq!(h.stat(&id, "a.txt").await.ok_json(200)["path"], "/workspace/a.txt");
    h.stat(&id, "/workspace/missing").await.err(404, "NOT_FOUND");
    let msg = h.get(&h.files_url(&id, "/stat", &[])).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "path query parameter required");
    h.get(&h.files_url(&id, "/stat", &[("path", "")])).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn write_with_mode() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let url = h.files_url(&id, "", &[]);
    h.post(&url, json!({"path": "/workspace/run.sh", "content": "#!/bin/sh\necho ran\n", "mode": "0755"}))
        .await
        .ok_json(200);
    assert_eq!(h.stat(&id, "/workspace/run.sh").await.ok_json(200)["mode"], "0755");
    assert_eq!(h.run(&id, "./run.sh").await["stdout"], "ran\n");
    h.post(&url, json!({"path": "/workspace/x", "content": "", "mode": "600"})).await.ok_json(200);
    assert_eq!(h.stat(&id, "/workspace/x").await.ok_json(200)["mode"], "0600");
    h.post(&url, json!({"path": "/workspace/y", "content": "", "mode": "rwx"})).await.err(400, "BAD_REQUEST");
    h.stat(&id, "/workspace/y").await.err(404, "NOT_FOUND");
}

#[tokio::test]
async fn invalid_writes_are_400() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let url = h.files_url(&id, "", &[]);
    h.write_file(&id, "/workspace/dir/f", "f").await;
    let msg = h.post(&url, json!({"content": "x"})).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "invalid input: path is required");
    h.post(&url, json!({"path": "/workspace/dir", "content": "x"})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"path": "/", "content": "x"})).await.err(400, "BAD_REQUEST");
    let msg = h.post_raw(&url, Some("application/json"), "{").await.err(400, "BAD_REQUEST");
    assert!(msg.starts_with("invalid request body"), "{msg}");
    h.post(&url, json!({"path": 5})).await.err(400, "BAD_REQUEST");
    assert!(h.stat(&id, "/workspace/dir").await.ok_json(200)["is_dir"].as_bool().unwrap());
}

#[tokio::test]
async fn list_children() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/b.txt", "bb").await;
    h.write_file(&id, "/workspace/a.txt", "a").await;
    h.write_file(&id, "/workspace/sub/c.txt", "ccc").await;
    // Default path is /.
    let root = h.get(&h.files_url(&id, "/list", &[])).await.ok_json(200);
    let names: Vec<&str> = root.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"workspace"), "{names:?}");
    let root_paths: Vec<&str> = root.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(root_paths.contains(&"/workspace"), "{root_paths:?}");
    let ws = h.get(&h.files_url(&id, "/list", &[("path", "/workspace")])).await.ok_json(200);
    let entries = ws.as_array().unwrap();
    let summary: Vec<(&str, &str, u64, bool)> = entries
        .iter()
        .map(|e| {
            assert_eq!(keys(e), ["is_dir", "mod_time", "mode", "name", "path", "size"]);
            (
                e["path"].as_str().unwrap(),
                e["name"].as_str().unwrap(),
                e["size"].as_u64().unwrap(),
                e["is_dir"].as_bool().unwrap(),
            )
        })
        .filter(|(_, _, _, d)| !d)
        .collect();
    assert_eq!(summary, [("/workspace/a.txt", "a.txt", 1, false), ("/workspace/b.txt", "b.txt", 2, false)]);
    assert!(entries.iter().any(|e| e["name"] == "sub" && e["is_dir"] == true));
    // Only direct children.
    assert!(!entries.iter().any(|e| e["name"] == "c.txt"));
    // Empty directory: [].
    h.run(&id, "mkdir empty").await;
    let res = h.get(&h.files_url(&id, "/list", &[("path", "/workspace/empty")])).await;
    assert_eq!(res.ok_json(200), json!([]));
    h.get(&h.files_url(&id, "/list", &[("path", "/workspace/missing")])).await.err(404, "NOT_FOUND");
    h.get(&h.files_url(&id, "/list", &[("path", "/workspace/a.txt")])).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn glob_matches_and_never_null() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    for name in ["a.log", "b.log", "c.txt"] {
        h.write_file(&id, &format!("/workspace/{name}"), name).await;
    }
    let res = h.get(&h.files_url(&id, "/glob", &[("pattern", "/workspace/*.log")])).await;
    assert_eq!(res.ok_json(200), json!(["/workspace/a.log", "/workspace/b.log"]));
    // A relative pattern is taken under /workspace and still yields absolute paths.
    let res = h.get(&h.files_url(&id, "/glob", &[("pattern", "*.log")])).await;
    assert_eq!(res.ok_json(200), json!(["/workspace/a.log", "/workspace/b.log"]));
    let res = h.get(&h.files_url(&id, "/glob", &[("pattern", "/workspace/?.txt")])).await;
    assert_eq!(res.ok_json(200), json!(["/workspace/c.txt"]));
    let res = h.get(&h.files_url(&id, "/glob", &[("pattern", "/workspace/*.none")])).await;
    assert_eq!(res.ok_json(200), json!([]));
    assert_eq!(res.text(), "[]");
    let msg = h.get(&h.files_url(&id, "/glob", &[])).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "pattern query parameter required");
    let msg = h.get(&h.files_url(&id, "/glob", &[("pattern", "")])).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "pattern query parameter required");
    h.get(&h.files_url(&id, "/glob", &[("pattern", "/workspace/../../*")])).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn missing_path_parameter_is_400() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    for (method, suffix) in [(Method::GET, ""), (Method::DELETE, ""), (Method::GET, "/stat")] {
        let res = h.call(method.clone(), &h.files_url(&id, suffix, &[]), &[], None).await;
        assert_eq!(res.err(400, "BAD_REQUEST"), "path query parameter required", "{method} {suffix}");
    }
}

#[tokio::test]
async fn move_renames_and_creates_parent() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/old.txt", "data").await;
    let url = h.files_url(&id, "/move", &[]);
    let res = h.post(&url, json!({"old_path": "/workspace/old.txt", "new_path": "/workspace/new/dir/n.txt"})).await;
    assert_eq!(res.ok_json(200), json!({"status": "moved"}));
    assert_eq!(&h.read_file(&id, "/workspace/new/dir/n.txt").await.body[..], b"data");
    h.read_file(&id, "/workspace/old.txt").await.err(404, "NOT_FOUND");
    // Missing source: 404, nothing created.
    let res = h.post(&url, json!({"old_path": "/workspace/ghost", "new_path": "/workspace/g2"})).await;
    res.err(404, "NOT_FOUND");
    h.stat(&id, "/workspace/g2").await.err(404, "NOT_FOUND");
    // Bad input.
    h.post(&url, json!({"old_path": "", "new_path": "/workspace/x"})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"old_path": "/workspace/new/dir/n.txt", "new_path": ""})).await.err(400, "BAD_REQUEST");
    h.post(&url, json!({"old_path": "/workspace/new/dir/n.txt", "new_path": "/workspace/../../x"}))
        .await
        .err(400, "BAD_REQUEST");
    assert_eq!(&h.read_file(&id, "/workspace/new/dir/n.txt").await.body[..], b"data");
}

#[tokio::test]
async fn chmod_modes() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/s.sh", "echo").await;
    let url = h.files_url(&id, "/chmod", &[]);
    for (mode, want) in [("755", "0755"), ("0700", "0700"), ("0644", "0644")] {
        let res = h.post(&url, json!({"path": "/workspace/s.sh", "mode": mode})).await;
        assert_eq!(res.ok_json(200), json!({"status": "chmod applied"}));
        assert_eq!(h.stat(&id, "/workspace/s.sh").await.ok_json(200)["mode"], want, "chmod {mode}");
    }
    for bad in ["999", "rwx", "", "-1", "0o755", "77777"] {
        h.post(&url, json!({"path": "/workspace/s.sh", "mode": bad})).await.err(400, "BAD_REQUEST");
    }
    assert_eq!(h.stat(&id, "/workspace/s.sh").await.ok_json(200)["mode"], "0644", "bad modes change nothing");
    h.post(&url, json!({"path": "/workspace/ghost", "mode": "755"})).await.err(404, "NOT_FOUND");
    h.post(&url, json!({"path": "", "mode": "755"})).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn delete_files_and_directories() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.write_file(&id, "/workspace/f.txt", "f").await;
    let res = h.delete(&h.files_url(&id, "", &[("path", "/workspace/f.txt")])).await;
    assert_eq!(res.ok_json(200), json!({"status": "deleted"}));
    h.read_file(&id, "/workspace/f.txt").await.err(404, "NOT_FOUND");
    h.delete(&h.files_url(&id, "", &[("path", "/workspace/f.txt")])).await.err(404, "NOT_FOUND");

    h.write_file(&id, "/workspace/d/nested/x.txt", "x").await;
    // Non-empty directory without recursive (or with anything but the literal `true`): 400.
    for q in [vec![], vec![("recursive", "false")], vec![("recursive", "1")], vec![("recursive", "TRUE")]] {
        let mut query = vec![("path", "/workspace/d")];
        query.extend(q.iter().copied());
        let res = h.delete(&h.files_url(&id, "", &query)).await;
        res.err(400, "BAD_REQUEST");
        assert_eq!(&h.read_file(&id, "/workspace/d/nested/x.txt").await.body[..], b"x", "{q:?}");
    }
    let res = h.delete(&h.files_url(&id, "", &[("path", "/workspace/d"), ("recursive", "true")])).await;
    assert_eq!(res.ok_json(200), json!({"status": "deleted"}));
    h.stat(&id, "/workspace/d").await.err(404, "NOT_FOUND");
    assert!(!h.sandbox_dir(&id).join("workspace/d").exists());
    // An empty directory goes without recursive.
    h.run(&id, "mkdir e").await;
    h.delete(&h.files_url(&id, "", &[("path", "/workspace/e")])).await.ok_json(200);
    // The sandbox root itself is refused.
    h.delete(&h.files_url(&id, "", &[("path", "/"), ("recursive", "true")])).await.err(400, "BAD_REQUEST");
    assert!(h.sandbox_dir(&id).join("workspace").is_dir());
}

#[tokio::test]
async fn read_errors() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let msg = h.read_file(&id, "/workspace/missing.txt").await.err(404, "NOT_FOUND");
    assert_eq!(msg, "file not found: /workspace/missing.txt");
    h.read_file(&id, "/workspace").await.err(400, "BAD_REQUEST");
    let msg = h.get(&h.files_url(&id, "", &[])).await.err(400, "BAD_REQUEST");
    assert_eq!(msg, "path query parameter required");
    h.get(&h.files_url(&id, "", &[("path", "")])).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn traversal_is_refused() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let marker = format!("stacyvm-escape-{}.txt", &id[3..]);
    let escape = format!("/workspace/../../{marker}");
    for (method, suffix, query) in [
        (Method::GET, "", vec![("path", "/workspace/../../etc/passwd")]),
        (Method::GET, "/stat", vec![("path", "/workspace/../../etc/passwd")]),
        (Method::GET, "/list", vec![("path", "/workspace/../..")]),
        (Method::DELETE, "", vec![("path", "/workspace/../../etc/passwd")]),
    ] {
        let res = h.call(method.clone(), &h.files_url(&id, suffix, &query), &[], None).await;
        res.err(400, "BAD_REQUEST");
    }
    let url = h.files_url(&id, "", &[]);
    let msg = h.post(&url, json!({"path": escape, "content": "pwned"})).await.err(400, "BAD_REQUEST");
    assert!(msg.starts_with("invalid input:"), "{msg}");
    // Nothing was written anywhere near the sandbox.
    assert!(!h.mock_root.join(&marker).exists());
    assert!(!h.root.path().join(&marker).exists());
    assert!(!h.sandbox_dir(&id).join(&marker).exists());
    let chmod = h.files_url(&id, "/chmod", &[]);
    h.post(&chmod, json!({"path": "/workspace/../../etc/passwd", "mode": "777"})).await.err(400, "BAD_REQUEST");
}

#[tokio::test]
async fn symlink_escape_is_refused() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    h.run(&id, "ln -s /etc etclink && ln -s /etc/passwd pw && ln -s ../../.. up").await;
    for path in ["/workspace/etclink/passwd", "/workspace/pw", "/workspace/up/etc/passwd"] {
        let res = h.read_file(&id, path).await;
        res.err(400, "BAD_REQUEST");
        assert!(!res.text().contains("root:"), "host file leaked through {path}");
        h.stat(&id, path).await.err(400, "BAD_REQUEST");
    }
    h.get(&h.files_url(&id, "/list", &[("path", "/workspace/etclink")])).await.err(400, "BAD_REQUEST");
    let url = h.files_url(&id, "", &[]);
    let marker = format!("stacyvm-symlink-{}", &id[3..]);
    h.post(&url, json!({"path": format!("/workspace/up/{marker}"), "content": "x"})).await.err(400, "BAD_REQUEST");
    assert!(!h.root.path().join(&marker).exists(), "the symlink's target directory is untouched");
    let chmod = h.files_url(&id, "/chmod", &[]);
    h.post(&chmod, json!({"path": "/workspace/etclink/passwd", "mode": "777"})).await.err(400, "BAD_REQUEST");
    // The link itself may be deleted; its target is untouched.
    h.delete(&h.files_url(&id, "", &[("path", "/workspace/etclink")])).await.ok_json(200);
    assert!(std::path::Path::new(HOST_SECRET).exists());
}

#[tokio::test]
async fn absolute_host_paths_stay_inside_the_sandbox() {
    let h = Harness::new().await;
    let id = h.spawn().await;
    let res = h.read_file(&id, HOST_SECRET).await;
    res.err(404, "NOT_FOUND");
    assert!(!res.text().contains("root:"));
    h.stat(&id, HOST_SECRET).await.err(404, "NOT_FOUND");
    // Writing /etc/passwd writes the sandbox's own file, never the host's.
    h.write_file(&id, HOST_SECRET, "sandbox-owned").await;
    assert_eq!(&h.read_file(&id, HOST_SECRET).await.body[..], b"sandbox-owned");
    assert_eq!(std::fs::read(h.sandbox_dir(&id).join("etc/passwd")).unwrap(), b"sandbox-owned");
    assert_ne!(std::fs::read(HOST_SECRET).unwrap(), b"sandbox-owned");
}

#[tokio::test]
async fn body_over_limit_is_400_and_writes_nothing() {
    let h = Harness::builder().http(|s| s.max_body_bytes = 1024).build().await;
    let id = h.spawn().await;
    let url = h.files_url(&id, "", &[]);
    let big = "x".repeat(4096);
    let msg = h.post(&url, json!({"path": "/workspace/big.txt", "content": big})).await.err(400, "BAD_REQUEST");
    assert!(msg.contains("too large"), "{msg}");
    h.stat(&id, "/workspace/big.txt").await.err(404, "NOT_FOUND");
    assert!(!h.sandbox_dir(&id).join("workspace/big.txt").exists());
    // Under the limit is fine.
    h.write_file(&id, "/workspace/small.txt", "ok").await;
    // Other JSON routes share the limit.
    let res = h.post("/api/v1/sandboxes", json!({"metadata": {"pad": "y".repeat(4096)}})).await;
    res.err(400, "BAD_REQUEST");
    assert_eq!(h.list_ids().await.len(), 1);
}

#[tokio::test]
async fn every_file_route_404s_for_unknown_sandbox() {
    let h = Harness::new().await;
    let id = "sb-nonexistent";
    let p = [("path", "/workspace/a")];
    let cases = [
        (Method::POST, h.files_url(id, "", &[]), Some(json!({"path": "/workspace/a", "content": "x"}))),
        (Method::GET, h.files_url(id, "", &p), None),
        (Method::DELETE, h.files_url(id, "", &p), None),
        (Method::GET, h.files_url(id, "/list", &p), None),
        (Method::GET, h.files_url(id, "/stat", &p), None),
        (Method::GET, h.files_url(id, "/glob", &[("pattern", "/workspace/*")]), None),
        (Method::POST, h.files_url(id, "/move", &[]), Some(json!({"old_path": "/a", "new_path": "/b"}))),
        (Method::POST, h.files_url(id, "/chmod", &[]), Some(json!({"path": "/a", "mode": "755"}))),
    ];
    for (method, url, body) in cases {
        let msg = h.call(method.clone(), &url, &[], body).await.err(404, "NOT_FOUND");
        assert_eq!(msg, "sandbox not found: sb-nonexistent", "{method} {url}");
    }
}
