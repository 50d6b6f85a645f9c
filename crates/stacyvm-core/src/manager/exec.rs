//! Exec: request validation, argv construction, sync collection and streaming.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use stacyvm_provider::{ExecInput, ExecSpec, ExitReason, OutputChunk, Provider, RuntimeHandle};
use stacyvm_store::ExecLogRecord;
use stacyvm_types::exec::{ExecRequest, ExecResult, StreamChunk, StreamName};
use stacyvm_types::GoDuration;
use tokio::sync::mpsc;

use super::Manager;
use crate::error::{CoreError, CoreResult};
use crate::utf8::Utf8Stream;
use crate::validate;

/// Default working directory of execs.
pub const DEFAULT_WORKDIR: &str = "/workspace";

/// One item of a streamed exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Decoded output.
    Output(StreamChunk),
    /// The process ended (always the last item unless `Failed` is).
    Exit {
        /// Shell-style exit code.
        exit_code: i32,
        /// Wall time.
        duration: Duration,
        /// It was killed by its timeout.
        timed_out: bool,
    },
    /// The exec could not run to completion.
    Failed(CoreError),
}

/// A running exec's event stream. Dropping it kills the process.
pub type ExecStream = mpsc::Receiver<ExecEvent>;

/// Input of a running interactive exec (see [`Manager::exec_interactive`]). Dropping it only
/// stops input; the process keeps running.
pub type ExecInputSender = mpsc::Sender<ExecInput>;

/// Everything needed to start a validated exec.
struct PreparedExec {
    provider: Arc<dyn Provider>,
    provider_name: String,
    handle: RuntimeHandle,
    spec: ExecSpec,
    command_line: String,
}

/// Quotes one shell word: `'…'` with embedded `'` as `'"'"'`.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\"'\"'"))
}

/// Builds the argv for a request (`sh -c` in shell mode).
pub fn build_argv(req: &ExecRequest) -> CoreResult<Vec<String>> {
    if req.command.trim().is_empty() {
        return Err(CoreError::invalid("command is required"));
    }
    match req.mode.trim() {
        "" | "shell" => {
            let mut script = req.command.clone();
            for arg in &req.args {
                script.push(' ');
                script.push_str(&shell_quote(arg));
            }
            Ok(vec!["sh".into(), "-c".into(), script])
        }
        "argv" => Ok(std::iter::once(req.command.clone()).chain(req.args.iter().cloned()).collect()),
        other => Err(CoreError::invalid(format!("unsupported exec mode {other:?}"))),
    }
}

impl Manager {
    fn exec_timeout(&self, raw: &str, owner: &str) -> CoreResult<Option<Duration>> {
        let timeout = if raw.trim().is_empty() {
            self.settings.default_exec_timeout
        } else {
            let parsed = GoDuration::parse(raw.trim()).map_err(|e| CoreError::invalid(format!("timeout: {e}")))?;
            if parsed.as_nanos() < 0 {
                return Err(CoreError::invalid("timeout must not be negative"));
            }
            parsed.to_std().unwrap_or_default()
        };
        let max = self.effective_max_exec_timeout(owner);
        if !max.is_zero() && timeout > max {
            return Err(CoreError::ResourceLimit(format!(
                "resource limit exceeded: exec timeout exceeds max exec timeout {}",
                validate::go(max)
            )));
        }
        Ok(Some(timeout).filter(|t| !t.is_zero()))
    }

