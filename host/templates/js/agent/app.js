// {{name}}: a Glassbox agent. It offers the model the tools it is granted,
// runs the calls the model asks for, and answers when the model stops asking.

import { GlassboxError, Timeout, chat, toolResult } from 'glassbox-sdk';
import { agent, answerToolCall, toolDefinitions } from 'glassbox-sdk/agent';

const MAX_STEPS = 8;

function runTool(call) {
  try {
    return answerToolCall(call);
  } catch (error) {
    if (!(error instanceof GlassboxError)) throw error;
    return `The tool failed (${error.kind}: ${error.message})`;
  }
}

export const entrypoint = agent({
  name: '{{name}}',
  description: 'Answers with the tools it is granted.',
  run({ messages }) {
    const conversation = [...messages];
    const tools = toolDefinitions();
    for (let step = 0; step < MAX_STEPS; step += 1) {
      const reply = chat(conversation, { tools }).message;
      conversation.push(reply);
      if (!reply.toolCalls.length) return reply.content;
      for (const call of reply.toolCalls) conversation.push(toolResult(call, runTool(call)));
    }
    throw new Timeout(`no answer within ${MAX_STEPS} steps`);
  },
});
