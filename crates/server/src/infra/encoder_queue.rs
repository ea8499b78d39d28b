//! The local encoder's queue: every caller that needs vectors — a search's question, a chat's,
//! a document's chunks — hands its tokenised texts here, and one thread runs the encoder over
//! whatever is waiting, packed into one forward pass (as text-embeddings-inference does). A
//! forward pass re-reads the model's 42 MB of weights whatever its size, so sixteen questions
//! cost little more than one, and chunks of many documents (and tenants) fill one batch where
//! each document alone would run a small one.
//!
//! - **Questions first.** Waiting questions go into the next pass before any document's
//!   chunks, and a pass that carries a question is kept to [`Limits::query_tokens`], so a
//!   question waits at most for the pass in hand plus its own short one while an import runs.
//!   Documents fill the rest, oldest request first; a request larger than a pass is split
//!   across passes and answered once all of it is done.
//! - **A bounded wait.** When fewer tokens than a pass are waiting, the thread waits up to
//!   [`Limits::max_wait`] after the oldest arrived for more to join; a request alone is never
//!   slowed by more than that. Under load requests pile up while a pass runs, so batches form
//!   without waiting.
//! - **Outside the critical path.** Callers tokenise on their own threads; the queue only
//!   packs ids. A caller that gives up (its request timed out) is skipped, not computed.
//! - A pass that fails or panics fails the requests in it, not the thread.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cortex_ai::Sequence;
use tokio::sync::oneshot;

/// Who waits for the vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A person waits: a question being searched or answered.
    Query,
    /// A background job: a document's chunks.
    Document,
}

/// How passes are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most tokens in one pass of documents' chunks: large enough that every matrix product
    /// keeps all cores busy.
    pub batch_tokens: usize,
    /// Most tokens in a pass that carries a question (questions and any chunks that fit).
    pub query_tokens: usize,
    /// Longest the thread waits for more requests when fewer tokens than a pass are waiting.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_tokens: 2048,
            query_tokens: 1024,
            max_wait: Duration::from_millis(1),
        }
    }
}

/// One forward pass: unit vectors of packed `(ids, type_ids)` sequences, in order.
pub type Pass = dyn FnMut(&[(&[u32], &[u32])]) -> Result<Vec<Vec<f32>>, String> + Send;

/// The queue and its encoder thread; the thread ends when the queue is dropped, after the
/// requests already waiting are answered.
pub struct EncoderQueue {
    inbox: Arc<Inbox>,
}

/// What passes the thread has run (for `bench` and the tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passes {
    pub passes: u64,
    pub sequences: u64,
    pub tokens: u64,
    /// Time spent inside passes.
    pub busy: Duration,
}

struct Inbox {
    arrivals: Mutex<Arrivals>,
    wake: Condvar,
}

#[derive(Default)]
struct Arrivals {
    queries: Vec<Request>,
    documents: Vec<Request>,
    closed: bool,
    passes: Passes,
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, String>>;

struct Request {
    seqs: Vec<Sequence>,
    /// Sequences encoded so far: `done.len()` of `seqs`.
    done: Vec<Vec<f32>>,
    reply: Reply,
    arrived: Instant,
}

impl Request {
    fn remaining_tokens(&self) -> usize {
        self.seqs[self.done.len()..].iter().map(Sequence::len).sum()
    }
}

impl EncoderQueue {
    /// Starts the encoder thread running `pass` under `limits`.
    pub fn start(limits: Limits, pass: Box<Pass>) -> std::io::Result<Self> {
        let inbox = Arc::new(Inbox {
            arrivals: Mutex::new(Arrivals::default()),
            wake: Condvar::new(),
        });
        let limits = Limits {
            batch_tokens: limits.batch_tokens.max(1),
            query_tokens: limits.query_tokens.max(1),
            max_wait: limits.max_wait,
        };
        let theirs = inbox.clone();
        std::thread::Builder::new()
            .name("cortex-encoder".into())
            .spawn(move || run(&theirs, limits, pass))?;
        Ok(Self { inbox })
    }

    /// Unit vectors of `seqs`, in order, once the passes that carry them have run.
    pub async fn embed(
        &self,
        seqs: Vec<Sequence>,
        priority: Priority,
    ) -> Result<Vec<Vec<f32>>, String> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            done: Vec::with_capacity(seqs.len()),
            seqs,
            reply,
            arrived: Instant::now(),
        };
        {
            let mut a = lock(&self.inbox.arrivals);
            if a.closed {
                return Err("the encoder has stopped".into());
            }
            match priority {
                Priority::Query => a.queries.push(request),
                Priority::Document => a.documents.push(request),
            }
        }
        self.inbox.wake.notify_one();
        answer
            .await
            .unwrap_or_else(|_| Err("the encoder stopped before answering".into()))
    }

    /// The passes run so far.
    pub fn passes(&self) -> Passes {
        lock(&self.inbox.arrivals).passes
    }
}

