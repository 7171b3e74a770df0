//! `sembang-ocr-bench DIR`: OCR accuracy and speed on a corpus made by
//! loadtest/ocr_corpus.py (images + truth.json). Reads every image with the OCR pipeline of
//! the OCR role (warm Tesseract pool, one worker per core) and reports IC number and name
//! exact matches on cards, total and date exact matches on receipts, images/s and p50/p99
//! latency; then runs the `tesseract` command line on the same images (as many at once as
//! there are workers, OMP_THREAD_LIMIT=1) for its images/s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;

use sembang::media::MediaLimits;
use sembang::ocr::{process, OcrPool, PipelineError, Reading};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Default)]
struct Score {
    seen: u32,
    hits: u32,
}

impl Score {
    fn add(&mut self, hit: bool) {
        self.seen += 1;
        self.hits += u32::from(hit);
    }
    fn show(&self) -> String {
        if self.seen == 0 {
            return "n/a".into();
        }
        format!(
            "{}/{} = {:.1} %",
            self.hits,
            self.seen,
            100.0 * f64::from(self.hits) / f64::from(self.seen)
        )
    }
}

/// Each image's deadline of work on one core: the pipeline's budget for extra passes.
const DEADLINE: Duration = sembang::ocr::pipeline::BUDGET;

/// What a truth row says about how the photo was taken (phone-photo corpora), for misses.
fn conditions(t: &Value) -> String {
    let mut parts = Vec::new();
    for key in ["background", "perspective", "rotation", "case"] {
        if let Some(value) = t.get(key).filter(|v| !v.is_null()) {
            parts.push(format!("{key} {value}"));
        }
    }
    parts.join(", ")
}

/// Accuracy, with wrong acceptances kept apart from misses: a card accepted with a wrong
/// number, a receipt trusted with a wrong total, anything accepted from a photo that must
/// be refused.
#[derive(Default)]
struct Scores {
    kind: Score,
    ic: Score,
    ic_false: u32,
    name: Score,
    total: Score,
    total_trusted_right: u32,
    total_trusted_wrong: u32,
    total_review: u32,
    date: Score,
    refused: Score,
}

impl Scores {
    /// Scores one image; returns what went wrong, if anything.
    fn add(&mut self, t: &Value, reading: &Result<Reading, PipelineError>) -> Option<String> {
        let shown = || match reading {
            Ok(Reading::MyKad(c)) => format!("card {} {:?}", c.ic.digits(), c.name),
            Ok(Reading::Receipt(r)) => format!(
                "receipt total {} date {:?} trusted {}",
                r.total(),
                r.details().date,
                reading.as_ref().is_ok_and(Reading::is_trusted)
            ),
            Ok(Reading::Rejected { read_as, reason }) => {
                format!("rejected as {read_as:?}: {reason}")
            }
            Err(e) => e.to_string(),
        };
        match t["kind"].as_str().unwrap() {
            "ic" => {
                let card = match reading {
                    Ok(Reading::MyKad(card)) => Some(card),
                    _ => None,
                };
                self.kind.add(card.is_some());
                let ic_hit = card.is_some_and(|c| c.ic.digits() == t["ic"].as_str().unwrap());
                let wrong = card.is_some() && !ic_hit;
                self.ic.add(ic_hit);
                self.ic_false += u32::from(wrong);
                let name_hit = card.is_some_and(|c| c.name.as_deref() == t["name"].as_str());
                self.name.add(name_hit);
                if wrong {
                    return Some(format!("FALSE ACCEPT {}", shown()));
                }
                (!ic_hit || !name_hit).then(shown)
            }
            "receipt" => {
                let receipt = match reading {
                    Ok(Reading::Receipt(r)) => Some(r),
                    _ => None,
                };
                self.kind.add(receipt.is_some());
                let right =
                    receipt.is_some_and(|r| r.total().to_string() == t["total"].as_str().unwrap());
                let trusted = reading.as_ref().is_ok_and(Reading::is_trusted);
                self.total.add(right);
                self.total_trusted_right += u32::from(trusted && right);
                self.total_trusted_wrong += u32::from(trusted && !right);
                self.total_review += u32::from(receipt.is_some() && !trusted);
                let date_hit = receipt.is_some_and(|r| {
                    r.details().date.map(|d| d.to_string()).as_deref() == t["date"].as_str()
                });
                self.date.add(date_hit);
                if trusted && !right {
                    return Some(format!("FALSE ACCEPT {}", shown()));
                }
                (!right || !trusted || !date_hit).then(shown)
            }
            _ => {
                // A photo that must be refused: nothing may be accepted from it.
                let accepted = reading.as_ref().is_ok_and(Reading::is_trusted);
                self.refused.add(!accepted);
                accepted.then(|| format!("FALSE ACCEPT {}", shown()))
            }
        }
    }

