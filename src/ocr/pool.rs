//! A pool of Tesseract workers, each on its own OS thread (never a tokio worker) with one
//! warm engine reused for every image, fed through a bounded queue. `recognize` waits for a
//! slot; the OCR role bounds the jobs it has in flight and pauses its partitions at that
//! bound, so nothing waits unbounded and nothing is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::engine::{Engine, Outcome, Rect, Region};
use super::words::Word;
use super::OcrError;
use crate::metrics::catalog;

/// What Tesseract read from one prepared image.
#[derive(Clone, Debug, PartialEq)]
pub struct Recognized {
    pub text: String,
    /// Mean word confidence, 0 to 100.
    pub confidence: f32,
    pub took: Duration,
    /// The deadline passed before Tesseract finished: no text.
    pub timed_out: bool,
    /// The text's rows with their words and boxes (none for a line read alone).
    pub rows: Vec<Vec<Word>>,
}

impl Recognized {
    /// Nothing read: the deadline passed (after `took`) before Tesseract finished.
    pub fn out_of_time(took: Duration) -> Self {
        Recognized {
            text: String::new(),
            confidence: 0.0,
            took,
            timed_out: true,
            rows: Vec::new(),
        }
    }
}

/// What part of the image a job reads.
#[derive(Clone, Copy, Debug)]
enum Scope {
    /// The whole document; with a region, only the words touching it.
    Document(Option<Region>),
    /// One line of text in this rectangle.
    Line(Rect),
}

struct Job {
    image: Vec<u8>,
    deadline: Duration,
    scope: Scope,
    reply: oneshot::Sender<Result<Recognized, OcrError>>,
}

pub struct OcrPool {
    queue: Option<SyncSender<Job>>,
    /// Images queued and not yet taken by a worker (`sembang_ocr_queue_depth`).
    waiting: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
}

impl OcrPool {
    /// `workers` threads (at least one), each loading Tesseract with `languages` (e.g.
    /// "eng+msa") from `datapath` (None: the system's tessdata); up to `queue` images wait.
    pub fn start(
        workers: usize,
        queue: usize,
        datapath: Option<&str>,
        languages: &str,
    ) -> Result<Self, OcrError> {
        let (sender, receiver) = sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for index in 0..workers.max(1) {
            // Load the engine here, so a missing language fails the start, not a job.
            let mut engine = Engine::new(datapath, languages)?;
            // Prepared images are always dark text on white: Tesseract's retry of every
            // doubtful line upside-down in colour (inverted) is wasted work.
            engine.set_variable("tessedit_do_invert", "0")?;
            let receiver = receiver.clone();
            let waiting = waiting.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ocr-{index}"))
                .spawn(move || loop {
                    let job = {
                        let Ok(receiver) = receiver.lock() else {
                            return;
                        };
                        match receiver.recv() {
                            Ok(job) => job,
                            Err(_) => return, // pool dropped
                        }
                    };
                    let depth = waiting.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
                    catalog::OCR_QUEUE_DEPTH.gauge(&[]).set(depth as f64);
                    let started = Instant::now();
                    let outcome = match job.scope {
                        Scope::Document(within) => {
                            engine.recognize(&job.image, job.deadline, within)
                        }
                        Scope::Line(line) => engine.recognize_line(&job.image, job.deadline, line),
                    };
                    let result = outcome.map(|outcome| {
                        let took = started.elapsed();
                        match outcome {
                            Outcome::Read {
                                text,
                                confidence,
                                rows,
                            } => Recognized {
                                text,
                                confidence,
                                took,
                                timed_out: false,
                                rows,
                            },
                            Outcome::TimedOut => Recognized::out_of_time(took),
                        }
                    });
                    let _ = job.reply.send(result);
                })
                .map_err(|e| OcrError::Engine(format!("worker thread: {e}")))?;
            handles.push(handle);
        }
        Ok(OcrPool {
            queue: Some(sender),
            waiting,
            workers: handles,
        })
    }

    /// Queues (waiting for a slot while the queue is full) and waits for the text, which
    /// Tesseract gives up on after `deadline` of its own work.
    pub async fn recognize(
        &self,
        image: Vec<u8>,
        deadline: Duration,
        within: Option<Region>,
    ) -> Result<Recognized, OcrError> {
        self.submit(image, deadline, Scope::Document(within)).await
    }

    /// [`OcrPool::recognize`] of the one line of text lying in `line`.
    pub async fn recognize_line(
        &self,
        image: Vec<u8>,
        deadline: Duration,
        line: Rect,
    ) -> Result<Recognized, OcrError> {
        self.submit(image, deadline, Scope::Line(line)).await
    }

    async fn submit(
        &self,
        image: Vec<u8>,
        deadline: Duration,
        scope: Scope,
    ) -> Result<Recognized, OcrError> {
        let (reply, receiver) = oneshot::channel();
        let mut job = Job {
            image,
            deadline,
            scope,
            reply,
        };
        loop {
            match self.offer(job) {
                Ok(()) => return receiver.await.map_err(|_| OcrError::Closed)?,
                Err(TrySendError::Full(back)) => {
                    job = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(OcrError::Closed),
            }
        }
    }

    fn offer(&self, job: Job) -> Result<(), TrySendError<Job>> {
        let Some(queue) = self.queue.as_ref() else {
            return Err(TrySendError::Disconnected(job));
        };
        // Counted before the send: a worker may take the job before `try_send` returns.
        let depth = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        match queue.try_send(job) {
            Ok(()) => {
                catalog::OCR_QUEUE_DEPTH.gauge(&[]).set(depth as f64);
                Ok(())
            }
            Err(e) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

impl Drop for OcrPool {
    fn drop(&mut self) {
        self.queue.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
