//! `lynx migrate`: apply pending migrations (also done on every start) and say how many ran.

use std::process::ExitCode;

use crate::{
    cli::output,
    configuration::Settings,
    startup::{self, Fatal},
};

pub async fn run(settings: &Settings) -> Result<ExitCode, Fatal> {
    let store = lynx_store::connect(&settings.database, lynx_store::Pool::on_demand(2), None)
        .await
        .map_err(|e| startup::cannot_open(settings, e))?;
    let applied = store.migrate().await.map_err(|e| Fatal(format!("migration failed: {e}")))?;
    output::line(&format!("{}: {applied} migration(s) applied; schema is current", settings.database.describe()));
    Ok(ExitCode::SUCCESS)
}
