// A tool plugin written in JavaScript with the SDK, for the host's tests of
// JavaScript guests: `shout` upper-cases a text inside a custom span, `fail`
// refuses with a tool error, `explode` throws (which the SDK turns into a tool
// error instead of letting it trap the instance), and `big` returns a number
// past 2^53 as an attribute, to check 64-bit values.

import { ToolFailed, span } from 'glassbox-sdk';
import { tool as defineTool, toolPlugin } from 'glassbox-sdk/tool';

const text = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false };

export const tool = toolPlugin(
  defineTool({
    name: 'shout',
    description: 'Upper-cases a text.',
    parameters: text,
    run: ({ text: given }) =>
      span('shout.upper', { 'text.length': given.length, 'text.big': 2n ** 60n }, () => given.toUpperCase()),
  }),
  defineTool({
    name: 'fail',
    description: 'Always refuses, with a tool error.',
    run: () => {
      throw new ToolFailed('refused, as asked');
    },
  }),
  defineTool({
    name: 'explode',
    description: 'Throws an error.',
    run: () => {
      throw new TypeError('the explode tool always throws');
    },
  }),
);
