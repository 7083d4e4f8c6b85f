// Exporting tools (the `tool-plugin` world):
//
//   import { tool, toolPlugin } from 'glassbox-sdk/tool';
//   const wordCount = tool({ name: 'word_count', description: '...', parameters: { ...JSON Schema },
//                            run: ({ text }) => text.split(/\s+/).length });
//   export const tool = toolPlugin(wordCount);   // the export the world names `tool`

import { exportError } from './errors.js';
import { log } from './telemetry.js';

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** A tool: its name, description for the model, JSON Schema of its arguments
 * object, and `run(arguments, callId)`, returning text or anything JSON encodes. */
export function tool({ name, description, parameters = { type: 'object', properties: {} }, run }) {
  if (!NAME.test(name ?? '')) throw new TypeError(`tool name ${JSON.stringify(name)} must match ${NAME}`);
  if (!description) throw new TypeError(`tool \`${name}\` needs a description`);
  if (typeof run !== 'function') throw new TypeError(`tool \`${name}\` needs a run function`);
  return { definition: { name, description, parameters: JSON.stringify(parameters) }, run };
}

/** The export of the `tool-plugin` world for these tools: `export const tool = toolPlugin(...)`. */
export function toolPlugin(...tools) {
  const byName = new Map();
  for (const t of tools) {
    if (byName.has(t.definition.name)) throw new TypeError(`two tools are named \`${t.definition.name}\``);
    byName.set(t.definition.name, t);
  }
  return {
    definitions: () => tools.map((t) => t.definition),
    invoke(name, args, callId) {
      const found = byName.get(name);
      if (!found) throw { payload: { tag: 'not-found', val: `this plugin has no tool \`${name}\`` } };
      try {
        const result = found.run(JSON.parse(args), callId);
        return typeof result === 'string' ? result : JSON.stringify(result);
      } catch (thrown) {
        throw exportError(thrown, 'tool-failed', log);
      }
    },
  };
}
