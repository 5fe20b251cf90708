//! `ss12000-mock` and `bankid-stub`: the simulators, served alone for demos and tests.

use super::serve::shutdown_signal;
use crate::config::{Config, Mode};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct Ss12000MockArgs {
    /// Where to listen, e.g. 127.0.0.1:8900; loopback only unless --allow-remote.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// About how many persons (students, guardians, staff): 100 to 500000.
    #[arg(long, default_value_t = 2000)]
    pub persons: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Require this bearer token on every request.
    #[arg(long)]
    pub token: Option<String>,
    /// Allow a listen address that is not loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

pub(super) async fn ss12000_mock(a: Ss12000MockArgs) -> anyhow::Result<()> {
    let Ss12000MockArgs {
        listen,
        persons,
        seed,
        token,
        allow_remote,
    } = a;
    crate::sim::ss12000::mock::run_cli(&listen, persons, seed, token, allow_remote).await
}

#[derive(Args, Debug)]
pub struct BankidStubArgs {
    /// Where to listen, e.g. 127.0.0.1:8901; port 0 picks a free port (the address is
    /// printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Serve HTTPS with this certificate (chain, PEM); needs --tls-key and --client-ca.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM), as BankID requires the RP
    /// certificate.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// An order nobody picks up fails (startFailed) after this many seconds; default
    /// [bankid] stub_start_timeout.
    #[arg(long, value_name = "SECS")]
    pub start_timeout: Option<u64>,
    /// A pending order fails (expiredTransaction) after this many seconds; default
    /// [bankid] stub_order_lifetime.
    #[arg(long, value_name = "SECS")]
    pub order_lifetime: Option<u64>,
}

pub(super) async fn bankid_stub(config: &Config, a: BankidStubArgs) -> anyhow::Result<()> {
    let opts = stub_options(config, a)?;
    crate::sim::bankid::serve::run(opts, crate::clock::Clock::system(), shutdown_signal()).await
}

/// What `bankid-stub` serves: its flags over `[bankid]`'s stub timings.
fn stub_options(
    config: &Config,
    a: BankidStubArgs,
) -> anyhow::Result<crate::sim::bankid::serve::Options> {
    use crate::sim::bankid::serve;
    if config.mode == Mode::Production {
        bail!("the BankID stub is refused in production mode");
    }
    let tls = match (a.tls_cert, a.tls_key, a.client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(serve::TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None, None) => None,
        _ => bail!("--tls-cert, --tls-key and --client-ca go together"),
    };
    let b = &config.bankid;
    let secs = std::time::Duration::from_secs;
    Ok(serve::Options {
        listen: a.listen,
        tls,
        start_timeout: secs(a.start_timeout.unwrap_or(b.stub_start_timeout)),
        order_lifetime: secs(a.order_lifetime.unwrap_or(b.stub_order_lifetime)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `--start-timeout` and `--order-lifetime` reach the stub; without them `[bankid]`'s
    /// timings do. (The stub's behaviour at those timings is tested in tests/it/bankid_stub.rs
    /// on a moved clock.)
    #[test]
    fn the_stub_timings_come_from_the_flags_else_the_config() {
        let config = Config::default();
        let args = |extra: &[&str]| {
            let mut argv = vec!["portvakt", "bankid-stub", "--listen", "127.0.0.1:0"];
            argv.extend_from_slice(extra);
            match super::super::Cli::parse_from(argv).command {
                super::super::Command::BankidStub(a) => a,
                _ => panic!("not the bankid-stub command"),
            }
        };
        let opts = stub_options(
            &config,
            args(&["--start-timeout", "1", "--order-lifetime", "5"]),
        )
        .unwrap();
        assert_eq!(opts.start_timeout, std::time::Duration::from_secs(1));
        assert_eq!(opts.order_lifetime, std::time::Duration::from_secs(5));
        let opts = stub_options(&config, args(&[])).unwrap();
        let b = &config.bankid;
        assert_eq!(opts.start_timeout.as_secs(), b.stub_start_timeout);
        assert_eq!(opts.order_lifetime.as_secs(), b.stub_order_lifetime);
    }
}
