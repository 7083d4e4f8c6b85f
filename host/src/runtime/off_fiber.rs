//! Work a guest's import starts (a tool call's instance, an agent's nested
//! run), done by the task that runs the guest but on that task's own stack
//! instead of the guest's fiber. Whatever depth a fiber's stack reaches stays
//! resident until its run ends, and starting an instance reaches deeper than
//! anything else a run does; a task of its own would keep the stack shallow
//! too, but the hand-off to another thread and back costs more than a small
//! tool call (benches/scale/bounds.md).
//!
//! Nothing here wakes the task: work is handed over only while
//! [`Handed::drive`] polls the guest, and `drive` looks for it, and polls the
//! guest again, whenever anything moved. A wake-up would only poll the guest
//! once more for nothing, resuming its fiber to find it still waiting.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;
type Queue = Arc<Mutex<Vec<Work>>>;

/// Hands work to the task that runs the guest, or, with no guest (the tools
/// served on their own), runs it where it is awaited.
pub(crate) struct OffFiber(Option<Queue>);

/// The running guest's side: what [`Handed::drive`] polls beside the guest.
pub(crate) struct Handed(Queue);

/// The two ends for one guest.
pub(crate) fn channel() -> (OffFiber, Handed) {
    let queue = Queue::default();
    (OffFiber(Some(queue.clone())), Handed(queue))
}

impl OffFiber {
    /// For calls made outside any guest.
    pub fn inline() -> Self {
        OffFiber(None)
    }

    /// Runs `work` off the guest's fiber and returns what it gave. Only the
    /// guest's imports, which run while [`Handed::drive`] polls it, await
    /// this. `work` is built where it runs: a future made on the fiber and
    /// moved would touch the fiber's stack at its full size.
    pub async fn run<T, W>(&self, work: impl FnOnce() -> W + Send + 'static) -> T
    where
        T: Send + 'static,
        W: Future<Output = T> + Send + 'static,
    {
        let Some(queue) = &self.0 else {
            return work().await;
        };
        let answer = Arc::new(Mutex::new(None));
        let answering = answer.clone();
        locked(queue).push(Box::pin(async move {
            let output = work().await;
            *locked(&answering) = Some(output);
        }));
        poll_fn(|_| locked(&answer).take().map_or(Poll::Pending, Poll::Ready)).await
    }
}

impl Handed {
    /// Runs `guest` to its end, and the work its imports hand over beside it;
    /// work still going when the guest ends (stopped, say) is dropped with it.
    pub fn drive<F: Future>(self, guest: F) -> Drive<F> {
        Drive {
            guest,
            working: Vec::new(),
            queue: self.0,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Handed::drive`]'s future. A struct, not an `async fn`: a run's task
    /// holds it for the whole run, and an `async fn` would hold its guest
    /// twice over (the argument and the pinned copy).
    pub(crate) struct Drive<F> {
        #[pin]
        guest: F,
        // A guest waits in one import at a time: one piece of work, or a few
        // when the work's own guest hands more over (an agent's nested run).
        working: Vec<Work>,
        queue: Queue,
    }
}

impl<F: Future> Future for Drive<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        loop {
            let before = this.working.len();
            this.working
                .retain_mut(|work| work.as_mut().poll(cx).is_pending());
            let finished = this.working.len() < before;
            if let Poll::Ready(output) = this.guest.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            let handed = std::mem::take(&mut *locked(this.queue));
            if handed.is_empty() && !finished {
                return Poll::Pending;
            }
            this.working.extend(handed);
        }
    }
}

/// The lock, whether or not a panicking holder poisoned it: what it guards
/// is a list or an answer, whole either way.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handed_work_answers_the_guest_and_is_dropped_with_it() {
        let (off_fiber, handed) = channel();
        let answered = handed
            .drive(async {
                let at_once = off_fiber.run(|| async { 20 }).await;
                let later = off_fiber
                    .run(|| async {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        22
                    })
                    .await;
                at_once + later
            })
            .await;
        assert_eq!(answered, 42);

        let (off_fiber, handed) = channel();
        let (_never, waits) = tokio::sync::oneshot::channel::<()>();
        let (dropped, was_dropped) = tokio::sync::oneshot::channel::<()>();
        let stopped = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            handed.drive(off_fiber.run(move || async move {
                let _dropped = dropped;
                waits.await
            })),
        )
        .await;
        assert!(stopped.is_err());
        assert!(was_dropped.await.is_err(), "the work outlived its guest");
    }

    #[tokio::test]
    async fn work_that_hands_over_work_of_its_own_is_answered() {
        let (outer, handed) = channel();
        let inner = Arc::new(outer);
        let nested = inner.clone();
        let driven = handed.drive(inner.run(move || async move {
            let first = nested.run(|| async { 1 }).await;
            first + nested.run(|| async { 2 }).await
        }));
        let answered = tokio::time::timeout(std::time::Duration::from_secs(5), driven).await;
        assert_eq!(answered.expect("the nested work was never answered"), 3);
    }

    #[tokio::test]
    async fn work_runs_where_awaited_without_a_guest() {
        assert_eq!(OffFiber::inline().run(|| async { 7 }).await, 7);
    }
}