impl Drop for EncoderQueue {
    fn drop(&mut self) {
        lock(&self.inbox.arrivals).closed = true;
        self.inbox.wake.notify_one();
    }
}

fn lock(m: &Mutex<Arrivals>) -> MutexGuard<'_, Arrivals> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The encoder thread: requests move from the inbox to its own two queues, which it alone
/// reads while a pass runs.
fn run(inbox: &Inbox, limits: Limits, mut pass: Box<Pass>) {
    let mut queues: [VecDeque<Request>; 2] = [VecDeque::new(), VecDeque::new()];
    loop {
        {
            let mut a = lock(&inbox.arrivals);
            loop {
                queues[0].extend(a.queries.drain(..));
                queues[1].extend(a.documents.drain(..));
                for q in &mut queues {
                    q.retain(|r| !r.reply.is_closed());
                }
                if queues.iter().all(VecDeque::is_empty) {
                    if a.closed {
                        return;
                    }
                    a = inbox.wake.wait(a).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                let budget = budget(&queues, limits);
                let waiting: usize = queues.iter().flatten().map(Request::remaining_tokens).sum();
                let oldest = queues
                    .iter()
                    .filter_map(|q| q.front().map(|r| r.arrived))
                    .min()
                    .unwrap_or_else(Instant::now);
                let deadline = oldest + limits.max_wait;
                let now = Instant::now();
                if a.closed || waiting >= budget || now >= deadline {
                    break;
                }
                a = inbox
                    .wake
                    .wait_timeout(a, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let budget = budget(&queues, limits);
        // Counted before any request of the pass is answered, so a caller that reads the
        // counters after its answer sees its pass.
        run_pass(&mut queues, budget, &mut pass, |sequences, tokens, took| {
            let mut a = lock(&inbox.arrivals);
            a.passes.passes += 1;
            a.passes.sequences += sequences as u64;
            a.passes.tokens += tokens as u64;
            a.passes.busy += took;
        });
    }
}

/// The next pass's size: small while a question waits, a full batch otherwise.
fn budget(queues: &[VecDeque<Request>; 2], limits: Limits) -> usize {
    if queues[0].is_empty() {
        limits.batch_tokens
    } else {
        limits.query_tokens
    }
}

/// Packs the next pass from the front of the queues (questions first), runs it and hands
/// each request its vectors, answering those now complete; `count` hears the sequences and
/// tokens it encoded and how long it took before anyone is answered.
fn run_pass(
    queues: &mut [VecDeque<Request>; 2],
    budget: usize,
    pass: &mut Pass,
    count: impl FnOnce(usize, usize, Duration),
) {
    // (queue, request, sequences taken) — requests are taken front to back, so the ones in
    // this pass are a prefix of each queue and only the last can be left partly done.
    let mut plan: Vec<(usize, usize, usize)> = Vec::new();
    let mut tokens = 0;
    'fill: for (qi, queue) in queues.iter().enumerate() {
        for (ri, request) in queue.iter().enumerate() {
            let mut taken = 0;
            for seq in &request.seqs[request.done.len()..] {
                if tokens + seq.len() > budget && tokens > 0 {
                    if taken > 0 {
                        plan.push((qi, ri, taken));
                    }
                    break 'fill;
                }
                tokens += seq.len();
                taken += 1;
            }
            plan.push((qi, ri, taken));
        }
    }
    let sequences: usize = plan.iter().map(|p| p.2).sum();
    let took;
    let outcome = {
        let refs: Vec<(&[u32], &[u32])> = plan
            .iter()
            .flat_map(|&(qi, ri, taken)| {
                let r = &queues[qi][ri];
                r.seqs[r.done.len()..r.done.len() + taken]
                    .iter()
                    .map(Sequence::pair)
            })
            .collect();
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| pass(&refs)));
        took = started.elapsed();
        match result {
            Ok(Ok(v)) if v.len() == refs.len() => Ok(v),
            Ok(Ok(v)) => Err(format!(
                "the encoder returned {} vectors for {} texts",
                v.len(),
                refs.len()
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the encoder panicked".to_owned()),
        }
    };
    count(sequences, tokens, took);
    match outcome {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for &(qi, ri, taken) in &plan {
                queues[qi][ri].done.extend(vectors.by_ref().take(taken));
            }
            for queue in queues.iter_mut() {
                while queue.front().is_some_and(|r| r.done.len() == r.seqs.len()) {
                    if let Some(r) = queue.pop_front() {
                        let _ = r.reply.send(Ok(r.done));
                    }
                }
            }
        }
        Err(why) => {
            // Every request in the failed pass fails; the rest wait for the next.
            let mut in_pass = [0usize; 2];
            for &(qi, ri, _) in &plan {
                in_pass[qi] = in_pass[qi].max(ri + 1);
            }
            for (queue, n) in queues.iter_mut().zip(in_pass) {
                for r in queue.drain(..n) {
                    let _ = r.reply.send(Err(why.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::await_holding_lock,
    reason = "a test holds the gate so the encoder thread stays in a pass while it queues more"
)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn seq(tokens: usize, tag: u32) -> Sequence {
        Sequence {
            ids: vec![tag; tokens],
            type_ids: vec![0; tokens],
        }
    }

    /// A pass whose vector for a sequence is `[first id, length]`, recording each pass's
    /// sequences as `(first id, length)`.
    /// Each pass's sequences as `(first id, length)`.
    type Log = Arc<Mutex<Vec<Vec<(u32, usize)>>>>;

    fn recording(log: Log, gate: Arc<Mutex<()>>) -> Box<Pass> {
        Box::new(move |seqs| {
            let _held = gate.lock().unwrap();
            log.lock()
                .unwrap()
                .push(seqs.iter().map(|(ids, _)| (ids[0], ids.len())).collect());
            Ok(seqs
                .iter()
                .map(|(ids, _)| vec![ids[0] as f32, ids.len() as f32])
                .collect())
        })
    }

    /// Until the encoder thread has taken every request out of the inbox (it is then in, or
    /// about to start, a pass with them).
    async fn drained(queue: &EncoderQueue) {
        loop {
            {
                let a = lock(&queue.inbox.arrivals);
                if a.queries.is_empty() && a.documents.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A queue whose passes are recorded, and the gate that holds its thread inside one.
    fn recorded(limits: Limits) -> (Arc<EncoderQueue>, Log, Arc<Mutex<()>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Mutex::new(()));
        let queue = EncoderQueue::start(limits, recording(log.clone(), gate.clone())).unwrap();
        (Arc::new(queue), log, gate)
    }

    /// `seqs` asked of `queue` from a task of their own.
    fn ask(
        queue: &Arc<EncoderQueue>,
        seqs: Vec<Sequence>,
        priority: Priority,
    ) -> tokio::task::JoinHandle<Result<Vec<Vec<f32>>, String>> {
        let queue = queue.clone();
        tokio::spawn(async move { queue.embed(seqs, priority).await })
    }

    fn limits(batch: usize, query: usize, wait_ms: u64) -> Limits {
        Limits {
            batch_tokens: batch,
            query_tokens: query,
            max_wait: Duration::from_millis(wait_ms),
        }
    }

    #[tokio::test]
    async fn requests_waiting_together_share_one_pass_and_each_gets_its_own_vectors() {
        let (queue, log, gate) = recorded(limits(4096, 1024, 0));
        // Hold the encoder in a first pass so the next sixteen questions queue behind it.
        let held = gate.lock().unwrap();
        let first = ask(&queue, vec![seq(5, 100)], Priority::Query);
        tokio::task::yield_now().await;
        drained(&queue).await;
        let asked: Vec<_> = (0..16u32)
            .map(|i| {
                ask(
                    &queue,
                    vec![seq(10 + i as usize, i), seq(3, 50 + i)],
                    Priority::Query,
                )
            })
            .collect();
        // Every request is in the inbox before the gate opens.
        while lock(&queue.inbox.arrivals).queries.len() < 16 {
            tokio::task::yield_now().await;
        }
        // The first pass lasts at least this long, and the counters say so.
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert_eq!(first.await.unwrap().unwrap(), vec![vec![100.0, 5.0]]);
        for (i, a) in asked.into_iter().enumerate() {
            let v = a.await.unwrap().unwrap();
            assert_eq!(
                v,
                vec![vec![i as f32, 10.0 + i as f32], vec![50.0 + i as f32, 3.0]]
            );
        }
        let passes = log.lock().unwrap().clone();
        assert_eq!(
            passes.len(),
            2,
            "one pass for the first, one for the sixteen: {passes:?}"
        );
        assert_eq!(passes[1].len(), 32);
        assert_eq!(queue.passes().sequences, 33);
        assert!(queue.passes().busy >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn questions_go_before_documents_and_a_large_request_is_split_across_passes() {
        let (queue, log, gate) = recorded(limits(100, 40, 0));
        let held = gate.lock().unwrap();
        let blocker = ask(&queue, vec![seq(1, 99)], Priority::Document);
        tokio::task::yield_now().await;
        drained(&queue).await;
        // A document of ten 30-token chunks, then a question.
        let document = ask(
            &queue,
            (0..10).map(|i| seq(30, i)).collect(),
            Priority::Document,
        );
        while lock(&queue.inbox.arrivals).documents.is_empty() {
            tokio::task::yield_now().await;
        }
        let question = ask(&queue, vec![seq(8, 77)], Priority::Query);
        while lock(&queue.inbox.arrivals).queries.is_empty() {
            tokio::task::yield_now().await;
        }
        drop(held);
        blocker.await.unwrap().unwrap();
        assert_eq!(question.await.unwrap().unwrap(), vec![vec![77.0, 8.0]]);
        let vectors = document.await.unwrap().unwrap();
        assert_eq!(vectors.len(), 10);
        for (i, v) in vectors.iter().enumerate() {
            assert_eq!(v, &vec![i as f32, 30.0], "chunk {i} in order");
        }
        let passes = log.lock().unwrap().clone();
        // The blocker; the question with one chunk (40 tokens for a pass with a question);
        // then 3 chunks a pass (100 tokens) until the document is done.
        assert_eq!(passes[1], vec![(77, 8), (0, 30)], "{passes:?}");
        assert_eq!(passes[2], vec![(1, 30), (2, 30), (3, 30)]);
        assert_eq!(passes[3], vec![(4, 30), (5, 30), (6, 30)]);
        assert_eq!(passes[4], vec![(7, 30), (8, 30), (9, 30)]);
        assert_eq!(passes.len(), 5);
    }

    #[tokio::test]
    async fn a_failing_or_panicking_pass_fails_its_requests_and_the_queue_carries_on() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let queue = EncoderQueue::start(
            limits(4096, 1024, 0),
            Box::new(move |seqs| match counted.fetch_add(1, Ordering::SeqCst) {
                0 => Err("out of memory".into()),
                1 => panic!("a bug in the encoder"),
                2 => Ok(vec![vec![1.0]]), // one vector short
                _ => Ok(seqs.iter().map(|_| vec![1.0]).collect()),
            }),
        )
        .unwrap();
        let e = queue.embed(vec![seq(4, 1)], Priority::Query).await;
        assert_eq!(e, Err("out of memory".into()));
        let e = queue.embed(vec![seq(4, 1)], Priority::Query).await;
        assert_eq!(e, Err("the encoder panicked".into()));
        let e = queue
            .embed(vec![seq(4, 1), seq(4, 2)], Priority::Document)
            .await;
        assert_eq!(e, Err("the encoder returned 1 vectors for 2 texts".into()));
        let ok = queue
            .embed(vec![seq(4, 1), seq(4, 2)], Priority::Document)
            .await;
        assert_eq!(ok, Ok(vec![vec![1.0], vec![1.0]]));
        assert_eq!(
            queue.embed(Vec::new(), Priority::Query).await,
            Ok(Vec::new())
        );
    }

    #[tokio::test]
    async fn a_request_whose_caller_gave_up_is_not_computed() {
        let (queue, log, gate) = recorded(limits(4096, 1024, 0));
        let held = gate.lock().unwrap();
        let blocker = ask(&queue, vec![seq(2, 1)], Priority::Query);
        tokio::task::yield_now().await;
        drained(&queue).await;
        let abandoned = ask(&queue, vec![seq(2, 2)], Priority::Query);
        while lock(&queue.inbox.arrivals).queries.is_empty() {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        drop(held);
        blocker.await.unwrap().unwrap();
        let kept = queue.embed(vec![seq(2, 3)], Priority::Query).await;
        assert_eq!(kept, Ok(vec![vec![3.0, 2.0]]));
        let firsts: Vec<u32> = log.lock().unwrap().iter().flatten().map(|s| s.0).collect();
        assert_eq!(firsts, vec![1, 3], "the abandoned request was skipped");
    }
}
