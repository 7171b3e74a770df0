//! `sembang segments export ID`: a saved segment's members as CSV, from a segment index
//! this command rebuilds from the contact changelog (the same index the api role serves).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config_cmd::with_settings;
use super::contacts::open_backends;
use super::{EXIT_FAILURE, EXIT_REJECTED};
use crate::config::LoadRequest;
use crate::domain::clock::malaysian_day;
use crate::domain::segment::{EvalContext, SegmentDefinition};
use crate::segments::{Follower, SegmentIndex};
use crate::topics::{self, TopicNames};

/// How long the rebuild may take before the command gives up.
const REBUILD_LIMIT: Duration = Duration::from_secs(600);

pub fn export(id: &str, out: Option<&Path>, request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        let runtime = match super::async_runtime(true) {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        runtime.block_on(async {
            let backends = match open_backends(&settings.config, &settings.secrets).await {
                Ok(backends) => backends,
                Err(code) => return code,
            };
            let record = match backends.store.segment(id).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    eprintln!("sembang: no segment {id}");
                    return ExitCode::from(EXIT_REJECTED);
                }
                Err(e) => {
                    eprintln!("sembang: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            let definition = match SegmentDefinition::from_json_str(&record.definition_json) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("sembang: segment {id} no longer parses: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            let names = TopicNames::new(&settings.config.bus.namespace);
            let follower = Follower::new(
                Arc::new(SegmentIndex::default()),
                backends.bus.clone(),
                names.name(topics::CONTACTS),
            );
            if let Err(e) = follower.assign_all().await {
                eprintln!("sembang: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
            let started = Instant::now();
            while !follower.index().is_live() {
                if started.elapsed() > REBUILD_LIMIT {
                    eprintln!("sembang: the segment index did not catch up with crm.contacts in {REBUILD_LIMIT:?}");
                    return ExitCode::from(EXIT_FAILURE);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let now = chrono::Utc::now();
            let csv = crate::api::segments::members_csv(
                follower.index(),
                &definition,
                &EvalContext::new(now, malaysian_day(now)),
            );
            follower.stop();
            let written = match out {
                Some(path) => std::fs::write(path, csv),
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(csv.as_bytes())
                }
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sembang: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        })
    })
}
