//! `hr-bridge seed-demo --employees N --departments M`: fills an empty database
//! with a synthetic organisation sharing one printed password.

use std::process::ExitCode;

use secrecy::ExposeSecret;

use super::stores;
use crate::config::Settings;
use crate::directory::demo;

pub async fn run(
    settings: &Settings,
    employees: usize,
    departments: usize,
) -> anyhow::Result<ExitCode> {
    let (state, source) = stores::writable(settings, "seed-demo")?;
    if settings.database.auto_migrate {
        stores::migrate(&state, &source).await?;
    }
    let password = crate::app::random_secret();
    let started = std::time::Instant::now();
    crate::app::seed(
        source.db(),
        crate::app::argon2(&settings.auth),
        demo::synthetic(employees, departments),
        &password,
    )
    .await?;
    println!(
        "seeded {employees} employees and {departments} departments in {:.1}s; \
         every employee's password is: {}",
        started.elapsed().as_secs_f64(),
        password.expose_secret()
    );
    Ok(ExitCode::SUCCESS)
}
