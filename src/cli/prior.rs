//! `bundleforge prior`: the complement prior's file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use bundleforge::config::Settings;
use bundleforge::prior::build::{BuildInput, build};

#[derive(Subcommand, Debug)]
pub enum PriorCommand {
    /// Mine the prior's sources and write the file (see scripts/build-prior).
    Build(PriorBuildArgs),
}

#[derive(Args, Debug)]
pub struct PriorBuildArgs {
    /// A data set of baskets of category names, one basket per line, comma-separated:
    /// `NAME=FILE` (repeatable).
    #[arg(long = "category-baskets", value_name = "NAME=FILE")]
    category_baskets: Vec<String>,
    /// A stored store's orders: `NAME=STORE` (repeatable). Its categories are its own,
    /// or clusters of its titles where it has none.
    #[arg(long = "store", value_name = "NAME=STORE")]
    stores: Vec<String>,
    /// Where to write the prior (refused if it exists, unless --force).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long)]
    force: bool,
}

fn named(raw: &str, flag: &str) -> Result<(String, String)> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => bail!("{flag} takes NAME=VALUE, got {raw:?}"),
    }
}

pub async fn run(command: PriorCommand, settings: &Settings) -> Result<ExitCode> {
    let PriorCommand::Build(args) = command;
    if args.category_baskets.is_empty() && args.stores.is_empty() {
        bail!("nothing to mine: give --category-baskets NAME=FILE or --store NAME=STORE");
    }
    if args.out.exists() && !args.force {
        bail!("{} exists (add --force to replace it)", args.out.display());
    }
    let mut input = BuildInput {
        category_baskets: Vec::new(),
        stores: Vec::new(),
        built_by: "scripts/build-prior DATA_DIR".to_owned(),
    };
    for raw in &args.category_baskets {
        let (name, file) = named(raw, "--category-baskets")?;
        input.category_baskets.push((name, PathBuf::from(file)));
    }
    for raw in &args.stores {
        let (name, id) = named(raw, "--store")?;
        input
            .stores
            .push((name, bundleforge::domain::StoreId::parse(&id)?));
    }
    let services = super::services(settings).await?;
    let embedder = services.embedder().await?;
    let prior = build(
        &input,
        services.store.as_ref(),
        embedder.as_ref(),
        settings.embed.description_chars,
    )
    .await?;
    let text = serde_json::to_string_pretty(&prior)? + "\n";
    let tmp = args.out.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    for s in &prior.sources {
        eprintln!(
            "{}: {} baskets, {} categories, {} links",
            s.name,
            s.baskets,
            s.categories.len(),
            s.links.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
