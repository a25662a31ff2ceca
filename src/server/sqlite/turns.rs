//! Turns at the trainer's file: at most two of our reads at once, in groups with a gap
//! between them, so the trainer can always commit.
//!
//! Two connections read the file side by side (twenty long runs are read on both cores, not
//! one). But in the default rollback-journal mode SQLite keeps one OS-level shared lock per
//! file for the whole process, and a connection that joins a shared lock already held does
//! not look for a writer's pending lock: reads that kept overlapping would hold the lock
//! without a break, and the trainer, waiting to commit, gives up after 5 s with `database
//! is locked`. So reads go in groups: a read joins the running ones only within
//! [`GROUP_SPAN`] of the group's start, and the next group starts when the last read of
//! this one has ended. Between groups none of ours holds the lock; a trainer waiting to
//! commit holds the pending lock by then, so our next read's shared lock is refused (and
//! waits, see `connect`) until the trainer has committed. A commit waits at most a group.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Reads of ours on the file at once, and so the connections the pool opens.
pub const AT_ONCE: u32 = 2;
/// How long reads may keep joining a group. A few pages of a long read each; the trainer's
/// commits wait about 10 ms as it is.
pub const GROUP_SPAN: Duration = Duration::from_millis(25);

#[derive(Default)]
pub struct Turns {
    state: Mutex<State>,
    ended: Notify,
}

#[derive(Default)]
struct State {
    running: u32,
    /// When the running group's first read started.
    started: Option<Instant>,
}

/// A read's turn, until dropped.
pub struct Turn<'a>(&'a Turns);

impl Turns {
    /// Waits for a turn: at once when nothing runs, or when fewer than [`AT_ONCE`] run and
    /// their group is still young.
    pub async fn take(&self) -> Turn<'_> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Listening before looking, so an end between the two is not missed.
            ended.as_mut().enable();
            {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let young = s.started.is_some_and(|t| now - t < GROUP_SPAN);
                if s.running == 0 || (s.running < AT_ONCE && young) {
                    if s.running == 0 {
                        s.started = Some(now);
                    }
                    s.running += 1;
                    return Turn(self);
                }
            }
            ended.await;
        }
    }

    #[cfg(test)]
    fn running(&self) -> u32 {
        self.state.lock().unwrap().running
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        s.running -= 1;
        drop(s);
        self.0.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test(start_paused = true)]
    async fn two_at_once_while_the_group_is_young() {
        let turns = Turns::default();
        let a = turns.take().await;
        let b = turns.take().await;
        assert_eq!(turns.running(), 2);
        assert!(turns.take().now_or_never().is_none(), "a third waits");
        drop(a);
        let c = turns.take().now_or_never().expect("takes the place freed");
        drop((b, c));
        assert_eq!(turns.running(), 0);
    }

    /// Past its span a group takes no one more until its last read has ended: the gap in
    /// which the trainer commits.
    #[tokio::test(start_paused = true)]
    async fn an_old_group_ends_before_the_next_starts() {
        let turns = Turns::default();
        let a = turns.take().await;
        tokio::time::advance(GROUP_SPAN).await;
        assert!(turns.take().now_or_never().is_none(), "too late to join");
        let b = {
            let waiting = turns.take();
            tokio::pin!(waiting);
            assert!(waiting.as_mut().now_or_never().is_none());
            drop(a);
            waiting.await
        };
        // A new group, young again.
        let c = turns.take().now_or_never().expect("joins the new group");
        drop((b, c));
    }

    /// Every read waiting gets its turn, and never more than two run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_reads_all_get_turns() {
        let turns = std::sync::Arc::new(Turns::default());
        let most = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let reads: Vec<_> = (0..50)
            .map(|_| {
                let (turns, most) = (turns.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = turns.take().await;
                    most.fetch_max(turns.running(), std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                })
            })
            .collect();
        for r in reads {
            r.await.unwrap();
        }
        assert!(most.load(std::sync::atomic::Ordering::Relaxed) <= AT_ONCE);
        assert_eq!(turns.running(), 0);
    }
}
