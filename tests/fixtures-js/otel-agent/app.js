// An agent instrumented with the plain OpenTelemetry JS API, for the host's
// tests of `wasi:otel`; it does what the Rust fixture `otel-agent` does for
// the command `work`: a span `plan` holding a CLIENT span `lookup` that asks
// the model and calls the `shout` tool, with an event, a log record, an error
// status and a counter, histogram and gauge; a second root span started after
// `plan` ends. Built with both engines: on QuickJS, which cannot export
// metrics, the answer ends with the reason `flushMetrics` gave.

import { trace, metrics, SpanKind, SpanStatusCode, ValueType } from '@opentelemetry/api';
import { logs, SeverityNumber } from '@opentelemetry/api-logs';
import { chat, user } from 'glassbox-sdk';
import { agent, callTool } from 'glassbox-sdk/agent';
import { init } from 'glassbox-sdk/otel';

function work() {
  const otel = init();
  const tracer = trace.getTracer('otel-agent');
  const meter = metrics.getMeter('otel-agent');
  const pages = meter.createCounter('app.pages', { unit: '{page}', valueType: ValueType.INT });
  const latency = meter.createHistogram('app.lookup.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 1] },
  });
  const depth = meter.createGauge('app.queue.depth', { valueType: ValueType.INT });
  const answer = tracer.startActiveSpan('plan', (plan) => {
    plan.setAttribute('plan.steps', 2);
    plan.setAttribute('gen_ai.usage.input_tokens', 999999);
    plan.addEvent('planned', { 'plan.choice': 'lookup' });
    const found = tracer.startActiveSpan('lookup', { kind: SpanKind.CLIENT }, (lookup) => {
      const reply = chat([user('look it up')]).message.content;
      const shouted = callTool('shout', { words: 'found' });
      logs.getLogger('otel-agent').emit({
        severityNumber: SeverityNumber.WARN,
        body: 'the lookup was slow',
        attributes: { 'lookup.attempts': 2 },
      });
      pages.add(3, { 'app.source': 'web' });
      latency.record(0.05);
      latency.record(0.5);
      latency.record(0.7);
      depth.record(-4);
      lookup.setStatus({ code: SpanStatusCode.ERROR, message: 'lookup was slow' });
      lookup.end();
      return `${reply} / ${shouted}`;
    });
    plan.end();
    return found;
  });
  tracer.startActiveSpan('summarise', (summarise) => summarise.end());
  try {
    otel.flushMetrics();
  } catch (error) {
    return `${answer} (${error instanceof Error ? error.message : error})`;
  }
  return answer;
}

export const entrypoint = agent({
  name: 'otel-agent',
  description: 'Traced with the plain OpenTelemetry API.',
  run({ text }) {
    if (text.trim() !== 'work') throw new Error(`unknown command \`${text}\``);
    return work();
  },
});
