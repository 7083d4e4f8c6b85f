// The plain OpenTelemetry API (`@opentelemetry/api`, `@opentelemetry/api-logs`)
// in a component, through `wasi:otel`, the WASI OpenTelemetry proposal.
// `init()` installs global tracer, logger and meter providers from the
// OpenTelemetry JS SDK whose processors hand every finished span, log record
// and metric to the host, which nests them under its own spans and exports
// them with its own:
//
//   import { trace } from '@opentelemetry/api';
//   import { init } from 'glassbox-sdk/otel';
//   const otel = init();
//   trace.getTracer('my-agent').startActiveSpan('plan', (span) => { ...; span.end(); });
//   otel.flushMetrics();
//
// A span started with no parent joins the host's trace under the host's
// current span (the run, the tool call, or an open `span(...)`). An app that
// imports this module is built with the `wasi:otel` imports.

import { context, metrics, trace, SpanKind, SpanStatusCode, TraceFlags, ValueType } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { RandomIdGenerator, StackContextManager, TracerProvider } from '@opentelemetry/sdk-trace';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { onStart, onEnd, currentSpanContext } from 'wasi:otel/tracing@0.2.0-rc.2';
import { onEmit } from 'wasi:otel/logs@0.2.0-rc.2';
import { export as exportMetrics } from 'wasi:otel/metrics@0.2.0-rc.2';
import { toInt64 } from '#int64';
import { PROMISE_JOBS_RUN_BEFORE_RETURN } from '#engine';

const KINDS = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};
const INVALID_TRACE_ID = '0'.repeat(32);

const datetime = ([seconds, nanoseconds]) => ({ seconds: toInt64(seconds), nanoseconds });

const keyValues = (attributes = {}) =>
  Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ({ key, value: JSON.stringify(value) }));

const scope = ({ name, version, schemaUrl }) => ({ name, version, schemaUrl, attributes: [] });

function spanContext({ traceId, spanId, traceFlags, isRemote, traceState }) {
  return {
    traceId,
    spanId,
    traceFlags: { sampled: (traceFlags & TraceFlags.SAMPLED) !== 0 },
    isRemote: Boolean(isRemote),
    traceState: (traceState?.serialize() ?? '')
      .split(',')
      .filter(Boolean)
      .map((entry) => entry.split('=', 2)),
  };
}

function status({ code, message }) {
  if (code === SpanStatusCode.OK) return { tag: 'ok' };
  if (code === SpanStatusCode.ERROR) return { tag: 'error', val: message ?? '' };
  return { tag: 'unset' };
}

/** Hands each span to the host as it starts (so the host's spans opened
 * meanwhile nest under it) and as it ends. */
