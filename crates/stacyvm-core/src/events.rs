//! The event bus behind `GET /api/v1/events`.
//!
//! A broadcast channel: every subscriber sees events published after it subscribed; there is no
//! replay, and a subscriber that falls more than [`SUBSCRIBER_BUFFER`] events behind loses the
//! oldest ones (it is told how many it missed).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use stacyvm_types::event::Event;
use tokio::sync::broadcast;

/// Events buffered per subscriber before the oldest are dropped.
pub const SUBSCRIBER_BUFFER: usize = 64;

/// Publishes events to live subscribers.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    sequence: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        EventBus { sender, sequence: AtomicU64::new(0) }
    }
}

impl EventBus {
    /// Publishes an event (a no-op apart from the counter when nobody listens).
    pub fn publish(&self, kind: &str, sandbox_id: Option<&str>, data: Option<Value>) {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        if self.sender.receiver_count() == 0 {
            return;
        }
        let event = Event {
            id: format!("evt-{n}"),
            kind: kind.to_string(),
            sandbox_id: sandbox_id.map(str::to_string),
            timestamp: stacyvm_types::time::rfc3339_millis(&chrono::Utc::now()),
            data,
        };
        let _ = self.sender.send(event);
    }

    /// A new subscription starting now.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Live subscribers.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Events published since start.
    pub fn total(&self) -> u64 {
        self.sequence.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_later_events_in_order() {
        let bus = EventBus::default();
        bus.publish("sandbox.created", Some("sb-1"), None);
        let mut rx = bus.subscribe();
        bus.publish("sandbox.running", Some("sb-1"), None);
        bus.publish("sandbox.destroyed", Some("sb-1"), Some(serde_json::json!({"k": 1})));
        assert_eq!(rx.recv().await.unwrap().kind, "sandbox.running");
        let last = rx.recv().await.unwrap();
        assert_eq!((last.kind.as_str(), last.id.as_str()), ("sandbox.destroyed", "evt-3"));
        assert_eq!(bus.total(), 3);
        assert_eq!(bus.subscribers(), 1);
    }

    #[tokio::test]
    async fn slow_subscriber_loses_oldest() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        for _ in 0..(SUBSCRIBER_BUFFER + 10) {
            bus.publish("exec.started", None, None);
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(10))));
    }
}
