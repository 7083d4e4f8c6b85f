// Types of `glassbox-sdk/otel`: the OpenTelemetry JS SDK's providers, reporting to the host through `wasi:otel`.
import type { TracerProvider, MeterProvider } from '@opentelemetry/api';
import type { LoggerProvider } from '@opentelemetry/api-logs';

export interface Otel {
  tracerProvider: TracerProvider;
  loggerProvider: LoggerProvider;
  meterProvider: MeterProvider;
  /** Hands the host what the meters recorded since the last flush (StarlingMonkey only: throws on QuickJS). */
  flushMetrics(): Promise<void>;
}
/** Installs the providers as the global ones, and a context manager for `startActiveSpan`. */
export function init(): Otel;
