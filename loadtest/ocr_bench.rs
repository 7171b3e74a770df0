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
use sembang::ocr::{process, OcrPool, Reading};

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
            // Service time (preparation + recognition), without the wait in the queue.
            let took = output
                .as_ref()
                .map(|o| o.prepare_time + o.recognize_time)
                .unwrap_or_default();
            let passes = output.as_ref().map_or(0, |o| o.passes);
            let prepare = output.as_ref().map(|o| o.prepare_time).unwrap_or_default();
            let turned = output.as_ref().is_ok_and(|o| o.turn.degrees() != 0);
            (t, output, took, passes, turned, prepare)
        });
    }
    let (mut ic, mut name, mut total, mut date, mut kind) = (
        Score::default(),
        Score::default(),
        Score::default(),
        Score::default(),
        Score::default(),
    );
    let mut latencies = Vec::new();
    let mut misses = Vec::new();
    let (mut passes, mut max_passes, mut turned) = (0u32, 0u8, 0u32);
    let mut preparing = std::time::Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (t, output, took, image_passes, image_turned, prepare) = done.unwrap();
        preparing += prepare;
        latencies.push(took);
        passes += u32::from(image_passes);
        max_passes = max_passes.max(image_passes);
        turned += u32::from(image_turned);
        let file = t["file"].as_str().unwrap().to_string();
        let reading = output.map(|o| o.reading);
        match t["kind"].as_str().unwrap() {
            "ic" => {
                let card = match &reading {
                    Ok(Reading::MyKad(card)) => Some(card),
                    _ => None,
                };
                kind.add(card.is_some());
                let ic_hit = card.is_some_and(|c| c.ic.digits() == t["ic"].as_str().unwrap());
                ic.add(ic_hit);
                let name_hit = card.is_some_and(|c| c.name.as_deref() == t["name"].as_str());
                name.add(name_hit);
                if !ic_hit || !name_hit {
                    let read = match &reading {
                        Ok(Reading::MyKad(c)) => format!("{} {:?}", c.ic.digits(), c.name),
                        Ok(other) => format!("{other:?}"),
                        Err(e) => e.to_string(),
                    };
                    misses.push(format!("{file}: read {read}"));
                }
            }
            _ => {
                let receipt = match &reading {
                    Ok(Reading::Receipt(r)) => Some(r),
                    _ => None,
                };
                kind.add(receipt.is_some());
                let total_hit =
                    receipt.is_some_and(|r| r.total().to_string() == t["total"].as_str().unwrap());
                total.add(total_hit);
                date.add(receipt.is_some_and(|r| {
                    r.details().date.map(|d| d.to_string()).as_deref() == t["date"].as_str()
                }));
                if !total_hit {
                    misses.push(format!("{file}: total not read"));
                }
            }
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
    println!("classified      {}", kind.show());
    println!("IC number exact {}", ic.show());
    println!("name exact      {}", name.show());
    println!("receipt total   {}", total.show());
    println!("receipt date    {}", date.show());
    println!(
        "pool: {:.2} images/s, per-image time (prepare + recognize) p50 {} ms, p99 {} ms",
        pool_rate,
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis()
    );
    println!(
        "passes: {:.2} Tesseract runs per image (max {max_passes}); {turned} images read turned; \
         OpenCV preparation {:.1} ms per image",
        f64::from(passes) / truth.len() as f64,
        preparing.as_secs_f64() * 1000.0 / truth.len() as f64
    );
    misses.sort();
    if std::env::var_os("SEMBANG_BENCH_MISSES").is_some() {
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
