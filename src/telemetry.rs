//! Logging: `tracing` to standard error, as logfmt or JSON, at the level
//! given by `--log.level` (or `RUST_LOG`, which wins when set).
//!
//! logfmt is what Prometheus and its exporters write:
//! `time=2026-12-02T07:34:10.123Z level=info msg="serving metrics on ..." address=0.0.0.0:10054`,
//! one event per line, every value quoted when it holds a space, `=`, a
//! quote or a control character (escaped as in Go: `\"`, `\\`, `\n`), so
//! that log pipelines (Loki's `| logfmt`, `lnav`) split it into fields.
//!
//! A log line that cannot be written (standard error closed, a broken pipe,
//! a full disk) is dropped quietly: logging must never panic a task, least
//! of all the one that handles SIGTERM. [`out`] and [`err`] are the same
//! for the command-line modes' own output.

use std::fmt::Write as _;
use std::io::Write;

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` text, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Installs the global subscriber. Dependencies are held at `warn` unless
/// `RUST_LOG` asks otherwise: their debug output is not ours to print.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,functiongraph_exporter={}", level.directive()))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        .log_internal_errors(false)
        .with_target(false);
    let result = match format {
        LogFormat::Logfmt => builder.with_ansi(false).event_format(Logfmt).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests run several exporters in one process).
    let _ = result;
}

/// The logfmt event format (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        writer.write_str(&logfmt_line(
            time::OffsetDateTime::now_utc(),
            event.metadata().level(),
            |visitor| event.record(visitor),
        ))
    }
}

/// One logfmt line (with its newline) for an event whose fields `record`
/// gives to a visitor.
fn logfmt_line(
    now: time::OffsetDateTime,
    level: &tracing::Level,
    record: impl FnOnce(&mut FieldWriter),
) -> String {
    let mut fields = FieldWriter::default();
    record(&mut fields);
    let ts = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let mut line = format!("time={ts} level={}", level.as_str().to_ascii_lowercase());
    line.push_str(" msg=");
    push_value(&mut line, fields.message.as_deref().unwrap_or(""));
    line.push_str(&fields.rest);
    line.push('\n');
    line
}

/// Collects an event's fields: the message apart, the rest as ` key=value`.
#[derive(Default)]
struct FieldWriter {
    message: Option<String>,
    rest: String,
}

impl FieldWriter {
    fn push(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
            return;
        }
        let _ = write!(self.rest, " {}=", field.name());
        push_value(&mut self.rest, value);
    }
}

impl Visit for FieldWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

/// Appends a logfmt value: bare when it can be, else quoted and escaped.
fn push_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Standard error, ignoring write errors.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes `text` to standard output; a closed or broken stdout (`| head`)
/// is not an error worth a panic.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes `text` and a newline to standard error, ignoring write errors.
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.write_all(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a logfmt line as a logfmt parser does.
    fn parse(line: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut chars = line.trim_end_matches('\n').chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => {}
                        },
                        c => value.push(c),
                    }
                }
                chars.next(); // the space
            } else {
                value = chars.by_ref().take_while(|c| *c != ' ').collect();
            }
            out.push((key.trim().to_owned(), value));
        }
        out
    }

    #[test]
    fn lines_are_logfmt_with_level_and_msg_keys() {
        let now = time::macros::datetime!(2026-12-02 07:34:10.123 UTC);
        let line = logfmt_line(now, &tracing::Level::WARN, |w| {
            w.message = Some("collector failed".into());
            w.rest.clear();
            let _ = write!(w.rest, " function=");
            push_value(&mut w.rest, "urn:fss:x:f:default:f1:latest");
            let _ = write!(w.rest, " error=");
            push_value(&mut w.rest, "code: http 500: say \"hi\"\nback\\slash a=b");
            let _ = write!(w.rest, " empty=");
            push_value(&mut w.rest, "");
        });
        assert!(
            line.starts_with("time=2026-12-02T07:34:10.123Z level=warn msg=\"collector failed\" "),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        let fields = parse(&line);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["time", "level", "msg", "function", "error", "empty"]);
        assert_eq!(fields[4].1, "code: http 500: say \"hi\"\nback\\slash a=b");
        assert_eq!(fields[3].1, "urn:fss:x:f:default:f1:latest");
        assert_eq!(fields[5].1, "");
    }
}
