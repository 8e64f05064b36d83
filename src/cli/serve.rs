//! `hoard serve`: the HTTP server and the job workers, until SIGINT or SIGTERM.

use super::{CliResult, Failure};
use crate::api::HttpServer;
use crate::app::App;
use crate::config::{Config, Settings};
use crate::jobs::Jobs;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: Settings,
}

pub fn run(data_dir: &Path, args: ServeArgs) -> CliResult {
    let config = Config::resolve(data_dir, args.settings)?;
    let (app, first) = App::open(config)?;
    if let Err(e) = crate::catalogue::reconcile(&app) {
        log::warn!("cannot compare the storage directory with the catalogue: {e}");
    }
    app.jobs.run_schedules();
    let app = Arc::new(app);
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let http = HttpServer::start(app.clone())?;
    let jobs = Jobs::start(&app, app.config.job_workers);
    crate::notify::deliver::start(&app);
    let addr = http
        .local_addr()
        .map_or(app.config.listen.clone(), |a| a.to_string());
    let url = app
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    println!("hoard is running: open {url}");
    if let Some(password) = first.admin_password {
        println!("First start: created user 'admin' with password {password}");
        println!(
            "Keep it: it is not shown again. Change it in the UI or with `hoard user passwd admin`."
        );
    }
    log::info!(
        "listening on {addr}, data in {}",
        app.config.data_dir.display()
    );
    let signal = signals.forever().next();
    log::info!("received signal {signal:?}: shutting down");
    http.stop();
    let grace = Duration::from_secs(app.config.shutdown_grace_secs);
    // A second signal cuts the grace period short.
    let cancel_app = app.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            log::warn!("second signal: cancelling running jobs now");
            cancel_app
                .jobs
                .cancel_flag()
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    Jobs::shutdown(&app, jobs, grace);
    log::info!("stopped");
    Ok::<(), Failure>(())
}
