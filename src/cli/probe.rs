//! `hr-bridge probe URL`: checks a remote deployment as OMFLOW will call it. It
//! reads no local configuration (neither `--config` nor `HR_BRIDGE__*`
//! variables), so a broken local setup never breaks a probe of another machine.

use std::process::ExitCode;

pub use crate::probe::ProbeArgs;

pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    crate::probe::run(args).await
}