    fn print(&self) {
        println!("classified      {}", self.kind.show());
        println!(
            "IC number exact {}; accepted with a wrong number: {}",
            self.ic.show(),
            self.ic_false
        );
        println!("name exact      {}", self.name.show());
        println!(
            "receipt total   {} read right; trusted and right {}, trusted and wrong {}, sent to review {}",
            self.total.show(),
            self.total_trusted_right,
            self.total_trusted_wrong,
            self.total_review
        );
        println!("receipt date    {}", self.date.show());
        if self.refused.seen > 0 {
            println!("must refuse     {} refused", self.refused.show());
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    sembang::ocr::ensure_single_threaded_openmp();
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: sembang-ocr-bench DIR"),
    );
    let truth: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).expect("truth.json"))
            .unwrap();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // The engine's default languages unless SEMBANG_BENCH_LANGUAGES says otherwise; the CLI
    // runs with the same.
    let languages = std::env::var("SEMBANG_BENCH_LANGUAGES")
        .unwrap_or_else(|_| sembang::config::OcrConfig::default().languages);
    let pool = Arc::new(OcrPool::start(workers, workers * 2, None, &languages).unwrap());
    let reference = NaiveDate::from_ymd_opt(2025, 11, 25).unwrap();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // As many images in flight as the OCR role keeps (twice the workers).
    let slots = Arc::new(tokio::sync::Semaphore::new(workers * 2));
    for t in truth.clone() {
        let pool = pool.clone();
        let slots = slots.clone();
        let path = dir.join(t["file"].as_str().unwrap());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let output = process(&pool, bytes, &MediaLimits::default(), reference).await;
            (t, output)
        });
    }
    let mut scores = Scores::default();
    let mut latencies = Vec::new();
    let mut misses = Vec::new();
    let mut overs = Vec::new();
    let (mut passes, mut max_passes, mut turned, mut deadlines) = (0u32, 0u8, 0u32, 0u32);
    let mut preparing = Duration::ZERO;
    let mut found = std::collections::BTreeMap::<String, u32>::new();
    while let Some(done) = tasks.join_next().await {
        let (t, output) = done.unwrap();
        if let Ok(o) = &output {
            // Service time (preparation + recognition), without the wait in the queue: the
            // time on one core.
            let took = o.prepare_time + o.recognize_time;
            latencies.push(took);
            if took > DEADLINE {
                deadlines += 1;
                overs.push(format!(
                    "{} (prepare {} ms, recognize {} ms, {} passes)",
                    t["file"].as_str().unwrap_or_default(),
                    o.prepare_time.as_millis(),
                    o.recognize_time.as_millis(),
                    o.passes
                ));
            }
            preparing += o.prepare_time;
            passes += u32::from(o.passes);
            max_passes = max_passes.max(o.passes);
            turned += u32::from(o.turn.degrees() != 0);
            *found.entry(format!("{:?}", o.document)).or_default() += 1;
        }
        let file = t["file"].as_str().unwrap().to_string();
        let conditions = conditions(&t);
        let reading = output.map(|o| o.reading);
        if let Some(miss) = scores.add(&t, &reading) {
            misses.push(format!("{file} ({conditions}): {miss}"));
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pool_rate = truth.len() as f64 / elapsed.as_secs_f64();
    println!(
        "corpus {} ({} images), {workers} workers",
        dir.display(),
        truth.len()
    );
    scores.print();
    let mean = latencies.iter().sum::<Duration>().as_secs_f64() / latencies.len().max(1) as f64;
    println!(
        "pool: {:.2} images/s; per-image time on one core (prepare + recognize): mean {:.0} ms, \
         p50 {} ms, p95 {} ms, p99 {} ms, max {} ms; {deadlines} over the {} s deadline",
        pool_rate,
        mean * 1000.0,
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.95).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        latencies.last().copied().unwrap_or_default().as_millis(),
        DEADLINE.as_secs(),
    );
    println!(
        "passes: {:.2} Tesseract runs per image (max {max_passes}); {turned} images read turned; \
         OpenCV preparation {:.1} ms per image; document found: {found:?}",
        f64::from(passes) / truth.len() as f64,
        preparing.as_secs_f64() * 1000.0 / truth.len() as f64
    );
    misses.sort();
    if std::env::var_os("SEMBANG_BENCH_MISSES").is_some() {
        for over in &overs {
            println!("over the deadline: {over}");
        }
        for miss in &misses {
            println!("miss {miss}");
        }
    }
    if std::env::var_os("SEMBANG_BENCH_NO_CLI").is_some() {
        return;
    }
    let cli_rate = tesseract_cli(&dir, &truth, workers, &languages);
    println!(
        "tesseract CLI (--psm 6, {workers} at a time): {cli_rate:.2} images/s; pool / CLI = {:.2}",
        pool_rate / cli_rate
    );
}

/// The `tesseract` command on every image, `parallel` processes at a time.
fn tesseract_cli(dir: &Path, truth: &[Value], parallel: usize, languages: &str) -> f64 {
    let started = Instant::now();
    let files: Vec<PathBuf> = truth
        .iter()
        .map(|t| dir.join(t["file"].as_str().unwrap()))
        .collect();
    // `parallel` lanes, each starting its next image as soon as its last one is done.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(file) = files.get(index) else {
                    return;
                };
                let _ = std::process::Command::new("tesseract")
                    .arg(file)
                    .args(["stdout", "--psm", "6", "-l", languages])
                    .env("OMP_THREAD_LIMIT", "1")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("tesseract is installed (scripts/install-deps)");
            });
        }
    });
    files.len() as f64 / started.elapsed().as_secs_f64()
}
