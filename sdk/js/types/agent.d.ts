// Types of `glassbox-sdk/agent` (the `agent` world).
import type { Conversation, Message, ToolCall, ToolDefinition } from './index.js';

export interface Request {
  /** The conversation, oldest first; text input is one user message. */
  messages: Message[];
  /** The last user message. */
  text: string;
  conversationId?: string;
}
export interface AgentSpec {
  name: string;
  description: string;
  version?: string;
  run(request: Request): string;
}
/** The export the `agent` world names `entrypoint`: `export const entrypoint = agent({...})`. */
export function agent(spec: AgentSpec): { describe(): object; run(request: object): string };
export function toolDefinitions(): ToolDefinition[];
export function callTool(name: string, args?: object | string, callId?: string): string;
export function answerToolCall(call: ToolCall): string;
export interface AgentCard { name: string; description: string; url?: string }
export function listAgents(): AgentCard[];
export function invokeAgent(name: string, task: Conversation, conversationId?: string): string;
