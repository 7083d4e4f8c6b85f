// Types of `glassbox-sdk/tool` (the `tool-plugin` world).
import type { ToolDefinition } from './index.js';

export interface ToolSpec<A> {
  /** As the model will use it: `[a-zA-Z0-9_-]`, at most 64 characters. */
  name: string;
  /** What the tool does, written for the model. */
  description: string;
  /** JSON Schema of the arguments object; the host checks every call against it. */
  parameters?: object;
  /** Runs the tool; returns text, or anything JSON can encode. Throw `ToolFailed` to refuse. */
  run(args: A, callId?: string): unknown;
}
export interface Tool { definition: ToolDefinition }
/** `A` is the arguments' type; untyped, its fields are `any` (the host checked them against `parameters`). */
export function tool<A = Record<string, any>>(spec: ToolSpec<A>): Tool;
/** The export the `tool-plugin` world names `tool`: `export const tool = toolPlugin(...)`. */
export function toolPlugin(...tools: Tool[]): {
  definitions(): ToolDefinition[];
  invoke(name: string, args: string, callId?: string): string;
};
