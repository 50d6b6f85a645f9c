//! Console logs of mock sandboxes: a bounded ring of timestamped lines per sandbox, in memory
//! (no I/O on the exec path; lost on restart, which the mock accepts).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Lines kept per sandbox.
const MAX_LINES: usize = 1000;

/// Every sandbox's console.
#[derive(Debug, Default)]
pub(super) struct Consoles {
    lines: Mutex<HashMap<String, VecDeque<String>>>,
}

impl Consoles {
    /// Appends one line (newlines flattened).
    pub(super) fn append(&self, sandbox_id: &str, line: &str) {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let ring = all.entry(sandbox_id.to_string()).or_default();
        if ring.len() == MAX_LINES {
            ring.pop_front();
        }
        ring.push_back(format!("{stamp} {}", line.replace('\n', " ")));
    }

    /// The last `n` lines.
    pub(super) fn tail(&self, sandbox_id: &str, n: usize) -> Vec<String> {
        let all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        all.get(sandbox_id)
            .map_or_else(Vec::new, |ring| ring.iter().skip(ring.len().saturating_sub(n)).cloned().collect())
    }

    /// Forgets a sandbox's console.
    pub(super) fn remove(&self, sandbox_id: &str) {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).remove(sandbox_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_tails() {
        let c = Consoles::default();
        for i in 0..(MAX_LINES + 5) {
            c.append("sb-1", &format!("line {i}\nmore"));
        }
        let tail = c.tail("sb-1", 2);
        assert_eq!(tail.len(), 2);
        assert!(tail[1].ends_with(&format!("line {} more", MAX_LINES + 4)));
        assert_eq!(c.tail("sb-1", usize::MAX).len(), MAX_LINES);
        c.remove("sb-1");
        assert!(c.tail("sb-1", 10).is_empty());
    }
}
