//! The `sembang` command line. Each subcommand lives in its own module; this one only parses
//! arguments and dispatches.

mod config_cmd;
mod contacts;
mod ic;
mod migrate;
mod ocr;
mod openapi;
mod receipt;
mod run;
mod segments;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::config::LoadRequest;

#[derive(Debug, Parser)]
#[command(
    name = "sembang",
    version,
    about = "WhatsApp CRM stream-processing engine for Malaysian retailers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine (all roles by default) on the chosen profile.
    Run(ConfigArgs),
    /// Apply the CQL and ClickHouse schemas of the profile (idempotent; refuses a newer
    /// schema than this binary knows).
    Migrate(ConfigArgs),
    /// Saved segments.
    Segments {
        #[command(subcommand)]
        command: SegmentsCommand,
    },
    /// Malaysian identity card (MyKad) numbers.
    Ic {
        #[command(subcommand)]
        command: IcCommand,
    },
    /// Malaysian receipts (OCR text).
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Read a photo of a MyKad or a receipt with the OCR pipeline of the OCR role.
    Ocr {
        /// A JPEG, PNG or WebP image.
        image: String,
        /// Reference date for the IC's century and age (YYYY-MM-DD); default today in Malaysia.
        #[arg(long, value_name = "YYYY-MM-DD")]
        on: Option<NaiveDate>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also write the first pass's prepared image (what Tesseract reads, a PBM) here.
        #[arg(long, value_name = "FILE")]
        prepared: Option<String>,
    },
    /// Contacts in the store.
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Print the OpenAPI 3 document of the HTTP surface (docs/openapi.json is its output).
    Openapi {
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show or check the effective configuration (secrets are never printed).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum IcCommand {
    /// Validate an IC number and derive birth date, age, gender and place of birth.
    Parse {
        /// 12 digits, with optional dash or space separators: 900101-14-5678.
        number: String,
        /// Reference date for century and age (YYYY-MM-DD); default today in Malaysia.
        #[arg(long, value_name = "YYYY-MM-DD")]
        on: Option<NaiveDate>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Write every stored contact's indexable state to the contact changelog (crm.contacts),
    /// for contacts stored before it existed. Safe to run again.
    Reindex(ConfigArgs),
    /// Import contacts and their attributes from a CSV file: each row a profile edit
    /// through the contact's shard (a rerun changes nothing). Bad rows are reported with
    /// their line; the others are taken.
    Import {
        /// The CSV file (header: phone_number, name, marital_status, tags, attributes...).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentsCommand {
    /// Write a saved segment's members as CSV (masked phone, name, tier, total spent),
    /// from an index rebuilt from the contact changelog.
    Export {
        /// The segment id.
        id: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Read merchant, date, items, taxes and the total payable from receipt text.
    Parse {
        /// A text file, or - for standard input.
        file: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, after environment overrides.
    Show(ConfigArgs),
    /// Validate the configuration and exit 0 when it is usable.
    Check(ConfigArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// A TOML config file (default: the built-in profile; also SEMBANG_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A built-in profile: embedded (default) or local (also SEMBANG_PROFILE).
    #[arg(long)]
    profile: Option<String>,
}

impl ConfigArgs {
    fn request(&self) -> LoadRequest {
        LoadRequest {
            config_file: self.config.clone(),
            profile: self.profile.clone(),
        }
    }
}

/// The async runtime of a command; on failure, the exit code after saying why.
fn async_runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("sembang: cannot start the async runtime: {e}");
        ExitCode::from(EXIT_FAILURE)
    })
}

/// Exit status for input the command rejected (invalid IC, no receipt total).
pub const EXIT_REJECTED: u8 = 1;
/// Exit status for failures outside the input (unreadable file, bad configuration).
pub const EXIT_FAILURE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(&args.request()),
        Command::Migrate(args) => migrate::run(&args.request()),
        Command::Ic {
            command: IcCommand::Parse { number, on, json },
        } => ic::parse(
            &number,
            on.unwrap_or_else(crate::domain::clock::malaysia_today),
            json,
        ),
        Command::Receipt {
            command: ReceiptCommand::Parse { file, json },
        } => receipt::parse(&file, json),
        Command::Ocr {
            image,
            on,
            json,
            prepared,
        } => ocr::run(
            &image,
            on.unwrap_or_else(crate::domain::clock::malaysia_today),
            json,
            prepared.as_deref(),
        ),
        Command::Openapi { out } => openapi::run(out.as_deref()),
        Command::Contacts {
            command: ContactsCommand::Reindex(args),
        } => contacts::reindex_all(&args.request()),
        Command::Contacts {
            command: ContactsCommand::Import { file, config },
        } => contacts::import(&file, &config.request()),
        Command::Segments {
            command: SegmentsCommand::Export { id, out, config },
        } => segments::export(&id, out.as_deref(), &config.request()),
        Command::Config {
            command: ConfigCommand::Show(args),
        } => config_cmd::show(&args.request()),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => config_cmd::check(&args.request()),
    }
}
