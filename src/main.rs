//! The `bundleforge` binary: parse arguments, load settings, call the library. Library
//! errors never name the CLI's flags; the hint that does is added here.

mod cli;

use std::process::ExitCode;

use bundleforge::app::{AppError, RulesError};
use bundleforge::destination::DestinationError;
use bundleforge::ingest::IngestError;
use bundleforge::ingest::rejected::RejectedError;
use bundleforge::pipeline::PipelineError;
use bundleforge::store::StoreError;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}{}", message(&err), hint(&err).unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: library errors often
/// include their source in their own text (`cannot read x: No such file…`), and the
/// chain would say it again.
fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An `--out` that exists and is not empty, however the error reached us (the library
/// wraps it transparently, so the chain does not list it on its own).
fn refuses_a_full_destination(cause: &(dyn std::error::Error + 'static)) -> bool {
    let destination = if let Some(e) = cause.downcast_ref::<DestinationError>() {
        Some(e)
    } else if let Some(AppError::Output(e)) = cause.downcast_ref::<AppError>() {
        Some(e)
    } else if let Some(e) = cause.downcast_ref::<RulesError>() {
        match e {
            RulesError::Output(e) | RulesError::App(AppError::Output(e)) => Some(e),
            _ => None,
        }
    } else if let Some(RejectedError::Write(e)) = cause.downcast_ref::<RejectedError>() {
        Some(e)
    } else {
        None
    };
    matches!(destination, Some(DestinationError::NotEmpty { .. }))
}

/// What to type next, for the errors a command line can fix. Library errors wrap each
/// other transparently, so each shape is matched where it can stand.
fn hint(err: &anyhow::Error) -> Option<String> {
    let ingest = err
        .chain()
        .find_map(|cause| match cause.downcast_ref::<AppError>() {
            Some(AppError::Ingest(e)) => Some(e),
            _ => cause.downcast_ref::<IngestError>(),
        });
    match ingest {
        Some(IngestError::WrongRole { expected, .. }) => {
            return Some(format!(" (pass it with --{expected})"));
        }
        Some(
            IngestError::Usage(_)
            | IngestError::NeedsVariants { .. }
            | IngestError::VariantsAlreadyGiven { .. }
            | IngestError::RoleGivenTwice { .. },
        ) => {
            return Some(" (bundleforge ingest --store ID --orders FILE --catalog FILE; --variants and --inventory join a split catalog)".into());
        }
        _ => {}
    }
    if err.chain().any(refuses_a_full_destination) {
        return Some(" (pass --force to replace it)".into());
    }
    let unknown_store = |e: &StoreError| matches!(e, StoreError::UnknownStore(_));
    let pipeline = |e: &PipelineError| match e {
        PipelineError::Store(s) => (unknown_store(s), false),
        PipelineError::NoOrders(_) => (false, true),
        _ => (false, false),
    };
    for cause in err.chain() {
        let (store, orders) = if let Some(e) = cause.downcast_ref::<AppError>() {
            match e {
                AppError::Store(s) => (unknown_store(s), false),
                AppError::NoOrders(_) => (false, true),
                AppError::Pipeline(p) => pipeline(p),
                _ => (false, false),
            }
        } else if let Some(e) = cause.downcast_ref::<PipelineError>() {
            pipeline(e)
        } else if let Some(e) = cause.downcast_ref::<StoreError>() {
            (unknown_store(e), false)
        } else {
            (false, false)
        };
        if store {
            return Some(" (bundleforge ingest --store ID --orders FILE --catalog FILE)".into());
        }
        if orders {
            return Some(" (ingest orders with --orders FILE, or pass --as-of DATE)".into());
        }
    }
    None
}
