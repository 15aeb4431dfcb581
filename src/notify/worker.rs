//! The worker between the queue and the sender: takes events in order, asks the
//! state machine what they change, claims each change on the state database, and
//! hands the messages it wins (or, with the database unable to answer, those its
//! own view calls for) to the outbox.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::event::{ApprovalWatch, Refusal};
use super::machine::{self, Action, Machine, Outcome};
use super::message::{self, Message};
use super::{store, Job, JobKind, Shared};
use crate::db::Db;

/// The worker: takes events in order, asks the machine what they change, claims
/// the changes, and hands the messages to the sender.
pub(super) async fn decide(
    mut jobs: mpsc::Receiver<Job>,
    mut machine: Machine,
    state: Option<Db>,
    outbox: mpsc::Sender<Message>,
    shared: Arc<Shared>,
) {
    loop {
        let job = match machine.next_deadline() {
            Some(deadline) => tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => Some(job),
                    None => return,
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => None,
            },
            None => match jobs.recv().await {
                Some(job) => Some(job),
                None => return,
            },
        };
        machine.set_after(shared.after());
        let counted = job.is_some();
        let mut awaiting = None;
        let actions = match job {
            Some(Job { kind, now, at }) => match kind {
                JobKind::Refused(refusal, approval) => {
                    let actions = machine.sync_refused(&refusal, at);
                    awaiting = approval.map(|approval| AwaitingId { refusal, approval });
                    actions
                }
                JobKind::Served => machine.sync_served(at),
                JobKind::Database(role, reachable) => machine.database(role, reachable, now, at),
                JobKind::Locked(username, until) => {
                    machine.account_locked(&username, until, now, at)
                }
            },
            None => machine.due(Instant::now(), SystemTime::now()),
        };
        for action in actions {
            match action {
                Action::Send(message) => hand_over(&outbox, &shared, message),
                Action::Claim(claim) => {
                    settle(
                        &mut machine,
                        claim,
                        state.as_ref(),
                        &outbox,
                        &shared,
                        awaiting.take(),
                    )
                    .await
                }
            }
        }
        if counted {
            shared.count(|s| s.decided += 1);
        }
    }
}

/// A guard refusal's message, to complete with the id of the pending approval
/// the history writer records for it.
struct AwaitingId {
    refusal: Refusal,
    approval: ApprovalWatch,
}

impl AwaitingId {
    /// `message` naming the pending approval, once recorded; as it is when that
    /// takes longer than `within` or fails.
    async fn complete(self, message: Message, within: Duration) -> Message {
        let Refusal::DeletionGuard {
            users,
            departments,
            usernames,
            ..
        } = self.refusal
        else {
            return message;
        };
        match self.approval.id(within).await {
            Some(id) => message::sync_refused(
                &Refusal::DeletionGuard {
                    users,
                    departments,
                    usernames,
                    approval_id: Some(id.to_string()),
                },
                message.occurred_at,
            ),
            None => {
                tracing::warn!(
                    within = ?within,
                    "the deletion guard's pending approval was not recorded in time (see \
                     hr_bridge_sync_history_failures_total); its notification goes without the id"
                );
                message
            }
        }
    }
}

/// Completes a message that is going out with what it waits for, if anything.
async fn completed(message: Message, awaiting: Option<AwaitingId>, shared: &Shared) -> Message {
    match awaiting {
        Some(awaiting) => {
            awaiting
                .complete(message, shared.tuning.approval_wait)
                .await
        }
        None => message,
    }
}

/// Claims one change on the state database and sends its message if this
/// replica won, or, when the database cannot answer, if its own view says so.
/// Only a message that goes out waits for its approval id (`awaiting`).
async fn settle(
    machine: &mut Machine,
    claim: machine::Claim,
    state: Option<&Db>,
    outbox: &mpsc::Sender<Message>,
    shared: &Shared,
    awaiting: Option<AwaitingId>,
) {
    let now = SystemTime::now();
    let answer = match state {
        Some(db) => {
            let row = store::Claim {
                subject: claim.subject,
                to: claim.to,
                from: claim.from,
                missed: claim.missed,
                now_ms: machine::unix_ms(now),
            };
            match tokio::time::timeout(shared.tuning.claim_timeout, db.notify_claim(&row)).await {
                Ok(Ok(won)) => Some(won),
                Ok(Err(e)) => {
                    tracing::warn!(
                        condition = claim.subject, error = %e,
                        "cannot record a notification state; this replica decides alone"
                    );
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        condition = claim.subject,
                        "the state database did not answer a notification claim in time; \
                         this replica decides alone"
                    );
                    None
                }
            }
        }
        None => None,
    };
    match answer {
        Some(won) => {
            machine.claimed(&claim, Outcome::Recorded, now);
            match (won, claim.message) {
                (true, Some(message)) => {
                    let message = completed(message, awaiting, shared).await;
                    hand_over(outbox, shared, message)
                }
                // A change this replica saw, announced by another one.
                (false, Some(_)) if claim.send_if_unsure => {
                    metrics::counter!("hr_bridge_notify_deduplicated_total").increment(1);
                    shared.count(|s| s.deduplicated += 1);
                }
                _ => {}
            }
        }
        None => {
            if state.is_some() {
                shared.count(|s| s.unsure += 1);
            }
            let sent = claim.send_if_unsure && claim.message.is_some();
            machine.claimed(&claim, Outcome::Unsure { sent }, now);
            if let (true, Some(message)) = (sent, claim.message) {
                let message = completed(message, awaiting, shared).await;
                hand_over(outbox, shared, message);
            }
        }
    }
}

/// Puts a message in the outbox, or drops and counts it when the outbox is full.
fn hand_over(outbox: &mpsc::Sender<Message>, shared: &Shared, message: Message) {
    match outbox.try_send(message) {
        Ok(()) => shared.count(|s| s.queued += 1),
        Err(mpsc::error::TrySendError::Full(message)) => {
            metrics::counter!("hr_bridge_notify_messages_total", "outcome" => "dropped")
                .increment(1);
            shared.count(|s| s.messages_dropped += 1);
            tracing::warn!(
                event = message.event,
                "notification outbox full (the webhook is slow or down); message dropped"
            );
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}
