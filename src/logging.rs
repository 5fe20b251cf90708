//! Log output: one line per event on a writer, as text or JSON (`[log] format`), filtered by
//! `PORTVAKT_LOG`. `main` installs it for the process; the integration tests install the same
//! for the servers they start, so what they capture is what an operator would see.
//!
//! A request's lines carry its id through the span `web::edge` enters: in text after
//! `request{request_id=…}:`, in JSON as `"span":{"request_id":…}`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the process-wide subscriber; false if one was installed already.
pub fn install<W>(format: LogFormat, filter: EnvFilter, writer: W, ansi: bool) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init().is_ok(),
        // Event fields at the top level next to `message`; the request's span as `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
    }
}
