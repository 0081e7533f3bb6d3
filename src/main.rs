//! The `bundleforge` binary: parse arguments, load settings, call the library. Library
//! errors never name the CLI's flags; the hint that does is added here.

mod cli;

use std::process::ExitCode;

use bundleforge::app::AppError;
use bundleforge::pipeline::PipelineError;
use bundleforge::store::StoreError;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}{}", hint(&err));
            ExitCode::FAILURE
        }
    }
}

/// What to type next, for the errors a command line can fix. Library errors wrap each
/// other transparently, so each shape is matched where it can stand.
fn hint(err: &anyhow::Error) -> &'static str {
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
            return " (bundleforge ingest --store ID --orders FILE --catalog FILE)";
        }
        if orders {
            return " (ingest orders with --orders FILE, or pass --as-of DATE)";
        }
    }
    ""
}
