use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Level;

use crate::cli::Global;
use crate::terminal::table::Table;
use crate::terminal::{self, GREEN, RED, YELLOW};
use crate::{out, outln};

/// Checks every host and prints one line per finding; exit 1 when any
/// needs attention (a warning or an error).
pub async fn run(global: &Global) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let report = fleet.doctor(&connections).await;
    if global.json {
        outln!("{}", serde_json::to_string(&report.findings)?);
    } else {
        let color = terminal::color(global);
        let mut table = Table::new(["HOST", "LEVEL", "CHECK", "FINDING"]);
        for finding in &report.findings {
            let code = match finding.level {
                Level::Ok => GREEN,
                Level::Note => "",
                Level::Warning => YELLOW,
                Level::Error => RED,
            };
            table.row(
                [
                    finding.host.clone(),
                    finding.level.to_string(),
                    finding.check.to_string(),
                    finding.to_string(),
                ],
                (color && !code.is_empty()).then_some((1, code)),
            );
        }
        out!("{table}");
        let count = |level: Level| report.findings.iter().filter(|f| f.level == level).count();
        let (errors, warnings) = (count(Level::Error), count(Level::Warning));
        if report.needs_attention() {
            outln!("{errors} error(s), {warnings} warning(s): see above for what to do");
        } else {
            outln!("all is well");
        }
    }
    Ok(if report.needs_attention() {
        super::failure()
    } else {
        super::SUCCESS
    })
}
