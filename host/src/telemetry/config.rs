//! Where telemetry goes, decided from the standard `OTEL_*` environment
//! variables and the command line, before anything is built.

use super::content::ContentConfig;
use super::export::BatchSettings;
use super::semconv::{GenAiConventions, OPT_IN_GEN_AI_LATEST};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

impl FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" | "http" => Ok(OtlpProtocol::HttpProtobuf),
            other => Err(format!(
                "unsupported OTLP protocol `{other}`; use `grpc` or `http/protobuf`"
            )),
        }
    }
}

impl fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// An OTLP destination. Fields left `None` are read by the exporter from the
/// standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `_PROTOCOL`, `_HEADERS`, `_TIMEOUT`
/// and their per-signal forms).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtlpTarget {
    /// Base endpoint, as in `OTEL_EXPORTER_OTLP_ENDPOINT` (for HTTP, `/v1/<signal>` is appended).
    pub endpoint: Option<String>,
    pub protocol: Option<OtlpProtocol>,
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
}

impl OtlpTarget {
    /// All signals to `endpoint` over `protocol`, ignoring the environment's endpoint.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> Self {
        OtlpTarget {
            endpoint: Some(endpoint.into()),
            protocol: Some(protocol),
            traces: true,
            metrics: true,
            logs: true,
        }
    }
}

/// Which of the three signals something applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
}

impl Signals {
    pub fn any(&self) -> bool {
        self.traces || self.metrics || self.logs
    }
}

/// What the host does with the telemetry it produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `OTEL_SDK_DISABLED=true`: record nothing at all.
    pub disabled: bool,
    /// Export over OTLP, or `None` to send nothing anywhere.
    pub otlp: Option<OtlpTarget>,
    /// Print each finished trace as an indented tree on stderr.
    pub trace_tree: bool,
    /// Signals printed to stdout as they are exported, in the SDK's console
    /// format (`OTEL_{TRACES,METRICS,LOGS}_EXPORTER=console`).
    pub console: Signals,
    /// Message content on spans: off by default.
    pub content: ContentConfig,
    /// How spans are queued and batched for export (`OTEL_BSP_*`).
    pub batch: BatchSettings,
    /// Keep metrics in a Prometheus registry too, for a scrape endpoint
    /// ([`crate::Telemetry::prometheus_text`]).
    pub prometheus: bool,
    /// The GenAI conventions emitted (`OTEL_SEMCONV_STABILITY_OPT_IN`).
    pub conventions: GenAiConventions,
}

/// Command-line choices that take precedence over the environment.
#[derive(Clone, Debug, Default)]
pub struct TelemetryOverrides {
    pub endpoint: Option<String>,
    pub protocol: Option<OtlpProtocol>,
    pub trace_tree: Option<bool>,
    pub capture_content: Option<bool>,
    pub content_max_length: Option<usize>,
    /// Further secrets to redact from captured content, as regular expressions.
    pub redact: Vec<String>,
}

impl TelemetryConfig {
    /// Where this configuration sends telemetry, in the order the sinks attach.
    pub fn sinks(&self) -> Vec<super::Sink> {
        let mut sinks = Vec::new();
        if let Some(target) = &self.otlp {
            sinks.push(super::Sink::Otlp(target.clone()));
        }
        if self.prometheus {
            sinks.push(super::Sink::Prometheus);
        }
        if self.trace_tree {
            sinks.push(super::Sink::ConsoleTree);
        }
        if self.console.any() {
            sinks.push(super::Sink::Console(self.console));
        }
        sinks
    }

    /// Reads the process environment, then applies `overrides`.
    pub fn from_env(overrides: &TelemetryOverrides) -> Result<Self, String> {
        Self::from_lookup(crate::env::var, overrides)
    }

    fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
        overrides: &TelemetryOverrides,
    ) -> Result<Self, String> {
        // The Rust SDK ignores OTEL_SDK_DISABLED; the specification says it turns everything off.
        let disabled =
            var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let protocol = match &overrides.protocol {
            Some(protocol) => Some(*protocol),
            None => var("OTEL_EXPORTER_OTLP_PROTOCOL")
                .map(|v| {
                    v.parse()
                        .map_err(|e| format!("OTEL_EXPORTER_OTLP_PROTOCOL: {e}"))
                })
                .transpose()?,
        };
        if let Some(endpoint) = &overrides.endpoint {
            check_endpoint("--otlp-endpoint", endpoint)?;
        }
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ] {
            if let Some(endpoint) = var(name) {
                check_endpoint(name, &endpoint)?;
            }
        }
        let mut target = match &overrides.endpoint {
            // The specification's default protocol is http/protobuf.
            Some(endpoint) => OtlpTarget::new(
                endpoint.clone(),
                protocol.unwrap_or(OtlpProtocol::HttpProtobuf),
            ),
            None => {
                let generic = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
                let signal = |name: &str| {
                    generic || var(&format!("OTEL_EXPORTER_OTLP_{name}_ENDPOINT")).is_some()
                };
                OtlpTarget {
                    endpoint: None,
                    protocol,
                    traces: signal("TRACES"),
                    metrics: signal("METRICS"),
                    logs: signal("LOGS"),
                }
            }
        };
        // OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none turns one signal off, e.g. for a
        // backend that takes only traces, and `console` prints it; the Rust SDK
        // does not read these.
        let [traces, metrics, logs] = [
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
            "OTEL_LOGS_EXPORTER",
        ]
        .map(|name| exporters(&var, name));
        let (traces, metrics, logs) = (traces?, metrics?, logs?);
        target.traces &= traces.otlp;
        target.metrics &= metrics.otlp;
        target.logs &= logs.otlp;
        let console = Signals {
            traces: traces.console && !disabled,
            metrics: metrics.console && !disabled,
            logs: logs.console && !disabled,
        };
        let otlp =
            (!disabled && (target.traces || target.metrics || target.logs)).then_some(target);
        let trace_tree = overrides
            .trace_tree
            .unwrap_or(otlp.is_none() && !console.traces)
            && !disabled;
        let mut content = ContentConfig::from_lookup(&var)?;
        content.capture = overrides.capture_content.unwrap_or(content.capture);
        content.max_length = overrides.content_max_length.unwrap_or(content.max_length);
        content.redact.extend(overrides.redact.iter().cloned());
        Ok(TelemetryConfig {
            conventions: conventions(&var),
            disabled,
            otlp,
            trace_tree,
            console,
            content,
            batch: BatchSettings::from_lookup(&var)?,
            prometheus: false,
        })
    }
}

/// An OTLP/HTTP base endpoint with a signal's path (`v1/traces`) after it,
/// as the specification builds it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub(super) fn with_signal_path(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// A signal's own variable for `setting` (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`)
/// if set, else the one for all signals: the variable's name and its value.
pub(super) fn signal_setting(
    signal: &str,
    setting: &str,
    var: &impl Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    [
        format!("OTEL_EXPORTER_OTLP_{signal}_{setting}"),
        format!("OTEL_EXPORTER_OTLP_{setting}"),
    ]
    .into_iter()
    .find_map(|name| var(&name).map(|value| (name, value)))
}

/// A signal's transport: `target`'s, else the one its variables name, else
/// the specification's default, http/protobuf.
pub(super) fn signal_protocol(
    target: &OtlpTarget,
    signal: &str,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<OtlpProtocol, String> {
    match (target.protocol, signal_setting(signal, "PROTOCOL", var)) {
        (Some(protocol), _) => Ok(protocol),
        (None, Some((name, value))) => value.trim().parse().map_err(|e| format!("{name}: {e}")),
        (None, None) => Ok(OtlpProtocol::HttpProtobuf),
    }
}

/// The specification's default time limit for one export request.
pub(super) const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A signal's time limit for one export request (`OTEL_EXPORTER_OTLP_TIMEOUT`
/// or its per-signal form, in milliseconds).
pub(super) fn export_timeout(
    signal: &str,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, String> {
    match signal_setting(signal, "TIMEOUT", var) {
        Some((name, value)) => match value.trim().parse::<u64>() {
            Ok(millis) if millis > 0 => Ok(Duration::from_millis(millis)),
            _ => Err(format!(
                "{name}={value} is not a positive whole number of milliseconds"
            )),
        },
        None => Ok(DEFAULT_EXPORT_TIMEOUT),
    }
}

/// The variables `vars` lists, read as the process environment is.
#[cfg(test)]
pub(super) fn listed<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }
}

/// An OTLP endpoint must be an http(s) URL with a host: the exporters take
/// anything else without complaint and fail only when they first export.
fn check_endpoint(name: &str, endpoint: &str) -> Result<(), String> {
    let usable = url::Url::parse(endpoint.trim())
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    if usable {
        Ok(())
    } else {
        Err(format!(
            "{name}: `{endpoint}` is not an http(s) URL such as `http://localhost:4318`"
        ))
    }
}

/// The GenAI conventions `OTEL_SEMCONV_STABILITY_OPT_IN` asks for. It lists
/// choices for several areas (`http`, `database`, ...), so values for others
/// are no error.
pub(super) fn conventions(var: &impl Fn(&str) -> Option<String>) -> GenAiConventions {
    let opted_in = var("OTEL_SEMCONV_STABILITY_OPT_IN").is_some_and(|list| {
        list.split(',')
            .any(|value| value.trim() == OPT_IN_GEN_AI_LATEST)
    });
    if opted_in {
        GenAiConventions::Latest
    } else {
        GenAiConventions::V1_41
    }
}

