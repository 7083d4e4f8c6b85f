// Exporting an agent (the `agent` world), and the tools and agents it may call:
//
//   import { agent, toolDefinitions, answerToolCall } from 'glassbox-sdk/agent';
//   export const entrypoint = agent({ name: 'helper', description: '...', run(request) { ... } });

import { list as witTools, call as witCall } from 'glassbox:agent/tools@0.1.0';
import { list as witAgents, invoke as witInvoke } from 'glassbox:agent/agents@0.1.0';
import { exportError, hostCall } from './errors.js';
import { user } from './llm.js';
import { log } from './telemetry.js';

/** The export of the `agent` world: `run(request)` gets `{ messages, text,
 * conversationId }` and returns the answer. */
export function agent({ name, description, version = '0.1.0', run }) {
  if (!name || !description) throw new TypeError('an agent needs a name and a description');
  if (typeof run !== 'function') throw new TypeError(`agent \`${name}\` needs a run function`);
  return {
    describe: () => ({ name, description, version }),
    run({ input, conversationId }) {
      const messages = input.tag === 'text' ? [user(input.val)] : input.val;
      const text = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      try {
        return run({ messages, text, conversationId });
      } catch (thrown) {
        throw exportError(thrown, 'crashed', log);
      }
    },
  };
}

/** Every tool this run may use, to hand to the model (`chat(messages, { tools })`). */
export const toolDefinitions = () => witTools();

/** Calls the tool `name` with `args` (an object, or JSON text); returns its result text. */
export function callTool(name, args = {}, callId = undefined) {
  return hostCall(witCall, name, typeof args === 'string' ? args : JSON.stringify(args), callId);
}

/** Runs a tool call the model asked for. */
export const answerToolCall = (call) => hostCall(witCall, call.name, call.arguments, call.id);

/** The agents this agent may call, in name order. */
export const listAgents = () => witAgents();

/** Runs the agent `name` on `task` (text, or messages); returns its answer. */
export function invokeAgent(name, task, conversationId = undefined) {
  const input = typeof task === 'string' ? { tag: 'text', val: task } : { tag: 'messages', val: task };
  return hostCall(witInvoke, name, input, conversationId);
}
