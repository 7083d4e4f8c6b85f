// Types of the JavaScript SDK (both worlds): the WIT records as the bindings
// pass them (camelCase fields, `undefined` for `none`), the model, telemetry and errors.

export type Role = 'system' | 'user' | 'assistant' | 'tool';
export interface ToolCall { id: string; name: string; arguments: string }
export interface Message { role: Role; content: string; toolCalls: ToolCall[]; toolCallId?: string }
export interface ToolDefinition { name: string; description: string; parameters: string }
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens?: number;
  cacheCreationInputTokens?: number;
  reasoningOutputTokens?: number;
}
export type FinishReason = 'stop' | 'length' | 'tool-calls' | 'content-filter' | 'other';
export interface ChatResponse { id: string; model: string; message: Message; finishReason: FinishReason; usage?: TokenUsage }
export interface ChatOptions {
  tools?: ToolDefinition[];
  model?: string;
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
  seed?: number | bigint;
}
/** A conversation, or one user message as text. */
export type Conversation = string | Message[];

export function system(content: string): Message;
export function user(content: string): Message;
export function assistant(content: string, toolCalls?: ToolCall[]): Message;
export function toolResult(call: ToolCall, content: string): Message;
export function chat(messages: Conversation, options?: ChatOptions): ChatResponse;
export function stream(messages: Conversation, options?: ChatOptions): Generator<string | ToolCall, ChatResponse | undefined>;
export function embed(texts: string[], options?: { model?: string; dimensions?: number }): number[][];

export type AttributeValue = string | boolean | number | bigint | string[];
export type Attributes = Record<string, AttributeValue>;
export interface OpenSpan {
  set(attributes: Attributes): void;
  event(name: string, attributes?: Attributes): void;
  fail(description: string): void;
  end(): void;
}
export function span<T>(name: string, work: (span: OpenSpan) => T): T;
export function span<T>(name: string, attributes: Attributes, work: (span: OpenSpan) => T): T;
export function log(message: string, level?: 'trace' | 'debug' | 'info' | 'warn' | 'error', attributes?: Attributes): void;

export type ErrorKind =
  | 'rate-limited' | 'timeout' | 'invalid-request' | 'not-allowed' | 'not-found' | 'invalid-arguments'
  | 'tool-failed' | 'crashed' | 'provider' | 'budget-exceeded' | 'limit-exceeded' | 'unavailable';
export class GlassboxError extends Error {
  constructor(kind: ErrorKind, message: string);
  readonly kind: ErrorKind;
}
export class RateLimited extends GlassboxError {
  constructor(message: string, retryAfterMs?: number);
  readonly retryAfterMs?: number;
}
declare class ErrorCase extends GlassboxError {
  constructor(message: string);
}
export class Timeout extends ErrorCase {}
export class InvalidRequest extends ErrorCase {}
export class NotAllowed extends ErrorCase {}
export class NotFound extends ErrorCase {}
export class InvalidArguments extends ErrorCase {}
export class ToolFailed extends ErrorCase {}
export class Crashed extends ErrorCase {}
export class ProviderError extends ErrorCase {}
export class BudgetExceeded extends ErrorCase {}
export class LimitExceeded extends ErrorCase {}
export class Unavailable extends ErrorCase {}