    async fn prepare_exec(&self, id: &str, req: &ExecRequest) -> CoreResult<PreparedExec> {
        let entry = self.live_entry(id).await?;
        let record = entry.snapshot();
        let argv = build_argv(req)?;
        let timeout = self.exec_timeout(&req.timeout, &record.owner_id)?;
        for key in req.env.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(CoreError::invalid(format!("invalid environment variable name {key:?}")));
            }
        }
        let handle = Self::require_running(&record)?;
        let provider = self.provider(&record.provider)?;
        if let Some(size) = req.pty {
            size.validate().map_err(CoreError::invalid)?;
            if !provider.capabilities().pty {
                return Err(CoreError::invalid(format!("pty is not supported by provider {:?}", record.provider)));
            }
        }
        let mut env = record.env.clone();
        env.extend(req.env.clone());
        let workdir = if req.workdir.trim().is_empty() { DEFAULT_WORKDIR.to_string() } else { req.workdir.clone() };
        let command_line = argv.join(" ");
        Ok(PreparedExec {
            provider,
            provider_name: record.provider,
            handle,
            spec: ExecSpec { argv, env, workdir, timeout, pty: req.pty },
            command_line,
        })
    }

    /// Starts an exec and returns its event stream.
    pub async fn exec_stream(self: &Arc<Self>, id: &str, req: &ExecRequest) -> CoreResult<ExecStream> {
        self.start_exec(id, req, None).await
    }

    /// Starts an exec that takes input while it runs (terminal input, resizes and signals; only
    /// execs with `pty` use it) and returns its event stream and input.
    pub async fn exec_interactive(
        self: &Arc<Self>,
        id: &str,
        req: &ExecRequest,
    ) -> CoreResult<(ExecStream, ExecInputSender)> {
        let (input_tx, input_rx) = mpsc::channel(32);
        let events = self.start_exec(id, req, Some(input_rx)).await?;
        Ok((events, input_tx))
    }

    async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        req: &ExecRequest,
        input: Option<mpsc::Receiver<ExecInput>>,
    ) -> CoreResult<ExecStream> {
        let prepared = self.prepare_exec(id, req).await?;
        let (events_tx, events_rx) = mpsc::channel(64);
        let manager = Arc::clone(self);
        let id = id.to_string();
        tokio::spawn(async move {
            manager.run_exec(&id, prepared, input, events_tx).await;
        });
        Ok(events_rx)
    }

    async fn run_exec(
        &self,
        id: &str,
        prepared: PreparedExec,
        input: Option<mpsc::Receiver<ExecInput>>,
        events: mpsc::Sender<ExecEvent>,
    ) {
        let started = Instant::now();
        self.events.publish("exec.started", Some(id), Some(serde_json::json!({"command": prepared.command_line})));
        let (raw_tx, mut raw_rx) = mpsc::channel::<OutputChunk>(32);
        let forward_events = events.clone();
        let forward = async move {
            let mut stdout = Utf8Stream::default();
            let mut stderr = Utf8Stream::default();
            while let Some(chunk) = raw_rx.recv().await {
                let decoder = if chunk.stream == StreamName::Stdout { &mut stdout } else { &mut stderr };
                let data = decoder.push(&chunk.data);
                if !data.is_empty()
                    && forward_events.send(ExecEvent::Output(StreamChunk { stream: chunk.stream, data })).await.is_err()
                {
                    return;
                }
            }
            for (stream, decoder) in [(StreamName::Stdout, &mut stdout), (StreamName::Stderr, &mut stderr)] {
                let data = decoder.finish();
                if !data.is_empty() {
                    let _ = forward_events.send(ExecEvent::Output(StreamChunk { stream, data })).await;
                }
            }
        };
        let (provider_impl, handle, spec) = (&prepared.provider, &prepared.handle, prepared.spec);
        let run = async move {
            match input {
                // A PTY exec without input (plain HTTP) still runs through the interactive call.
                None if spec.pty.is_some() => {
                    provider_impl.exec_interactive(handle, spec, mpsc::channel(1).1, raw_tx).await
                }
                None => provider_impl.exec(handle, spec, raw_tx).await,
                Some(input) => provider_impl.exec_interactive(handle, spec, input, raw_tx).await,
            }
        };
        let provider = prepared.provider_name.as_str();
        // If the caller goes away (HTTP client disconnected), dropping `run` kills the process.
        let outcome = tokio::select! {
            (outcome, ()) = async { tokio::join!(run, forward) } => outcome,
            () = events.closed() => {
                self.events.publish(
                    "exec.failed",
                    Some(id),
                    Some(serde_json::json!({"operation": "exec", "provider": provider, "error": "client disconnected"})),
                );
                self.metrics.record("exec", provider, false, started.elapsed());
                return;
            }
        };
        let last = match outcome {
            Ok(outcome) => {
                let timed_out = outcome.reason == ExitReason::TimedOut;
                let kind = if timed_out { "exec.timeout" } else { "exec.completed" };
                let exit_code = outcome.reason.exit_code();
                self.events.publish(kind, Some(id), Some(serde_json::json!({"exit_code": exit_code})));
                self.metrics.record("exec", provider, !timed_out, started.elapsed());
                ExecEvent::Exit { exit_code, duration: outcome.duration, timed_out }
            }
            Err(err) => {
                self.events.publish(
                    "exec.failed",
                    Some(id),
                    Some(serde_json::json!({"operation": "exec", "provider": provider, "error": err.to_string()})),
                );
                self.metrics.record("exec", provider, false, started.elapsed());
                ExecEvent::Failed(err.into())
            }
        };
        let _ = events.send(last).await;
    }

    /// Runs a command to completion and returns its output.
    pub async fn exec(self: &Arc<Self>, id: &str, req: &ExecRequest) -> CoreResult<ExecResult> {
        let mut stream = self.exec_stream(id, req).await?;
        let limit = self.settings.max_exec_output_bytes;
        let mut stdout = String::new();
        let mut stderr = String::new();
        while let Some(event) = stream.recv().await {
            match event {
                ExecEvent::Output(chunk) => {
                    let target = if chunk.stream == StreamName::Stdout { &mut stdout } else { &mut stderr };
                    append_bounded(target, &chunk.data, limit);
                }
                ExecEvent::Exit { timed_out: true, .. } => {
                    return Err(CoreError::Timeout(format!("exec timeout: {id}")));
                }
                ExecEvent::Exit { exit_code, duration, .. } => {
                    self.log_exec(id, req, exit_code, &stdout, &stderr, duration);
                    return Ok(ExecResult { exit_code, stdout, stderr, duration: validate::go(duration) });
                }
                ExecEvent::Failed(err) => return Err(err),
            }
        }
        Err(CoreError::Internal("exec ended without a result".into()))
    }

    fn log_exec(&self, id: &str, req: &ExecRequest, exit_code: i32, stdout: &str, stderr: &str, duration: Duration) {
        let keep = self.settings.exec_log_bytes;
        let record = ExecLogRecord {
            sandbox_id: id.to_string(),
            command: truncate(&req.command, keep).to_string(),
            exit_code,
            stdout: truncate(stdout, keep).to_string(),
            stderr: truncate(stderr, keep).to_string(),
            duration_ms: duration.as_millis() as u64,
            created_at: Utc::now(),
        };
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(e) = store.append_exec_log(&record).await {
                tracing::warn!(error = %e, "exec log write failed");
            }
        });
    }
}

