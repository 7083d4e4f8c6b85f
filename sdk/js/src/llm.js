// The model: `chat` for a whole answer, `stream` for one in pieces, `embed`
// for vectors, and builders for the messages of a conversation.

import { chat as witChat, streamChat, embeddings } from 'glassbox:agent/llm@0.1.0';
import { toInt64 } from '#int64';
import { hostCall } from './errors.js';

export const system = (content) => ({ role: 'system', content, toolCalls: [], toolCallId: undefined });
export const user = (content) => ({ role: 'user', content, toolCalls: [], toolCallId: undefined });
export const assistant = (content, toolCalls = []) => ({ role: 'assistant', content, toolCalls, toolCallId: undefined });
export const toolResult = (call, content) => ({ role: 'tool', content, toolCalls: [], toolCallId: call.id });

const OPTIONS = new Set(['tools', 'model', 'temperature', 'maxTokens', 'topP', 'stop', 'seed']);

function request(messages, options = {}) {
  const unknown = Object.keys(options).filter((key) => !OPTIONS.has(key));
  if (unknown.length) {
    throw new TypeError(`unknown chat options: ${unknown.join(', ')}`);
  }
  return {
    model: options.model,
    messages: typeof messages === 'string' ? [user(messages)] : messages,
    tools: options.tools ?? [],
    temperature: options.temperature,
    maxTokens: options.maxTokens,
    topP: options.topP,
    stopSequences: options.stop ?? [],
    seed: options.seed === undefined ? undefined : toInt64(options.seed),
  };
}

/** Sends the conversation to the model and waits for the whole answer. */
export function chat(messages, options) {
  return hostCall(witChat, request(messages, options));
}

/** Yields the answer as it arrives: text (strings) and complete tool calls
 * (objects); returns the whole response, as `chat` would have. */
export function* stream(messages, options) {
  const chunks = hostCall(streamChat, request(messages, options));
  for (;;) {
    const chunk = hostCall(() => chunks.next());
    if (chunk === undefined) return undefined;
    if (chunk.tag === 'done') return chunk.val;
    yield chunk.val;
  }
}

/** One vector per text, in order. */
export function embed(texts, { model, dimensions } = {}) {
  return hostCall(embeddings, { model, inputs: texts, dimensions }).embeddings;
}
