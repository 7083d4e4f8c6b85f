// Glassbox agents and tools in JavaScript, built into sandboxed WebAssembly
// components with componentize-js. The model, telemetry and errors serve both
// worlds; `glassbox-sdk/tool` exports tools and `glassbox-sdk/agent` agents.

export * from './errors.js';
export { chat, stream, embed, system, user, assistant, toolResult } from './llm.js';
export { span, log } from './telemetry.js';