/// Appends at most `limit` bytes in total (on a character boundary).
fn append_bounded(target: &mut String, data: &str, limit: usize) {
    let room = limit.saturating_sub(target.len());
    target.push_str(truncate(data, room));
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: &str, args: &[&str], mode: &str) -> ExecRequest {
        ExecRequest {
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            mode: mode.into(),
            ..Default::default()
        }
    }

    #[test]
    fn shell_mode_quotes_args() {
        let argv = build_argv(&req("echo", &["a b", "it's"], "")).unwrap();
        assert_eq!(argv, ["sh", "-c", "echo 'a b' 'it'\"'\"'s'"]);
        assert_eq!(build_argv(&req("ls", &[], " shell ")).unwrap()[2], "ls");
    }

    #[test]
    fn argv_mode_and_errors() {
        assert_eq!(build_argv(&req("echo", &["$X"], "argv")).unwrap(), ["echo", "$X"]);
        assert_eq!(
            build_argv(&req("echo", &[], "bash")).unwrap_err().to_string(),
            "invalid input: unsupported exec mode \"bash\""
        );
        assert!(build_argv(&req("  ", &[], "argv")).is_err());
        assert!(build_argv(&req("", &[], "")).is_err());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        let mut s = String::new();
        append_bounded(&mut s, "abc", 2);
        append_bounded(&mut s, "def", 2);
        assert_eq!(s, "ab");
    }
}
