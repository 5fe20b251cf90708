//! `portvakt`: the command line. Everything else lives in the library.

use clap::Parser;

// The sync parses and builds millions of small strings; glibc's malloc spent ~45% of a
// 500,000-person snapshot in malloc/free and kept fragmented arenas as RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// clap's message without the usage block, on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
}
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match portvakt::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let quiet = !matches!(
        cli.command,
        portvakt::cli::Command::Serve
            | portvakt::cli::Command::Demo
            | portvakt::cli::Command::BankidStub(_)
    );
    // sqlx logs PostgreSQL notices at info; they are noise for an operator.
    let default = if quiet { "warn" } else { "info,sqlx=warn" };
    let format =
        portvakt::config::LogConfig::early(cli.config.as_deref(), |k| std::env::var(k).ok());
    portvakt::logging::install(
        format,
        tracing_subscriber::EnvFilter::try_from_env("PORTVAKT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        std::io::stderr,
        // Colours only for a person at a terminal, not in log files or the journal.
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    match portvakt::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            // Bad input the parser could not see (an unknown upstream): as a parse error.
            if e.downcast_ref::<portvakt::cli::BadArgument>().is_some() {
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}