class HostSpans {
  onStart(span) {
    onStart(spanContext(span.spanContext()));
  }
  onEnd(span) {
    onEnd({
      spanContext: spanContext(span.spanContext()),
      parentSpanId: span.parentSpanContext?.spanId ?? '',
      spanKind: KINDS[span.kind] ?? 'internal',
      name: span.name,
      startTime: datetime(span.startTime),
      endTime: datetime(span.endTime),
      attributes: keyValues(span.attributes),
      events: span.events.map((event) => ({
        name: event.name,
        time: datetime(event.time),
        attributes: keyValues(event.attributes),
      })),
      links: span.links.map((link) => ({ spanContext: spanContext(link.context), attributes: keyValues(link.attributes) })),
      status: status(span.status),
      instrumentationScope: scope(span.instrumentationScope),
      droppedAttributes: span.droppedAttributesCount,
      droppedEvents: span.droppedEventsCount,
      droppedLinks: span.droppedLinksCount,
    });
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

/** Root spans join the host's trace; span ids are random. */
class HostTraceIds extends RandomIdGenerator {
  generateTraceId() {
    const { traceId } = currentSpanContext();
    return traceId && traceId !== INVALID_TRACE_ID ? traceId : super.generateTraceId();
  }
}

/** Hands each log record to the host, correlated with the span it was written in. */
class HostLogs {
  onEmit(record) {
    const span = record.spanContext;
    onEmit({
      timestamp: datetime(record.hrTime),
      observedTimestamp: datetime(record.hrTimeObserved),
      severityText: record.severityText,
      severityNumber: record.severityNumber,
      body: record.body === undefined ? undefined : JSON.stringify(record.body),
      attributes: keyValues(record.attributes),
      eventName: record.eventName,
      resource: undefined,
      instrumentationScope: scope(record.instrumentationScope),
      traceId: span?.traceId,
      spanId: span?.spanId,
      traceFlags: span ? { sampled: (span.traceFlags & TraceFlags.SAMPLED) !== 0 } : undefined,
    });
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

const number = (value, valueType) =>
  valueType === ValueType.INT && Number.isSafeInteger(value)
    ? { tag: 's64', val: toInt64(value) }
    : { tag: 'f64', val: value };

function metricData({ descriptor, dataPointType, dataPoints, aggregationTemporality, isMonotonic }) {
  const prefix = descriptor.valueType === ValueType.INT ? 's64' : 'f64';
  const times = {
    startTime: datetime(dataPoints[0].startTime),
    time: datetime(dataPoints[0].endTime),
  };
  const temporality = aggregationTemporality === AggregationTemporality.DELTA ? 'delta' : 'cumulative';
  const point = ({ attributes, value }) => ({
    attributes: keyValues(attributes),
    value: number(value, descriptor.valueType),
    exemplars: [],
  });
  switch (dataPointType) {
    case DataPointType.SUM:
      return { tag: `${prefix}-sum`, val: { ...times, dataPoints: dataPoints.map(point), temporality, isMonotonic } };
    case DataPointType.GAUGE:
      return { tag: `${prefix}-gauge`, val: { ...times, dataPoints: dataPoints.map(point) } };
    case DataPointType.HISTOGRAM:
      return {
        tag: `${prefix}-histogram`,
        val: {
          ...times,
          temporality,
          dataPoints: dataPoints.map(({ attributes, value }) => ({
            attributes: keyValues(attributes),
            count: toInt64(value.count),
            bounds: value.buckets.boundaries,
            bucketCounts: value.buckets.counts.map(toInt64),
            min: value.min === undefined ? undefined : number(value.min, descriptor.valueType),
            max: value.max === undefined ? undefined : number(value.max, descriptor.valueType),
            sum: number(value.sum ?? 0, descriptor.valueType),
            exemplars: [],
          })),
        },
      };
    default:
      throw new TypeError(`${descriptor.name}: exponential histograms are not supported by the host`);
  }
}

/** Collects the metrics recorded since the last collection, as deltas, and hands them to the host. */
class HostMetrics extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
  }
  async onForceFlush() {
    const { resourceMetrics } = await this.collect();
    const scopeMetrics = resourceMetrics.scopeMetrics
      .map(({ scope: from, metrics: collected }) => ({
        scope: scope(from),
        metrics: collected
          .filter((metric) => metric.dataPoints.length > 0)
          .map((metric) => ({
            name: metric.descriptor.name,
            description: metric.descriptor.description,
            unit: metric.descriptor.unit,
            data: metricData(metric),
          })),
      }))
      .filter((collected) => collected.metrics.length > 0);
    if (scopeMetrics.length > 0) {
      exportMetrics({ resource: { attributes: [], schemaUrl: undefined }, scopeMetrics });
    }
  }
  onShutdown() {
    return this.onForceFlush();
  }
}

/** Installs providers that report to the host as the global tracer, logger
 * and meter providers, and the context manager `startActiveSpan` nests with.
 * `flushMetrics()` hands the host what the meters recorded since the last
 * flush. The OpenTelemetry SDK collects metrics through promises, which
 * StarlingMonkey settles before a call returns and QuickJS does not, so
 * metrics need `--engine starlingmonkey`; on QuickJS `flushMetrics()` throws
 * saying so rather than exporting nothing. */
export function init() {
  context.setGlobalContextManager(new StackContextManager().enable());
  const tracerProvider = new TracerProvider({ spanProcessors: [new HostSpans()], idGenerator: new HostTraceIds() });
  trace.setGlobalTracerProvider(tracerProvider);
  const loggerProvider = new LoggerProvider({ processors: [new HostLogs()] });
  logs.setGlobalLoggerProvider(loggerProvider);
  const reader = new HostMetrics();
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    tracerProvider,
    loggerProvider,
    meterProvider,
    flushMetrics() {
      if (!PROMISE_JOBS_RUN_BEFORE_RETURN) {
        throw new Error(
          'metrics need `--engine starlingmonkey`: the OpenTelemetry SDK collects them through promises, ' +
            'which QuickJS settles only after the call has returned',
        );
      }
      return reader.forceFlush();
    },
  };
}
