//! The id of the pending approval a guard refusal records, handed from the
//! history writer (which records it, after the answer has gone out) to whoever
//! waits for it: the notifier, so that the refusal's message can name the set to
//! approve.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Where the history writer publishes the id; held by the [`super::GuardRefusal`].
/// When every copy is gone without an id, the waiters stop waiting.
#[derive(Debug, Clone)]
pub struct ApprovalSlot(Arc<watch::Sender<Recording>>);

/// What became of the recording, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recording {
    Pending,
    /// Recorded with this id, or (`None`) it failed.
    Done(Option<i64>),
}

/// Waits for the id published in an [`ApprovalSlot`].
#[derive(Debug, Clone)]
pub struct ApprovalWatch(watch::Receiver<Recording>);

impl Default for ApprovalSlot {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(Recording::Pending)))
    }
}

impl ApprovalSlot {
    /// The id the pending approval was recorded with, or `None` when recording
    /// it failed. Only the first word counts: callers sharing one refusal record
    /// the same set.
    pub fn publish(&self, id: Option<i64>) {
        self.0.send_if_modified(|now| {
            if *now != Recording::Pending {
                return false;
            }
            *now = Recording::Done(id);
            true
        });
    }

    /// A handle to wait for the id with.
    pub fn watch(&self) -> ApprovalWatch {
        ApprovalWatch(self.0.subscribe())
    }
}

impl ApprovalWatch {
    /// The id, once published, waiting at most `within`; `None` when recording
    /// failed, took longer, or will never happen (every slot is gone).
    pub async fn id(mut self, within: Duration) -> Option<i64> {
        let done = self.0.wait_for(|r| *r != Recording::Pending);
        match tokio::time::timeout(within, done).await {
            Ok(Ok(recording)) => match *recording {
                Recording::Done(id) => id,
                Recording::Pending => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_word_counts_and_a_silent_slot_ends_the_wait() {
        let slot = ApprovalSlot::default();
        let watch = slot.watch();
        slot.publish(Some(7));
        slot.publish(None);
        assert_eq!(watch.id(Duration::from_secs(5)).await, Some(7));

        let slot = ApprovalSlot::default();
        let watch = slot.watch();
        slot.publish(None);
        assert_eq!(watch.id(Duration::from_secs(5)).await, None);

        // Never published: the bound ends the wait.
        let slot = ApprovalSlot::default();
        let began = std::time::Instant::now();
        assert_eq!(slot.watch().id(Duration::from_millis(50)).await, None);
        assert!(began.elapsed() >= Duration::from_millis(50));

        // Gone without a word: the wait ends at once.
        let slot = ApprovalSlot::default();
        let watch = slot.watch();
        drop(slot);
        let began = std::time::Instant::now();
        assert_eq!(watch.id(Duration::from_secs(30)).await, None);
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