/// Where one signal goes, by `OTEL_<SIGNAL>_EXPORTER`.
struct Exporters {
    otlp: bool,
    console: bool,
}

/// `otlp` (or unset) exports the signal, `console` prints it, both may be
/// listed (`otlp,console`), and `none` alone does neither.
fn exporters(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Exporters, String> {
    let Some(value) = var(name) else {
        return Ok(Exporters {
            otlp: true,
            console: false,
        });
    };
    let listed: Vec<&str> = value.split(',').map(str::trim).collect();
    let mut exporters = Exporters {
        otlp: false,
        console: false,
    };
    for exporter in &listed {
        match *exporter {
            "otlp" => exporters.otlp = true,
            "console" => exporters.console = true,
            "none" if listed.len() == 1 => {}
            other => {
                return Err(format!(
                    "{name}={value}: `{other}` is not supported; use `otlp`, `console`, both (`otlp,console`) or `none`"
                ));
            }
        }
    }
    Ok(exporters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Sink;

    fn config(
        vars: &[(&str, &str)],
        overrides: TelemetryOverrides,
    ) -> Result<TelemetryConfig, String> {
        TelemetryConfig::from_lookup(listed(vars), &overrides)
    }

    #[test]
    fn a_malformed_endpoint_is_refused_naming_where_it_came_from() {
        for endpoint in [
            "localhost:4318",
            "garbage",
            "http://[::1:4318",
            "ftp://collector",
            "",
        ] {
            for name in [
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            ] {
                let error = config(&[(name, endpoint)], TelemetryOverrides::default()).unwrap_err();
                assert_eq!(
                    error,
                    format!(
                        "{name}: `{endpoint}` is not an http(s) URL such as `http://localhost:4318`"
                    )
                );
            }
            let flag = TelemetryOverrides {
                endpoint: Some(endpoint.into()),
                ..TelemetryOverrides::default()
            };
            assert!(
                config(&[], flag)
                    .unwrap_err()
                    .starts_with("--otlp-endpoint: ")
            );
        }
        let fine = TelemetryOverrides {
            endpoint: Some("https://[::1]:4318".into()),
            ..TelemetryOverrides::default()
        };
        assert!(config(&[], fine).is_ok());
    }

    #[test]
    fn nothing_configured_sends_nothing_and_prints_the_tree() {
        let config = config(&[], TelemetryOverrides::default()).unwrap();
        assert_eq!(
            config,
            TelemetryConfig {
                disabled: false,
                otlp: None,
                trace_tree: true,
                ..TelemetryConfig::default()
            }
        );
    }

    #[test]
    fn generic_endpoint_exports_every_signal_without_tree() {
        let config = config(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
            TelemetryOverrides::default(),
        )
        .unwrap();
        let otlp = config.otlp.unwrap();
        assert_eq!((otlp.traces, otlp.metrics, otlp.logs), (true, true, true));
        assert_eq!(otlp.protocol, Some(OtlpProtocol::HttpProtobuf));
        assert_eq!(
            otlp.endpoint, None,
            "the exporter reads the endpoint itself"
        );
        assert!(!config.trace_tree);
    }

    #[test]
    fn a_signal_endpoint_exports_only_that_signal() {
        let config = config(
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://x:4318/v1/traces",
            )],
            TelemetryOverrides::default(),
        )
        .unwrap();
        let otlp = config.otlp.unwrap();
        assert_eq!((otlp.traces, otlp.metrics, otlp.logs), (true, false, false));
    }

    #[test]
    fn flags_override_the_environment() {
        let overrides = TelemetryOverrides {
            endpoint: Some("http://127.0.0.1:4317".into()),
            protocol: Some(OtlpProtocol::Grpc),
            trace_tree: Some(true),
            capture_content: Some(true),
            content_max_length: Some(100),
            redact: vec!["secret-\\d+".into()],
        };
        let config = config(
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                (
                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                    "false",
                ),
                ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5000"),
            ],
            overrides,
        )
        .unwrap();
        assert_eq!(
            config.content,
            ContentConfig {
                capture: true,
                events: false,
                max_length: 100,
                redact: vec!["secret-\\d+".into()],
            }
        );
        assert_eq!(config.otlp.unwrap().protocol, Some(OtlpProtocol::Grpc));
        assert!(config.trace_tree);
    }

    #[test]
    fn an_endpoint_flag_alone_uses_http_protobuf() {
        let overrides = TelemetryOverrides {
            endpoint: Some("http://127.0.0.1:4318".into()),
            ..Default::default()
        };
        let otlp = config(&[], overrides).unwrap().otlp.unwrap();
        assert_eq!(
            otlp,
            OtlpTarget::new("http://127.0.0.1:4318", OtlpProtocol::HttpProtobuf)
        );
    }

    #[test]
    fn sdk_disabled_wins_over_everything() {
        let overrides = TelemetryOverrides {
            trace_tree: Some(true),
            ..Default::default()
        };
        let config = config(
            &[
                ("OTEL_SDK_DISABLED", "TRUE"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
            ],
            overrides,
        )
        .unwrap();
        assert_eq!(
            config,
            TelemetryConfig {
                disabled: true,
                otlp: None,
                trace_tree: false,
                ..TelemetryConfig::default()
            }
        );
    }

    #[test]
    fn an_exporter_set_to_none_turns_its_signal_off() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://phoenix:6006"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ];
        let otlp = config(&vars, TelemetryOverrides::default())
            .unwrap()
            .otlp
            .unwrap();
        assert_eq!((otlp.traces, otlp.metrics, otlp.logs), (true, false, false));

        let all_off = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ];
        assert_eq!(
            config(&all_off, TelemetryOverrides::default())
                .unwrap()
                .otlp,
            None
        );

        let error = config(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
                ("OTEL_METRICS_EXPORTER", "prometheus"),
            ],
            TelemetryOverrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            error,
            "OTEL_METRICS_EXPORTER=prometheus: `prometheus` is not supported; use `otlp`, `console`, both (`otlp,console`) or `none`"
        );
        let error = config(
            &[("OTEL_TRACES_EXPORTER", "none,console")],
            TelemetryOverrides::default(),
        )
        .unwrap_err();
        assert!(error.starts_with("OTEL_TRACES_EXPORTER=none,console: `none` is not supported"));
    }

    #[test]
    fn the_latest_gen_ai_conventions_are_opted_into_among_other_areas() {
        let latest = |value: &str| {
            config(
                &[("OTEL_SEMCONV_STABILITY_OPT_IN", value)],
                TelemetryOverrides::default(),
            )
            .unwrap()
            .conventions
        };
        assert_eq!(
            latest("gen_ai_latest_experimental"),
            GenAiConventions::Latest
        );
        assert_eq!(
            latest("http/dup, gen_ai_latest_experimental"),
            GenAiConventions::Latest
        );
        assert_eq!(latest("http"), GenAiConventions::V1_41);
        assert_eq!(
            config(&[], TelemetryOverrides::default())
                .unwrap()
                .conventions,
            GenAiConventions::V1_41
        );
    }

    #[test]
    fn console_prints_a_signal_beside_otlp_or_instead_of_the_tree() {
        let both = config(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"),
                ("OTEL_TRACES_EXPORTER", "otlp, console"),
                ("OTEL_LOGS_EXPORTER", "console"),
            ],
            TelemetryOverrides::default(),
        )
        .unwrap();
        let otlp = both.otlp.clone().unwrap();
        assert_eq!((otlp.traces, otlp.metrics, otlp.logs), (true, true, false));
        assert_eq!(
            both.console,
            Signals {
                traces: true,
                metrics: false,
                logs: true
            }
        );
        assert!(!both.trace_tree);
        assert_eq!(
            both.sinks(),
            [Sink::Otlp(otlp), Sink::Console(both.console)]
        );

        let alone = config(
            &[("OTEL_TRACES_EXPORTER", "console")],
            TelemetryOverrides::default(),
        )
        .unwrap();
        assert!(alone.otlp.is_none());
        assert!(!alone.trace_tree, "the console exporter replaces the tree");
        let disabled = config(
            &[
                ("OTEL_TRACES_EXPORTER", "console"),
                ("OTEL_SDK_DISABLED", "true"),
            ],
            TelemetryOverrides::default(),
        )
        .unwrap();
        assert!(!disabled.console.any());
    }

    #[test]
    fn an_unknown_protocol_is_an_error() {
        let error = config(
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            TelemetryOverrides::default(),
        )
        .unwrap_err();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && error.contains("http/json"),
            "{error}"
        );
    }

    #[test]
    fn a_signal_setting_wins_over_the_one_for_all_signals() {
        let vars = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" => Some("5".to_owned()),
            "OTEL_EXPORTER_OTLP_TIMEOUT" | "OTEL_EXPORTER_OTLP_HEADERS" => Some("9".to_owned()),
            _ => None,
        };
        assert_eq!(
            signal_setting("TRACES", "TIMEOUT", &vars),
            Some(("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT".into(), "5".into()))
        );
        assert_eq!(
            signal_setting("LOGS", "HEADERS", &vars),
            Some(("OTEL_EXPORTER_OTLP_HEADERS".into(), "9".into()))
        );
        assert_eq!(signal_setting("LOGS", "PROTOCOL", &vars), None);
    }
}
