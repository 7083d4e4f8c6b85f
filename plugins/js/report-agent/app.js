// A report agent, in JavaScript: asks the model which tools to run on the
// request (in any language), runs them, then streams the model's written
// report. Each phase is a span, so the trace shows gathering and writing apart.

import { Timeout, GlassboxError, chat, log, span, stream, system, toolResult } from 'glassbox-sdk';
import { agent, answerToolCall, toolDefinitions } from 'glassbox-sdk/agent';

const MAX_ROUNDS = 4;
const INSTRUCTIONS =
  'You write short, factual reports. First gather facts with the tools; when you have them, write the report.';

function runTool(call) {
  try {
    return answerToolCall(call);
  } catch (error) {
    if (!(error instanceof GlassboxError)) throw error;
    log(`tool \`${call.name}\` failed: ${error.message}`, 'warn', { 'gen_ai.tool.call.id': call.id });
    return `The tool failed (${error.kind}: ${error.message})`;
  }
}

export const entrypoint = agent({
  name: 'report-agent',
  description: 'Writes a short report after gathering facts with its tools.',
  run({ messages }) {
    const conversation = [system(INSTRUCTIONS), ...messages];
    const tools = toolDefinitions();
    for (let round = 1; round <= MAX_ROUNDS; round += 1) {
      const gathered = span('report.gather', { 'report.round': round }, (current) => {
        const reply = chat(conversation, { tools }).message;
        current.set({ 'report.tool_calls': reply.toolCalls.length });
        if (!reply.toolCalls.length) return false;
        conversation.push(reply);
        for (const call of reply.toolCalls) conversation.push(toolResult(call, runTool(call)));
        return true;
      });
      if (!gathered) break;
      if (round === MAX_ROUNDS) throw new Timeout(`still gathering after ${MAX_ROUNDS} rounds`);
    }
    return span('report.write', (current) => {
      let report = '';
      let pieces = 0;
      for (const piece of stream(conversation)) {
        if (typeof piece === 'string') {
          report += piece;
          pieces += 1;
        }
      }
      current.set({ 'report.pieces': pieces });
      return report;
    });
  },
});
